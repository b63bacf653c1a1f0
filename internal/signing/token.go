package signing

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/jsonx"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Claims ask for a token.
type Claims struct {
	Subject string // the user id, "<provider>:<id>"; also the uid claim
	// IDP is the identity provider's display name (Facebook, Custom, …): the app token's aud, which
	// here is the idp claim because aud names the services the token is for.
	IDP      string
	IssuedAt time.Time
	Expiry   time.Time
	// AMR lists the authentication methods used (RFC 8176 values: pwd, otp, hwk, mfa, …).
	AMR []string
	// Extra claims (the app token's extras: id, claims of custom logins). Registered claims win.
	Extra map[string]any
}

// ErrNoSigningKey is returned when no key may sign yet (every key is still pending).
var ErrNoSigningKey = errors.New("signing: no key may sign yet")

// Mint signs claims with the key that signs now and returns the compact JWS. The header carries the
// key's kid and alg and typ JWT; the claims are the app token's (uid, ver, extras, iat with
// milliseconds) plus iss, sub, aud, exp, jti, amr and idp.
func (s *Set) Mint(c Claims) (string, error) {
	m := s.signer(c.IssuedAt)
	if m == nil {
		return "", ErrNoSigningKey
	}
	if c.Subject == "" || !c.Expiry.After(c.IssuedAt) {
		return "", errors.New("signing: subject and a future expiry are required")
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	claims := make(map[string]any, len(c.Extra)+10)
	for k, v := range c.Extra {
		claims[k] = v
	}
	var aud any = s.opt.Audiences
	if len(s.opt.Audiences) == 1 {
		aud = s.opt.Audiences[0]
	}
	amr := c.AMR
	if amr == nil {
		amr = []string{}
	}
	claims["iss"] = s.opt.Issuer
	claims["sub"] = c.Subject
	claims["uid"] = c.Subject
	claims["aud"] = aud
	claims["exp"] = c.Expiry.Unix()
	// iat with milliseconds, as in the app token: revocation cut-offs separate tokens minted in the
	// same second. RFC 7519 NumericDate allows a fraction.
	claims["iat"] = json.Number(fmt.Sprintf("%d.%03d", c.IssuedAt.Unix(), c.IssuedAt.Nanosecond()/1e6))
	claims["jti"] = base64.RawURLEncoding.EncodeToString(jti)
	claims["amr"] = amr
	claims["ver"] = 2
	if c.IDP != "" {
		claims["idp"] = c.IDP
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(claims); err != nil {
		return "", fmt.Errorf("signing: claims: %w", err)
	}
	jws, err := m.signer.Sign(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return jws.CompactSerialize()
}

// IsAsymmetric reports whether a token's header names one of this package's algorithms: the cheap
// test that routes X-ZUMO-AUTH tokens to Verify rather than to the app-token verifier. It decodes the
// header only (bounded), never trusting it.
func IsAsymmetric(raw string) bool {
	h, _, ok := strings.Cut(raw, ".")
	if !ok || len(h) > 1024 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return false
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &hdr) != nil {
		return false
	}
	return hdr.Alg == ES256 || hdr.Alg == EdDSA
}

// verified are the registered claims Verify checks, decoded with JSON.parse semantics.
type verified struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Idp string          `json:"idp"`
	Exp json.Number     `json:"exp"`
	Nbf json.Number     `json:"nbf"`
	Iat json.Number     `json:"iat"`
}

// Verify checks a token against the set at now: a published key by kid, the alg pinned to that key,
// the signature (before any claim is read), then iss, aud, exp, nbf and iat (with the clock skew),
// the longest lifetime, and for a retired key that it was issued before the retirement. It returns the
// claims in the app token's shape (Aud is the idp claim, as it was the provider there).
func (s *Set) Verify(raw string, now time.Time) (*token.Claims, error) {
	if raw == "" {
		return nil, token.ErrEmpty
	}
	if len(raw) > token.MaxTokenLength {
		return nil, token.ErrTooLong
	}
	if strings.Count(raw, ".") != 2 {
		return nil, token.ErrFormat
	}
	jws, err := jose.ParseSignedCompact(raw, algorithms)
	if err != nil {
		if !IsAsymmetric(raw) {
			return nil, token.ErrAlg
		}
		return nil, token.ErrFormat
	}
	if len(jws.Signatures) != 1 {
		return nil, token.ErrFormat
	}
	h := jws.Signatures[0].Protected
	m, ok := s.byKID[h.KeyID]
	if !ok || h.KeyID == "" || !s.published(m, now) {
		return nil, token.ErrUnknownKey
	}
	if h.Algorithm != m.alg {
		return nil, token.ErrAlg
	}
	payload, err := jws.Verify(m.verify)
	if err != nil {
		return nil, token.ErrSignature
	}
	var v verified
	if err := jsonx.UnmarshalUseNumber(payload, &v); err != nil {
		return nil, token.ErrJSON
	}
	if v.Iss != s.opt.Issuer {
		return nil, token.ErrIssuer
	}
	if !s.audienceOK(v.Aud) {
		return nil, token.ErrAudience
	}
	if v.Sub == "" {
		return nil, token.ErrSubject
	}
	skew := s.opt.ClockSkew
	exp, ok := numericDate(v.Exp)
	if !ok {
		return nil, token.ErrNoExpiration
	}
	if !now.Before(exp.Add(skew)) {
		return nil, token.ErrExpired
	}
	if s.opt.MaxTTL > 0 && exp.After(now.Add(s.opt.MaxTTL+skew)) {
		return nil, token.ErrExpired
	}
	if v.Nbf != "" {
		nbf, ok := numericDate(v.Nbf)
		if !ok || nbf.After(now.Add(skew)) {
			return nil, token.ErrNotBefore
		}
	}
	iat, ok := numericDate(v.Iat)
	if !ok || iat.After(now.Add(skew)) {
		return nil, token.ErrIssuedAt
	}
	if r := s.retiredAt(m, now); !r.IsZero() && iat.After(r.Add(skew)) {
		return nil, token.ErrRetiredKey
	}
	c, err := token.ClaimsOf(payload)
	if err != nil {
		return nil, err
	}
	if c.UID == "" {
		c.UID = v.Sub
	}
	c.Aud = v.Idp
	if c.Aud == "" {
		c.Aud = c.Provider()
	}
	return c, nil
}

// audienceOK reports whether aud (a string or an array of strings) names one of the set's audiences.
// The payload it comes from has passed jsonx (exact names, no duplicates, valid UTF-8), so plain
// encoding/json is enough for this member.
func (s *Set) audienceOK(raw json.RawMessage) bool {
	var list []string
	if len(raw) > 0 && raw[0] == '"' {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return false
		}
		list = []string{one}
	} else if len(raw) == 0 || json.Unmarshal(raw, &list) != nil {
		return false
	}
	for _, a := range list {
		for _, want := range s.opt.Audiences {
			if a == want {
				return true
			}
		}
	}
	return false
}

// numericDate reads an RFC 7519 NumericDate (seconds, maybe fractional).
func numericDate(n json.Number) (time.Time, bool) {
	if n == "" {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f <= 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
