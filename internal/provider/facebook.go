package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/jsonx"
)

// FacebookConfig configures Facebook Login (MS_FacebookAppID, MS_FacebookAppSecret, ...).
type FacebookConfig struct {
	AppID, AppSecret string
	Scope            string // extra permissions (comma or space separated); public_profile is always asked
	Display          string // dialog display mode (page, popup, touch)
	// Endpoint overrides (the Graph URL includes the API version).
	AuthURL, GraphURL string
}

// Facebook endpoints (Graph API version pinned; override to move).
const (
	FacebookAuthURL  = "https://www.facebook.com/v21.0/dialog/oauth"
	FacebookGraphURL = "https://graph.facebook.com/v21.0"
	// FacebookIssuer is recorded as the issuer of Facebook identities (Graph user ids are app-scoped).
	FacebookIssuer = "https://www.facebook.com"
)

// Facebook is Facebook Login. Access tokens (client flow, and the one the server flow redeems) are
// checked with the Graph API's token inspection (debug_token) against our app id, authenticated with
// the app access token in the Authorization header — never the app secret in a query string. Calls
// made with a user's token carry appsecret_proof.
type Facebook struct {
	cfg  FacebookConfig
	deps Deps
}

// NewFacebook builds Facebook Login.
func NewFacebook(c FacebookConfig, d Deps) (*Facebook, error) {
	if c.AppID == "" {
		return nil, errors.New("provider facebook: app id is required")
	}
	c.AuthURL = or(c.AuthURL, FacebookAuthURL)
	c.GraphURL = strings.TrimSuffix(or(c.GraphURL, FacebookGraphURL), "/")
	return &Facebook{cfg: c, deps: d}, nil
}

// Name implements Provider.
func (f *Facebook) Name() string { return "facebook" }

// DisplayName implements Provider.
func (f *Facebook) DisplayName() string { return "Facebook" }

// ServerFlow implements Provider.
func (f *Facebook) ServerFlow() bool { return f.cfg.AppSecret != "" }

// AuthCodeURL implements Provider.
func (f *Facebook) AuthCodeURL(_ context.Context, r AuthRequest) (*Redirect, error) {
	q := url.Values{}
	q.Set("client_id", f.cfg.AppID)
	q.Set("redirect_uri", r.RedirectURI)
	q.Set("response_type", "code")
	q.Set("state", r.State)
	q.Set("code_challenge", r.CodeChallenge)
	q.Set("code_challenge_method", "S256")
	scope := mergeScopes([]string{"public_profile"}, f.cfg.Scope)
	if extra := r.Options.Get("scope"); extra != "" {
		scope = mergeScopes(strings.Fields(scope), extra)
	}
	q.Set("scope", strings.ReplaceAll(scope, " ", ","))
	if d := or(r.Options.Get("display"), f.cfg.Display); d != "" {
		q.Set("display", d)
	}
	if at := r.Options.Get("auth_type"); at != "" {
		q.Set("auth_type", at)
	}
	return &Redirect{URL: withQuery(f.cfg.AuthURL, q)}, nil
}

// IsCallback implements Provider.
func (f *Facebook) IsCallback(p url.Values) bool { return p.Has("code") || p.Has("error") }

type graphError struct {
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    int    `json:"code"`
	} `json:"error"`
}

// graph calls the Graph API; Graph errors ({"error":{...}}) are KindRejected for OAuth errors (bad
// token), KindUnavailable otherwise.
func (f *Facebook) graph(ctx context.Context, method, path string, q url.Values, auth string, out any) error {
	u := f.cfg.GraphURL + path
	header := http.Header{}
	if auth != "" {
		header.Set("Authorization", auth)
	}
	var status int
	var body []byte
	var err error
	if method == http.MethodPost {
		status, body, err = f.deps.HTTP.postForm(ctx, u, q, header)
	} else {
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		status, body, err = f.deps.HTTP.get(ctx, u, header)
	}
	if err != nil {
		return errf(KindUnavailable, "Facebook", err, "The Facebook Graph API request failed.")
	}
	if status != http.StatusOK {
		return graphFailure(path, status, body)
	}
	if err := jsonx.Unmarshal(body, out); err != nil {
		return errf(KindUnavailable, "Facebook", err, "Unexpected content in the response from the Facebook Graph API")
	}
	return nil
}

// graphFailure classifies a Graph error answer. Graph's transient errors (API unknown/service/too
// many calls, codes 1, 2, 4, 17, 341) and 5xx are the provider's trouble; the rest (190 invalid
// token, 100 bad parameter, ...) reject.
func graphFailure(path string, status int, body []byte) error {
	var ge graphError
	if jsonx.Unmarshal(body, &ge) == nil && ge.Error != nil && status < 500 && !slices.Contains([]int{1, 2, 4, 17, 341}, ge.Error.Code) {
		return errf(KindRejected, "Facebook", fmt.Errorf("graph %s: %s %d", path, ge.Error.Type, ge.Error.Code), "The Facebook access token was rejected.")
	}
	return errf(KindUnavailable, "Facebook", fmt.Errorf("graph %s: HTTP %d", path, status), "The Facebook Graph API request failed with HTTP status code %d", status)
}

func (f *Facebook) appToken() string { return "OAuth " + f.cfg.AppID + "|" + f.cfg.AppSecret }

// identify checks a user access token with debug_token (issued to our app, valid, for a user) and
// reads the profile with it.
func (f *Facebook) identify(ctx context.Context, accessToken string) (*Identity, error) {
	if f.cfg.AppSecret == "" {
		return nil, errf(KindConfig, "Facebook", nil, "Logging in with facebook is not enabled.")
	}
	var dbg struct {
		Data struct {
			AppID     string `json:"app_id"`
			Type      string `json:"type"`
			IsValid   bool   `json:"is_valid"`
			UserID    string `json:"user_id"`
			ExpiresAt int64  `json:"expires_at"`
		} `json:"data"`
	}
	if err := f.graph(ctx, http.MethodGet, "/debug_token", url.Values{"input_token": {accessToken}}, f.appToken(), &dbg); err != nil {
		return nil, err
	}
	d := dbg.Data
	switch {
	case !d.IsValid:
		return nil, errf(KindRejected, "Facebook", errors.New("debug_token: not valid"), "The Facebook access token was rejected.")
	case d.AppID != f.cfg.AppID:
		return nil, errf(KindRejected, "Facebook", errors.New("debug_token: issued to another app"), "The Facebook access token was not issued to this app.")
	case d.UserID == "" || (d.Type != "" && d.Type != "USER"):
		return nil, errf(KindRejected, "Facebook", errors.New("debug_token: not a user token"), "The Facebook access token is not a user access token.")
	}
	mac := hmac.New(sha256.New, []byte(f.cfg.AppSecret))
	mac.Write([]byte(accessToken))
	var me map[string]any
	q := url.Values{"fields": {"id,name,email,first_name,last_name"}, "appsecret_proof": {hex.EncodeToString(mac.Sum(nil))}}
	if err := f.graph(ctx, http.MethodGet, "/me", q, "Bearer "+accessToken, &me); err != nil {
		return nil, err
	}
	if id, _ := me["id"].(string); id != d.UserID {
		return nil, errf(KindRejected, "Facebook", errors.New("me.id differs from debug_token user_id"), "Unexpected content in the response from the Facebook Graph API")
	}
	claims := selectClaims(me, "email", "name", "first_name", "last_name")
	id := &Identity{Provider: "Facebook", Issuer: FacebookIssuer, Subject: d.UserID, Claims: claims, AccessToken: accessToken}
	if d.ExpiresAt > 0 {
		id.ExpiresAt = expiry(f.deps.now(), d.ExpiresAt-f.deps.now().Unix())
	}
	return id, nil
}

// Exchange implements Provider: the code (with the PKCE verifier) is redeemed by POST, the secret
// in the body.
func (f *Facebook) Exchange(ctx context.Context, c Callback) (*Identity, error) {
	if err := CallbackError("Facebook", c.Params); err != nil {
		return nil, err
	}
	code := c.Params.Get("code")
	if code == "" {
		return nil, errf(KindInvalid, "Facebook", nil, "Redirect from facebook does not contain the required code parameter.")
	}
	conf := &oauth2.Config{ClientID: f.cfg.AppID, ClientSecret: f.cfg.AppSecret, RedirectURL: c.RedirectURI,
		Endpoint: oauth2.Endpoint{AuthURL: f.cfg.AuthURL, TokenURL: f.cfg.GraphURL + "/oauth/access_token", AuthStyle: oauth2.AuthStyleInParams}}
	tr, err := exchange(ctx, f.deps.HTTP, "Facebook", func(ctx context.Context) (*oauth2.Token, error) {
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(c.Verifier))
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			// Graph answers errors as {"error":{"message","type","code"}}, not RFC 6749's shape.
			return nil, graphFailure("/oauth/access_token", re.Response.StatusCode, re.Body)
		}
		return tok, err
	})
	if err != nil {
		return nil, err
	}
	return f.identify(ctx, tr.AccessToken)
}

// ClientLogin implements Provider: {"access_token": "<user access token>"}.
func (f *Facebook) ClientLogin(ctx context.Context, body map[string]any) (*Identity, error) {
	at := bodyString(body, "access_token")
	if at == "" || len(at) > 4096 {
		return nil, errf(KindInvalid, "Facebook", nil, "The POST Facebook login request must specify the access token in the body of the request.")
	}
	return f.identify(ctx, at)
}
