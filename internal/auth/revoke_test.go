package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/token"
)

type revMap map[string]time.Time

func (m revMap) RevokedBefore(uid string) (time.Time, bool) { t, ok := m[uid]; return t, ok }

func TestMintIssuesIat(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, _ := New(secrets, Options{Now: func() time.Time { return now }})
	m := &Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	tok, _, err := m.Mint(MintRequest{UserID: "Google:1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Identify(Credentials{Token: tok, HasToken: true})
	if err != nil || c.Claims.Iat != now.Unix() {
		t.Fatalf("iat = %d, err %v", c.Claims.Iat, err)
	}
	raw, _ := c.Claims.Raw()
	if raw["iat"] == nil || raw["uid"] != "Google:1" {
		t.Fatalf("claims %v", raw)
	}
}

func TestRevocations(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := now
	a, _ := New(secrets, Options{Now: func() time.Time { return clock }, MaxTTL: 24 * time.Hour})
	m := &Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	old, _, _ := m.Mint(MintRequest{UserID: "Google:1"})
	other, _, _ := m.Mint(MintRequest{UserID: "Google:2"})
	// A token without iat (hand-minted by scripts): refused once its user has a cut-off.
	noIat, _ := token.Mint(secrets.MasterKey, token.Claims{Exp: now.Add(time.Hour).Unix(), UID: "Google:1"})
	clock = now.Add(10 * time.Second)
	fresh, _, _ := m.Mint(MintRequest{UserID: "Google:1"})

	revs := revMap{"Google:1": now.Add(5 * time.Second)}
	a.SetRevocations(revs)
	cases := []struct {
		name string
		tok  string
		err  error
	}{
		{"issued before cut-off", old, ErrRevoked},
		{"no iat, user has a cut-off", noIat, ErrRevoked},
		{"issued after cut-off", fresh, nil},
		{"other user", other, nil},
	}
	for _, tc := range cases {
		_, err := a.Identify(Credentials{Token: tc.tok, HasToken: true})
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
		}
	}
	// Disabled: the cut-off is in the far future.
	revs["Google:1"] = time.Unix(1<<40, 0)
	if _, err := a.Identify(Credentials{Token: fresh, HasToken: true}); !errors.Is(err, ErrRevoked) || err.Error() != "The authentication token has been revoked." {
		t.Errorf("disabled user: %v", err)
	}
	a.SetRevocations(nil)
	if _, err := a.Identify(Credentials{Token: old, HasToken: true}); err != nil {
		t.Errorf("without a revocation list: %v", err)
	}
}

// TestRevocationWithoutIat covers issue 10 finding 11's two examples. Tokens without iat used to be
// placed at exp − MaxTTL: a 45-day token survived logout-everywhere, and a fresh 1-day token minted
// after it was refused for no stated reason. Now a token without iat is refused, with a message that
// says why, for any user who has a cut-off, whatever its exp; tokens with iat are judged by it; users
// without a cut-off are unaffected.
func TestRevocationWithoutIat(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := now
	a, _ := New(secrets, Options{Now: func() time.Time { return clock }, MaxTTL: 30 * 24 * time.Hour})
	long, _ := token.Mint(secrets.MasterKey, token.Claims{Exp: now.Add(45 * 24 * time.Hour).Unix(), UID: "custom:1"})
	otherUser, _ := token.Mint(secrets.MasterKey, token.Claims{Exp: now.Add(45 * 24 * time.Hour).Unix(), UID: "custom:2"})
	if _, err := a.Identify(Credentials{Token: long, HasToken: true}); err != nil {
		t.Fatalf("before any cut-off: %v", err)
	}
	cut := now.Add(time.Hour)
	a.SetRevocations(revMap{"custom:1": cut})
	clock = now.Add(2 * time.Hour)
	_, err := a.Identify(Credentials{Token: long, HasToken: true})
	if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "no iat claim") {
		t.Fatalf("45-day token without iat after logout-everywhere: %v", err)
	}
	freshNoIat, _ := token.Mint(secrets.MasterKey, token.Claims{Exp: clock.Add(24 * time.Hour).Unix(), UID: "custom:1"})
	if _, err := a.Identify(Credentials{Token: freshNoIat, HasToken: true}); !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "no iat claim") {
		t.Fatalf("fresh token without iat: %v (must be refused with the reason: its issue time is unknown)", err)
	}
	freshIat, _ := token.Mint(secrets.MasterKey, token.Claims{Exp: clock.Add(24 * time.Hour).Unix(), Iat: clock.Unix(), UID: "custom:1"})
	if _, err := a.Identify(Credentials{Token: freshIat, HasToken: true}); err != nil {
		t.Fatalf("fresh 1-day token with iat after the cut-off: %v", err)
	}
	oldIat, _ := token.Mint(secrets.MasterKey, token.Claims{Exp: clock.Add(24 * time.Hour).Unix(), Iat: now.Unix(), UID: "custom:1"})
	if _, err := a.Identify(Credentials{Token: oldIat, HasToken: true}); !errors.Is(err, ErrRevoked) || err.Error() != "The authentication token has been revoked." {
		t.Fatalf("token with iat before the cut-off: %v", err)
	}
	if _, err := a.Identify(Credentials{Token: otherUser, HasToken: true}); err != nil {
		t.Fatalf("user without a cut-off: %v", err)
	}
}
