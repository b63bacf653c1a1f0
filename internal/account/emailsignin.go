package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/mail"
)

// Email sign-in: a one-time link and a six-digit code, both in one message, for one request. The
// request is bound to the browser (or app) that asked: it gets a nonce (a cookie, and requestId in
// the answer) and only that nonce can complete the sign-in, with the link's token or the code. One
// row per request, keyed by the nonce's hash: using the link or the code spends both.

// ErrSignInFailed is any email sign-in that cannot complete: unknown or expired request, link opened
// in another browser than the one that asked, wrong code, already used. One message for all, so the
// answer says nothing about the address.
var ErrSignInFailed = errors.New("account: the sign-in link or code is invalid, expired, already used, or was opened in another browser than the one that asked")

// maxCodeFailures is how many wrong codes one request survives.
const maxCodeFailures = 5

// SignInLinks builds the emailed sign-in URL: a template with {token} (an app page that posts the
// token back with its request id), or Gatehouse's own page under publicURL.
func SignInLinks(tmpl, publicURL string) func(token string) string {
	if tmpl != "" {
		return func(tok string) string { return strings.Replace(tmpl, "{token}", url.QueryEscape(tok), 1) }
	}
	base := strings.TrimSuffix(publicURL, "/")
	if base == "" {
		base = "http://localhost:8080"
	}
	return func(tok string) string { return base + V1Prefix + "/email/confirm?token=" + url.QueryEscape(tok) }
}

func signInKey(nonce string) string { return tokenHash("signin\x00" + nonce) }

func signInCodeHash(nonce, code string) string {
	h := sha256.Sum256([]byte("signin-code\x00" + nonce + "\x00" + code))
	return hex.EncodeToString(h[:])
}

func newSignInCode() string {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(b[:])%1_000_000)
}

// StartEmailSignIn emails a sign-in link and code to the address if it has an enabled account. The
// answer is the same for every address (the lookup and the email happen in the background), and
// the request counts against the client's request throttle; the mail throttle bounds what one
// address receives. nonce is the asking browser's (at least 32 characters, from NewNonce).
func (s *Service) StartEmailSignIn(ctx context.Context, c Client, email, nonce string) error {
	_, key, err := s.normEmail(email)
	if err != nil {
		return err
	}
	if len(nonce) < 32 || len(nonce) > 128 {
		return errors.New("account: bad sign-in nonce")
	}
	if err := s.limitRequests(ctx, c.IP); err != nil {
		return err
	}
	s.enqueue("sign-in", func(ctx context.Context) { s.sendSignIn(ctx, key, nonce) })
	return nil
}

// NewNonce returns a browser nonce for email sign-in and passkey ceremonies.
func NewNonce() string { return newSecret() }

func (s *Service) sendSignIn(ctx context.Context, key, nonce string) {
	a, err := s.o.Store.ByEmailKey(ctx, key)
	if err != nil || a.Disabled || !s.mayMail(ctx, key) {
		return
	}
	tok, code := newSecret(), newSignInCode()
	now := s.o.Now()
	// A second request from the same browser replaces the first.
	if _, err := s.o.Store.TakeToken(ctx, signInKey(nonce), PurposeSignIn); err != nil && !errors.Is(err, ErrNotFound) {
		s.o.Log.Warn("sign-in token not replaced", "account_id", a.ID, "err", err)
		return
	}
	err = s.o.Store.PutToken(ctx, Token{Hash: signInKey(nonce), Purpose: PurposeSignIn, AccountID: a.ID,
		Binding: tokenHash(tok) + " " + signInCodeHash(nonce, code), ExpiresAt: now.Add(s.o.SignInTTL), CreatedAt: now})
	if err != nil {
		s.o.Log.Warn("sign-in token not stored", "account_id", a.ID, "err", err)
		return
	}
	mins := fmt.Sprintf("%d minutes", int(s.o.SignInTTL.Minutes()))
	s.send(ctx, "sign-in", a.ID, mail.Message{To: a.Email, Subject: "Your " + s.o.ServiceName + " sign-in code: " + code,
		Text: "Hello,\n\nTo sign in to " + s.o.ServiceName + ", enter this code:\n\n    " + code + "\n\nor open this link in the same browser:\n\n" +
			s.o.SignInLink(tok) + "\n\nThe code and the link work once, only on the device that asked, and expire in " + mins + ".\n" +
			"If you did not ask to sign in, ignore this message.\n"})
}

// ConfirmEmailSignIn completes an email sign-in from the browser that asked (nonce) with the link's
// token or the code. It returns a session, or an MFA challenge when the account has a second factor
// (the email proves the mailbox, one factor). Every refusal is counted by the throttle; a request
// dies after five wrong codes.
func (s *Service) ConfirmEmailSignIn(ctx context.Context, c Client, nonce, tok, code string) (*Session, error) {
	if tok == "" && code == "" {
		return nil, fmt.Errorf("%w: token or code", ErrMissing)
	}
	if err := s.limitRequests(ctx, c.IP); err != nil {
		return nil, err
	}
	sess, err := s.confirmSignIn(ctx, nonce, tok, code)
	if errors.Is(err, ErrSignInFailed) {
		s.failed(ctx, c.IP)
	}
	return sess, err
}

func (s *Service) confirmSignIn(ctx context.Context, nonce, tok, code string) (*Session, error) {
	if len(nonce) < 32 || len(nonce) > 128 || len(tok) > 128 || len(code) > 16 {
		return nil, ErrSignInFailed
	}
	key := signInKey(nonce)
	t, err := s.o.Store.PeekToken(ctx, key, PurposeSignIn)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrSignInFailed
	}
	if err != nil {
		return nil, err
	}
	if !s.o.Now().Before(t.ExpiresAt) {
		return nil, ErrSignInFailed
	}
	linkHash, codeHash, _ := strings.Cut(t.Binding, " ")
	var ok bool
	if tok != "" {
		ok = subtle.ConstantTimeCompare([]byte(tokenHash(tok)), []byte(linkHash)) == 1
	} else if c, valid := parseTOTPCode(code); valid {
		ok = subtle.ConstantTimeCompare([]byte(signInCodeHash(nonce, c)), []byte(codeHash)) == 1
	}
	if !ok {
		if code != "" && s.codeFailed(ctx, nonce) {
			if _, err := s.o.Store.TakeToken(ctx, key, PurposeSignIn); err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
		}
		return nil, ErrSignInFailed
	}
	if _, err := s.o.Store.TakeToken(ctx, key, PurposeSignIn); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrSignInFailed // spent by a concurrent confirmation
		}
		return nil, err
	}
	a, err := s.o.Store.ByID(ctx, t.AccountID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrSignInFailed
	}
	if err != nil {
		return nil, err
	}
	if a.Disabled {
		return nil, ErrDisabled
	}
	if !a.EmailVerified {
		if err := s.o.Store.SetVerified(ctx, a.ID, a.EmailKey, s.o.Now()); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		a.EmailVerified = true
	}
	if err := s.link(ctx, a); err != nil {
		return nil, err
	}
	s.o.Log.Info("email sign-in", "account_id", a.ID)
	return s.signIn(ctx, a, AMROTP)
}

// codeFailed counts a wrong code against the request and reports whether it has had too many.
func (s *Service) codeFailed(ctx context.Context, nonce string) bool {
	now := s.o.Now()
	dead := false
	err := s.o.Store.Throttle(ctx, []string{"e:" + keyHash(nonce)}, func(rows []ThrottleRow) []*ThrottleRow {
		r := s.o.Rules.Pair.fail(rows[0], now)
		dead = r.Failures >= maxCodeFailures
		return []*ThrottleRow{&r}
	})
	if err != nil {
		s.o.Log.Warn("counting a wrong sign-in code failed", "err", err)
		return true
	}
	return dead
}
