package idtoken

import "fmt"

// Reason says why a token was rejected.
type Reason string

// Reasons. Each has a sentinel below for errors.Is.
const (
	ReasonUnknownProvider      Reason = "unknown provider"
	ReasonMalformed            Reason = "malformed token"
	ReasonWrongType            Reason = "not an ID token (typ)"
	ReasonForbiddenHeader      Reason = "forbidden header parameter"
	ReasonAlgNotAllowed        Reason = "algorithm not allowed"
	ReasonWrongIssuer          Reason = "wrong issuer"
	ReasonTenantNotAllowed     Reason = "tenant not allowed"
	ReasonWrongAudience        Reason = "wrong audience"
	ReasonWrongAuthorizedParty Reason = "wrong authorized party (azp)"
	ReasonMissingClaim         Reason = "missing required claim"
	ReasonExpired              Reason = "token expired"
	ReasonNotYetValid          Reason = "token not yet valid (nbf)"
	ReasonIssuedInFuture       Reason = "token issued in the future (iat)"
	ReasonTooOld               Reason = "token issued too long ago (iat)"
	ReasonNonce                Reason = "nonce mismatch"
	ReasonUnknownKey           Reason = "unknown signing key"
	ReasonBadSignature         Reason = "invalid signature"
	ReasonKeysUnavailable      Reason = "provider keys unavailable"
)

// Error is the error returned by Verify. Its message names the provider and what
// failed; it never contains the token, its signature, or claim values.
type Error struct {
	Provider string
	Reason   Reason
	Detail   string // fixed, non-secret detail (e.g. which header), may be empty
	Err      error  // underlying cause, may be nil
}

func (e *Error) Error() string {
	msg := "idtoken: "
	if e.Provider != "" {
		msg += e.Provider + ": "
	}
	msg += string(e.Reason)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of the same Reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Provider == "" && t.Detail == "" && t.Err == nil && t.Reason == e.Reason
}

// Sentinels, one per Reason: errors.Is(err, idtoken.ErrExpired).
var (
	ErrUnknownProvider      = &Error{Reason: ReasonUnknownProvider}
	ErrMalformed            = &Error{Reason: ReasonMalformed}
	ErrWrongType            = &Error{Reason: ReasonWrongType}
	ErrForbiddenHeader      = &Error{Reason: ReasonForbiddenHeader}
	ErrAlgNotAllowed        = &Error{Reason: ReasonAlgNotAllowed}
	ErrWrongIssuer          = &Error{Reason: ReasonWrongIssuer}
	ErrTenantNotAllowed     = &Error{Reason: ReasonTenantNotAllowed}
	ErrWrongAudience        = &Error{Reason: ReasonWrongAudience}
	ErrWrongAuthorizedParty = &Error{Reason: ReasonWrongAuthorizedParty}
	ErrMissingClaim         = &Error{Reason: ReasonMissingClaim}
	ErrExpired              = &Error{Reason: ReasonExpired}
	ErrNotYetValid          = &Error{Reason: ReasonNotYetValid}
	ErrIssuedInFuture       = &Error{Reason: ReasonIssuedInFuture}
	ErrTooOld               = &Error{Reason: ReasonTooOld}
	ErrNonce                = &Error{Reason: ReasonNonce}
	ErrUnknownKey           = &Error{Reason: ReasonUnknownKey}
	ErrBadSignature         = &Error{Reason: ReasonBadSignature}
	ErrKeysUnavailable      = &Error{Reason: ReasonKeysUnavailable}
)

func fail(provider string, r Reason, detail string, cause error) error {
	return &Error{Provider: provider, Reason: r, Detail: detail, Err: cause}
}

func failf(provider string, r Reason, format string, args ...any) error {
	return &Error{Provider: provider, Reason: r, Detail: fmt.Sprintf(format, args...)}
}
