package provider

import (
	"strings"

	"github.com/gatehouse/gatehouse/internal/idtoken"
)

// GoogleConfig configures Google sign-in (MS_GoogleClientID, MS_GoogleClientSecret, ...).
type GoogleConfig struct {
	ClientID, ClientSecret string
	// ExtraClientIDs are the app's Android/iOS client ids, accepted as ID-token audiences.
	ExtraClientIDs []string
	Scope          string // extra scopes (comma or space separated)
	AccessType     string // online or offline
	// Endpoint overrides.
	AuthURL, TokenURL, JWKSURL, Issuer string
}

// Google endpoints.
const (
	GoogleAuthURL  = "https://accounts.google.com/o/oauth2/v2/auth"
	GoogleTokenURL = "https://oauth2.googleapis.com/token"
	GoogleJWKSURL  = "https://www.googleapis.com/oauth2/v3/certs"
)

// NewGoogle builds Google: an OpenID provider that accepts both issuer forms
// (https://accounts.google.com and accounts.google.com, unlike the original which refused the first).
func NewGoogle(c GoogleConfig, d Deps) (*OIDC, error) {
	cfg := OIDCConfig{
		Name: "google", DisplayName: "Google",
		Issuer: or(c.Issuer, idtoken.GoogleIssuer), ExtraIssuers: []string{idtoken.GoogleLegacyIssuer},
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, ExtraClientIDs: c.ExtraClientIDs,
		AuthURL: or(c.AuthURL, GoogleAuthURL), TokenURL: or(c.TokenURL, GoogleTokenURL), JWKSURL: or(c.JWKSURL, GoogleJWKSURL),
		TokenAuth: "client_secret_post",
		Options:   []string{"scope", "access_type", "prompt", "login_hint", "hd"},
	}
	cfg.Scopes = scopes([]string{"openid", "email", "profile"}, c.Scope)
	if c.AccessType != "" {
		cfg.AuthParams = map[string][]string{"access_type": {c.AccessType}}
	}
	return NewOIDC(cfg, d)
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func scopes(base []string, extra string) []string {
	return strings.Fields(mergeScopes(base, extra))
}
