package login

import (
	"strings"
	"testing"
)

// The "not enabled" answer names the setting each provider's server flow needs.
func TestServerFlowHintNamesTheSetting(t *testing.T) {
	for name, want := range map[string]string{
		"google":           "providers.google.client_secret",
		"facebook":         "providers.facebook.app_secret",
		"microsoftaccount": "MS_MicrosoftClientSecret",
		"aad":              "providers.aad.client_secret",
		"apple":            "providers.apple.private_key",
		"auth0":            "oidc.auth0.client_secret",
	} {
		if got := serverFlowHint(name); !strings.Contains(got, want) {
			t.Errorf("%s: %q lacks %q", name, got, want)
		}
	}
}
