package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/signing"
	"github.com/gatehouse/gatehouse/internal/token"
)

func jwtAuth(t *testing.T, clock *time.Time) (*Authenticator, *Minter) {
	t.Helper()
	key, err := signing.Generate(signing.ES256)
	if err != nil {
		t.Fatal(err)
	}
	s := secrets
	s.Signing = []signing.Entry{{Secret: key}}
	a, err := New(s, Options{Now: func() time.Time { return *clock }, MaxTTL: 24 * time.Hour, ClockSkew: time.Minute,
		Issuer: "https://api.example.com", Audiences: []string{"https://api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	return a, &Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour, Format: FormatJWT}
}

// TestBothFormats: with signing keys, Identify accepts jwt tokens and app tokens alike; the jwt goes
// through the same revocation check; amr defaults by provider and follows MintRequest.AMR.
func TestBothFormats(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	a, jm := jwtAuth(t, &clock)
	zm := &Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	jwt, _, err := jm.Mint(MintRequest{UserID: "custom:1"})
	if err != nil {
		t.Fatal(err)
	}
	zumo, _, err := zm.Mint(MintRequest{UserID: "Google:2", AMR: []string{"fed", "otp", "mfa"}})
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string][]string{jwt: {"pwd"}, zumo: {"fed", "otp", "mfa"}} {
		c, err := a.Identify(Credentials{Token: tok, HasToken: true})
		if err != nil || c.Level != Authenticated {
			t.Fatalf("identify: %v", err)
		}
		if got := c.AMR(); len(got) != len(want) || got[0] != want[0] {
			t.Errorf("amr %v, want %v", got, want)
		}
	}
	if c, _ := a.Identify(Credentials{Token: jwt, HasToken: true}); c.Claims.Aud != "custom" || c.UserID() != "custom:1" {
		t.Errorf("jwt claims in the app token's shape: %+v", c.Claims)
	}
	fed, _, _ := jm.Mint(MintRequest{UserID: "Facebook:3"})
	if c, _ := a.Identify(Credentials{Token: fed, HasToken: true}); len(c.AMR()) != 1 || c.AMR()[0] != "fed" {
		t.Errorf("provider login amr %v", c.AMR())
	}
	// Without an amr, an app token says nothing.
	plain, _, _ := zm.Mint(MintRequest{UserID: "Google:2"})
	if c, _ := a.Identify(Credentials{Token: plain, HasToken: true}); c.AMR() != nil {
		t.Errorf("app token without amr: %v", c.AMR())
	}
	// A jwt is never a system token.
	if _, err := a.Identify(Credentials{Token: jwt, HasToken: true, System: true}); err == nil {
		t.Error("jwt accepted on /jobs")
	}
	// Revocation applies to jwt tokens too.
	a.SetRevocations(revMap{"custom:1": clock.Add(time.Millisecond)})
	if _, err := a.Identify(Credentials{Token: jwt, HasToken: true}); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked jwt: %v", err)
	}
	// Keys removed (SetSecrets without them): the jwt is refused by kid... as an app token it fails.
	a.SetRevocations(nil)
	if err := a.SetSecrets(secrets); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Identify(Credentials{Token: jwt, HasToken: true}); err == nil {
		t.Error("jwt accepted without signing keys")
	}
	if _, _, err := jm.Mint(MintRequest{UserID: "custom:1"}); err == nil {
		t.Error("jwt minted without signing keys")
	}
	// Expired by the injected clock.
	a2, jm2 := jwtAuth(t, &clock)
	old, _, _ := jm2.Mint(MintRequest{UserID: "custom:1"})
	clock = clock.Add(2 * time.Hour)
	if _, err := a2.Identify(Credentials{Token: old, HasToken: true}); !errors.Is(err, token.ErrExpired) {
		t.Errorf("expired jwt: %v", err)
	}
}

// TestMFABothFormats: the "mfa" permission reads the amr of either token format.
func TestMFABothFormats(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	a, jm := jwtAuth(t, &clock)
	zm := &Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	for _, m := range []*Minter{jm, zm} {
		for amr, want := range map[string]bool{"pwd": false, "pwd otp mfa": true, "hwk mfa": true} {
			tok, _, err := m.Mint(MintRequest{UserID: "custom:1", AMR: strings.Fields(amr)})
			if err != nil {
				t.Fatal(err)
			}
			c, err := a.Identify(Credentials{Token: tok, HasToken: true})
			if err != nil {
				t.Fatal(err)
			}
			if c.Allows(UserMFA) != want || c.NeedsMFA(UserMFA) == want {
				t.Errorf("format %q amr %q: allows %v", m.Format, amr, c.Allows(UserMFA))
			}
		}
	}
}
