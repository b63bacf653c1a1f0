package provider

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dghubble/oauth1"

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
// signatures), on github.com/dghubble/oauth1. The server flow's callback URL carries our state, so the flow is CSRF-protected like
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

// oauth1 is the go-oauth1 configuration of one flow (callback is ours, with the flow's state).
// go-oauth1's token requests take no context and read whole bodies, so its client is ours, bound to
// ctx (cancellation and our time limit) and to 1 MiB.
func (t *Twitter) oauth1(ctx context.Context, callback string) *oauth1.Config {
	return &oauth1.Config{
		ConsumerKey: t.cfg.ConsumerKey, ConsumerSecret: t.cfg.ConsumerSecret, CallbackURL: callback,
		Endpoint: oauth1.Endpoint{RequestTokenURL: t.cfg.APIURL + "/oauth/request_token",
			AuthorizeURL: t.cfg.APIURL + "/oauth/authenticate", AccessTokenURL: t.cfg.APIURL + "/oauth/access_token"},
		HTTPClient: t.client(ctx),
	}
}

func (t *Twitter) client(ctx context.Context) *http.Client {
	c := t.deps.HTTP.client()
	return &http.Client{Transport: withContext{ctx, limitBody{userAgent{c}}}, Timeout: c.Timeout, CheckRedirect: c.CheckRedirect}
}

// withContext sends every request with ctx (for libraries whose calls take none).
type withContext struct {
	ctx  context.Context
	next http.RoundTripper
}

func (w withContext) RoundTrip(r *http.Request) (*http.Response, error) {
	return w.next.RoundTrip(r.WithContext(w.ctx))
}

// AuthCodeURL implements Provider: obtain a request token (go-oauth1 checks oauth_callback_confirmed),
// then send the browser to authenticate.
func (t *Twitter) AuthCodeURL(ctx context.Context, r AuthRequest) (*Redirect, error) {
	ctx, cancel := context.WithTimeout(ctx, t.deps.HTTP.timeout())
	defer cancel()
	conf := t.oauth1(ctx, withQuery(r.RedirectURI, url.Values{"state": {r.State}}))
	rt, rts, err := conf.RequestToken()
	if err != nil {
		return nil, errf(KindUnavailable, "Twitter", err, "Unable to obtain OAuth request token from Twitter.")
	}
	u, err := conf.AuthorizationURL(rt)
	if err != nil {
		return nil, errf(KindUnavailable, "Twitter", err, "Unable to obtain OAuth request token from Twitter.")
	}
	return &Redirect{URL: u.String(), Keep: map[string]string{"rt": rt, "rts": rts}}, nil
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
	actx, cancel := context.WithTimeout(ctx, t.deps.HTTP.timeout())
	defer cancel()
	at, ats, err := t.oauth1(actx, "").AccessToken(rt, rts, verifier)
	if err != nil {
		var ue *url.Error
		kind := KindUnavailable
		// go-oauth1's errors are untyped; a refusal is the one that names the HTTP status.
		if !errors.As(err, &ue) && actx.Err() == nil && strings.HasPrefix(err.Error(), "oauth1: invalid status") {
			kind = KindRejected
		}
		return nil, errf(kind, "Twitter", err, "Unable to obtain OAuth access token from Twitter.")
	}
	// go-oauth1 keeps only the token and secret of the answer, so the user comes from
	// account/verify_credentials with them, as in the client flow.
	return t.identify(ctx, at, ats)
}

// ClientLogin implements Provider: {"access_token": ..., "access_token_secret": ...} as App
// Service accepted, checked with account/verify_credentials.
func (t *Twitter) ClientLogin(ctx context.Context, body map[string]any) (*Identity, error) {
	at, ats := bodyString(body, "access_token"), bodyString(body, "access_token_secret")
	if at == "" || ats == "" || len(at) > 1024 || len(ats) > 1024 {
		return nil, errf(KindInvalid, "Twitter", nil, "The POST Twitter login request must specify the access token and access token secret in the body of the request.")
	}
	return t.identify(ctx, at, ats)
}

// identify reads the user of an access token and secret with account/verify_credentials, signed by
// go-oauth1's transport.
func (t *Twitter) identify(ctx context.Context, at, ats string) (*Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, t.deps.HTTP.timeout())
	defer cancel()
	conf := t.oauth1(ctx, "")
	c := oauth1.NewClient(context.WithValue(ctx, oauth1.HTTPClient, conf.HTTPClient), conf, oauth1.NewToken(at, ats))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.cfg.APIURL+"/1.1/account/verify_credentials.json?skip_status=true", nil)
	if err != nil {
		return nil, errf(KindConfig, "Twitter", err, "The Twitter API URL is not valid.")
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, errf(KindUnavailable, "Twitter", err, "The Twitter API could not be reached.")
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, errf(KindUnavailable, "Twitter", err, "The Twitter API could not be reached.")
	}
	status := res.StatusCode
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
