package provider

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// FromConfig builds the configured providers. A provider is on when its client id (Facebook: app id;
// X: consumer key and secret) is set; the server flow additionally needs its secret. Entra ID ("aad")
// without a tenant allowlist is left off with a warning: Gatehouse does not accept sign-ins from
// every tenant. Warnings are returned for the caller to log.
func FromConfig(cfg *config.Config, d Deps) (*Registry, []string, error) {
	var ps []Provider
	var warnings []string
	pc, ep := cfg.Providers, cfg.Endpoints
	add := func(p Provider, err error) error {
		if err != nil {
			return err
		}
		ps = append(ps, p)
		return nil
	}
	if pc.GoogleClientID != "" {
		if err := add(NewGoogle(GoogleConfig{ClientID: pc.GoogleClientID, ClientSecret: pc.GoogleClientSecret, ExtraClientIDs: ep.GoogleExtraClientIDs,
			Scope: pc.GoogleScope, AccessType: pc.GoogleAccessType, AuthURL: ep.GoogleAuthURL, TokenURL: ep.GoogleTokenURL, JWKSURL: ep.GoogleJWKSURL}, d)); err != nil {
			return nil, nil, err
		}
	}
	if pc.FacebookAppID != "" {
		if err := add(NewFacebook(FacebookConfig{AppID: pc.FacebookAppID, AppSecret: pc.FacebookAppSecret, Scope: pc.FacebookScope,
			Display: pc.FacebookDisplay, AuthURL: ep.FacebookAuthURL, GraphURL: ep.FacebookGraphURL}, d)); err != nil {
			return nil, nil, err
		}
	}
	if pc.MicrosoftClientID != "" {
		if err := add(NewMicrosoftAccount(MicrosoftConfig{ClientID: pc.MicrosoftClientID, ClientSecret: pc.MicrosoftClientSecret,
			ExtraClientIDs: ep.MicrosoftExtraClientIDs, Scope: pc.MicrosoftScope, Authority: ep.MicrosoftAuthority}, d)); err != nil {
			return nil, nil, err
		}
	}
	if pc.TwitterConsumerKey != "" || pc.TwitterConsumerSecret != "" {
		if err := add(NewTwitter(TwitterConfig{ConsumerKey: pc.TwitterConsumerKey, ConsumerSecret: pc.TwitterConsumerSecret, APIURL: ep.TwitterAPIURL}, d)); err != nil {
			return nil, nil, err
		}
	}
	if pc.AadClientID != "" {
		if len(pc.AadTenants) == 0 {
			warnings = append(warnings, "aad login is off: set providers.aad.tenants (MS_AadTenants) to the tenants whose users may sign in")
		} else if err := add(NewAAD(MicrosoftConfig{ClientID: pc.AadClientID, ClientSecret: ep.AadClientSecret, ExtraClientIDs: ep.MicrosoftExtraClientIDs,
			Tenants: pc.AadTenants, Authority: ep.MicrosoftAuthority}, d)); err != nil {
			return nil, nil, err
		}
	}
	if ep.AppleClientID != "" || len(ep.AppleExtraClientIDs) > 0 {
		cid, extra := ep.AppleClientID, ep.AppleExtraClientIDs
		if cid == "" {
			cid, extra = extra[0], extra[1:]
		}
		if err := add(NewApple(AppleConfig{ClientID: cid, ExtraClientIDs: extra, TeamID: ep.AppleTeamID, KeyID: ep.AppleKeyID,
			PrivateKey: ep.ApplePrivateKey, Scope: ep.AppleScope, AuthURL: ep.AppleAuthURL, TokenURL: ep.AppleTokenURL, JWKSURL: ep.AppleJWKSURL}, d)); err != nil {
			return nil, nil, err
		}
	}
	for _, o := range cfg.OIDC {
		p, err := NewOIDC(OIDCConfig{Name: o.Name, Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: o.Scopes,
			ExtraClientIDs: o.ExtraClientIDs, DiscoveryURL: o.DiscoveryURL, AuthURL: o.AuthURL, TokenURL: o.TokenURL, JWKSURL: o.JWKSURL,
			TokenAuth: o.TokenAuth, Options: []string{"scope", "prompt", "login_hint"}}, d)
		if err != nil {
			return nil, nil, fmt.Errorf("oidc.%s: %w", o.Name, err)
		}
		ps = append(ps, p)
	}
	r, err := NewRegistry(ps...)
	if err != nil {
		return nil, nil, err
	}
	return r, warnings, nil
}

// Enabled describes the registry for logs: "google (server+client), facebook (client)".
func (r *Registry) Enabled() string {
	var parts []string
	for _, n := range r.Names() {
		p, _ := r.Get(n)
		mode := "client"
		if p.ServerFlow() {
			mode = "server+client"
		}
		parts = append(parts, n+" ("+mode+")")
	}
	return strings.Join(parts, ", ")
}
