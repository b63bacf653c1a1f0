package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/jsonx"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/idtoken"
	"github.com/gatehouse/gatehouse/internal/keyset"
)

// Deps are what every provider is built with.
type Deps struct {
	HTTP HTTP
	// Keys is the template for provider key sets (client, logger, observer, refresh settings); Issuer
	// and URL are filled in per provider.
	Keys keyset.Config
	// Run bounds the background key refresh goroutines (the server's lifetime).
	Run context.Context
	// Now is the clock (default time.Now); Clock, if set, is idtoken's clock.
	Now   func() time.Time
	Clock idtoken.Clock
}

func (d Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// OIDCConfig configures an OpenID Connect provider. Google, Microsoft and Apple are OIDC providers
// with fixed endpoints and a few extras; a generic provider needs only Issuer, ClientID and, for the
// server flow, ClientSecret.
type OIDCConfig struct {
	Name        string // route segment (lower case)
	DisplayName string // user id prefix; default Name
	Issuer      string // exact iss; discovery at Issuer + "/.well-known/openid-configuration"
	// ExtraIssuers are further exact iss values (Google's legacy "accounts.google.com").
	ExtraIssuers []string
	// IssuerTemplate and Tenants configure Entra multi-tenant sign-in: iss must be the template
	// with the token's tid, and tid one of Tenants (ids, or domain names resolved by discovery).
	IssuerTemplate  string
	Tenants         []string
	TenantDiscovery string // URL with {tenant}, for resolving tenant domain names to ids

	ClientID     string
	ClientSecret string
	// ClientSecretFunc computes the secret per request (Apple's ES256 JWT); overrides ClientSecret.
	ClientSecretFunc func(now time.Time) (string, error)
	// ExtraClientIDs are further audiences accepted in the client flow (mobile app client ids).
	ExtraClientIDs []string

	Scopes       []string
	AuthURL      string // overrides discovery
	TokenURL     string
	JWKSURL      string
	DiscoveryURL string
	// AuthParams are fixed extra authorization parameters (response_mode=form_post, access_type, ...).
	AuthParams url.Values
	// Options are the per-login parameters a client may pass through (scope, prompt, ...).
	Options []string
	// NoPKCE turns PKCE off for providers that do not support it (Apple).
	NoPKCE bool
	// TokenAuth is client_secret_basic or client_secret_post; empty: from discovery (basic when listed).
	TokenAuth  string
	Algorithms []jose.SignatureAlgorithm
	// HashedNonce: the ID token's nonce is the hex SHA-256 of the nonce we sent (Apple native SDKs).
	HashedNonce bool
	// LegacyClientBodyMessage is the original's message for a client-flow body without a token.
	MissingTokenMessage string
}

// OIDC is an OpenID Connect provider. Discovery and key sets are set up on first use (and retried
// after a failure), so a provider that is down at start-up does not stop Gatehouse.
type OIDC struct {
	cfg  OIDCConfig
	deps Deps

	mu       sync.Mutex
	st       atomic.Pointer[oidcState]
	lastFail time.Time
	lastErr  error
}

type oidcState struct {
	authURL, tokenURL string
	basicAuth         bool
	verifier          *idtoken.Verifier
}

// NewOIDC builds an OpenID Connect provider (no network access until first use).
func NewOIDC(cfg OIDCConfig, deps Deps) (*OIDC, error) {
	if cfg.Name == "" || cfg.ClientID == "" {
		return nil, errors.New("provider: an OpenID provider needs a name and a client id")
	}
	if cfg.Issuer == "" && cfg.IssuerTemplate == "" {
		return nil, fmt.Errorf("provider %s: issuer is required", cfg.Name)
	}
	if cfg.Issuer != "" {
		u, err := url.Parse(cfg.Issuer)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !loopback(u)) {
			return nil, fmt.Errorf("provider %s: issuer must be an https URL", cfg.Name)
		}
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = cfg.Name
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "email", "profile"}
	}
	if !slices.Contains(cfg.Scopes, "openid") {
		cfg.Scopes = append([]string{"openid"}, cfg.Scopes...)
	}
	if cfg.MissingTokenMessage == "" {
		cfg.MissingTokenMessage = fmt.Sprintf("The POST %s login request must contain an id_token in the body of the request.", cfg.DisplayName)
	}
	if deps.Run == nil {
		deps.Run = context.Background()
	}
	return &OIDC{cfg: cfg, deps: deps}, nil
}

func loopback(u *url.URL) bool {
	h := u.Hostname()
	return u.Scheme == "http" && (h == "127.0.0.1" || h == "localhost" || h == "::1")
}

// Name implements Provider.
func (p *OIDC) Name() string { return p.cfg.Name }

// DisplayName implements Provider.
func (p *OIDC) DisplayName() string { return p.cfg.DisplayName }

// ServerFlow implements Provider.
func (p *OIDC) ServerFlow() bool { return p.cfg.ClientSecret != "" || p.cfg.ClientSecretFunc != nil }

// Config returns the provider's configuration.
func (p *OIDC) Config() OIDCConfig { return p.cfg }

type discovery struct {
	Issuer           string   `json:"issuer"`
	AuthorizationURL string   `json:"authorization_endpoint"`
	TokenURL         string   `json:"token_endpoint"`
	JWKSURL          string   `json:"jwks_uri"`
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	ChallengeMethods []string `json:"code_challenge_methods_supported"`
}

// wellKnown is where OpenID Connect Discovery §4 puts the provider metadata, below the issuer.
const wellKnown = "/.well-known/openid-configuration"

// fetchDiscovery reads the provider metadata at u (an issuer's or an Entra tenant's well-known URL)
// with go-oidc's oidc.NewProvider, within our time limit, client and 1 MiB bound. The issuer it finds
// is checked by the caller: exactly the configured one, or a tenant's under the Entra template, which
// go-oidc's own exact check cannot express (so it is skipped with InsecureIssuerURLContext and never
// skipped by us). go-oidc decodes with encoding/json; the document is decoded again here with
// internal/jsonx so that duplicate or case-variant members are refused as everywhere else.
func (p *OIDC) fetchDiscovery(ctx context.Context, u string) (*discovery, error) {
	base, ok := strings.CutSuffix(u, wellKnown)
	if !ok {
		return nil, fmt.Errorf("discovery: %s is not a %s URL", u, wellKnown)
	}
	ctx, cancel := context.WithTimeout(ctx, p.deps.HTTP.timeout())
	defer cancel()
	c := p.deps.HTTP.client()
	ctx = oidc.ClientContext(ctx, &http.Client{Transport: limitBody{userAgent{c}}, Timeout: c.Timeout})
	ctx = oidc.InsecureIssuerURLContext(ctx, base)
	op, err := oidc.NewProvider(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var raw json.RawMessage
	if err := op.Claims(&raw); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var d discovery
	if err := jsonx.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return &d, nil
}

// limitBody refuses answers over maxBody (go-oidc reads whole bodies).
type limitBody struct{ next http.RoundTripper }

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	res.Body = &cappedBody{ReadCloser: res.Body, left: maxBody}
	return res, nil
}

type cappedBody struct {
	io.ReadCloser
	left int64
}

func (c *cappedBody) Read(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("response larger than 1 MiB")
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.ReadCloser.Read(b)
	c.left -= int64(n)
	return n, err
}

const retryAfterFailure = 5 * time.Second

// state sets the provider up on first use: discovery (metadata issuer must equal the configured one
// exactly), Entra tenant resolution, key set and verifier.
func (p *OIDC) state(ctx context.Context) (*oidcState, error) {
	if st := p.st.Load(); st != nil {
		return st, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.st.Load(); st != nil {
		return st, nil
	}
	now := p.deps.now()
	if !p.lastFail.IsZero() && now.Sub(p.lastFail) < retryAfterFailure {
		return nil, p.lastErr
	}
	st, err := p.setup(ctx)
	if err != nil {
		p.lastFail = now
		p.lastErr = errf(KindUnavailable, p.cfg.DisplayName, err, "The %s identity provider is unavailable.", p.cfg.DisplayName)
		return nil, p.lastErr
	}
	p.st.Store(st)
	return st, nil
}

func (p *OIDC) setup(ctx context.Context) (*oidcState, error) {
	c := p.cfg
	st := &oidcState{authURL: c.AuthURL, tokenURL: c.TokenURL, basicAuth: c.TokenAuth == "client_secret_basic"}
	jwks := c.JWKSURL
	if c.AuthURL == "" || c.TokenURL == "" || jwks == "" || c.TokenAuth == "" {
		du := c.DiscoveryURL
		if du == "" {
			du = strings.TrimSuffix(c.Issuer, "/") + wellKnown
		}
		d, err := p.fetchDiscovery(ctx, du)
		if err != nil {
			return nil, err
		}
		if c.Issuer != "" && d.Issuer != c.Issuer {
			return nil, fmt.Errorf("discovery: issuer %q differs from the configured issuer", d.Issuer)
		}
		if st.authURL == "" {
			st.authURL = d.AuthorizationURL
		}
		if st.tokenURL == "" {
			st.tokenURL = d.TokenURL
		}
		if jwks == "" {
			jwks = d.JWKSURL
		}
		if c.TokenAuth == "" {
			// RFC 8414: the default is client_secret_basic.
			st.basicAuth = len(d.TokenAuthMethods) == 0 || slices.Contains(d.TokenAuthMethods, "client_secret_basic")
		}
	}
	if jwks == "" {
		return nil, errors.New("no jwks_uri")
	}
	tenants := c.Tenants
	if c.IssuerTemplate != "" {
		var err error
		if tenants, err = p.resolveTenants(ctx); err != nil {
			return nil, err
		}
	}
	kc := p.deps.Keys
	kc.Issuer, kc.URL = c.Issuer, jwks
	if kc.Issuer == "" {
		kc.Issuer = c.IssuerTemplate
	}
	if kc.Client == nil {
		kc.Client = p.deps.HTTP.Client
	}
	keys, err := keyset.New(kc)
	if err != nil {
		return nil, err
	}
	go keys.Run(p.deps.Run)
	ip := idtoken.Provider{
		Name: c.Name, ClientIDs: append([]string{c.ClientID}, c.ExtraClientIDs...), Keys: keys, Algorithms: c.Algorithms,
	}
	if c.IssuerTemplate != "" {
		ip.IssuerTemplate, ip.TenantAllowlist = c.IssuerTemplate, tenants
	} else {
		ip.Issuers = append([]string{c.Issuer}, c.ExtraIssuers...)
	}
	v, err := idtoken.New(idtoken.Config{Providers: []idtoken.Provider{ip}, Clock: p.deps.Clock})
	if err != nil {
		return nil, err
	}
	st.verifier = v
	return st, nil
}

// resolveTenants turns tenant domain names into tenant ids through the tenant's discovery document
// (the original resolved MS_AadTenants domains at start-up and crashed when that failed; here a
// failure is retried at the next login).
func (p *OIDC) resolveTenants(ctx context.Context) ([]string, error) {
	var out []string
	for _, t := range p.cfg.Tenants {
		if isGUID(t) || p.cfg.TenantDiscovery == "" {
			out = append(out, strings.ToLower(t))
			continue
		}
		d, err := p.fetchDiscovery(ctx, strings.ReplaceAll(p.cfg.TenantDiscovery, "{tenant}", url.PathEscape(t)))
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t, err)
		}
		pre, suf, _ := strings.Cut(p.cfg.IssuerTemplate, "{tenantid}")
		tid, ok := strings.CutPrefix(d.Issuer, pre)
		if ok {
			tid, ok = strings.CutSuffix(tid, suf)
		}
		if !ok || !isGUID(tid) {
			return nil, fmt.Errorf("tenant %s: unexpected issuer", t)
		}
		out = append(out, strings.ToLower(tid))
	}
	return out, nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// AuthCodeURL implements Provider: response_type=code with state, nonce and PKCE S256, built by
// golang.org/x/oauth2.
func (p *OIDC) AuthCodeURL(ctx context.Context, r AuthRequest) (*Redirect, error) {
	st, err := p.state(ctx)
	if err != nil {
		return nil, err
	}
	opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("nonce", r.Nonce)}
	if !p.cfg.NoPKCE {
		// The login package keeps the verifier in the sealed flow cookie and hands us its challenge
		// (oauth2.S256ChallengeFromVerifier); the same parameters oauth2.S256ChallengeOption sets.
		opts = append(opts, oauth2.SetAuthURLParam("code_challenge", r.CodeChallenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	}
	for k, v := range p.cfg.AuthParams {
		if len(v) > 0 {
			opts = append(opts, oauth2.SetAuthURLParam(k, v[0]))
		}
	}
	for _, k := range p.cfg.Options {
		if v := r.Options.Get(k); v != "" {
			if k == "scope" {
				v = mergeScopes(p.cfg.Scopes, v)
			}
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	return &Redirect{URL: p.oauth2(st, "", r.RedirectURI).AuthCodeURL(r.State, opts...)}, nil
}

func mergeScopes(base []string, extra string) string {
	out := slices.Clone(base)
	for _, s := range strings.FieldsFunc(extra, func(r rune) bool { return r == ' ' || r == ',' }) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

// withQuery adds q to a URL that may have a query already (providers without an oauth2.Config).
func withQuery(base string, q url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q.Encode()
}

// IsCallback implements Provider.
func (p *OIDC) IsCallback(params url.Values) bool { return params.Has("code") || params.Has("error") }

func (p *OIDC) secret() (string, error) {
	if p.cfg.ClientSecretFunc != nil {
		return p.cfg.ClientSecretFunc(p.deps.now())
	}
	return p.cfg.ClientSecret, nil
}

// oauth2 is the provider's golang.org/x/oauth2 configuration: client authentication at the token
// endpoint by HTTP Basic (client_secret_basic) or in the body (client_secret_post), as discovery or
// the configuration says; never probed (a failed first attempt would cost a code).
func (p *OIDC) oauth2(st *oidcState, secret, redirectURI string) *oauth2.Config {
	style := oauth2.AuthStyleInParams
	if st.basicAuth && secret != "" {
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: secret, RedirectURL: redirectURI, Scopes: p.cfg.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: st.authURL, TokenURL: st.tokenURL, AuthStyle: style},
	}
}

// redeem exchanges an authorization code at the token endpoint (oauth2.Config.Exchange, with the
// PKCE verifier when there is one).
func (p *OIDC) redeem(ctx context.Context, st *oidcState, code, verifier, redirectURI string) (*tokens, error) {
	secret, err := p.secret()
	if err != nil {
		return nil, errf(KindConfig, p.cfg.DisplayName, err, "The %s client secret could not be computed.", p.cfg.DisplayName)
	}
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	return exchange(ctx, p.deps.HTTP, p.cfg.DisplayName, func(ctx context.Context) (*oauth2.Token, error) {
		return p.oauth2(st, secret, redirectURI).Exchange(ctx, code, opts...)
	})
}

// Exchange implements Provider: redeem the code with the PKCE verifier, then verify the ID token
// (signature, issuer, audience, expiry, nonce).
func (p *OIDC) Exchange(ctx context.Context, c Callback) (*Identity, error) {
	if err := CallbackError(p.cfg.DisplayName, c.Params); err != nil {
		return nil, err
	}
	code := c.Params.Get("code")
	if code == "" {
		return nil, errf(KindInvalid, p.cfg.DisplayName, nil, "Redirect from %s does not contain the required code parameter.", p.cfg.Name)
	}
	st, err := p.state(ctx)
	if err != nil {
		return nil, err
	}
	verifier := c.Verifier
	if p.cfg.NoPKCE {
		verifier = ""
	}
	tr, err := p.redeem(ctx, st, code, verifier, c.RedirectURI)
	if err != nil {
		return nil, err
	}
	if tr.IDToken == "" {
		return nil, errf(KindUnavailable, p.cfg.DisplayName, errors.New("no id_token"), "The %s token endpoint did not return an id_token.", p.cfg.DisplayName)
	}
	id, err := p.verify(ctx, st, tr.IDToken, c.Nonce, false)
	if err != nil {
		return nil, err
	}
	id.AccessToken, id.RefreshToken, id.IDToken = tr.AccessToken, tr.RefreshToken, tr.IDToken
	id.ExpiresAt = expiry(p.deps.now(), tr.ExpiresIn)
	return id, nil
}

// VerifyIDToken verifies an ID token for this provider; nonce "" means none was sent.
func (p *OIDC) VerifyIDToken(ctx context.Context, raw, nonce string) (*Identity, error) {
	st, err := p.state(ctx)
	if err != nil {
		return nil, err
	}
	return p.verify(ctx, st, raw, nonce, p.cfg.HashedNonce)
}

func (p *OIDC) verify(ctx context.Context, st *oidcState, raw, nonce string, hashed bool) (*Identity, error) {
	var opts []idtoken.Option
	if nonce != "" {
		if hashed {
			h := sha256.Sum256([]byte(nonce))
			nonce = hex.EncodeToString(h[:])
		}
		opts = append(opts, idtoken.WithNonce(nonce))
	}
	claims, err := st.verifier.Verify(ctx, p.cfg.Name, raw, opts...)
	if err != nil {
		kind := KindRejected
		if errors.Is(err, idtoken.ErrKeysUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			kind = KindUnavailable
		}
		var ie *idtoken.Error
		reason := "invalid"
		if errors.As(err, &ie) {
			reason = string(ie.Reason)
		}
		return nil, errf(kind, p.cfg.DisplayName, err, "The %s id_token was rejected (%s).", p.cfg.DisplayName, reason)
	}
	all, err := claims.Map()
	if err != nil {
		return nil, errf(KindRejected, p.cfg.DisplayName, err, "The %s id_token was rejected (malformed).", p.cfg.DisplayName)
	}
	// One issuer per provider for identities (issue 10 finding 8): the further accepted spellings
	// (Google's legacy "accounts.google.com") are recorded as the configured issuer.
	iss := claims.Issuer
	if p.cfg.Issuer != "" && slices.Contains(p.cfg.ExtraIssuers, iss) {
		iss = p.cfg.Issuer
	}
	return &Identity{
		Provider: p.cfg.DisplayName, Issuer: iss, Subject: claims.Subject,
		Claims: selectClaims(all), nonce: claims.Nonce,
	}, nil
}

// ClientLogin implements Provider: {"id_token": ...} (optionally with "nonce", the raw value the app
// sent to the provider), or {"authorization_code": ..., "code_verifier": ..., "redirect_uri": ...,
// "nonce": ...} from a native SDK, redeemed at the token endpoint.
//
// A code is redeemed only with its PKCE verifier (RFC 7636; the app made the challenge), so a code
// intercepted on its way to the app (custom-scheme hijacking, logs, referrers) cannot be turned into a
// session by whoever holds it (issue 10 finding 13). Providers without PKCE (Apple) need the nonce
// instead. Whenever the ID token the code yields carries a nonce, the body must carry the matching
// value: a code minted for another login's nonce is refused.
func (p *OIDC) ClientLogin(ctx context.Context, body map[string]any) (*Identity, error) {
	nonce := bodyString(body, "nonce")
	if raw := bodyString(body, "id_token"); raw != "" {
		return p.VerifyIDToken(ctx, raw, nonce)
	}
	code := bodyString(body, "authorization_code", "code")
	if code == "" {
		return nil, errf(KindInvalid, p.cfg.DisplayName, nil, "%s", p.cfg.MissingTokenMessage)
	}
	if !p.ServerFlow() {
		return nil, errf(KindConfig, p.cfg.DisplayName, nil, "Logging in with %s by authorization code is not enabled.", p.cfg.Name)
	}
	verifier := bodyString(body, "code_verifier")
	if p.cfg.NoPKCE {
		if nonce == "" {
			return nil, errf(KindInvalid, p.cfg.DisplayName, nil, "The POST %s login request with an authorization_code must contain the nonce the app sent to %s.", p.cfg.Name, p.cfg.DisplayName)
		}
		verifier = ""
	} else if !ValidVerifier(verifier) {
		return nil, errf(KindInvalid, p.cfg.DisplayName, nil, "The POST %s login request with an authorization_code must contain its PKCE code_verifier (43 to 128 characters of A-Z a-z 0-9 - . _ ~).", p.cfg.Name)
	}
	st, err := p.state(ctx)
	if err != nil {
		return nil, err
	}
	tr, err := p.redeem(ctx, st, code, verifier, bodyString(body, "redirect_uri"))
	if err != nil {
		return nil, err
	}
	if tr.IDToken == "" {
		return nil, errf(KindUnavailable, p.cfg.DisplayName, errors.New("no id_token"), "The %s token endpoint did not return an id_token.", p.cfg.DisplayName)
	}
	id, err := p.verify(ctx, st, tr.IDToken, nonce, p.cfg.HashedNonce)
	if err != nil {
		return nil, err
	}
	if nonce == "" && id.nonce != "" {
		return nil, errf(KindRejected, p.cfg.DisplayName, errors.New("id_token nonce without a nonce in the request"),
			"The %s id_token carries a nonce: the login request must contain it.", p.cfg.DisplayName)
	}
	id.AccessToken, id.RefreshToken, id.IDToken = tr.AccessToken, tr.RefreshToken, tr.IDToken
	id.ExpiresAt = expiry(p.deps.now(), tr.ExpiresIn)
	return id, nil
}

// ValidVerifier reports whether v is a PKCE code_verifier as RFC 7636 §4.1 defines it.
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}
