// Package outage tells "the database is unreachable" apart from other failures and keeps one account
// of each outage: the first failure logs one ERROR line, the failures during the outage are counted
// instead of logged, a probe pings the database until it answers, and recovery logs one line with
// the count. The server answers 503 with Retry-After while an outage lasts.
package outage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"modernc.org/sqlite"
)

// Unavailable reports whether err means the database cannot be reached or cannot take the request
// now (as opposed to a bad query or a bug): connection failures of any kind, a server shutting down
// or refusing connections, a connection lost mid-query, and SQLite busy/locked past its busy timeout.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin/crash shutdown, cannot connect now
			return true
		case pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED: the busy timeout has already passed
			return true
		}
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || pgconn.SafeToRetry(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// Pinger checks the database.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options tune a Monitor; zero values take the defaults.
type Options struct {
	Probe       time.Duration // how often the probe pings during an outage (1s)
	PingTimeout time.Duration // one ping's limit (2s)
	CheckEvery  time.Duration // at most one on-demand ping per this interval (1s)
	RetryAfter  time.Duration // Retry-After given to clients (5s)
	Now         func() time.Time
}

// Monitor tracks the database's availability.
type Monitor struct {
	db  Pinger
	log *slog.Logger
	o   Options

	mu        sync.Mutex
	down      bool
	since     time.Time
	failed    int64 // requests answered 503 during the outage
	folded    int64 // error log records folded into the outage
	cause     string
	lastCheck time.Time
	lastOK    bool
	wake      chan struct{}
}

// New builds a monitor. log receives the outage's two lines; give it the unfiltered logger.
func New(db Pinger, log *slog.Logger, o Options) *Monitor {
	if o.Probe <= 0 {
		o.Probe = time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 2 * time.Second
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = time.Second
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Monitor{db: db, log: log, o: o, wake: make(chan struct{}, 1)}
}

// RetryAfter is the Retry-After value, in seconds, for answers during an outage.
func (m *Monitor) RetryAfter() int { return int(m.o.RetryAfter / time.Second) }

// Down reports whether an outage is in progress.
func (m *Monitor) Down() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down
}

// Report records a failed operation. It returns whether err means the database is unavailable; if
// so, and no outage is open, one opens (logged once).
func (m *Monitor) Report(err error) bool {
	if !Unavailable(err) {
		return false
	}
	m.fail(err.Error())
	return true
}

func (m *Monitor) fail(cause string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastOK = false
	if m.down {
		return
	}
	m.down, m.since, m.cause, m.failed, m.folded = true, m.o.Now(), cause, 0, 0
	m.log.Error("database unreachable; answering 503 until it recovers", "err", cause, "retry_after_seconds", m.RetryAfter())
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Monitor) suppress() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.folded++
}

// Count records a request answered 503 because of the outage (already known to be down).
func (m *Monitor) Count() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		m.failed++
	}
}

// recovered records a successful ping and reports whether the database counts as reachable. An
// outage lasts at least one Probe: in its first moments the connections that were idle in the pool
// when the failures began can still answer a ping while the rest fail (a proxy or server going down
// closes them one by one), and closing the outage on such an answer would open a second one at the
// next failure. The probe's next ping, a Probe later, decides.
func (m *Monitor) recovered() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.down {
		m.lastOK = true
		return true
	}
	if m.o.Now().Sub(m.since) < m.o.Probe {
		return false
	}
	m.lastOK = true
	m.down = false
	m.log.Info("database reachable again", "outage", m.o.Now().Sub(m.since).Round(time.Millisecond).String(),
		"failed_requests", m.failed, "folded_log_lines", m.folded, "first_error", m.cause)
	m.failed, m.folded = 0, 0
	return true
}

// Check pings the database unless it was pinged within CheckEvery (then the last answer stands) and
// reports whether it is reachable; a failure opens an outage, a success closes one.
func (m *Monitor) Check(ctx context.Context) bool {
	m.mu.Lock()
	if now := m.o.Now(); now.Sub(m.lastCheck) < m.o.CheckEvery {
		ok := m.lastOK && !m.down
		m.mu.Unlock()
		return ok
	}
	m.lastCheck = m.o.Now()
	m.mu.Unlock()
	return m.ping(ctx)
}

func (m *Monitor) ping(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, m.o.PingTimeout)
	defer cancel()
	if err := m.db.Ping(ctx); err != nil {
		if ctx.Err() != nil || Unavailable(err) {
			m.fail(err.Error())
		}
		return false
	}
	return m.recovered()
}

// Run probes the database while an outage lasts, until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.o.Probe)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-t.C:
		}
		if m.Down() {
			m.ping(ctx)
		}
	}
}

// Handler wraps a log handler: ERROR records carrying an error that means "database unavailable"
// are counted into the current outage instead of written, so an outage is one line, not one per
// request. Everything else passes through.
func (m *Monitor) Handler(next slog.Handler) slog.Handler { return &filter{m: m, next: next} }

type filter struct {
	m    *Monitor
	next slog.Handler
}

func (f *filter) Enabled(ctx context.Context, l slog.Level) bool { return f.next.Enabled(ctx, l) }

func (f *filter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		var cause error
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && Unavailable(err) {
				cause = err
				return false
			}
			return true
		})
		if cause != nil {
			f.m.fail(cause.Error())
			f.m.suppress()
			return nil
		}
		// A request's error during an outage whose cause is no longer a Go error (a script's
		// exception message or console.error, for one) is folded too: the request was answered 503 and the access
		// log keeps its line; the recovery line gives the number folded.
		if f.m.Down() && (hasAttr(r, "request_id") || httpx.RequestID(ctx) != "") {
			f.m.suppress()
			return nil
		}
	}
	return f.next.Handle(ctx, r)
}

func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

func (f *filter) WithAttrs(as []slog.Attr) slog.Handler {
	return &filter{m: f.m, next: f.next.WithAttrs(as)}
}

func (f *filter) WithGroup(name string) slog.Handler {
	return &filter{m: f.m, next: f.next.WithGroup(name)}
}
