package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Account is one email/password account.
type Account struct {
	ID            string
	Email         string // as normalized (local part as typed, domain lower-cased)
	EmailKey      string // lower-cased Email: the uniqueness key
	PasswordHash  string // "" = no password: the account cannot log in until one is set
	PasswordStamp string // random; changes whenever the password is set (binds reset links)
	EmailVerified bool
	Disabled      bool
	LegacyUserID  string // the user id an import brought (e.g. "Custom:1"); used in tokens when set
	UserID        string // the users directory's id, when linked
	CreatedAt     time.Time
	UpdatedAt     time.Time
	LastLoginAt   time.Time
}

// TokenUserID is the user id put in app tokens: the users directory's id once linked, else the
// imported legacy id when there is one (so rows keyed by it keep matching), else "custom:<id>".
func (a *Account) TokenUserID() string {
	if a.UserID != "" {
		return a.UserID
	}
	if a.LegacyUserID != "" {
		return a.LegacyUserID
	}
	return "custom:" + a.ID
}

// Purpose is what an emailed token is for.
type Purpose string

// Purposes.
const (
	PurposeReset  Purpose = "reset"
	PurposeVerify Purpose = "verify"
	// PurposeMFA is the challenge between a first factor and the second (binding: the first factor's
	// amr values, space-separated).
	PurposeMFA Purpose = "mfa"
	// PurposeSignIn is an emailed sign-in link (binding: the hash of the asking browser's nonce).
	PurposeSignIn Purpose = "signin"
	// PurposeSignInCode is the emailed code of the same request, keyed by the nonce (binding: the hash
	// of nonce and code).
	PurposeSignInCode Purpose = "signin-code"
)

// Token is a stored emailed-link token (only its SHA-256 is stored).
type Token struct {
	Hash      string
	Purpose   Purpose
	AccountID string
	Binding   string // the password stamp (reset) or email key (verify) it was issued for
	ExpiresAt time.Time
	CreatedAt time.Time
}

// ThrottleRow is the brute-force state of one key.
type ThrottleRow struct {
	Key          string
	Failures     int       // consecutive failures (decays after an idle hour)
	WindowStart  time.Time // start of the current hour window
	WindowCount  int       // failures in the current window
	BlockedUntil time.Time // no attempt before this instant
	LastAt       time.Time // last failure (or, for known-client keys, last success)
}

// Errors of the store.
var (
	ErrNotFound  = errors.New("account: not found")
	ErrDuplicate = errors.New("account: email address or user id already in use")
)

// Store persists accounts, emailed tokens and throttling state. Implementations must be safe for
// concurrent use by several processes sharing the database.
type Store interface {
	// Create inserts a new account; ErrDuplicate when the email key or legacy user id is taken.
	Create(ctx context.Context, a *Account) error
	ByEmailKey(ctx context.Context, key string) (*Account, error)
	ByID(ctx context.Context, id string) (*Account, error)
	// ByTokenUserID finds the account a token's user id names ("custom:<id>" or a legacy id).
	ByTokenUserID(ctx context.Context, uid string) (*Account, error)
	List(ctx context.Context, after string, limit int) ([]*Account, error)
	// SetPassword stores a new hash and stamp, and removes the account's outstanding reset tokens.
	SetPassword(ctx context.Context, id, hash, stamp string, now time.Time) error
	// Rehash replaces the hash only if it is still oldHash (one statement: a crash leaves the old
	// hash, which stays valid). It reports whether it replaced it.
	Rehash(ctx context.Context, id, oldHash, newHash string, now time.Time) (bool, error)
	SetDisabled(ctx context.Context, id string, disabled bool, now time.Time) error
	// SetUserID records the users directory's id of the account.
	SetUserID(ctx context.Context, id, userID string) error
	// Delete removes an account and its tokens (undoing a registration that could not complete).
	Delete(ctx context.Context, id string) error
	SetVerified(ctx context.Context, id, emailKey string, now time.Time) error
	TouchLogin(ctx context.Context, id string, now time.Time) error

	// PutToken stores a token.
	PutToken(ctx context.Context, t Token) error
	// TakeToken deletes and returns the token with this hash and purpose (single use); ErrNotFound
	// if there is none. Expiry and binding are the caller's to check.
	TakeToken(ctx context.Context, hash string, p Purpose) (*Token, error)
	// DeleteExpiredTokens removes tokens that expired before now.
	DeleteExpiredTokens(ctx context.Context, now time.Time) (int64, error)

	// Throttle runs fn on the rows of keys (missing rows come as zero rows with Key set) inside one
	// transaction, then saves the rows fn returns (a nil row deletes the key).
	Throttle(ctx context.Context, keys []string, fn func(rows []ThrottleRow) []*ThrottleRow) error
	// ThrottleRow reads one key (zero row if absent).
	ThrottleRow(ctx context.Context, key string) (ThrottleRow, error)

	MFAStore
	PasskeyStore
}

// SQL is the Store on Gatehouse's database (SQLite or PostgreSQL).
type SQL struct {
	db *store.DB
}

// NewSQL returns the SQL store.
func NewSQL(db *store.DB) *SQL { return &SQL{db: db} }

const accountCols = `id, email, email_key, password_hash, password_stamp, email_verified, disabled, COALESCE(legacy_user_id, ''), COALESCE(user_id, ''), created_at, updated_at, last_login_at`

type scanner interface{ Scan(dest ...any) error }

func scanAccount(s scanner) (*Account, error) {
	var a Account
	var verified, disabled int
	var created, updated, last int64
	if err := s.Scan(&a.ID, &a.Email, &a.EmailKey, &a.PasswordHash, &a.PasswordStamp, &verified, &disabled, &a.LegacyUserID, &a.UserID, &created, &updated, &last); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("account: %w", err)
	}
	a.EmailVerified, a.Disabled = verified != 0, disabled != 0
	a.CreatedAt, a.UpdatedAt, a.LastLoginAt = store.FromMillis(created), store.FromMillis(updated), store.FromMillis(last)
	return &a, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Create implements Store.
func (s *SQL) Create(ctx context.Context, a *Account) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_accounts (id, email, email_key, password_hash, password_stamp,
		email_verified, disabled, legacy_user_id, user_id, created_at, updated_at, last_login_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`),
		a.ID, a.Email, a.EmailKey, a.PasswordHash, a.PasswordStamp, store.BoolInt(a.EmailVerified), store.BoolInt(a.Disabled),
		nullable(a.LegacyUserID), nullable(a.UserID), store.Millis(a.CreatedAt), store.Millis(a.UpdatedAt), store.Millis(a.LastLoginAt))
	if err != nil {
		if isUniqueViolation(err) {
			return ErrDuplicate
		}
		return fmt.Errorf("account: create: %w", err)
	}
	return nil
}

// isUniqueViolation recognises a unique-constraint failure on both databases.
func isUniqueViolation(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "duplicate key value")
}

func (s *SQL) one(ctx context.Context, where string, arg any) (*Account, error) {
	return scanAccount(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+accountCols+` FROM gatehouse_accounts WHERE `+where), arg))
}

// ByEmailKey implements Store.
func (s *SQL) ByEmailKey(ctx context.Context, key string) (*Account, error) {
	return s.one(ctx, `email_key = ?`, key)
}

// ByID implements Store.
func (s *SQL) ByID(ctx context.Context, id string) (*Account, error) { return s.one(ctx, `id = ?`, id) }

// ByTokenUserID implements Store.
func (s *SQL) ByTokenUserID(ctx context.Context, uid string) (*Account, error) {
	if a, err := s.one(ctx, `user_id = ?`, uid); err == nil || !errors.Is(err, ErrNotFound) {
		return a, err
	}
	if id, ok := strings.CutPrefix(uid, "custom:"); ok {
		a, err := s.ByID(ctx, id)
		if err == nil && a.LegacyUserID == "" && a.UserID == "" {
			return a, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return s.one(ctx, `legacy_user_id = ?`, uid)
}

// List implements Store: accounts ordered by id, after the given id.
func (s *SQL) List(ctx context.Context, after string, limit int) ([]*Account, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+accountCols+` FROM gatehouse_accounts WHERE id > ? ORDER BY id LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("account: list: %w", err)
	}
	defer rows.Close()
	var out []*Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *SQL) exec1(ctx context.Context, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetPassword implements Store.
func (s *SQL) SetPassword(ctx context.Context, id, hash, stamp string, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE gatehouse_accounts SET password_hash = ?, password_stamp = ?, updated_at = ? WHERE id = ?`), hash, stamp, store.Millis(now), id)
	if err != nil {
		return fmt.Errorf("account: set password: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_account_tokens WHERE account_id = ? AND purpose = ?`), id, string(PurposeReset)); err != nil {
		return fmt.Errorf("account: set password: %w", err)
	}
	return tx.Commit()
}

// Rehash implements Store.
func (s *SQL) Rehash(ctx context.Context, id, oldHash, newHash string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE gatehouse_accounts SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?`), newHash, store.Millis(now), id, oldHash)
	if err != nil {
		return false, fmt.Errorf("account: rehash: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetDisabled implements Store.
func (s *SQL) SetDisabled(ctx context.Context, id string, disabled bool, now time.Time) error {
	return s.exec1(ctx, `UPDATE gatehouse_accounts SET disabled = ?, updated_at = ? WHERE id = ?`, store.BoolInt(disabled), store.Millis(now), id)
}

// SetVerified implements Store: only while the address is still emailKey.
func (s *SQL) SetVerified(ctx context.Context, id, emailKey string, now time.Time) error {
	return s.exec1(ctx, `UPDATE gatehouse_accounts SET email_verified = 1, updated_at = ? WHERE id = ? AND email_key = ?`, store.Millis(now), id, emailKey)
}

// SetUserID implements Store.
func (s *SQL) SetUserID(ctx context.Context, id, userID string) error {
	return s.exec1(ctx, `UPDATE gatehouse_accounts SET user_id = ? WHERE id = ?`, userID, id)
}

// Delete implements Store.
func (s *SQL) Delete(ctx context.Context, id string) error {
	return s.exec1(ctx, `DELETE FROM gatehouse_accounts WHERE id = ?`, id)
}

// TouchLogin implements Store.
func (s *SQL) TouchLogin(ctx context.Context, id string, now time.Time) error {
	return s.exec1(ctx, `UPDATE gatehouse_accounts SET last_login_at = ? WHERE id = ?`, store.Millis(now), id)
}

// PutToken implements Store.
func (s *SQL) PutToken(ctx context.Context, t Token) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_account_tokens (token_hash, purpose, account_id, binding, expires_at, created_at) VALUES (?,?,?,?,?,?)`),
		t.Hash, string(t.Purpose), t.AccountID, t.Binding, store.Millis(t.ExpiresAt), store.Millis(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("account: put token: %w", err)
	}
	return nil
}

// TakeToken implements Store: one DELETE ... RETURNING, so two concurrent uses cannot both succeed.
func (s *SQL) TakeToken(ctx context.Context, hash string, p Purpose) (*Token, error) {
	var t Token
	var exp, created int64
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_account_tokens WHERE token_hash = ? AND purpose = ?
		RETURNING token_hash, purpose, account_id, binding, expires_at, created_at`), hash, string(p)).
		Scan(&t.Hash, &t.Purpose, &t.AccountID, &t.Binding, &exp, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: take token: %w", err)
	}
	t.ExpiresAt, t.CreatedAt = store.FromMillis(exp), store.FromMillis(created)
	return &t, nil
}

// DeleteExpiredTokens implements Store.
func (s *SQL) DeleteExpiredTokens(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_account_tokens WHERE expires_at < ?`), store.Millis(now))
	if err != nil {
		return 0, fmt.Errorf("account: delete expired tokens: %w", err)
	}
	return res.RowsAffected()
}

const throttleCols = `key, failures, window_start, window_count, blocked_until, last_at`

func scanThrottle(s scanner) (ThrottleRow, error) {
	var r ThrottleRow
	var ws, bu, la int64
	err := s.Scan(&r.Key, &r.Failures, &ws, &r.WindowCount, &bu, &la)
	r.WindowStart, r.BlockedUntil, r.LastAt = store.FromMillis(ws), store.FromMillis(bu), store.FromMillis(la)
	return r, err
}

// ThrottleRow implements Store.
func (s *SQL) ThrottleRow(ctx context.Context, key string) (ThrottleRow, error) {
	r, err := scanThrottle(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+throttleCols+` FROM gatehouse_account_throttle WHERE key = ?`), key))
	if errors.Is(err, sql.ErrNoRows) {
		return ThrottleRow{Key: key}, nil
	}
	if err != nil {
		return ThrottleRow{}, fmt.Errorf("account: throttle: %w", err)
	}
	return r, nil
}

// Throttle implements Store. On PostgreSQL the rows are created if missing and locked (FOR UPDATE)
// so concurrent attempts on several instances serialise per key; on SQLite the transaction is BEGIN
// IMMEDIATE, which serialises writers.
func (s *SQL) Throttle(ctx context.Context, keys []string, fn func(rows []ThrottleRow) []*ThrottleRow) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("account: throttle: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	rows := make([]ThrottleRow, len(keys))
	for i, k := range keys {
		q := `SELECT ` + throttleCols + ` FROM gatehouse_account_throttle WHERE key = ?`
		if s.db.Dialect == store.Postgres {
			if _, err := tx.ExecContext(ctx, `INSERT INTO gatehouse_account_throttle (`+throttleCols+`) VALUES ($1,0,0,0,0,0) ON CONFLICT (key) DO NOTHING`, k); err != nil {
				return fmt.Errorf("account: throttle: %w", err)
			}
			q += ` FOR UPDATE`
		}
		r, err := scanThrottle(tx.QueryRowContext(ctx, s.db.Rebind(q), k))
		if errors.Is(err, sql.ErrNoRows) {
			r, err = ThrottleRow{Key: k}, nil
		}
		if err != nil {
			return fmt.Errorf("account: throttle: %w", err)
		}
		rows[i] = r
	}
	out := fn(rows)
	for i, r := range out {
		if r == nil {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_account_throttle WHERE key = ?`), keys[i]); err != nil {
				return fmt.Errorf("account: throttle: %w", err)
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_account_throttle (`+throttleCols+`) VALUES (?,?,?,?,?,?)
			ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start,
			window_count = excluded.window_count, blocked_until = excluded.blocked_until, last_at = excluded.last_at`),
			keys[i], r.Failures, store.Millis(r.WindowStart), r.WindowCount, store.Millis(r.BlockedUntil), store.Millis(r.LastAt)); err != nil {
			return fmt.Errorf("account: throttle: %w", err)
		}
	}
	return tx.Commit()
}

// PruneThrottle removes throttle rows that block nothing and saw no failure for a day (known-client
// rows are kept for their 30 days).
func (s *SQL) PruneThrottle(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_account_throttle WHERE blocked_until < ? AND
		((key NOT LIKE 'k:%' AND last_at < ?) OR (key LIKE 'k:%' AND last_at < ?))`),
		store.Millis(now), store.Millis(now.Add(-25*time.Hour)), store.Millis(now.Add(-31*24*time.Hour)))
	if err != nil {
		return 0, fmt.Errorf("account: prune throttle: %w", err)
	}
	return res.RowsAffected()
}
