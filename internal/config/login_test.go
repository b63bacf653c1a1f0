package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadWith(t *testing.T, file string, env map[string]string) (*Config, error) {
	t.Helper()
	if file != "" {
		p := filepath.Join(t.TempDir(), "g.toml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		if env == nil {
			env = map[string]string{}
		}
		env["GATEHOUSE_CONFIG"] = p
	}
	return Load(nil, func(k string) string { return env[k] })
}

func TestLoginSettings(t *testing.T) {
	c, err := loadWith(t, `
[providers.apple]
client_id = "com.example.web"
[login]
refresh_tokens = true
allowed_redirect_urls = ["myapp://easyauth.callback", "https://app.example.com/"]
[oidc.auth0]
issuer = "https://tenant.auth0.com/"
client_id = "abc"
client_secret = "s3cret"
scopes = ["openid", "email", "offline_access"]
[oidc.keycloak]
issuer = "https://kc.example.com/realms/main"
client_id = "gatehouse"
token_auth = "client_secret_post"
`, map[string]string{"MS_GoogleClientID": "g-id", "MS_AadTenants": "contoso.com, fabrikam.com",
		"GATEHOUSE_OIDC_PROVIDERS": "okta", "GATEHOUSE_OIDC_OKTA_ISSUER": "https://dev-1.okta.com", "GATEHOUSE_OIDC_OKTA_CLIENT_ID": "okta-id"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Providers.GoogleClientID != "g-id" || len(c.Providers.AadTenants) != 2 || c.Endpoints.AppleClientID != "com.example.web" {
		t.Fatalf("providers %+v %+v", c.Providers, c.Endpoints)
	}
	if !c.Login.RefreshTokens || len(c.Login.AllowedRedirectURLs) != 2 || c.Login.StateTTL != 10*time.Minute || c.Login.RevocationPoll != 2*time.Second {
		t.Fatalf("login %+v", c.Login)
	}
	if len(c.OIDC) != 3 || c.OIDC[0].Name != "auth0" || c.OIDC[1].Name != "keycloak" || c.OIDC[2].Name != "okta" {
		t.Fatalf("oidc %+v", c.OIDC)
	}
	if a := c.OIDC[0]; a.ClientSecret != "s3cret" || strings.Join(a.Scopes, " ") != "openid email offline_access" {
		t.Fatalf("auth0 %+v", a)
	}
	if c.OIDC[2].ClientID != "okta-id" || c.Sources["oidc.okta.client_id"] != "env GATEHOUSE_OIDC_OKTA_CLIENT_ID" {
		t.Fatalf("okta %+v", c.OIDC[2])
	}
}

func TestLoginSettingErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		env  map[string]string
		want string
	}{
		"builtin name":     {"[oidc.google]\nissuer = \"https://x\"\nclient_id = \"a\"\n", nil, "oidc.google.client_id"},
		"bad name":         {"[oidc.Bad]\nissuer = \"https://x\"\n", nil, "oidc.Bad"},
		"unknown field":    {"[oidc.acme]\nissuer = \"https://x\"\nclient_id = \"a\"\ncolour = \"red\"\n", nil, "oidc.acme.colour"},
		"no issuer":        {"[oidc.acme]\nclient_id = \"a\"\n", nil, "oidc.acme.issuer"},
		"no client id":     {"[oidc.acme]\nissuer = \"https://x.example\"\n", nil, "oidc.acme.client_id"},
		"token auth":       {"[oidc.acme]\nissuer = \"https://x.example\"\nclient_id = \"a\"\ntoken_auth = \"jwt\"\n", nil, "token_auth"},
		"env name":         {"", map[string]string{"GATEHOUSE_OIDC_PROVIDERS": "apple"}, "GATEHOUSE_OIDC_PROVIDERS"},
		"redirect pattern": {"", map[string]string{"GATEHOUSE_LOGIN_ALLOWED_REDIRECT_URLS": "https://*.example.com/"}, "login.allowed_redirect_urls"},
		"state ttl":        {"", map[string]string{"GATEHOUSE_LOGIN_STATE_TTL": "2h"}, "login.state_ttl"},
		"idle > lifetime":  {"", map[string]string{"GATEHOUSE_LOGIN_REFRESH_TOKEN_IDLE": "5000h"}, "login.refresh_token_idle"},
		"endpoint url":     {"", map[string]string{"GATEHOUSE_FACEBOOK_GRAPH_URL": "graph.example/v21.0"}, "providers.facebook.graph_url"},
	} {
		_, err := loadWith(t, tc.file, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestReferenceListsOIDCTables(t *testing.T) {
	ref := Reference()
	for _, f := range oidcFields {
		if !strings.Contains(ref, "`oidc.<name>."+f.key+"`") {
			t.Errorf("reference lacks oidc.<name>.%s", f.key)
		}
	}
	if !strings.Contains(ref, "`providers.apple.private_key`") {
		t.Error("reference lacks apple")
	}
}
