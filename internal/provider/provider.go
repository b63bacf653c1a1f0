// Package provider is Gatehouse's identity providers behind one interface: the server flow (redirect
// to the provider, then complete from its callback) and the client flow (verify a token an app got
// from the provider's SDK). Each provider is one file: generic OpenID Connect (any issuer, by
// discovery), Google, Microsoft (Entra ID "aad" and personal accounts "microsoftaccount", v2.0
// endpoints), Facebook (Graph API), X/Twitter (OAuth 1.0a) and Sign in with Apple.
//
// Every ID token is verified by package idtoken on key sets from package keyset. Every provider
// endpoint URL can be overridden (tests, sovereign clouds). Calls to providers are bounded in time and
// size, and error messages never contain tokens, secrets or raw provider output.
package provider

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/jsonx"
	"github.com/gatehouse/gatehouse/internal/password"
)

// Identity is who the provider says the user is.
type Identity struct {
	Provider string // display name, the user id prefix (Google, Facebook, MicrosoftAccount, Twitter, Aad, Apple, <name>)
	Issuer   string // iss, or a fixed URL for providers without ID tokens
	Subject  string // the provider's stable user id
	Claims   map[string]any
	// Provider tokens, kept only when configured.
	AccessToken       string
	AccessTokenSecret string
	RefreshToken      string
	IDToken           string
	ExpiresAt         time.Time

	nonce string // the verified ID token's nonce claim (OpenID providers)
}

// AuthRequest starts a server flow.
type AuthRequest struct {
	State         string
	Nonce         string // OpenID providers put it in the ID token
	CodeChallenge string // PKCE S256 challenge (providers that support PKCE send it)
	RedirectURI   string // our callback, built from the configured public URL
	// Options are the client's per-login overrides, already filtered to what the provider allows
	// (scope, display, access_type, prompt, login_hint, domain_hint).
	Options url.Values
}

// Redirect is where to send the browser, plus provider data to keep in the sealed flow cookie.
type Redirect struct {
	URL  string
	Keep map[string]string
}

// Callback is the provider's redirect back to us.
type Callback struct {
	Params      url.Values // query (or form_post body)
	Verifier    string     // PKCE verifier
	Nonce       string
	RedirectURI string
	Kept        map[string]string
}

// Provider is one identity provider.
type Provider interface {
	// Name is the route segment, lower case: google, facebook, microsoftaccount, twitter, aad, apple or
	// a configured OpenID provider's name.
	Name() string
	// DisplayName is the user id prefix and token audience: Google, Facebook, MicrosoftAccount,
	// Twitter, Aad, Apple, or the configured name.
	DisplayName() string
	// ServerFlow reports whether the server flow is configured (client id and secret present).
	ServerFlow() bool
	// AuthCodeURL starts the server flow.
	AuthCodeURL(ctx context.Context, r AuthRequest) (*Redirect, error)
	// IsCallback reports whether request parameters are the provider's callback (code, error, ...).
	IsCallback(params url.Values) bool
	// Exchange completes the server flow from the callback.
	Exchange(ctx context.Context, c Callback) (*Identity, error)
	// ClientLogin verifies what an app posts (id_token, access_token, authorization_code, ...).
	ClientLogin(ctx context.Context, body map[string]any) (*Identity, error)
}

// Kind classifies a provider failure for the HTTP status.
type Kind int

// Kinds.
const (
	// KindInvalid: the request lacks what the provider needs (the original's 401 messages).
	KindInvalid Kind = iota
	// KindRejected: the provider, or our checks, rejected the token, code or state.
	KindRejected
	// KindDenied: the provider redirected back with an error (the user cancelled, ...).
	KindDenied
	// KindUnavailable: the provider was unreachable, too slow, or answered something unusable.
	KindUnavailable
	// KindUnsupported: this flow does not exist for the provider.
	KindUnsupported
	// KindConfig: the provider is not configured for this flow.
	KindConfig
)

// Error is a provider failure. Msg is safe to show to the client: it never holds a token, a secret or
// raw provider output other than an OAuth error code and description (which the login package
// escapes for its context).
type Error struct {
	Kind     Kind
	Provider string
	Msg      string
	Err      error // the cause, for logs
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Err }

func errf(kind Kind, provider string, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Provider: provider, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// KindOf returns the kind of a provider error (KindUnavailable for any other error).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnavailable
}

// Defaults for calls to providers.
const (
	DefaultTimeout = 10 * time.Second
	maxBody        = 1 << 20
)

// HTTP is what providers need to call out: a client with timeouts and a per-call time limit.
type HTTP struct {
	Client  *http.Client
	Timeout time.Duration
}

func (h HTTP) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return http.DefaultClient
}

func (h HTTP) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return DefaultTimeout
}

// do sends a request bounded by the timeout and returns the status and at most 1 MiB of body. The
// request's context ends with the call, so nothing outlives it.
func (h HTTP) do(ctx context.Context, req *http.Request) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	req = req.WithContext(ctx)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", "Gatehouse")
	resp, err := h.client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if len(b) > maxBody {
		return resp.StatusCode, nil, errors.New("response larger than 1 MiB")
	}
	return resp.StatusCode, b, nil
}

func (h HTTP) postForm(ctx context.Context, u string, form url.Values, header http.Header) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.do(ctx, req)
}

func (h HTTP) get(ctx context.Context, u string, header http.Header) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return h.do(ctx, req)
}

// NewVerifier returns a PKCE code verifier: 32 random bytes, base64url (43 characters, RFC 7636 §4.1).
func NewVerifier() string { return RandomString(32) }

// S256Challenge is the PKCE S256 challenge of a verifier.
func S256Challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// RandomString returns n random bytes, base64url encoded.
func RandomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand does not fail on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// bodyString reads a string member of a client-flow body ("" when absent or not a string).
func bodyString(body map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := body[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// oauthError is the standard OAuth 2.0 error body (RFC 6749 §5.2).
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// CallbackError turns a callback's error parameters into a KindDenied error "<error>: <description>"
// (the original's format), or nil when there is none. The values are bounded in length; the login
// package escapes them for their output context.
func CallbackError(provider string, p url.Values) error {
	code := p.Get("error")
	if code == "" {
		return nil
	}
	msg := clip(code, 100)
	if d := p.Get("error_description"); d != "" {
		msg += ": " + clip(d, 300)
	}
	return &Error{Kind: KindDenied, Provider: provider, Msg: msg}
}

func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

// tokenResponse is an OAuth 2.0 token endpoint answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

// exchangeCode calls a token endpoint (authorization_code grant) and decodes the JSON answer. OAuth
// error answers are KindRejected with the error code; anything else unusable is KindUnavailable.
func exchangeCode(ctx context.Context, h HTTP, provider, tokenURL string, form url.Values, basicID, basicSecret string) (*tokenResponse, error) {
	header := http.Header{}
	if basicID != "" {
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(basicID)+":"+url.QueryEscape(basicSecret))))
	}
	status, body, err := h.postForm(ctx, tokenURL, form, header)
	if err != nil {
		return nil, errf(KindUnavailable, provider, err, "The %s token endpoint could not be reached.", provider)
	}
	if status != http.StatusOK {
		var oe oauthError
		if jsonx.Unmarshal(body, &oe) == nil && oe.Error != "" {
			return nil, errf(KindRejected, provider, fmt.Errorf("token endpoint: %s", oe.Error), "The %s token request failed: %s", provider, clip(oe.Error, 100))
		}
		return nil, errf(KindUnavailable, provider, fmt.Errorf("token endpoint: HTTP %d", status), "The %s token request failed with HTTP status code %d.", provider, status)
	}
	var tr tokenResponse
	if err := jsonx.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" && tr.IDToken == "" {
		if err == nil {
			err = errors.New("no access_token")
		}
		return nil, errf(KindUnavailable, provider, err, "Unexpected content in the response from the %s token endpoint.", provider)
	}
	return &tr, nil
}

func expiry(now time.Time, seconds int64) time.Time {
	if seconds <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(seconds) * time.Second).UTC()
}

// selectClaims keeps the profile claims worth storing with an identity (never tokens).
func selectClaims(all map[string]any, keys ...string) map[string]any {
	if len(keys) == 0 {
		keys = profileClaims
	}
	out := map[string]any{}
	for _, k := range keys {
		switch v := all[k].(type) {
		case string:
			// Over-long values are dropped, not stored (the stored claims are bounded: issue 10
			// finding 15); emails over RFC 5321's 254 bytes are not deliverable addresses anyway.
			if len(v) > maxClaimBytes || (k == "email" && len(v) > 254) {
				continue
			}
			out[k] = v
		case bool, float64:
			out[k] = v
		}
		// Objects, arrays and null are never profile data: dropped.
	}
	// Provider emails follow the accounts' email profile (issue 10 finding 17): stored normalized, and
	// dropped (with email_verified) when they hold invisible or formatting characters.
	if e, ok := out["email"].(string); ok {
		// Dot-less domains allowed: a provider vouches for its own intranet addresses.
		if n, err := (password.Policy{AllowDotlessDomain: true}).NormalizeEmail(e); err == nil {
			out["email"] = n
		} else {
			delete(out, "email")
			delete(out, "email_verified")
		}
	}
	return out
}

// maxClaimBytes bounds each string claim kept; with the dozen profile claims the total stays well
// under the users directory's 8 KiB.
const maxClaimBytes = 512

var profileClaims = []string{"email", "email_verified", "name", "given_name", "family_name", "preferred_username",
	"picture", "locale", "tid", "oid", "hd", "is_private_email"}

// Registry holds the configured providers by name.
type Registry struct {
	byName map[string]Provider
	order  []string
}

// NewRegistry indexes providers; names must be unique (case-insensitive).
func NewRegistry(ps ...Provider) (*Registry, error) {
	r := &Registry{byName: map[string]Provider{}}
	for _, p := range ps {
		n := strings.ToLower(p.Name())
		if _, dup := r.byName[n]; dup {
			return nil, fmt.Errorf("provider: %q configured twice", n)
		}
		r.byName[n] = p
		r.order = append(r.order, n)
	}
	return r, nil
}

// Get finds a provider by route segment (case-insensitive).
func (r *Registry) Get(name string) (Provider, bool) {
	if r == nil {
		return nil, false
	}
	p, ok := r.byName[strings.ToLower(name)]
	return p, ok
}

// Names lists the configured providers in configuration order.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	return append([]string(nil), r.order...)
}
