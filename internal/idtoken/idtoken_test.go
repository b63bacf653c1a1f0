package idtoken_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/idtoken"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/keyset/keysettest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	clientID    = "server-client.apps.example.com"
	otherClient = "someone-else.apps.example.com"
	androidApp  = "android-client.apps.example.com"
)

type fixture struct {
	clock *keysettest.Clock
	prov  *keysettest.Provider
	keys  *keyset.Set
	v     *idtoken.Verifier
}

type fixtureOpts struct {
	provOpts []keysettest.Option
	keysCfg  func(*keyset.Config)
	provCfg  func(*idtoken.Provider)
	certs    bool // use the PEM certificate endpoint
}

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	clock := keysettest.NewClock(t0)
	prov := keysettest.NewProvider(t, append([]keysettest.Option{keysettest.WithClock(clock)}, o.provOpts...)...)
	url := prov.JWKSURL()
	if o.certs {
		url = prov.CertsURL()
	}
	kc := keyset.Config{Issuer: prov.Issuer(), URL: url, Client: prov.Client(), Clock: clock}
	if o.keysCfg != nil {
		o.keysCfg(&kc)
	}
	keys, err := keyset.New(kc)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	pc := idtoken.Provider{
		Name:       "google",
		Issuers:    []string{prov.Issuer()},
		ClientIDs:  []string{clientID},
		Algorithms: []jose.SignatureAlgorithm{jose.RS256, jose.ES256},
		Keys:       keys,
	}
	if o.provCfg != nil {
		o.provCfg(&pc)
	}
	v, err := idtoken.New(idtoken.Config{Providers: []idtoken.Provider{pc}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{clock: clock, prov: prov, keys: keys, v: v}
}

func (f *fixture) claims(mod func(map[string]any)) map[string]any {
	c := f.prov.Claims("user-123", clientID)
	c["email"] = "u@example.com"
	c["email_verified"] = true
	if mod != nil {
		mod(c)
	}
	return c
}

func (f *fixture) verify(tok string, opts ...idtoken.Option) (*idtoken.Claims, error) {
	return f.v.Verify(context.Background(), "google", tok, opts...)
}

func TestVerifyValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    fixtureOpts
		alg  jose.SignatureAlgorithm
	}{
		{"RS256 JWKS", fixtureOpts{}, jose.RS256},
		{"ES256 JWKS", fixtureOpts{provOpts: []keysettest.Option{keysettest.WithAlgorithm(jose.ES256)}}, jose.ES256},
		{"RS256 Google PEM certs", fixtureOpts{certs: true}, jose.RS256},
		{"x5t only (Entra v1 style)", fixtureOpts{provOpts: []keysettest.Option{keysettest.WithX5tOnly()}}, jose.RS256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.o)
			c, err := f.verify(f.prov.Sign(f.claims(func(c map[string]any) { c["nonce"] = "n-1" })), idtoken.WithNonce("n-1"))
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "user-123" || c.Issuer != f.prov.Issuer() || c.Audience[0] != clientID ||
				!c.EmailVerified || c.Email != "u@example.com" || c.Algorithm != tc.alg || c.Nonce != "n-1" ||
				!c.Expiry.Equal(t0.Add(time.Hour)) || !c.IssuedAt.Equal(t0) {
				t.Fatalf("claims = %+v", c)
			}
			var extra struct {
				Email string `json:"email"`
			}
			if err := c.Decode(&extra); err != nil || extra.Email != "u@example.com" {
				t.Fatalf("decode: %v %+v", err, extra)
			}
		})
	}
}

func TestLeewayAndTimeClaims(t *testing.T) {
	f := newFixture(t, fixtureOpts{provCfg: func(p *idtoken.Provider) { p.MaxAge = 2 * time.Hour }})
	for _, tc := range []struct {
		name string
		mod  func(map[string]any)
		want error
	}{
		{"expired within leeway", func(c map[string]any) { c["exp"] = t0.Add(-30 * time.Second).Unix() }, nil},
		{"expired", func(c map[string]any) { c["exp"] = t0.Add(-2 * time.Minute).Unix() }, idtoken.ErrExpired},
		{"exp exactly at leeway", func(c map[string]any) { c["exp"] = t0.Add(-time.Minute).Unix() }, idtoken.ErrExpired},
		{"nbf within leeway", func(c map[string]any) { c["nbf"] = t0.Add(30 * time.Second).Unix() }, nil},
		{"nbf in the future", func(c map[string]any) { c["nbf"] = t0.Add(10 * time.Minute).Unix() }, idtoken.ErrNotYetValid},
		{"iat in the future", func(c map[string]any) { c["iat"] = t0.Add(10 * time.Minute).Unix() }, idtoken.ErrIssuedInFuture},
		{"iat too old", func(c map[string]any) { c["iat"] = t0.Add(-3 * time.Hour).Unix() }, idtoken.ErrTooOld},
		{"fractional dates", func(c map[string]any) { c["iat"] = float64(t0.Unix()) + 0.5 }, nil},
		{"missing exp", func(c map[string]any) { delete(c, "exp") }, idtoken.ErrMissingClaim},
		{"missing iat", func(c map[string]any) { delete(c, "iat") }, idtoken.ErrMissingClaim},
		{"missing sub", func(c map[string]any) { delete(c, "sub") }, idtoken.ErrMissingClaim},
		{"missing iss", func(c map[string]any) { delete(c, "iss") }, idtoken.ErrMissingClaim},
		{"missing aud", func(c map[string]any) { delete(c, "aud") }, idtoken.ErrMissingClaim},
		{"email_verified as string (Apple)", func(c map[string]any) { c["email_verified"] = "true" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.verify(f.prov.Sign(f.claims(tc.mod)))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestGoogleIssuerForms(t *testing.T) {
	f := newFixture(t, fixtureOpts{
		provOpts: []keysettest.Option{keysettest.WithIssuer(idtoken.GoogleIssuer)},
		provCfg:  func(p *idtoken.Provider) { p.Issuers = idtoken.GoogleIssuers() },
	})
	for _, iss := range []string{"https://accounts.google.com", "accounts.google.com"} {
		if _, err := f.verify(f.prov.Sign(f.claims(func(c map[string]any) { c["iss"] = iss }))); err != nil {
			t.Errorf("%s: %v", iss, err)
		}
	}
	for _, iss := range []string{"http://accounts.google.com", "https://accounts.google.com/", "accounts.google.com.evil", "https://ACCOUNTS.google.com"} {
		if _, err := f.verify(f.prov.Sign(f.claims(func(c map[string]any) { c["iss"] = iss }))); !errors.Is(err, idtoken.ErrWrongIssuer) {
			t.Errorf("%s: %v", iss, err)
		}
	}
}

func TestEntraMultiTenant(t *testing.T) {
	const allowed, other = "9188040d-6c67-4c5b-b112-36a304b66dad", "72f988bf-86f1-41af-91ab-2d7cd011db47"
	f := newFixture(t, fixtureOpts{provCfg: func(p *idtoken.Provider) {
		p.Name, p.Issuers = "google", nil
		p.IssuerTemplate = idtoken.EntraIssuerTemplate
		p.TenantAllowlist = []string{strings.ToUpper(allowed)}
	}})
	iss := func(tid string) string { return "https://login.microsoftonline.com/" + tid + "/v2.0" }
	for _, tc := range []struct {
		name     string
		iss, tid string
		want     error
	}{
		{"allowed tenant", iss(allowed), allowed, nil},
		{"tenant not allowed", iss(other), other, idtoken.ErrTenantNotAllowed},
		{"iss tenant differs from tid", iss(other), allowed, idtoken.ErrWrongIssuer},
		{"no tid", iss(allowed), "", idtoken.ErrWrongIssuer},
		{"common endpoint issuer", iss("{tenantid}"), "{tenantid}", idtoken.ErrTenantNotAllowed},
		{"v1 issuer", "https://sts.windows.net/" + allowed + "/", allowed, idtoken.ErrWrongIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.verify(f.prov.Sign(f.claims(func(c map[string]any) {
				c["iss"] = tc.iss
				if tc.tid != "" {
					c["tid"] = tc.tid
				}
			})))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && c.TenantID != allowed {
				t.Fatalf("tid = %q", c.TenantID)
			}
		})
	}
}

func TestAudienceAndAuthorizedParty(t *testing.T) {
	f := newFixture(t, fixtureOpts{provCfg: func(p *idtoken.Provider) {
		p.TrustedAudiences = []string{"trusted-api"}
	}})
	g := newFixture(t, fixtureOpts{provCfg: func(p *idtoken.Provider) {
		p.AuthorizedParties = []string{androidApp}
	}})
	for _, tc := range []struct {
		name string
		fx   *fixture
		mod  func(map[string]any)
		want error
	}{
		{"aud array with us", f, func(c map[string]any) { c["aud"] = []string{clientID} }, nil},
		{"another client id", f, func(c map[string]any) { c["aud"] = otherClient }, idtoken.ErrWrongAudience},
		{"untrusted extra audience", f, func(c map[string]any) { c["aud"] = []string{clientID, otherClient}; c["azp"] = clientID }, idtoken.ErrWrongAudience},
		{"trusted extra audience, azp ours", f, func(c map[string]any) { c["aud"] = []string{clientID, "trusted-api"}; c["azp"] = clientID }, nil},
		{"several audiences without azp", f, func(c map[string]any) { c["aud"] = []string{clientID, "trusted-api"} }, idtoken.ErrWrongAuthorizedParty},
		{"several audiences, foreign azp", f, func(c map[string]any) { c["aud"] = []string{clientID, "trusted-api"}; c["azp"] = otherClient }, idtoken.ErrWrongAuthorizedParty},
		{"single audience, azp unchecked without AuthorizedParties", f, func(c map[string]any) { c["azp"] = otherClient }, nil},
		{"hybrid: azp is our Android app", g, func(c map[string]any) { c["azp"] = androidApp }, nil},
		{"hybrid: azp is someone else", g, func(c map[string]any) { c["azp"] = otherClient }, idtoken.ErrWrongAuthorizedParty},
		{"aud is a number", f, func(c map[string]any) { c["aud"] = 5 }, idtoken.ErrMalformed},
		{"aud is an empty array", f, func(c map[string]any) { c["aud"] = []string{} }, idtoken.ErrMalformed},
		{"aud array of numbers", f, func(c map[string]any) { c["aud"] = []int{1} }, idtoken.ErrMalformed},
		{"exp is a string", f, func(c map[string]any) { c["exp"] = "tomorrow" }, idtoken.ErrMalformed},
		{"iss is an object", f, func(c map[string]any) { c["iss"] = map[string]any{"a": 1} }, idtoken.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.fx.verify(tc.fx.prov.Sign(tc.fx.claims(tc.mod)))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNonce(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	with := f.prov.Sign(f.claims(func(c map[string]any) { c["nonce"] = "abc" }))
	without := f.prov.Sign(f.claims(nil))
	for _, tc := range []struct {
		name string
		tok  string
		opts []idtoken.Option
		want error
	}{
		{"matching", with, []idtoken.Option{idtoken.WithNonce("abc")}, nil},
		{"wrong", with, []idtoken.Option{idtoken.WithNonce("abd")}, idtoken.ErrNonce},
		{"prefix", with, []idtoken.Option{idtoken.WithNonce("ab")}, idtoken.ErrNonce},
		{"missing claim", without, []idtoken.Option{idtoken.WithNonce("abc")}, idtoken.ErrNonce},
		{"empty expected never matches", without, []idtoken.Option{idtoken.WithNonce("")}, idtoken.ErrNonce},
		{"flow without nonce", with, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.verify(tc.tok, tc.opts...)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestAttackCorpus: every token must be rejected with the expected reason, must not
// make the verifier fetch anything it should not, and the error must not echo the
// token.
func TestAttackCorpus(t *testing.T) {
	f := newFixture(t, fixtureOpts{keysCfg: func(c *keyset.Config) { c.ForcedRefreshInterval = time.Hour }})
	rsaKey := f.prov.Current()
	ecKey := f.prov.AddKey(jose.ES256)
	psKey := f.prov.AddKey(jose.PS256)
	if err := f.keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	claims := f.claims(nil)
	payload := b64([]byte(mustJSON(claims)))

	// An attacker-run JWKS endpoint: must never be contacted.
	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attackerHits.Add(1)
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer attacker.Close()
	evil, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	evilJWK, _ := (&jose.JSONWebKey{Key: &evil.PublicKey}).MarshalJSON()
	evilCert := selfSignedDER(t, evil)

	pubDER, _ := x509.MarshalPKIXPublicKey(rsaKey.Private.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	rsaPub := rsaKey.Private.Public().(*rsa.PublicKey)

	raw := func(header map[string]any, sig []byte) string {
		return b64([]byte(mustJSON(header))) + "." + payload + "." + b64(sig)
	}
	sign := func(alg string, key any, header map[string]any) string {
		tok, err := keysettest.SignJWS(alg, key, header, claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	n := elliptic.P256().Params().N
	hdr := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	withClaims := func(mod func(map[string]any)) map[string]any {
		c := maps.Clone(claims)
		mod(c)
		return c
	}
	longKid := strings.Repeat("A", 3_000)

	cases := []struct {
		name string
		tok  string
		want error
	}{
		{"alg none, empty signature", raw(hdr("alg", "none", "kid", rsaKey.ID), nil), idtoken.ErrAlgNotAllowed},
		{"alg None", raw(hdr("alg", "None", "kid", rsaKey.ID), nil), idtoken.ErrAlgNotAllowed},
		{"alg NONE with a signature", raw(hdr("alg", "NONE"), []byte("sig")), idtoken.ErrAlgNotAllowed},
		{"no alg", raw(hdr("kid", rsaKey.ID), []byte("sig")), idtoken.ErrMalformed},
		{"HS256 with the RSA public key PEM as secret", sign("HS256", pubPEM, hdr("kid", rsaKey.ID)), idtoken.ErrAlgNotAllowed},
		{"HS256 with the RSA public key DER as secret", sign("HS256", pubDER, hdr("kid", rsaKey.ID)), idtoken.ErrAlgNotAllowed},
		{"HS256 with the RSA modulus as secret", sign("HS256", rsaPub.N.Bytes(), hdr("kid", rsaKey.ID)), idtoken.ErrAlgNotAllowed},
		{"HS512 with the JWKS as secret", sign("HS512", []byte(mustJSON(rsaPub)), hdr("kid", rsaKey.ID)), idtoken.ErrAlgNotAllowed},
		{"RS256 empty signature", raw(hdr("alg", "RS256", "kid", rsaKey.ID), nil), idtoken.ErrMalformed},
		{"RS256 signature of zeros", raw(hdr("alg", "RS256", "kid", rsaKey.ID), make([]byte, 256)), idtoken.ErrBadSignature},
		{"ES256 r = s = 0 (psychic signature)", raw(hdr("alg", "ES256", "kid", ecKey.ID), keysettest.ECDSASignature(big.NewInt(0), big.NewInt(0))), idtoken.ErrBadSignature},
		{"ES256 r = s = n", raw(hdr("alg", "ES256", "kid", ecKey.ID), keysettest.ECDSASignature(n, n)), idtoken.ErrBadSignature},
		{"ES256 r = 1, s = 1", raw(hdr("alg", "ES256", "kid", ecKey.ID), keysettest.ECDSASignature(big.NewInt(1), big.NewInt(1))), idtoken.ErrBadSignature},
		{"ES256 DER-encoded signature", raw(hdr("alg", "ES256", "kid", ecKey.ID), []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}), idtoken.ErrBadSignature},
		{"signed by an attacker key under the provider's kid", sign("ES256", evil, hdr("kid", ecKey.ID, "typ", "JWT")), idtoken.ErrBadSignature},
		{"RS256 header on the ES256 key", sign("RS256", rsaKey.Private, hdr("kid", ecKey.ID)), idtoken.ErrAlgNotAllowed},
		{"ES256 header on the RSA key", sign("ES256", evil, hdr("kid", rsaKey.ID)), idtoken.ErrAlgNotAllowed},
		{"RS256 on a key published for PS256 (one alg per key)", sign("RS256", psKey.Private, hdr("kid", psKey.ID)), idtoken.ErrAlgNotAllowed},
		{"PS256 not in the allowlist", sign("PS256", psKey.Private, hdr("kid", psKey.ID)), idtoken.ErrAlgNotAllowed},
		{"kid path traversal", sign("RS256", rsaKey.Private, hdr("kid", "../../../../dev/null")), idtoken.ErrUnknownKey},
		{"kid SQL injection", sign("RS256", rsaKey.Private, hdr("kid", "x' UNION SELECT 'secret' --")), idtoken.ErrUnknownKey},
		{"kid 3 kB", sign("RS256", rsaKey.Private, hdr("kid", longKid)), idtoken.ErrUnknownKey},
		{"kid 10 kB (header over the cap)", sign("RS256", rsaKey.Private, hdr("kid", strings.Repeat("B", 10_000))), idtoken.ErrMalformed},
		{"kid NUL and non-ASCII", sign("RS256", rsaKey.Private, hdr("kid", "\x00ключ\u202e")), idtoken.ErrUnknownKey},
		{"kid is a number", raw(hdr("alg", "RS256", "kid", 7), []byte("sig")), idtoken.ErrMalformed},
		{"jku header (valid signature)", sign("RS256", rsaKey.Private, hdr("kid", rsaKey.ID, "jku", attacker.URL)), idtoken.ErrForbiddenHeader},
		{"x5u header (valid signature)", sign("RS256", rsaKey.Private, hdr("kid", rsaKey.ID, "x5u", attacker.URL)), idtoken.ErrForbiddenHeader},
		{"embedded jwk (attacker key)", sign("ES256", evil, hdr("jwk", json.RawMessage(evilJWK))), idtoken.ErrForbiddenHeader},
		{"embedded x5c (attacker cert)", sign("ES256", evil, hdr("x5c", []string{base64.StdEncoding.EncodeToString(evilCert)})), idtoken.ErrForbiddenHeader},
		{"crit header", sign("RS256", rsaKey.Private, hdr("kid", rsaKey.ID, "crit", []string{"exp"}, "exp", 1)), idtoken.ErrMalformed},
		{"typ at+jwt (an access token)", sign("RS256", rsaKey.Private, hdr("kid", rsaKey.ID, "typ", "at+jwt")), idtoken.ErrWrongType},
		{"wrong iss", f.prov.Sign(withClaims(func(c map[string]any) { c["iss"] = "https://evil.example" })), idtoken.ErrWrongIssuer},
		{"wrong aud", f.prov.Sign(withClaims(func(c map[string]any) { c["aud"] = "evil" })), idtoken.ErrWrongAudience},
		{"valid token for another client id", f.prov.Sign(withClaims(func(c map[string]any) { c["aud"] = otherClient })), idtoken.ErrWrongAudience},
		{"several audiences, wrong azp", f.prov.Sign(withClaims(func(c map[string]any) { c["aud"] = []string{clientID, otherClient}; c["azp"] = otherClient })), idtoken.ErrWrongAudience},
		{"expired", f.prov.Sign(withClaims(func(c map[string]any) { c["exp"] = t0.Add(-time.Hour).Unix() })), idtoken.ErrExpired},
		{"nbf in the future", f.prov.Sign(withClaims(func(c map[string]any) { c["nbf"] = t0.Add(time.Hour).Unix() })), idtoken.ErrNotYetValid},
		{"payload tampered after signing", strings.Join([]string{strings.Split(f.prov.Sign(claims), ".")[0], b64([]byte(mustJSON(withClaims(func(c map[string]any) { c["sub"] = "admin" })))), strings.Split(f.prov.Sign(claims), ".")[2]}, "."), idtoken.ErrBadSignature},
		{"header tampered after signing", strings.Replace(f.prov.Sign(claims), strings.Split(f.prov.Sign(claims), ".")[0], b64([]byte(`{"alg":"RS256","kid":"`+rsaKey.ID+`"}`)), 1), idtoken.ErrBadSignature},
		{"JWS JSON serialization", `{"payload":"` + payload + `","protected":"x","signature":"y"}`, idtoken.ErrMalformed},
		{"extra segment", f.prov.Sign(claims) + ".x", idtoken.ErrMalformed},
		{"padding in header", strings.Replace(f.prov.Sign(claims), ".", "=.", 1), idtoken.ErrMalformed},
		{"1 MB of dots", strings.Repeat(".", 1<<20), idtoken.ErrMalformed},
		{"empty", "", idtoken.ErrMalformed},
		{"payload not JSON", b64([]byte(`{"alg":"RS256","kid":"`+rsaKey.ID+`"}`)) + "." + b64([]byte("hello")) + ".c2ln", idtoken.ErrMalformed},
	}
	// Positive control: the undoctored token passes.
	if _, err := f.verify(f.prov.Sign(claims)); err != nil {
		t.Fatalf("control token rejected: %v", err)
	}
	forcedBefore := f.prov.ForcedFetches()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.verify(tc.tok)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var e *idtoken.Error
			if !errors.As(err, &e) || e.Provider != "google" {
				t.Fatalf("not an *idtoken.Error for the provider: %#v", err)
			}
			msg := err.Error()
			for i, part := range strings.Split(tc.tok, ".") {
				if len(part) > 8 && strings.Contains(msg, part) {
					t.Fatalf("error echoes token part %d: %s", i, msg)
				}
			}
			if strings.Contains(msg, longKid[:64]) {
				t.Fatal("error echoes the kid")
			}
		})
	}
	if attackerHits.Load() != 0 {
		t.Fatalf("attacker JWKS contacted %d times", attackerHits.Load())
	}
	// All the unknown-kid tokens together cause at most one forced fetch per interval.
	if got := f.prov.ForcedFetches() - forcedBefore; got > 1 {
		t.Fatalf("forced fetches = %d, want ≤ 1", got)
	}
}

func selfSignedDER(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestOtherProviderTokenRejected(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	other := keysettest.NewProvider(t, keysettest.WithClock(f.clock))
	tok := other.Sign(other.Claims("user-123", clientID))
	if _, err := f.verify(tok); !errors.Is(err, idtoken.ErrWrongIssuer) {
		t.Fatalf("got %v", err)
	}
	// Same issuer string, foreign key (an impersonating provider): unknown kid.
	spoof := keysettest.NewProvider(t, keysettest.WithClock(f.clock), keysettest.WithIssuer(f.prov.Issuer()))
	if _, err := f.verify(spoof.Sign(f.claims(nil))); !errors.Is(err, idtoken.ErrUnknownKey) {
		t.Fatalf("got %v", err)
	}
}

func TestKidlessTokens(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	k1 := f.prov.Current()
	tok, err := keysettest.SignJWS("RS256", k1.Private, map[string]any{"typ": "JWT"}, f.claims(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(tok); err != nil {
		t.Fatalf("single key: %v", err)
	}
	f.prov.AddKey(jose.RS256)
	f.prov.AddKey(jose.ES256)
	if err := f.keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(tok); err != nil {
		t.Fatalf("several keys: %v", err)
	}
	evil, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad, _ := keysettest.SignJWS("ES256", evil, map[string]any{}, f.claims(nil))
	if _, err := f.verify(bad); !errors.Is(err, idtoken.ErrBadSignature) {
		t.Fatalf("foreign kid-less token: %v", err)
	}
}

func TestRemovedKeyRejected(t *testing.T) {
	f := newFixture(t, fixtureOpts{provOpts: []keysettest.Option{keysettest.WithMaxAge(time.Hour)}})
	k1 := f.prov.Current()
	old := f.prov.Sign(f.claims(nil))
	f.prov.Rotate(jose.RS256)
	f.clock.Advance(time.Hour)
	if _, err := f.keys.RefreshIfDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	oldFresh := f.prov.SignWith(k1, nil, f.claims(nil))
	if _, err := f.verify(oldFresh); err != nil {
		t.Fatalf("old key still published: %v", err)
	}
	f.prov.Remove(k1)
	f.clock.Advance(time.Hour)
	if _, err := f.keys.RefreshIfDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verify(f.prov.SignWith(k1, nil, f.claims(nil))); !errors.Is(err, idtoken.ErrUnknownKey) {
		t.Fatalf("removed key: %v", err)
	}
	if _, err := f.verify(old); !errors.Is(err, idtoken.ErrExpired) {
		t.Fatalf("old token: %v", err)
	}
	if _, err := f.verify(f.prov.Sign(f.claims(nil))); err != nil {
		t.Fatalf("current key: %v", err)
	}
}

func TestProviderDownForAnHour(t *testing.T) {
	f := newFixture(t, fixtureOpts{provOpts: []keysettest.Option{keysettest.WithMaxAge(10 * time.Minute)}})
	f.prov.SetMode(keysettest.ModeDown)
	for minute := 1; minute <= 60; minute++ {
		f.clock.Advance(time.Minute)
		_, _ = f.keys.RefreshIfDue(context.Background())
		if _, err := f.verify(f.prov.Sign(f.claims(nil))); err != nil {
			t.Fatalf("minute %d of the outage: %v", minute, err)
		}
	}
	f.clock.Advance(48 * time.Hour)
	_, err := f.verify(f.prov.Sign(f.claims(nil)))
	if !errors.Is(err, idtoken.ErrKeysUnavailable) {
		t.Fatalf("past the hard limit: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	clock := keysettest.NewClock(t0)
	keys, err := keyset.New(keyset.Config{Issuer: "x", URL: "https://x.example/jwks", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	base := idtoken.Provider{Name: "p", Issuers: []string{"https://x"}, ClientIDs: []string{"c"}, Keys: keys}
	for name, mod := range map[string]func(*idtoken.Provider){
		"no name":              func(p *idtoken.Provider) { p.Name = "" },
		"no keys":              func(p *idtoken.Provider) { p.Keys = nil },
		"no client id":         func(p *idtoken.Provider) { p.ClientIDs = nil },
		"empty client id":      func(p *idtoken.Provider) { p.ClientIDs = []string{""} },
		"no issuer":            func(p *idtoken.Provider) { p.Issuers = nil },
		"alg none":             func(p *idtoken.Provider) { p.Algorithms = []jose.SignatureAlgorithm{"none"} },
		"HS256":                func(p *idtoken.Provider) { p.Algorithms = []jose.SignatureAlgorithm{jose.HS256} },
		"template without tid": func(p *idtoken.Provider) { p.IssuerTemplate = "https://login/x"; p.TenantAllowlist = []string{"t"} },
		"template without allowlist": func(p *idtoken.Provider) {
			p.IssuerTemplate = idtoken.EntraIssuerTemplate
		},
		"huge leeway": func(p *idtoken.Provider) { p.Leeway = time.Hour },
	} {
		p := base
		mod(&p)
		if _, err := idtoken.New(idtoken.Config{Providers: []idtoken.Provider{p}}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := idtoken.New(idtoken.Config{Providers: []idtoken.Provider{base, base}}); err == nil {
		t.Error("duplicate provider accepted")
	}
	v, err := idtoken.New(idtoken.Config{Providers: []idtoken.Provider{base}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), "nope", "a.b.c"); !errors.Is(err, idtoken.ErrUnknownProvider) {
		t.Fatalf("unknown provider: %v", err)
	}
}

func ExampleVerifier_Verify() {
	// Wiring (done once at start-up): one key set per issuer, kept fresh by
	// `go keys.Run(ctx)` (not started here: examples do not touch the network).
	keys, _ := keyset.New(keyset.Config{Issuer: idtoken.GoogleIssuer, URL: "https://www.googleapis.com/oauth2/v3/certs"})
	ctx := context.Background()
	v, _ := idtoken.New(idtoken.Config{Providers: []idtoken.Provider{{
		Name:      "google",
		Issuers:   idtoken.GoogleIssuers(),
		ClientIDs: []string{"1234.apps.googleusercontent.com"},
		Keys:      keys,
	}}})
	// Per login: verify the posted id_token with the nonce this flow issued.
	_, err := v.Verify(ctx, "google", "not-a-token", idtoken.WithNonce("n-0S6_WzA2Mj"))
	fmt.Println(errors.Is(err, idtoken.ErrMalformed))
	// Output: true
}

// TestClaimNamesExact: claims decode with JSON.parse semantics (issue 10 finding 7). A "Sub" next to
// "sub" never overrides it, "SUB" alone is no subject, and a duplicated "sub" is a malformed token.
func TestClaimNamesExact(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	key := f.prov.Current()
	base := f.claims(nil)
	rawClaims := func(extra string) json.RawMessage {
		c := maps.Clone(base)
		delete(c, "sub")
		b := []byte(mustJSON(c))
		return json.RawMessage(append(b[:len(b)-1], []byte(","+extra+"}")...))
	}
	sign := func(payload json.RawMessage) string {
		tok, err := keysettest.SignJWS("RS256", key.Private, map[string]any{"kid": key.ID}, payload)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, order := range []string{`"sub":"alice","Sub":"mallory"`, `"Sub":"mallory","sub":"alice"`} {
		c, err := f.verify(sign(rawClaims(order)))
		if err != nil {
			t.Fatalf("%s: %v", order, err)
		}
		if c.Subject != "alice" {
			t.Fatalf("%s: subject %q, want alice", order, c.Subject)
		}
		if m, _ := c.Map(); m["sub"] != "alice" {
			t.Fatalf("%s: Map sub %v", order, m["sub"])
		}
	}
	if _, err := f.verify(sign(rawClaims(`"SUB":"mallory"`))); !errors.Is(err, idtoken.ErrMissingClaim) && !errors.Is(err, idtoken.ErrMalformed) {
		t.Fatalf("SUB alone: %v, want a missing sub", err)
	}
	if _, err := f.verify(sign(rawClaims(`"sub":"alice","sub":"mallory"`))); !errors.Is(err, idtoken.ErrMalformed) {
		t.Fatalf("duplicate sub: %v, want malformed", err)
	}
	if _, err := f.verify(sign(rawClaims(`"sub":"alice","EXP":1`))); err != nil {
		t.Fatalf("unrelated wrong-case member: %v", err)
	}
}
