package keyring

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/signing"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Kind names a key; the same names as keys.Which.
type Kind = keys.Which

// State is where a key is in its life.
type State string

// States. A master or system key is published as Accepted (every instance verifies with it, none signs
// with it), then promoted to Current (it signs) once every live instance has acknowledged it or the
// grace period has passed; the key it replaces becomes Retired and keeps verifying what it signed
// until those tokens have expired.
const (
	Accepted State = "accepted"
	Current  State = "current"
	Retired  State = "retired"
)

// Key is the public description of one key (never its secret).
type Key struct {
	Kind        Kind      `json:"kind"`
	Fingerprint string    `json:"fingerprint"`
	State       State     `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
	// AcceptedIn is the ring version that published an Accepted key; an instance has acknowledged it
	// once it has loaded that version or a later one.
	AcceptedIn int64     `json:"accepted_in,omitempty"`
	PromotedAt time.Time `json:"promoted_at,omitzero"`
	RetiredAt  time.Time `json:"retired_at,omitzero"`
	// RevokePrevious drops the retired keys of its kind when this key is promoted (a leaked key).
	RevokePrevious bool `json:"revoke_previous,omitempty"`
	// KID and Alg describe a signing key (public: its JWK thumbprint and algorithm).
	KID string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	// NotBefore holds an accepted signing key back from promotion until then, so that it has been
	// published for a whole JWKS cache lifetime (tokens.jwks_max_age) before it signs.
	NotBefore time.Time `json:"not_before,omitzero"`
}

// Ring is the cluster's key ring.
type Ring struct {
	Version   int64
	UpdatedAt time.Time
	// KEKID names the key-encryption key the secrets are sealed under; "" for a declared ring, which
	// holds fingerprints only.
	KEKID string
	Salt  string // hex; salts the fingerprints so that a weak configured key cannot be looked up
	Keys  []Key

	secrets map[string]string // "kind:fingerprint" → secret; nil when not sealed or not opened
}

// Sealed reports whether the ring holds the secrets (else it only declares fingerprints).
func (r *Ring) Sealed() bool { return r.KEKID != "" }

// Fingerprint identifies a secret without revealing it: the first 64 bits of HMAC-SHA256 keyed by the
// ring's salt. Safe to log and to show in errors.
func (r *Ring) Fingerprint(secret string) string {
	salt, _ := hex.DecodeString(r.Salt)
	m := hmac.New(sha256.New, salt)
	m.Write([]byte("gatehouse key fingerprint\x00"))
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Current returns the key of a kind that signs (and, for master and application keys, is checked).
func (r *Ring) Current(k Kind) (Key, bool) {
	for _, x := range r.Keys {
		if x.Kind == k && x.State == Current {
			return x, true
		}
	}
	return Key{}, false
}

// Pending lists the accepted keys waiting for promotion.
func (r *Ring) Pending() []Key {
	var out []Key
	for _, x := range r.Keys {
		if x.State == Accepted {
			out = append(out, x)
		}
	}
	return out
}

func (r *Ring) secret(x Key) string { return r.secrets[string(x.Kind)+":"+x.Fingerprint] }

// ErrNotSealed is returned when secrets are asked of a declared ring.
var ErrNotSealed = errors.New("keyring: the ring declares fingerprints only; its secrets are not in the database")

// Secrets turns the ring into the authenticator's keys: current keys sign; accepted keys verify; retired
// keys verify what they signed until it expires. extraPrevious (retired master keys from
// configuration) verify too.
func (r *Ring) Secrets(extraPrevious []token.Key) (auth.Secrets, error) {
	if r.secrets == nil {
		return auth.Secrets{}, ErrNotSealed
	}
	var s auth.Secrets
	for _, k := range []Kind{keys.Master, keys.Application, keys.System} {
		cur, ok := r.Current(k)
		if !ok || r.secret(cur) == "" {
			return auth.Secrets{}, fmt.Errorf("keyring: the ring has no current %s key", k)
		}
		switch k {
		case keys.Master:
			s.MasterKey = r.secret(cur)
		case keys.Application:
			s.ApplicationKey = r.secret(cur)
		case keys.System:
			s.SystemKey = r.secret(cur)
		}
	}
	s.Previous = r.verifiers(keys.Master)
	s.Previous = append(s.Previous, extraPrevious...)
	s.SystemPrevious = r.verifiers(keys.System)
	s.Signing = r.signingEntries()
	return s, nil
}

// signingEntries are the ring's signing keys for package signing: the current one signs, accepted
// ones are published only, retired ones stay published until their tokens expire (prune removes
// them from the ring; package signing stops publishing them at the same bound).
func (r *Ring) signingEntries() []signing.Entry {
	var out []signing.Entry
	for _, x := range r.Keys {
		if x.Kind != keys.Signing || r.secret(x) == "" {
			continue
		}
		e := signing.Entry{Secret: r.secret(x)}
		switch x.State {
		case Accepted:
			e.Pending = true
		case Current:
			e.SignsFrom = x.PromotedAt
		case Retired:
			e.SignsFrom, e.RetiredAt = x.PromotedAt, x.RetiredAt
		}
		out = append(out, e)
	}
	return out
}

// HasSigning reports whether the ring holds signing keys.
func (r *Ring) HasSigning() bool {
	for _, x := range r.Keys {
		if x.Kind == keys.Signing {
			return true
		}
	}
	return false
}

// addSigning adds a new signing key of alg: current at once when the ring has no signing key yet
// (nothing can have cached a key set), else accepted until every instance has it and it has been
// published for lead (tokens.jwks_max_age).
func (r *Ring) addSigning(alg string, now time.Time, lead time.Duration, nextVersion int64) (Key, error) {
	secret, err := signing.Generate(alg)
	if err != nil {
		return Key{}, err
	}
	d, err := signing.Describe(secret)
	if err != nil {
		return Key{}, err
	}
	x := Key{Kind: keys.Signing, Fingerprint: r.Fingerprint(secret), CreatedAt: now, KID: d.KID, Alg: d.Alg}
	if r.HasSigning() {
		x.State, x.AcceptedIn, x.NotBefore = Accepted, nextVersion, now.Add(lead)
	} else {
		x.State, x.PromotedAt = Current, now
	}
	r.Keys = append(r.Keys, x)
	r.secrets[string(keys.Signing)+":"+x.Fingerprint] = secret
	return x, nil
}

// verifiers lists a kind's accepted keys (no bound) and retired keys (newest first).
func (r *Ring) verifiers(k Kind) []token.Key {
	var acc, ret []token.Key
	for _, x := range r.Keys {
		if x.Kind != k || r.secret(x) == "" {
			continue
		}
		switch x.State {
		case Accepted:
			acc = append(acc, token.Key{Secret: r.secret(x)})
		case Retired:
			ret = append(ret, token.Key{Secret: r.secret(x), RetiredAt: x.RetiredAt})
		}
	}
	sort.SliceStable(ret, func(i, j int) bool { return ret[i].RetiredAt.After(ret[j].RetiredAt) })
	return append(acc, ret...)
}

// MismatchError names keys of an instance that differ from the cluster's, by fingerprint.
type MismatchError struct {
	Lines []string
}

func (e *MismatchError) Error() string {
	return "this instance's keys differ from the cluster key ring in the database (every instance must use the same keys): " +
		strings.Join(e.Lines, "; ")
}

// Check compares keys an instance was given (by configuration or its keys.json, with where each came
// from) with the ring's current keys. A master or system key may also equal the accepted key of a
// rotation in progress.
func (r *Ring) Check(given map[Kind]string, source map[Kind]string) error {
	var lines []string
	for _, k := range []Kind{keys.Master, keys.Application, keys.System} {
		secret, ok := given[k]
		if !ok || secret == "" {
			continue
		}
		fp := r.Fingerprint(secret)
		var want []string
		match := false
		for _, x := range r.Keys {
			if x.Kind != k || (x.State != Current && x.State != Accepted) {
				continue
			}
			want = append(want, x.Fingerprint+" ("+string(x.State)+")")
			if hmac.Equal([]byte(x.Fingerprint), []byte(fp)) {
				match = true
			}
		}
		if !match {
			lines = append(lines, fmt.Sprintf("%s key from %s has fingerprint %s, the cluster's is %s", k, source[k], fp, strings.Join(want, " or ")))
		}
	}
	if len(lines) > 0 {
		return &MismatchError{Lines: lines}
	}
	return nil
}

// newRing builds version 1 of a ring from the given secrets (all current).
func newRing(secrets map[Kind]string, kekID string, now time.Time) *Ring {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("keyring: crypto/rand failed: %v", err))
	}
	r := &Ring{KEKID: kekID, Salt: hex.EncodeToString(salt), secrets: map[string]string{}}
	for _, k := range []Kind{keys.Master, keys.Application, keys.System} {
		x := Key{Kind: k, Fingerprint: r.Fingerprint(secrets[k]), State: Current, CreatedAt: now, PromotedAt: now}
		r.Keys = append(r.Keys, x)
		if kekID != "" {
			r.secrets[string(k)+":"+x.Fingerprint] = secrets[k]
		}
	}
	if kekID == "" {
		r.secrets = nil
	}
	return r
}

// ErrRotationPending refuses a second rotation of a kind whose previous one is not promoted yet.
var ErrRotationPending = errors.New("keyring: a rotation of this key is still waiting for every instance to accept the new key")

// rotate adds a new key of a kind. Master and system keys are published as Accepted (two-phase);
// the application key, which clients present rather than verify, is replaced at once.
func (r *Ring) rotate(k Kind, now time.Time, revokePrevious bool, nextVersion int64) (Key, error) {
	for _, x := range r.Keys {
		if x.Kind == k && x.State == Accepted {
			return Key{}, ErrRotationPending
		}
	}
	secret := keys.Generate()
	x := Key{Kind: k, Fingerprint: r.Fingerprint(secret), CreatedAt: now}
	switch k {
	case keys.Master, keys.System:
		x.State, x.AcceptedIn, x.RevokePrevious = Accepted, nextVersion, revokePrevious
	case keys.Application:
		x.State, x.PromotedAt = Current, now
		kept := r.Keys[:0:0]
		for _, y := range r.Keys {
			if y.Kind != keys.Application {
				kept = append(kept, y)
			}
		}
		r.Keys = kept
	default:
		return Key{}, fmt.Errorf("keyring: unknown key %q (master, application or system)", k)
	}
	r.Keys = append(r.Keys, x)
	r.secrets[string(k)+":"+x.Fingerprint] = secret
	return x, nil
}

// Instance is one running server as the ring sees it.
type Instance struct {
	ID          string
	Host        string
	StartedAt   time.Time
	HeartbeatAt time.Time
	RingVersion int64  // the ring version it has loaded (its acknowledgement)
	ConfigKeys  []Kind // keys it was given by configuration (checked against the ring at start)
}

// promote turns accepted keys into current ones once every live instance has loaded them, or once
// the grace period has passed since they were published. It reports what it promoted.
func (r *Ring) promote(now time.Time, grace time.Duration, live []Instance) []Key {
	var done []Key
	for i := range r.Keys {
		p := r.Keys[i]
		if p.State != Accepted {
			continue
		}
		ready := !now.Before(p.CreatedAt.Add(grace))
		if now.Before(p.NotBefore) {
			continue // a signing key not yet published for a whole JWKS cache lifetime
		}
		if !ready {
			ready = true
			for _, in := range live {
				if in.RingVersion < p.AcceptedIn {
					ready = false
					break
				}
			}
		}
		if !ready {
			continue
		}
		kept := r.Keys[:0:0]
		for j, y := range r.Keys {
			switch {
			case j == i:
				y.State, y.PromotedAt = Current, now
			case y.Kind == p.Kind && y.State == Current:
				y.State, y.RetiredAt = Retired, now
				if p.RevokePrevious {
					continue
				}
			case y.Kind == p.Kind && y.State == Retired && p.RevokePrevious:
				continue
			}
			kept = append(kept, y)
		}
		r.Keys = kept
		p.State, p.PromotedAt = Current, now
		done = append(done, p)
		return append(done, r.promote(now, grace, live)...) // indexes changed: start over
	}
	return done
}

// prune drops retired keys whose tokens have all expired, and secrets no key refers to.
func (r *Ring) prune(now time.Time, keep time.Duration) {
	kept := r.Keys[:0:0]
	for _, x := range r.Keys {
		if x.State == Retired && now.Sub(x.RetiredAt) > keep {
			continue
		}
		kept = append(kept, x)
	}
	r.Keys = kept
	if r.secrets == nil {
		return
	}
	live := map[string]bool{}
	for _, x := range r.Keys {
		live[string(x.Kind)+":"+x.Fingerprint] = true
	}
	for id := range r.secrets {
		if !live[id] {
			delete(r.secrets, id)
		}
	}
}
