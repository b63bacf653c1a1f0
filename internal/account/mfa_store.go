package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// TOTP is an account's authenticator-app enrolment. Secret is sealed (Options.Sealer); the enrolment
// counts as a second factor only once ConfirmedAt is set (the first code proved the app has it).
type TOTP struct {
	AccountID   string
	Secret      string // sealed
	ConfirmedAt time.Time
	// LastStep is the last time step whose code was accepted: codes of it and earlier steps are
	// refused (replay protection, shared by every instance through the database).
	LastStep  int64
	CreatedAt time.Time
}

// MFAStore persists second factors. The SQL store implements it.
type MFAStore interface {
	// PeekToken returns the token with this hash and purpose without spending it; ErrNotFound if none.
	PeekToken(ctx context.Context, hash string, p Purpose) (*Token, error)

	TOTP(ctx context.Context, accountID string) (*TOTP, error)
	// PutPendingTOTP stores a new unconfirmed enrolment, replacing an unconfirmed one; ErrMFAEnrolled
	// when a confirmed one exists.
	PutPendingTOTP(ctx context.Context, t TOTP) error
	// AdvanceTOTP records step as used (and the secret re-sealed) only if it is after the last used
	// step, confirming the enrolment when confirm is set. It reports whether it did: false means a
	// concurrent request used this step or a later one first (or the enrolment changed).
	AdvanceTOTP(ctx context.Context, accountID string, step int64, sealed string, confirm bool, now time.Time) (bool, error)
	DeleteTOTP(ctx context.Context, accountID string) error

	// ReplaceRecoveryCodes removes the account's codes and stores these hashes, in one transaction.
	ReplaceRecoveryCodes(ctx context.Context, accountID string, hashes []string, now time.Time) error
	// UseRecoveryCode marks the code used. It returns ErrNotFound for a code the account does not
	// have and ErrRecoveryCodeUsed for one already used (one conditional UPDATE: two concurrent uses
	// cannot both succeed).
	UseRecoveryCode(ctx context.Context, accountID, hash string, now time.Time) error
	// RecoveryCodesLeft counts the unused codes.
	RecoveryCodesLeft(ctx context.Context, accountID string) (int, error)
	// ResetSecondFactors removes the authenticator app, the recovery codes and the passkeys of the
	// account, and its pending MFA challenges, in one transaction.
	ResetSecondFactors(ctx context.Context, accountID string) error
}

// ResetSecondFactors implements MFAStore.
func (s *SQL) ResetSecondFactors(ctx context.Context, accountID string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("account: reset second factors: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	for _, q := range []string{
		`DELETE FROM gatehouse_account_totp WHERE account_id = ?`,
		`DELETE FROM gatehouse_account_recovery WHERE account_id = ?`,
		`DELETE FROM gatehouse_account_passkeys WHERE account_id = ?`,
		`DELETE FROM gatehouse_account_tokens WHERE account_id = ? AND purpose = 'mfa'`,
	} {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(q), accountID); err != nil {
			return fmt.Errorf("account: reset second factors: %w", err)
		}
	}
	return tx.Commit()
}

// PeekToken implements MFAStore.
func (s *SQL) PeekToken(ctx context.Context, hash string, p Purpose) (*Token, error) {
	var t Token
	var exp, created int64
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT token_hash, purpose, account_id, binding, expires_at, created_at
		FROM gatehouse_account_tokens WHERE token_hash = ? AND purpose = ?`), hash, string(p)).
		Scan(&t.Hash, &t.Purpose, &t.AccountID, &t.Binding, &exp, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: peek token: %w", err)
	}
	t.ExpiresAt, t.CreatedAt = store.FromMillis(exp), store.FromMillis(created)
	return &t, nil
}

// TOTP implements MFAStore.
func (s *SQL) TOTP(ctx context.Context, accountID string) (*TOTP, error) {
	var t TOTP
	var confirmed, created int64
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT account_id, secret, confirmed_at, last_step, created_at FROM gatehouse_account_totp WHERE account_id = ?`), accountID).
		Scan(&t.AccountID, &t.Secret, &confirmed, &t.LastStep, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: totp: %w", err)
	}
	t.ConfirmedAt, t.CreatedAt = store.FromMillis(confirmed), store.FromMillis(created)
	return &t, nil
}

// PutPendingTOTP implements MFAStore.
func (s *SQL) PutPendingTOTP(ctx context.Context, t TOTP) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_account_totp (account_id, secret, confirmed_at, last_step, created_at) VALUES (?,?,0,0,?)
		ON CONFLICT (account_id) DO UPDATE SET secret = excluded.secret, last_step = 0, created_at = excluded.created_at
		WHERE gatehouse_account_totp.confirmed_at = 0`), t.AccountID, t.Secret, store.Millis(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("account: put totp: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrMFAEnrolled
	}
	return nil
}

// AdvanceTOTP implements MFAStore.
func (s *SQL) AdvanceTOTP(ctx context.Context, accountID string, step int64, sealed string, confirm bool, now time.Time) (bool, error) {
	q := `UPDATE gatehouse_account_totp SET last_step = ?, secret = ? WHERE account_id = ? AND last_step < ? AND confirmed_at > 0`
	args := []any{step, sealed, accountID, step}
	if confirm {
		q = `UPDATE gatehouse_account_totp SET last_step = ?, secret = ?, confirmed_at = ? WHERE account_id = ? AND last_step < ? AND confirmed_at = 0`
		args = []any{step, sealed, store.Millis(now), accountID, step}
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return false, fmt.Errorf("account: totp step: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeleteTOTP implements MFAStore.
func (s *SQL) DeleteTOTP(ctx context.Context, accountID string) error {
	return s.exec1(ctx, `DELETE FROM gatehouse_account_totp WHERE account_id = ?`, accountID)
}

// ReplaceRecoveryCodes implements MFAStore.
func (s *SQL) ReplaceRecoveryCodes(ctx context.Context, accountID string, hashes []string, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("account: recovery codes: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_account_recovery WHERE account_id = ?`), accountID); err != nil {
		return fmt.Errorf("account: recovery codes: %w", err)
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_account_recovery (account_id, code_hash, used_at, created_at) VALUES (?,?,0,?)`), accountID, h, store.Millis(now)); err != nil {
			return fmt.Errorf("account: recovery codes: %w", err)
		}
	}
	return tx.Commit()
}

// UseRecoveryCode implements MFAStore.
func (s *SQL) UseRecoveryCode(ctx context.Context, accountID, hash string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE gatehouse_account_recovery SET used_at = ? WHERE account_id = ? AND code_hash = ? AND used_at = 0`), store.Millis(now), accountID, hash)
	if err != nil {
		return fmt.Errorf("account: recovery code: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var used int64
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT used_at FROM gatehouse_account_recovery WHERE account_id = ? AND code_hash = ?`), accountID, hash).Scan(&used)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("account: recovery code: %w", err)
	}
	return ErrRecoveryCodeUsed
}

// RecoveryCodesLeft implements MFAStore.
func (s *SQL) RecoveryCodesLeft(ctx context.Context, accountID string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM gatehouse_account_recovery WHERE account_id = ? AND used_at = 0`), accountID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("account: recovery codes: %w", err)
	}
	return n, nil
}
