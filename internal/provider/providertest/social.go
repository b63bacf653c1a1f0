package providertest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
)

// FBUser is a Facebook user token known to the fake Graph API.
type FBUser struct {
	UserID, AppID, Name, Email string
	Valid                      bool
}

// Facebook is a fake Graph API (version prefix /v21.0): debug_token (app access token in the
// Authorization header), /me (user token, appsecret_proof required), /oauth/access_token (code
// exchange by POST with PKCE).
type Facebook struct {
	srv              *httptest.Server
	AppID, AppSecret string

	mu     sync.Mutex
	Tokens map[string]FBUser
	codes  map[string]fbCode
	// Down makes every call answer 500 with a Graph error body.
	Down bool
	// SecretInQuery records whether a request ever carried the app secret in its URL.
	SecretInQuery bool
}

type fbCode struct{ redirectURI, challenge, token string }

// NewFacebook starts the fake.
func NewFacebook(t testing.TB, appID, appSecret string) *Facebook {
	f := &Facebook{AppID: appID, AppSecret: appSecret, Tokens: map[string]FBUser{}, codes: map[string]fbCode{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// GraphURL is the versioned Graph base URL.
func (f *Facebook) GraphURL() string { return f.srv.URL + "/v21.0" }

// AuthURL is the dialog URL.
func (f *Facebook) AuthURL() string { return f.srv.URL + "/v21.0/dialog/oauth" }

func graphErr(w http.ResponseWriter, status int, msg, typ string, code int) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code, "fbtrace_id": "AbCdEf"}})
}

func (f *Facebook) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Contains(r.URL.RawQuery, url.QueryEscape(f.AppSecret)) || strings.Contains(r.URL.RawQuery, f.AppSecret) {
		f.SecretInQuery = true
	}
	if f.Down {
		graphErr(w, http.StatusInternalServerError, "An unexpected error has occurred. Please retry your request later.", "OAuthException", 2)
		return
	}
	switch r.URL.Path {
	case "/v21.0/debug_token":
		if r.Header.Get("Authorization") != "OAuth "+f.AppID+"|"+f.AppSecret {
			graphErr(w, http.StatusBadRequest, "Invalid OAuth access token signature.", "OAuthException", 190)
			return
		}
		u, ok := f.Tokens[r.URL.Query().Get("input_token")]
		if !ok {
			writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"error": map[string]any{"code": 190, "message": "Invalid OAuth access token."}, "is_valid": false, "scopes": []string{}}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"app_id": u.AppID, "type": "USER", "application": "Test",
			"data_access_expires_at": 1900000000, "expires_at": 1900000000, "is_valid": u.Valid, "scopes": []string{"public_profile", "email"}, "user_id": u.UserID}})
	case "/v21.0/me":
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		u, known := f.Tokens[tok]
		if !ok || !known || !u.Valid {
			graphErr(w, http.StatusBadRequest, "Invalid OAuth access token data.", "OAuthException", 190)
			return
		}
		mac := hmac.New(sha256.New, []byte(f.AppSecret))
		mac.Write([]byte(tok))
		if r.URL.Query().Get("appsecret_proof") != hex.EncodeToString(mac.Sum(nil)) {
			graphErr(w, http.StatusBadRequest, "Invalid appsecret_proof provided in the API argument", "GraphMethodException", 100)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": u.UserID, "name": u.Name, "email": u.Email})
	case "/v21.0/oauth/access_token":
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			graphErr(w, http.StatusBadRequest, "Unsupported method", "OAuthException", 100)
			return
		}
		pf := r.PostForm
		c, ok := f.codes[pf.Get("code")]
		if pf.Get("client_id") != f.AppID || subtle.ConstantTimeCompare([]byte(pf.Get("client_secret")), []byte(f.AppSecret)) != 1 {
			graphErr(w, http.StatusBadRequest, "Error validating client secret.", "OAuthException", 1)
			return
		}
		if !ok || c.redirectURI != pf.Get("redirect_uri") {
			graphErr(w, http.StatusBadRequest, "Invalid verification code format.", "OAuthException", 100)
			return
		}
		delete(f.codes, pf.Get("code"))
		if c.challenge != "" && oauth2.S256ChallengeFromVerifier(pf.Get("code_verifier")) != c.challenge {
			graphErr(w, http.StatusBadRequest, "Invalid code verifier.", "OAuthException", 100)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": c.token, "token_type": "bearer", "expires_in": 5183944})
	default:
		graphErr(w, http.StatusBadRequest, "Unknown path components", "OAuthException", 2500)
	}
}

// Authorize plays the login dialog: the user with token tok consents; returns callback params.
func (f *Facebook) Authorize(authURL, tok string) (url.Values, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	if q.Get("client_id") != f.AppID {
		return nil, fmt.Errorf("unknown app")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	code := "fbcode-" + fmt.Sprint(len(f.codes)+1)
	f.codes[code] = fbCode{redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), token: tok}
	return url.Values{"code": {code}, "state": {q.Get("state")}}, nil
}

// Set changes fields under the fake's lock.
func (f *Facebook) Set(fn func(f *Facebook)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// Twitter is a fake X/Twitter OAuth 1.0a API that checks every HMAC-SHA1 signature.
type Twitter struct {
	srv                 *httptest.Server
	ConsumerKey, Secret string
	mu                  sync.Mutex
	requestTokens       map[string]twRT   // oauth_token -> secret, callback, verifier
	AccessTokens        map[string]TwUser // token -> user
	accessSecrets       map[string]string // token -> secret
	verifiers           map[string]string // request token -> verifier
}

type twRT struct{ secret, callback string }

// TwUser is an X/Twitter user.
type TwUser struct{ ID, ScreenName, Name string }

// NewTwitter starts the fake.
func NewTwitter(t testing.TB, key, secret string) *Twitter {
	x := &Twitter{ConsumerKey: key, Secret: secret, requestTokens: map[string]twRT{}, AccessTokens: map[string]TwUser{},
		accessSecrets: map[string]string{}, verifiers: map[string]string{}}
	x.srv = httptest.NewServer(http.HandlerFunc(x.serve))
	t.Cleanup(x.srv.Close)
	return x
}

// URL is the API base URL.
func (x *Twitter) URL() string { return x.srv.URL }

// AddAccessToken registers a user's access token and secret.
func (x *Twitter) AddAccessToken(tok, secret string, u TwUser) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.AccessTokens[tok], x.accessSecrets[tok] = u, secret
}

func twErr(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]any{{"code": code, "message": msg}}})
}

// check verifies the request's OAuth signature; tokenSecret looks up the secret of oauth_token.
func (x *Twitter) check(r *http.Request, tokenSecret func(string) (string, bool)) (map[string]string, bool) {
	p, ok := ParseOAuth1Header(r.Header.Get("Authorization"))
	if !ok || p["oauth_consumer_key"] != x.ConsumerKey || p["oauth_signature_method"] != "HMAC-SHA1" || p["oauth_nonce"] == "" || p["oauth_timestamp"] == "" {
		return nil, false
	}
	ts := ""
	if tok := p["oauth_token"]; tok != "" {
		if ts, ok = tokenSecret(tok); !ok {
			return nil, false
		}
	}
	all := url.Values{}
	for k, v := range p {
		if k != "oauth_signature" {
			all.Set(k, v)
		}
	}
	for k, vs := range r.URL.Query() {
		all[k] = append(all[k], vs...)
	}
	if r.Method == http.MethodPost && r.ParseForm() == nil {
		for k, vs := range r.PostForm {
			all[k] = append(all[k], vs...)
		}
	}
	base := "http://" + r.Host + r.URL.Path
	want := OAuth1Signature(r.Method, base, all, x.Secret, ts)
	return p, hmac.Equal([]byte(want), []byte(p["oauth_signature"]))
}

func (x *Twitter) serve(w http.ResponseWriter, r *http.Request) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch r.URL.Path {
	case "/oauth/request_token":
		p, ok := x.check(r, func(string) (string, bool) { return "", false })
		if !ok || p["oauth_callback"] == "" {
			twErr(w, http.StatusUnauthorized, 32, "Could not authenticate you.")
			return
		}
		tok := fmt.Sprintf("rt-%d", len(x.requestTokens)+1)
		x.requestTokens[tok] = twRT{secret: tok + "-secret", callback: p["oauth_callback"]}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "oauth_token=%s&oauth_token_secret=%s&oauth_callback_confirmed=true", tok, tok+"-secret")
	case "/oauth/access_token":
		p, ok := x.check(r, func(t string) (string, bool) { rt, ok := x.requestTokens[t]; return rt.secret, ok })
		if !ok || x.verifiers[p["oauth_token"]] == "" || p["oauth_verifier"] != x.verifiers[p["oauth_token"]] {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, "Invalid request token.")
			return
		}
		delete(x.requestTokens, p["oauth_token"])
		delete(x.verifiers, p["oauth_token"])
		at := "at-" + p["oauth_token"]
		x.AccessTokens[at], x.accessSecrets[at] = TwUser{ID: "12345", ScreenName: "jack"}, at+"-secret"
		fmt.Fprintf(w, "oauth_token=%s&oauth_token_secret=%s&user_id=12345&screen_name=jack", at, at+"-secret")
	case "/1.1/account/verify_credentials.json":
		p, ok := x.check(r, func(t string) (string, bool) { s, ok := x.accessSecrets[t]; return s, ok })
		if !ok {
			twErr(w, http.StatusUnauthorized, 89, "Invalid or expired token.")
			return
		}
		u := x.AccessTokens[p["oauth_token"]]
		writeJSON(w, http.StatusOK, map[string]any{"id": 12345, "id_str": u.ID, "screen_name": u.ScreenName, "name": u.Name})
	default:
		twErr(w, http.StatusNotFound, 34, "Sorry, that page does not exist.")
	}
}

// Authorize plays the user approving the app at /oauth/authenticate; it returns the callback URL
// Twitter redirects to (the registered oauth_callback with oauth_token and oauth_verifier).
func (x *Twitter) Authorize(authURL string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", err
	}
	tok := u.Query().Get("oauth_token")
	x.mu.Lock()
	defer x.mu.Unlock()
	rt, ok := x.requestTokens[tok]
	if !ok {
		return "", fmt.Errorf("unknown request token")
	}
	v := "verifier-" + tok
	x.verifiers[tok] = v
	cb, err := url.Parse(rt.callback)
	if err != nil {
		return "", err
	}
	q := cb.Query()
	q.Set("oauth_token", tok)
	q.Set("oauth_verifier", v)
	cb.RawQuery = q.Encode()
	return cb.String(), nil
}
