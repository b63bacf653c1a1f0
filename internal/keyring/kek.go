// Package keyring keeps the cluster's keys — master (token signing, admin access), application and
// system keys, with the master and system keys they replaced — in the database, so that every instance
// sharing it uses the same keys and a rotation started anywhere reaches all of them.
//
// The secrets are sealed with XChaCha20-Poly1305 under a key-encryption key (KEK) that never enters
// the database: it comes from GATEHOUSE_KEY_ENCRYPTION_KEY or key_encryption_key_file. The ring's
// public part (which keys exist, in which state, their fingerprints) is stored beside the sealed
// secrets and bound to them as additional data, with the ring's version, so neither can be edited,
// swapped or rolled back without the KEK.
//
// Without a KEK a PostgreSQL cluster still declares its keys here, by fingerprint only (Declared):
// each instance's keys come from its configuration or keys.json, and an instance whose keys differ
// from the declared ones refuses to start.
package keyring

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KEK is a key-encryption key.
type KEK struct {
	id   string
	aead cipher.AEAD
}

// ErrKEKFormat explains what a key-encryption key looks like.
var ErrKEKFormat = errors.New("a key-encryption key is 32 random bytes, base64 or hex encoded (create one with: openssl rand -base64 32)")

// ParseKEK reads a key-encryption key: 32 bytes in standard or URL base64 (padded or not) or hex.
// Surrounding white space (a trailing newline in a file) is ignored.
func ParseKEK(s string) (*KEK, error) {
	s = strings.TrimSpace(s)
	var raw []byte
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if b, err := dec(s); err == nil && len(b) == chacha20poly1305.KeySize {
			raw = b
			break
		}
	}
	if raw == nil {
		return nil, ErrKEKFormat
	}
	aead, err := chacha20poly1305.NewX(raw)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	h := sha256.Sum256(append([]byte("gatehouse key-encryption key id\x00"), raw...))
	return &KEK{id: hex.EncodeToString(h[:6]), aead: aead}, nil
}

// ID names the KEK (a hash, safe to log) so that a wrong one is reported as such.
func (k *KEK) ID() string { return k.id }

func (k *KEK) seal(plaintext, ad []byte) string {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("keyring: crypto/rand failed: %v", err)) // never happens on supported platforms
	}
	return base64.RawStdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plaintext, ad))
}

func (k *KEK) open(sealed string, ad []byte) ([]byte, error) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, ErrTampered
	}
	pt, err := k.aead.Open(nil, b[:k.aead.NonceSize()], b[k.aead.NonceSize():], ad)
	if err != nil {
		return nil, ErrTampered
	}
	return pt, nil
}
