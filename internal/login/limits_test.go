package login_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestIdentityFieldLimits (issue 10 finding 15): a valid ID token whose sub is over 255 bytes was a
// 500; it is a 401 with a clear message in both route families. Over-long or non-scalar profile
// claims (name, email) are dropped, never a 500.
func TestIdentityFieldLimits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, setup{})
		long := strings.Repeat("s", 256)
		for _, prefix := range []string{"/login", "/.auth/login"} {
			r := e.do("POST", prefix+"/mobileonly", nil, `{"id_token":"`+e.op.IDToken("acme-client", "", map[string]any{"sub": long})+`"}`)
			msg, _ := r.json(t)["error"].(string)
			if r.status != 401 || !strings.Contains(msg, "subject (sub) is longer than 255 bytes") {
				t.Fatalf("%s: %d %s", prefix, r.status, r.body)
			}
		}
		// 255 bytes is fine.
		if r := e.do("POST", "/.auth/login/mobileonly", nil, `{"id_token":"`+e.op.IDToken("acme-client", "", map[string]any{"sub": long[:255]})+`"}`); r.status != 200 {
			t.Fatalf("255-byte sub: %d %s", r.status, r.body)
		}
		huge := strings.Repeat("n", 600)
		tok := e.op.IDToken("acme-client", "", map[string]any{"sub": "limits-1", "name": huge, "given_name": huge, "family_name": huge,
			"preferred_username": huge, "picture": huge, "locale": huge, "email": strings.Repeat("e", 300) + "@example.com",
			"hd": map[string]any{"nested": strings.Repeat("x", 900)}})
		r := e.do("POST", "/.auth/login/mobileonly", nil, `{"id_token":"`+tok+`"}`)
		if r.status != 200 {
			t.Fatalf("over-long profile claims: %d %s", r.status, r.body)
		}
		ids, err := e.dir.Identities(t.Context(), "mobileonly:limits-1")
		if err != nil || len(ids) != 1 {
			t.Fatalf("identities %v %v", ids, err)
		}
		for _, k := range []string{"name", "email", "hd"} {
			if _, ok := ids[0].Claims[k]; ok {
				t.Errorf("claim %s kept: %.40v", k, ids[0].Claims[k])
			}
		}
	})
}

// TestClientFlowCodeNeedsVerifier (issue 10 finding 13) over HTTP: an authorization_code without its
// PKCE verifier is refused with 401 on both route families, before the provider is asked.
func TestClientFlowCodeNeedsVerifier(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, setup{})
	before := e.op.TokenCalls.Load()
	for _, prefix := range []string{"/login", "/.auth/login"} {
		r := e.do("POST", prefix+"/acme", nil, `{"authorization_code":"stolen-code","redirect_uri":"com.example.app:/cb"}`)
		msg, _ := r.json(t)["error"].(string)
		if r.status != 401 || !strings.Contains(msg, "code_verifier") {
			t.Fatalf("%s: %d %s", prefix, r.status, r.body)
		}
	}
	if e.op.TokenCalls.Load() != before {
		t.Fatal("the code was sent to the token endpoint")
	}
}
