package password

import (
	"context"
	"crypto/rand"
	"fmt"
)

// Config configures a Hasher. The zero value is valid and means OWASP
// argon2id parameters, default limits and a default limiter.
type Config struct {
	// Params for new hashes; zero fields take DefaultParams values.
	Params Params
	// Limits applied to stored hashes before verification; zero fields take
	// DefaultLimits values. Params must fit inside Limits.
	Limits Limits
	// Limiter bounds concurrent hashing. Nil means
	// NewLimiter(DefaultConcurrency(), DefaultQueue(DefaultConcurrency())).
	// Share one Limiter per process.
	Limiter *Limiter
}

// Hasher hashes new passwords with argon2id, verifies every supported stored
// format, and decides when a stored hash must be upgraded. All hashing runs
// under the Limiter. A Hasher is safe for concurrent use.
//
// The Hasher hashes the password string's bytes exactly as given; callers
// normalize first (Policy.NormalizePassword when setting a password,
// Policy.NormalizeLoginPassword when logging in).
type Hasher struct {
	params  Params
	limits  Limits
	limiter *Limiter
	dummy   *argon2Hash // a real hash at current params, for unknown accounts
}

// NewHasher validates cfg and computes the dummy hash used by DummyVerify
// (one argon2id computation, outside the limiter).
func NewHasher(cfg Config) (*Hasher, error) {
	h := &Hasher{
		params:  cfg.Params.withDefaults(),
		limits:  cfg.Limits.withDefaults(),
		limiter: cfg.Limiter,
	}
	if err := h.params.validate(h.limits); err != nil {
		return nil, err
	}
	if h.limiter == nil {
		c := DefaultConcurrency()
		h.limiter = NewLimiter(c, DefaultQueue(c))
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("password: dummy hash: %w", err)
	}
	d, err := h.newHash(string(secret))
	if err != nil {
		return nil, fmt.Errorf("password: dummy hash: %w", err)
	}
	h.dummy = d
	return h, nil
}

// Params returns the effective argon2id parameters.
func (h *Hasher) Params() Params { return h.params }

// Limits returns the effective limits.
func (h *Hasher) Limits() Limits { return h.limits }

// Limiter returns the limiter the Hasher runs under.
func (h *Hasher) Limiter() *Limiter { return h.limiter }

// Result is the outcome of a verification.
type Result struct {
	// Match reports whether the password matched the stored hash.
	Match bool
	// Scheme of the stored hash.
	Scheme Scheme
	// NeedsRehash is true when the stored hash is not argon2id with exactly
	// the current Params (every legacy format, argon2i, or argon2id with other
	// m/t/p/salt/key sizes). Act on it only when Match is true.
	NeedsRehash bool
	// NewHash is set by VerifyAndUpgrade when Match and NeedsRehash are both
	// true: the argon2id PHC string to store in place of the old hash.
	NewHash string
}

// Info describes a stored hash without verifying a password.
type Info struct {
	Scheme      Scheme
	NeedsRehash bool
}

// Hash returns the argon2id PHC string for password at the current Params:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard base64).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	var out string
	err := h.limiter.Do(ctx, func() error {
		a, err := h.newHash(password)
		if err != nil {
			return err
		}
		out = a.String()
		return nil
	})
	if err != nil {
		return "", err
	}
	return out, nil
}

// newHash computes an argon2id hash at the current params (no limiter).
func (h *Hasher) newHash(password string) (*argon2Hash, error) {
	salt := make([]byte, h.params.SaltLength)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("password: salt: %w", err)
	}
	a := &argon2Hash{
		variant: SchemeArgon2id,
		memory:  h.params.Memory,
		time:    h.params.Time,
		threads: h.params.Threads,
		salt:    salt,
		key:     make([]byte, h.params.KeyLength),
	}
	a.key = a.derive(password)
	return a, nil
}

// Inspect parses stored and applies the Limits without hashing anything:
// the check an importer runs on every row, and what tells whether a row is
// still on a legacy scheme.
func (h *Hasher) Inspect(stored string) (Info, error) {
	sh, err := h.parse(stored)
	if err != nil {
		return Info{}, err
	}
	return Info{Scheme: sh.scheme(), NeedsRehash: h.needsRehash(sh)}, nil
}

func (h *Hasher) parse(stored string) (storedHash, error) {
	sh, err := parseStored(stored, false)
	if err != nil {
		return nil, err
	}
	if err := sh.checkLimits(h.limits); err != nil {
		return nil, err
	}
	return sh, nil
}

func (h *Hasher) needsRehash(sh storedHash) bool {
	a, ok := sh.(*argon2Hash)
	return !ok || a.variant != SchemeArgon2id ||
		a.memory != h.params.Memory || a.time != h.params.Time || a.threads != h.params.Threads ||
		len(a.salt) != int(h.params.SaltLength) || len(a.key) != int(h.params.KeyLength)
}

// Verify checks password against stored, which may be in any supported
// format. A wrong password is not an error (Match is false). Errors are
// ErrBusy, ctx errors, or parse/limit errors (ErrMalformed, ErrUnsupported,
// ErrLimitExceeded); a parse/limit error is returned before any hashing.
//
// Verify is the primitive; login handlers should use VerifyAndUpgrade and
// DummyVerify, which also equalize timing and produce the upgraded hash.
func (h *Hasher) Verify(ctx context.Context, stored, password string) (Result, error) {
	sh, err := h.parse(stored)
	if err != nil {
		return Result{}, err
	}
	res := Result{Scheme: sh.scheme(), NeedsRehash: h.needsRehash(sh)}
	err = h.limiter.Do(ctx, func() error {
		ok, err := sh.verify(password)
		res.Match = ok
		return err
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// VerifyAndUpgrade is the login operation. It verifies password against
// stored and, when the password matches and the stored hash is not current
// argon2id, computes the replacement (Result.NewHash) in the same limiter
// slot. The caller stores NewHash (ideally only if the row still holds
// stored, to avoid racing a concurrent password change).
//
// Timing: every call costs at least one argon2id computation at the current
// parameters, whatever the stored format and outcome — a legacy or
// outdated hash that does not match is followed by a dummy verification, and
// a stored hash that fails to parse or exceeds the Limits costs one dummy
// verification before its error is returned. Together with DummyVerify for
// unknown accounts this keeps "no such account", "wrong password" and
// "legacy account" indistinguishable by response time, up to the legacy
// scheme's own (smaller or equal) cost.
func (h *Hasher) VerifyAndUpgrade(ctx context.Context, stored, password string) (Result, error) {
	sh, perr := h.parse(stored)
	if perr != nil {
		if err := h.DummyVerify(ctx, password); err != nil {
			return Result{}, err
		}
		return Result{}, perr
	}
	res := Result{Scheme: sh.scheme(), NeedsRehash: h.needsRehash(sh)}
	err := h.limiter.Do(ctx, func() error {
		ok, err := sh.verify(password)
		if err != nil {
			return err
		}
		res.Match = ok
		switch {
		case !res.NeedsRehash:
		case ok:
			a, err := h.newHash(password)
			if err != nil {
				return err
			}
			res.NewHash = a.String()
		default:
			_, _ = h.dummy.verify(password)
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// DummyVerify performs one verification against a real argon2id hash of a
// random secret at the current parameters, under the limiter, and discards
// the outcome. Call it for unknown accounts (and accounts without a
// password) so that they cost the same as known ones. It returns only
// ErrBusy or ctx errors, exactly as a real verification would.
func (h *Hasher) DummyVerify(ctx context.Context, password string) error {
	return h.limiter.Do(ctx, func() error {
		_, _ = h.dummy.verify(password)
		return nil
	})
}
