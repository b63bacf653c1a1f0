// Package user is Gatehouse's users directory: users, the provider identities linked to them, provider
// tokens sealed at rest, refresh tokens, and user-level revocation (logout everywhere, disabled users)
// that every instance sharing the database enforces within seconds without a database read per request.
//
// A user id has the original's format, "<ProviderName>:<id>" (Google:1234, Facebook:…, Aad:…, and
// "<name>:<sub>" for a configured OpenID Connect provider), so rows that apps keyed by it keep matching.
// An identity is keyed by (issuer, subject) and linked to exactly one user; identities are never linked
// automatically by email. Built-in accounts use the same tables with provider "custom".
package user

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/jsonx"
)

// User is one user of the app.
type User struct {
	ID          string // "<Provider>:<id>", the uid of the user's app tokens
	Provider    string // display name of the provider that created it (Google, Facebook, custom, ...)
	Disabled    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	LastLoginAt time.Time
}

// Identity is a provider identity linked to a user.
type Identity struct {
	Provider  string         // display name (Google, Aad, <oidc name>, custom)
	Issuer    string         // iss of the provider (or a fixed URL for non-OIDC providers)
	Subject   string         // the provider's user id
	UserID    string         // the user it is linked to
	Claims    map[string]any // selected claims (email, name, ...), as last seen
	HasTokens bool           // provider tokens are kept (sealed) for this identity
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ProviderTokens are what a provider gave us at login. They are stored only when configured, sealed.
type ProviderTokens struct {
	AccessToken       string    `json:"accessToken,omitempty"`
	AccessTokenSecret string    `json:"accessTokenSecret,omitempty"` // OAuth 1.0a (X/Twitter)
	RefreshToken      string    `json:"refreshToken,omitempty"`
	IDToken           string    `json:"idToken,omitempty"`
	ExpiresAt         time.Time `json:"expiresAt,omitzero"`
}

// Empty reports whether there is nothing to keep.
func (t *ProviderTokens) Empty() bool {
	return t == nil || (t.AccessToken == "" && t.AccessTokenSecret == "" && t.RefreshToken == "" && t.IDToken == "")
}

// Errors.
var (
	ErrNotFound       = errors.New("user: not found")
	ErrDisabled       = errors.New("user: disabled")
	ErrInvalidRefresh = errors.New("user: invalid refresh token")
	ErrRefreshReused  = errors.New("user: refresh token reused; its family is revoked")
	ErrRefreshExpired = errors.New("user: refresh token expired")
	ErrBadInput       = errors.New("user: invalid input")
)

// Revocation is a user's cut-off: tokens issued before NotBefore are refused.
type Revocation struct {
	UserID    string
	NotBefore time.Time
	UpdatedAt time.Time
	raiseOnly bool // a logout: never lowers a cut-off (a disabled user stays disabled)
}

// Disabled is the cut-off recorded for a disabled user: every token is refused.
var disabledCutoff = time.UnixMilli(253402300799000) // 9999-12-31T23:59:59Z

// RefreshRecord is one stored refresh token (only its hash).
type RefreshRecord struct {
	Hash            string
	Family          string
	UserID          string
	Audience        string
	CreatedAt       time.Time
	ExpiresAt       time.Time // idle expiry of this token
	FamilyExpiresAt time.Time // absolute lifetime of the family
	UsedAt          time.Time // zero until rotated
	Revoked         bool
}

// LinkInput is an identity that just authenticated.
type LinkInput struct {
	Provider string // display name, the user id prefix: Google, Facebook, MicrosoftAccount, Twitter, Aad, Apple, <oidc name>, custom
	Issuer   string
	Subject  string
	// IssuerAliases are earlier spellings of Issuer (set by Directory.Login): a row stored under one
	// of them is moved to Issuer instead of creating a second identity.
	IssuerAliases []string
	// UserID proposes the id for a new user; default "<Provider>:<Subject>".
	UserID string
	Claims map[string]any
	Tokens *ProviderTokens
}

// Store is the persistence the directory needs. SQL implements it for SQLite and PostgreSQL.
type Store interface {
	// Link finds the user linked to (issuer, subject), creating the user (with id userID, or a
	// derived id when that is taken) and the identity on first sight, and records the claims, the
	// sealed tokens (when tokens != "" or clearTokens) and the login time.
	Link(ctx context.Context, in LinkInput, sealedTokens string, now time.Time) (*User, error)
	Get(ctx context.Context, id string) (*User, error)
	List(ctx context.Context, after string, limit int) ([]User, error)
	Identities(ctx context.Context, userID string) ([]Identity, error)
	SealedTokens(ctx context.Context, issuer, subject string) (string, error)
	SetDisabled(ctx context.Context, id string, disabled bool, now time.Time) error

	Revoke(ctx context.Context, userID string, notBefore, now time.Time) error
	RevocationsSince(ctx context.Context, since time.Time) ([]Revocation, error)

	InsertRefresh(ctx context.Context, r RefreshRecord) error
	// UseRefresh marks an unused, unrevoked token used and returns it; a token that was already used
	// or revoked comes back with ErrRefreshReused (and its record), an unknown one with ErrInvalidRefresh.
	UseRefresh(ctx context.Context, hash string, now time.Time) (*RefreshRecord, error)
	RevokeFamily(ctx context.Context, family string) error
	RevokeUserRefresh(ctx context.Context, userID string) error

	// ConsumeOnce records id as used until expires; false if it was already recorded (a replay).
	ConsumeOnce(ctx context.Context, id string, expires, now time.Time) (bool, error)
}

// Options configure a Directory.
type Options struct {
	// KeepProviderTokens stores provider access/refresh tokens sealed at rest (off by default).
	KeepProviderTokens bool
	// Sealer seals provider tokens; required when KeepProviderTokens is set.
	Sealer *Sealer
	// RefreshIdle is how long an unused refresh token stays valid (default 14 days).
	RefreshIdle time.Duration
	// RefreshLifetime is the absolute lifetime of a refresh-token family (default 90 days).
	RefreshLifetime time.Duration
	// OnRevoke, if set, is told about every cut-off this directory writes (RevokeAll, Disable,
	// Enable), so the local instance's RevocationList applies it at once instead of at its next poll.
	OnRevoke func(Revocation)
	Now      func() time.Time
}

// Directory is the users directory's behaviour on top of a Store.
type Directory struct {
	st  Store
	opt Options
}

// NewDirectory builds a directory.
func NewDirectory(st Store, opt Options) (*Directory, error) {
	if st == nil {
		return nil, errors.New("user: store is required")
	}
	if opt.KeepProviderTokens && opt.Sealer == nil {
		return nil, errors.New("user: keeping provider tokens needs a sealer")
	}
	if opt.RefreshIdle <= 0 {
		opt.RefreshIdle = 14 * 24 * time.Hour
	}
	if opt.RefreshLifetime <= 0 {
		opt.RefreshLifetime = 90 * 24 * time.Hour
	}
	if opt.RefreshIdle > opt.RefreshLifetime {
		opt.RefreshIdle = opt.RefreshLifetime
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Directory{st: st, opt: opt}, nil
}

// Store returns the underlying store.
func (d *Directory) Store() Store { return d.st }

const maxClaimsBytes = 8 << 10

// Login links an authenticated identity and returns its user; ErrDisabled for a disabled user.
func (d *Directory) Login(ctx context.Context, in LinkInput) (*User, error) {
	if err := validateLink(in); err != nil {
		return nil, err
	}
	raw := in.Issuer
	in.Issuer = CanonicalIssuer(raw)
	in.IssuerAliases = issuerAliases(in.Issuer, raw)
	if len(in.Issuer) > MaxIssuerBytes {
		return nil, fmt.Errorf("%w: the issuer is longer than %d bytes", ErrBadInput, MaxIssuerBytes)
	}
	if in.UserID == "" {
		in.UserID = in.Provider + ":" + in.Subject
	}
	if in.Claims == nil {
		in.Claims = map[string]any{}
	}
	if b, err := json.Marshal(in.Claims); err != nil || len(b) > maxClaimsBytes {
		return nil, fmt.Errorf("%w: the profile claims are larger than %d bytes", ErrBadInput, maxClaimsBytes)
	}
	sealed := ""
	if d.opt.KeepProviderTokens && !in.Tokens.Empty() {
		b, err := json.Marshal(in.Tokens)
		if err != nil {
			return nil, fmt.Errorf("user: %w", err)
		}
		if sealed, err = d.opt.Sealer.Seal(b, tokensAD(in.Issuer, in.Subject)); err != nil {
			return nil, err
		}
	}
	u, err := d.st.Link(ctx, in, sealed, d.opt.Now())
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return u, ErrDisabled
	}
	return u, nil
}

// Identity field limits (issue 10 finding 15: a 256-byte sub was a 500). Refusals are ErrBadInput
// with a message for the client; the login handlers answer them with 401.
const (
	MaxSubjectBytes  = 255
	MaxIssuerBytes   = 512
	MaxProviderBytes = 64
)

func validateLink(in LinkInput) error {
	ctl := func(r rune) bool { return r < 0x20 || r == 0x7f }
	switch {
	case in.Provider == "" || len(in.Provider) > MaxProviderBytes || strings.Contains(in.Provider, ":") || strings.ContainsFunc(in.Provider, ctl):
		return fmt.Errorf("%w: the provider name is not valid", ErrBadInput)
	case in.Issuer == "":
		return fmt.Errorf("%w: the identity has no issuer", ErrBadInput)
	case len(in.Issuer) > MaxIssuerBytes:
		return fmt.Errorf("%w: the issuer is longer than %d bytes", ErrBadInput, MaxIssuerBytes)
	case strings.ContainsFunc(in.Issuer, ctl):
		return fmt.Errorf("%w: the issuer contains control characters", ErrBadInput)
	case in.Subject == "":
		return fmt.Errorf("%w: the identity has no subject (sub)", ErrBadInput)
	case len(in.Subject) > MaxSubjectBytes:
		return fmt.Errorf("%w: the subject (sub) is longer than %d bytes", ErrBadInput, MaxSubjectBytes)
	case strings.ContainsFunc(in.Subject, ctl):
		return fmt.Errorf("%w: the subject (sub) contains control characters", ErrBadInput)
	}
	return nil
}

func tokensAD(issuer, subject string) []byte {
	return []byte("provider-tokens\x00" + issuer + "\x00" + subject)
}

// ProviderTokens returns the unsealed provider tokens kept for an identity (nil when none are kept).
func (d *Directory) ProviderTokens(ctx context.Context, issuer, subject string) (*ProviderTokens, error) {
	if d.opt.Sealer == nil {
		return nil, nil
	}
	issuer = CanonicalIssuer(issuer)
	s, err := d.st.SealedTokens(ctx, issuer, subject)
	if err != nil || s == "" {
		return nil, err
	}
	b, err := d.opt.Sealer.Open(s, tokensAD(issuer, subject))
	if err != nil {
		return nil, err
	}
	var t ProviderTokens
	if err := jsonx.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("user: provider tokens: %w", err)
	}
	return &t, nil
}

// Get returns a user.
func (d *Directory) Get(ctx context.Context, id string) (*User, error) { return d.st.Get(ctx, id) }

// List returns users ordered by id, after the given id, at most limit (1..1000).
func (d *Directory) List(ctx context.Context, after string, limit int) ([]User, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return d.st.List(ctx, after, limit)
}

// Identities returns a user's linked identities.
func (d *Directory) Identities(ctx context.Context, userID string) ([]Identity, error) {
	return d.st.Identities(ctx, userID)
}

// Disable disables a user: every token and refresh token stops working within seconds everywhere.
func (d *Directory) Disable(ctx context.Context, id string) error {
	now := d.opt.Now()
	if err := d.st.SetDisabled(ctx, id, true, now); err != nil {
		return err
	}
	if err := d.st.Revoke(ctx, id, disabledCutoff, now); err != nil {
		return err
	}
	d.notify(Revocation{UserID: id, NotBefore: disabledCutoff, UpdatedAt: now})
	return d.st.RevokeUserRefresh(ctx, id)
}

// notify hands a cut-off just written to Options.OnRevoke (the local RevocationList).
func (d *Directory) notify(r Revocation) {
	if d.opt.OnRevoke != nil {
		d.opt.OnRevoke(r)
	}
}

// Enable re-enables a user. Tokens issued before now stay revoked.
func (d *Directory) Enable(ctx context.Context, id string) error {
	now := d.opt.Now()
	if err := d.st.SetDisabled(ctx, id, false, now); err != nil {
		return err
	}
	if err := d.st.Revoke(ctx, id, now.Truncate(time.Millisecond), now); err != nil {
		return err
	}
	d.notify(Revocation{UserID: id, NotBefore: now.Truncate(time.Millisecond), UpdatedAt: now})
	return nil
}

// RevokeAll ends every session of a user (logout everywhere): app tokens issued before this millisecond
// (Gatehouse mints iat with milliseconds; tokens minted by old scripts count from their whole-second
// iat) and all refresh tokens.
func (d *Directory) RevokeAll(ctx context.Context, id string) error {
	now := d.opt.Now()
	if err := d.st.Revoke(ctx, id, now.Truncate(time.Millisecond), now); err != nil {
		return err
	}
	d.notify(Revocation{UserID: id, NotBefore: now.Truncate(time.Millisecond), UpdatedAt: now, raiseOnly: true})
	return d.st.RevokeUserRefresh(ctx, id)
}

// refreshPrefix marks Gatehouse refresh tokens (for secret scanners and to reject app tokens early).
const refreshPrefix = "ghr_"

func hashRefresh(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand does not fail on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// IssueRefresh starts a refresh-token family for a user and returns its first token.
func (d *Directory) IssueRefresh(ctx context.Context, userID, audience string) (string, error) {
	now := d.opt.Now()
	return d.insertRefresh(ctx, userID, audience, randomToken(16), now, now.Add(d.opt.RefreshLifetime))
}

func (d *Directory) insertRefresh(ctx context.Context, userID, audience, family string, now, familyExp time.Time) (string, error) {
	tok := refreshPrefix + randomToken(32)
	exp := now.Add(d.opt.RefreshIdle)
	if exp.After(familyExp) {
		exp = familyExp
	}
	err := d.st.InsertRefresh(ctx, RefreshRecord{
		Hash: hashRefresh(tok), Family: family, UserID: userID, Audience: audience,
		CreatedAt: now, ExpiresAt: exp, FamilyExpiresAt: familyExp,
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// Refreshed is the outcome of a rotation.
type Refreshed struct {
	UserID, Audience string
	RefreshToken     string // the replacement; the presented one is now spent
}

// Refresh rotates a refresh token: the presented one is spent and a new one of the same family is
// returned. Presenting a spent token revokes the whole family (RFC 9700 §4.14.2); an expired one or
// one of a disabled user is refused.
func (d *Directory) Refresh(ctx context.Context, tok string) (*Refreshed, error) {
	if !strings.HasPrefix(tok, refreshPrefix) || len(tok) > 128 {
		return nil, ErrInvalidRefresh
	}
	now := d.opt.Now()
	rec, err := d.st.UseRefresh(ctx, hashRefresh(tok), now)
	if errors.Is(err, ErrRefreshReused) {
		if rerr := d.st.RevokeFamily(ctx, rec.Family); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if !now.Before(rec.ExpiresAt) || !now.Before(rec.FamilyExpiresAt) {
		return nil, ErrRefreshExpired
	}
	u, err := d.st.Get(ctx, rec.UserID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if u != nil && u.Disabled {
		return nil, ErrDisabled
	}
	next, err := d.insertRefresh(ctx, rec.UserID, rec.Audience, rec.Family, now, rec.FamilyExpiresAt)
	if err != nil {
		return nil, err
	}
	return &Refreshed{UserID: rec.UserID, Audience: rec.Audience, RefreshToken: next}, nil
}

// RevokeRefresh revokes the family of a refresh token (logout of one session); unknown tokens are ignored.
func (d *Directory) RevokeRefresh(ctx context.Context, tok string) error {
	if !strings.HasPrefix(tok, refreshPrefix) {
		return nil
	}
	rec, err := d.st.UseRefresh(ctx, hashRefresh(tok), d.opt.Now())
	if errors.Is(err, ErrInvalidRefresh) {
		return nil
	}
	if rec == nil {
		return err
	}
	return d.st.RevokeFamily(ctx, rec.Family)
}
