package account

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestCeremonyLimit: passkey sign-in challenges are rows in the database, so one address gets a
// bounded number per hour, and another address is not affected.
func TestCeremonyLimit(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	h, err := password.NewHasher(password.Config{Params: password.Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	rules := DefaultRules()
	rules.Ceremony = Rule{Free: math.MaxInt32, Base: time.Second, Max: time.Minute, PerHour: 3, Decay: time.Hour}
	pk, err := PasskeyConfigFor("https://gatehouse.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Options{Store: NewSQL(db), Hasher: h, Rules: rules, Passkeys: pk, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if _, err := svc.BeginPasskeyLogin(ctx, Client{IP: "10.0.0.1"}, NewNonce(), ""); err != nil {
			t.Fatalf("challenge %d: %v", i, err)
		}
	}
	var te *ThrottledError
	if _, err := svc.BeginPasskeyLogin(ctx, Client{IP: "10.0.0.1"}, NewNonce(), ""); !errors.As(err, &te) {
		t.Fatalf("fourth challenge within the hour: %v", err)
	}
	if _, err := svc.BeginPasskeyLogin(ctx, Client{IP: "10.0.0.2"}, NewNonce(), ""); err != nil {
		t.Fatalf("another address: %v", err)
	}
	now = now.Add(time.Hour)
	if _, err := svc.BeginPasskeyLogin(ctx, Client{IP: "10.0.0.1"}, NewNonce(), ""); err != nil {
		t.Fatalf("the next hour: %v", err)
	}
	// Expired challenges are pruned.
	now = now.Add(3 * time.Minute)
	if n, err := svc.o.Store.DeleteExpiredCeremonies(ctx, now); err != nil || n != 5 {
		t.Fatalf("pruned %d, %v", n, err)
	}
}
