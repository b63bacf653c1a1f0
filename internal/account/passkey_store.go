package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Passkey is a WebAuthn credential registered to an account.
type Passkey struct {
	ID         string // the credential id, base64url
	AccountID  string
	Name       string
	Credential webauthn.Credential
	SignCount  uint32
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// PasskeyView is what clients see of a passkey.
type PasskeyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	// RecoveryCodes are returned once, by the registration of an account's first second factor.
	RecoveryCodes []string `json:"recoveryCodes,omitempty"`
}

// View is the client's view of the passkey.
func (p *Passkey) View() PasskeyView {
	v := PasskeyView{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt}
	if !p.LastUsedAt.IsZero() {
		t := p.LastUsedAt
		v.LastUsedAt = &t
	}
	return v
}

// Ceremony is a WebAuthn challenge waiting for its answer, kept in the database so that any instance
// can finish what another began. It is bound to the browser that asked (Browser: hash of its nonce
// cookie), single use (taken with DELETE … RETURNING) and short-lived.
type Ceremony struct {
	Handle    string // hash of the challenge id given to the client
	Kind      string // "register" or "login"
	AccountID string // "" for a discoverable (passwordless) login
	Browser   string
	MFAToken  string // hash of the MFA challenge this assertion completes ("" otherwise)
	Session   webauthn.SessionData
	ExpiresAt time.Time
	CreatedAt time.Time
}

// PasskeyStore persists passkeys and WebAuthn ceremonies. The SQL store implements it.
type PasskeyStore interface {
	Passkeys(ctx context.Context, accountID string) ([]*Passkey, error)
	PasskeyCount(ctx context.Context, accountID string) (int, error)
	// PutPasskey stores a new passkey; ErrDuplicate if the credential id is registered already.
	PutPasskey(ctx context.Context, p *Passkey) error
	// UsePasskey records a verified assertion: the new counter, credential state and time, only if
	// the stored counter is still below count (or both are 0: authenticators without a counter).
	// It reports whether it did: false is a counter that did not move forward (a cloned key or a
	// replay racing on another instance).
	UsePasskey(ctx context.Context, p *Passkey, count uint32, now time.Time) (bool, error)
	DeletePasskey(ctx context.Context, accountID, id string) error

	PutCeremony(ctx context.Context, c *Ceremony) error
	// TakeCeremony deletes and returns the ceremony (single use); ErrNotFound if there is none.
	TakeCeremony(ctx context.Context, handle string) (*Ceremony, error)
	// DeleteExpiredCeremonies removes ceremonies that expired before now.
	DeleteExpiredCeremonies(ctx context.Context, now time.Time) (int64, error)
}

const passkeyCols = `id, account_id, name, credential, sign_count, created_at, last_used_at`

func scanPasskey(s scanner) (*Passkey, error) {
	var p Passkey
	var cred string
	var count, created, used int64
	if err := s.Scan(&p.ID, &p.AccountID, &p.Name, &cred, &count, &created, &used); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("account: passkey: %w", err)
	}
	if err := json.Unmarshal([]byte(cred), &p.Credential); err != nil {
		return nil, fmt.Errorf("account: passkey %s: %w", p.ID, err)
	}
	p.SignCount = uint32(count)
	p.CreatedAt, p.LastUsedAt = store.FromMillis(created), store.FromMillis(used)
	return &p, nil
}

// Passkeys implements PasskeyStore.
func (s *SQL) Passkeys(ctx context.Context, accountID string) ([]*Passkey, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+passkeyCols+` FROM gatehouse_account_passkeys WHERE account_id = ? ORDER BY created_at, id`), accountID)
	if err != nil {
		return nil, fmt.Errorf("account: passkeys: %w", err)
	}
	defer rows.Close()
	var out []*Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PasskeyCount implements PasskeyStore.
func (s *SQL) PasskeyCount(ctx context.Context, accountID string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM gatehouse_account_passkeys WHERE account_id = ?`), accountID).Scan(&n); err != nil {
		return 0, fmt.Errorf("account: passkeys: %w", err)
	}
	return n, nil
}

// PutPasskey implements PasskeyStore.
func (s *SQL) PutPasskey(ctx context.Context, p *Passkey) error {
	cred, err := json.Marshal(p.Credential)
	if err != nil {
		return fmt.Errorf("account: passkey: %w", err)
	}
	_, err = s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_account_passkeys (`+passkeyCols+`) VALUES (?,?,?,?,?,?,?)`),
		p.ID, p.AccountID, p.Name, string(cred), int64(p.SignCount), store.Millis(p.CreatedAt), store.Millis(p.LastUsedAt))
	if err != nil {
		if isUniqueViolation(err) {
			return ErrDuplicate
		}
		return fmt.Errorf("account: put passkey: %w", err)
	}
	return nil
}

// UsePasskey implements PasskeyStore.
func (s *SQL) UsePasskey(ctx context.Context, p *Passkey, count uint32, now time.Time) (bool, error) {
	cred, err := json.Marshal(p.Credential)
	if err != nil {
		return false, fmt.Errorf("account: passkey: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE gatehouse_account_passkeys SET sign_count = ?, credential = ?, last_used_at = ?
		WHERE id = ? AND account_id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`),
		int64(count), string(cred), store.Millis(now), p.ID, p.AccountID, int64(count), int64(count))
	if err != nil {
		return false, fmt.Errorf("account: use passkey: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeletePasskey implements PasskeyStore.
func (s *SQL) DeletePasskey(ctx context.Context, accountID, id string) error {
	return s.exec1(ctx, `DELETE FROM gatehouse_account_passkeys WHERE account_id = ? AND id = ?`, accountID, id)
}

// PutCeremony implements PasskeyStore.
func (s *SQL) PutCeremony(ctx context.Context, c *Ceremony) error {
	sess, err := json.Marshal(c.Session)
	if err != nil {
		return fmt.Errorf("account: ceremony: %w", err)
	}
	_, err = s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_account_webauthn (handle, kind, account_id, browser, mfa_token, session, expires_at, created_at) VALUES (?,?,?,?,?,?,?,?)`),
		c.Handle, c.Kind, c.AccountID, c.Browser, c.MFAToken, string(sess), store.Millis(c.ExpiresAt), store.Millis(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("account: put ceremony: %w", err)
	}
	return nil
}

// TakeCeremony implements PasskeyStore.
func (s *SQL) TakeCeremony(ctx context.Context, handle string) (*Ceremony, error) {
	var c Ceremony
	var sess string
	var exp, created int64
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_account_webauthn WHERE handle = ?
		RETURNING handle, kind, account_id, browser, mfa_token, session, expires_at, created_at`), handle).
		Scan(&c.Handle, &c.Kind, &c.AccountID, &c.Browser, &c.MFAToken, &sess, &exp, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: take ceremony: %w", err)
	}
	if err := json.Unmarshal([]byte(sess), &c.Session); err != nil {
		return nil, fmt.Errorf("account: ceremony: %w", err)
	}
	c.ExpiresAt, c.CreatedAt = store.FromMillis(exp), store.FromMillis(created)
	return &c, nil
}

// DeleteExpiredCeremonies implements PasskeyStore.
func (s *SQL) DeleteExpiredCeremonies(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_account_webauthn WHERE expires_at < ?`), store.Millis(now))
	if err != nil {
		return 0, fmt.Errorf("account: delete expired ceremonies: %w", err)
	}
	return res.RowsAffected()
}
