package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/jsonx"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/idtoken"
)

// AppleConfig configures Sign in with Apple.
type AppleConfig struct {
	// ClientID is the Services ID (web) used in the server flow; ExtraClientIDs are the app bundle
	// ids whose ID tokens the client flow accepts.
	ClientID       string
	ExtraClientIDs []string
	TeamID, KeyID  string
	// PrivateKey is the team's .p8 key (PEM, PKCS#8, P-256) that signs the client secret.
	PrivateKey string
	Scope      string // default "name email"
	// Endpoint overrides.
	AuthURL, TokenURL, JWKSURL, Issuer string
}

// Apple endpoints.
const (
	AppleAuthURL  = "https://appleid.apple.com/auth/authorize"
	AppleTokenURL = "https://appleid.apple.com/auth/token"
	AppleJWKSURL  = "https://appleid.apple.com/auth/keys"
)

// Apple is Sign in with Apple: an OpenID provider whose client secret is an ES256 JWT signed with
// the team's key, whose callback is a form_post, and whose native SDKs put the SHA-256 of the app's
// nonce in the ID token.
type Apple struct {
	*OIDC
}

// NewApple builds Sign in with Apple.
func NewApple(c AppleConfig, d Deps) (*Apple, error) {
	var secretFn func(time.Time) (string, error)
	if c.PrivateKey != "" {
		key, err := parseP8(c.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("provider apple: private key: %w", err)
		}
		if c.TeamID == "" || c.KeyID == "" {
			return nil, errors.New("provider apple: team_id and key_id are required with private_key")
		}
		iss := or(c.Issuer, idtoken.AppleIssuer)
		secretFn = func(now time.Time) (string, error) {
			return AppleClientSecret(key, c.TeamID, c.KeyID, c.ClientID, iss, now)
		}
	}
	cfg := OIDCConfig{
		Name: "apple", DisplayName: "Apple",
		Issuer:   or(c.Issuer, idtoken.AppleIssuer),
		ClientID: c.ClientID, ExtraClientIDs: c.ExtraClientIDs, ClientSecretFunc: secretFn,
		AuthURL: or(c.AuthURL, AppleAuthURL), TokenURL: or(c.TokenURL, AppleTokenURL), JWKSURL: or(c.JWKSURL, AppleJWKSURL),
		TokenAuth:   "client_secret_post",
		AuthParams:  map[string][]string{"response_mode": {"form_post"}},
		NoPKCE:      true, // not documented by Apple; state and nonce protect the flow
		HashedNonce: true,
		Scopes:      []string{"openid"},
	}
	p, err := NewOIDC(cfg, d)
	if err != nil {
		return nil, err
	}
	// Apple's scope is "name email" (it refuses to mix in others); the id_token comes regardless.
	p.cfg.Scopes = scopes(nil, or(c.Scope, "name email"))
	return &Apple{OIDC: p}, nil
}

func parseP8(s string) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve.Params().Name != "P-256" {
		return nil, errors.New("not a P-256 key")
	}
	return ec, nil
}

// AppleClientSecret is the client secret Apple's token endpoint expects: an ES256 JWT (kid = key id)
// with iss = team id, sub = client id, aud = Apple's issuer, valid for five minutes.
func AppleClientSecret(key *ecdsa.PrivateKey, teamID, keyID, clientID, audience string, now time.Time) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", keyID))
	if err != nil {
		return "", err
	}
	claims, _ := json.Marshal(map[string]any{
		"iss": teamID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "aud": audience, "sub": clientID,
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Exchange implements Provider; Apple sends the user's name only on the first sign-in, as the "user"
// form member of its callback.
func (a *Apple) Exchange(ctx context.Context, c Callback) (*Identity, error) {
	id, err := a.OIDC.Exchange(ctx, c)
	if err != nil {
		return nil, err
	}
	var u struct {
		Name struct {
			FirstName string `json:"firstName"`
			LastName  string `json:"lastName"`
		} `json:"name"`
	}
	if raw := c.Params.Get("user"); raw != "" && len(raw) < 4096 && jsonx.Unmarshal([]byte(raw), &u) == nil {
		if u.Name.FirstName != "" {
			id.Claims["given_name"] = clip(u.Name.FirstName, 200)
		}
		if u.Name.LastName != "" {
			id.Claims["family_name"] = clip(u.Name.LastName, 200)
		}
	}
	return id, nil
}

// FormPost reports that Apple's callback is a cross-site form POST (response_mode=form_post).
func (a *Apple) FormPost() bool { return true }
