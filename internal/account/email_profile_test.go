package account_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestEmailProfileEverywhere (issue 10 finding 17): addresses with invisible or formatting
// characters are refused (400) at registration and by the admin API, and refused at login and reset
// without revealing anything; fullwidth and mixed-case forms are the same account as the plain
// address, everywhere an email enters.
func TestEmailProfileEverywhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{})
		mk := []string{"X-ZUMO-MASTER", masterKey}
		pw := "correct horse battery"
		if r := e.do("POST", "/login/custom/register", js(map[string]string{"email": "ann@example.com", "password": pw})); r.status != http.StatusAccepted {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
		e.smtp.Wait(t)
		bad := []string{"a\u200Bnn@example.com", "ann@exa\u200Bmple.com", "a\u00ADnn@example.com", "\u202Eann@example.com", "ann@example.com\u2060"}
		for _, addr := range bad {
			if r := e.do("POST", "/login/custom/register", js(map[string]string{"email": addr, "password": pw})); r.status != http.StatusBadRequest || !strings.Contains(r.body, "email") {
				t.Errorf("register %q: %d %s", addr, r.status, r.body)
			}
			if r := e.do("POST", "/admin/accounts", js(map[string]any{"email": addr, "password": pw, "emailVerified": true}), mk...); r.status != http.StatusBadRequest {
				t.Errorf("admin add %q: %d %s", addr, r.status, r.body)
			}
			if r := e.do("POST", "/login/custom", js(map[string]string{"email": addr, "password": pw})); r.status == http.StatusOK {
				t.Errorf("login %q succeeded", addr)
			}
		}
		// Same account: fullwidth, upper case, Unicode domain forms.
		for _, addr := range []string{"ａｎｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ANN@EXAMPLE.COM", "Ann@Example.com"} {
			second := e.do("POST", "/login/custom/register", js(map[string]string{"email": addr, "password": "another password 1"}))
			if second.status != http.StatusAccepted {
				t.Fatalf("register %q: %d %s", addr, second.status, second.body)
			}
			if m := e.smtp.Wait(t); !strings.Contains(m.Subject, "Sign-up attempt") || m.To[0] != "ann@example.com" {
				t.Fatalf("%q is not the existing account: %q to %v", addr, m.Subject, m.To)
			}
		}
		r := e.do("GET", "/admin/accounts", "", mk...)
		if r.status != 200 || len(r.json["accounts"].([]any)) != 1 {
			t.Fatalf("accounts: %d %s", r.status, r.body)
		}
		if r := e.do("GET", "/admin/accounts/"+"ＡＮＮ＠example.com", "", mk...); r.status != 200 {
			t.Fatalf("admin lookup by fullwidth form: %d %s", r.status, r.body)
		}
	})
}
