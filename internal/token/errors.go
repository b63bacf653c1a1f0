package token

import "sort"

// Reason classifies a verification failure, for metrics and errors.Is.
type Reason string

// Failure reasons.
const (
	ReasonMalformed    Reason = "malformed"
	ReasonAlg          Reason = "alg"
	ReasonSignature    Reason = "signature"
	ReasonNoExpiration Reason = "no_exp"
	ReasonExpired      Reason = "expired"
	ReasonNotYetValid  Reason = "not_yet_valid"
	ReasonUnknownKey   Reason = "unknown_key"
	ReasonClaims       Reason = "claims"
)

// Error is a token verification failure. Its message is the original runtime's, which clients show.
type Error struct {
	Reason Reason
	msg    string
}

func (e *Error) Error() string { return e.msg }

// Is matches errors by identity of the sentinel (each sentinel is a distinct pointer) or, for the
// Reason-only sentinels below, by reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t == e || (t.msg == "" && t.Reason == e.Reason)
}

// Sentinels, with the original messages (spec §2.6).
var (
	ErrEmpty          = &Error{ReasonMalformed, "Invalid token format. Token must not be empty."}
	ErrFormat         = &Error{ReasonMalformed, "Invalid token format. Expected Envelope.Claims.Signature."}
	ErrEmptyEnvelope  = &Error{ReasonMalformed, "Invalid token format. Envelope must not be empty."}
	ErrEmptyClaims    = &Error{ReasonMalformed, "Invalid token format. Claims must not be empty."}
	ErrEmptySignature = &Error{ReasonMalformed, "Invalid token format. Signature must not be empty."}
	ErrBase64         = &Error{ReasonMalformed, "The authentication token contains illegal base64 url string."}
	ErrJSON           = &Error{ReasonMalformed, "The authentication token is not valid JSON."}
	ErrTooLong        = &Error{ReasonMalformed, "The authentication token is too long."}
	ErrType           = &Error{ReasonMalformed, "The authentication token type is invalid."}
	ErrAlg            = &Error{ReasonAlg, "The authentication token alg is not supported."}
	ErrNoExpiration   = &Error{ReasonNoExpiration, "The authentication token requires expiration claim."}
	ErrExpired        = &Error{ReasonExpired, "The authentication token has expired."}
	ErrIssuedAt       = &Error{ReasonNotYetValid, "The authentication token is not valid until after its IssuedAt."}
	ErrNotBefore      = &Error{ReasonNotYetValid, "The authentication token is not valid until after its NotBefore."}
	ErrSignature      = &Error{ReasonSignature, "The authentication token has an invalid signature."}

	// Errors of the asymmetric tokens (package signing), which the original never issued.
	ErrUnknownKey = &Error{ReasonUnknownKey, "The authentication token's signing key is not published (unknown or removed kid)."}
	ErrIssuer     = &Error{ReasonClaims, "The authentication token was issued by another issuer."}
	ErrAudience   = &Error{ReasonClaims, "The authentication token is not meant for this audience."}
	ErrSubject    = &Error{ReasonClaims, "The authentication token has no subject."}
	ErrRetiredKey = &Error{ReasonSignature, "The authentication token was signed after its key was retired."}

	// ErrMalformed matches every malformed-token error.
	ErrMalformed = &Error{Reason: ReasonMalformed}
)

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
