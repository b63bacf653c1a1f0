package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Field limits: longer values are cut (with "…") so that a client cannot grow an entry without bound.
const (
	maxShort   = 256       // actor, via, action, remote, request id
	maxTarget  = 1024      // target
	maxState   = 256 << 10 // before, after (bytes of JSON); a larger state is replaced by a marker
	stateLimit = `{"truncated":true}`
)

// Store keeps the trail in the database (gatehouse_audit, migration 85).
type Store struct {
	db  *store.DB
	now func() time.Time
}

// NewStore returns the trail stored in db.
func NewStore(db *store.DB) *Store { return &Store{db: db, now: time.Now} }

// WithClock sets the clock that stamps entries without a Time (tests).
func (s *Store) WithClock(now func() time.Time) *Store { s.now = now; return s }

// Execer is what RecordTx writes through: a *sql.Tx of the change being recorded (or the *sql.DB).
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ErrInvalid is returned for an entry without an actor, surface or action.
var ErrInvalid = errors.New("audit: an entry needs an actor, a surface (via) and an action")

// Record appends an entry (its ID and Time are assigned here unless Time is set).
func (s *Store) Record(ctx context.Context, e Entry) error { return s.RecordTx(ctx, s.db.DB, e) }

// RecordTx appends an entry through q, the transaction of the change it records: the entry commits
// (or rolls back) with the change.
func (s *Store) RecordTx(ctx context.Context, q Execer, e Entry) error {
	e, err := s.normalize(e)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_audit (at, actor, via, action, target, remote, request_id, before_state, after_state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), e.Time.UnixMicro(), e.Actor, e.Via, e.Action, e.Target, e.Remote, e.RequestID,
		nullJSON(e.Before), nullJSON(e.After))
	if err != nil {
		return fmt.Errorf("audit: record %s %s: %w", e.Action, e.Target, err)
	}
	return nil
}

func (s *Store) normalize(e Entry) (Entry, error) {
	e.Actor, e.Via, e.Action = clip(e.Actor, maxShort), clip(e.Via, maxShort), clip(e.Action, maxShort)
	if e.Actor == "" || e.Via == "" || e.Action == "" {
		return e, ErrInvalid
	}
	e.Target, e.Remote, e.RequestID = clip(e.Target, maxTarget), clip(e.Remote, maxShort), clip(e.RequestID, maxShort)
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Before, e.After = Redact(e.Before), Redact(e.After)
	return e, nil
}

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	if len(b) > maxState {
		return stateLimit
	}
	return string(b)
}

// clip makes s valid UTF-8 and cuts it to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// List returns the entries f selects, newest first unless f.Ascending, at most f.Limit (default
// DefaultLimit, capped at MaxLimit).
func (s *Store) List(ctx context.Context, f Filter) ([]Entry, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultLimit
	}
	if f.Limit > MaxLimit {
		f.Limit = MaxLimit
	}
	var out []Entry
	err := s.scan(ctx, f, func(e Entry) error { out = append(out, e); return nil })
	return out, err
}

func (s *Store) scan(ctx context.Context, f Filter, fn func(Entry) error) error {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until.UnixMicro())
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if res, ok := strings.CutSuffix(f.Action, ".*"); ok {
		add("action LIKE ?", likeEscape(res)+".%")
	} else if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Target != "" {
		add("target = ?", f.Target)
	}
	if f.AfterID > 0 {
		add("id > ?", f.AfterID)
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	q := `SELECT id, at, actor, via, action, target, remote, request_id, before_state, after_state FROM gatehouse_audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Ascending {
		q += " ORDER BY id"
	} else {
		q += " ORDER BY id DESC"
	}
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	if strings.Contains(q, "LIKE") {
		q = strings.Replace(q, "action LIKE ?", `action LIKE ? ESCAPE '\'`, 1)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		var at int64
		var before, after sql.NullString
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Via, &e.Action, &e.Target, &e.Remote, &e.RequestID, &before, &after); err != nil {
			return fmt.Errorf("audit: list: %w", err)
		}
		e.Time = time.UnixMicro(at).UTC()
		if before.Valid {
			e.Before = json.RawMessage(before.String)
		}
		if after.Valid {
			e.After = json.RawMessage(after.String)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: list: %w", err)
	}
	return nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Prune deletes the entries recorded before cutoff: the retention setting's job, the trail's only
// delete path. It returns how many were deleted.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM gatehouse_audit WHERE at < ?`), cutoff.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// RunRetention deletes entries older than keep at start and then every interval (default 1 h) until
// ctx ends: the optional retention (audit.retention_days). Every instance may run it; the deletes
// are idempotent.
func (s *Store) RunRetention(ctx context.Context, keep, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = time.Hour
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Prune(ctx, s.now().Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("audit retention: deleting old entries failed", "err", err)
		case n > 0:
			log.Info("audit retention: deleted old entries", "entries", n, "older_than", keep.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
