// Package scriptstore keeps the script edits made in the console, through the admin API and with the
// CLI in the database, where every instance of a cluster reads them: the current source of each edited
// script (a path below table/, api/, scheduler/ or shared/ of the app's scripts folder), its SHA-256,
// who saved it and when, a revision number, and a bounded history of earlier revisions. The script
// engine lays the edits over the app folder's files (script.Options.Overlay); Editor is the one code
// path that checks, stores, audits and announces a change (notify.Scripts).
package scriptstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Limits.
const (
	// MaxSource bounds one script's source (bytes).
	MaxSource = 1 << 20
	// MaxHistory is how many revisions of one path are kept (the one in force included).
	MaxHistory = 20
	// MaxEdits bounds how many paths may carry an edit at once.
	MaxEdits = 1000
)

// Errors.
var (
	ErrNotFound = errors.New("scriptstore: no such edit")
	ErrTooMany  = fmt.Errorf("scriptstore: at most %d scripts may be edited at once; revert some first", MaxEdits)
	ErrTooLarge = fmt.Errorf("scriptstore: a script is at most %d MiB", MaxSource>>20)
)

// Edit is one saved revision of a script.
type Edit struct {
	Path     string `json:"path"`
	Revision int64  `json:"revision"`
	// Source is the script's text (empty in listings).
	Source string `json:"source,omitempty"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
	// BaseSHA256 is the SHA-256 of the deployed file the edit overrode when it was saved ("" when
	// the app folder had no such file).
	BaseSHA256 string    `json:"baseSha256"`
	SavedBy    string    `json:"savedBy"`
	SavedAt    time.Time `json:"savedAt"`
}

// Change is a save: the new source, the deployed file's hash it overrides, and who saves it.
type Change struct {
	Path       string
	Source     string
	BaseSHA256 string
	SavedBy    string
}

// Hook runs inside a change's transaction, after the change is written and before it commits: the
// audit entry goes through q, so that it commits (or rolls back) with the change. before is the edit
// in force before the change (nil: none), after the one in force after it (nil after a revert).
type Hook func(ctx context.Context, q Execer, before, after *Edit) error

// Execer is what a Hook writes through (the change's *sql.Tx).
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Store is where the edits live (SQL implements it on SQLite and PostgreSQL).
type Store interface {
	// Revision is the counter every change bumps: a cheap query that instances poll.
	Revision(ctx context.Context) (int64, error)
	// Sources returns the source of every edit in force by path, and the revision they reflect
	// (read before the sources: a change committed in between makes the next poll see a newer one).
	Sources(ctx context.Context) (int64, map[string]string, error)
	// List returns the edits in force, without their source, sorted by path.
	List(ctx context.Context) ([]Edit, error)
	// Get returns the edit in force for path (ErrNotFound: none).
	Get(ctx context.Context, path string) (Edit, error)
	// History lists the kept revisions of path, newest first, without their source.
	History(ctx context.Context, path string) ([]Edit, error)
	// At returns one kept revision of path with its source (ErrNotFound: not kept).
	At(ctx context.Context, path string, revision int64) (Edit, error)
	// Save stores a new revision of c.Path and puts it in force.
	Save(ctx context.Context, c Change, hook Hook) (Edit, error)
	// Revert deletes the edit of path (the deployed file serves again); its history stays.
	// ErrNotFound: there was none.
	Revert(ctx context.Context, path string, hook Hook) (Edit, error)
}

// SQL stores the edits in gatehouse_script_history, gatehouse_script_edits and
// gatehouse_script_revision (migration 110).
type SQL struct {
	db  *store.DB
	now func() time.Time
}

// NewSQL returns the store on db.
func NewSQL(db *store.DB) *SQL { return &SQL{db: db, now: time.Now} }

// WithClock sets the clock that stamps saves (tests).
func (s *SQL) WithClock(now func() time.Time) *SQL { s.now = now; return s }

// Hash is the hex SHA-256 of a script's text.
func Hash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Revision implements Store.
func (s *SQL) Revision(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT n FROM gatehouse_script_revision WHERE id = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("scriptstore: revision: %w", err)
	}
	return n, nil
}

// Sources implements Store.
func (s *SQL) Sources(ctx context.Context) (int64, map[string]string, error) {
	rev, err := s.Revision(ctx)
	if err != nil {
		return 0, nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT h.path, h.source FROM gatehouse_script_edits e
		JOIN gatehouse_script_history h ON h.path = e.path AND h.revision = e.revision`)
	if err != nil {
		return 0, nil, fmt.Errorf("scriptstore: sources: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var p, src string
		if err := rows.Scan(&p, &src); err != nil {
			return 0, nil, fmt.Errorf("scriptstore: sources: %w", err)
		}
		out[p] = src
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("scriptstore: sources: %w", err)
	}
	return rev, out, nil
}

const metaCols = `h.path, h.revision, h.bytes, h.sha256, h.base_sha256, h.saved_by, h.saved_at`

type scanner interface{ Scan(dest ...any) error }

func scanEdit(r scanner, withSource bool) (Edit, error) {
	var e Edit
	var at int64
	dest := []any{&e.Path, &e.Revision, &e.Bytes, &e.SHA256, &e.BaseSHA256, &e.SavedBy, &at}
	if withSource {
		dest = append(dest, &e.Source)
	}
	if err := r.Scan(dest...); err != nil {
		return Edit{}, err
	}
	e.SavedAt = time.UnixMilli(at).UTC()
	return e, nil
}

func (s *SQL) list(ctx context.Context, q string, args ...any) ([]Edit, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Edit
	for rows.Next() {
		e, err := scanEdit(rows, false)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// List implements Store.
func (s *SQL) List(ctx context.Context) ([]Edit, error) {
	out, err := s.list(ctx, `SELECT `+metaCols+` FROM gatehouse_script_edits e
		JOIN gatehouse_script_history h ON h.path = e.path AND h.revision = e.revision ORDER BY h.path`)
	if err != nil {
		return nil, fmt.Errorf("scriptstore: list: %w", err)
	}
	return out, nil
}

// Get implements Store.
func (s *SQL) Get(ctx context.Context, path string) (Edit, error) {
	return s.get(ctx, s.db.DB, path)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *SQL) get(ctx context.Context, q queryRower, path string) (Edit, error) {
	e, err := scanEdit(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+metaCols+`, h.source FROM gatehouse_script_edits e
		JOIN gatehouse_script_history h ON h.path = e.path AND h.revision = e.revision WHERE e.path = ?`), path), true)
	if errors.Is(err, sql.ErrNoRows) {
		return Edit{}, ErrNotFound
	}
	if err != nil {
		return Edit{}, fmt.Errorf("scriptstore: get %s: %w", path, err)
	}
	return e, nil
}

// History implements Store.
func (s *SQL) History(ctx context.Context, path string) ([]Edit, error) {
	out, err := s.list(ctx, `SELECT `+metaCols+` FROM gatehouse_script_history h WHERE h.path = ? ORDER BY h.revision DESC`, path)
	if err != nil {
		return nil, fmt.Errorf("scriptstore: history of %s: %w", path, err)
	}
	return out, nil
}

// At implements Store.
func (s *SQL) At(ctx context.Context, path string, revision int64) (Edit, error) {
	e, err := scanEdit(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+metaCols+`, h.source FROM gatehouse_script_history h
		WHERE h.path = ? AND h.revision = ?`), path, revision), true)
	if errors.Is(err, sql.ErrNoRows) {
		return Edit{}, ErrNotFound
	}
	if err != nil {
		return Edit{}, fmt.Errorf("scriptstore: revision %d of %s: %w", revision, path, err)
	}
	return e, nil
}

// change runs fn in a transaction that first bumps the revision counter (which also serialises
// changes: the counter's row is locked until commit) and passes the new revision.
func (s *SQL) change(ctx context.Context, what string, fn func(tx *sql.Tx, rev int64) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("scriptstore: %s: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: a no-op
	var rev int64
	if err := tx.QueryRowContext(ctx, `UPDATE gatehouse_script_revision SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&rev); err != nil {
		return fmt.Errorf("scriptstore: %s: %w", what, err)
	}
	if err := fn(tx, rev); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("scriptstore: %s: %w", what, err)
	}
	return nil
}

// Save implements Store.
func (s *SQL) Save(ctx context.Context, c Change, hook Hook) (Edit, error) {
	if len(c.Source) > MaxSource {
		return Edit{}, ErrTooLarge
	}
	var saved Edit
	err := s.change(ctx, "save "+c.Path, func(tx *sql.Tx, rev int64) error {
		before, err := s.get(ctx, tx, c.Path)
		switch {
		case errors.Is(err, ErrNotFound):
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM gatehouse_script_edits`).Scan(&n); err != nil {
				return fmt.Errorf("scriptstore: save %s: %w", c.Path, err)
			}
			if n >= MaxEdits {
				return ErrTooMany
			}
		case err != nil:
			return err
		}
		e := Edit{Path: c.Path, Revision: rev, Source: c.Source, Bytes: len(c.Source), SHA256: Hash([]byte(c.Source)),
			BaseSHA256: c.BaseSHA256, SavedBy: c.SavedBy, SavedAt: s.now().UTC().Truncate(time.Millisecond)}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_script_history
			(path, revision, source, bytes, sha256, base_sha256, saved_by, saved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			e.Path, e.Revision, e.Source, e.Bytes, e.SHA256, e.BaseSHA256, e.SavedBy, e.SavedAt.UnixMilli()); err != nil {
			return fmt.Errorf("scriptstore: save %s: %w", c.Path, err)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_script_edits (path, revision) VALUES (?, ?)
			ON CONFLICT (path) DO UPDATE SET revision = excluded.revision`), e.Path, e.Revision); err != nil {
			return fmt.Errorf("scriptstore: save %s: %w", c.Path, err)
		}
		// Keep the newest MaxHistory revisions (the one just saved, in force, is the newest).
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_script_history WHERE path = ? AND revision NOT IN
			(SELECT revision FROM gatehouse_script_history WHERE path = ? ORDER BY revision DESC LIMIT ?)`), e.Path, e.Path, MaxHistory); err != nil {
			return fmt.Errorf("scriptstore: save %s: %w", c.Path, err)
		}
		if hook != nil {
			var b *Edit
			if before.Path != "" {
				b = &before
			}
			if err := hook(ctx, tx, b, &e); err != nil {
				return err
			}
		}
		saved = e
		return nil
	})
	return saved, err
}

// Revert implements Store.
func (s *SQL) Revert(ctx context.Context, path string, hook Hook) (Edit, error) {
	var before Edit
	err := s.change(ctx, "revert "+path, func(tx *sql.Tx, _ int64) error {
		var err error
		if before, err = s.get(ctx, tx, path); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_script_edits WHERE path = ?`), path); err != nil {
			return fmt.Errorf("scriptstore: revert %s: %w", path, err)
		}
		if hook != nil {
			return hook(ctx, tx, &before, nil)
		}
		return nil
	})
	return before, err
}

// ValidSource refuses text a script cannot be stored as: not UTF-8, or holding a NUL character
// (PostgreSQL's text refuses it; no script needs it).
func ValidSource(src string) error {
	if len(src) > MaxSource {
		return ErrTooLarge
	}
	if !utf8.ValidString(src) || strings.ContainsRune(src, 0) {
		return errors.New("scriptstore: a script must be UTF-8 text without NUL characters")
	}
	return nil
}
