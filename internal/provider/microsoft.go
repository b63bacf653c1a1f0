package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/token"
)

// MicrosoftConfig configures Microsoft Entra ID ("aad": work and school accounts of allowlisted
// tenants) or personal Microsoft accounts ("microsoftaccount"), both on the v2.0 endpoints.
type MicrosoftConfig struct {
	ClientID, ClientSecret string
	ExtraClientIDs         []string
	Scope                  string
	// Tenants (aad only) are the allowed tenant ids or domain names (MS_AadTenants). Required: a token
	// from any other tenant is refused.
	Tenants []string
	// Authority is the login host (default https://login.microsoftonline.com; sovereign clouds and
	// tests override it).
	Authority string
}

// Microsoft constants.
const (
	MicrosoftAuthority = "https://login.microsoftonline.com"
	// ConsumerTenant is the tenant id of personal Microsoft accounts.
	ConsumerTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
)

// Microsoft is aad or microsoftaccount. microsoftaccount also accepts the legacy Live SDK
// authenticationToken (HS256 signed with the app's client secret), as the original did.
type Microsoft struct {
	*OIDC
	live *token.Verifier
}

// NewAAD builds Entra ID sign-in restricted to the configured tenants.
func NewAAD(c MicrosoftConfig, d Deps) (*Microsoft, error) {
	if len(c.Tenants) == 0 {
		return nil, errors.New("provider aad: providers.aad.tenants (MS_AadTenants) is required: sign-ins are accepted only from listed tenants")
	}
	auth := strings.TrimSuffix(or(c.Authority, MicrosoftAuthority), "/")
	path := "organizations"
	if len(c.Tenants) == 1 {
		path = c.Tenants[0]
	}
	cfg := OIDCConfig{
		Name: "aad", DisplayName: "Aad",
		IssuerTemplate: auth + "/{tenantid}/v2.0", Tenants: c.Tenants,
		TenantDiscovery: auth + "/{tenant}/v2.0/.well-known/openid-configuration",
		ClientID:        c.ClientID, ClientSecret: c.ClientSecret, ExtraClientIDs: c.ExtraClientIDs,
		AuthURL:             auth + "/" + path + "/oauth2/v2.0/authorize",
		TokenURL:            auth + "/" + path + "/oauth2/v2.0/token",
		JWKSURL:             auth + "/common/discovery/v2.0/keys",
		TokenAuth:           "client_secret_post",
		Options:             []string{"scope", "prompt", "login_hint", "domain_hint"},
		Scopes:              scopes([]string{"openid", "email", "profile"}, c.Scope),
		MissingTokenMessage: "The POST Aad login request must contain an id_token in the body of the request.",
	}
	p, err := NewOIDC(cfg, d)
	if err != nil {
		return nil, err
	}
	return &Microsoft{OIDC: p}, nil
}

// NewMicrosoftAccount builds personal Microsoft account sign-in.
func NewMicrosoftAccount(c MicrosoftConfig, d Deps) (*Microsoft, error) {
	auth := strings.TrimSuffix(or(c.Authority, MicrosoftAuthority), "/")
	cfg := OIDCConfig{
		Name: "microsoftaccount", DisplayName: "MicrosoftAccount",
		Issuer:   auth + "/" + ConsumerTenant + "/v2.0",
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, ExtraClientIDs: c.ExtraClientIDs,
		AuthURL:             auth + "/consumers/oauth2/v2.0/authorize",
		TokenURL:            auth + "/consumers/oauth2/v2.0/token",
		JWKSURL:             auth + "/consumers/discovery/v2.0/keys",
		TokenAuth:           "client_secret_post",
		Options:             []string{"scope", "prompt", "login_hint", "display"},
		Scopes:              scopes([]string{"openid", "email", "profile"}, c.Scope),
		MissingTokenMessage: "The POST Microsoft Account login request must specify the authentication token in the body of the request.",
	}
	p, err := NewOIDC(cfg, d)
	if err != nil {
		return nil, err
	}
	m := &Microsoft{OIDC: p}
	if c.ClientSecret != "" {
		if m.live, err = token.NewVerifier([]token.Key{{Secret: c.ClientSecret}}, token.Options{Now: d.Now}); err != nil {
			return nil, fmt.Errorf("provider microsoftaccount: %w", err)
		}
	}
	return m, nil
}

// LiveIssuer is the issuer recorded for identities proven by a legacy Live SDK token.
const LiveIssuer = "urn:windows:liveid"

// ClientLogin implements Provider: an id_token (aad also takes an access_token issued for this app,
// as App Service did), or for microsoftaccount the legacy {"authenticationToken": <Live token>}.
func (m *Microsoft) ClientLogin(ctx context.Context, body map[string]any) (*Identity, error) {
	if m.Name() == "aad" {
		if at := bodyString(body, "access_token"); at != "" && bodyString(body, "id_token") == "" {
			return m.VerifyIDToken(ctx, at, bodyString(body, "nonce"))
		}
	}
	if lt := bodyString(body, "authenticationToken"); lt != "" && m.Name() == "microsoftaccount" && bodyString(body, "id_token") == "" {
		if m.live == nil {
			return nil, errf(KindConfig, "MicrosoftAccount", nil, "Logging in with microsoftaccount is not enabled.")
		}
		c, err := m.live.Verify(lt)
		if err != nil {
			return nil, errf(KindRejected, "MicrosoftAccount", err, "%s", err.Error())
		}
		if c.UID == "" {
			return nil, errf(KindRejected, "MicrosoftAccount", nil, "The Microsoft Account authentication token has no uid claim.")
		}
		id := &Identity{Provider: "MicrosoftAccount", Issuer: LiveIssuer, Subject: c.UID, Claims: map[string]any{}}
		id.AccessToken = bodyString(body, "access_token")
		return id, nil
	}
	return m.OIDC.ClientLogin(ctx, body)
}
