package auth

import (
	"errors"
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
	// A token without iat (old scripts): issued at the earliest exp - MaxTTL.
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
		{"no iat, exp-maxttl before cut-off", noIat, ErrRevoked},
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
