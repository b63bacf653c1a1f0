package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Errors of the store.
var (
	ErrNotFound = errors.New("console: not found")
	ErrExists   = errors.New("console: an administrator with that email address already exists")
	// ErrSetupUsed is a setup link that is unknown, already used or expired, or an install that has an
	// administrator already.
	ErrSetupUsed = errors.New("console: the setup link is invalid, used or expired")
)

// Admin is a console administrator.
type Admin struct {
	ID           string
	Email        string
	EmailKey     string
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Session is a signed-in browser. IDHash is the SHA-256 of the session id the cookie carries.
type Session struct {
	IDHash    string
	AdminID   string
	CreatedAt time.Time
	SeenAt    time.Time
	ExpiresAt time.Time // absolute end
	Remote    string
	Agent     string
}

// Store keeps administrators, their sessions and setup links. SQL implements it on SQLite and
// PostgreSQL.
type Store interface {
	CountAdmins(ctx context.Context) (int, error)
	CreateAdmin(ctx context.Context, a *Admin) error
	AdminByEmailKey(ctx context.Context, key string) (*Admin, error)
	AdminByID(ctx context.Context, id string) (*Admin, error)
	ListAdmins(ctx context.Context) ([]*Admin, error)

	PutSetupToken(ctx context.Context, hash string, now, expires time.Time) error
	// SetupAdmin consumes the setup token (unused, unexpired) and creates a, in one transaction, only
	// while there is no administrator; ErrSetupUsed otherwise.
	SetupAdmin(ctx context.Context, tokenHash string, a *Admin, now time.Time) error
	// SetupTokenValid reports whether the token is unused and unexpired (the form is shown only then).
	SetupTokenValid(ctx context.Context, hash string, now time.Time) (bool, error)

	CreateSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, idHash string) (*Session, error)
	// TouchSession records activity (seen_at) at most once per call.
	TouchSession(ctx context.Context, idHash string, now time.Time) error
	DeleteSession(ctx context.Context, idHash string) error
	DeleteAdminSessions(ctx context.Context, adminID string) (int64, error)
	AdminSessions(ctx context.Context, adminID string) ([]*Session, error)
	DeleteExpired(ctx context.Context, now time.Time, idle time.Duration) (int64, error)
}

// SQL is the console's store on a SQL database.
type SQL struct{ db *store.DB }

var _ Store = (*SQL)(nil)

// NewSQL returns the store on db (migration 80).
func NewSQL(db *store.DB) *SQL { return &SQL{db: db} }

func (s *SQL) q(query string) string { return s.db.Rebind(query) }

func isUnique(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "unique") || strings.Contains(m, "duplicate key")
}

// CountAdmins implements Store.
func (s *SQL) CountAdmins(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM gatehouse_console_admins`).Scan(&n); err != nil {
		return 0, fmt.Errorf("console: count admins: %w", err)
	}
	return n, nil
}

const adminCols = `id, email, email_key, password_hash, disabled, created_at, updated_at`

func scanAdmin(row interface{ Scan(...any) error }) (*Admin, error) {
	var a Admin
	var dis int
	var c, u int64
	if err := row.Scan(&a.ID, &a.Email, &a.EmailKey, &a.PasswordHash, &dis, &c, &u); err != nil {
		return nil, err
	}
	a.Disabled, a.CreatedAt, a.UpdatedAt = dis != 0, store.FromMillis(c), store.FromMillis(u)
	return &a, nil
}

func insertAdmin(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q func(string) string, a *Admin) error {
	_, err := ex.ExecContext(ctx, q(`INSERT INTO gatehouse_console_admins (`+adminCols+`) VALUES (?,?,?,?,?,?,?)`),
		a.ID, a.Email, a.EmailKey, a.PasswordHash, store.BoolInt(a.Disabled), store.Millis(a.CreatedAt), store.Millis(a.UpdatedAt))
	if err != nil {
		if isUnique(err) {
			return ErrExists
		}
		return fmt.Errorf("console: create admin: %w", err)
	}
	return nil
}

// CreateAdmin implements Store.
func (s *SQL) CreateAdmin(ctx context.Context, a *Admin) error { return insertAdmin(ctx, s.db, s.q, a) }

func (s *SQL) admin(ctx context.Context, where string, arg any) (*Admin, error) {
	a, err := scanAdmin(s.db.QueryRowContext(ctx, s.q(`SELECT `+adminCols+` FROM gatehouse_console_admins WHERE `+where), arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("console: admin: %w", err)
	}
	return a, nil
}

// AdminByEmailKey implements Store.
func (s *SQL) AdminByEmailKey(ctx context.Context, key string) (*Admin, error) {
	return s.admin(ctx, `email_key = ?`, key)
}

// AdminByID implements Store.
func (s *SQL) AdminByID(ctx context.Context, id string) (*Admin, error) {
	return s.admin(ctx, `id = ?`, id)
}

// ListAdmins implements Store.
func (s *SQL) ListAdmins(ctx context.Context) ([]*Admin, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+adminCols+` FROM gatehouse_console_admins ORDER BY email_key`)
	if err != nil {
		return nil, fmt.Errorf("console: list admins: %w", err)
	}
	defer rows.Close()
	var out []*Admin
	for rows.Next() {
		a, err := scanAdmin(rows)
		if err != nil {
			return nil, fmt.Errorf("console: list admins: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// PutSetupToken implements Store.
func (s *SQL) PutSetupToken(ctx context.Context, hash string, now, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gatehouse_console_setup (token_hash, created_at, expires_at, used_at) VALUES (?,?,?,0)`),
		hash, store.Millis(now), store.Millis(expires))
	if err != nil {
		return fmt.Errorf("console: setup token: %w", err)
	}
	return nil
}

// SetupTokenValid implements Store.
func (s *SQL) SetupTokenValid(ctx context.Context, hash string, now time.Time) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM gatehouse_console_setup WHERE token_hash = ? AND used_at = 0 AND expires_at > ?`),
		hash, store.Millis(now)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("console: setup token: %w", err)
	}
	return n == 1, nil
}

// SetupAdmin implements Store. The token is consumed with a conditional UPDATE (one winner among
// concurrent requests and instances); the administrator count is checked in the same transaction.
// On PostgreSQL the transaction is SERIALIZABLE so two different tokens cannot both create the first
// administrator.
func (s *SQL) SetupAdmin(ctx context.Context, tokenHash string, a *Admin, now time.Time) (err error) {
	var opts *sql.TxOptions
	if s.db.Dialect == store.Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("console: setup: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback() //nolint:errcheck
		}
	}()
	res, err := tx.ExecContext(ctx, s.q(`UPDATE gatehouse_console_setup SET used_at = ? WHERE token_hash = ? AND used_at = 0 AND expires_at > ?`),
		store.Millis(now), tokenHash, store.Millis(now))
	if err != nil {
		return fmt.Errorf("console: setup: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return ErrSetupUsed
	}
	var count int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM gatehouse_console_admins`).Scan(&count); err != nil {
		return fmt.Errorf("console: setup: %w", err)
	}
	if count > 0 {
		return ErrSetupUsed
	}
	if err := insertAdmin(ctx, tx, s.q, a); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("console: setup: %w", err)
	}
	return nil
}

const sessionCols = `id_hash, admin_id, created_at, seen_at, expires_at, remote, agent`

func scanSession(row interface{ Scan(...any) error }) (*Session, error) {
	var x Session
	var c, seen, e int64
	if err := row.Scan(&x.IDHash, &x.AdminID, &c, &seen, &e, &x.Remote, &x.Agent); err != nil {
		return nil, err
	}
	x.CreatedAt, x.SeenAt, x.ExpiresAt = store.FromMillis(c), store.FromMillis(seen), store.FromMillis(e)
	return &x, nil
}

// CreateSession implements Store.
func (s *SQL) CreateSession(ctx context.Context, x *Session) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO gatehouse_console_sessions (`+sessionCols+`) VALUES (?,?,?,?,?,?,?)`),
		x.IDHash, x.AdminID, store.Millis(x.CreatedAt), store.Millis(x.SeenAt), store.Millis(x.ExpiresAt), x.Remote, x.Agent)
	if err != nil {
		return fmt.Errorf("console: create session: %w", err)
	}
	return nil
}

// Session implements Store.
func (s *SQL) Session(ctx context.Context, idHash string) (*Session, error) {
	x, err := scanSession(s.db.QueryRowContext(ctx, s.q(`SELECT `+sessionCols+` FROM gatehouse_console_sessions WHERE id_hash = ?`), idHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("console: session: %w", err)
	}
	return x, nil
}

// TouchSession implements Store.
func (s *SQL) TouchSession(ctx context.Context, idHash string, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE gatehouse_console_sessions SET seen_at = ? WHERE id_hash = ?`), store.Millis(now), idHash); err != nil {
		return fmt.Errorf("console: touch session: %w", err)
	}
	return nil
}

// DeleteSession implements Store.
func (s *SQL) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM gatehouse_console_sessions WHERE id_hash = ?`), idHash); err != nil {
		return fmt.Errorf("console: delete session: %w", err)
	}
	return nil
}

// DeleteAdminSessions implements Store.
func (s *SQL) DeleteAdminSessions(ctx context.Context, adminID string) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM gatehouse_console_sessions WHERE admin_id = ?`), adminID)
	if err != nil {
		return 0, fmt.Errorf("console: delete sessions: %w", err)
	}
	return res.RowsAffected()
}

// AdminSessions implements Store.
func (s *SQL) AdminSessions(ctx context.Context, adminID string) ([]*Session, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+sessionCols+` FROM gatehouse_console_sessions WHERE admin_id = ? ORDER BY seen_at DESC`), adminID)
	if err != nil {
		return nil, fmt.Errorf("console: sessions: %w", err)
	}
	defer rows.Close()
	var out []*Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("console: sessions: %w", err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// DeleteExpired implements Store: sessions past their absolute end or idle for longer than idle.
func (s *SQL) DeleteExpired(ctx context.Context, now time.Time, idle time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM gatehouse_console_sessions WHERE expires_at <= ? OR seen_at <= ?`),
		store.Millis(now), store.Millis(now.Add(-idle)))
	if err != nil {
		return 0, fmt.Errorf("console: expire sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM gatehouse_console_setup WHERE expires_at <= ?`), store.Millis(now.Add(-24*time.Hour))); err != nil {
		return n, fmt.Errorf("console: expire setup links: %w", err)
	}
	return n, nil
}
