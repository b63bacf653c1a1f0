package config

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Login configures provider login, sessions and the users directory (packages login and user).
type Login struct {
	// AllowedRedirectURLs are the targets a login may finish at besides Gatehouse's own completion
	// pages: exact URLs or URL prefixes ending in "/" (https://app.example.com/, myapp://easyauth.callback).
	AllowedRedirectURLs []string
	KeepProviderTokens  bool
	RefreshTokens       bool
	RefreshIdle         time.Duration
	RefreshLifetime     time.Duration
	StateTTL            time.Duration
	RevocationPoll      time.Duration
	ProviderTimeout     time.Duration
}

// OIDCProvider is one generic OpenID Connect provider from a [oidc.<name>] table (or
// GATEHOUSE_OIDC_PROVIDERS plus GATEHOUSE_OIDC_<NAME>_<FIELD> variables).
type OIDCProvider struct {
	Name           string // route segment and user id prefix
	Issuer         string
	ClientID       string
	ClientSecret   string
	Scopes         []string
	ExtraClientIDs []string
	DiscoveryURL   string
	AuthURL        string
	TokenURL       string
	JWKSURL        string
	TokenAuth      string // client_secret_basic or client_secret_post; empty: from discovery
}

// ProviderEndpoints are the endpoint overrides and extra settings of the built-in providers.
type ProviderEndpoints struct {
	GoogleExtraClientIDs                   []string
	GoogleAuthURL, GoogleTokenURL          string
	GoogleJWKSURL                          string
	FacebookAuthURL, FacebookGraphURL      string
	MicrosoftExtraClientIDs                []string
	MicrosoftAuthority                     string
	AadClientSecret                        string
	TwitterAPIURL                          string
	AppleClientID, AppleTeamID, AppleKeyID string
	ApplePrivateKey                        string
	AppleExtraClientIDs                    []string
	AppleScope                             string
	AppleAuthURL, AppleTokenURL            string
	AppleJWKSURL                           string
}

func loginSettings() []setting {
	return []setting{
		{"providers.timeout", []string{"GATEHOUSE_PROVIDERS_TIMEOUT"}, "", "10s", kDuration, "time limit for one call to an identity provider (token endpoint, Graph API, discovery)", func(c *Config) any { return &c.Login.ProviderTimeout }},
		{"providers.google.extra_client_ids", []string{"GATEHOUSE_GOOGLE_EXTRA_CLIENT_IDS"}, "", "", kCSV, "further Google client ids (Android, iOS) accepted as ID-token audiences in the client flow", func(c *Config) any { return &c.Endpoints.GoogleExtraClientIDs }},
		{"providers.google.auth_url", []string{"GATEHOUSE_GOOGLE_AUTH_URL"}, "", "", kString, "override of Google's authorization endpoint", func(c *Config) any { return &c.Endpoints.GoogleAuthURL }},
		{"providers.google.token_url", []string{"GATEHOUSE_GOOGLE_TOKEN_URL"}, "", "", kString, "override of Google's token endpoint", func(c *Config) any { return &c.Endpoints.GoogleTokenURL }},
		{"providers.google.jwks_url", []string{"GATEHOUSE_GOOGLE_JWKS_URL"}, "", "", kString, "override of Google's signing keys URL", func(c *Config) any { return &c.Endpoints.GoogleJWKSURL }},
		{"providers.facebook.auth_url", []string{"GATEHOUSE_FACEBOOK_AUTH_URL"}, "", "", kString, "override of Facebook's login dialog URL", func(c *Config) any { return &c.Endpoints.FacebookAuthURL }},
		{"providers.facebook.graph_url", []string{"GATEHOUSE_FACEBOOK_GRAPH_URL"}, "", "", kString, "override of the Graph API base URL, version included (default https://graph.facebook.com/v21.0)", func(c *Config) any { return &c.Endpoints.FacebookGraphURL }},
		{"providers.microsoft.extra_client_ids", []string{"GATEHOUSE_MICROSOFT_EXTRA_CLIENT_IDS"}, "", "", kCSV, "further Microsoft client ids accepted as ID-token audiences (microsoftaccount and aad)", func(c *Config) any { return &c.Endpoints.MicrosoftExtraClientIDs }},
		{"providers.microsoft.authority", []string{"GATEHOUSE_MICROSOFT_AUTHORITY"}, "", "", kString, "Microsoft login host for aad and microsoftaccount (default https://login.microsoftonline.com; sovereign clouds)", func(c *Config) any { return &c.Endpoints.MicrosoftAuthority }},
		{"providers.aad.client_secret", []string{"GATEHOUSE_AAD_CLIENT_SECRET"}, "", "", kCredential, "Entra ID client secret (server flow; the client flow needs only the client id)", func(c *Config) any { return &c.Endpoints.AadClientSecret }},
		{"providers.twitter.api_url", []string{"GATEHOUSE_TWITTER_API_URL"}, "", "", kString, "override of the X/Twitter API host (default https://api.x.com)", func(c *Config) any { return &c.Endpoints.TwitterAPIURL }},
		{"providers.apple.client_id", []string{"GATEHOUSE_APPLE_CLIENT_ID"}, "", "", kString, "Sign in with Apple Services ID (web server flow)", func(c *Config) any { return &c.Endpoints.AppleClientID }},
		{"providers.apple.extra_client_ids", []string{"GATEHOUSE_APPLE_EXTRA_CLIENT_IDS"}, "", "", kCSV, "app bundle ids whose Apple ID tokens the client flow accepts", func(c *Config) any { return &c.Endpoints.AppleExtraClientIDs }},
		{"providers.apple.team_id", []string{"GATEHOUSE_APPLE_TEAM_ID"}, "", "", kString, "Apple developer team id (issuer of the client-secret JWT)", func(c *Config) any { return &c.Endpoints.AppleTeamID }},
		{"providers.apple.key_id", []string{"GATEHOUSE_APPLE_KEY_ID"}, "", "", kString, "id of the Sign in with Apple key", func(c *Config) any { return &c.Endpoints.AppleKeyID }},
		{"providers.apple.private_key", []string{"GATEHOUSE_APPLE_PRIVATE_KEY"}, "", "", kCredential, "the .p8 key (PEM) that signs the ES256 client secret", func(c *Config) any { return &c.Endpoints.ApplePrivateKey }},
		{"providers.apple.scope", []string{"GATEHOUSE_APPLE_SCOPE"}, "", "", kString, "Apple scopes (default name email)", func(c *Config) any { return &c.Endpoints.AppleScope }},
		{"providers.apple.auth_url", []string{"GATEHOUSE_APPLE_AUTH_URL"}, "", "", kString, "override of Apple's authorization endpoint", func(c *Config) any { return &c.Endpoints.AppleAuthURL }},
		{"providers.apple.token_url", []string{"GATEHOUSE_APPLE_TOKEN_URL"}, "", "", kString, "override of Apple's token endpoint", func(c *Config) any { return &c.Endpoints.AppleTokenURL }},
		{"providers.apple.jwks_url", []string{"GATEHOUSE_APPLE_JWKS_URL"}, "", "", kString, "override of Apple's signing keys URL", func(c *Config) any { return &c.Endpoints.AppleJWKSURL }},
		{"login.allowed_redirect_urls", []string{"GATEHOUSE_LOGIN_ALLOWED_REDIRECT_URLS"}, "", "", kCSV, "where post_login_redirect_url may point besides public_url: exact URLs, or prefixes ending in / (e.g. myapp://easyauth.callback, https://app.example.com/)", func(c *Config) any { return &c.Login.AllowedRedirectURLs }},
		{"login.keep_provider_tokens", []string{"GATEHOUSE_LOGIN_KEEP_PROVIDER_TOKENS"}, "", "false", kBool, "store provider access/refresh tokens with each identity, encrypted with AES-GCM under a key derived from the master key", func(c *Config) any { return &c.Login.KeepProviderTokens }},
		{"login.refresh_tokens", []string{"GATEHOUSE_LOGIN_REFRESH_TOKENS"}, "", "false", kBool, "issue a refresh token with every login (rotated on use; reuse revokes the family)", func(c *Config) any { return &c.Login.RefreshTokens }},
		{"login.refresh_token_idle", []string{"GATEHOUSE_LOGIN_REFRESH_TOKEN_IDLE"}, "", "336h", kDuration, "a refresh token not used for this long expires", func(c *Config) any { return &c.Login.RefreshIdle }},
		{"login.refresh_token_lifetime", []string{"GATEHOUSE_LOGIN_REFRESH_TOKEN_LIFETIME"}, "", "2160h", kDuration, "absolute lifetime of a refresh-token family (a new login is needed after it)", func(c *Config) any { return &c.Login.RefreshLifetime }},
		{"login.state_ttl", []string{"GATEHOUSE_LOGIN_STATE_TTL"}, "", "10m", kDuration, "how long a server-flow login may take between redirect and callback", func(c *Config) any { return &c.Login.StateTTL }},
		{"login.revocation_poll", []string{"GATEHOUSE_LOGIN_REVOCATION_POLL"}, "", "2s", kDuration, "how often each instance reloads user revocations (logout everywhere, disabled users) from the database", func(c *Config) any { return &c.Login.RevocationPoll }},
	}
}

// oidcFields are the keys of a [oidc.<name>] table.
var oidcFields = []struct{ key, help string }{
	{"issuer", "issuer URL (https; discovery at <issuer>/.well-known/openid-configuration must name it exactly)"},
	{"client_id", "client id (required)"},
	{"client_secret", "client secret (server flow and authorization-code client flow)"},
	{"scopes", "scopes (list or space separated; openid is always asked; default openid email profile)"},
	{"extra_client_ids", "further client ids accepted as ID-token audiences (mobile apps)"},
	{"discovery_url", "override of the discovery document URL (ending in /.well-known/openid-configuration)"},
	{"auth_url", "override of the authorization endpoint"},
	{"token_url", "override of the token endpoint"},
	{"jwks_url", "override of the signing keys URL"},
	{"token_auth", "client_secret_basic or client_secret_post (default: from discovery)"},
}

var oidcName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// reservedProviders cannot be names of generic OpenID providers.
var reservedProviders = map[string]bool{"google": true, "facebook": true, "microsoftaccount": true, "twitter": true, "aad": true,
	"apple": true, "custom": true, "done": true, "windowsazureactivedirectory": true, "iframereceiver": true}

func (c *Config) oidc(name string) *OIDCProvider {
	for i := range c.OIDC {
		if c.OIDC[i].Name == name {
			return &c.OIDC[i]
		}
	}
	c.OIDC = append(c.OIDC, OIDCProvider{Name: name})
	sort.Slice(c.OIDC, func(i, j int) bool { return c.OIDC[i].Name < c.OIDC[j].Name })
	return c.oidc(name)
}

func setOIDCField(p *OIDCProvider, field, v string) bool {
	switch field {
	case "issuer":
		p.Issuer = strings.TrimSpace(v)
	case "client_id":
		p.ClientID = strings.TrimSpace(v)
	case "client_secret":
		p.ClientSecret = v
	case "scopes":
		p.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	case "extra_client_ids":
		p.ExtraClientIDs = splitCSV(v)
	case "discovery_url":
		p.DiscoveryURL = v
	case "auth_url":
		p.AuthURL = v
	case "token_url":
		p.TokenURL = v
	case "jwks_url":
		p.JWKSURL = v
	case "token_auth":
		p.TokenAuth = v
	default:
		return false
	}
	return true
}

// loadOIDCKey handles a flattened file key under [oidc.<name>]; handled is false for other keys.
func loadOIDCKey(c *Config, path, key string, raw any) (handled bool, err error) {
	rest, ok := strings.CutPrefix(key, "oidc.")
	if !ok {
		return false, nil
	}
	name, field, ok := strings.Cut(rest, ".")
	if !ok || !oidcName.MatchString(name) || reservedProviders[name] {
		return true, &Error{Setting: path + ": " + key, Reason: "generic OpenID providers are tables [oidc.<name>] with a lower-case name (not a built-in provider's)"}
	}
	v, err := fileValue(raw)
	if err != nil {
		return true, &Error{Setting: path + ": " + key, Reason: err.Error()}
	}
	if !setOIDCField(c.oidc(name), field, v) {
		return true, &Error{Setting: path + ": " + key, Reason: "unknown setting"}
	}
	c.Sources[key] = "file " + path
	return true, nil
}

// loadOIDCEnv reads GATEHOUSE_OIDC_PROVIDERS=name,... and GATEHOUSE_OIDC_<NAME>_<FIELD>.
func loadOIDCEnv(c *Config, getenv func(string) string) error {
	for _, name := range splitCSV(getenv("GATEHOUSE_OIDC_PROVIDERS")) {
		name = strings.ToLower(name)
		if !oidcName.MatchString(name) || reservedProviders[name] {
			return &Error{Setting: "GATEHOUSE_OIDC_PROVIDERS", Value: name, Reason: "names must be lower case, start with a letter, and not be a built-in provider's"}
		}
		p := c.oidc(name)
		for _, f := range oidcFields {
			env := "GATEHOUSE_OIDC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_" + strings.ToUpper(f.key)
			if v := getenv(env); v != "" {
				setOIDCField(p, f.key, v)
				c.Sources["oidc."+name+"."+f.key] = "env " + env
			}
		}
	}
	return nil
}

func absURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func (c *Config) validateLogin() error {
	for _, p := range c.OIDC {
		key := "oidc." + p.Name
		if p.Issuer == "" || !absURL(p.Issuer) {
			return &Error{Setting: key + ".issuer", Value: p.Issuer, Reason: "is required and must be an absolute https URL"}
		}
		if p.ClientID == "" {
			return &Error{Setting: key + ".client_id", Reason: "is required"}
		}
		for f, v := range map[string]string{"discovery_url": p.DiscoveryURL, "auth_url": p.AuthURL, "token_url": p.TokenURL, "jwks_url": p.JWKSURL} {
			if v != "" && !absURL(v) {
				return &Error{Setting: key + "." + f, Value: v, Reason: "must be an absolute http(s) URL"}
			}
		}
		if p.DiscoveryURL != "" && !strings.HasSuffix(p.DiscoveryURL, "/.well-known/openid-configuration") {
			return &Error{Setting: key + ".discovery_url", Value: p.DiscoveryURL, Reason: "must end in /.well-known/openid-configuration (OpenID Connect Discovery §4)"}
		}
		switch p.TokenAuth {
		case "", "client_secret_basic", "client_secret_post":
		default:
			return &Error{Setting: key + ".token_auth", Value: p.TokenAuth, Reason: "must be client_secret_basic or client_secret_post"}
		}
	}
	ep := c.Endpoints
	for key, v := range map[string]string{
		"providers.google.auth_url": ep.GoogleAuthURL, "providers.google.token_url": ep.GoogleTokenURL, "providers.google.jwks_url": ep.GoogleJWKSURL,
		"providers.facebook.auth_url": ep.FacebookAuthURL, "providers.facebook.graph_url": ep.FacebookGraphURL,
		"providers.microsoft.authority": ep.MicrosoftAuthority, "providers.twitter.api_url": ep.TwitterAPIURL,
		"providers.apple.auth_url": ep.AppleAuthURL, "providers.apple.token_url": ep.AppleTokenURL, "providers.apple.jwks_url": ep.AppleJWKSURL,
	} {
		if v != "" && !absURL(v) {
			return &Error{Setting: key, Value: v, Reason: "must be an absolute http(s) URL"}
		}
	}
	for _, u := range c.Login.AllowedRedirectURLs {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme == "" || pu.Fragment != "" || strings.ContainsAny(u, "*") || ((pu.Scheme == "http" || pu.Scheme == "https") && pu.Host == "") {
			return &Error{Setting: "login.allowed_redirect_urls", Value: u, Reason: "entries must be absolute URLs without fragment or wildcard"}
		}
	}
	if c.Login.StateTTL < time.Minute || c.Login.StateTTL > time.Hour {
		return &Error{Setting: "login.state_ttl", Value: c.Login.StateTTL.String(), Reason: "must be between 1m and 1h"}
	}
	if c.Login.RefreshIdle <= 0 || c.Login.RefreshIdle > c.Login.RefreshLifetime {
		return &Error{Setting: "login.refresh_token_idle", Value: c.Login.RefreshIdle.String(), Reason: "must be positive and at most login.refresh_token_lifetime"}
	}
	if c.Login.RevocationPoll < 100*time.Millisecond || c.Login.RevocationPoll > time.Minute {
		return &Error{Setting: "login.revocation_poll", Value: c.Login.RevocationPoll.String(), Reason: "must be between 100ms and 1m"}
	}
	if c.Login.ProviderTimeout < time.Second || c.Login.ProviderTimeout > 2*time.Minute {
		return &Error{Setting: "providers.timeout", Value: c.Login.ProviderTimeout.String(), Reason: "must be between 1s and 2m"}
	}
	return nil
}

// oidcReference documents the [oidc.<name>] tables in the configuration reference.
func oidcReference() string {
	var b strings.Builder
	for _, f := range oidcFields {
		fmt.Fprintf(&b, "| `oidc.<name>.%s` | `GATEHOUSE_OIDC_<NAME>_%s` (names listed in `GATEHOUSE_OIDC_PROVIDERS`) |  |  | generic OpenID provider: %s |\n",
			f.key, strings.ToUpper(f.key), f.help)
	}
	return b.String()
}
