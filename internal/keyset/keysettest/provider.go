// Package keysettest is a fake identity provider for tests: an httptest server
// that publishes a JWK Set, Google-style PEM certificates and an OIDC discovery
// document, rotates keys the way Google does (publish, then sign, then remove),
// announces cache lifetimes, and can go down, hang or serve garbage. It signs ID
// tokens with its current key.
//
// Key material comes from a fixed embedded pool of test keys (fast under -race).
// Two providers in one test may therefore share key material, always under
// different kids: never rely on key material alone to tell providers apart.
package keysettest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Mode is how the provider answers key set requests.
type Mode int

// Modes.
const (
	ModeOK      Mode = iota // serve the keys
	ModeDown                // HTTP 500
	ModeHang                // never answer (until the client gives up or the provider closes)
	ModeGarbage             // HTTP 200 with a body that is not a key set
	ModeEmpty               // HTTP 200 with {"keys": []}
	ModeDrop                // close the connection without answering
)

// Paths served by the provider.
const (
	PathDiscovery = "/.well-known/openid-configuration"
	PathJWKS      = "/jwks"
	PathCerts     = "/certs" // Google v1 format: {"kid": "-----BEGIN CERTIFICATE-----..."}
)

// SigningKey is one provider key.
type SigningKey struct {
	ID          string
	Thumbprint  string // base64url SHA-1 of Certificate (x5t)
	Alg         jose.SignatureAlgorithm
	Private     crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey
	Certificate *x509.Certificate
}

// Option configures a Provider.
type Option func(*Provider)

// WithIssuer sets the issuer the provider puts in tokens and discovery (default:
// the server URL).
func WithIssuer(iss string) Option { return func(p *Provider) { p.issuer = iss } }

// WithClock sets the clock used for iat/exp in Claims (default time.Now).
func WithClock(c interface{ Now() time.Time }) Option { return func(p *Provider) { p.clock = c } }

// WithAlgorithm sets the algorithm of the initial key (RS256 default, or ES256).
func WithAlgorithm(alg jose.SignatureAlgorithm) Option { return func(p *Provider) { p.firstAlg = alg } }

// WithX5tOnly makes the JWK Set omit "kid" and tokens carry only "x5t" (Entra v1 style).
func WithX5tOnly() Option { return func(p *Provider) { p.x5tOnly = true } }

// WithMaxAge sets the initial Cache-Control max-age (default 6 h, like Google).
func WithMaxAge(d time.Duration) Option { return func(p *Provider) { p.maxAge = d } }

// Provider is a fake IdP. Create it with NewProvider; it closes itself at test end.
type Provider struct {
	srv      *httptest.Server
	clock    interface{ Now() time.Time }
	issuer   string
	firstAlg jose.SignatureAlgorithm
	x5tOnly  bool
	prefix   string
	closing  chan struct{}
	once     sync.Once

	mu          sync.Mutex
	keys        []*SigningKey // published
	all         map[string]*SigningKey
	signer      *SigningKey
	maxAge      time.Duration
	age         time.Duration
	expires     time.Time
	noCacheHdrs bool
	mode        Mode
	unsupported bool
	nextRSA     int
	nextEC      int

	fetches       atomic.Int64
	forcedFetches atomic.Int64
	hanging       chan struct{} // receives one value per request entering ModeHang
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// NewProvider starts a provider with one published signing key.
func NewProvider(t testing.TB, opts ...Option) *Provider {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	p := &Provider{
		clock:    systemClock{},
		firstAlg: jose.RS256,
		prefix:   hex.EncodeToString(rnd[:]),
		closing:  make(chan struct{}),
		all:      map[string]*SigningKey{},
		maxAge:   6 * time.Hour,
		hanging:  make(chan struct{}, 1024),
	}
	for _, o := range opts {
		o(p)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathDiscovery, p.serveDiscovery)
	mux.HandleFunc("GET "+PathJWKS, p.serveKeys(false))
	mux.HandleFunc("GET "+PathCerts, p.serveKeys(true))
	p.srv = httptest.NewServer(mux)
	if p.issuer == "" {
		p.issuer = p.srv.URL
	}
	p.signer = p.AddKey(p.firstAlg)
	t.Cleanup(p.Close)
	return p
}

// Close releases hanging requests and stops the server.
func (p *Provider) Close() {
	p.once.Do(func() {
		close(p.closing)
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
}

// URL is the server's base URL.
func (p *Provider) URL() string { return p.srv.URL }

// Issuer is the issuer the provider puts in tokens and discovery.
func (p *Provider) Issuer() string { return p.issuer }

// JWKSURL is the JWK Set endpoint.
func (p *Provider) JWKSURL() string { return p.srv.URL + PathJWKS }

// CertsURL is the Google v1 PEM certificate endpoint.
func (p *Provider) CertsURL() string { return p.srv.URL + PathCerts }

// DiscoveryURL is the OIDC discovery endpoint.
func (p *Provider) DiscoveryURL() string { return p.srv.URL + PathDiscovery }

// Client returns an HTTP client for the server.
func (p *Provider) Client() *http.Client { return p.srv.Client() }

// Fetches counts key set requests (JWKS and certs).
func (p *Provider) Fetches() int64 { return p.fetches.Load() }

// ForcedFetches counts key set requests carrying Cache-Control: no-cache.
func (p *Provider) ForcedFetches() int64 { return p.forcedFetches.Load() }

// Hanging receives a value whenever a request starts hanging in ModeHang.
func (p *Provider) Hanging() <-chan struct{} { return p.hanging }

// AddKey generates (from the pool) and publishes a new key without signing with
// it: the pre-publication step of a rotation.
func (p *Provider) AddKey(alg jose.SignatureAlgorithm) *SigningKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	var priv crypto.Signer
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		priv = PoolRSAKey(p.nextRSA)
		p.nextRSA++
	case jose.ES256:
		priv = PoolECKey(p.nextEC)
		p.nextEC++
	default:
		panic(fmt.Sprintf("keysettest: unsupported alg %q", alg))
	}
	n := len(p.all) + 1
	k := &SigningKey{ID: fmt.Sprintf("%s-%d", p.prefix, n), Alg: alg, Private: priv}
	k.Certificate = selfSigned(priv, n)
	sum := sha1.Sum(k.Certificate.Raw) //nolint:gosec // x5t
	k.Thumbprint = b64.EncodeToString(sum[:])
	p.keys = append(p.keys, k)
	p.all[k.ID] = k
	return k
}

// Use makes the provider sign with k (which should be published first).
func (p *Provider) Use(k *SigningKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signer = k
}

// Rotate publishes a new key and signs with it at once ("rotation just before
// signing"); it returns the new key.
func (p *Provider) Rotate(alg jose.SignatureAlgorithm) *SigningKey {
	k := p.AddKey(alg)
	p.Use(k)
	return k
}

// Remove unpublishes k (it can still sign, for tests).
func (p *Provider) Remove(k *SigningKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.keys {
		if x == k {
			p.keys = append(p.keys[:i:i], p.keys[i+1:]...)
			return
		}
	}
}

// Current returns the key the provider signs with.
func (p *Provider) Current() *SigningKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signer
}

// Published returns the published keys.
func (p *Provider) Published() []*SigningKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*SigningKey(nil), p.keys...)
}

// SetMaxAge sets Cache-Control: public, max-age=… (0 sends max-age=0).
func (p *Provider) SetMaxAge(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.maxAge, p.noCacheHdrs = d, false
}

// SetAge sets the Age header (0 omits it).
func (p *Provider) SetAge(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.age = d
}

// SetExpires sets the Expires header (zero omits it).
func (p *Provider) SetExpires(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expires = t
}

// SetNoCacheHeaders removes Cache-Control (Expires/Age stay as set).
func (p *Provider) SetNoCacheHeaders() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noCacheHdrs = true
}

// SetMode sets how key set requests are answered.
func (p *Provider) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
}

// SetUnsupportedKeys adds (or removes) keys a verifier must skip: an OKP key with
// an unknown curve, an RSA encryption key (use enc, alg RSA-OAEP), a 1024-bit RSA
// key and an EC key whose alg does not match its curve.
func (p *Provider) SetUnsupportedKeys(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unsupported = on
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	algs := map[jose.SignatureAlgorithm]bool{}
	for _, k := range p.keys {
		algs[k.Alg] = true
	}
	p.mu.Unlock()
	var list []string
	for a := range algs {
		list = append(list, string(a))
	}
	doc := map[string]any{
		"issuer":                                p.issuer,
		"jwks_uri":                              p.JWKSURL(),
		"authorization_endpoint":                p.srv.URL + "/authorize",
		"token_endpoint":                        p.srv.URL + "/token",
		"response_types_supported":              []string{"code", "id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": list,
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

func (p *Provider) serveKeys(pemFormat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		if r.Header.Get("Cache-Control") == "no-cache" {
			p.forcedFetches.Add(1)
		}
		p.mu.Lock()
		mode := p.mode
		keys := append([]*SigningKey(nil), p.keys...)
		maxAge, age, expires, noCC, unsupported := p.maxAge, p.age, p.expires, p.noCacheHdrs, p.unsupported
		p.mu.Unlock()

		switch mode {
		case ModeDown:
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		case ModeHang:
			select {
			case p.hanging <- struct{}{}:
			default:
			}
			select {
			case <-r.Context().Done():
			case <-p.closing:
			}
			return
		case ModeGarbage:
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
			return
		case ModeDrop:
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
			http.Error(w, "drop unsupported", http.StatusInternalServerError)
			return
		}
		if !noCC {
			w.Header().Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(maxAge/time.Second), 10)+", must-revalidate, no-transform")
		}
		if age > 0 {
			w.Header().Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
		}
		if !expires.IsZero() {
			w.Header().Set("Expires", expires.UTC().Format(http.TimeFormat))
		}
		w.Header().Set("Content-Type", "application/json")
		if mode == ModeEmpty {
			_, _ = w.Write([]byte(`{"keys":[]}`))
			return
		}
		var body []byte
		if pemFormat {
			m := map[string]string{}
			for _, k := range keys {
				m[k.ID] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Certificate.Raw}))
			}
			if unsupported {
				m["unsupported-1"] = "-----BEGIN GARBAGE-----\nAAAA\n-----END GARBAGE-----\n"
			}
			body, _ = json.Marshal(m)
		} else {
			body, _ = json.Marshal(map[string]any{"keys": p.jwks(keys, unsupported)})
		}
		_, _ = w.Write(body)
	}
}

func (p *Provider) jwks(keys []*SigningKey, unsupported bool) []any {
	var out []any
	for _, k := range keys {
		jwk := jose.JSONWebKey{
			Key:                       k.Private.Public(),
			Algorithm:                 string(k.Alg),
			Use:                       "sig",
			Certificates:              []*x509.Certificate{k.Certificate},
			CertificateThumbprintSHA1: thumbBytes(k.Certificate),
		}
		if !p.x5tOnly {
			jwk.KeyID = k.ID
		}
		raw, err := jwk.MarshalJSON()
		if err != nil {
			panic(err)
		}
		out = append(out, json.RawMessage(raw))
	}
	if unsupported {
		out = append(out,
			map[string]any{"kty": "OKP", "crv": "X448", "kid": "unsupported-okp", "x": b64.EncodeToString(make([]byte, 56))},
			map[string]any{"kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "kid": "unsupported-enc",
				"n": b64.EncodeToString(PoolRSAKey(0).N.Bytes()), "e": "AQAB"},
			map[string]any{"kty": "RSA", "alg": "RS256", "kid": "unsupported-weak",
				"n": b64.EncodeToString(weakModulus()), "e": "AQAB"},
			map[string]any{"kty": "EC", "crv": "P-256", "alg": "ES384", "kid": "unsupported-mismatch",
				"x": b64.EncodeToString(PoolECKey(0).X.FillBytes(make([]byte, 32))),
				"y": b64.EncodeToString(PoolECKey(0).Y.FillBytes(make([]byte, 32)))},
			map[string]any{"kty": "AKP", "alg": "ML-DSA-44", "kid": "unsupported-akp", "pub": "AAAA"},
		)
	}
	return out
}

func weakModulus() []byte {
	// Any odd 1024-bit number works: the key must be refused before it is used.
	n := make([]byte, 128)
	n[0], n[127] = 0xC1, 0x01
	return n
}

func thumbBytes(c *x509.Certificate) []byte {
	sum := sha1.Sum(c.Raw) //nolint:gosec // x5t
	return sum[:]
}

func selfSigned(priv crypto.Signer, serial int) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(serial)),
		Subject:      pkix.Name{CommonName: "keysettest"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1<<33, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

// Claims returns standard ID token claims from this provider for sub and aud:
// iss, sub, aud, iat (now) and exp (now + 1 h) on the provider's clock.
func (p *Provider) Claims(sub, aud string) map[string]any {
	now := p.clock.Now()
	return map[string]any{
		"iss": p.issuer,
		"sub": sub,
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

// Sign signs claims with the current key (header: alg, kid — or x5t with
// WithX5tOnly — and typ JWT).
func (p *Provider) Sign(claims any) string {
	return p.SignWith(p.Current(), nil, claims)
}

// SignWith signs claims with k; extra header members are added (and may override
// alg, kid or typ).
func (p *Provider) SignWith(k *SigningKey, extra map[string]any, claims any) string {
	h := map[string]any{"typ": "JWT"}
	if p.x5tOnly {
		h["x5t"] = k.Thumbprint
	} else {
		h["kid"] = k.ID
	}
	for name, v := range extra {
		h[name] = v
	}
	tok, err := SignJWS(string(k.Alg), k.Private, h, claims)
	if err != nil {
		panic(err)
	}
	return tok
}

// RefusedURL returns an http URL on which nothing listens (connection refused).
func RefusedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr + PathJWKS
}

var (
	_ crypto.Signer = (*ecdsa.PrivateKey)(nil)
	_ crypto.Signer = (*rsa.PrivateKey)(nil)
)
