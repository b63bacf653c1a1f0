package outage_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/gatehouse/gatehouse/internal/outage"
)

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	// A real connection failure through database/sql and pgx.
	db, err := sql.Open("pgx", "postgres://postgres@"+closedPort(t)+"/test?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, connErr := db.ExecContext(ctx, "SELECT 1")
	if connErr == nil || !outage.Unavailable(fmt.Errorf("table: read: %w", connErr)) {
		t.Fatalf("connection refused not classified: %v", connErr)
	}

	// SQLite busy past the busy timeout, for real: one connection holds the write lock.
	path := filepath.Join(t.TempDir(), "busy.db")
	a, _ := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(50)")
	b, _ := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(50)")
	defer a.Close()
	defer b.Close()
	if _, err := a.Exec("CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	tx, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, busyErr := b.Exec("INSERT INTO t VALUES (2)")
	tx.Rollback() //nolint:errcheck
	if busyErr == nil || !outage.Unavailable(busyErr) {
		t.Fatalf("SQLITE_BUSY not classified: %v", busyErr)
	}
	_, synErr := a.Exec("SELEC 1")

	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "53300"}, true},
		{&pgconn.PgError{Code: "23505"}, false}, // unique violation: the request's fault
		{&pgconn.PgError{Code: "42P01"}, false},
		{synErr, false},
		{errors.New("boom"), false},
		{context.Canceled, false},
		{nil, false},
	} {
		if got := outage.Unavailable(c.err); got != c.want {
			t.Errorf("Unavailable(%v) = %v", c.err, got)
		}
	}
}

type flakyDB struct {
	mu  sync.Mutex
	err error
}

func (f *flakyDB) set(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }
func (f *flakyDB) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestMonitor: the filtered logger turns many "unreachable" errors into one outage line, other errors
// pass, and the probe closes the outage with the count.
func TestMonitor(t *testing.T) {
	buf := &syncBuf{}
	base := slog.New(slog.NewJSONHandler(buf, nil))
	db := &flakyDB{}
	m := outage.New(db, base, outage.Options{Probe: 20 * time.Millisecond, CheckEvery: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	log := slog.New(m.Handler(base.Handler())).With("component", "test")

	down := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	db.set(down)
	for i := 0; i < 10; i++ {
		log.Error("table request failed", "err", fmt.Errorf("read: %w", down))
		m.Count()
	}
	log.Error("unrelated failure", "err", errors.New("bug"))
	log.Error("script failed", "request_id", "r1", "error", "Error: the table could not be read") // folded: a request during the outage
	if !m.Down() || m.Check(ctx) {
		t.Fatal("monitor not down")
	}
	if n := strings.Count(buf.String(), `"level":"ERROR"`); n != 2 {
		t.Fatalf("want the outage line and the unrelated error, got %d:\n%s", n, buf.String())
	}
	db.set(nil)
	deadline := time.Now().Add(5 * time.Second)
	for m.Down() {
		if time.Now().After(deadline) {
			t.Fatal("probe did not notice the recovery")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(buf.String(), `"msg":"database reachable again"`) || !strings.Contains(buf.String(), `"failed_requests":10`) || !strings.Contains(buf.String(), `"folded_log_lines":11`) {
		t.Fatalf("recovery line: %s", buf.String())
	}
	log.Error("script failed", "request_id", "r2", "error", "after the outage")
	if !strings.Contains(buf.String(), `"request_id":"r2"`) {
		t.Fatal("request errors after the outage must be logged")
	}
}

// TestOutageLastsAProbe: a ping that answers in the outage's first moments (a connection that was
// idle in the pool when the others failed) does not close it; the probe's ping a Probe later does,
// so one outage is one line.
func TestOutageLastsAProbe(t *testing.T) {
	buf := &syncBuf{}
	base := slog.New(slog.NewJSONHandler(buf, nil))
	db := &flakyDB{}
	var mu sync.Mutex
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	m := outage.New(db, base, outage.Options{Probe: time.Second, CheckEvery: time.Nanosecond, Now: clock})
	ctx := context.Background()

	if !m.Report(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}) || !m.Down() {
		t.Fatal("a connection reset should open an outage")
	}
	advance(5 * time.Millisecond)
	if m.Check(ctx) || !m.Down() {
		t.Fatal("a ping 5 ms into the outage closed it")
	}
	m.Report(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET})
	advance(time.Second)
	if !m.Check(ctx) || m.Down() {
		t.Fatal("a ping a probe interval into the outage should close it")
	}
	if n := strings.Count(buf.String(), `"msg":"database unreachable`); n != 1 {
		t.Fatalf("want one outage line, got %d:\n%s", n, buf.String())
	}
	if !m.Check(ctx) {
		t.Fatal("reachable after the outage")
	}
}
