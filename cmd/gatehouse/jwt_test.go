package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// freeAddr reserves a loopback port for a server whose public_url must name it (the issuer of its
// tokens, which go-oidc compares with the discovery URL).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func mintAdmin(t testing.TB, base, master, user string) (string, error) {
	req, _ := http.NewRequest("POST", base+"/admin/tokens", strings.NewReader(`{"userId":"`+user+`"}`))
	req.Header.Set("X-ZUMO-MASTER", master)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		Token string `json:"authenticationToken"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.Token == "" {
		return "", err
	}
	return out.Token, nil
}

func kidOf(t testing.TB, tok string) string {
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("not a JWS: %v", err)
	}
	return jws.Signatures[0].Protected.KeyID
}

// TestJWTTokensRotationUnderLoad: a single node (SQLite, keys.json) issuing jwt tokens. Discovery is
// valid for go-oidc; tokens verify with go-oidc's remote key set and on Gatehouse itself, next to
// HS256 app tokens; `keys rotate --which signing` twice while clients mint and verify continuously:
// not one token is rejected, and the new keys sign once their lead (tokens.jwks_max_age) has passed.
func TestJWTTokensRotationUnderLoad(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	public := "http://" + addr
	master := keys.Generate()
	env := map[string]string{
		"GATEHOUSE_PUBLIC_URL": public, "GATEHOUSE_TOKENS_FORMAT": "jwt", "GATEHOUSE_TOKENS_JWKS_MAX_AGE": "1s",
		"GATEHOUSE_TOKENS_AUDIENCE": "api://orders," + public, "MS_MasterKey": master,
	}
	base, stderr, _ := startServer(t, []string{"--data", data, "--listen", addr}, env)
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, base)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	verifier := p.Verifier(&oidc.Config{ClientID: "api://orders", SupportedSigningAlgs: []string{"ES256", "EdDSA"}})
	res, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=1" {
		t.Fatalf("Cache-Control %q", cc)
	}

	tok, err := mintAdmin(t, base, master, "custom:ann")
	if err != nil || strings.Count(tok, ".") != 2 {
		t.Fatalf("mint: %q %v (%s)", tok, err, stderr.String())
	}
	if _, err := verifier.Verify(ctx, tok); err != nil {
		t.Fatalf("go-oidc: %v", err)
	}
	if code, body := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": tok}); code != 200 || !strings.Contains(body, "custom:ann") {
		t.Fatalf("/.auth/me with a jwt: %d %s", code, body)
	}
	// The HS256 app token keeps working beside it.
	rc, zumo, errs := runCmd(t, map[string]string{"MS_MasterKey": master}, "token", "mint", "--user", "custom:bob", "--data", data)
	if rc != 0 {
		t.Fatalf("token mint: %s", errs)
	}
	if code, body := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": strings.TrimSpace(zumo)}); code != 200 {
		t.Fatalf("/.auth/me with an app token: %d %s", code, body)
	}

	first := kidOf(t, tok)
	var minted, rejected atomic.Int64
	kids := sync.Map{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, err := mintAdmin(t, base, master, "custom:load")
				if err != nil {
					rejected.Add(1)
					continue
				}
				minted.Add(1)
				kids.Store(kidOf(t, tok), true)
				if _, err := verifier.Verify(ctx, tok); err != nil {
					t.Errorf("go-oidc rejected a token: %v", err)
					rejected.Add(1)
				}
				if code, _ := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": tok}); code != 200 {
					t.Errorf("gatehouse rejected its own token: %d", code)
					rejected.Add(1)
				}
			}
		}()
	}
	for i := range 2 {
		time.Sleep(500 * time.Millisecond)
		if rc, out, errs := runCmd(t, env, "keys", "rotate", "--which", "signing", "--data", data); rc != 0 {
			close(stop)
			wg.Wait()
			t.Fatalf("rotate %d: %s %s", i, out, errs)
		}
		// The lead (1s) plus the server's reload of keys.json (2s ticks).
		time.Sleep(3500 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	n := 0
	kids.Range(func(any, any) bool { n++; return true })
	t.Logf("%d tokens minted and verified across %d keys, %d rejected", minted.Load(), n, rejected.Load())
	if rejected.Load() != 0 || n < 3 {
		t.Fatalf("%d rejected, %d signing keys seen (want 3)", rejected.Load(), n)
	}
	if _, ok := kids.Load(first); !ok {
		t.Fatal("the first key never signed under load")
	}
	// The first token is still valid: its retired key stays published until it expires.
	if _, err := verifier.Verify(ctx, tok); err != nil {
		t.Fatalf("a token of the retired key: %v", err)
	}
}

// TestJWTNeedsKEKOnPostgres: without a key-encryption key each instance would sign with keys of its
// own data directory, which other instances could not verify: refused at start.
func TestJWTNeedsKEKOnPostgres(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	env := map[string]string{"MS_MasterKey": keys.Generate(), "MS_ApplicationKey": keys.Generate(), "MS_ApplicationSystemKey": keys.Generate(),
		"GATEHOUSE_PUBLIC_URL": "https://api.example.com", "GATEHOUSE_TOKENS_FORMAT": "jwt"}
	code, _, errs := runCmd(t, env, "serve", "--data", t.TempDir(), "--database", dsn, "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "tokens.format") || !strings.Contains(errs, "key_encryption_key") {
		t.Fatalf("jwt on PostgreSQL without a KEK: exit %d %q", code, errs)
	}
	// And without public_url there is no issuer.
	delete(env, "GATEHOUSE_PUBLIC_URL")
	code, _, errs = runCmd(t, env, "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errs, "public_url") {
		t.Fatalf("jwt without public_url: exit %d %q", code, errs)
	}
}
