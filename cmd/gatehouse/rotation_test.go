package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/user"
)

// TestRevokedKeyFlowCookieRunningServer (issue 10 finding 10) against a running server: a flow cookie
// forged with the first master key opens while that key is merely retired, and is refused once
// `gatehouse keys rotate --revoke-previous` has been picked up by the server's key reload: the
// login-flow sealer follows the same reload as token verification.
func TestRevokedKeyFlowCookieRunningServer(t *testing.T) {
	data := t.TempDir()
	const public = "https://gh.example"
	env := map[string]string{
		"GATEHOUSE_PUBLIC_URL":              public,
		"GATEHOUSE_OIDC_PROVIDERS":          "acme",
		"GATEHOUSE_OIDC_ACME_ISSUER":        "https://idp.invalid",
		"GATEHOUSE_OIDC_ACME_CLIENT_ID":     "acme-client",
		"GATEHOUSE_OIDC_ACME_CLIENT_SECRET": "acme-secret",
	}
	base, stderr, _ := startServer(t, []string{"--data", data}, env)
	m := regexp.MustCompile(`master key \(X-ZUMO-MASTER\):\s+(\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no key banner: %s", stderr.String())
	}
	first := m[1]

	n := 0
	forge := func(key string) *http.Cookie {
		n++
		st := map[string]any{"p": "acme", "s": fmt.Sprintf("forged-state-%d", n), "n": "nonce", "v": "verifier",
			"ru": public + "/.auth/login/acme/callback", "e": time.Now().Add(5 * time.Minute).Unix()}
		b, _ := json.Marshal(st)
		s, err := user.NewSealer("login flow", key)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Seal(b, []byte("login-flow\x001\x00acme"))
		if err != nil {
			t.Fatal(err)
		}
		return &http.Cookie{Name: "wams_state", Value: v}
	}
	callback := func(c *http.Cookie) string {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/.auth/login/acme/callback?code=c&state=forged-state-%d", base, n), nil)
		req.AddCookie(c)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc := res.Header.Get("Location")
		frag, ok := strings.CutPrefix(loc, public+"/.auth/login/done#error=")
		if res.StatusCode != http.StatusFound || !ok {
			t.Fatalf("callback: %d %q", res.StatusCode, loc)
		}
		msg, _ := url.PathUnescape(frag)
		return msg
	}
	const invalid = "Redirect from acme does not contain a valid wams_state cookie."
	waitReload := func(count int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for strings.Count(stderr.String(), "keys reloaded") < count {
			if time.Now().After(deadline) {
				t.Fatalf("server did not reload keys: %s", stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Under the current key the cookie opens (the flow then fails at the unreachable provider).
	if msg := callback(forge(first)); msg == invalid {
		t.Fatalf("cookie under the current key refused: %s", msg)
	}
	if rc, out, errs := runCmd(t, nil, "keys", "rotate", "--data", data); rc != 0 {
		t.Fatalf("rotate: %d %s %s", rc, out, errs)
	}
	waitReload(1)
	if msg := callback(forge(first)); msg == invalid {
		t.Fatalf("cookie under the retired key refused before revocation: %s", msg)
	}
	if rc, out, errs := runCmd(t, nil, "keys", "rotate", "--revoke-previous", "--data", data); rc != 0 {
		t.Fatalf("rotate --revoke-previous: %d %s %s", rc, out, errs)
	}
	waitReload(2)
	if msg := callback(forge(first)); msg != invalid {
		t.Fatalf("cookie forged with the revoked key: %q", msg)
	}
}
