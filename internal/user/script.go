package user

import (
	"context"
	"strings"
)

// ScriptIdentities returns a user's linked identities in the shape the original runtime's
// user.getIdentities gave scripts when its users feature was on: one member per provider key
// (google, facebook, twitter, microsoft, aad, or the provider's lower-cased name), each holding the
// identity's stored claims, its provider tokens when login.store_provider_tokens keeps them
// (accessToken, and accessTokenSecret for OAuth 1.0a) and userId "<Provider>:<provider's id>".
// Refresh and ID tokens stay server-side: the original never gave them to scripts.
func (d *Directory) ScriptIdentities(ctx context.Context, userID string) (map[string]any, error) {
	ids, err := d.st.Identities(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(ids))
	for _, id := range ids {
		v := make(map[string]any, len(id.Claims)+3)
		for k, c := range id.Claims {
			v[k] = c
		}
		if id.HasTokens {
			t, err := d.ProviderTokens(ctx, id.Issuer, id.Subject)
			if err != nil {
				return nil, err
			}
			if t != nil && t.AccessToken != "" {
				v["accessToken"] = t.AccessToken
			}
			if t != nil && t.AccessTokenSecret != "" {
				v["accessTokenSecret"] = t.AccessTokenSecret
			}
		}
		v["userId"] = id.Provider + ":" + id.Subject
		out[ProviderKey(id.Provider)] = v
	}
	return out, nil
}

// ProviderKey is the member name the original used for a provider in identities
// (MicrosoftAccount → microsoft).
func ProviderKey(provider string) string {
	k := strings.ToLower(provider)
	if k == "microsoftaccount" {
		return "microsoft"
	}
	return k
}
