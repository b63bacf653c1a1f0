package idtoken

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/gatehouse/gatehouse/internal/jsonx"

	jose "github.com/go-jose/go-jose/v4"
)

// Claims are the verified claims of an ID token.
type Claims struct {
	Provider        string // configured provider name
	Issuer          string // iss
	Subject         string // sub; key users by (Issuer, Subject), never by email
	Audience        []string
	AuthorizedParty string // azp
	Expiry          time.Time
	IssuedAt        time.Time
	NotBefore       time.Time // zero if absent
	Nonce           string
	Email           string
	EmailVerified   bool // Google sends a boolean, Apple a string; both accepted
	Name            string
	TenantID        string // tid (Entra)
	// KeyID and Algorithm identify the key that verified the token.
	KeyID     string
	Algorithm jose.SignatureAlgorithm

	raw []byte
}

// Raw returns the verified JSON payload.
func (c *Claims) Raw() json.RawMessage { return bytes.Clone(c.raw) }

// Decode unmarshals the verified payload into v (for provider-specific claims).
func (c *Claims) Decode(v any) error { return jsonx.Unmarshal(c.raw, v) }

// Map returns the verified payload as a map.
func (c *Claims) Map() (map[string]any, error) {
	var m map[string]any
	err := jsonx.Unmarshal(c.raw, &m)
	return m, err
}

// rawClaims is the wire form. Wrong JSON types fail the decode (type confusion,
// e.g. "aud": 5, is a malformed token, not an empty audience).
type rawClaims struct {
	Iss           string       `json:"iss"`
	Sub           string       `json:"sub"`
	Aud           audience     `json:"aud"`
	Azp           string       `json:"azp"`
	Exp           *numericDate `json:"exp"`
	Iat           *numericDate `json:"iat"`
	Nbf           *numericDate `json:"nbf"`
	Nonce         string       `json:"nonce"`
	Email         string       `json:"email"`
	EmailVerified flexBool     `json:"email_verified"`
	Name          string       `json:"name"`
	Tid           string       `json:"tid"`
}

// audience accepts a string or a non-empty array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := jsonx.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := jsonx.Unmarshal(b, &l); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	if len(l) == 0 {
		return errors.New("aud is an empty array")
	}
	*a = l
	return nil
}

// numericDate is a JSON number of seconds since the epoch (RFC 7519 §2).
type numericDate struct{ t time.Time }

func (n *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := jsonx.Unmarshal(b, &f); err != nil {
		return errors.New("date claim is not a number")
	}
	if math.IsNaN(f) || f < 0 || f > 1<<40 {
		return errors.New("date claim out of range")
	}
	sec, frac := math.Modf(f)
	n.t = time.Unix(int64(sec), int64(frac*1e9))
	return nil
}

// flexBool accepts true/false or "true"/"false".
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", `"true"`:
		*f = true
	case "false", `"false"`, "null":
		*f = false
	default:
		return errors.New("email_verified is not a boolean")
	}
	return nil
}
