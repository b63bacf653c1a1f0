package password

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Check them with errors.Is; the concrete errors carry more
// detail (which parameter, which limit) but never a password, salt or hash.
var (
	// ErrBusy means the hashing limiter is saturated: every slot is in use and
	// the wait queue is full. HTTP handlers answer 503 (or 429) with a
	// Retry-After header.
	ErrBusy = errors.New("password: hashing capacity exhausted, retry later")

	// ErrMalformed means a stored or imported hash string cannot be parsed.
	ErrMalformed = errors.New("password: malformed hash")

	// ErrUnsupported means the hash names a scheme, version or variant this
	// package does not verify (for example argon2d, argon2 v=16 or bcrypt $2x$).
	ErrUnsupported = errors.New("password: unsupported hash scheme")

	// ErrLimitExceeded means a stored hash asks for more work or memory than
	// the configured Limits allow. Verifying it would let a hostile or broken
	// row exhaust the server, so it is refused before any hashing.
	ErrLimitExceeded = errors.New("password: hash parameters exceed configured limits")

	// ErrInvalidParams means Params or Limits given to NewHasher are unusable.
	ErrInvalidParams = errors.New("password: invalid parameters")

	// ErrInvalidImport is matched by every *ImportError.
	ErrInvalidImport = errors.New("password: invalid import record")

	// Policy violations; *PolicyError wraps one of these.
	ErrPasswordTooShort = errors.New("password too short")
	ErrPasswordTooLong  = errors.New("password too long")
	ErrPasswordEncoding = errors.New("password is not valid UTF-8")
	ErrEmailInvalid     = errors.New("invalid email address")
	ErrEmailTooLong     = errors.New("email address too long")
)

// malformed returns an error wrapping ErrMalformed for scheme s.
func malformed(s Scheme, format string, args ...any) error {
	if s == "" {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%w: %s: %s", ErrMalformed, s, fmt.Sprintf(format, args...))
}

// LimitError reports which parameter of a stored hash is over which ceiling.
// It matches ErrLimitExceeded with errors.Is.
type LimitError struct {
	Scheme Scheme
	Param  string // e.g. "m", "t", "p", "i", "cost", "memory", "key length"
	Value  int64
	Max    int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("password: %s parameter %s=%d exceeds the configured limit %d", e.Scheme, e.Param, e.Value, e.Max)
}

// Unwrap makes errors.Is(err, ErrLimitExceeded) true.
func (e *LimitError) Unwrap() error { return ErrLimitExceeded }

func overLimit(s Scheme, param string, value, maximum int64) error {
	if value > maximum {
		return &LimitError{Scheme: s, Param: param, Value: value, Max: maximum}
	}
	return nil
}

// PolicyError is returned by the Policy methods. Err is one of the policy
// sentinels (ErrPasswordTooShort, ErrPasswordTooLong, ErrPasswordEncoding,
// ErrEmailInvalid, ErrEmailTooLong); Limit is the bound that was violated
// (0 when not applicable); Reason is a short human-readable explanation that
// is safe to show to the end user (it never echoes the input).
type PolicyError struct {
	Field  string // "password" or "email"
	Err    error
	Limit  int
	Reason string
}

func (e *PolicyError) Error() string {
	if e.Reason == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Reason
}

// Unwrap returns the policy sentinel.
func (e *PolicyError) Unwrap() error { return e.Err }

// FieldError is one problem with one field of an ImportRecord. Field is the
// JSON/CSV column name.
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// ImportError lists every problem found in one import record, so that an
// importer can report all of them for the row at once. It matches
// ErrInvalidImport with errors.Is.
type ImportError struct {
	Fields []FieldError
}

func (e *ImportError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "password: invalid import record: " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalidImport) true.
func (e *ImportError) Unwrap() error { return ErrInvalidImport }
