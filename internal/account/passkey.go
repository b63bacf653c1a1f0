package account

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// PasskeyConfig is the WebAuthn relying party: its id (the public URL's host, or a registrable
// suffix of it) and the origins whose pages may run the ceremonies (the public URL's origin and any
// app origins served under the same RP id).
type PasskeyConfig struct {
	RPID    string
	Origins []string
	// Timeout bounds a ceremony from its challenge to its answer (default 2m).
	Timeout time.Duration
	// MaxPerAccount bounds the passkeys of one account (default 20).
	MaxPerAccount int
}

// Errors of passkey ceremonies.
var (
	// ErrPasskeyInvalid is any assertion or attestation that does not verify: wrong relying party or
	// origin, bad signature, unknown credential, user not verified. The wrapped text says which.
	ErrPasskeyInvalid = errors.New("account: the passkey response is not valid")
	// ErrPasskeyCounter is an authenticator whose signature counter did not move forward (a cloned
	// key, or a replayed assertion).
	ErrPasskeyCounter = errors.New("account: the passkey's signature counter went backwards; the key may be cloned")
	// ErrCeremony is a challenge id that is unknown, expired, already answered or asked for by
	// another browser.
	ErrCeremony        = errors.New("account: the passkey challenge is invalid, expired, already used or was issued to another browser")
	ErrPasskeyLimit    = errors.New("account: this account has the most passkeys allowed")
	ErrPasskeyNotFound = errors.New("account: no such passkey")
	ErrPasskeysOff     = errors.New("account: passkeys are not configured on this server (set public_url)")
)

// passkeyUser adapts an account to webauthn.User. The user handle is the account id (random, no
// personal data), which is how a discoverable credential names its account.
type passkeyUser struct {
	a     *Account
	creds []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte                         { return []byte(u.a.ID) }
func (u *passkeyUser) WebAuthnName() string                       { return u.a.Email }
func (u *passkeyUser) WebAuthnDisplayName() string                { return u.a.Email }
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func newWebAuthn(c *PasskeyConfig, name string) (*webauthn.WebAuthn, error) {
	if c.RPID == "" || len(c.Origins) == 0 {
		return nil, errors.New("account: passkeys need a relying party id and origins")
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.MaxPerAccount <= 0 {
		c.MaxPerAccount = 20
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID: c.RPID, RPDisplayName: name, RPOrigins: c.Origins,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: c.Timeout, TimeoutUVD: c.Timeout},
			Registration: webauthn.TimeoutConfig{Timeout: c.Timeout, TimeoutUVD: c.Timeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("account: passkeys: %w", err)
	}
	return wa, nil
}

// PasskeyConfigFor derives the relying party from the public URL: its host is the RP id, its origin
// the allowed origin, plus extra origins (other pages under the same registrable domain).
func PasskeyConfigFor(publicURL string, extraOrigins []string) (*PasskeyConfig, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("account: passkeys need public_url (got %q)", publicURL)
	}
	origins := append([]string{u.Scheme + "://" + u.Host}, extraOrigins...)
	return &PasskeyConfig{RPID: u.Hostname(), Origins: origins}, nil
}

func (s *Service) passkeyUser(ctx context.Context, a *Account) (*passkeyUser, []*Passkey, error) {
	pks, err := s.o.Store.Passkeys(ctx, a.ID)
	if err != nil {
		return nil, nil, err
	}
	u := &passkeyUser{a: a}
	for _, p := range pks {
		u.creds = append(u.creds, p.Credential)
	}
	return u, pks, nil
}

// CeremonyStart is the challenge a client answers: Options is the publicKey member for
// navigator.credentials.create/get (JSON), ID names the ceremony when answering.
type CeremonyStart struct {
	ID      string
	Options any
}

func (s *Service) putCeremony(ctx context.Context, kind string, a *Account, browser, mfaToken string, sess *webauthn.SessionData) (string, error) {
	id := newSecret()
	now := s.o.Now()
	c := &Ceremony{Handle: tokenHash(id), Kind: kind, Browser: tokenHash(browser), Session: *sess, ExpiresAt: now.Add(s.o.Passkeys.Timeout), CreatedAt: now}
	if a != nil {
		c.AccountID = a.ID
	}
	if mfaToken != "" {
		c.MFAToken = tokenHash(mfaToken)
	}
	return id, s.o.Store.PutCeremony(ctx, c)
}

// limitCeremonies counts a passkey challenge against the client address (Rules.Ceremony).
func (s *Service) limitCeremonies(ctx context.Context, ip string) error {
	return s.limit(ctx, ceremonyKey(ip), s.o.Rules.Ceremony)
}

// takeCeremony spends a ceremony and checks its kind, expiry and browser.
func (s *Service) takeCeremony(ctx context.Context, id, browser, kind string) (*Ceremony, error) {
	if id == "" || len(id) > 128 || browser == "" || len(browser) > 128 {
		return nil, ErrCeremony
	}
	c, err := s.o.Store.TakeCeremony(ctx, tokenHash(id))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrCeremony
	}
	if err != nil {
		return nil, err
	}
	if c.Kind != kind || !s.o.Now().Before(c.ExpiresAt) || subtle.ConstantTimeCompare([]byte(c.Browser), []byte(tokenHash(browser))) != 1 {
		return nil, ErrCeremony
	}
	return c, nil
}

// BeginPasskeyRegistration starts registering a passkey for the signed-in account (a discoverable
// credential with user verification, so it can sign in without a password). browser is the nonce
// of the asking browser.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p Principal, browser string) (*CeremonyStart, error) {
	if s.wa == nil {
		return nil, ErrPasskeysOff
	}
	a, err := s.accountOf(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.stepUp(ctx, a, p); err != nil {
		return nil, err
	}
	u, pks, err := s.passkeyUser(ctx, a)
	if err != nil {
		return nil, err
	}
	if len(pks) >= s.o.Passkeys.MaxPerAccount {
		return nil, ErrPasskeyLimit
	}
	var exclude []protocol.CredentialDescriptor
	for i := range u.creds {
		exclude = append(exclude, u.creds[i].Descriptor())
	}
	opts, sess, err := s.wa.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired,
		}),
		webauthn.WithExclusions(exclude),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return nil, fmt.Errorf("account: passkey registration: %w", err)
	}
	id, err := s.putCeremony(ctx, "register", a, browser, "", sess)
	if err != nil {
		return nil, err
	}
	return &CeremonyStart{ID: id, Options: opts.Response}, nil
}

// FinishPasskeyRegistration verifies the authenticator's answer and stores the passkey under name.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, c Client, p Principal, id, browser, name string, credential json.RawMessage) (*PasskeyView, error) {
	if s.wa == nil {
		return nil, ErrPasskeysOff
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Passkey"
	}
	if utf8.RuneCountInString(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("%w: name (at most 64 characters, no control characters)", ErrInvalidField)
	}
	a, err := s.accountOf(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	before, err := s.methods(ctx, a)
	if err != nil {
		return nil, err
	}
	var view *PasskeyView
	err = s.secondFactor(ctx, a, c, func() error {
		cer, err := s.takeCeremony(ctx, id, browser, "register")
		if err != nil {
			return err
		}
		if cer.AccountID != a.ID {
			return ErrCeremony
		}
		parsed, err := parseAttestation(credential)
		if err != nil {
			return passkeyError(err)
		}
		u, _, err := s.passkeyUser(ctx, a)
		if err != nil {
			return err
		}
		cred, err := s.wa.CreateCredential(u, cer.Session, parsed)
		if err != nil {
			return passkeyError(err)
		}
		pk := &Passkey{ID: base64.RawURLEncoding.EncodeToString(cred.ID), AccountID: a.ID, Name: name, Credential: *cred,
			SignCount: cred.Authenticator.SignCount, CreatedAt: s.o.Now()}
		if err := s.o.Store.PutPasskey(ctx, pk); err != nil {
			if errors.Is(err, ErrDuplicate) {
				return fmt.Errorf("%w: this passkey is registered already", ErrPasskeyInvalid)
			}
			return err
		}
		v := pk.View()
		view = &v
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.o.Log.Info("passkey registered", "account_id", a.ID, "passkey", view.ID)
	if len(before) == 0 {
		// The account's first second factor: recovery codes, as an authenticator app's enrolment
		// gives, so that losing the device does not lock the account out.
		if view.RecoveryCodes, err = s.newRecoveryCodes(ctx, a); err != nil {
			return nil, err
		}
	}
	return view, nil
}

// BeginPasskeyLogin starts a passkey sign-in: passwordless with any discoverable passkey of the
// site (mfaToken ""), or as the second factor of the challenge mfaToken (a passkey of that account).
func (s *Service) BeginPasskeyLogin(ctx context.Context, c Client, browser, mfaToken string) (*CeremonyStart, error) {
	if s.wa == nil {
		return nil, ErrPasskeysOff
	}
	// The address's failures (counted at the finish) block it here; so does asking for more
	// challenges than Rules.Ceremony allows (each is a row until it expires).
	if err := s.blocked(ctx, c.IP); err != nil {
		return nil, err
	}
	if err := s.limitCeremonies(ctx, c.IP); err != nil {
		return nil, err
	}
	if mfaToken == "" {
		opts, sess, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			return nil, fmt.Errorf("account: passkey login: %w", err)
		}
		id, err := s.putCeremony(ctx, "login", nil, browser, "", sess)
		if err != nil {
			return nil, err
		}
		return &CeremonyStart{ID: id, Options: opts.Response}, nil
	}
	_, a, err := s.challenge(ctx, mfaToken)
	if err != nil {
		if isRefusal(err) {
			s.failed(ctx, c.IP)
		}
		return nil, err
	}
	u, _, err := s.passkeyUser(ctx, a)
	if err != nil {
		return nil, err
	}
	if len(u.creds) == 0 {
		return nil, fmt.Errorf("%w: the account has no passkey", ErrUnsupportedMethod)
	}
	opts, sess, err := s.wa.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, fmt.Errorf("account: passkey login: %w", err)
	}
	id, err := s.putCeremony(ctx, "login", a, browser, mfaToken, sess)
	if err != nil {
		return nil, err
	}
	return &CeremonyStart{ID: id, Options: opts.Response}, nil
}

// FinishPasskeyLogin verifies an assertion and signs in: passwordless (amr hwk + mfa: the passkey
// is something you have, unlocked by user verification) or, for a ceremony begun with an MFA
// challenge, completing that challenge (amr pwd + hwk + mfa). Every refusal is counted by the
// throttle.
func (s *Service) FinishPasskeyLogin(ctx context.Context, c Client, id, browser, mfaToken string, credential json.RawMessage) (*Session, error) {
	if s.wa == nil {
		return nil, ErrPasskeysOff
	}
	cer, err := s.takeCeremony(ctx, id, browser, "login")
	if err != nil {
		s.failed(ctx, c.IP)
		return nil, err
	}
	parsed, err := parseAssertion(credential)
	if err != nil {
		s.failed(ctx, c.IP)
		return nil, passkeyError(err)
	}
	var a *Account
	var chal *Token
	if cer.AccountID == "" {
		// Discoverable: the user handle names the account.
		a, err = s.o.Store.ByID(ctx, string(parsed.Response.UserHandle))
		if errors.Is(err, ErrNotFound) {
			s.failed(ctx, c.IP)
			return nil, fmt.Errorf("%w: unknown passkey", ErrPasskeyInvalid)
		}
	} else {
		if mfaToken == "" || subtle.ConstantTimeCompare([]byte(tokenHash(mfaToken)), []byte(cer.MFAToken)) != 1 {
			s.failed(ctx, c.IP)
			return nil, ErrInvalidChallenge
		}
		chal, a, err = s.challenge(ctx, mfaToken)
		if err == nil && a.ID != cer.AccountID {
			err = ErrInvalidChallenge
		}
		if isRefusal(err) {
			s.failed(ctx, c.IP)
		}
	}
	if err != nil {
		return nil, err
	}
	if a.Disabled {
		return nil, ErrDisabled
	}
	err = s.secondFactor(ctx, a, c, func() error { return s.verifyAssertion(ctx, a, cer, parsed) })
	if err != nil {
		return nil, err
	}
	if chal != nil {
		return s.completeChallenge(ctx, mfaToken, chal, a, AMRHardware)
	}
	if err := s.link(ctx, a); err != nil {
		return nil, err
	}
	if s.o.RequireVerifiedEmail && !a.EmailVerified {
		return nil, ErrUnverified
	}
	return s.session(ctx, a, []string{AMRHardware, AMRMulti})
}

func (s *Service) verifyAssertion(ctx context.Context, a *Account, cer *Ceremony, parsed *protocol.ParsedCredentialAssertionData) error {
	u, pks, err := s.passkeyUser(ctx, a)
	if err != nil {
		return err
	}
	var cred *webauthn.Credential
	if cer.AccountID == "" {
		cred, err = s.wa.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if !bytes.Equal(userHandle, []byte(a.ID)) {
				return nil, errors.New("user handle mismatch")
			}
			return u, nil
		}, cer.Session, parsed)
	} else {
		cred, err = s.wa.ValidateLogin(u, cer.Session, parsed)
	}
	if err != nil {
		return passkeyError(err)
	}
	if cred.Authenticator.CloneWarning {
		return ErrPasskeyCounter
	}
	credID := base64.RawURLEncoding.EncodeToString(cred.ID)
	for _, pk := range pks {
		if pk.ID != credID {
			continue
		}
		pk.Credential = *cred
		ok, err := s.o.Store.UsePasskey(ctx, pk, cred.Authenticator.SignCount, s.o.Now())
		if err != nil {
			return err
		}
		if !ok {
			return ErrPasskeyCounter
		}
		return nil
	}
	return fmt.Errorf("%w: unknown passkey", ErrPasskeyInvalid)
}

// RemovePasskey deletes one of the signed-in account's passkeys (a multi-factor token is required).
func (s *Service) RemovePasskey(ctx context.Context, p Principal, id string) error {
	a, err := s.accountOf(ctx, p.UserID)
	if err != nil {
		return err
	}
	if err := s.stepUp(ctx, a, p); err != nil {
		return err
	}
	if err := s.o.Store.DeletePasskey(ctx, a.ID, id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrPasskeyNotFound
		}
		return err
	}
	s.o.Log.Info("passkey removed", "account_id", a.ID, "passkey", id)
	return nil
}

// parseAttestation and parseAssertion hand a credential to go-webauthn's parsers, turning a panic in
// them (hostile CBOR) into a refusal.
func parseAttestation(raw json.RawMessage) (p *protocol.ParsedCredentialCreationData, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: the credential could not be parsed", ErrPasskeyInvalid)
		}
	}()
	return protocol.ParseCredentialCreationResponseBytes(raw)
}

func parseAssertion(raw json.RawMessage) (p *protocol.ParsedCredentialAssertionData, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: the credential could not be parsed", ErrPasskeyInvalid)
		}
	}()
	return protocol.ParseCredentialRequestResponseBytes(raw)
}

// passkeyError turns a go-webauthn error into ErrPasskeyInvalid with the library's reason (which
// names the check that failed: origin, RP id hash, signature, user verification …).
func passkeyError(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		msg := strings.TrimSuffix(pe.Details, ".")
		if msg == "" {
			msg = pe.Type
		}
		// DevInfo names the failed check (e.g. the RP id hash or the origin that did not match); it
		// holds only what the client sent and public configuration.
		if info := pe.DevInfo; info != "" && len(info) <= 300 {
			msg += " (" + info + ")"
		}
		return fmt.Errorf("%w: %s", ErrPasskeyInvalid, msg)
	}
	return fmt.Errorf("%w: %s", ErrPasskeyInvalid, err.Error())
}
