package keyset

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint (RFC 7517 §4.8); used as an index only.
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/gatehouse/gatehouse/internal/jsonx"

	jose "github.com/go-jose/go-jose/v4"
)

// Format is the document format served at a key set URL.
type Format int

// Formats.
const (
	// FormatAuto sniffs the body: an object with a "keys" array is a JWK Set,
	// an object whose values are PEM strings is a kid → certificate map.
	FormatAuto Format = iota
	// FormatJWKS is a JWK Set (RFC 7517 §5), as served by Google v3, Entra, Apple.
	FormatJWKS
	// FormatPEMCerts is Google's v1 format: {"<kid>": "-----BEGIN CERTIFICATE-----..."}.
	FormatPEMCerts
)

// MinRSABits is the smallest RSA modulus accepted in a key set.
const MinRSABits = 2048

// maxKeys bounds the number of keys a set may hold.
const maxKeys = 256

// Key is one usable verification key.
type Key struct {
	// ID is the "kid" (for PEM maps, the map key). May be empty.
	ID string
	// Thumbprint is the base64url SHA-1 certificate thumbprint ("x5t"), from the
	// JWK or computed from its first x5c certificate / the PEM certificate. May be empty.
	Thumbprint string
	// Algorithm is the only algorithm this key may verify: the JWK's "alg" when
	// present, else the one its type implies (RSA → RS256, EC P-256 → ES256,
	// P-384 → ES384, P-521 → ES512, Ed25519 → EdDSA).
	Algorithm jose.SignatureAlgorithm
	// Public is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
}

// Skipped describes a key that was left out of a set.
type Skipped struct {
	ID     string // kid, may be empty
	Reason string
}

// ErrNoUsableKeys is returned (wrapped) when a fetched document holds no usable key.
var ErrNoUsableKeys = errors.New("keyset: no usable key in document")

// ParseDocument parses a key set document. Unusable or unsupported keys are skipped
// and reported; an error is returned only if the document is malformed or no usable
// key remains.
func ParseDocument(body []byte, format Format) ([]*Key, []Skipped, error) {
	body = bytes.TrimSpace(body)
	var top map[string]json.RawMessage
	if err := jsonx.Unmarshal(body, &top); err != nil {
		return nil, nil, fmt.Errorf("keyset: document is not a JSON object: %w", err)
	}
	if format == FormatAuto {
		if _, ok := top["keys"]; ok {
			format = FormatJWKS
		} else {
			format = FormatPEMCerts
		}
	}
	var (
		keys    []*Key
		skipped []Skipped
	)
	switch format {
	case FormatJWKS:
		raw, ok := top["keys"]
		if !ok {
			return nil, nil, errors.New(`keyset: JWK Set has no "keys" member`)
		}
		var entries []json.RawMessage
		if err := jsonx.Unmarshal(raw, &entries); err != nil {
			return nil, nil, fmt.Errorf(`keyset: JWK Set "keys" is not an array: %w`, err)
		}
		for _, e := range entries {
			k, kid, err := parseJWK(e)
			if err != nil {
				skipped = append(skipped, Skipped{ID: kid, Reason: err.Error()})
				continue
			}
			keys = append(keys, k)
		}
	case FormatPEMCerts:
		// Sorted for deterministic order.
		ids := make([]string, 0, len(top))
		for id := range top {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			k, err := parsePEMEntry(id, top[id])
			if err != nil {
				skipped = append(skipped, Skipped{ID: id, Reason: err.Error()})
				continue
			}
			keys = append(keys, k)
		}
	default:
		return nil, nil, fmt.Errorf("keyset: unknown format %d", format)
	}
	keys, skipped = dedupe(keys, skipped)
	if len(keys) > maxKeys {
		for _, k := range keys[maxKeys:] {
			skipped = append(skipped, Skipped{ID: k.ID, Reason: "too many keys in set"})
		}
		keys = keys[:maxKeys]
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("%w (%d skipped)", ErrNoUsableKeys, len(skipped))
	}
	return keys, skipped, nil
}

// jwkHead holds the members inspected before go-jose parses the key.
type jwkHead struct {
	Kty    string          `json:"kty"`
	Kid    string          `json:"kid"`
	Use    string          `json:"use"`
	Alg    string          `json:"alg"`
	KeyOps []string        `json:"key_ops"`
	D      json.RawMessage `json:"d"`
	P      json.RawMessage `json:"p"`
	Q      json.RawMessage `json:"q"`
	K      json.RawMessage `json:"k"`
	Priv   json.RawMessage `json:"priv"`
}

func parseJWK(raw json.RawMessage) (*Key, string, error) {
	var h jwkHead
	if err := jsonx.Unmarshal(raw, &h); err != nil {
		return nil, "", fmt.Errorf("malformed JWK: %w", err)
	}
	switch {
	case h.Kty == "oct" || h.K != nil:
		return nil, h.Kid, errors.New("symmetric key in a public key set")
	case h.D != nil || h.P != nil || h.Q != nil || h.Priv != nil:
		return nil, h.Kid, errors.New("private key material published")
	case h.Use != "" && h.Use != "sig":
		return nil, h.Kid, fmt.Errorf("use %q is not sig", h.Use)
	case h.KeyOps != nil && !slices.Contains(h.KeyOps, "verify"):
		return nil, h.Kid, errors.New("key_ops does not allow verify")
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		if errors.Is(err, jose.ErrUnsupportedKeyType) {
			return nil, h.Kid, fmt.Errorf("unsupported key type %q", h.Kty)
		}
		return nil, h.Kid, fmt.Errorf("invalid JWK: %w", err)
	}
	alg, err := algorithmFor(jwk.Key, h.Alg)
	if err != nil {
		return nil, h.Kid, err
	}
	k := &Key{ID: jwk.KeyID, Algorithm: alg, Public: jwk.Key}
	switch {
	case len(jwk.CertificateThumbprintSHA1) > 0:
		k.Thumbprint = base64.RawURLEncoding.EncodeToString(jwk.CertificateThumbprintSHA1)
	case len(jwk.Certificates) > 0:
		k.Thumbprint = thumbprint(jwk.Certificates[0].Raw)
	}
	return k, h.Kid, nil
}

func parsePEMEntry(id string, raw json.RawMessage) (*Key, error) {
	var s string
	if err := jsonx.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("value is not a string")
	}
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("value is not PEM")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after PEM block")
	}
	var (
		pub   crypto.PublicKey
		thumb string
	)
	switch block.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid certificate: %w", err)
		}
		pub, thumb = cert.PublicKey, thumbprint(cert.Raw)
	case "PUBLIC KEY":
		p, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid public key: %w", err)
		}
		pub = p
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	alg, err := algorithmFor(pub, "")
	if err != nil {
		return nil, err
	}
	return &Key{ID: id, Thumbprint: thumb, Algorithm: alg, Public: pub}, nil
}

func thumbprint(der []byte) string {
	sum := sha1.Sum(der) //nolint:gosec // see import
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// algorithmFor returns the one algorithm the key may be used with, checking a
// stated "alg" against the key type and rejecting weak keys.
func algorithmFor(pub crypto.PublicKey, stated string) (jose.SignatureAlgorithm, error) {
	alg := jose.SignatureAlgorithm(stated)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("RSA key of %d bits is below %d", k.N.BitLen(), MinRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return "", errors.New("RSA public exponent is not an odd number ≥ 3")
		}
		switch alg {
		case "":
			return jose.RS256, nil
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return alg, nil
		}
		return "", fmt.Errorf("alg %q is not a signature algorithm for an RSA key", stated)
	case *ecdsa.PublicKey:
		var natural jose.SignatureAlgorithm
		switch k.Curve {
		case elliptic.P256():
			natural = jose.ES256
		case elliptic.P384():
			natural = jose.ES384
		case elliptic.P521():
			natural = jose.ES512
		default:
			return "", errors.New("unsupported elliptic curve")
		}
		if alg != "" && alg != natural {
			return "", fmt.Errorf("alg %q does not match the key's curve (%s)", stated, natural)
		}
		return natural, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("invalid Ed25519 key")
		}
		if alg != "" && alg != jose.EdDSA {
			return "", fmt.Errorf("alg %q does not match an Ed25519 key", stated)
		}
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("unsupported key type %T", pub)
}

// dedupe drops every key whose kid (or x5t) is shared with a different key or
// algorithm: an ambiguous id cannot be verified against safely. Exact duplicates
// collapse to one.
func dedupe(keys []*Key, skipped []Skipped) ([]*Key, []Skipped) {
	type entry struct {
		k         *Key
		ambiguous bool
	}
	byKid := map[string]*entry{}
	byThumb := map[string]*entry{}
	var out []*Key
	for _, k := range keys {
		dup := false
		for _, idx := range []struct {
			m  map[string]*entry
			id string
		}{{byKid, k.ID}, {byThumb, k.Thumbprint}} {
			if idx.id == "" {
				continue
			}
			if prev, ok := idx.m[idx.id]; ok {
				dup = true
				if !sameKey(prev.k, k) {
					prev.ambiguous = true
				}
				continue
			}
			idx.m[idx.id] = &entry{k: k}
		}
		if !dup {
			out = append(out, k)
		}
	}
	kept := out[:0]
	for _, k := range out {
		if (k.ID != "" && byKid[k.ID].ambiguous) || (k.Thumbprint != "" && byThumb[k.Thumbprint].ambiguous) {
			skipped = append(skipped, Skipped{ID: k.ID, Reason: "duplicate kid/x5t with a different key or alg"})
			continue
		}
		kept = append(kept, k)
	}
	return kept, skipped
}

func sameKey(a, b *Key) bool {
	if a.Algorithm != b.Algorithm || a.ID != b.ID {
		return false
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.Public.(equaler)
	return ok && ea.Equal(b.Public)
}

// VerifyCompact verifies a compact JWS with this key and its one algorithm (go-jose
// v4; the header's alg must equal k.Algorithm) and returns the payload. It does not
// look at kid or any other header member.
func (k *Key) VerifyCompact(token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{k.Algorithm})
	if err != nil {
		return nil, err
	}
	return jws.Verify(k.Public)
}
