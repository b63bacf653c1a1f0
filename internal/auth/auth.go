// Package auth decides who is calling and what they may do: the permission levels of Mobile Services
// (spec zumo-protocol.md §2.1, §2.2) with constant-time key checks and app-token verification.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/signing"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Permission is what an operation requires. The zero value is Admin, so a missing permission means
// admin, as in the original.
type Permission int

// Permissions, from most to least restrictive.
const (
	Admin       Permission = iota
	UserMFA                // "mfa": a valid app token whose amr says a second factor was used
	User                   // "user" or "authenticated": a valid app token
	Application            // the application key (or anything stronger)
	Public
)

// ParsePermission reads a permission as written in the app directory's JSON files.
func ParsePermission(s string) (Permission, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "public":
		return Public, nil
	case "application":
		return Application, nil
	case "user", "authenticated":
		return User, nil
	case "mfa":
		return UserMFA, nil
	case "admin":
		return Admin, nil
	}
	return Admin, fmt.Errorf("unknown permission %q (public, application, user, authenticated, mfa or admin)", s)
}

func (p Permission) String() string {
	switch p {
	case Public:
		return "public"
	case Application:
		return "application"
	case User:
		return "user"
	case UserMFA:
		return "mfa"
	default:
		return "admin"
	}
}

// MarshalText makes permissions print as their names in JSON.
func (p Permission) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Level is the caller's level as scripts saw it (user.level).
type Level int

// Levels.
const (
	Anonymous Level = iota
	Authenticated
	AdminLevel
)

func (l Level) String() string {
	switch l {
	case AdminLevel:
		return "admin"
	case Authenticated:
		return "authenticated"
	default:
		return "anonymous"
	}
}

// Caller is who sent a request.
type Caller struct {
	Level Level
	// Claims of a valid app token; nil without one.
	Claims *token.Claims
	// Token is the raw app token, for handlers that forward it (never logged).
	Token string
	// AppKey is true when the request carried the correct application key.
	AppKey bool
}

// UserID is the authenticated user id ("" without a token).
func (c *Caller) UserID() string {
	if c.Claims == nil {
		return ""
	}
	return c.Claims.UserID()
}

// AMR is the token's amr claim: the authentication methods the user passed (nil without a token or
// without the claim; every jwt token has one, app tokens when their login said).
func (c *Caller) AMR() []string {
	if c.Claims == nil {
		return nil
	}
	return c.Claims.AMR
}

// IsAdmin reports whether the caller sent the master key.
func (c *Caller) IsAdmin() bool { return c.Level == AdminLevel }

// Allows applies the original's decision order: the master key passes everything; then the permission.
// A valid token satisfies User; only the application key satisfies Application (a user token alone
// does not, as in the original).
func (c *Caller) Allows(p Permission) bool {
	if c.Level == AdminLevel {
		return true
	}
	switch p {
	case Public:
		return true
	case Application:
		return c.AppKey
	case User:
		return c.Claims != nil
	case UserMFA:
		return c.MultiFactor()
	default:
		return false
	}
}

// AMRMultiFactor is the RFC 8176 amr value that Gatehouse puts in tokens whose sign-in used more than
// one factor (a password and a one-time code, a passkey with user verification …).
const AMRMultiFactor = "mfa"

// MultiFactor reports whether the caller's token says it was issued after a multi-factor sign-in.
func (c *Caller) MultiFactor() bool { return c.Claims != nil && c.Claims.HasAMR(AMRMultiFactor) }

// MsgMFARequired is the error a signed-in caller gets from an operation that requires multi-factor
// sign-in when its token does not show one.
const MsgMFARequired = "This operation requires multi-factor sign-in: sign in again with a second factor (the token's amr has no \"mfa\")."

// NeedsMFA reports whether p is refused to this caller only because its token lacks multi-factor
// sign-in: the handler then answers 403 with MsgMFARequired rather than a plain 401.
func (c *Caller) NeedsMFA(p Permission) bool {
	return p == UserMFA && c.Level != AdminLevel && c.Claims != nil && !c.MultiFactor()
}

// Credentials are what a request presents.
type Credentials struct {
	MasterKey string // X-ZUMO-MASTER
	AppKey    string // X-ZUMO-APPLICATION
	Token     string // X-ZUMO-AUTH, else Authorization: Bearer
	HasToken  bool   // a token header was present (even empty)
	// System selects the system key for token verification (the /jobs routes, spec §2.2).
	System bool
}

// Secrets are the keys the authenticator checks against.
type Secrets struct {
	MasterKey      string
	ApplicationKey string
	SystemKey      string
	// Previous master keys, newest first, with when they were retired. A key without RetiredAt verifies
	// without that bound (a key accepted ahead of signing, during a two-phase rotation).
	Previous []token.Key
	// SystemPrevious are system keys that still verify (accepted ahead of signing, or retired).
	SystemPrevious []token.Key
	// Signing are the asymmetric signing keys (package signing): published, verifying, and the one
	// that signs when tokens.format is jwt. Empty: asymmetric tokens are off.
	Signing []signing.Entry
}

// Options tune token checks.
type Options struct {
	ClockSkew time.Duration
	MaxTTL    time.Duration
	Now       func() time.Time
	// Issuer and Audiences are the iss and aud of asymmetric tokens (required with Signing keys).
	Issuer    string
	Audiences []string
}

// Revocations is the per-instance view of user-level token revocation (logout everywhere, disabled
// users), kept in memory and refreshed in the background (package user), so that checking it costs no
// database read. RevokedBefore reports the user's cut-off: tokens issued before it are refused.
type Revocations interface {
	RevokedBefore(userID string) (time.Time, bool)
}

// ErrRevoked refuses a token issued before its user's revocation cut-off (or for a disabled user). Its
// message is written like the original's token messages, which clients show.
var ErrRevoked error = revokedError{}

// errRevokedNoIat is ErrRevoked (errors.Is) for a token without iat, with a message that says why.
var errRevokedNoIat error = revokedError{noIat: true}

type revokedError struct{ noIat bool }

func (e revokedError) Error() string {
	if e.noIat {
		return "The authentication token has been revoked: it has no iat claim, so it cannot be shown to be issued after its user's sessions were ended."
	}
	return "The authentication token has been revoked."
}

func (revokedError) Is(target error) bool { _, ok := target.(revokedError); return ok }

// Authenticator identifies callers. Keys can be replaced at run time (SetSecrets) without a restart.
type Authenticator struct {
	opt   Options
	state atomic.Pointer[state]
	revs  atomic.Pointer[revHolder]
}

type revHolder struct{ r Revocations }

// SetRevocations installs the revocation list consulted after every token verification (nil removes it).
func (a *Authenticator) SetRevocations(r Revocations) {
	if r == nil {
		a.revs.Store(nil)
		return
	}
	a.revs.Store(&revHolder{r})
}

// issuedAt is when a token was issued (its iat, to the millisecond when Gatehouse minted it); false
// for a token without iat.
//
// Such tokens (minted by hand in custom-auth scripts, or by the original runtime) cannot be placed
// before or after a cut-off: their exp says nothing about when they were issued, because nothing
// bounds the lifetime they were minted with. Estimating "exp − token_max_ttl" let a 45-day token
// outlive logout-everywhere and refused a fresh 1-day one (issue 10 finding 11). So a token without
// iat is refused for a user who has a cut-off, and accepted as before for everyone else; every token
// Gatehouse mints carries iat, and docs/security.md tells script authors to add it.
func issuedAt(c *token.Claims) (time.Time, bool) {
	if c.IatMs > 0 {
		return time.UnixMilli(c.IatMs), true
	}
	if c.Iat > 0 {
		return time.Unix(c.Iat, 0), true
	}
	return time.Time{}, false
}

type state struct {
	secrets     Secrets
	master, app [sha256.Size]byte
	masterKey   string
	previous    []token.Key
	user        *token.Verifier
	system      *token.Verifier
	signing     *signing.Set // nil without signing keys
}

// New builds an authenticator.
func New(s Secrets, opt Options) (*Authenticator, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	a := &Authenticator{opt: opt}
	if err := a.SetSecrets(s); err != nil {
		return nil, err
	}
	return a, nil
}

// SetSecrets swaps in new keys atomically; requests in flight finish with the old ones.
func (a *Authenticator) SetSecrets(s Secrets) error {
	if s.MasterKey == "" || s.ApplicationKey == "" || s.SystemKey == "" {
		return errors.New("auth: master, application and system keys are required")
	}
	topt := token.Options{ClockSkew: a.opt.ClockSkew, MaxTTL: a.opt.MaxTTL, Now: a.opt.Now}
	user, err := token.NewVerifier(append([]token.Key{{Secret: s.MasterKey}}, s.Previous...), topt)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	system, err := token.NewVerifier(append([]token.Key{{Secret: s.SystemKey}}, s.SystemPrevious...), topt)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	var set *signing.Set
	// Without an issuer (public_url unset, tokens.format zumo) keys a ring still holds stay unused.
	if len(s.Signing) > 0 && a.opt.Issuer != "" {
		set, err = signing.NewSet(s.Signing, signing.Options{Issuer: a.opt.Issuer, Audiences: a.opt.Audiences,
			Keep: a.opt.MaxTTL + a.opt.ClockSkew, ClockSkew: a.opt.ClockSkew, MaxTTL: a.opt.MaxTTL})
		if err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	s.Previous = append([]token.Key(nil), s.Previous...)
	s.SystemPrevious = append([]token.Key(nil), s.SystemPrevious...)
	s.Signing = slices.Clone(s.Signing)
	a.state.Store(&state{
		signing:   set,
		secrets:   s,
		master:    sha256.Sum256([]byte(s.MasterKey)),
		app:       sha256.Sum256([]byte(s.ApplicationKey)),
		masterKey: s.MasterKey,
		previous:  slices.Clone(s.Previous),
		user:      user,
		system:    system,
	})
	return nil
}

// MasterKeys returns the master keys in force now: the current one and the retired ones still
// accepted, newest first. Sealers (package user) read them at every use, so a rotation or a revocation
// applied with SetSecrets reaches them at once (user.KeySource).
func (a *Authenticator) MasterKeys() (string, []token.Key) {
	st := a.state.Load()
	return st.masterKey, st.previous
}

// Secrets returns the keys in force now (a copy): the one source of current keys for everything that
// derives from them (sealers, scripts), so that a rotation reaches them too.
func (a *Authenticator) Secrets() Secrets {
	s := a.state.Load().secrets
	s.Previous = append([]token.Key(nil), s.Previous...)
	s.SystemPrevious = append([]token.Key(nil), s.SystemPrevious...)
	s.Signing = slices.Clone(s.Signing)
	return s
}

// SigningKeys is the asymmetric key set in force (nil when asymmetric tokens are off): what
// /.well-known/jwks.json publishes.
func (a *Authenticator) SigningKeys() *signing.Set { return a.state.Load().signing }

// zumoHeader starts every HS256 token's header ({"alg":"HS256",…}), so that app tokens skip the
// asymmetric test.
const zumoHeader = "eyJhbGciOiJIUzI1NiIs"

// verify checks a user token: an asymmetric one (ES256/EdDSA header) against the signing keys when
// there are any, anything else as an app token, whose messages are the original's.
func (a *Authenticator) verify(st *state, raw string) (*token.Claims, error) {
	if st.signing != nil && !strings.HasPrefix(raw, zumoHeader) && signing.IsAsymmetric(raw) {
		return st.signing.Verify(raw, a.opt.Now())
	}
	return st.user.Verify(raw)
}

// keyEqual compares a presented key with a stored one in constant time. Hashing first makes the
// comparison independent of the presented key's length too.
func keyEqual(presented string, stored *[sha256.Size]byte) bool {
	if presented == "" {
		return false
	}
	h := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(h[:], stored[:]) == 1
}

// Identify works out the caller. A present token must be valid whatever the route's permission: an
// invalid one is an error (401 with its message), as in the original. A wrong master or application
// key is ignored, also as in the original (it simply grants nothing).
func (a *Authenticator) Identify(cr Credentials) (*Caller, error) {
	st := a.state.Load()
	c := &Caller{}
	if keyEqual(cr.MasterKey, &st.master) {
		c.Level = AdminLevel
	}
	c.AppKey = keyEqual(cr.AppKey, &st.app)
	if cr.HasToken {
		var claims *token.Claims
		var err error
		if cr.System {
			claims, err = st.system.Verify(cr.Token)
		} else {
			claims, err = a.verify(st, cr.Token)
		}
		if err != nil {
			return nil, err
		}
		if h := a.revs.Load(); h != nil && !cr.System {
			if cut, ok := h.r.RevokedBefore(claims.UserID()); ok {
				iat, known := issuedAt(claims)
				if !known {
					return nil, errRevokedNoIat
				}
				if iat.Before(cut) {
					return nil, ErrRevoked
				}
			}
		}
		c.Claims, c.Token = claims, cr.Token
		if c.Level != AdminLevel && claims.UserID() != "" {
			c.Level = Authenticated
		}
	}
	return c, nil
}

// MintRequest asks for an app token.
type MintRequest struct {
	UserID   string        // "<provider>:<id>", e.g. custom:123
	Audience string        // default: the provider part of UserID
	TTL      time.Duration // default and cap from configuration
	Extra    map[string]any
	// AMR lists the authentication methods the user passed (RFC 8176: "pwd", "otp", "hwk", "swk",
	// "mfa", …). nil: ["pwd"] for built-in accounts (provider custom), ["fed"] for identity
	// providers. Asymmetric tokens always carry amr; app tokens carry it only when it is set here, so
	// that the original's token bytes do not change for logins that say nothing about it.
	AMR []string
}

// Token formats (tokens.format).
const (
	FormatZumo = "zumo" // the HS256 app token (default)
	FormatJWT  = "jwt"  // an ES256/EdDSA token verifiable with /.well-known/jwks.json
)

// DefaultAMR is the amr of a login that did not say which methods it used.
func DefaultAMR(userID string) []string {
	if p, _, _ := strings.Cut(userID, ":"); strings.EqualFold(p, "custom") {
		return []string{"pwd"}
	}
	return []string{"fed"}
}

// ErrBadUserID is returned for a user id that cannot be put in a token.
var ErrBadUserID = errors.New("user id must be non-empty, at most 512 characters, without control characters")

// Minter signs app tokens with the current master key.
type Minter struct {
	Auth       *Authenticator
	DefaultTTL time.Duration
	MaxTTL     time.Duration
	// Format is FormatZumo ("" too) or FormatJWT.
	Format string
}

// Mint signs a token in the Zumo format. It returns the token and its expiry.
func (m *Minter) Mint(r MintRequest) (string, time.Time, error) {
	if r.UserID == "" || len(r.UserID) > 512 || strings.ContainsFunc(r.UserID, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return "", time.Time{}, ErrBadUserID
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = m.DefaultTTL
	}
	if ttl <= 0 || ttl > m.MaxTTL {
		return "", time.Time{}, fmt.Errorf("ttl must be between 1s and %s", m.MaxTTL)
	}
	aud := r.Audience
	if aud == "" {
		aud, _, _ = strings.Cut(r.UserID, ":")
	}
	now := m.Auth.opt.Now()
	exp := now.Add(ttl).Truncate(time.Second)
	if m.Format == FormatJWT {
		set := m.Auth.SigningKeys()
		if set == nil {
			return "", time.Time{}, errors.New("auth: tokens.format is jwt but there are no signing keys")
		}
		amr := r.AMR
		if amr == nil {
			amr = DefaultAMR(r.UserID)
		}
		tok, err := set.Mint(signing.Claims{Subject: r.UserID, IDP: aud, IssuedAt: now, Expiry: exp, AMR: amr, Extra: r.Extra})
		return tok, exp, err
	}
	// The app token carries amr only when the login said (token.Claims.AMR, appended after the
	// standard claims), so the original's token bytes do not change for logins that say nothing.
	tok, err := token.Mint(m.Auth.state.Load().masterKey, token.Claims{
		Exp: exp.Unix(), Iss: token.Issuer, Ver: 2, Aud: aud, UID: r.UserID, IatMs: now.UnixMilli(), AMR: r.AMR, Extra: r.Extra,
	})
	return tok, exp, err
}
