package provider

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/jsonx"
)

// TwitterConfig configures X/Twitter sign-in (MS_TwitterConsumerKey, MS_TwitterConsumerSecret).
type TwitterConfig struct {
	ConsumerKey, ConsumerSecret string
	// APIURL overrides https://api.x.com (the OAuth and REST host).
	APIURL string
}

// Twitter constants.
const (
	TwitterAPIURL = "https://api.x.com"
	// TwitterIssuer is recorded as the issuer of X/Twitter identities.
	TwitterIssuer = "https://twitter.com"
)

// Twitter is X/Twitter sign-in with OAuth 1.0a (request token, authenticate, access token; HMAC-SHA1
// signatures). The server flow's callback URL carries our state, so the flow is CSRF-protected like
// the others (the original had no state for Twitter), and the returned oauth_token must match the
// request token kept in the sealed flow cookie. The client flow verifies a user's token and secret
// with account/verify_credentials.
type Twitter struct {
	cfg  TwitterConfig
	deps Deps
}

// NewTwitter builds X/Twitter sign-in.
func NewTwitter(c TwitterConfig, d Deps) (*Twitter, error) {
	if c.ConsumerKey == "" || c.ConsumerSecret == "" {
		return nil, errors.New("provider twitter: consumer key and secret are required")
	}
	c.APIURL = strings.TrimSuffix(or(c.APIURL, TwitterAPIURL), "/")
	return &Twitter{cfg: c, deps: d}, nil
}

// Name implements Provider.
func (t *Twitter) Name() string { return "twitter" }

// DisplayName implements Provider.
func (t *Twitter) DisplayName() string { return "Twitter" }

// ServerFlow implements Provider.
func (t *Twitter) ServerFlow() bool { return true }

// signedPost sends a signed form POST (request_token, access_token) and parses the form answer.
func (t *Twitter) signed(ctx context.Context, method, path string, params url.Values, token, tokenSecret string, extra map[string]string) (int, []byte, error) {
	u := t.cfg.APIURL + path
	auth := oauth1Header(method, u, params, t.cfg.ConsumerKey, t.cfg.ConsumerSecret, token, tokenSecret, extra, t.deps.now(), RandomString(24))
	header := http.Header{"Authorization": {auth}}
	if method == http.MethodPost {
		return t.deps.HTTP.postForm(ctx, u, params, header)
	}
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	return t.deps.HTTP.get(ctx, u, header)
}

// AuthCodeURL implements Provider: obtain a request token, then send the browser to authenticate.
func (t *Twitter) AuthCodeURL(ctx context.Context, r AuthRequest) (*Redirect, error) {
	cb := withQuery(r.RedirectURI, url.Values{"state": {r.State}})
	status, body, err := t.signed(ctx, http.MethodPost, "/oauth/request_token", url.Values{}, "", "", map[string]string{"oauth_callback": cb})
	if err != nil || status != http.StatusOK {
		if err == nil {
			err = fmt.Errorf("request_token: HTTP %d", status)
		}
		return nil, errf(KindUnavailable, "Twitter", err, "Unable to obtain OAuth request token from Twitter.")
	}
	v, err := url.ParseQuery(string(body))
	if err != nil || v.Get("oauth_token") == "" || v.Get("oauth_token_secret") == "" || v.Get("oauth_callback_confirmed") != "true" {
		return nil, errf(KindUnavailable, "Twitter", errors.New("request_token: unexpected answer"), "Unable to obtain OAuth request token from Twitter.")
	}
	return &Redirect{
		URL:  t.cfg.APIURL + "/oauth/authenticate?" + url.Values{"oauth_token": {v.Get("oauth_token")}}.Encode(),
		Keep: map[string]string{"rt": v.Get("oauth_token"), "rts": v.Get("oauth_token_secret")},
	}, nil
}

// IsCallback implements Provider.
func (t *Twitter) IsCallback(p url.Values) bool {
	return p.Has("oauth_verifier") || p.Has("denied") || p.Has("error")
}

// Exchange implements Provider.
func (t *Twitter) Exchange(ctx context.Context, c Callback) (*Identity, error) {
	if err := CallbackError("Twitter", c.Params); err != nil {
		return nil, err
	}
	if c.Params.Has("denied") {
		return nil, errf(KindDenied, "Twitter", nil, "access_denied: The user did not authorize the app.")
	}
	rt, rts := c.Kept["rt"], c.Kept["rts"]
	if rt == "" || rts == "" {
		return nil, errf(KindInvalid, "Twitter", nil, "OAuth request token is not present in the HTTP cookies of the request.")
	}
	if subtle.ConstantTimeCompare([]byte(c.Params.Get("oauth_token")), []byte(rt)) != 1 {
		return nil, errf(KindRejected, "Twitter", nil, "Invalid OAuth request token in the HTTP cookies of the request.")
	}
	verifier := c.Params.Get("oauth_verifier")
	if verifier == "" {
		return nil, errf(KindInvalid, "Twitter", nil, "Redirect from twitter does not contain the required oauth_verifier parameter.")
	}
	status, body, err := t.signed(ctx, http.MethodPost, "/oauth/access_token", url.Values{}, rt, rts, map[string]string{"oauth_verifier": verifier})
	if err != nil {
		return nil, errf(KindUnavailable, "Twitter", err, "Unable to obtain OAuth access token from Twitter.")
	}
	if status != http.StatusOK {
		return nil, errf(KindRejected, "Twitter", fmt.Errorf("access_token: HTTP %d", status), "Unable to obtain OAuth access token from Twitter.")
	}
	v, err := url.ParseQuery(string(body))
	if err != nil || v.Get("oauth_token") == "" || v.Get("oauth_token_secret") == "" {
		return nil, errf(KindUnavailable, "Twitter", errors.New("access_token: unexpected answer"), "Unable to obtain OAuth access token from Twitter.")
	}
	if v.Get("user_id") == "" {
		return nil, errf(KindUnavailable, "Twitter", errors.New("access_token: no user_id"), "Unable to extract Twitter user name from OAuth access token response from Twitter.")
	}
	claims := map[string]any{}
	if sn := v.Get("screen_name"); sn != "" {
		claims["screen_name"] = clip(sn, 100)
	}
	return &Identity{Provider: "Twitter", Issuer: TwitterIssuer, Subject: v.Get("user_id"), Claims: claims,
		AccessToken: v.Get("oauth_token"), AccessTokenSecret: v.Get("oauth_token_secret")}, nil
}

// ClientLogin implements Provider: {"access_token": ..., "access_token_secret": ...} as App
// Service accepted, checked with account/verify_credentials.
func (t *Twitter) ClientLogin(ctx context.Context, body map[string]any) (*Identity, error) {
	at, ats := bodyString(body, "access_token"), bodyString(body, "access_token_secret")
	if at == "" || ats == "" || len(at) > 1024 || len(ats) > 1024 {
		return nil, errf(KindInvalid, "Twitter", nil, "The POST Twitter login request must specify the access token and access token secret in the body of the request.")
	}
	status, b, err := t.signed(ctx, http.MethodGet, "/1.1/account/verify_credentials.json", url.Values{"skip_status": {"true"}}, at, ats, nil)
	if err != nil {
		return nil, errf(KindUnavailable, "Twitter", err, "The Twitter API could not be reached.")
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return nil, errf(KindRejected, "Twitter", fmt.Errorf("verify_credentials: HTTP %d", status), "The Twitter access token was rejected.")
	}
	if status != http.StatusOK {
		return nil, errf(KindUnavailable, "Twitter", fmt.Errorf("verify_credentials: HTTP %d", status), "The Twitter API request failed with HTTP status code %d.", status)
	}
	var u struct {
		IDStr      string `json:"id_str"`
		ScreenName string `json:"screen_name"`
		Name       string `json:"name"`
	}
	if err := jsonx.Unmarshal(b, &u); err != nil || u.IDStr == "" {
		return nil, errf(KindUnavailable, "Twitter", errors.New("verify_credentials: unexpected answer"), "Unexpected content in the response from the Twitter API.")
	}
	claims := map[string]any{"screen_name": clip(u.ScreenName, 100)}
	if u.Name != "" {
		claims["name"] = clip(u.Name, 200)
	}
	return &Identity{Provider: "Twitter", Issuer: TwitterIssuer, Subject: u.IDStr, Claims: claims, AccessToken: at, AccessTokenSecret: ats}, nil
}
