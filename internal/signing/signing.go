// Package signing issues and verifies Gatehouse's asymmetric tokens: JWTs signed with ES256 (P-256)
// or EdDSA (Ed25519) keys whose public halves are published at /.well-known/jwks.json, so that other
// services can trust Gatehouse users without holding any Gatehouse secret (the Zumo HS256 app token of
// package token needs the master key to verify).
//
// Keys live where Gatehouse's other keys live (the cluster key ring, sealed in the database, or the
// data directory's keys.json on a single node) and reach this package as Entries: each key is
// published (in the JWKS, accepted by verification) before it signs, and stays published after it is
// retired until every token it signed has expired (Options.Keep).
//
// JWS parsing and signatures are go-jose's; claims are decoded with internal/jsonx (JSON.parse
// semantics, duplicates refused). The algorithm is pinned per key: the token's alg must be the alg of
// the key its kid names, so a key can never be used with another algorithm.
package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms.
const (
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Algorithms lists the supported algorithms, in the order discovery documents show them.
var algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// Algorithms returns the supported signature algorithms.
func Algorithms() []string { return []string{ES256, EdDSA} }

// CheckAlgorithm reports whether alg is supported.
func CheckAlgorithm(alg string) error {
	if alg != ES256 && alg != EdDSA {
		return fmt.Errorf("signing: unsupported algorithm %q (ES256 or EdDSA)", alg)
	}
	return nil
}

// Generate creates a private key of alg and returns it as a private JWK (JSON, with kid and alg): the
// secret the key ring seals or keys.json holds.
func Generate(alg string) (string, error) {
	var priv crypto.Signer
	switch alg {
	case ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", fmt.Errorf("signing: %w", err)
		}
		priv = k
	case EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", fmt.Errorf("signing: %w", err)
		}
		priv = k
	default:
		return "", CheckAlgorithm(alg)
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	kid, err := thumbprint(jwk.Public())
	if err != nil {
		return "", err
	}
	jwk.KeyID = kid
	b, err := jwk.MarshalJSON()
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return string(b), nil
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, base64url: the key's kid.
func thumbprint(pub jose.JSONWebKey) (string, error) {
	t, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// Key is a parsed private key's public description.
type Key struct {
	KID string
	Alg string
}

// ErrBadKey refuses a stored secret that is not a private ES256 (P-256) or Ed25519 JWK.
var ErrBadKey = errors.New("signing: the stored key is not a private ES256 (P-256) or EdDSA (Ed25519) JWK")

// Describe reads a stored secret's kid and alg (for the key ring's public description).
func Describe(secret string) (Key, error) {
	k, err := parse(secret)
	if err != nil {
		return Key{}, err
	}
	return Key{KID: k.kid, Alg: k.alg}, nil
}

type key struct {
	kid, alg string
	priv     crypto.Signer
	pub      jose.JSONWebKey // public JWK as published
	verify   any             // *ecdsa.PublicKey or ed25519.PublicKey
	signer   jose.Signer
}

func parse(secret string) (*key, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON([]byte(secret)); err != nil || jwk.IsPublic() || !jwk.Valid() {
		return nil, ErrBadKey
	}
	k := &key{alg: jwk.Algorithm}
	switch p := jwk.Key.(type) {
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() || k.alg != ES256 {
			return nil, ErrBadKey
		}
		k.priv, k.verify = p, &p.PublicKey
	case ed25519.PrivateKey:
		if k.alg != EdDSA {
			return nil, ErrBadKey
		}
		k.priv, k.verify = p, p.Public()
	default:
		return nil, ErrBadKey
	}
	k.pub = jose.JSONWebKey{Key: k.verify, Algorithm: k.alg, Use: "sig"}
	kid, err := thumbprint(k.pub)
	if err != nil {
		return nil, err
	}
	if jwk.KeyID != "" && jwk.KeyID != kid {
		return nil, ErrBadKey
	}
	k.kid, k.pub.KeyID = kid, kid
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.alg), Key: k.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	k.signer = s
	return k, nil
}

// Entry is one stored key and where it is in its life.
type Entry struct {
	Secret string // private JWK
	// SignsFrom is when the key may start signing: the newest key whose SignsFrom has passed signs,
	// and the one it replaces is retired at that moment (keys.json's schedule). Zero: at once.
	SignsFrom time.Time
	// Pending keys are published and verify, but never sign (the ring's accepted keys, waiting for
	// every instance to acknowledge them).
	Pending bool
	// RetiredAt is set for a key retired explicitly (the ring's retired keys).
	RetiredAt time.Time
}

// Options configure a Set.
type Options struct {
	Issuer    string   // iss of minted tokens, required of verified ones
	Audiences []string // aud of minted tokens; a verified token must name one of them
	// Keep is how long a retired key stays published (the longest token lifetime plus skew).
	Keep      time.Duration
	ClockSkew time.Duration
	MaxTTL    time.Duration // longest lifetime a verified token may claim
}

type member struct {
	*key
	Entry
}

// Set is an immutable set of keys with the options to mint and verify with them.
type Set struct {
	opt   Options
	keys  []member // sorted by SignsFrom
	byKID map[string]*member
	jwks  atomic.Pointer[jwksCache]
}

// NewSet parses the entries. Two entries with the same key are refused.
func NewSet(entries []Entry, opt Options) (*Set, error) {
	if opt.Issuer == "" {
		return nil, errors.New("signing: an issuer is required")
	}
	if len(opt.Audiences) == 0 {
		opt.Audiences = []string{opt.Issuer}
	}
	s := &Set{opt: opt, byKID: map[string]*member{}}
	for _, e := range entries {
		k, err := parse(e.Secret)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, member{k, e})
	}
	sort.SliceStable(s.keys, func(i, j int) bool { return s.keys[i].SignsFrom.Before(s.keys[j].SignsFrom) })
	for i := range s.keys {
		m := &s.keys[i]
		if _, dup := s.byKID[m.kid]; dup {
			return nil, fmt.Errorf("signing: key %s is listed twice", m.kid)
		}
		s.byKID[m.kid] = m
	}
	return s, nil
}

// Issuer is the set's issuer.
func (s *Set) Issuer() string { return s.opt.Issuer }

// signs reports whether m may sign at now (not pending, not explicitly retired, SignsFrom passed).
func (m *member) signs(now time.Time) bool {
	return !m.Pending && m.RetiredAt.IsZero() && !m.SignsFrom.After(now)
}

// signer is the key that signs at now: of the keys that may, the one with the latest SignsFrom.
func (s *Set) signer(now time.Time) *member {
	var cur *member
	for i := range s.keys {
		if s.keys[i].signs(now) {
			cur = &s.keys[i]
		}
	}
	return cur
}

// retiredAt is when m stopped signing: explicitly, or when a later key took over (zero: it has not).
func (s *Set) retiredAt(m *member, now time.Time) time.Time {
	if !m.RetiredAt.IsZero() {
		return m.RetiredAt
	}
	if m.Pending {
		return time.Time{}
	}
	for i := range s.keys {
		o := &s.keys[i]
		if o != m && o.signs(now) && o.SignsFrom.After(m.SignsFrom) {
			return o.SignsFrom
		}
	}
	return time.Time{}
}

// published reports whether m is in the JWKS at now: until Keep after it retired.
func (s *Set) published(m *member, now time.Time) bool {
	r := s.retiredAt(m, now)
	return r.IsZero() || now.Before(r.Add(s.opt.Keep))
}

// KeyState describes one key of the set at a moment (for status output and tests).
type KeyState struct {
	KID, Alg  string
	Signing   bool
	Published bool
	RetiredAt time.Time
}

// States describes every key at now.
func (s *Set) States(now time.Time) []KeyState {
	cur := s.signer(now)
	out := make([]KeyState, 0, len(s.keys))
	for i := range s.keys {
		m := &s.keys[i]
		out = append(out, KeyState{KID: m.kid, Alg: m.alg, Signing: m == cur, Published: s.published(m, now), RetiredAt: s.retiredAt(m, now)})
	}
	return out
}
