package login_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/token"
	"github.com/gatehouse/gatehouse/internal/user"
)

const newMasterKey = "rotated-master-key-0123456789abcd"

var v2CookieAD = []byte("login-flow\x001\x00acme")

// reseal opens a flow cookie with the key it was sealed with, lets mod change its content, and seals
// it again with another key: what someone holding that key can forge.
func reseal(t *testing.T, c *http.Cookie, openKey, sealKey string, mod func(map[string]any)) *http.Cookie {
	t.Helper()
	opener, _ := user.NewSealer("login flow", openKey)
	b, err := opener.Open(c.Value, v2CookieAD)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(st)
	}
	b, _ = json.Marshal(st)
	sealer, _ := user.NewSealer("login flow", sealKey)
	v, err := sealer.Seal(b, v2CookieAD)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: c.Name, Value: v}
}

func rotateTo(t *testing.T, a *auth.Authenticator, current string, previous ...token.Key) {
	t.Helper()
	if err := a.SetSecrets(auth.Secrets{MasterKey: current, ApplicationKey: "app-key-0123456789abcdef", SystemKey: "sys-key-0123456789abcdef", Previous: previous}); err != nil {
		t.Fatal(err)
	}
}

// TestFlowCookieFollowsKeyRotation (issue 10 finding 10): the flow sealer takes its keys from the
// authenticator at every use. After a rotation the retired key still opens cookies (flows in
// progress survive); after --revoke-previous (the retired key gone from the key set, as watchKeys
// applies it to a running server) a cookie forged with it is refused and no token is minted.
func TestFlowCookieFollowsKeyRotation(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, setup{})
	done := publicURL + "/.auth/login/done"

	rotateTo(t, e.authn, newMasterKey, token.Key{Secret: masterKey, RetiredAt: e.clock.Now()})
	f := e.begin("/.auth/login", "")
	if _, err := (func() ([]byte, error) {
		s, _ := user.NewSealer("login flow", masterKey)
		return s.Open(f.cookie.Value, v2CookieAD)
	})(); err == nil {
		t.Fatal("after rotation the flow cookie is still sealed with the retired key")
	}
	r := e.do("GET", f.callback, cookieHeader(f.cookie), "")
	if kind, val := fragment(t, r.header.Get("Location"), done); kind != "token" {
		t.Fatalf("cookie under the new key: %s=%s", kind, val)
	}

	// Sealed with the retired key while it is still in the key set: accepted.
	f = e.begin("/.auth/login", "")
	r = e.do("GET", f.callback, cookieHeader(reseal(t, f.cookie, newMasterKey, masterKey, nil)), "")
	if kind, val := fragment(t, r.header.Get("Location"), done); kind != "token" {
		t.Fatalf("cookie under the retired key: %s=%s", kind, val)
	}

	// Revoked: the same forgery is refused.
	rotateTo(t, e.authn, newMasterKey)
	f = e.begin("/.auth/login", "")
	r = e.do("GET", f.callback, cookieHeader(reseal(t, f.cookie, newMasterKey, masterKey, nil)), "")
	kind, val := fragment(t, r.header.Get("Location"), done)
	if kind != "error" || val != "Redirect from acme does not contain a valid wams_state cookie." {
		t.Fatalf("cookie under the revoked key: %s=%s", kind, val)
	}
}

// TestFlowCookieRetiredKeyExpires: a retired key opens flow cookies only as long as a cookie it
// sealed can live, even before it is revoked.
func TestFlowCookieRetiredKeyExpires(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, setup{})
	rotateTo(t, e.authn, newMasterKey, token.Key{Secret: masterKey, RetiredAt: e.clock.Now().Add(-12 * time.Minute)})
	f := e.begin("/.auth/login", "")
	r := e.do("GET", f.callback, cookieHeader(reseal(t, f.cookie, newMasterKey, masterKey, nil)), "")
	if kind, val := fragment(t, r.header.Get("Location"), publicURL+"/.auth/login/done"); kind != "error" || !strings.Contains(val, "valid wams_state cookie") {
		t.Fatalf("cookie under a key retired 12 minutes ago: %s=%s", kind, val)
	}
}

// TestRedirectTargetRecheckedAtCompletion (issue 10 finding 10): a flow cookie whose final redirect
// target is not on the allowlist at completion (forged with a leaked key, or the allowlist changed)
// never sends a token there: the flow ends at the done page with an error, before the code is redeemed.
func TestRedirectTargetRecheckedAtCompletion(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, setup{})
	for _, evil := range []string{"https://evil.example/steal", "myapp://easyauth.callback.evil.example", "//evil.example/x"} {
		f := e.begin("/.auth/login", "?post_login_redirect_url="+url.QueryEscape("myapp://easyauth.callback"))
		forged := reseal(t, f.cookie, masterKey, masterKey, func(st map[string]any) { st["r"] = evil })
		tokensBefore := e.op.TokenCalls.Load()
		r := e.do("GET", f.callback, cookieHeader(forged), "")
		loc := r.header.Get("Location")
		if r.status != http.StatusFound || strings.Contains(loc, "evil") || strings.Contains(loc, "token=") {
			t.Fatalf("%s: %d %q", evil, r.status, loc)
		}
		if kind, val := fragment(t, loc, publicURL+"/.auth/login/done"); kind != "error" || !strings.Contains(val, "not an allowed redirect URL") {
			t.Fatalf("%s: %s=%s", evil, kind, val)
		}
		if e.op.TokenCalls.Load() != tokensBefore {
			t.Fatalf("%s: the code was redeemed", evil)
		}
	}
	// Control: the same flow with the untouched cookie completes to the allowlisted target.
	f := e.begin("/.auth/login", "?post_login_redirect_url="+url.QueryEscape("myapp://easyauth.callback"))
	if loc := e.do("GET", f.callback, cookieHeader(f.cookie), "").header.Get("Location"); !strings.HasPrefix(loc, "myapp://easyauth.callback#token=") {
		t.Fatalf("control: %q", loc)
	}
}
