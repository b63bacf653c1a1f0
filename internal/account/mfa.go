package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"
)

// Authentication method references (RFC 8176) that accounts put in the tokens' amr claim.
const (
	AMRPassword = "pwd" // the account's password
	AMROTP      = "otp" // a one-time code: authenticator app (TOTP), recovery code or emailed code/link
	AMRHardware = "hwk" // proof of possession of a hardware-secured key: a passkey
	AMRMulti    = "mfa" // more than one factor was used
)

// Second-factor methods, as the MFA challenge lists them and clients name them.
const (
	MethodTOTP     = "totp"
	MethodRecovery = "recovery"
	MethodPasskey  = "passkey"
)

// Errors of multi-factor sign-in (the HTTP layer maps them; see http.go).
var (
	ErrInvalidCode       = errors.New("account: the code is not valid")
	ErrCodeReused        = errors.New("account: this code was already used; wait for the next one")
	ErrRecoveryCodeUsed  = errors.New("account: this recovery code was already used")
	ErrInvalidChallenge  = errors.New("account: the sign-in challenge is invalid, expired or already used")
	ErrMFAEnrolled       = errors.New("account: an authenticator app is already enrolled")
	ErrMFANotEnrolled    = errors.New("account: no authenticator app enrolment is waiting for confirmation")
	ErrStepUpRequired    = errors.New("account: changing second factors requires a token from a multi-factor sign-in")
	ErrMFAUnavailable    = errors.New("account: second factors are not configured on this server")
	ErrUnsupportedMethod = errors.New("account: unknown second-factor method")
)

// Sealer encrypts secrets at rest (user.Sealer: AES-256-GCM under keys derived from the master keys,
// rotated with them).
type Sealer interface {
	Seal(plaintext, ad []byte) (string, error)
	Open(sealed string, ad []byte) ([]byte, error)
}

// Principal is the signed-in caller of an account operation: its token's user id and whether the
// token came from a multi-factor sign-in.
type Principal struct {
	UserID string
	MFA    bool
}

// Challenge is the answer to a correct first factor when the account has a second one: the client
// sends Token back with the second factor within ExpiresAt.
type Challenge struct {
	Token     string
	Methods   []string
	ExpiresAt time.Time
}

// recoveryCodeCount is how many recovery codes an enrolment gets.
const recoveryCodeCount = 10

// TOTPEnrollment is what the authenticator app needs: the secret (base32), the otpauth:// URI and the
// URI as a QR code (PNG).
type TOTPEnrollment struct {
	Secret string
	URI    string
	QRPNG  []byte
}

// MFAStatus describes an account's second factors.
type MFAStatus struct {
	TOTP              bool          `json:"totp"`
	TOTPPending       bool          `json:"totpPending"`
	RecoveryCodesLeft int           `json:"recoveryCodesLeft"`
	Passkeys          []PasskeyView `json:"passkeys"`
}

func (s *Service) accountOf(ctx context.Context, userID string) (*Account, error) {
	a, err := s.o.Store.ByTokenUserID(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotAccount
	}
	if err != nil {
		return nil, err
	}
	if a.Disabled {
		return nil, ErrDisabled
	}
	return a, nil
}

func totpAD(accountID string) []byte { return []byte("totp\x00" + accountID) }

// methods lists the account's confirmed second factors (empty: sign-in is one step).
func (s *Service) methods(ctx context.Context, a *Account) ([]string, error) {
	var out []string
	t, err := s.o.Store.TOTP(ctx, a.ID)
	switch {
	case err == nil && !t.ConfirmedAt.IsZero():
		out = append(out, MethodTOTP)
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, err
	}
	if s.o.Passkeys != nil {
		n, err := s.o.Store.PasskeyCount(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, MethodPasskey)
		}
	}
	if len(out) > 0 {
		if n, err := s.o.Store.RecoveryCodesLeft(ctx, a.ID); err != nil {
			return nil, err
		} else if n > 0 {
			out = append(out, MethodRecovery)
		}
	}
	return out, nil
}

// signIn ends a first factor: a session when the account has no second factor, else a challenge.
func (s *Service) signIn(ctx context.Context, a *Account, amr ...string) (*Session, error) {
	methods, err := s.methods(ctx, a)
	if err != nil {
		return nil, err
	}
	if len(methods) == 0 {
		return s.session(ctx, a, amr)
	}
	tok := newSecret()
	now := s.o.Now()
	exp := now.Add(s.o.MFATTL)
	if err := s.o.Store.PutToken(ctx, Token{Hash: tokenHash(tok), Purpose: PurposeMFA, AccountID: a.ID, Binding: strings.Join(amr, " "), ExpiresAt: exp, CreatedAt: now}); err != nil {
		return nil, err
	}
	return &Session{UserID: a.TokenUserID(), MFA: &Challenge{Token: tok, Methods: methods, ExpiresAt: exp}}, nil
}

// challenge reads (without spending) an MFA challenge and its account.
func (s *Service) challenge(ctx context.Context, tok string) (*Token, *Account, error) {
	if tok == "" {
		return nil, nil, fmt.Errorf("%w: mfaToken", ErrMissing)
	}
	if len(tok) > 128 {
		return nil, nil, ErrInvalidChallenge
	}
	t, err := s.o.Store.PeekToken(ctx, tokenHash(tok), PurposeMFA)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrInvalidChallenge
	}
	if err != nil {
		return nil, nil, err
	}
	if !s.o.Now().Before(t.ExpiresAt) {
		return nil, nil, ErrInvalidChallenge
	}
	a, err := s.o.Store.ByID(ctx, t.AccountID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrInvalidChallenge
	}
	if err != nil {
		return nil, nil, err
	}
	if a.Disabled {
		return nil, nil, ErrDisabled
	}
	return t, a, nil
}

// completeChallenge spends the challenge (single use: of two concurrent completions one wins) and
// returns the session with the first factor's amr, the second's and "mfa".
func (s *Service) completeChallenge(ctx context.Context, tok string, t *Token, a *Account, second string) (*Session, error) {
	if _, err := s.o.Store.TakeToken(ctx, tokenHash(tok), PurposeMFA); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrInvalidChallenge
		}
		return nil, err
	}
	amr := strings.Fields(t.Binding)
	if !contains(amr, second) {
		amr = append(amr, second)
	}
	return s.session(ctx, a, append(amr, AMRMulti))
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// secondFactor books a second-factor attempt in the login throttle like a password attempt: counted
// up front for the account, a failure counts against the address, a success clears the account's
// counters.
func (s *Service) secondFactor(ctx context.Context, a *Account, c Client, check func() error) error {
	if err := s.attempt(ctx, a.EmailKey, c.IP); err != nil {
		return err
	}
	err := check()
	switch {
	case err == nil:
		s.succeeded(ctx, a.EmailKey, c.IP)
	case isRefusal(err):
		s.failed(ctx, c.IP)
		s.o.Log.Info("second factor refused", "account_id", a.ID, "reason", err.Error())
	default:
		s.release(ctx, a.EmailKey, c.IP)
	}
	return err
}

// blocked answers ThrottledError while the client address is blocked by its failures.
func (s *Service) blocked(ctx context.Context, ip string) error {
	row, err := s.o.Store.ThrottleRow(ctx, ipKey(ip))
	if err != nil {
		return err
	}
	if w := row.wait(s.o.Now()); w > 0 {
		return &ThrottledError{RetryAfter: w}
	}
	return nil
}

// isRefusal reports whether err is bad input from the client (counted by the throttle) rather than a
// server-side failure.
func isRefusal(err error) bool {
	for _, e := range []error{ErrInvalidCode, ErrCodeReused, ErrRecoveryCodeUsed, ErrInvalidChallenge, ErrInvalidLink,
		ErrPasskeyInvalid, ErrPasskeyCounter, ErrInvalidCredentials} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// VerifyMFA completes a sign-in with a second factor: method "totp" (a code from the authenticator
// app) or "recovery" (a recovery code). Wrong, reused and stale input is refused and counted by the
// login throttle.
func (s *Service) VerifyMFA(ctx context.Context, c Client, mfaToken, method, code string) (*Session, error) {
	if code == "" {
		return nil, fmt.Errorf("%w: code", ErrMissing)
	}
	var check func(*Account) error
	switch method {
	case MethodTOTP:
		check = func(a *Account) error { _, err := s.checkTOTP(ctx, a, code, false); return err }
	case MethodRecovery:
		check = func(a *Account) error { return s.useRecoveryCode(ctx, a, code) }
	case "":
		return nil, fmt.Errorf("%w: method", ErrMissing)
	default:
		return nil, ErrUnsupportedMethod
	}
	t, a, err := s.challenge(ctx, mfaToken)
	if err != nil {
		if isRefusal(err) {
			s.failed(ctx, c.IP)
		}
		return nil, err
	}
	if err := s.secondFactor(ctx, a, c, func() error { return check(a) }); err != nil {
		return nil, err
	}
	return s.completeChallenge(ctx, mfaToken, t, a, AMROTP)
}

// checkTOTP verifies a code against the account's enrolment (confirm: the pending one) and records
// its step as used, re-sealing the secret under the current key (so a secret in use follows key
// rotation). It returns the matched step.
func (s *Service) checkTOTP(ctx context.Context, a *Account, raw string, confirm bool) (int64, error) {
	if s.o.Sealer == nil {
		return 0, ErrMFAUnavailable
	}
	code, ok := parseTOTPCode(raw)
	if !ok {
		return 0, ErrInvalidCode
	}
	t, err := s.o.Store.TOTP(ctx, a.ID)
	if errors.Is(err, ErrNotFound) {
		if confirm {
			return 0, ErrMFANotEnrolled
		}
		return 0, ErrInvalidCode
	}
	if err != nil {
		return 0, err
	}
	if confirm != t.ConfirmedAt.IsZero() {
		if confirm {
			return 0, ErrMFAEnrolled
		}
		return 0, ErrInvalidCode
	}
	secret, err := s.o.Sealer.Open(t.Secret, totpAD(a.ID))
	if err != nil {
		// Sealed under a master key no longer in force (rotated with --revoke-previous): the account
		// signs in with a recovery code and enrols again.
		s.o.Log.Error("authenticator secret cannot be opened", "account_id", a.ID, "err", err)
		return 0, ErrInvalidCode
	}
	step, ok, reused := totpMatch(secret, code, s.o.Now(), t.LastStep)
	if reused {
		return 0, ErrCodeReused
	}
	if !ok {
		return 0, ErrInvalidCode
	}
	sealed, err := s.o.Sealer.Seal(secret, totpAD(a.ID))
	if err != nil {
		return 0, err
	}
	done, err := s.o.Store.AdvanceTOTP(ctx, a.ID, step, sealed, confirm, s.o.Now())
	if err != nil {
		return 0, err
	}
	if !done {
		return 0, ErrCodeReused // another request (on any instance) used this step first
	}
	return step, nil
}

// EnrollTOTP starts an authenticator-app enrolment for the signed-in account: a new secret, active
// once ConfirmTOTP has seen a code from it. An account that already has a second factor needs a token
// from a multi-factor sign-in.
func (s *Service) EnrollTOTP(ctx context.Context, p Principal) (*TOTPEnrollment, error) {
	if s.o.Sealer == nil {
		return nil, ErrMFAUnavailable
	}
	a, err := s.accountOf(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.stepUp(ctx, a, p); err != nil {
		return nil, err
	}
	secret := make([]byte, totpSecretSize)
	rand.Read(secret) //nolint:errcheck // crypto/rand does not fail on supported platforms
	sealed, err := s.o.Sealer.Seal(secret, totpAD(a.ID))
	if err != nil {
		return nil, err
	}
	if err := s.o.Store.PutPendingTOTP(ctx, TOTP{AccountID: a.ID, Secret: sealed, CreatedAt: s.o.Now()}); err != nil {
		return nil, err
	}
	uri := otpauthURI(s.o.ServiceName, a.Email, secret)
	png, err := qrcode.Encode(uri, qrcode.Medium, 256)
	if err != nil {
		return nil, fmt.Errorf("account: qr code: %w", err)
	}
	return &TOTPEnrollment{Secret: b32.EncodeToString(secret), URI: uri, QRPNG: png}, nil
}

// ConfirmTOTP activates the pending enrolment with a first code from the app and returns fresh
// recovery codes (shown once; only their hashes are kept). A wrong code is counted by the throttle.
func (s *Service) ConfirmTOTP(ctx context.Context, c Client, p Principal, code string) ([]string, error) {
	if code == "" {
		return nil, fmt.Errorf("%w: code", ErrMissing)
	}
	a, err := s.accountOf(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.secondFactor(ctx, a, c, func() error { _, err := s.checkTOTP(ctx, a, code, true); return err }); err != nil {
		return nil, err
	}
	s.o.Log.Info("authenticator app enrolled", "account_id", a.ID)
	return s.newRecoveryCodes(ctx, a)
}

// DisableTOTP removes the authenticator app (a multi-factor token is required).
func (s *Service) DisableTOTP(ctx context.Context, p Principal) error {
	a, err := s.accountOf(ctx, p.UserID)
	if err != nil {
		return err
	}
	if err := s.stepUp(ctx, a, p); err != nil {
		return err
	}
	if err := s.o.Store.DeleteTOTP(ctx, a.ID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrMFANotEnrolled
		}
		return err
	}
	s.o.Log.Info("authenticator app removed", "account_id", a.ID)
	return nil
}

// RegenerateRecoveryCodes replaces the account's recovery codes (a multi-factor token is required).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p Principal) ([]string, error) {
	a, err := s.accountOf(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if !p.MFA {
		return nil, ErrStepUpRequired
	}
	return s.newRecoveryCodes(ctx, a)
}

// MFAStatus reports the signed-in account's second factors.
func (s *Service) MFAStatus(ctx context.Context, p Principal) (*MFAStatus, error) {
	a, err := s.accountOf(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	st := &MFAStatus{Passkeys: []PasskeyView{}}
	t, err := s.o.Store.TOTP(ctx, a.ID)
	switch {
	case err == nil:
		st.TOTP, st.TOTPPending = !t.ConfirmedAt.IsZero(), t.ConfirmedAt.IsZero()
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	if st.RecoveryCodesLeft, err = s.o.Store.RecoveryCodesLeft(ctx, a.ID); err != nil {
		return nil, err
	}
	pks, err := s.o.Store.Passkeys(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	for _, pk := range pks {
		st.Passkeys = append(st.Passkeys, pk.View())
	}
	return st, nil
}

// AdminMFAStatus reports an account's second factors (admin).
func (s *Service) AdminMFAStatus(ctx context.Context, id string) (*MFAStatus, error) {
	a, err := s.o.Store.ByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.MFAStatus(ctx, Principal{UserID: a.TokenUserID()})
}

// ResetMFA removes every second factor of an account (its owner lost them all, recovery codes
// included) and ends its sessions; the next sign-in is password-only until the owner enrols again.
func (s *Service) ResetMFA(ctx context.Context, id string) error {
	a, err := s.o.Store.ByID(ctx, id)
	if err != nil {
		return err
	}
	if err := s.o.Store.ResetSecondFactors(ctx, a.ID); err != nil {
		return err
	}
	if s.o.Users != nil {
		if err := s.o.Users.RevokeAll(ctx, a.TokenUserID()); err != nil {
			return err
		}
	}
	s.o.Log.Info("second factors reset by admin", "account_id", a.ID)
	return nil
}

// stepUp refuses to change the second factors of an account that has one unless the caller's token
// came from a multi-factor sign-in (a stolen password-only session must not replace them).
func (s *Service) stepUp(ctx context.Context, a *Account, p Principal) error {
	if p.MFA {
		return nil
	}
	m, err := s.methods(ctx, a)
	if err != nil {
		return err
	}
	if len(m) > 0 {
		return ErrStepUpRequired
	}
	return nil
}

// Recovery codes: 16 characters of the RFC 4648 base32 alphabet in lower case (80 random bits),
// shown as four groups of four. They are stored as SHA-256 over the account id and the normalized
// code. A slow hash (argon2id) protects low-entropy secrets such as passwords; at 80 bits an offline
// search of SHA-256 is out of reach, and a keyed hash (HMAC with a server key) would tie the codes to
// a key that rotation may revoke, locking out exactly the people who need them.
func recoveryHash(accountID, code string) string {
	h := sha256.New()
	h.Write([]byte("gatehouse recovery v1\x00"))
	h.Write([]byte(accountID))
	h.Write([]byte{0})
	h.Write([]byte(code))
	return hex.EncodeToString(h.Sum(nil))
}

// normRecoveryCode lower-cases and drops separators; false for anything that cannot be a code.
func normRecoveryCode(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r == '-' || r == ' ':
		case (r >= 'a' && r <= 'z') || (r >= '2' && r <= '7'):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if b.Len() != 16 {
		return "", false
	}
	return b.String(), true
}

func newRecoveryCode() string {
	var raw [10]byte
	rand.Read(raw[:]) //nolint:errcheck
	c := strings.ToLower(b32.EncodeToString(raw[:]))
	return c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
}

func (s *Service) newRecoveryCodes(ctx context.Context, a *Account) ([]string, error) {
	codes := make([]string, recoveryCodeCount)
	hashes := make([]string, recoveryCodeCount)
	for i := range codes {
		codes[i] = newRecoveryCode()
		n, _ := normRecoveryCode(codes[i])
		hashes[i] = recoveryHash(a.ID, n)
	}
	if err := s.o.Store.ReplaceRecoveryCodes(ctx, a.ID, hashes, s.o.Now()); err != nil {
		return nil, err
	}
	s.o.Log.Info("recovery codes generated", "account_id", a.ID)
	return codes, nil
}

func (s *Service) useRecoveryCode(ctx context.Context, a *Account, raw string) error {
	code, ok := normRecoveryCode(raw)
	if !ok {
		return ErrInvalidCode
	}
	err := s.o.Store.UseRecoveryCode(ctx, a.ID, recoveryHash(a.ID, code), s.o.Now())
	switch {
	case errors.Is(err, ErrNotFound):
		return ErrInvalidCode
	case err != nil:
		return err
	}
	s.o.Log.Info("recovery code used", "account_id", a.ID)
	return nil
}
