package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/token"
)

var secrets = Secrets{MasterKey: "master-key-0123456789abcdef", ApplicationKey: "app-key-0123456789abcdef", SystemKey: "system-key-0123456789abcdef"}

func TestParsePermission(t *testing.T) {
	for in, want := range map[string]Permission{"public": Public, "Application": Application, "user": User, "AUTHENTICATED": User, "admin": Admin} {
		if got, err := ParsePermission(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	if _, err := ParsePermission("anyone"); err == nil {
		t.Error("unknown permission accepted")
	}
	var zero Permission
	if zero != Admin {
		t.Error("missing permission must mean admin")
	}
}

func TestIdentify(t *testing.T) {
	now := time.Now()
	a, err := New(secrets, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	m := &Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	tok, exp, err := m.Mint(MintRequest{UserID: "custom:9"})
	if err != nil || exp.Sub(now) > time.Hour || exp.Sub(now) < time.Hour-time.Second {
		t.Fatalf("mint: %v %v", exp, err)
	}
	sysTok, _ := token.Mint(secrets.SystemKey, token.Claims{Exp: now.Add(time.Hour).Unix(), UID: "cron"})

	cases := []struct {
		name  string
		cr    Credentials
		level Level
		app   bool
		err   error
	}{
		{"nothing", Credentials{}, Anonymous, false, nil},
		{"master", Credentials{MasterKey: secrets.MasterKey}, AdminLevel, false, nil},
		{"master prefix", Credentials{MasterKey: secrets.MasterKey[:10]}, Anonymous, false, nil},
		{"app", Credentials{AppKey: secrets.ApplicationKey}, Anonymous, true, nil},
		{"app as master", Credentials{MasterKey: secrets.ApplicationKey}, Anonymous, false, nil},
		{"token", Credentials{Token: tok, HasToken: true}, Authenticated, false, nil},
		{"empty token header", Credentials{HasToken: true}, Anonymous, false, token.ErrEmpty},
		{"user token on jobs", Credentials{Token: tok, HasToken: true, System: true}, Anonymous, false, token.ErrSignature},
		{"system token on jobs", Credentials{Token: sysTok, HasToken: true, System: true}, Authenticated, false, nil},
		{"system token elsewhere", Credentials{Token: sysTok, HasToken: true}, Anonymous, false, token.ErrSignature},
	}
	for _, tc := range cases {
		c, err := a.Identify(tc.cr)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if c.Level != tc.level || c.AppKey != tc.app {
			t.Errorf("%s: level %s app %v", tc.name, c.Level, c.AppKey)
		}
	}
}

func TestRotationWithoutLogout(t *testing.T) {
	a, _ := New(secrets, Options{MaxTTL: 24 * time.Hour})
	m := &Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	before, _, _ := m.Mint(MintRequest{UserID: "custom:1"})
	rotated := secrets
	rotated.MasterKey = "new-master-key-0123456789abcdef"
	rotated.Previous = []token.Key{{Secret: secrets.MasterKey, RetiredAt: time.Now()}}
	if err := a.SetSecrets(rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Identify(Credentials{Token: before, HasToken: true}); err != nil {
		t.Fatalf("token from before rotation rejected: %v", err)
	}
	after, _, _ := m.Mint(MintRequest{UserID: "custom:1"})
	if after == before {
		t.Fatal("same token after rotation")
	}
	// New tokens are signed with the new key: a verifier with only the new key accepts them.
	only, _ := New(Secrets{MasterKey: rotated.MasterKey, ApplicationKey: "x-0123456789abcdef", SystemKey: "y-0123456789abcdef"}, Options{})
	if _, err := only.Identify(Credentials{Token: after, HasToken: true}); err != nil {
		t.Fatalf("new token not signed with the new key: %v", err)
	}
	if _, err := only.Identify(Credentials{Token: before, HasToken: true}); err == nil {
		t.Fatal("old token verified without the old key")
	}
	// The old master key no longer grants admin.
	if c, _ := a.Identify(Credentials{MasterKey: secrets.MasterKey}); c.IsAdmin() {
		t.Fatal("retired master key still grants admin")
	}
}

func TestMintValidation(t *testing.T) {
	a, _ := New(secrets, Options{})
	m := &Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	for _, r := range []MintRequest{{UserID: ""}, {UserID: strings.Repeat("x", 513)}, {UserID: "a\nb"}, {UserID: "a", TTL: 48 * time.Hour}, {UserID: "a", TTL: -time.Second}} {
		if _, _, err := m.Mint(r); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
	tok, _, err := m.Mint(MintRequest{UserID: "custom:1", Audience: "Custom"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Identify(Credentials{Token: tok, HasToken: true})
	if err != nil || c.Claims.Aud != "Custom" || c.Claims.Iss != token.Issuer || c.Claims.Ver != 2 {
		t.Fatalf("claims %+v %v", c, err)
	}
}

func TestCallerAllows(t *testing.T) {
	user := &Caller{Level: Authenticated, Claims: &token.Claims{UID: "a:b"}}
	app := &Caller{AppKey: true}
	admin := &Caller{Level: AdminLevel}
	anon := &Caller{}
	grid := []struct {
		c    *Caller
		p    Permission
		want bool
	}{
		{anon, Public, true}, {anon, Application, false}, {anon, User, false}, {anon, Admin, false},
		{app, Public, true}, {app, Application, true}, {app, User, false}, {app, Admin, false},
		{user, Public, true}, {user, Application, false}, {user, User, true}, {user, Admin, false},
		{admin, Public, true}, {admin, Application, true}, {admin, User, true}, {admin, Admin, true},
	}
	for _, g := range grid {
		if g.c.Allows(g.p) != g.want {
			t.Errorf("%+v allows %s = %v", g.c, g.p, !g.want)
		}
	}
}

func TestMFAPermission(t *testing.T) {
	p, err := ParsePermission("MFA")
	if err != nil || p != UserMFA || p.String() != "mfa" {
		t.Fatalf("%v %v", p, err)
	}
	// More restrictive than user, less than admin: min() picks it over user when both apply.
	if !(Admin < UserMFA && UserMFA < User) {
		t.Fatal("order")
	}
	plain := &Caller{Level: Authenticated, Claims: &token.Claims{UID: "custom:1", AMR: []string{"pwd"}}}
	multi := &Caller{Level: Authenticated, Claims: &token.Claims{UID: "custom:1", AMR: []string{"pwd", "otp", "mfa"}}}
	anon := &Caller{AppKey: true}
	admin := &Caller{Level: AdminLevel}
	switch {
	case plain.Allows(UserMFA) || !plain.NeedsMFA(UserMFA) || plain.NeedsMFA(User):
		t.Fatal("password-only token")
	case !multi.Allows(UserMFA) || multi.NeedsMFA(UserMFA) || !multi.Allows(User):
		t.Fatal("multi-factor token")
	case anon.Allows(UserMFA) || anon.NeedsMFA(UserMFA):
		t.Fatal("no token: a plain 401, not the MFA message")
	case !admin.Allows(UserMFA) || admin.NeedsMFA(UserMFA):
		t.Fatal("master key")
	}
}
