package config

import "time"

// Tokens configures the token format login flows return (package auth, package signing).
type Tokens struct {
	// Format is "zumo" (the HS256 app token, the default) or "jwt" (ES256/EdDSA, keys published at
	// /.well-known/jwks.json). Gatehouse accepts both formats on X-ZUMO-AUTH whichever it issues.
	Format string
	// Algorithm of the signing keys: ES256 or EdDSA.
	Algorithm string
	// Audiences are the aud of issued tokens (default: public_url).
	Audiences []string
	// JWKSMaxAge is the Cache-Control max-age of the JWKS and discovery documents; a rotated signing
	// key is published at least this long before it signs.
	JWKSMaxAge time.Duration
}

func tokenSettings() []setting {
	return []setting{
		{"tokens.format", []string{"GATEHOUSE_TOKENS_FORMAT"}, "", "zumo", kString, "token login flows return: zumo (HS256 app token keyed by the master key) or jwt (ES256/EdDSA, verifiable by other services with /.well-known/jwks.json; needs public_url); both are accepted either way", func(c *Config) any { return &c.Tokens.Format }},
		{"tokens.algorithm", []string{"GATEHOUSE_TOKENS_ALGORITHM"}, "", "ES256", kString, "signing algorithm of jwt tokens: ES256 or EdDSA", func(c *Config) any { return &c.Tokens.Algorithm }},
		{"tokens.audience", []string{"GATEHOUSE_TOKENS_AUDIENCE"}, "", "", kCSV, "aud of jwt tokens (comma separated; default: public_url); Gatehouse accepts tokens naming any of them", func(c *Config) any { return &c.Tokens.Audiences }},
		{"tokens.jwks_max_age", []string{"GATEHOUSE_TOKENS_JWKS_MAX_AGE"}, "", "5m", kDuration, "Cache-Control max-age of /.well-known/jwks.json; a rotated signing key is published this long before it signs", func(c *Config) any { return &c.Tokens.JWKSMaxAge }},
	}
}

func (c *Config) validateTokens() error {
	t := &c.Tokens
	switch t.Format {
	case "zumo", "jwt":
	default:
		return &Error{Setting: "tokens.format", Value: t.Format, Reason: "must be zumo or jwt"}
	}
	switch t.Algorithm {
	case "ES256", "EdDSA":
	default:
		return &Error{Setting: "tokens.algorithm", Value: t.Algorithm, Reason: "must be ES256 or EdDSA"}
	}
	if t.Format == "jwt" && c.PublicURL == "" {
		return &Error{Setting: "tokens.format", Value: t.Format, Reason: "jwt tokens need public_url (their issuer, where other services find /.well-known/jwks.json)"}
	}
	if t.JWKSMaxAge < time.Second || t.JWKSMaxAge > time.Hour {
		return &Error{Setting: "tokens.jwks_max_age", Value: t.JWKSMaxAge.String(), Reason: "must be between 1s and 1h"}
	}
	if t.JWKSMaxAge >= c.TokenTTL {
		return &Error{Setting: "tokens.jwks_max_age", Value: t.JWKSMaxAge.String(), Reason: "must be shorter than token_ttl"}
	}
	for _, a := range t.Audiences {
		if a == "" {
			return &Error{Setting: "tokens.audience", Reason: "must not contain empty entries"}
		}
	}
	return nil
}

// Issuer is the iss of jwt tokens: public_url without a trailing slash.
func (c *Config) Issuer() string {
	u := c.PublicURL
	for len(u) > 0 && u[len(u)-1] == '/' {
		u = u[:len(u)-1]
	}
	return u
}
