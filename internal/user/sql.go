package user

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// SQL is the Store on Gatehouse's database (SQLite or PostgreSQL; migration 10).
type SQL struct {
	db *store.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// NewSQL returns the SQL store.
func NewSQL(db *store.DB) *SQL { return &SQL{db: db, stmts: map[string]*sql.Stmt{}} }

// prepared returns a statement prepared once (for the hot login path: parsing SQL costs more than
// running it on SQLite). Statements live as long as the database handle.
func (s *SQL) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, err
	}
	s.stmts[query] = st
	return st, nil
}

func (s *SQL) q(query string) string { return s.db.Rebind(query) }

const userCols = `id, provider, disabled, created_at, updated_at, last_login_at`

func scanUser(row interface{ Scan(...any) error }) (*User, error) {
	var u User
	var disabled int
	var c, up, ll int64
	if err := row.Scan(&u.ID, &u.Provider, &disabled, &c, &up, &ll); err != nil {
		return nil, err
	}
	u.Disabled = disabled != 0
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = store.FromMillis(c), store.FromMillis(up), store.FromMillis(ll)
	return &u, nil
}

// derivedID is the id given to a new user whose natural id ("<Provider>:<subject>") is already taken
// by another identity (two issuers under one provider name with the same subject): never link those.
func derivedID(in LinkInput) string {
	h := sha256.Sum256([]byte(in.Issuer + "\x00" + in.Subject))
	return in.Provider + ":" + hex.EncodeToString(h[:16])
}

// Link implements Store.
func (s *SQL) Link(ctx context.Context, in LinkInput, sealedTokens string, now time.Time) (*User, error) {
	claims, err := json.Marshal(in.Claims)
	if err != nil {
		return nil, fmt.Errorf("user: claims: %w", err)
	}
	// Fast path for a returning user: nothing changed and the last login was recorded less than a
	// minute ago, so no write (and no fsync) is needed. last_login_at is accurate to a minute.
	if sealedTokens == "" {
		if u, ok, err := s.unchanged(ctx, in, string(claims), now); err != nil || ok {
			return u, err
		}
	}
	for attempt := 0; attempt < 4; attempt++ {
		u, retry, err := s.link(ctx, in, string(claims), sealedTokens, store.Millis(now))
		if err != nil || !retry {
			return u, err
		}
	}
	return nil, errors.New("user: link: too much contention")
}

const lastLoginResolution = time.Minute

func (s *SQL) unchanged(ctx context.Context, in LinkInput, claims string, now time.Time) (*User, bool, error) {
	stmt, err := s.prepared(ctx, `SELECT i.claims, u.id, u.provider, u.disabled, u.created_at, u.updated_at, u.last_login_at
		FROM gatehouse_identities i JOIN gatehouse_users u ON u.id = i.user_id WHERE i.issuer = ? AND i.subject = ?`)
	if err != nil {
		return nil, false, fmt.Errorf("user: link: %w", err)
	}
	row := stmt.QueryRowContext(ctx, in.Issuer, in.Subject)
	var stored string
	var u User
	var disabled int
	var c, up, ll int64
	err = row.Scan(&stored, &u.ID, &u.Provider, &disabled, &c, &up, &ll)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("user: link: %w", err)
	}
	if stored != claims || now.Sub(store.FromMillis(ll)) >= lastLoginResolution || now.Before(store.FromMillis(ll)) {
		return nil, false, nil
	}
	u.Disabled = disabled != 0
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = store.FromMillis(c), store.FromMillis(up), store.FromMillis(ll)
	return &u, true, nil
}

func (s *SQL) link(ctx context.Context, in LinkInput, claims, sealed string, now int64) (*User, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("user: link: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	var uid string
	var aliasErr error
	err = tx.QueryRowContext(ctx, s.q(`SELECT user_id FROM gatehouse_identities WHERE issuer = ? AND subject = ?`), in.Issuer, in.Subject).Scan(&uid)
	switch {
	case err == nil:
		if sealed != "" {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE gatehouse_identities SET claims = ?, tokens = ?, updated_at = ? WHERE issuer = ? AND subject = ?`), claims, sealed, now, in.Issuer, in.Subject)
		} else {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE gatehouse_identities SET claims = ?, updated_at = ? WHERE issuer = ? AND subject = ?`), claims, now, in.Issuer, in.Subject)
		}
		if err != nil {
			return nil, false, fmt.Errorf("user: link: %w", err)
		}
	case errors.Is(err, sql.ErrNoRows) && s.adoptAlias(ctx, tx, in, claims, sealed, now, &uid, &aliasErr):
		if aliasErr != nil {
			return nil, false, aliasErr
		}
	case errors.Is(err, sql.ErrNoRows):
		uid = in.UserID
		var one int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM gatehouse_users WHERE id = ?`), uid).Scan(&one); err == nil {
			uid = derivedID(in)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("user: link: %w", err)
		}
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO gatehouse_users (id, provider, disabled, created_at, updated_at, last_login_at) VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING`), uid, in.Provider, now, now, now)
		if err != nil {
			return nil, false, fmt.Errorf("user: link: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil, true, nil // a concurrent login created it: start over
		}
		res, err = tx.ExecContext(ctx, s.q(`INSERT INTO gatehouse_identities (issuer, subject, provider, user_id, claims, tokens, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (issuer, subject) DO NOTHING`),
			in.Issuer, in.Subject, in.Provider, uid, claims, sealed, now, now)
		if err != nil {
			return nil, false, fmt.Errorf("user: link: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil, true, nil
		}
	default:
		return nil, false, fmt.Errorf("user: link: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE gatehouse_users SET last_login_at = ?, updated_at = ? WHERE id = ?`), now, now, uid); err != nil {
		return nil, false, fmt.Errorf("user: link: %w", err)
	}
	u, err := scanUser(tx.QueryRowContext(ctx, s.q(`SELECT `+userCols+` FROM gatehouse_users WHERE id = ?`), uid))
	if err != nil {
		return nil, false, fmt.Errorf("user: link: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, true, nil
	}
	return u, false, nil
}

// adoptAlias moves an identity stored under an earlier spelling of the issuer (in.IssuerAliases) to
// the canonical one, keeping its user; it reports whether it found one. The sealed provider tokens
// are bound to the issuer's spelling, so they are replaced by this login's (or dropped).
func (s *SQL) adoptAlias(ctx context.Context, tx *sql.Tx, in LinkInput, claims, sealed string, now int64, uid *string, errp *error) bool {
	for _, alias := range in.IssuerAliases {
		err := tx.QueryRowContext(ctx, s.q(`SELECT user_id FROM gatehouse_identities WHERE issuer = ? AND subject = ?`), alias, in.Subject).Scan(uid)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE gatehouse_identities SET issuer = ?, claims = ?, tokens = ?, updated_at = ? WHERE issuer = ? AND subject = ?`),
				in.Issuer, claims, sealed, now, alias, in.Subject)
		}
		if err != nil {
			*errp = fmt.Errorf("user: link: canonical issuer: %w", err)
		}
		return true
	}
	return false
}

// Get implements Store.
func (s *SQL) Get(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userCols+` FROM gatehouse_users WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("user: get: %w", err)
	}
	return u, nil
}

// List implements Store.
func (s *SQL) List(ctx context.Context, after string, limit int) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+userCols+` FROM gatehouse_users WHERE id > ? ORDER BY id LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("user: list: %w", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("user: list: %w", err)
		}
		out = append(out, *u)
	}
	return out, rows.Err()
}

// Identities implements Store.
func (s *SQL) Identities(ctx context.Context, userID string) ([]Identity, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT provider, issuer, subject, user_id, claims, tokens <> '', created_at, updated_at FROM gatehouse_identities WHERE user_id = ? ORDER BY created_at, issuer, subject`), userID)
	if err != nil {
		return nil, fmt.Errorf("user: identities: %w", err)
	}
	defer rows.Close()
	out := []Identity{}
	for rows.Next() {
		var id Identity
		var claims string
		var c, u int64
		if err := rows.Scan(&id.Provider, &id.Issuer, &id.Subject, &id.UserID, &claims, &id.HasTokens, &c, &u); err != nil {
			return nil, fmt.Errorf("user: identities: %w", err)
		}
		if err := json.Unmarshal([]byte(claims), &id.Claims); err != nil {
			return nil, fmt.Errorf("user: identities: claims: %w", err)
		}
		id.CreatedAt, id.UpdatedAt = store.FromMillis(c), store.FromMillis(u)
		out = append(out, id)
	}
	return out, rows.Err()
}

// SealedTokens implements Store.
func (s *SQL) SealedTokens(ctx context.Context, issuer, subject string) (string, error) {
	var t string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT tokens FROM gatehouse_identities WHERE issuer = ? AND subject = ?`), issuer, subject).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("user: tokens: %w", err)
	}
	return t, nil
}

// SetDisabled implements Store: it flips the flag and, in the same transaction, sets the user's
// revocation cut-off (disabled: every token; enabled again: tokens issued before now stay revoked).
func (s *SQL) SetDisabled(ctx context.Context, id string, disabled bool, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("user: disable: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	flag, cut := 0, now.Truncate(time.Millisecond)
	if disabled {
		flag, cut = 1, disabledCutoff
	}
	res, err := tx.ExecContext(ctx, s.q(`UPDATE gatehouse_users SET disabled = ?, updated_at = ? WHERE id = ?`), flag, store.Millis(now), id)
	if err != nil {
		return fmt.Errorf("user: disable: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO gatehouse_revocations (user_id, not_before, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET not_before = excluded.not_before, updated_at = excluded.updated_at`), id, store.Millis(cut), store.Millis(now)); err != nil {
		return fmt.Errorf("user: disable: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("user: disable: %w", err)
	}
	return nil
}

// Revoke implements Store: it raises the user's cut-off to notBefore (never lowers it, so revoking a
// disabled user's sessions keeps them disabled).
func (s *SQL) Revoke(ctx context.Context, userID string, notBefore, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gatehouse_revocations (user_id, not_before, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET not_before = CASE WHEN excluded.not_before > gatehouse_revocations.not_before
			THEN excluded.not_before ELSE gatehouse_revocations.not_before END, updated_at = excluded.updated_at`), userID, store.Millis(notBefore), store.Millis(now))
	if err != nil {
		return fmt.Errorf("user: revoke: %w", err)
	}
	return nil
}

// RevocationsSince implements Store.
func (s *SQL) RevocationsSince(ctx context.Context, since time.Time) ([]Revocation, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT user_id, not_before, updated_at FROM gatehouse_revocations WHERE updated_at >= ?`), store.Millis(since))
	if err != nil {
		return nil, fmt.Errorf("user: revocations: %w", err)
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var nb, up int64
		if err := rows.Scan(&r.UserID, &nb, &up); err != nil {
			return nil, fmt.Errorf("user: revocations: %w", err)
		}
		r.NotBefore, r.UpdatedAt = store.FromMillis(nb), store.FromMillis(up)
		out = append(out, r)
	}
	return out, rows.Err()
}

// InsertRefresh implements Store.
func (s *SQL) InsertRefresh(ctx context.Context, r RefreshRecord) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gatehouse_refresh_tokens (token_hash, family, user_id, audience, created_at, expires_at, family_expires_at, used_at, revoked) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0)`),
		r.Hash, r.Family, r.UserID, r.Audience, store.Millis(r.CreatedAt), store.Millis(r.ExpiresAt), store.Millis(r.FamilyExpiresAt))
	if err != nil {
		return fmt.Errorf("user: refresh token: %w", err)
	}
	return nil
}

// UseRefresh implements Store.
func (s *SQL) UseRefresh(ctx context.Context, hash string, now time.Time) (*RefreshRecord, error) {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE gatehouse_refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at = 0 AND revoked = 0`), store.Millis(now), hash)
	if err != nil {
		return nil, fmt.Errorf("user: refresh token: %w", err)
	}
	n, _ := res.RowsAffected()
	var r RefreshRecord
	var c, e, fe, u int64
	var revoked int
	err = s.db.QueryRowContext(ctx, s.q(`SELECT token_hash, family, user_id, audience, created_at, expires_at, family_expires_at, used_at, revoked FROM gatehouse_refresh_tokens WHERE token_hash = ?`), hash).
		Scan(&r.Hash, &r.Family, &r.UserID, &r.Audience, &c, &e, &fe, &u, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInvalidRefresh
	}
	if err != nil {
		return nil, fmt.Errorf("user: refresh token: %w", err)
	}
	r.CreatedAt, r.ExpiresAt, r.FamilyExpiresAt, r.UsedAt, r.Revoked = store.FromMillis(c), store.FromMillis(e), store.FromMillis(fe), store.FromMillis(u), revoked != 0
	if n != 1 {
		return &r, ErrRefreshReused
	}
	return &r, nil
}

// RevokeFamily implements Store.
func (s *SQL) RevokeFamily(ctx context.Context, family string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE gatehouse_refresh_tokens SET revoked = 1 WHERE family = ?`), family); err != nil {
		return fmt.Errorf("user: revoke refresh family: %w", err)
	}
	return nil
}

// RevokeUserRefresh implements Store.
func (s *SQL) RevokeUserRefresh(ctx context.Context, userID string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE gatehouse_refresh_tokens SET revoked = 1 WHERE user_id = ?`), userID); err != nil {
		return fmt.Errorf("user: revoke refresh tokens: %w", err)
	}
	return nil
}

// ConsumeOnce implements Store. Expired entries are purged on the way.
func (s *SQL) ConsumeOnce(ctx context.Context, id string, expires, now time.Time) (bool, error) {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM gatehouse_login_states WHERE expires_at < ?`), store.Millis(now)); err != nil {
		return false, fmt.Errorf("user: consume: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gatehouse_login_states (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`), id, store.Millis(expires))
	if err != nil {
		return false, fmt.Errorf("user: consume: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
