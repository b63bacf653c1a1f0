package account

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestCancelledAttemptIsReleased: a login that never got to check its password (cancelled while
// queued for the hasher) does not count against the account.
func TestCancelledAttemptIsReleased(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	lim := password.NewLimiter(1, 1)
	h, err := password.NewHasher(password.Config{Params: password.Params{Memory: 64, Time: 1, Threads: 1}, Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Options{Store: NewSQL(db), Hasher: h})
	if err != nil {
		t.Fatal(err)
	}
	hold, started := make(chan struct{}), make(chan struct{})
	go lim.Do(context.Background(), func() error { close(started); <-hold; return nil }) //nolint:errcheck
	<-started
	defer close(hold)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := svc.Login(ctx, Client{IP: "10.0.0.1"}, "a@example.com", "some password")
		errc <- err
	}()
	for lim.Stats().Waiting == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	for _, k := range []string{pairKey("a@example.com", "10.0.0.1"), acctKey("a@example.com"), ipKey("10.0.0.1")} {
		r, err := svc.o.Store.ThrottleRow(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if r.Failures != 0 || r.WindowCount != 0 {
			t.Fatalf("%s counted a cancelled attempt: %+v", k[:2], r)
		}
	}
}

// TestResetTokenBoundToPasswordStamp: a reset token issued for an earlier password state is refused
// even if it survived in the table (SetPassword also deletes them; this is the second lock).
func TestResetTokenBoundToPasswordStamp(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	h, err := password.NewHasher(password.Config{Params: password.Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Options{Store: NewSQL(db), Hasher: h})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := svc.Add(ctx, "a@example.com", "first password", true)
	if err != nil {
		t.Fatal(err)
	}
	now := svc.o.Now()
	for _, tc := range []struct {
		binding string
		ok      bool
	}{{"an-older-stamp", false}, {a.PasswordStamp, true}} {
		tok := newSecret()
		if err := svc.o.Store.PutToken(ctx, Token{Hash: tokenHash(tok), Purpose: PurposeReset, AccountID: a.ID, Binding: tc.binding, ExpiresAt: now.Add(time.Hour), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		err := svc.ConfirmReset(ctx, Client{IP: "10.0.0.2"}, tok, "second password")
		if (err == nil) != tc.ok || (!tc.ok && !errors.Is(err, ErrInvalidLink)) {
			t.Fatalf("binding %q: err = %v", tc.binding, err)
		}
	}
}
