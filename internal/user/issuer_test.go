package user_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/user"
)

func TestCanonicalIssuer(t *testing.T) {
	for in, want := range map[string]string{
		"accounts.google.com":                         "https://accounts.google.com",
		"https://accounts.google.com":                 "https://accounts.google.com",
		"https://accounts.google.com/":                "https://accounts.google.com",
		"HTTPS://Accounts.Google.COM":                 "https://accounts.google.com",
		"https://accounts.google.com:443":             "https://accounts.google.com",
		"https://idp.example/tenant/v2.0/":            "https://idp.example/tenant/v2.0",
		"https://idp.example/Tenant":                  "https://idp.example/Tenant",
		"https://sts.windows.net/72f988bf-86f1-41af/": "https://sts.windows.net/72f988bf-86f1-41af",
		"http://127.0.0.1:8080/":                      "http://127.0.0.1:8080",
		"urn:gatehouse:accounts":                      "urn:gatehouse:accounts",
		"urn:windows:liveid":                          "urn:windows:liveid",
		"not an issuer":                               "not an issuer",
		"localhost":                                   "localhost",
	} {
		if got := user.CanonicalIssuer(in); got != want {
			t.Errorf("CanonicalIssuer(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestIssuerFormsOneIdentity (issue 10 finding 8): the same sub under Google's two issuer forms is one
// identity of one user (so the same rows), and an identity stored under the legacy form before this
// fix is moved to the canonical form, keeping its user, instead of creating a second user.
func TestIssuerFormsOneIdentity(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		d, _ := newDir(t, db, false)
		a, err := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "https://accounts.google.com", Subject: "1001"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "accounts.google.com", Subject: "1001"})
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != b.ID || a.ID != "Google:1001" {
			t.Fatalf("two users for one sub: %s and %s", a.ID, b.ID)
		}
		ids, _ := d.Identities(ctx, a.ID)
		if len(ids) != 1 || ids[0].Issuer != "https://accounts.google.com" {
			t.Fatalf("identities %+v", ids)
		}

		// A row stored under the legacy spelling by an earlier version.
		for _, q := range []string{
			`INSERT INTO gatehouse_users (id, provider, disabled, created_at, updated_at, last_login_at) VALUES ('Google:2002', 'Google', 0, 1, 1, 1)`,
			`INSERT INTO gatehouse_identities (issuer, subject, provider, user_id, claims, tokens, created_at, updated_at) VALUES ('accounts.google.com', '2002', 'Google', 'Google:2002', '{}', '', 1, 1)`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		u, err := d.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "https://accounts.google.com", Subject: "2002"})
		if err != nil || u.ID != "Google:2002" {
			t.Fatalf("legacy row: %+v %v", u, err)
		}
		var n int
		var iss string
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(issuer) FROM gatehouse_identities WHERE subject = '2002'`).Scan(&n, &iss); err != nil || n != 1 || iss != "https://accounts.google.com" {
			t.Fatalf("rows %d issuer %q %v", n, iss, err)
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM gatehouse_users`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("users %d %v", n, err)
		}
		// Generic OIDC trailing slash: one identity.
		x, _ := d.Login(ctx, user.LinkInput{Provider: "acme", Issuer: "https://idp.example/", Subject: "s"})
		y, _ := d.Login(ctx, user.LinkInput{Provider: "acme", Issuer: "https://idp.example", Subject: "s"})
		if x == nil || y == nil || x.ID != y.ID {
			t.Fatalf("trailing slash: %+v %+v", x, y)
		}
	})
}

// FuzzCanonicalIssuer: the canonical form is a fixed point, so an identity is stored under exactly one
// spelling whatever form its issuer arrives in.
func FuzzCanonicalIssuer(f *testing.F) {
	for _, s := range []string{"accounts.google.com", "https://accounts.google.com/", "HTTPS://A.B:443//", "urn:x:y", "http://h:80/p/", "a.b/c/", "https://h/%2F/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := user.CanonicalIssuer(s)
		if again := user.CanonicalIssuer(c); again != c {
			t.Fatalf("%q → %q → %q", s, c, again)
		}
	})
}
