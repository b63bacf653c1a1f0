package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

func kidOf(t testing.TB, tok string) string {
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Errorf("not a JWS %q: %v", tok, err)
		return ""
	}
	return jws.Signatures[0].Protected.KeyID
}

// TestClusterJWKSRotation: three instances on one PostgreSQL database behind a round-robin proxy
// (their public_url, hence the tokens' issuer) issue jwt tokens. Tokens minted by any instance verify
// on every instance and with go-oidc's remote key set through the proxy; a signing-key rotation
// started from the CLI is published by every instance within a second and signs on all of them once
// its lead has passed, while traffic runs: not one token is rejected.
func TestClusterJWKSRotation(t *testing.T) {
	alone(t)
	var nodes []*Gatehouse
	var next atomic.Int64
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := nodes[int(next.Add(1))%len(nodes)]
		u, _ := url.Parse(g.URL)
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	defer lb.Close()
	const lead = 2 * time.Second
	c := startClusterWith(t, 3, map[string]string{
		"GATEHOUSE_PUBLIC_URL": lb.URL, "GATEHOUSE_TOKENS_FORMAT": "jwt", "GATEHOUSE_TOKENS_ALGORITHM": "EdDSA",
		"GATEHOUSE_TOKENS_JWKS_MAX_AGE": lead.String(), "GATEHOUSE_KEY_RING_POLL_INTERVAL": "200ms",
	})
	nodes = c.nodes
	code, out, errs := c.cli(t, nil, "keys", "show", "--master")
	m := masterLine.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("keys show: %d %s %s", code, out, errs)
	}
	master := m[1]
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, lb.URL)
	if err != nil {
		t.Fatalf("discovery through the proxy: %v", err)
	}
	verifier := p.Verifier(&oidc.Config{ClientID: lb.URL, SupportedSigningAlgs: []string{"EdDSA"}})

	verifyAll := func(tok string) error {
		if _, err := verifier.Verify(ctx, tok); err != nil {
			return err
		}
		for i, g := range c.nodes {
			code, _, err := call("GET", g.URL+"/.auth/me", map[string]string{"X-ZUMO-AUTH": tok}, nil)
			if err != nil || code != 200 {
				return &nodeError{i, code, err}
			}
		}
		return nil
	}
	var first []string
	for i, g := range c.nodes {
		tok, code, err := mint(g.URL, master, "custom:before")
		if err != nil || code != 200 {
			t.Fatalf("mint at node %d: %d %v", i, code, err)
		}
		if err := verifyAll(tok); err != nil {
			t.Fatalf("token of node %d: %v", i, err)
		}
		first = append(first, kidOf(t, tok))
	}
	if first[0] != first[1] || first[1] != first[2] {
		t.Fatalf("the instances sign with different keys: %v", first)
	}

	var minted, rejected atomic.Int64
	var kids sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, g := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, code, err := mint(g.URL, master, "custom:load")
				if err != nil || code != 200 {
					t.Errorf("mint at node %d: %d %v", i, code, err)
					rejected.Add(1)
					continue
				}
				minted.Add(1)
				kids.Store(kidOf(t, tok), true)
				if err := verifyAll(tok); err != nil {
					t.Errorf("token of node %d rejected: %v", i, err)
					rejected.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	code, out, errs = c.cli(t, map[string]string{"GATEHOUSE_TOKENS_ALGORITHM": "EdDSA", "GATEHOUSE_TOKENS_JWKS_MAX_AGE": lead.String()}, "keys", "rotate", "--which", "signing")
	if code != 0 {
		close(stop)
		wg.Wait()
		t.Fatalf("rotate: %d %s %s", code, out, errs)
	}
	kid := ""
	if f := strings.Fields(out[strings.Index(out, "signing key ")+len("signing key "):]); len(f) > 0 {
		kid = f[0]
	}
	published := waitAll(t, c.nodes, start, 5*time.Second, func(g *Gatehouse) bool {
		_, body := g.get(t, "/.well-known/jwks.json", nil)
		return kid != "" && strings.Contains(body, `"kid":"`+kid+`"`)
	})
	t.Logf("new key %s published by the instances after %v", kid, published)
	for i, d := range published {
		if d == 0 || d > 2*time.Second {
			t.Errorf("node %d published the new key after %v", i, d)
		}
	}
	deadline := time.Now().Add(lead + 5*time.Second)
	for {
		if _, ok := kids.Load(kid); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Error("the new key never signed")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d tokens minted across the rotation, %d rejected", minted.Load(), rejected.Load())
	if rejected.Load() != 0 {
		t.Fatalf("%d tokens rejected", rejected.Load())
	}
	// Every instance signs with the new key now, and a token of the retired key still verifies.
	for i, g := range c.nodes {
		tok, _, _ := mint(g.URL, master, "custom:after")
		if got := kidOf(t, tok); got != kid {
			t.Errorf("node %d signs with %s, not the new key %s", i, got, kid)
		}
	}
	// The admin API of any instance rotates too: it answers the new kid (never the private key), and
	// every instance publishes it.
	code, body, err := call("POST", c.nodes[2].URL+"/admin/keys/rotate", map[string]string{"X-ZUMO-MASTER": master}, map[string]any{"which": "signing"})
	if err != nil || code != 200 || strings.Contains(string(body), `"d":`) || strings.Contains(string(body), `"key":`) {
		t.Fatalf("admin rotation: %d %s %v", code, body, err)
	}
	var rot struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(body, &rot); err != nil || rot.KID == "" {
		t.Fatalf("admin rotation answer %s", body)
	}
	waitAll(t, c.nodes, time.Now(), 5*time.Second, func(g *Gatehouse) bool {
		_, body := g.get(t, "/.well-known/jwks.json", nil)
		return strings.Contains(body, `"kid":"`+rot.KID+`"`) && strings.Contains(body, `"kid":"`+kid+`"`)
	})
	if _, err := verifier.Verify(ctx, first0(t, c, master)); err != nil {
		t.Fatalf("a token after the second rotation: %v", err)
	}
}

// first0 mints a token at the first instance.
func first0(t *testing.T, c *cluster, master string) string {
	tok, code, err := mint(c.nodes[0].URL, master, "custom:later")
	if err != nil || code != 200 {
		t.Fatalf("mint: %d %v", code, err)
	}
	return tok
}

type nodeError struct {
	node, code int
	err        error
}

func (e *nodeError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return "node " + string(rune('0'+e.node)) + " answered " + http.StatusText(e.code)
}
