package account_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/user"
)

// TestSetUserDisabled drives the one disable/enable decision: an account (named by id, email address
// or user id) changes with its user in the directory; a provider user of the directory changes
// alone; an unknown reference is ErrNoUser; without accounts every reference is a directory user.
func TestSetUserDisabled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{})
		ctx := context.Background()
		a, err := e.svc.Add(ctx, "Switch@Example.com", "switch password 1", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.dir.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "https://accounts.google.com", Subject: "77"}); err != nil {
			t.Fatal(err)
		}
		state := func(userID string) (acct, usr bool) {
			t.Helper()
			u, err := e.dir.Get(ctx, userID)
			if err != nil {
				t.Fatal(err)
			}
			if x, err := e.svc.Find(ctx, userID); err == nil {
				acct = x.Disabled
			}
			return acct, u.Disabled
		}
		for _, ref := range []string{a.ID, "switch@example.com", a.TokenUserID()} {
			sw, err := account.SetUserDisabled(ctx, e.svc, e.dir, ref, true)
			if err != nil {
				t.Fatalf("disable %q: %v", ref, err)
			}
			if sw.Account == nil || sw.Account.ID != a.ID || sw.UserID != a.TokenUserID() || !sw.Account.Disabled {
				t.Fatalf("disable %q: %+v", ref, sw)
			}
			if acct, usr := state(a.TokenUserID()); !acct || !usr {
				t.Fatalf("after disable %q: account disabled %v, user disabled %v", ref, acct, usr)
			}
			if r := login(e, "switch@example.com", "switch password 1", "192.0.2.1"); r.status == 200 {
				t.Fatalf("a disabled account logged in: %s", r.body)
			}
			if _, err := account.SetUserDisabled(ctx, e.svc, e.dir, ref, false); err != nil {
				t.Fatalf("enable %q: %v", ref, err)
			}
			if acct, usr := state(a.TokenUserID()); acct || usr {
				t.Fatalf("after enable %q: account disabled %v, user disabled %v", ref, acct, usr)
			}
		}
		if r := login(e, "switch@example.com", "switch password 1", "192.0.2.1"); r.status != 200 {
			t.Fatalf("the re-enabled account: %d %s", r.status, r.body)
		}

		// A provider user: the directory alone.
		sw, err := account.SetUserDisabled(ctx, e.svc, e.dir, "Google:77", true)
		if err != nil || sw.Account != nil || sw.UserID != "Google:77" {
			t.Fatalf("provider user: %+v %v", sw, err)
		}
		if _, usr := state("Google:77"); !usr {
			t.Fatal("the provider user is not disabled")
		}
		// Without the accounts service, an account's user changes in the directory only.
		if _, err := account.SetUserDisabled(ctx, nil, e.dir, "Google:77", false); err != nil {
			t.Fatal(err)
		}
		if _, usr := state("Google:77"); usr {
			t.Fatal("the provider user is still disabled")
		}

		for _, ref := range []string{"Google:78", "nobody@example.com", "", "custom:0000"} {
			_, err := account.SetUserDisabled(ctx, e.svc, e.dir, ref, true)
			if !errors.Is(err, account.ErrNoUser) || !errors.Is(err, user.ErrNotFound) {
				t.Fatalf("%q: %v, want ErrNoUser (matching user.ErrNotFound)", ref, err)
			}
		}
		if _, err := account.SetUserDisabled(ctx, nil, nil, "Google:77", true); !errors.Is(err, account.ErrNoUser) {
			t.Fatalf("no directory: %v", err)
		}
	})
}
