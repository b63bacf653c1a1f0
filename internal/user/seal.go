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
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/token"
)

// ErrUnseal is any failure to open sealed data: wrong key, tampering, truncation, wrong context. It
// carries no detail, so it can never act as an oracle.
var ErrUnseal = errors.New("user: sealed data cannot be opened")

// Sealer encrypts and authenticates small values with AES-256-GCM under keys derived from the master
// key with HKDF-SHA256 (one purpose label per use, so a login cookie can never be opened as a stored
// provider token). The current master key seals; previous master keys still open, so rotation loses
// nothing. Output: "v1." + base64url(nonce ‖ ciphertext ‖ tag).
//
// The keys are read from a KeySource at every use (issue 10 finding 10): a sealer keyed once at start
// kept opening values sealed under a master key that `gatehouse keys rotate --revoke-previous` had
// revoked. Derived keys are cached until the source's keys change.
type Sealer struct {
	purpose string
	src     KeySource
	maxAge  time.Duration
	now     func() time.Time
	cache   atomic.Pointer[sealKeys]
}

// KeySource gives the master keys in force now: the current one and the previous (retired) ones,
// newest first, each with when it retired (zero: unknown, still valid). auth.Authenticator implements
// it, so the sealers follow every key reload (and any other key store put behind it) with no wiring of
// their own.
type KeySource interface {
	MasterKeys() (current string, previous []token.Key)
}

// SealerOptions tune a rotating sealer.
type SealerOptions struct {
	// MaxAge is the longest a sealed value lives (the flow cookie's lifetime). When set, a retired key
	// opens values only until RetiredAt + MaxAge: nothing it sealed can still be valid after that.
	MaxAge time.Duration
	Now    func() time.Time
}

type sealKeys struct {
	current  string
	previous []token.Key
	aeads    []cipher.AEAD // [0] seals; aligned with [current, previous...]
	retired  []time.Time
}

type staticKeys struct {
	current  string
	previous []token.Key
}

func (s staticKeys) MasterKeys() (string, []token.Key) { return s.current, s.previous }

// NewSealer derives the keys for purpose from a fixed master key and any previous ones.
func NewSealer(purpose string, masterKey string, previous ...string) (*Sealer, error) {
	src := staticKeys{current: masterKey}
	for _, p := range previous {
		src.previous = append(src.previous, token.Key{Secret: p})
	}
	return NewRotatingSealer(purpose, src, SealerOptions{})
}

// NewRotatingSealer builds a sealer whose keys come from src at every use.
func NewRotatingSealer(purpose string, src KeySource, opt SealerOptions) (*Sealer, error) {
	if purpose == "" || src == nil {
		return nil, errors.New("user: sealer needs a key source and a purpose")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Sealer{purpose: purpose, src: src, maxAge: opt.MaxAge, now: opt.Now}
	if _, err := s.keys(); err != nil {
		return nil, err
	}
	return s, nil
}

// keys returns the derived keys for the source's current master keys.
func (s *Sealer) keys() (*sealKeys, error) {
	cur, prev := s.src.MasterKeys()
	if k := s.cache.Load(); k != nil && k.current == cur && slices.Equal(k.previous, prev) {
		return k, nil
	}
	if cur == "" {
		return nil, errors.New("user: sealer needs a master key")
	}
	k := &sealKeys{current: cur, previous: slices.Clone(prev)}
	add := func(mk string, retired time.Time) error {
		key, err := hkdf.Key(sha256.New, []byte(mk), []byte("gatehouse"), "gatehouse "+s.purpose+" v1", 32)
		if err != nil {
			return fmt.Errorf("user: derive key: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return fmt.Errorf("user: %w", err)
		}
		g, err := cipher.NewGCM(block)
		if err != nil {
			return fmt.Errorf("user: %w", err)
		}
		k.aeads = append(k.aeads, g)
		k.retired = append(k.retired, retired)
		return nil
	}
	if err := add(cur, time.Time{}); err != nil {
		return nil, err
	}
	for _, p := range prev {
		if p.Secret == "" {
			continue
		}
		if err := add(p.Secret, p.RetiredAt); err != nil {
			return nil, err
		}
	}
	s.cache.Store(k)
	return k, nil
}

const sealPrefix = "v1."

// Seal encrypts plaintext bound to the additional data ad (which must be given again to open it).
func (s *Sealer) Seal(plaintext, ad []byte) (string, error) {
	k, err := s.keys()
	if err != nil {
		return "", err
	}
	g := k.aeads[0]
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("user: nonce: %w", err)
	}
	out := g.Seal(nonce, nonce, plaintext, ad)
	return sealPrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a sealed value; ErrUnseal for anything that is not a value this Sealer's keys sealed
// with the same ad. Only keys in force now open: a revoked master key opens nothing.
func (s *Sealer) Open(sealed string, ad []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return nil, ErrUnseal
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, ErrUnseal
	}
	k, err := s.keys()
	if err != nil {
		return nil, ErrUnseal
	}
	now := s.now()
	for i, g := range k.aeads {
		if s.maxAge > 0 && !k.retired[i].IsZero() && now.After(k.retired[i].Add(s.maxAge)) {
			continue // retired longer ago than anything it sealed can live
		}
		if len(raw) < g.NonceSize()+g.Overhead() {
			return nil, ErrUnseal
		}
		if pt, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], ad); err == nil {
			return pt, nil
		}
	}
	return nil, ErrUnseal
}
