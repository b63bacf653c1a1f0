package signing

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Paths of the published documents.
const (
	JWKSPath      = "/.well-known/jwks.json"
	DiscoveryPath = "/.well-known/openid-configuration"
)

type jwksCache struct {
	body       []byte
	etag       string
	computedAt time.Time
	validUntil time.Time // the published keys may change then (a retirement ends, a key takes over)
}

// JWKS returns the published public keys at now as a JWK Set document, and its ETag. The document is
// computed once per change of the published set.
func (s *Set) JWKS(now time.Time) ([]byte, string) {
	if c := s.jwks.Load(); c != nil && now.Before(c.validUntil) && !now.Before(c.computedAt) {
		return c.body, c.etag
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	next := now.Add(24 * time.Hour)
	for i := range s.keys {
		m := &s.keys[i]
		if !m.SignsFrom.IsZero() && m.SignsFrom.After(now) && m.SignsFrom.Before(next) {
			next = m.SignsFrom
		}
		if s.published(m, now) {
			set.Keys = append(set.Keys, m.pub)
			if r := s.retiredAt(m, now); !r.IsZero() && r.Add(s.opt.Keep).Before(next) {
				next = r.Add(s.opt.Keep)
			}
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		panic("signing: marshal JWKS: " + err.Error()) // public ECDSA/Ed25519 keys always marshal
	}
	sum := sha256.Sum256(body)
	c := &jwksCache{body: body, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`, computedAt: now, validUntil: next}
	s.jwks.Store(c)
	return c.body, c.etag
}

// discovery is the OpenID Provider Metadata Gatehouse can truthfully publish: it issues tokens and
// publishes their keys, but is not an OAuth authorization server, so the flow endpoints are absent.
type discovery struct {
	Issuer           string   `json:"issuer"`
	JWKSURI          string   `json:"jwks_uri"`
	ResponseTypes    []string `json:"response_types_supported"`
	SubjectTypes     []string `json:"subject_types_supported"`
	SigningAlgs      []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported  []string `json:"claims_supported"`
	ClaimsParameter  bool     `json:"claims_parameter_supported"`
	RequestParameter bool     `json:"request_parameter_supported"`
}

// Discovery is the /.well-known/openid-configuration document: issuer, jwks_uri and the algorithms
// of the keys in the set (every supported one when the set is empty).
func (s *Set) Discovery() []byte {
	var algs []string
	seen := map[string]bool{}
	for i := range s.keys {
		if a := s.keys[i].alg; !seen[a] {
			seen[a] = true
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = Algorithms()
	}
	b, err := json.Marshal(discovery{
		Issuer:          s.opt.Issuer,
		JWKSURI:         strings.TrimSuffix(s.opt.Issuer, "/") + JWKSPath,
		ResponseTypes:   []string{"id_token"},
		SubjectTypes:    []string{"public"},
		SigningAlgs:     algs,
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "jti", "amr", "uid", "idp", "ver"},
	})
	if err != nil {
		panic("signing: marshal discovery: " + err.Error())
	}
	return b
}
