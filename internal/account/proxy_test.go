package account_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestThrottlingBehindProxy: behind a trusted proxy, 20 failed logins from random client addresses
// do not lock the account's owner out (issue 11: every client used to share the proxy's bucket).
// With the proxy not trusted, the same traffic is one client and the owner is blocked, which is what
// the first half guards against.
func TestThrottlingBehindProxy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for n, tc := range []struct {
			trusted     string
			ownerStatus int
		}{
			{"127.0.0.1/32", http.StatusOK},
			{"none", http.StatusTooManyRequests},
		} {
			t.Run("trusted_proxies="+tc.trusted, func(t *testing.T) {
				e := newEnv(t, db, envOpt{env: map[string]string{"GATEHOUSE_TRUSTED_PROXIES": tc.trusted}})
				email := fmt.Sprintf("owner%d@example.com", n)
				if _, err := e.svc.Add(context.Background(), email, "owner password", true); err != nil {
					t.Fatal(err)
				}
				const home = "198.51.100.10"
				if r := login(e, email, "owner password", home); r.status != 200 {
					t.Fatalf("first login: %d %s", r.status, r.body)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				for i := range 20 {
					ip := fmt.Sprintf("100.%d.%d.%d", 64+rng.IntN(64), rng.IntN(256), 1+rng.IntN(254))
					r := login(e, email, fmt.Sprintf("guess %d", i), ip)
					if r.status != http.StatusUnauthorized && r.status != http.StatusTooManyRequests {
						t.Fatalf("attempt %d: %d %s", i, r.status, r.body)
					}
				}
				if r := login(e, email, "owner password", home); r.status != tc.ownerStatus {
					t.Fatalf("owner's login after the attack: %d %s, want %d", r.status, r.body, tc.ownerStatus)
				}
			})
		}
	})
}
