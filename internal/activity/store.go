package activity

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Store keeps events and per-minute statistics in the database (migration 86).
type Store struct {
	db *store.DB
	// Registry, when set, is the key ring's instance registry: Stats adds each live instance's host
	// and start time (and lists live instances that served nothing yet).
	Registry Registry
	// Liveness is the registry's heartbeat window (default 5 s).
	Liveness time.Duration
}

// Registry lists live instances (keyring.Store).
type Registry interface {
	Live(ctx context.Context, now time.Time, liveness time.Duration) ([]keyring.Instance, error)
}

// NewStore returns the activity store in db.
func NewStore(db *store.DB) *Store { return &Store{db: db} }

// MinuteRow is one instance's statistics for one minute.
type MinuteRow struct {
	Minute    int64 // Unix ms of the minute's start
	Instance  string
	Requests  int64
	Errors4xx int64
	Errors5xx int64
	Latency   Histogram
}

const eventColumns = `at, instance, kind, request_id, method, route, path, status, duration_us, user_id, bytes, level, source, message`

// flushTx bounds the events one write transaction stores. A transaction holds the database's only
// write lock on SQLite (about 8 µs per event there), so a flush at thousands of requests per
// second is cut into transactions of a few milliseconds each, between which the table writes
// queued behind it (store.DB.LockWriter) go on, instead of one of tens of milliseconds.
const flushTx = 500

// write stores a batch of events, flushTx per transaction, and replaces this instance's rows of the
// given minutes in the last one. It returns how many events are stored (on an error, the ones
// before the failed transaction) and the highest event id after the last stored one (0 when none was).
func (s *Store) write(ctx context.Context, events []Event, mins []MinuteRow) (done int, lastID int64, err error) {
	if len(events) == 0 && len(mins) == 0 {
		return 0, 0, nil
	}
	for {
		part := events[done:min(done+flushTx, len(events))]
		final := done+len(part) == len(events)
		var m []MinuteRow
		if final {
			m = mins
		}
		id, err := s.writeTx(ctx, part, m)
		if err != nil {
			return done, lastID, err
		}
		done += len(part)
		if id > 0 {
			lastID = id
		}
		if final {
			return done, lastID, nil
		}
	}
}

// writeTx stores events and minute rows in one transaction. last is the highest event id after
// them (0 when there were no events).
func (s *Store) writeTx(ctx context.Context, events []Event, mins []MinuteRow) (last int64, err error) {
	unlock, err := s.db.LockWriter(ctx)
	if err != nil {
		return 0, fmt.Errorf("activity: write: %w", err)
	}
	defer unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("activity: write: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	const per = 14
	const batch = 200 // rows per INSERT (200×14 parameters, under both engines' limits)
	for start := 0; start < len(events); start += batch {
		chunk := events[start:min(start+batch, len(events))]
		var sb strings.Builder
		sb.WriteString(`INSERT INTO gatehouse_activity (` + eventColumns + `) VALUES `)
		args := make([]any, 0, len(chunk)*per)
		for i, e := range chunk {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
			args = append(args, e.Time.UnixMilli(), e.Instance, string(e.Kind), e.RequestID, e.Method, e.Route, e.Path, e.Status,
				e.Duration.Microseconds(), e.UserID, e.Bytes, e.Level, e.Source, e.Message)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(sb.String()), args...); err != nil {
			return 0, fmt.Errorf("activity: write events: %w", err)
		}
	}
	for _, m := range mins {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_activity_minutes (minute, instance, requests, errors_4xx, errors_5xx, latency)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (minute, instance) DO UPDATE SET requests = excluded.requests,
			errors_4xx = excluded.errors_4xx, errors_5xx = excluded.errors_5xx, latency = excluded.latency`),
			m.Minute, m.Instance, m.Requests, m.Errors4xx, m.Errors5xx, m.Latency.String()); err != nil {
			return 0, fmt.Errorf("activity: write minute: %w", err)
		}
	}
	if len(events) > 0 {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM gatehouse_activity`).Scan(&last); err != nil {
			return 0, fmt.Errorf("activity: write: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("activity: write: %w", err)
	}
	return last, nil
}

// pruneTx bounds the events one pruning statement deletes: like a flush, pruning is cut into short
// transactions so that the writes queued behind it are not held up (at thousands of requests per
// second a minute's prune deletes hundreds of thousands of events).
const pruneTx = 2000

// Prune deletes events older than cutoff or beyond the newest keep, and minute rows older than
// minutesCutoff.
func (s *Store) Prune(ctx context.Context, cutoff time.Time, keep int, minutesCutoff time.Time) error {
	var maxID sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(id) FROM gatehouse_activity`).Scan(&maxID); err != nil {
		return fmt.Errorf("activity: prune: %w", err)
	}
	step := strconv.Itoa(pruneTx)
	for _, d := range []struct {
		where string
		arg   int64
	}{{"at < ?", cutoff.UnixMilli()}, {"id <= ?", maxID.Int64 - int64(keep)}} {
		q := s.db.Rebind(`DELETE FROM gatehouse_activity WHERE id IN (SELECT id FROM gatehouse_activity WHERE ` + d.where + ` ORDER BY id LIMIT ` + step + `)`)
		for {
			n, err := s.exec(ctx, q, d.arg)
			if err != nil {
				return fmt.Errorf("activity: prune: %w", err)
			}
			if n < pruneTx {
				break
			}
		}
	}
	if _, err := s.exec(ctx, s.db.Rebind(`DELETE FROM gatehouse_activity_minutes WHERE minute < ?`), minutesCutoff.UnixMilli()); err != nil {
		return fmt.Errorf("activity: prune: %w", err)
	}
	return nil
}

// exec runs one write statement queued behind this process's other writers (store.DB.LockWriter)
// and returns the rows it changed.
func (s *Store) exec(ctx context.Context, q string, args ...any) (int64, error) {
	unlock, err := s.db.LockWriter(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Filter selects events for Tail. Zero fields match everything.
type Filter struct {
	// Status: 1–5 selects a class (4: every 4xx), 100–599 one status.
	Status int
	// Route matches a route pattern ("/tables/{table}"), a path, or a path prefix ("/tables/todo").
	Route string
	// User and RequestID match exactly.
	User      string
	RequestID string
	// Kind: "request" or "script".
	Kind Kind
	// Instance matches exactly.
	Instance string
	// Source matches a script event's source ("api/hello"), ignoring case.
	Source string
	// AfterID returns the events after a previous Tail's last one (the live tail's cursor); without it
	// Tail returns the newest Limit events.
	AfterID int64
	// Limit caps the result (default 100, at most 1000).
	Limit int
}

// Tail returns the events f selects, oldest first: the newest Limit ones, or with AfterID the next
// Limit after it (poll with the last event's ID to follow the tail).
func (s *Store) Tail(ctx context.Context, f Filter) ([]Event, error) {
	return s.tail(ctx, f, "")
}

// tail is Tail with one more condition (with its arguments inlined: ids only).
func (s *Store) tail(ctx context.Context, f Filter, extra string) ([]Event, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > maxTail && extra == "" { // Follow's reads are bounded by the ids they name
		f.Limit = maxTail
	}
	var where []string
	var args []any
	add := func(cond string, v ...any) { where = append(where, cond); args = append(args, v...) }
	if extra != "" {
		add(extra)
	}
	switch {
	case f.Status >= 1 && f.Status <= 5:
		add("status >= ? AND status < ?", f.Status*100, f.Status*100+100)
	case f.Status > 0:
		add("status = ?", f.Status)
	}
	if f.Route != "" {
		add(`(route = ? OR path = ? OR path LIKE ? ESCAPE '\')`, f.Route, f.Route, likeEscape(strings.TrimSuffix(f.Route, "/"))+"/%")
	}
	if f.User != "" {
		add("user_id = ?", f.User)
	}
	if f.RequestID != "" {
		add("request_id = ?", f.RequestID)
	}
	if f.Kind != "" {
		add("kind = ?", string(f.Kind))
	}
	if f.Instance != "" {
		add("instance = ?", f.Instance)
	}
	if f.Source != "" {
		add("LOWER(source) = LOWER(?)", f.Source)
	}
	if f.AfterID > 0 {
		add("id > ?", f.AfterID)
	}
	q := `SELECT id, ` + eventColumns + ` FROM gatehouse_activity`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.AfterID > 0 || extra != "" {
		q += fmt.Sprintf(" ORDER BY id LIMIT %d", f.Limit)
	} else {
		q += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("activity: tail: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var at, dur int64
		var kind string
		if err := rows.Scan(&e.ID, &at, &e.Instance, &kind, &e.RequestID, &e.Method, &e.Route, &e.Path, &e.Status, &dur, &e.UserID,
			&e.Bytes, &e.Level, &e.Source, &e.Message); err != nil {
			return nil, fmt.Errorf("activity: tail: %w", err)
		}
		e.Time, e.Kind, e.Duration = time.UnixMilli(at).UTC(), Kind(kind), time.Duration(dur)*time.Microsecond
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("activity: tail: %w", err)
	}
	if f.AfterID == 0 && extra == "" {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, nil
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Minute is the cluster's statistics for one minute.
type Minute struct {
	Start     time.Time     `json:"start"`
	Requests  int64         `json:"requests"`
	Errors4xx int64         `json:"errors4xx"`
	Errors5xx int64         `json:"errors5xx"`
	P99       time.Duration `json:"p99Ns"`
}

// Instance is an instance seen in the window.
type Instance struct {
	ID        string    `json:"id"`
	Host      string    `json:"host,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	// LastSeen is the later of its last heartbeat and the end of its last minute with requests.
	LastSeen time.Time `json:"lastSeen"`
	Live     bool      `json:"live"` // in the key ring's registry now
	Requests int64     `json:"requests"`
}

// Stats is the cluster's traffic since a time.
type Stats struct {
	Since             time.Time     `json:"since"`
	Until             time.Time     `json:"until"`
	Requests          int64         `json:"requests"`
	Errors4xx         int64         `json:"errors4xx"`
	Errors5xx         int64         `json:"errors5xx"`
	RequestsPerSecond float64       `json:"requestsPerSecond"`
	ErrorRate         float64       `json:"errorRate"` // 5xx / requests
	P99               time.Duration `json:"p99Ns"`
	// Minutes has one entry per minute of the window, oldest first (zeros where nothing was served).
	Minutes   []Minute   `json:"minutes"`
	Instances []Instance `json:"instances"`
	// Method says how P99 is computed.
	Method string `json:"p99Method"`
}

// P99Method describes the percentile computation (Stats.Method).
const P99Method = "per-minute per-instance log-scale latency histograms (8 buckets per doubling) summed over the window; the reported p99 is its bucket's upper bound (at most 9% above the true value)"

// Stats aggregates every instance's minutes from since's minute to now's.
func (s *Store) Stats(ctx context.Context, since, now time.Time) (*Stats, error) {
	from := since.UnixMilli() / 60000 * 60000
	to := now.UnixMilli() / 60000 * 60000
	if to < from {
		to = from
	}
	if (to-from)/60000 > 7*24*60 {
		from = to - 7*24*60*60000 // at most a week of minutes
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT minute, instance, requests, errors_4xx, errors_5xx, latency
		FROM gatehouse_activity_minutes WHERE minute >= ? AND minute <= ? ORDER BY minute`), from, to)
	if err != nil {
		return nil, fmt.Errorf("activity: stats: %w", err)
	}
	defer rows.Close()
	st := &Stats{Since: time.UnixMilli(from).UTC(), Until: now.UTC(), Method: P99Method}
	n := int((to-from)/60000) + 1
	st.Minutes = make([]Minute, n)
	hists := make([]Histogram, n)
	for i := range st.Minutes {
		st.Minutes[i].Start = time.UnixMilli(from + int64(i)*60000).UTC()
		hists[i] = Histogram{}
	}
	total := Histogram{}
	seen := map[string]*Instance{}
	for rows.Next() {
		var r MinuteRow
		var lat string
		if err := rows.Scan(&r.Minute, &r.Instance, &r.Requests, &r.Errors4xx, &r.Errors5xx, &lat); err != nil {
			return nil, fmt.Errorf("activity: stats: %w", err)
		}
		i := int((r.Minute - from) / 60000)
		m := &st.Minutes[i]
		m.Requests += r.Requests
		m.Errors4xx += r.Errors4xx
		m.Errors5xx += r.Errors5xx
		h := ParseHistogram(lat)
		hists[i].Merge(h)
		total.Merge(h)
		st.Requests += r.Requests
		st.Errors4xx += r.Errors4xx
		st.Errors5xx += r.Errors5xx
		in := seen[r.Instance]
		if in == nil {
			in = &Instance{ID: r.Instance}
			seen[r.Instance] = in
		}
		in.Requests += r.Requests
		if end := time.UnixMilli(min(r.Minute+60000, now.UnixMilli())).UTC(); end.After(in.LastSeen) {
			in.LastSeen = end
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("activity: stats: %w", err)
	}
	for i := range st.Minutes {
		st.Minutes[i].P99 = hists[i].Quantile(0.99)
	}
	st.P99 = total.Quantile(0.99)
	if secs := now.Sub(st.Since).Seconds(); secs > 0 {
		st.RequestsPerSecond = float64(st.Requests) / secs
	}
	if st.Requests > 0 {
		st.ErrorRate = float64(st.Errors5xx) / float64(st.Requests)
	}
	if s.Registry != nil {
		live := s.Liveness
		if live <= 0 {
			live = 5 * time.Second
		}
		ins, err := s.Registry.Live(ctx, now, live)
		if err != nil {
			return nil, fmt.Errorf("activity: stats: instances: %w", err)
		}
		for _, l := range ins {
			in := seen[l.ID]
			if in == nil {
				in = &Instance{ID: l.ID}
				seen[l.ID] = in
			}
			in.Host, in.StartedAt, in.Live = l.Host, l.StartedAt.UTC(), true
			if l.HeartbeatAt.After(in.LastSeen) {
				in.LastSeen = l.HeartbeatAt.UTC()
			}
		}
	}
	st.Instances = make([]Instance, 0, len(seen))
	for _, in := range seen {
		st.Instances = append(st.Instances, *in)
	}
	sort.Slice(st.Instances, func(i, j int) bool { return st.Instances[i].ID < st.Instances[j].ID })
	return st, nil
}
