package user_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/token"
	"github.com/gatehouse/gatehouse/internal/user"
)

// keySource is a key set that changes at run time, as auth.Authenticator's does on `keys rotate`.
type keySource struct {
	mu   sync.Mutex
	cur  string
	prev []token.Key
}

func (k *keySource) MasterKeys() (string, []token.Key) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cur, k.prev
}

func (k *keySource) set(cur string, prev ...token.Key) {
	k.mu.Lock()
	k.cur, k.prev = cur, prev
	k.mu.Unlock()
}

// TestRotatingSealer (issue 10 finding 10): a sealer follows its key source: after a rotation new
// values are sealed with the new key and old ones still open; after the retired key is revoked
// nothing sealed with it opens; with MaxAge a retired key stops opening once nothing it sealed can be
// alive.
func TestRotatingSealer(t *testing.T) {
	const k1, k2 = "first-master-key-0123456789", "second-master-key-0123456789"
	now := time.Unix(1_800_000_000, 0)
	src := &keySource{cur: k1}
	s, err := user.NewRotatingSealer("provider tokens", src, user.SealerOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ad := []byte("ad")
	old := mustSeal(t, s, "ad")

	src.set(k2, token.Key{Secret: k1, RetiredAt: now})
	if pt, err := s.Open(old, ad); err != nil || string(pt) != "hello" {
		t.Fatalf("retired key: %q %v", pt, err)
	}
	fresh := mustSeal(t, s, "ad")
	onlyK1, _ := user.NewSealer("provider tokens", k1)
	if _, err := onlyK1.Open(fresh, ad); err == nil {
		t.Fatal("after rotation the sealer still seals with the retired key")
	}

	src.set(k2) // --revoke-previous
	if _, err := s.Open(old, ad); !errors.Is(err, user.ErrUnseal) {
		t.Fatalf("revoked key still opens: %v", err)
	}
	if _, err := s.Open(fresh, ad); err != nil {
		t.Fatalf("current key: %v", err)
	}

	// MaxAge: a retired key opens only while something it sealed can still be alive.
	src.set(k1)
	flow, _ := user.NewRotatingSealer("login flow", src, user.SealerOptions{MaxAge: 10 * time.Minute, Now: func() time.Time { return now }})
	cookie := mustSeal(t, flow, "ad")
	src.set(k2, token.Key{Secret: k1, RetiredAt: now.Add(-9 * time.Minute)})
	if _, err := flow.Open(cookie, ad); err != nil {
		t.Fatalf("retired 9 minutes ago: %v", err)
	}
	src.set(k2, token.Key{Secret: k1, RetiredAt: now.Add(-11 * time.Minute)})
	if _, err := flow.Open(cookie, ad); !errors.Is(err, user.ErrUnseal) {
		t.Fatalf("retired 11 minutes ago: %v", err)
	}
}
