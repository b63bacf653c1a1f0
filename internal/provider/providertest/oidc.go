// Package providertest has fake identity providers for tests: an OpenID Connect provider (discovery,
// authorize, token endpoint with PKCE and client authentication, JWKS via keysettest), the Facebook
// Graph API and the X/Twitter OAuth 1.0a API. They answer with the real services' response and error
// shapes and check what the real services check.
package providertest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/keyset/keysettest"
)

// OP is a fake OpenID provider. Every path ending in /.well-known/openid-configuration is discovery,
// /authorize the authorization endpoint, /token the token endpoint, /keys or /jwks the key set.
type OP struct {
	t    testing.TB
	srv  *httptest.Server
	Keys *keysettest.Provider

	mu sync.Mutex
	// Issuer is put in discovery and ID tokens (default: the server URL).
	Issuer       string
	ClientID     string
	ClientSecret string
	// AuthMethod is client_secret_basic (default) or client_secret_post; the other is refused.
	AuthMethod string
	// RequirePKCE refuses an authorization request without an S256 challenge.
	RequirePKCE bool
	// Subject and Claims go into the ID tokens issued by the token endpoint.
	Subject string
	Claims  map[string]any
	// TenantIssuers maps a tenant name in a discovery path to the issuer its discovery returns.
	TenantIssuers map[string]string
	// TokenStatus, when set, makes the token endpoint fail with that status and an OAuth error body.
	TokenStatus int
	// Hang makes the token endpoint hang until the request is cancelled.
	Hang bool
	// NoDiscovery makes discovery answer 500.
	NoDiscovery bool
	// CheckSecret, when set, verifies the client secret instead of comparing it with ClientSecret
	// (Apple's secret is a signed JWT).
	CheckSecret func(secret string) bool

	closing    chan struct{}
	codes      map[string]grant
	TokenCalls atomic.Int64
	// LastAuthorize is the query of the last authorization request.
	LastAuthorize url.Values
}

type grant struct {
	clientID, redirectURI, challenge, method, nonce string
	used                                            bool
}

// NewOP starts a fake OpenID provider for the client id and secret.
func NewOP(t testing.TB, clientID, clientSecret string) *OP {
	t.Helper()
	o := &OP{t: t, ClientID: clientID, ClientSecret: clientSecret, AuthMethod: "client_secret_basic", Subject: "op-user-1",
		codes: map[string]grant{}, TenantIssuers: map[string]string{}, closing: make(chan struct{})}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	t.Cleanup(func() { close(o.closing) }) // runs first: releases hanging requests
	o.Issuer = o.srv.URL
	o.Keys = keysettest.NewProvider(t)
	return o
}

// URL is the provider's base URL.
func (o *OP) URL() string { return o.srv.URL }

// Client is an HTTP client for the fake.
func (o *OP) Client() *http.Client { return o.srv.Client() }

func (o *OP) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/.well-known/openid-configuration"):
		o.discovery(w, r)
	case strings.HasSuffix(p, "/authorize"):
		http.Error(w, "use OP.Authorize in tests", http.StatusNotImplemented)
	case strings.HasSuffix(p, "/token"):
		o.token(w, r)
	case strings.HasSuffix(p, "/keys") || strings.HasSuffix(p, "/jwks"):
		resp, err := o.Keys.Client().Get(o.Keys.JWKSURL())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", resp.Header.Get("Cache-Control"))
		io.Copy(w, resp.Body) //nolint:errcheck
	default:
		http.NotFound(w, r)
	}
}

func (o *OP) discovery(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.NoDiscovery {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	iss := o.Issuer
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/v2.0/.well-known/openid-configuration")
	if ti, ok := o.TenantIssuers[tenant]; ok {
		iss = ti
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                o.srv.URL + "/authorize",
		"token_endpoint":                        o.srv.URL + "/token",
		"jwks_uri":                              o.srv.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{o.AuthMethod},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck
}

func oauthErr(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// Authorize plays the user's browser at the authorization endpoint: it checks the request as the
// provider would and returns the callback parameters (code and state) and the redirect URI.
func (o *OP) Authorize(authURL string) (url.Values, string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, "", err
	}
	q := u.Query()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.LastAuthorize = q
	if q.Get("client_id") != o.ClientID {
		return nil, "", fmt.Errorf("unknown client_id %q", q.Get("client_id"))
	}
	if q.Get("response_type") != "code" {
		return nil, "", fmt.Errorf("unsupported response_type %q", q.Get("response_type"))
	}
	if o.RequirePKCE && (q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256") {
		return nil, "", fmt.Errorf("PKCE S256 required")
	}
	code := fmt.Sprintf("code-%d-%d", time.Now().UnixNano(), len(o.codes))
	o.codes[code] = grant{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
		method: q.Get("code_challenge_method"), nonce: q.Get("nonce")}
	return url.Values{"code": {code}, "state": {q.Get("state")}}, q.Get("redirect_uri"), nil
}

func (o *OP) token(w http.ResponseWriter, r *http.Request) {
	o.TokenCalls.Add(1)
	if r.Method != http.MethodPost {
		oauthErr(w, http.StatusMethodNotAllowed, "invalid_request", "POST required")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthErr(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	o.mu.Lock()
	hang := o.Hang
	o.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-o.closing:
		}
		return
	}
	if len(r.URL.RawQuery) > 0 {
		oauthErr(w, http.StatusBadRequest, "invalid_request", "parameters must be in the body")
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.TokenStatus != 0 {
		oauthErr(w, o.TokenStatus, "temporarily_unavailable", "try later")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if (basic && o.AuthMethod != "client_secret_basic") || (!basic && o.AuthMethod != "client_secret_post") ||
		id != o.ClientID || !o.secretOK(secret) {
		oauthErr(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthErr(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	g, ok := o.codes[r.PostForm.Get("code")]
	if !ok || g.used {
		oauthErr(w, http.StatusBadRequest, "invalid_grant", "code unknown or used")
		return
	}
	g.used = true
	o.codes[r.PostForm.Get("code")] = g
	if g.redirectURI != r.PostForm.Get("redirect_uri") {
		oauthErr(w, http.StatusBadRequest, "invalid_grant", "redirect_uri mismatch")
		return
	}
	if g.challenge != "" {
		h := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(h[:]) != g.challenge {
			oauthErr(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": "op-access-token", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "op-refresh-token",
		"id_token": o.idTokenLocked(o.ClientID, g.nonce, nil),
	})
}

func (o *OP) secretOK(secret string) bool {
	if o.CheckSecret != nil {
		return o.CheckSecret(secret)
	}
	return secret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(o.ClientSecret)) == 1
}

// IDToken signs an ID token for aud (with nonce when not empty) from the provider's current key.
func (o *OP) IDToken(aud, nonce string, extra map[string]any) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.idTokenLocked(aud, nonce, extra)
}

func (o *OP) idTokenLocked(aud, nonce string, extra map[string]any) string {
	c := o.Keys.Claims(o.Subject, aud)
	c["iss"] = o.Issuer
	if nonce != "" {
		c["nonce"] = nonce
	}
	for k, v := range o.Claims {
		c[k] = v
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return o.Keys.Sign(c)
}

// Set changes fields under the fake's lock.
func (o *OP) Set(f func(o *OP)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f(o)
}
