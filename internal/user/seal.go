package user

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrUnseal is any failure to open sealed data: wrong key, tampering, truncation, wrong context. It
// carries no detail, so it can never act as an oracle.
var ErrUnseal = errors.New("user: sealed data cannot be opened")

// Sealer encrypts and authenticates small values with AES-256-GCM under keys derived from the master
// key with HKDF-SHA256 (one purpose label per use, so a login cookie can never be opened as a stored
// provider token). The current master key seals; previous master keys still open, so rotation loses
// nothing. Output: "v1." + base64url(nonce ‖ ciphertext ‖ tag).
type Sealer struct {
	aeads []cipher.AEAD // [0] seals
}

// NewSealer derives the keys for purpose from the current master key and any previous ones.
func NewSealer(purpose string, masterKey string, previous ...string) (*Sealer, error) {
	if masterKey == "" || purpose == "" {
		return nil, errors.New("user: sealer needs a master key and a purpose")
	}
	s := &Sealer{}
	for _, mk := range append([]string{masterKey}, previous...) {
		if mk == "" {
			continue
		}
		key, err := hkdf.Key(sha256.New, []byte(mk), []byte("gatehouse"), "gatehouse "+purpose+" v1", 32)
		if err != nil {
			return nil, fmt.Errorf("user: derive key: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
		g, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
		s.aeads = append(s.aeads, g)
	}
	return s, nil
}

const sealPrefix = "v1."

// Seal encrypts plaintext bound to the additional data ad (which must be given again to open it).
func (s *Sealer) Seal(plaintext, ad []byte) (string, error) {
	g := s.aeads[0]
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("user: nonce: %w", err)
	}
	out := g.Seal(nonce, nonce, plaintext, ad)
	return sealPrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a sealed value; ErrUnseal for anything that is not a value this Sealer's keys sealed
// with the same ad.
func (s *Sealer) Open(sealed string, ad []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return nil, ErrUnseal
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, ErrUnseal
	}
	for _, g := range s.aeads {
		if len(raw) < g.NonceSize()+g.Overhead() {
			return nil, ErrUnseal
		}
		if pt, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], ad); err == nil {
			return pt, nil
		}
	}
	return nil, ErrUnseal
}
