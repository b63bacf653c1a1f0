package provider_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/provider"
	"github.com/gatehouse/gatehouse/internal/provider/providertest"
	"github.com/gatehouse/gatehouse/internal/token"

	"golang.org/x/oauth2"
)

func deps(t *testing.T, op *providertest.OP) provider.Deps {
	d := provider.Deps{Run: t.Context(), HTTP: provider.HTTP{Timeout: 5 * time.Second}}
	if op != nil {
		d.HTTP.Client = op.Client()
	}
	return d
}

func kind(t *testing.T, err error, want provider.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want kind %d", want)
	}
	if got := provider.KindOf(err); got != want {
		t.Fatalf("kind %d (%v), want %d", got, err, want)
	}
}

func TestOAuth1SignatureVector(t *testing.T) {
	// The worked example of X/Twitter's "Creating a signature" documentation, on the fake's verifier.
	params := url.Values{
		"status":                 {"Hello Ladies + Gentlemen, a signed OAuth request!"},
		"include_entities":       {"true"},
		"oauth_consumer_key":     {"xvz1evFS4wEEPTGEFPHBog"},
		"oauth_nonce":            {"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"},
		"oauth_signature_method": {"HMAC-SHA1"},
		"oauth_timestamp":        {"1318622958"},
		"oauth_token":            {"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"},
		"oauth_version":          {"1.0"},
	}
	got := providertest.OAuth1Signature("POST", "https://api.twitter.com/1.1/statuses/update.json", params,
		"kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw", "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE")
	if got != "hCtSmYh+iHYCEqBWrE7C7hYmtUk=" {
		t.Fatalf("signature %s", got)
	}
}

func TestPKCE(t *testing.T) {
	// RFC 7636 Appendix B, on the x/oauth2 helpers the login flow uses.
	if c := oauth2.S256ChallengeFromVerifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); c != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatal(c)
	}
	if v := oauth2.GenerateVerifier(); len(v) != 43 || v == oauth2.GenerateVerifier() {
		t.Fatal(v)
	}
}

func generic(t *testing.T, op *providertest.OP, d provider.Deps) *provider.OIDC {
	p, err := provider.NewOIDC(provider.OIDCConfig{Name: "acme", Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret}, d)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func serverFlow(t *testing.T, op *providertest.OP, p provider.Provider, nonce string) (*provider.Identity, error) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	red, err := p.AuthCodeURL(context.Background(), provider.AuthRequest{State: "st", Nonce: nonce,
		CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), RedirectURI: "https://gh.example/login/acme"})
	if err != nil {
		t.Fatal(err)
	}
	cb, redirect, err := op.Authorize(red.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsCallback(cb) || cb.Get("state") != "st" {
		t.Fatalf("callback %v", cb)
	}
	return p.Exchange(context.Background(), provider.Callback{Params: cb, Verifier: verifier, Nonce: nonce, RedirectURI: redirect})
}

func TestGenericOIDCServerFlow(t *testing.T) {
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			op := providertest.NewOP(t, "client-1", "secret-1")
			op.Set(func(o *providertest.OP) {
				o.AuthMethod = method
				o.RequirePKCE = true
				o.Claims = map[string]any{"email": "u@example.com"}
			})
			p := generic(t, op, deps(t, op))
			id, err := serverFlow(t, op, p, "n-1")
			if err != nil {
				t.Fatal(err)
			}
			if id.Provider != "acme" || id.Issuer != op.Issuer || id.Subject != "op-user-1" || id.Claims["email"] != "u@example.com" ||
				id.AccessToken != "op-access-token" || id.RefreshToken != "op-refresh-token" {
				t.Fatalf("identity %+v", id)
			}
			q := op.LastAuthorize
			if q.Get("code_challenge_method") != "S256" || q.Get("nonce") != "n-1" || q.Get("scope") != "openid email profile" {
				t.Fatalf("authorize query %v", q)
			}
		})
	}
}

func TestGenericOIDCBadInput(t *testing.T) {
	op := providertest.NewOP(t, "client-1", "secret-1")
	p := generic(t, op, deps(t, op))
	ctx := context.Background()

	// Provider error parameters become a Denied error "<error>: <description>", bounded.
	_, err := p.Exchange(ctx, provider.Callback{Params: url.Values{"error": {"access_denied"}, "error_description": {"<b>no</b>" + strings.Repeat("x", 1000)}}})
	kind(t, err, provider.KindDenied)
	if !strings.HasPrefix(err.Error(), "access_denied: <b>no</b>") || len(err.Error()) > 420 {
		t.Fatalf("message %q", err.Error())
	}
	_, err = p.Exchange(ctx, provider.Callback{Params: url.Values{"state": {"x"}}})
	kind(t, err, provider.KindInvalid)

	// A wrong PKCE verifier, a replayed code, an ID token with another nonce.
	red, _ := p.AuthCodeURL(ctx, provider.AuthRequest{State: "s", Nonce: "n", CodeChallenge: oauth2.S256ChallengeFromVerifier("right-verifier-right-verifier-right-verif"), RedirectURI: "https://gh/cb"})
	cb, ru, _ := op.Authorize(red.URL)
	_, err = p.Exchange(ctx, provider.Callback{Params: cb, Verifier: "wrong-verifier-wrong-verifier-wrong-verif", Nonce: "n", RedirectURI: ru})
	kind(t, err, provider.KindRejected)
	_, err = p.Exchange(ctx, provider.Callback{Params: cb, Verifier: "right-verifier-right-verifier-right-verif", Nonce: "n", RedirectURI: ru})
	kind(t, err, provider.KindRejected) // the code was spent by the first attempt

	red, _ = p.AuthCodeURL(ctx, provider.AuthRequest{State: "s", Nonce: "n1", CodeChallenge: oauth2.S256ChallengeFromVerifier("v"), RedirectURI: "https://gh/cb"})
	cb, ru, _ = op.Authorize(red.URL)
	_, err = p.Exchange(ctx, provider.Callback{Params: cb, Verifier: "v", Nonce: "n2", RedirectURI: ru})
	kind(t, err, provider.KindRejected)
	if !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("message %q", err.Error())
	}

	// Client flow.
	good := op.IDToken("client-1", "", nil)
	id, err := p.ClientLogin(ctx, map[string]any{"id_token": good})
	if err != nil || id.Subject != "op-user-1" {
		t.Fatalf("client flow: %+v %v", id, err)
	}
	cases := map[string]map[string]any{
		"other client id": {"id_token": op.IDToken("client-2", "", nil)},
		"expired":         {"id_token": op.IDToken("client-1", "", map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()})},
		"other issuer":    {"id_token": op.IDToken("client-1", "", map[string]any{"iss": "https://evil.example"})},
		"nonce mismatch":  {"id_token": op.IDToken("client-1", "a", nil), "nonce": "b"},
		"garbage":         {"id_token": "a.b.c"},
		"forged":          {"id_token": good[:len(good)-4] + "AAAA"},
	}
	for name, body := range cases {
		_, err := p.ClientLogin(ctx, body)
		if provider.KindOf(err) != provider.KindRejected {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err = p.ClientLogin(ctx, map[string]any{"access_token": "x"})
	kind(t, err, provider.KindInvalid)
	if err.Error() != "The POST acme login request must contain an id_token in the body of the request." {
		t.Fatalf("message %q", err.Error())
	}
	if _, err := p.ClientLogin(ctx, map[string]any{"id_token": op.IDToken("client-1", "a", nil), "nonce": "a"}); err != nil {
		t.Fatalf("nonce match: %v", err)
	}

	// Authorization code from a native SDK (PKCE by the app).
	appVerifier := oauth2.GenerateVerifier()
	red, _ = p.AuthCodeURL(ctx, provider.AuthRequest{State: "s", CodeChallenge: oauth2.S256ChallengeFromVerifier(appVerifier), RedirectURI: "com.example.app:/cb"})
	cb, _, _ = op.Authorize(red.URL)
	id, err = p.ClientLogin(ctx, map[string]any{"authorization_code": cb.Get("code"), "code_verifier": appVerifier, "redirect_uri": "com.example.app:/cb"})
	if err != nil || id.Subject != "op-user-1" {
		t.Fatalf("code client flow: %+v %v", id, err)
	}
}

// TestClientFlowCodeNeedsVerifierAndNonce (issue 10 finding 13): an authorization code posted by an
// app is redeemed only with a well-formed PKCE verifier, and when the ID token it yields carries a
// nonce the request must carry the same nonce.
func TestClientFlowCodeNeedsVerifierAndNonce(t *testing.T) {
	ctx := context.Background()
	op := providertest.NewOP(t, "client-1", "secret-1")
	p := generic(t, op, deps(t, op))
	const redirect = "com.example.app:/cb"
	code := func(nonce, verifier string) string {
		red, err := p.AuthCodeURL(ctx, provider.AuthRequest{State: "s", Nonce: nonce, CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), RedirectURI: redirect})
		if err != nil {
			t.Fatal(err)
		}
		cb, _, err := op.Authorize(red.URL)
		if err != nil {
			t.Fatal(err)
		}
		return cb.Get("code")
	}
	v := oauth2.GenerateVerifier()
	calls := op.TokenCalls.Load()
	for name, body := range map[string]map[string]any{
		"no verifier":        {"authorization_code": code("", v), "redirect_uri": redirect},
		"empty verifier":     {"authorization_code": code("", v), "code_verifier": "", "redirect_uri": redirect},
		"short verifier":     {"authorization_code": code("", v), "code_verifier": "app-verifier", "redirect_uri": redirect},
		"verifier bad chars": {"authorization_code": code("", v), "code_verifier": strings.Repeat("a", 42) + "+", "redirect_uri": redirect},
		"verifier too long":  {"authorization_code": code("", v), "code_verifier": strings.Repeat("a", 129), "redirect_uri": redirect},
	} {
		_, err := p.ClientLogin(ctx, body)
		if provider.KindOf(err) != provider.KindInvalid || !strings.Contains(err.Error(), "code_verifier") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if op.TokenCalls.Load() != calls {
		t.Fatal("a code was redeemed without a valid verifier")
	}
	// Someone else's verifier: the provider refuses the code.
	if _, err := p.ClientLogin(ctx, map[string]any{"code": code("", v), "code_verifier": oauth2.GenerateVerifier(), "redirect_uri": redirect}); provider.KindOf(err) != provider.KindRejected {
		t.Fatalf("wrong verifier: %v", err)
	}
	// The ID token carries a nonce: the request must carry it too, and the same one.
	if _, err := p.ClientLogin(ctx, map[string]any{"code": code("n-123", v), "code_verifier": v, "redirect_uri": redirect}); provider.KindOf(err) != provider.KindRejected || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("nonce in the token, none in the request: %v", err)
	}
	if _, err := p.ClientLogin(ctx, map[string]any{"code": code("n-123", v), "code_verifier": v, "nonce": "n-999", "redirect_uri": redirect}); provider.KindOf(err) != provider.KindRejected {
		t.Fatalf("nonce mismatch: %v", err)
	}
	if id, err := p.ClientLogin(ctx, map[string]any{"code": code("n-123", v), "code_verifier": v, "nonce": "n-123", "redirect_uri": redirect}); err != nil || id.Subject != "op-user-1" {
		t.Fatalf("verifier and nonce: %+v %v", id, err)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestProviderDownOrSlow(t *testing.T) {
	ctx := context.Background()
	op := providertest.NewOP(t, "client-1", "secret-1")
	clk := &fakeClock{t: time.Now()}
	d := deps(t, op)
	d.Now = clk.Now
	p := generic(t, op, d)

	// Discovery down: Unavailable, retried only after a pause; then it recovers.
	op.Set(func(o *providertest.OP) { o.NoDiscovery = true })
	_, err := p.ClientLogin(ctx, map[string]any{"id_token": "x.y.z"})
	kind(t, err, provider.KindUnavailable)
	op.Set(func(o *providertest.OP) { o.NoDiscovery = false })
	_, err = p.ClientLogin(ctx, map[string]any{"id_token": "x.y.z"})
	kind(t, err, provider.KindUnavailable) // remembered failure
	clk.Add(6 * time.Second)
	if _, err := p.ClientLogin(ctx, map[string]any{"id_token": op.IDToken("client-1", "", nil)}); err != nil {
		t.Fatalf("after recovery: %v", err)
	}

	// Token endpoint failing or hanging: Unavailable, bounded by the call timeout.
	op.Set(func(o *providertest.OP) { o.TokenStatus = 503 })
	_, err = serverFlow(t, op, p, "n")
	kind(t, err, provider.KindRejected) // an OAuth error body: temporarily_unavailable
	op.Set(func(o *providertest.OP) { o.TokenStatus = 0; o.Hang = true })
	d2 := deps(t, op)
	d2.HTTP.Timeout = 50 * time.Millisecond
	p2 := generic(t, op, d2)
	_, err = serverFlow(t, op, p2, "n")
	kind(t, err, provider.KindUnavailable)

	// A discovery document for another issuer is refused.
	op2 := providertest.NewOP(t, "c", "s")
	op2.Set(func(o *providertest.OP) { o.Issuer = "https://someone-else.example" })
	p3, err := provider.NewOIDC(provider.OIDCConfig{Name: "x", Issuer: op2.URL(), ClientID: "c"}, deps(t, op2))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p3.ClientLogin(ctx, map[string]any{"id_token": "a.b.c"})
	kind(t, err, provider.KindUnavailable)

	if _, err := provider.NewOIDC(provider.OIDCConfig{Name: "x", Issuer: "http://idp.example", ClientID: "c"}, deps(t, nil)); err == nil {
		t.Fatal("plain-http issuer accepted")
	}
}

func TestGoogle(t *testing.T) {
	op := providertest.NewOP(t, "g-client", "g-secret")
	op.Set(func(o *providertest.OP) {
		o.AuthMethod = "client_secret_post"
		o.Issuer = "https://accounts.google.com"
	})
	g, err := provider.NewGoogle(provider.GoogleConfig{ClientID: "g-client", ClientSecret: "g-secret", ExtraClientIDs: []string{"android-client"},
		AccessType: "offline", AuthURL: op.URL() + "/authorize", TokenURL: op.URL() + "/token", JWKSURL: op.URL() + "/jwks"}, deps(t, op))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, iss := range []string{"https://accounts.google.com", "accounts.google.com"} {
		id, err := g.ClientLogin(ctx, map[string]any{"id_token": op.IDToken("g-client", "", map[string]any{"iss": iss})})
		if err != nil || id.Provider != "Google" || id.Subject != "op-user-1" {
			t.Fatalf("%s: %+v %v", iss, id, err)
		}
		// One issuer for identities whichever form the token used (issue 10 finding 8).
		if id.Issuer != "https://accounts.google.com" {
			t.Fatalf("%s: identity issuer %q", iss, id.Issuer)
		}
	}
	if _, err := g.ClientLogin(ctx, map[string]any{"id_token": op.IDToken("android-client", "", nil)}); err != nil {
		t.Fatalf("mobile client id: %v", err)
	}
	_, err = g.ClientLogin(ctx, map[string]any{})
	if err == nil || err.Error() != "The POST Google login request must contain an id_token in the body of the request." {
		t.Fatalf("%v", err)
	}
	id, err := serverFlow(t, op, g, "nn")
	if err != nil || id.Subject != "op-user-1" {
		t.Fatalf("server flow %+v %v", id, err)
	}
	if op.LastAuthorize.Get("access_type") != "offline" {
		t.Fatalf("%v", op.LastAuthorize)
	}
}

func TestMicrosoft(t *testing.T) {
	ctx := context.Background()
	const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	const other = "11111111-2222-3333-4444-555555555555"
	op := providertest.NewOP(t, "ms-client", "ms-secret")
	op.Set(func(o *providertest.OP) {
		o.AuthMethod = "client_secret_post"
		o.TenantIssuers["contoso.com"] = o.URL() + "/" + tid + "/v2.0"
	})
	if _, err := provider.NewAAD(provider.MicrosoftConfig{ClientID: "ms-client"}, deps(t, op)); err == nil {
		t.Fatal("aad without tenants accepted")
	}
	aad, err := provider.NewAAD(provider.MicrosoftConfig{ClientID: "ms-client", ClientSecret: "ms-secret", Tenants: []string{"contoso.com"}, Authority: op.URL()}, deps(t, op))
	if err != nil {
		t.Fatal(err)
	}
	tok := op.IDToken("ms-client", "", map[string]any{"iss": op.URL() + "/" + tid + "/v2.0", "tid": tid})
	id, err := aad.ClientLogin(ctx, map[string]any{"id_token": tok})
	if err != nil || id.Provider != "Aad" || id.Claims["tid"] != tid {
		t.Fatalf("aad: %+v %v", id, err)
	}
	if _, err := aad.ClientLogin(ctx, map[string]any{"access_token": tok}); err != nil {
		t.Fatalf("aad access_token: %v", err)
	}
	bad := op.IDToken("ms-client", "", map[string]any{"iss": op.URL() + "/" + other + "/v2.0", "tid": other})
	_, err = aad.ClientLogin(ctx, map[string]any{"id_token": bad})
	kind(t, err, provider.KindRejected)
	red, err := aad.AuthCodeURL(ctx, provider.AuthRequest{State: "s", Nonce: "n", CodeChallenge: "c", RedirectURI: "https://gh/login/aad"})
	if err != nil || !strings.HasPrefix(red.URL, op.URL()+"/contoso.com/oauth2/v2.0/authorize?") {
		t.Fatalf("%v %v", red, err)
	}

	// Personal accounts: the consumer tenant's issuer, and the legacy Live token.
	msa, err := provider.NewMicrosoftAccount(provider.MicrosoftConfig{ClientID: "ms-client", ClientSecret: "live-secret-0123456789", Authority: op.URL()}, deps(t, op))
	if err != nil {
		t.Fatal(err)
	}
	tok = op.IDToken("ms-client", "", map[string]any{"iss": op.URL() + "/" + provider.ConsumerTenant + "/v2.0"})
	if id, err := msa.ClientLogin(ctx, map[string]any{"id_token": tok}); err != nil || id.Provider != "MicrosoftAccount" {
		t.Fatalf("msa: %+v %v", id, err)
	}
	live, _ := token.Mint("live-secret-0123456789", token.Claims{Exp: time.Now().Add(time.Hour).Unix(), Iss: "urn:windows:liveid", Ver: 1, UID: "abcdef0123"})
	id, err = msa.ClientLogin(ctx, map[string]any{"authenticationToken": live})
	if err != nil || id.Subject != "abcdef0123" || id.Issuer != provider.LiveIssuer {
		t.Fatalf("live: %+v %v", id, err)
	}
	forged, _ := token.Mint("another-secret-0123456789", token.Claims{Exp: time.Now().Add(time.Hour).Unix(), UID: "x"})
	_, err = msa.ClientLogin(ctx, map[string]any{"authenticationToken": forged})
	kind(t, err, provider.KindRejected)
	_, err = msa.ClientLogin(ctx, map[string]any{})
	if err == nil || err.Error() != "The POST Microsoft Account login request must specify the authentication token in the body of the request." {
		t.Fatal(err)
	}
}

func TestApple(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	p8 := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))

	// The client secret: ES256, kid, iss = team, sub = client, aud = Apple.
	now := time.Unix(1_800_000_000, 0)
	cs, err := provider.AppleClientSecret(key, "TEAM123456", "KEY1234567", "com.example.web", "https://appleid.apple.com", now)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(cs, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if jws.Signatures[0].Header.KeyID != "KEY1234567" {
		t.Fatal("kid")
	}
	payload, err := jws.Verify(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c) //nolint:errcheck
	if c["iss"] != "TEAM123456" || c["sub"] != "com.example.web" || c["aud"] != "https://appleid.apple.com" || c["exp"].(float64)-c["iat"].(float64) != 300 {
		t.Fatalf("claims %v", c)
	}

	// The server flow against a fake Apple: form_post, no PKCE, the secret JWT as client_secret.
	op := providertest.NewOP(t, "com.example.web", "")
	op.Set(func(o *providertest.OP) { o.AuthMethod = "client_secret_post"; o.Issuer = "https://appleid.apple.com" })
	a, err := provider.NewApple(provider.AppleConfig{ClientID: "com.example.web", ExtraClientIDs: []string{"com.example.app"}, TeamID: "TEAM123456", KeyID: "KEY1234567",
		PrivateKey: p8, AuthURL: op.URL() + "/authorize", TokenURL: op.URL() + "/token", JWKSURL: op.URL() + "/jwks"}, deps(t, op))
	if err != nil {
		t.Fatal(err)
	}
	red, err := a.AuthCodeURL(ctx, provider.AuthRequest{State: "s", Nonce: "n", CodeChallenge: "ignored", RedirectURI: "https://gh/login/apple"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(red.URL)
	if q := u.Query(); q.Get("response_mode") != "form_post" || q.Has("code_challenge") || q.Get("scope") != "name email" {
		t.Fatalf("authorize %v", q)
	}
	// Client flow with a code (issue 10 finding 13): Apple has no PKCE, so the nonce is required.
	cb, _, err := op.Authorize(red.URL)
	if err != nil {
		t.Fatal(err)
	}
	calls := op.TokenCalls.Load()
	if _, err := a.ClientLogin(ctx, map[string]any{"authorization_code": cb.Get("code"), "redirect_uri": "https://gh/login/apple"}); provider.KindOf(err) != provider.KindInvalid || !strings.Contains(err.Error(), "nonce") {
		t.Fatalf("Apple code without nonce: %v", err)
	}
	if op.TokenCalls.Load() != calls {
		t.Fatal("Apple code redeemed without a nonce")
	}
	if _, err := provider.NewApple(provider.AppleConfig{ClientID: "x", PrivateKey: "not pem", TeamID: "t", KeyID: "k"}, deps(t, op)); err == nil {
		t.Fatal("bad key accepted")
	}

	// Client flow from the iOS SDK: the token's nonce is the SHA-256 of the app's nonce.
	h := sha256.Sum256([]byte("raw-nonce"))
	tok := op.IDToken("com.example.app", hex.EncodeToString(h[:]), map[string]any{"email": "x@privaterelay.appleid.com"})
	id, err := a.ClientLogin(ctx, map[string]any{"id_token": tok, "nonce": "raw-nonce"})
	if err != nil || id.Provider != "Apple" || id.Claims["email"] != "x@privaterelay.appleid.com" {
		t.Fatalf("client flow %+v %v", id, err)
	}
	_, err = a.ClientLogin(ctx, map[string]any{"id_token": tok, "nonce": "other"})
	kind(t, err, provider.KindRejected)
}

func TestAppleServerFlow(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	p8 := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	op := providertest.NewOP(t, "com.example.web", "")
	op.Set(func(o *providertest.OP) {
		o.AuthMethod = "client_secret_post"
		o.Issuer = "https://appleid.apple.com"
		// As Apple: the secret must be an ES256 JWT by the team's key, for this client.
		o.CheckSecret = func(s string) bool {
			jws, err := jose.ParseSignedCompact(s, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				return false
			}
			b, err := jws.Verify(&key.PublicKey)
			var c map[string]any
			return err == nil && json.Unmarshal(b, &c) == nil && c["sub"] == "com.example.web" && c["iss"] == "TEAM"
		}
	})
	a, err := provider.NewApple(provider.AppleConfig{ClientID: "com.example.web", TeamID: "TEAM", KeyID: "KID", PrivateKey: p8,
		AuthURL: op.URL() + "/authorize", TokenURL: op.URL() + "/token", JWKSURL: op.URL() + "/jwks"}, deps(t, op))
	if err != nil {
		t.Fatal(err)
	}
	red, _ := a.AuthCodeURL(ctx, provider.AuthRequest{State: "s", Nonce: "n", RedirectURI: "https://gh/login/apple"})
	cb, ru, err := op.Authorize(red.URL)
	if err != nil {
		t.Fatal(err)
	}
	cb.Set("user", `{"name":{"firstName":"Ada","lastName":"Lovelace"},"email":"ada@example.com"}`)
	id, err := a.Exchange(ctx, provider.Callback{Params: cb, Nonce: "n", RedirectURI: ru})
	if err != nil || id.Provider != "Apple" || id.Claims["given_name"] != "Ada" || id.Claims["family_name"] != "Lovelace" {
		t.Fatalf("%+v %v", id, err)
	}
}

func TestFacebook(t *testing.T) {
	ctx := context.Background()
	fb := providertest.NewFacebook(t, "app-1", "app-secret-1")
	fb.Set(func(f *providertest.Facebook) {
		f.Tokens["good"] = providertest.FBUser{UserID: "10001", AppID: "app-1", Name: "Ann", Email: "ann@example.com", Valid: true}
		f.Tokens["other-app"] = providertest.FBUser{UserID: "10002", AppID: "app-2", Valid: true}
		f.Tokens["expired"] = providertest.FBUser{UserID: "10003", AppID: "app-1", Valid: false}
	})
	p, err := provider.NewFacebook(provider.FacebookConfig{AppID: "app-1", AppSecret: "app-secret-1", AuthURL: fb.AuthURL(), GraphURL: fb.GraphURL()}, deps(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.ClientLogin(ctx, map[string]any{"access_token": "good"})
	if err != nil || id.Subject != "10001" || id.Provider != "Facebook" || id.Claims["email"] != "ann@example.com" {
		t.Fatalf("%+v %v", id, err)
	}
	for tok, want := range map[string]provider.Kind{"other-app": provider.KindRejected, "expired": provider.KindRejected, "unknown": provider.KindRejected} {
		_, err := p.ClientLogin(ctx, map[string]any{"access_token": tok})
		if provider.KindOf(err) != want {
			t.Errorf("%s: %v", tok, err)
		}
	}
	_, err = p.ClientLogin(ctx, map[string]any{"accessToken": "good"})
	if err == nil || err.Error() != "The POST Facebook login request must specify the access token in the body of the request." {
		t.Fatal(err)
	}
	// Server flow.
	verifier := oauth2.GenerateVerifier()
	red, _ := p.AuthCodeURL(ctx, provider.AuthRequest{State: "s", CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), RedirectURI: "https://gh/login/facebook", Options: url.Values{"scope": {"email"}}})
	if u, _ := url.Parse(red.URL); u.Query().Get("scope") != "public_profile,email" {
		t.Fatalf("%s", red.URL)
	}
	cb, err := fb.Authorize(red.URL, "good")
	if err != nil {
		t.Fatal(err)
	}
	id, err = p.Exchange(ctx, provider.Callback{Params: cb, Verifier: verifier, RedirectURI: "https://gh/login/facebook"})
	if err != nil || id.Subject != "10001" {
		t.Fatalf("server flow %+v %v", id, err)
	}
	// Graph down.
	fb.Set(func(f *providertest.Facebook) { f.Down = true })
	_, err = p.ClientLogin(ctx, map[string]any{"access_token": "good"})
	kind(t, err, provider.KindUnavailable)
	fb.Set(func(f *providertest.Facebook) {
		if f.SecretInQuery {
			t.Error("the app secret was sent in a query string")
		}
	})
}

func TestTwitter(t *testing.T) {
	ctx := context.Background()
	x := providertest.NewTwitter(t, "ck", "cs")
	p, err := provider.NewTwitter(provider.TwitterConfig{ConsumerKey: "ck", ConsumerSecret: "cs", APIURL: x.URL()}, deps(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	red, err := p.AuthCodeURL(ctx, provider.AuthRequest{State: "st-1", RedirectURI: "https://gh/login/twitter"})
	if err != nil {
		t.Fatal(err)
	}
	cbURL, err := x.Authorize(red.URL)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cbURL)
	q := u.Query()
	if q.Get("state") != "st-1" || !p.IsCallback(q) {
		t.Fatalf("callback %s", cbURL)
	}
	// A callback whose oauth_token is not the one in our cookie is refused.
	_, err = p.Exchange(ctx, provider.Callback{Params: q, Kept: map[string]string{"rt": "rt-other", "rts": "x"}})
	kind(t, err, provider.KindRejected)
	_, err = p.Exchange(ctx, provider.Callback{Params: q})
	kind(t, err, provider.KindInvalid)
	id, err := p.Exchange(ctx, provider.Callback{Params: q, Kept: red.Keep})
	if err != nil || id.Subject != "12345" || id.Claims["screen_name"] != "jack" || id.AccessTokenSecret == "" {
		t.Fatalf("%+v %v", id, err)
	}
	// The request token is single use: Twitter refuses a replayed callback (401), a rejection.
	_, err = p.Exchange(ctx, provider.Callback{Params: q, Kept: red.Keep})
	kind(t, err, provider.KindRejected)
	_, err = p.Exchange(ctx, provider.Callback{Params: url.Values{"denied": {"rt-9"}}})
	kind(t, err, provider.KindDenied)

	// Client flow.
	x.AddAccessToken("user-at", "user-ats", providertest.TwUser{ID: "777", ScreenName: "ann", Name: "Ann"})
	id, err = p.ClientLogin(ctx, map[string]any{"access_token": "user-at", "access_token_secret": "user-ats"})
	if err != nil || id.Subject != "777" || id.Claims["screen_name"] != "ann" {
		t.Fatalf("%+v %v", id, err)
	}
	_, err = p.ClientLogin(ctx, map[string]any{"access_token": "user-at", "access_token_secret": "wrong"})
	kind(t, err, provider.KindRejected)
	_, err = p.ClientLogin(ctx, map[string]any{"access_token": "user-at"})
	kind(t, err, provider.KindInvalid)
}

func TestRegistry(t *testing.T) {
	op := providertest.NewOP(t, "c", "s")
	a := generic(t, op, deps(t, op))
	r, err := provider.NewRegistry(a)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := r.Get("ACME"); !ok || p != provider.Provider(a) {
		t.Fatal("lookup")
	}
	if _, err := provider.NewRegistry(a, a); err == nil {
		t.Fatal("duplicate accepted")
	}
	var nilReg *provider.Registry
	if _, ok := nilReg.Get("x"); ok {
		t.Fatal("nil registry")
	}
}

func TestFromConfig(t *testing.T) {
	cfg, err := config.Load(nil, func(k string) string {
		return map[string]string{"MS_GoogleClientID": "g", "MS_FacebookAppID": "f", "MS_FacebookAppSecret": "fs0123456789abcdef",
			"MS_AadClientID": "a", "MS_TwitterConsumerKey": "k", "MS_TwitterConsumerSecret": "ts0123456789abcdef", "MS_MicrosoftClientID": "m",
			"GATEHOUSE_APPLE_EXTRA_CLIENT_IDS": "com.example.app", "GATEHOUSE_OIDC_PROVIDERS": "acme",
			"GATEHOUSE_OIDC_ACME_ISSUER": "https://acme.example", "GATEHOUSE_OIDC_ACME_CLIENT_ID": "c"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	r, warnings, err := provider.FromConfig(cfg, deps(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "google,facebook,microsoftaccount,twitter,apple,acme" {
		t.Fatalf("names %s", got)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "aad") {
		t.Fatalf("warnings %v", warnings)
	}
	if e := r.Enabled(); !strings.Contains(e, "facebook (server+client)") || !strings.Contains(e, "google (client)") {
		t.Fatal(e)
	}
}

// TestNoGoroutineLeakWhenProviderHangs: calls to a hanging token endpoint end at the call timeout and
// leave nothing running behind them (client and fake-server goroutines all finish).
func TestNoGoroutineLeakWhenProviderHangs(t *testing.T) {
	op := providertest.NewOP(t, "client-1", "secret-1")
	d := deps(t, op)
	d.HTTP.Timeout = 100 * time.Millisecond
	p := generic(t, op, d)
	ctx := context.Background()
	if _, err := p.ClientLogin(ctx, map[string]any{"id_token": op.IDToken("client-1", "", nil)}); err != nil {
		t.Fatal(err) // discovery and the key set's background goroutine start here, before the baseline
	}
	op.Set(func(o *providertest.OP) { o.Hang = true })
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			red, _ := p.AuthCodeURL(ctx, provider.AuthRequest{State: "s", Nonce: "n", CodeChallenge: oauth2.S256ChallengeFromVerifier("v"), RedirectURI: "https://gh/cb"})
			cb, ru, _ := op.Authorize(red.URL)
			if _, err := p.Exchange(ctx, provider.Callback{Params: cb, Verifier: "v", Nonce: "n", RedirectURI: ru}); provider.KindOf(err) != provider.KindUnavailable {
				t.Errorf("hanging provider: %v", err)
			}
		}()
	}
	wg.Wait()
	// Settling is asynchronous (connections close, server handlers see it); wait for it, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProviderKeyRotation: the provider starts signing with a new key (published at the same time);
// the next login triggers one forced refresh of the key set and succeeds. A removed key stops working
// after the refresh.
func TestProviderKeyRotation(t *testing.T) {
	op := providertest.NewOP(t, "client-1", "secret-1")
	d := deps(t, op)
	// The key set allows one forced refresh per interval (30 s by default); the first login may already
	// have used it while the initial fetch was in flight, so shorten it here.
	d.Keys.ForcedRefreshInterval = time.Millisecond
	p := generic(t, op, d)
	ctx := context.Background()
	oldTok := op.IDToken("client-1", "", nil)
	if _, err := p.ClientLogin(ctx, map[string]any{"id_token": oldTok}); err != nil {
		t.Fatal(err)
	}
	op.Keys.Rotate(jose.RS256)
	if _, err := p.ClientLogin(ctx, map[string]any{"id_token": op.IDToken("client-1", "", nil)}); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	// The old key is still published: its tokens keep working until it is removed.
	if _, err := p.ClientLogin(ctx, map[string]any{"id_token": oldTok}); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
}

// TestProviderEmailProfile (issue 10 finding 17): provider emails are stored in the accounts' email
// profile: normalized, and dropped (with email_verified) when they hold invisible characters.
func TestProviderEmailProfile(t *testing.T) {
	ctx := context.Background()
	op := providertest.NewOP(t, "client-1", "secret-1")
	p := generic(t, op, deps(t, op))
	for email, want := range map[string]any{
		"ＵＳＥＲ@Example.COM":       "USER@example.com",
		"user@example.com":       "user@example.com",
		"us\u200Ber@example.com": nil,
		"user\u202E@example.com": nil,
		"us\u00ADer@example.com": nil,
	} {
		id, err := p.ClientLogin(ctx, map[string]any{"id_token": op.IDToken("client-1", "", map[string]any{"email": email, "email_verified": true})})
		if err != nil {
			t.Fatal(err)
		}
		if got := id.Claims["email"]; got != want {
			t.Errorf("%q: email %q, want %v", email, got, want)
		}
		if _, ok := id.Claims["email_verified"]; ok != (want != nil) {
			t.Errorf("%q: email_verified kept = %v", email, ok)
		}
	}
}
