// Package account is Gatehouse's built-in email/password accounts: registration, login, logout,
// password change and reset, email verification, admin operations and legacy-hash import, with
// brute-force throttling kept in the database and no account enumeration. Passwords are hashed by
// package password; email goes out through package mail. The HTTP handlers are in http.go; the
// domain (this file) does not depend on net/http.
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/password"
)

// Minter issues app tokens (auth.Minter).
type Minter interface {
	Mint(r auth.MintRequest) (string, time.Time, error)
}

// Errors returned by the service (the HTTP layer maps them; see http.go).
var (
	ErrInvalidCredentials = errors.New("account: invalid email or password")
	ErrDisabled           = errors.New("account: this account is disabled")
	ErrUnverified         = errors.New("account: the email address is not verified")
	ErrWrongPassword      = errors.New("account: the current password is incorrect")
	ErrInvalidLink        = errors.New("account: the link is invalid, expired or already used")
	ErrRegistrationClosed = errors.New("account: registration is closed")
	ErrNotAccount         = errors.New("account: the caller is not signed in with an email/password account")
	ErrMissing            = errors.New("account: a required field is missing")
	ErrInvalidField       = errors.New("account: a field is not valid")
)

// ThrottledError means too many failed attempts: try again after RetryAfter.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("account: too many attempts; retry after %s", e.RetryAfter.Round(time.Second))
}

// RetryAfterSeconds is the Retry-After header value (at least 1).
func (e *ThrottledError) RetryAfterSeconds() int {
	return int(math.Max(1, math.Ceil(e.RetryAfter.Seconds())))
}

// Client describes who is asking (for throttling).
type Client struct {
	IP string
}

// Session is a successful login, or (MFA set, no Token) a correct first factor that needs a second.
type Session struct {
	UserID       string
	Token        string
	ExpiresAt    time.Time
	RefreshToken string
	// AMR is what the token's amr claim says (RFC 8176).
	AMR []string
	// MFA is set instead of Token when the account has a second factor: complete with VerifyMFA or a
	// passkey assertion.
	MFA *Challenge
}

// Options configure a Service.
type Options struct {
	Store  Store
	Hasher *password.Hasher
	Policy password.Policy
	Mailer mail.Mailer // nil: mail.Disabled
	Minter Minter
	// Users is the users directory (accounts are users there; refresh tokens; revocation). nil: no
	// directory (tests, tools): tokens carry the account's own id and logout only forgets them.
	Users   Users
	Rules   Rules // zero: DefaultRules
	LinkTTL time.Duration
	// ResetLink and VerifyLink turn a token into the emailed URL (see Links).
	ResetLink, VerifyLink func(token string) string
	ServiceName           string
	AllowRegistration     bool
	RequireVerifiedEmail  bool
	// KeepLegacyHashes verifies imported and outdated hashes without rehashing them.
	KeepLegacyHashes bool
	Now              func() time.Time
	Log              *slog.Logger
	// MailQueue bounds the background email jobs waiting (default 256); when full, jobs are dropped
	// and logged.
	MailQueue int

	// Sealer seals authenticator-app secrets at rest; nil: TOTP is unavailable.
	Sealer Sealer
	// MFATTL is the lifetime of the challenge between the first factor and the second (default 5m).
	MFATTL time.Duration
	// Passkeys configures WebAuthn; nil: passkeys are unavailable.
	Passkeys *PasskeyConfig
	// SignInLink turns an emailed sign-in token into its URL (see Links); SignInTTL is its lifetime
	// (default 10m).
	SignInLink func(token string) string
	SignInTTL  time.Duration
}

// Service implements the accounts feature.
type Service struct {
	o    Options
	jobs chan func(context.Context)
	wg   sync.WaitGroup
	wa   *webauthn.WebAuthn // nil without Passkeys
}

// NewService checks the options.
func NewService(o Options) (*Service, error) {
	if o.Store == nil || o.Hasher == nil {
		return nil, errors.New("account: Store and Hasher are required")
	}
	if o.Mailer == nil {
		o.Mailer = mail.Disabled{}
	}
	if o.Rules == (Rules{}) {
		o.Rules = DefaultRules()
	}
	if o.LinkTTL <= 0 {
		o.LinkTTL = 30 * time.Minute
	}
	if o.ResetLink == nil || o.VerifyLink == nil {
		o.ResetLink, o.VerifyLink = Links("", "", "")
	}
	if o.ServiceName == "" {
		o.ServiceName = "Gatehouse"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MailQueue <= 0 {
		o.MailQueue = 256
	}
	if o.MFATTL <= 0 {
		o.MFATTL = 5 * time.Minute
	}
	if o.SignInTTL <= 0 {
		o.SignInTTL = 10 * time.Minute
	}
	if o.SignInLink == nil {
		o.SignInLink = SignInLinks("", "")
	}
	svc := &Service{o: o, jobs: make(chan func(context.Context), o.MailQueue)}
	if o.Passkeys != nil {
		wa, err := newWebAuthn(o.Passkeys, o.ServiceName)
		if err != nil {
			return nil, err
		}
		svc.wa = wa
	}
	return svc, nil
}

// Policy is the password and email policy in force.
func (s *Service) Policy() password.Policy { return s.o.Policy }

// Run processes background jobs (email) and prunes expired tokens and idle throttle rows until ctx
// ends; then it finishes the jobs already queued (each bounded by the mailer's timeout).
func (s *Service) Run(ctx context.Context) {
	workers := 2
	for range workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case job := <-s.jobs:
					job(context.WithoutCancel(ctx))
				case <-ctx.Done():
					for {
						select {
						case job := <-s.jobs:
							job(context.WithoutCancel(ctx))
						default:
							return
						}
					}
				}
			}
		}()
	}
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.wg.Wait()
			return
		case <-t.C:
			s.prune(ctx)
		}
	}
}

func (s *Service) prune(ctx context.Context) {
	now := s.o.Now()
	if _, err := s.o.Store.DeleteExpiredTokens(ctx, now); err != nil {
		s.o.Log.Warn("pruning expired account tokens failed", "err", err)
	}
	if _, err := s.o.Store.DeleteExpiredCeremonies(ctx, now); err != nil {
		s.o.Log.Warn("pruning expired passkey challenges failed", "err", err)
	}
	if p, ok := s.o.Store.(interface {
		PruneThrottle(context.Context, time.Time) (int64, error)
	}); ok {
		if _, err := p.PruneThrottle(ctx, now); err != nil {
			s.o.Log.Warn("pruning throttle rows failed", "err", err)
		}
	}
}

// enqueue schedules background work without blocking the request.
func (s *Service) enqueue(what string, job func(context.Context)) {
	select {
	case s.jobs <- job:
	default:
		s.o.Log.Warn("account email queue full; job dropped", "job", what)
	}
}

func (s *Service) normEmail(email string) (string, string, error) {
	if email == "" {
		return "", "", fmt.Errorf("%w: email", ErrMissing)
	}
	n, err := s.o.Policy.NormalizeEmail(email)
	if err != nil {
		return "", "", err
	}
	return n, password.EmailKey(n), nil
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b) //nolint:errcheck // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b)
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// ---- throttling ----

func (s *Service) attempt(ctx context.Context, emailKey, ip string) error {
	now := s.o.Now()
	r := s.o.Rules
	known := false
	if row, err := s.o.Store.ThrottleRow(ctx, knownKey(emailKey, ip)); err != nil {
		return err
	} else if !row.LastAt.IsZero() && now.Sub(row.LastAt) < r.KnownFor {
		known = true
	}
	// The account keys count every attempt up front (so concurrent guesses cannot slip past the
	// count; a success clears them); the address key is only checked here and counts actual failures
	// (failed), so many users behind one address logging in at once do not block each other.
	keys := []string{ipKey(ip), pairKey(emailKey, ip)}
	rules := []Rule{{}, r.Pair}
	if !known {
		keys, rules = append(keys, acctKey(emailKey)), append(rules, r.Account)
	}
	var wait time.Duration
	err := s.o.Store.Throttle(ctx, keys, func(rows []ThrottleRow) []*ThrottleRow {
		for _, row := range rows {
			wait = max(wait, row.wait(now))
		}
		if wait > 0 {
			return nil
		}
		out := make([]*ThrottleRow, len(rows))
		out[0] = &rows[0]
		for i := 1; i < len(rows); i++ {
			nr := rules[i].fail(rows[i], now)
			out[i] = &nr
		}
		return out[:len(rows)]
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	return nil
}

// shed answers ErrBusy before any database work when the hashing queue is already full, so a flood
// of logins costs neither throttle writes nor memory. (The limiter still decides for the requests that
// pass; this check only avoids work that would end in a 503 anyway.)
func (s *Service) shed() error {
	if l := s.o.Hasher.Limiter(); l != nil {
		if st := l.Stats(); st.Running >= st.Concurrency && st.Waiting >= st.Queue {
			return password.ErrBusy
		}
	}
	return nil
}

// failed counts a failed password check against the client address.
func (s *Service) failed(ctx context.Context, ip string) {
	now := s.o.Now()
	err := s.o.Store.Throttle(ctx, []string{ipKey(ip)}, func(rows []ThrottleRow) []*ThrottleRow {
		r := s.o.Rules.IP.fail(rows[0], now)
		return []*ThrottleRow{&r}
	})
	if err != nil {
		s.o.Log.Warn("recording a failed login failed", "err", err)
	}
}

// release undoes the up-front count of an attempt that never checked a password (hasher busy,
// request cancelled): a 503 is not a failed guess.
func (s *Service) release(ctx context.Context, emailKey, ip string) {
	err := s.o.Store.Throttle(context.WithoutCancel(ctx), []string{pairKey(emailKey, ip), acctKey(emailKey)}, func(rows []ThrottleRow) []*ThrottleRow {
		out := make([]*ThrottleRow, len(rows))
		for i := range rows {
			r := rows[i]
			if r.Failures > 0 {
				r.Failures--
			}
			if r.WindowCount > 0 {
				r.WindowCount--
			}
			out[i] = &r
		}
		return out
	})
	if err != nil {
		s.o.Log.Warn("releasing a login attempt failed", "err", err)
	}
}

// succeeded clears the account's counters for this address and account-wide, and remembers the
// address as known to the account.
func (s *Service) succeeded(ctx context.Context, emailKey, ip string) {
	now := s.o.Now()
	err := s.o.Store.Throttle(ctx, []string{pairKey(emailKey, ip), acctKey(emailKey), knownKey(emailKey, ip)}, func(rows []ThrottleRow) []*ThrottleRow {
		return []*ThrottleRow{nil, nil, {LastAt: now}}
	})
	if err != nil {
		s.o.Log.Warn("clearing login throttle failed", "err", err)
	}
}

// verifyAttempt runs a password check that attempt admitted and books its outcome: a mismatch
// counts against the address, a busy hasher or cancelled request releases the attempt.
func (s *Service) verifyAttempt(ctx context.Context, emailKey, ip string, check func() error) error {
	err := check()
	switch {
	case err == nil:
		s.succeeded(ctx, emailKey, ip)
	case errors.Is(err, ErrInvalidCredentials), errors.Is(err, ErrWrongPassword):
		s.failed(ctx, ip)
	case errors.Is(err, password.ErrBusy), ctx.Err() != nil:
		s.release(ctx, emailKey, ip)
	}
	return err
}

// limitRequests throttles unauthenticated requests that cost work or send mail (register, reset,
// resend) per client address. Every request counts.
func (s *Service) limitRequests(ctx context.Context, ip string) error {
	return s.limit(ctx, reqKey(ip), s.o.Rules.IP)
}

// limit counts a request against key under rule, and answers ThrottledError while key is blocked.
func (s *Service) limit(ctx context.Context, key string, rule Rule) error {
	now := s.o.Now()
	var wait time.Duration
	err := s.o.Store.Throttle(ctx, []string{key}, func(rows []ThrottleRow) []*ThrottleRow {
		if wait = rows[0].wait(now); wait > 0 {
			return nil
		}
		r := rule.fail(rows[0], now)
		return []*ThrottleRow{&r}
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	return nil
}

// mayMail reports whether another message may go to this address now, and counts it.
func (s *Service) mayMail(ctx context.Context, emailKey string) bool {
	now := s.o.Now()
	ok := false
	err := s.o.Store.Throttle(ctx, []string{mailKey(emailKey)}, func(rows []ThrottleRow) []*ThrottleRow {
		if rows[0].wait(now) > 0 {
			return nil
		}
		ok = true
		r := s.o.Rules.Mail.fail(rows[0], now)
		return []*ThrottleRow{&r}
	})
	if err != nil {
		s.o.Log.Warn("mail throttle failed", "err", err)
		return false
	}
	return ok
}

// ---- flows ----

// Register creates an account and emails a verification link. It answers the same (nil) whether or
// not the address is already registered: for a taken address it emails the owner a notice instead.
// Both paths hash the password, so they take the same time.
func (s *Service) Register(ctx context.Context, c Client, email, pw string) error {
	if !s.o.AllowRegistration {
		return ErrRegistrationClosed
	}
	addr, key, err := s.normEmail(email)
	if err != nil {
		return err
	}
	if pw == "" {
		return fmt.Errorf("%w: password", ErrMissing)
	}
	pwN, err := s.o.Policy.NormalizePassword(pw)
	if err != nil {
		return err
	}
	if err := s.shed(); err != nil {
		return err
	}
	if err := s.limitRequests(ctx, c.IP); err != nil {
		return err
	}
	hash, err := s.o.Hasher.Hash(ctx, pwN)
	if err != nil {
		return err
	}
	now := s.o.Now()
	a := &Account{ID: newID(), Email: addr, EmailKey: key, PasswordHash: hash, PasswordStamp: newSecret(), CreatedAt: now, UpdatedAt: now}
	err = s.o.Store.Create(ctx, a)
	switch {
	case errors.Is(err, ErrDuplicate):
		s.enqueue("duplicate notice", func(ctx context.Context) { s.sendDuplicateNotice(ctx, key) })
		return nil
	case err != nil:
		return err
	}
	if err := s.link(ctx, a); err != nil {
		// No half-registered account: remove the row again.
		if derr := s.o.Store.Delete(ctx, a.ID); derr != nil {
			s.o.Log.Error("removing a half-registered account failed", "account_id", a.ID, "err", derr)
		}
		return err
	}
	s.o.Log.Info("account registered", "account_id", a.ID)
	s.enqueue("verification", func(ctx context.Context) { s.sendVerification(ctx, a.ID) })
	return nil
}

// Login checks an email and password and returns a session. Unknown addresses, accounts without a
// password and wrong passwords all cost one argon2id computation and return ErrInvalidCredentials.
func (s *Service) Login(ctx context.Context, c Client, email, pw string) (*Session, error) {
	_, key, err := s.normEmail(email)
	if err != nil {
		return nil, err
	}
	if pw == "" {
		return nil, fmt.Errorf("%w: password", ErrMissing)
	}
	pwN, err := s.o.Policy.NormalizeLoginPassword(pw)
	if err != nil {
		return nil, err
	}
	if err := s.shed(); err != nil {
		return nil, err
	}
	if err := s.attempt(ctx, key, c.IP); err != nil {
		return nil, err
	}
	var a *Account
	err = s.verifyAttempt(ctx, key, c.IP, func() error {
		var err error
		a, err = s.o.Store.ByEmailKey(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if a == nil || a.PasswordHash == "" {
			if err := s.o.Hasher.DummyVerify(ctx, pwN); err != nil {
				return err
			}
			return ErrInvalidCredentials
		}
		return s.checkPassword(ctx, a, pwN)
	})
	if err != nil {
		return nil, err
	}
	if a.Disabled {
		return nil, ErrDisabled
	}
	if err := s.link(ctx, a); err != nil {
		return nil, err
	}
	if s.o.RequireVerifiedEmail && !a.EmailVerified {
		return nil, ErrUnverified
	}
	return s.signIn(ctx, a, AMRPassword)
}

// checkPassword verifies pw against the account and upgrades a legacy or outdated hash.
func (s *Service) checkPassword(ctx context.Context, a *Account, pw string) error {
	verify := s.o.Hasher.VerifyAndUpgrade
	if s.o.KeepLegacyHashes {
		verify = s.o.Hasher.Verify
	}
	res, err := verify(ctx, a.PasswordHash, pw)
	if errors.Is(err, password.ErrBusy) || ctx.Err() != nil {
		if err == nil {
			err = ctx.Err()
		}
		return err
	}
	if err != nil {
		s.o.Log.Error("stored password hash unusable", "account_id", a.ID, "err", err)
		return ErrInvalidCredentials
	}
	if !res.Match {
		return ErrInvalidCredentials
	}
	if res.NewHash != "" {
		// One conditional UPDATE after verification: a crash before it leaves the old hash, which
		// still verifies; a concurrent password change wins over the upgrade.
		if ok, err := s.o.Store.Rehash(ctx, a.ID, a.PasswordHash, res.NewHash, s.o.Now()); err != nil {
			s.o.Log.Warn("password hash upgrade failed; the old hash stays valid", "account_id", a.ID, "err", err)
		} else if ok {
			s.o.Log.Info("password hash upgraded", "account_id", a.ID, "from", string(res.Scheme))
			a.PasswordHash = res.NewHash
		}
	}
	return nil
}

// link makes sure the account is a user of the directory and records the user id its tokens carry.
func (s *Service) link(ctx context.Context, a *Account) error {
	if s.o.Users == nil {
		return nil
	}
	uid, err := s.o.Users.Link(ctx, a)
	if err != nil {
		return err
	}
	if uid != a.UserID {
		if err := s.o.Store.SetUserID(ctx, a.ID, uid); err != nil {
			return err
		}
		a.UserID = uid
	}
	return nil
}

func (s *Service) session(ctx context.Context, a *Account, amr []string) (*Session, error) {
	uid := a.TokenUserID()
	if s.o.Minter == nil {
		return nil, errors.New("account: no token minter configured")
	}
	tok, exp, err := s.o.Minter.Mint(auth.MintRequest{UserID: uid, AMR: amr})
	if err != nil {
		return nil, fmt.Errorf("account: mint token: %w", err)
	}
	sess := &Session{UserID: uid, Token: tok, ExpiresAt: exp, AMR: amr}
	if s.o.Users != nil {
		if sess.RefreshToken, err = s.o.Users.Issue(ctx, uid); err != nil {
			return nil, fmt.Errorf("account: refresh token: %w", err)
		}
	}
	if err := s.o.Store.TouchLogin(ctx, a.ID, s.o.Now()); err != nil {
		s.o.Log.Warn("recording login time failed", "account_id", a.ID, "err", err)
	}
	return sess, nil
}

// Logout revokes the given refresh token, or with everywhere every token of the user. Without a users
// directory (Users nil) logout is the client forgetting its token.
func (s *Service) Logout(ctx context.Context, userID, refreshToken string, everywhere bool) error {
	if s.o.Users == nil {
		return nil
	}
	if everywhere {
		return s.o.Users.RevokeAll(ctx, userID)
	}
	if refreshToken != "" {
		return s.o.Users.Revoke(ctx, userID, refreshToken)
	}
	return nil
}

// ChangePassword replaces the password of the signed-in account after checking the current one
// (throttled like a login). Other sessions are revoked; the returned session replaces the caller's.
func (s *Service) ChangePassword(ctx context.Context, c Client, userID, current, next string) (*Session, error) {
	if current == "" {
		return nil, fmt.Errorf("%w: currentPassword", ErrMissing)
	}
	if next == "" {
		return nil, fmt.Errorf("%w: newPassword", ErrMissing)
	}
	a, err := s.o.Store.ByTokenUserID(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotAccount
	}
	if err != nil {
		return nil, err
	}
	nextN, err := s.o.Policy.NormalizePassword(next)
	if err != nil {
		return nil, err
	}
	curN, err := s.o.Policy.NormalizeLoginPassword(current)
	if err != nil {
		return nil, ErrWrongPassword
	}
	if a.Disabled {
		return nil, ErrDisabled
	}
	if err := s.attempt(ctx, a.EmailKey, c.IP); err != nil {
		return nil, err
	}
	err = s.verifyAttempt(ctx, a.EmailKey, c.IP, func() error {
		if a.PasswordHash == "" {
			if err := s.o.Hasher.DummyVerify(ctx, curN); err != nil {
				return err
			}
			return ErrWrongPassword
		}
		if err := s.checkPassword(ctx, a, curN); err != nil {
			if errors.Is(err, ErrInvalidCredentials) {
				return ErrWrongPassword
			}
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	hash, err := s.o.Hasher.Hash(ctx, nextN)
	if err != nil {
		return nil, err
	}
	if err := s.o.Store.SetPassword(ctx, a.ID, hash, newSecret(), s.o.Now()); err != nil {
		return nil, err
	}
	s.o.Log.Info("password changed", "account_id", a.ID)
	if s.o.Users != nil {
		if err := s.o.Users.RevokeAll(ctx, a.TokenUserID()); err != nil {
			return nil, err
		}
	}
	return s.session(ctx, a, []string{AMRPassword})
}

// RequestReset emails a reset link if the address has an account. The answer never says whether it
// does: the lookup and the email happen in the background.
func (s *Service) RequestReset(ctx context.Context, c Client, email string) error {
	_, key, err := s.normEmail(email)
	if err != nil {
		return err
	}
	if err := s.limitRequests(ctx, c.IP); err != nil {
		return err
	}
	s.enqueue("reset", func(ctx context.Context) { s.sendReset(ctx, key) })
	return nil
}

// ConfirmReset sets a new password with an emailed reset token. The token is single-use, expires, and
// is void once the password changed since it was issued. Success also verifies the address (the
// link proved the mailbox), clears the account's login throttle and revokes every session.
func (s *Service) ConfirmReset(ctx context.Context, c Client, tok, pw string) error {
	if tok == "" {
		return fmt.Errorf("%w: token", ErrMissing)
	}
	if pw == "" {
		return fmt.Errorf("%w: password", ErrMissing)
	}
	pwN, err := s.o.Policy.NormalizePassword(pw)
	if err != nil {
		return err
	}
	if len(tok) > 128 {
		return ErrInvalidLink
	}
	if err := s.limitRequests(ctx, c.IP); err != nil {
		return err
	}
	// Hash first: if the hasher is busy the token is not spent.
	hash, err := s.o.Hasher.Hash(ctx, pwN)
	if err != nil {
		return err
	}
	t, a, err := s.take(ctx, tok, PurposeReset)
	if err != nil {
		return err
	}
	if t.Binding != a.PasswordStamp {
		return ErrInvalidLink
	}
	now := s.o.Now()
	if err := s.o.Store.SetPassword(ctx, a.ID, hash, newSecret(), now); err != nil {
		return err
	}
	if err := s.o.Store.SetVerified(ctx, a.ID, a.EmailKey, now); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	s.succeeded(ctx, a.EmailKey, c.IP)
	s.o.Log.Info("password reset", "account_id", a.ID)
	if s.o.Users != nil {
		if err := s.o.Users.RevokeAll(ctx, a.TokenUserID()); err != nil {
			return err
		}
	}
	return nil
}

// take spends a token and loads its account.
func (s *Service) take(ctx context.Context, tok string, p Purpose) (*Token, *Account, error) {
	t, err := s.o.Store.TakeToken(ctx, tokenHash(tok), p)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrInvalidLink
	}
	if err != nil {
		return nil, nil, err
	}
	if !s.o.Now().Before(t.ExpiresAt) {
		return nil, nil, ErrInvalidLink
	}
	a, err := s.o.Store.ByID(ctx, t.AccountID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrInvalidLink
	}
	if err != nil {
		return nil, nil, err
	}
	return t, a, nil
}

// ResendVerification emails a new verification link to an unverified account; same answer for any
// address.
func (s *Service) ResendVerification(ctx context.Context, c Client, email string) error {
	_, key, err := s.normEmail(email)
	if err != nil {
		return err
	}
	if err := s.limitRequests(ctx, c.IP); err != nil {
		return err
	}
	s.enqueue("verification", func(ctx context.Context) {
		a, err := s.o.Store.ByEmailKey(ctx, key)
		if err != nil {
			return
		}
		s.sendVerification(ctx, a.ID)
	})
	return nil
}

// Verify marks the address verified with an emailed verification token (single-use, expiring, void if
// the address changed).
func (s *Service) Verify(ctx context.Context, tok string) error {
	if tok == "" {
		return fmt.Errorf("%w: token", ErrMissing)
	}
	if len(tok) > 128 {
		return ErrInvalidLink
	}
	t, a, err := s.take(ctx, tok, PurposeVerify)
	if err != nil {
		return err
	}
	if t.Binding != a.EmailKey {
		return ErrInvalidLink
	}
	if err := s.o.Store.SetVerified(ctx, a.ID, a.EmailKey, s.o.Now()); err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrInvalidLink
		}
		return err
	}
	s.o.Log.Info("email verified", "account_id", a.ID)
	return nil
}

// ---- email ----

func (s *Service) issue(ctx context.Context, a *Account, p Purpose, binding string) (string, error) {
	tok := newSecret()
	now := s.o.Now()
	err := s.o.Store.PutToken(ctx, Token{Hash: tokenHash(tok), Purpose: p, AccountID: a.ID, Binding: binding, ExpiresAt: now.Add(s.o.LinkTTL), CreatedAt: now})
	return tok, err
}

func (s *Service) send(ctx context.Context, what, accountID string, msg mail.Message) {
	if err := s.o.Mailer.Send(ctx, msg); err != nil {
		s.o.Log.Warn("account email not sent", "kind", what, "account_id", accountID, "err", err)
		return
	}
	s.o.Log.Info("account email sent", "kind", what, "account_id", accountID)
}

func (s *Service) minutes() string {
	return fmt.Sprintf("%d minutes", int(s.o.LinkTTL.Minutes()))
}

func (s *Service) sendVerification(ctx context.Context, id string) {
	a, err := s.o.Store.ByID(ctx, id)
	if err != nil || a.EmailVerified || a.Disabled || !s.mayMail(ctx, a.EmailKey) {
		return
	}
	tok, err := s.issue(ctx, a, PurposeVerify, a.EmailKey)
	if err != nil {
		s.o.Log.Warn("verification token not stored", "account_id", a.ID, "err", err)
		return
	}
	s.send(ctx, "verify", a.ID, mail.Message{To: a.Email, Subject: "Verify your email address for " + s.o.ServiceName,
		Text: "Hello,\n\nPlease confirm that this is your email address for " + s.o.ServiceName + " by opening this link:\n\n" +
			s.o.VerifyLink(tok) + "\n\nThe link works once and expires in " + s.minutes() + ".\nIf you did not sign up, ignore this message.\n"})
}

func (s *Service) sendReset(ctx context.Context, key string) {
	a, err := s.o.Store.ByEmailKey(ctx, key)
	if err != nil || a.Disabled || !s.mayMail(ctx, key) {
		return
	}
	tok, err := s.issue(ctx, a, PurposeReset, a.PasswordStamp)
	if err != nil {
		s.o.Log.Warn("reset token not stored", "account_id", a.ID, "err", err)
		return
	}
	s.send(ctx, "reset", a.ID, mail.Message{To: a.Email, Subject: "Reset your " + s.o.ServiceName + " password",
		Text: "Hello,\n\nSomeone (hopefully you) asked to reset the password of your " + s.o.ServiceName + " account.\nTo choose a new password, open this link:\n\n" +
			s.o.ResetLink(tok) + "\n\nThe link works once and expires in " + s.minutes() + ".\nIf you did not ask for this, ignore this message: your password stays as it is.\n"})
}

func (s *Service) sendDuplicateNotice(ctx context.Context, key string) {
	a, err := s.o.Store.ByEmailKey(ctx, key)
	if err != nil || a.Disabled || !s.mayMail(ctx, key) {
		return
	}
	s.send(ctx, "duplicate", a.ID, mail.Message{To: a.Email, Subject: "Sign-up attempt with your " + s.o.ServiceName + " address",
		Text: "Hello,\n\nSomeone tried to create a " + s.o.ServiceName + " account with this email address, which already has one.\n" +
			"If it was you, sign in instead, or reset your password if you forgot it.\nIf it was not you, nothing changed and you can ignore this message.\n"})
}
