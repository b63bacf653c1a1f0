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
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

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

// tokens are what a token endpoint answered.
type tokens struct {
	AccessToken, RefreshToken, IDToken string
	ExpiresIn                          int64
}

// exchange runs one token request through golang.org/x/oauth2 (fetch) with our client, our time limit
// and our error classes: OAuth error answers (RFC 6749 §5.2) are KindRejected with the error code;
// an unreachable or hanging endpoint, another HTTP status or an unusable answer are KindUnavailable.
//
// x/oauth2 is looser than the rest of our provider input in two ways, both acceptable here: it decodes
// the answer with encoding/json (not internal/jsonx) and truncates it at 1 MiB instead of refusing it.
// The answer comes from the provider's token endpoint over TLS, authenticated by our client
// credentials, and the one value we trust from it, the ID token, is then verified on its own terms
// (signature, iss, aud, exp, nonce) by package idtoken; access and refresh tokens are only stored.
// x/oauth2 also requires an access_token, which every provider we support returns with the ID token.
func exchange(ctx context.Context, h HTTP, provider string, fetch func(context.Context) (*oauth2.Token, error)) (*tokens, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: userAgent{h.client()}, Timeout: h.client().Timeout})
	tok, err := fetch(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		var ue *url.Error
		var pe *Error
		switch {
		case errors.As(err, &pe):
			return nil, pe // classified by fetch (Facebook's Graph errors)
		case errors.As(err, &re) && re.ErrorCode != "":
			return nil, errf(KindRejected, provider, fmt.Errorf("token endpoint: %s", re.ErrorCode), "The %s token request failed: %s", provider, clip(re.ErrorCode, 100))
		case errors.As(err, &re) && re.Response != nil:
			return nil, errf(KindUnavailable, provider, fmt.Errorf("token endpoint: HTTP %d", re.Response.StatusCode), "The %s token request failed with HTTP status code %d.", provider, re.Response.StatusCode)
		case errors.As(err, &ue), ctx.Err() != nil:
			return nil, errf(KindUnavailable, provider, err, "The %s token endpoint could not be reached.", provider)
		default:
			return nil, errf(KindUnavailable, provider, err, "Unexpected content in the response from the %s token endpoint.", provider)
		}
	}
	out := &tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresIn: tok.ExpiresIn}
	if v, ok := tok.Extra("id_token").(string); ok {
		out.IDToken = v
	} else if tok.Extra("id_token") != nil {
		return nil, errf(KindUnavailable, provider, errors.New("id_token is not a string"), "Unexpected content in the response from the %s token endpoint.", provider)
	}
	return out, nil
}

// userAgent names Gatehouse and asks for JSON on token requests, as our other provider calls do.
type userAgent struct{ c *http.Client }

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", "Gatehouse")
	if r.Header.Get("Accept") == "" {
		r.Header.Set("Accept", "application/json")
	}
	t := u.c.Transport
	if t == nil {
		t = http.DefaultTransport
	}
	return t.RoundTrip(r)
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
