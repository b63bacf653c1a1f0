package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/odata"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// openRawTest opens a migrated SQLite database in a temporary directory.
func openRawTest(t testing.TB, maxLength int) *DB {
	t.Helper()
	db, err := OpenWith(context.Background(), "", t.TempDir(), Options{Schema: Migrate, CreateDataDir: true, SQLiteMaxLength: maxLength})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if db.readers == nil {
		t.Fatal("SQLite database without in-place readers")
	}
	return db
}

func mustExec(t testing.TB, db *DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// viaSQL is the database/sql fallback on the same query.
func viaSQL(t testing.TB, db *DB, q string, args ...any) RawRows {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	r, err := RawFromSQL(rows)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type liteCell struct {
	null  bool
	i     int64
	f     float64
	text  []byte
	tnil  bool // Text is nil: for NULL (the driver also returns nil for an empty blob; the reader []byte{})
	b     bool
	tm    time.Time
	tmErr bool
}

func readAllLite(t *testing.T, r RawRows, cols int) [][]liteCell {
	t.Helper()
	defer r.Close()
	var out [][]liteCell
	for r.Next() {
		row := make([]liteCell, cols)
		for i := range row {
			tm, err := r.Time(i)
			txt := r.Text(i)
			row[i] = liteCell{null: r.Null(i), i: r.Int64(i), f: r.Float64(i), text: bytes.Clone(txt), tnil: txt == nil,
				b: r.Bool(i), tm: tm, tmErr: err != nil}
		}
		out = append(out, row)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestQueryRawSQLiteAgreesWithDatabaseSQL(t *testing.T) {
	db := openRawTest(t, 0)
	mustExec(t, db, `CREATE TABLE v (n INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, f INTEGER, d INTEGER, x)`)
	now := time.Date(2026, 12, 4, 18, 30, 1, 234e6, time.UTC)
	rows := [][]any{
		{nil, nil, nil, nil, nil, nil, nil},
		{int64(0), 0.0, "", []byte{}, int64(0), int64(0), int64(7)},
		{int64(math.MaxInt64), 1.5, "héllo wörld ✓ 🎉", []byte{0, 1, 2, 255}, int64(1), now.UnixMilli(), 2.25},
		{int64(math.MinInt64), -1e21, "line\nbreak\ttab \"quoted\" \\ back", []byte("blob"), int64(1), int64(-86400000), "text"},
		{int64(-1), math.SmallestNonzeroFloat64, "日本語テキスト", []byte{0}, int64(0), int64(1), []byte("bytes")},
		{int64(1) << 53, 123456789.125, "x", []byte("y"), int64(0), int64(253402300799999), int64(-5)},
	}
	for _, r := range rows {
		mustExec(t, db, `INSERT INTO v (i, r, s, b, f, d, x) VALUES (?, ?, ?, ?, ?, ?, ?)`, r...)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT i, r, s, b, f, d, x FROM v ORDER BY n`, nil},
		{`SELECT i, r, s, b, f, d, x FROM v WHERE i > ? OR s = ? OR r < ? ORDER BY n`, []any{int64(0), "日本語テキスト", -1.0}},
		{`SELECT i, r, s, b, f, d, x FROM v WHERE f = ? AND b = ? ORDER BY n`, []any{true, []byte{0, 1, 2, 255}}},
		{`SELECT i, r, s, b, f, d, x FROM v WHERE s = ? OR i = ? ORDER BY n`, []any{"", 1 << 53}},
		{`SELECT i, r, s, b, f, d, x FROM v WHERE i IS ? ORDER BY n`, []any{nil}},
		// Numbered parameters, as odata compiles for SQLite: out of order and repeated.
		{`SELECT i, r, s, b, f, d, x FROM v WHERE i > ?2 OR s = ?1 OR r < ?2 ORDER BY n`, []any{"日本語テキスト", int64(0)}},
		{`SELECT ?3, ?1, ?2, ?3, ?1, ?2, ?3`, []any{1.5, "two", int64(3)}},
		{`SELECT count(*), sum(i IS NULL), max(r), min(s), 'lit', NULL, 3.0 FROM v`, nil},
		{`SELECT i, r, s, b, f, d, x FROM v WHERE 0`, nil},
	} {
		t.Run(q.sql, func(t *testing.T) {
			raw, err := db.QueryRaw(context.Background(), q.sql, q.args...)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := raw.(*sqliteRows); !ok {
				t.Fatalf("QueryRaw on SQLite returned %T, not the in-place reader", raw)
			}
			got := readAllLite(t, raw, 7)
			want := readAllLite(t, viaSQL(t, db, q.sql, q.args...), 7)
			if len(got) != len(want) {
				t.Fatalf("%d rows in place, %d through database/sql", len(got), len(want))
			}
			for i := range got {
				for j := range got[i] {
					g, w := got[i][j], want[i][j]
					if g.null != w.null || g.i != w.i || g.b != w.b || g.tmErr != w.tmErr || !g.tm.Equal(w.tm) ||
						!bytes.Equal(g.text, w.text) || g.null != g.tnil ||
						(g.f != w.f && !(math.IsNaN(g.f) && math.IsNaN(w.f))) {
						t.Errorf("row %d column %d: in place %+v, database/sql %+v", i, j, g, w)
					}
				}
			}
		})
	}
	// The in-place reader binds a time.Time as Unix milliseconds, how instants are stored.
	r, err := db.QueryRaw(context.Background(), `SELECT d FROM v WHERE d = ?`, now)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatalf("no row for a time argument (%v)", r.Err())
	}
	if tm, err := r.Time(0); err != nil || !tm.Equal(now) || tm.Location() != time.UTC {
		t.Errorf("Time = %v, %v; want %v UTC", tm, err, now)
	}
}

func TestQueryRawSQLiteDeadline(t *testing.T) {
	db := openRawTest(t, 0)
	const endless = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c`
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := db.QueryRaw(ctx, endless)
	if err == nil {
		r.Close()
		t.Fatal("an endless query ended without error")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the query stopped %v after it started, the deadline was 100ms", d)
	}

	// A read stopped between rows: the next Next ends with the context's error.
	ctx, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	r, err = db.QueryRaw(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.Next() {
		if n++; n == 10 {
			cancel2()
		}
	}
	if err := r.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err after cancel = %v, want context.Canceled", err)
	}
	r.Close()

	// A context already done runs nothing.
	if _, err := db.QueryRaw(ctx, `SELECT 1`); !errors.Is(err, context.Canceled) {
		t.Errorf("QueryRaw with a cancelled context: %v", err)
	}

	// The connections are still good after being interrupted.
	for range 2 * sqliteMaxConns {
		r, err := db.QueryRaw(context.Background(), `SELECT 41 + 1`)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Next() || r.Int64(0) != 42 {
			t.Fatalf("after an interrupt: %v", r.Err())
		}
		r.Close()
	}
}

func TestQueryRawSQLiteLengthLimit(t *testing.T) {
	db := openRawTest(t, 1000)
	for _, q := range []string{`SELECT zeroblob(2000)`, `SELECT printf('%.*c', 2000, 'x')`, `SELECT ?`} {
		var args []any
		if q == `SELECT ?` {
			args = []any{string(make([]byte, 2000))}
		}
		r, err := db.QueryRaw(context.Background(), q, args...)
		if err == nil {
			for r.Next() {
			}
			err = r.Err()
			r.Close()
		}
		if code, ok := SQLiteCode(err); !ok || code&0xff != sqlite3.SQLITE_TOOBIG {
			t.Errorf("%s: err %v (code %d, %v), want SQLITE_TOOBIG", q, err, code, ok)
		}
	}
	// The driver's error is recognised too.
	_, err := db.ExecContext(context.Background(), `SELECT zeroblob(2000)`)
	if code, ok := SQLiteCode(err); !ok || code&0xff != sqlite3.SQLITE_TOOBIG {
		t.Errorf("database/sql: err %v (code %d, %v), want SQLITE_TOOBIG", err, code, ok)
	}
	if _, ok := SQLiteCode(errors.New("x")); ok {
		t.Error("SQLiteCode recognised a non-SQLite error")
	}
}

func TestQueryRawSQLiteCollationAndFunctions(t *testing.T) {
	db := openRawTest(t, 0)
	mustExec(t, db, `CREATE TABLE w (s)`)
	for _, s := range []any{"American Beauty", "Amélie", "a", "A", "á", "Ä", "b", "B", "ß", "ǅ", "İstanbul", "ΣΊΣΥΦΟΣ", "straße",
		"Zebra", "zebra", "", "ÉCOLE", "école", "Ω", "ω", nil, int64(12), 1.5, []byte("BLOB Ä")} {
		mustExec(t, db, `INSERT INTO w VALUES (?)`, s)
	}
	for _, q := range []string{
		`SELECT s FROM w ORDER BY s COLLATE ` + odata.SQLiteCollation + `, rowid`,
		`SELECT s FROM w ORDER BY s COLLATE ` + odata.SQLiteCollation + ` DESC, rowid`,
		`SELECT ` + odata.SQLiteLower + `(s), ` + odata.SQLiteUpper + `(s), typeof(` + odata.SQLiteLower + `(s)) FROM w ORDER BY rowid`,
		`SELECT s FROM w WHERE ` + odata.SQLiteLower + `(s) = 'école' ORDER BY rowid`,
		`SELECT s FROM w WHERE s > 'amelie' COLLATE ` + odata.SQLiteCollation + ` ORDER BY rowid`,
	} {
		raw, err := db.QueryRaw(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		got := readAllLite(t, raw, 1)
		want := readAllLite(t, viaSQL(t, db, q), 1)
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%s: %d rows in place, %d through database/sql", q, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i][0].text, want[i][0].text) || got[i][0].null != want[i][0].null {
				t.Errorf("%s: row %d in place %q, database/sql %q", q, i, got[i][0].text, want[i][0].text)
			}
		}
	}
}

func TestQueryRawSQLiteSeesCommittedWrites(t *testing.T) {
	db := openRawTest(t, 0)
	mustExec(t, db, `CREATE TABLE c (n INTEGER)`)
	count := func() int64 {
		r, err := db.QueryRaw(context.Background(), `SELECT count(*) FROM c`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if !r.Next() {
			t.Fatal(r.Err())
		}
		return r.Int64(0)
	}
	for i := range 5 {
		if n := count(); n != int64(i) {
			t.Fatalf("count = %d before insert %d", n, i)
		}
		tx, err := db.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO c VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 5 {
		t.Fatalf("count = %d after 5 inserts", n)
	}
	// The readers do not write.
	if r, err := db.QueryRaw(context.Background(), `INSERT INTO c VALUES (1)`); err == nil {
		r.Close()
		t.Error("a write through QueryRaw succeeded")
	}
	if n := count(); n != 5 {
		t.Fatalf("count = %d after a refused write", n)
	}
}

func TestQueryRawSQLiteConcurrent(t *testing.T) {
	db := openRawTest(t, 0)
	mustExec(t, db, `CREATE TABLE p (n INTEGER, s TEXT)`)
	for i := range 100 {
		mustExec(t, db, `INSERT INTO p VALUES (?, ?)`, i, fmt.Sprint("row ", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			for i := range 40 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				lo := (g + i) % 90
				r, err := db.QueryRaw(ctx, `SELECT n, s FROM p WHERE n >= ? AND n < ? ORDER BY n`, lo, lo+10)
				if err != nil {
					cancel()
					errs <- err
					return
				}
				n := lo
				for r.Next() {
					if r.Int64(0) != int64(n) || string(r.Text(1)) != fmt.Sprint("row ", n) {
						errs <- fmt.Errorf("row %d: %d %q", n, r.Int64(0), r.Text(1))
					}
					n++
				}
				if err := r.Err(); err != nil || n != lo+10 {
					errs <- fmt.Errorf("rows from %d ended at %d: %v", lo, n, err)
				}
				r.Close()
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	db.readers.mu.Lock()
	defer db.readers.mu.Unlock()
	if len(db.readers.idle) > sqliteMaxConns {
		t.Errorf("%d reader connections, the pool has %d", len(db.readers.idle), sqliteMaxConns)
	}
}

func TestQueryRawSQLiteStatementCacheBound(t *testing.T) {
	db := openRawTest(t, 0)
	for i := range stmtCacheSize + 50 {
		r, err := db.QueryRaw(context.Background(), fmt.Sprintf("SELECT %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if !r.Next() || r.Int64(0) != int64(i) {
			t.Fatalf("SELECT %d: %v", i, r.Err())
		}
		r.Close()
	}
	db.readers.mu.Lock()
	idle := append([]*rconn(nil), db.readers.idle...)
	db.readers.mu.Unlock()
	if len(idle) != 1 {
		t.Fatalf("%d connections for sequential reads, want 1 (reused)", len(idle))
	}
	c := idle[0]
	if len(c.stmts) != stmtCacheSize {
		t.Errorf("%d cached statements, bound %d", len(c.stmts), stmtCacheSize)
	}
	n := 0
	for s := c.head; s != nil; s = s.next {
		if c.stmts[s.sql] != s {
			t.Fatalf("statement %q in the list, not in the map", s.sql)
		}
		n++
	}
	if n != len(c.stmts) {
		t.Errorf("%d statements listed, %d cached", n, len(c.stmts))
	}
	if c.head.sql != fmt.Sprintf("SELECT %d", stmtCacheSize+49) || c.stmts["SELECT 0"] != nil {
		t.Errorf("not least recently used: head %q, SELECT 0 cached: %v", c.head.sql, c.stmts["SELECT 0"] != nil)
	}
	// SQLite's own count of open statements on the connection agrees.
	open := 0
	for p := sqlite3.Xsqlite3_next_stmt(c.tls, c.db, 0); p != 0; p = sqlite3.Xsqlite3_next_stmt(c.tls, c.db, p) {
		open++
	}
	if open != stmtCacheSize {
		t.Errorf("SQLite has %d statements open, cache %d", open, stmtCacheSize)
	}
}

func TestQueryRawSQLiteClose(t *testing.T) {
	db := openRawTest(t, 0)
	held, err := db.QueryRaw(context.Background(), `SELECT 1 UNION ALL SELECT 2`)
	if err != nil {
		t.Fatal(err)
	}
	r, err := db.QueryRaw(context.Background(), `SELECT 3`)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(db.readers.idle) != 0 {
		t.Errorf("%d idle readers after Close", len(db.readers.idle))
	}
	// Rows open across Close still read, and closing them closes their connection.
	if !held.Next() || held.Int64(0) != 1 {
		t.Errorf("rows open across Close: %v", held.Err())
	}
	if err := held.Close(); err != nil {
		t.Error(err)
	}
	if held.Next() || held.Int64(0) != 0 || held.Text(0) != nil {
		t.Error("closed rows still read")
	}
	if _, err := db.QueryRaw(context.Background(), `SELECT 1`); !errors.Is(err, errReadersClosed) {
		t.Errorf("QueryRaw after Close: %v", err)
	}
}

func TestQueryRawSQLiteBadStatements(t *testing.T) {
	db := openRawTest(t, 0)
	for _, c := range []struct {
		sql  string
		args []any
	}{
		{`SELEC 1`, nil},
		{`SELECT * FROM nowhere`, nil},
		{``, nil},
		{`-- nothing`, nil},
		{`SELECT 1; SELECT 2`, nil},
		{`SELECT ?`, nil},
		{`SELECT ?`, []any{1, 2}},
		{`SELECT ?`, []any{struct{}{}}},
		{`SELECT ?`, []any{int32(1)}},
		{`SELECT abs(-9223372036854775808)`, nil}, // integer overflow at run time
	} {
		r, err := db.QueryRaw(context.Background(), c.sql, c.args...)
		if err == nil {
			for r.Next() {
			}
			err = r.Err()
			r.Close()
		}
		if err == nil {
			t.Errorf("%q %v: no error", c.sql, c.args)
		}
	}
	if code, ok := SQLiteCode(func() error { _, err := db.QueryRaw(context.Background(), `SELEC 1`); return err }()); !ok || code != sqlite3.SQLITE_ERROR {
		t.Errorf("syntax error: code %d, %v", code, ok)
	}
	// Every connection is still usable.
	var rs []RawRows
	for i := range sqliteMaxConns {
		r, err := db.QueryRaw(context.Background(), `SELECT ? || 'x'`, i)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Next() || string(r.Text(0)) != fmt.Sprint(i, "x") {
			t.Fatalf("after errors: %q %v", r.Text(0), r.Err())
		}
		rs = append(rs, r)
	}
	for _, r := range rs {
		r.Close()
	}
}

// TestQueryRawSQLiteFreesCMemory: every C allocation the readers make (connections, statements,
// scratch buffers, TLS) is freed when they are closed. The allocator counts only when built with
// -tags memory.counters (modernc.org/memory); without it the test is skipped.
func TestQueryRawSQLiteFreesCMemory(t *testing.T) {
	// SQLite's and libc's one-time global allocations happen here, before the measure.
	warm := openRawTest(t, 0)
	if r, err := warm.QueryRaw(context.Background(), `SELECT 1`); err == nil {
		r.Close()
	}
	warm.Close()
	if libc.MemStat().Allocs == 0 {
		t.Skip("libc allocations are not counted; run with -tags memory.counters")
	}
	// Measured around the whole database: SQLite's unix VFS keeps a closed connection's file
	// descriptor (and a small allocation) until no other connection to the file holds a lock.
	before := libc.MemStat()
	db, err := OpenWith(context.Background(), "", t.TempDir(), Options{Schema: Migrate, CreateDataDir: true})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `CREATE TABLE m (s TEXT, b BLOB)`)
	mustExec(t, db, `INSERT INTO m VALUES ('x', x'00')`)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				ctx, cancel := context.WithCancel(context.Background())
				q := fmt.Sprintf(`SELECT s, b, ? || ?, %s(?) FROM m WHERE s <> ? /* %d */`, odata.SQLiteUpper, i%7)
				r, err := db.QueryRaw(ctx, q, g, strings.Repeat("é", i*10), "ßtraße", []byte("z"))
				if err == nil {
					for r.Next() {
						_ = r.Text(0)
						_ = r.Text(1)
					}
					r.Close()
				}
				cancel()
				if r, err := db.QueryRaw(ctx, `SELECT 1`); err == nil { // cancelled: nothing runs
					r.Close()
				}
				if _, err := db.QueryRaw(context.Background(), `SELEC 1`); err == nil {
					t.Error("syntax error accepted")
				}
			}
		})
	}
	wg.Wait()
	if db.readers.closed || len(db.readers.idle) == 0 {
		t.Fatal("no reader was used: the test measures nothing")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if after := libc.MemStat(); after.Allocs != before.Allocs {
		t.Errorf("C memory: %d allocations before opening the database, %d after closing it", before.Allocs, after.Allocs)
	}
}

// BenchmarkQueryRawSQLite reads a 10-row, 9-column page through the in-place reader and through the
// database/sql fallback (RawFromSQL), every column by its accessor, on a cancellable context like a
// request's.
func BenchmarkQueryRawSQLite(b *testing.B) {
	db := openRawTest(b, 0)
	mustExec(b, db, `CREATE TABLE page (id TEXT PRIMARY KEY, createdAt INTEGER, updatedAt INTEGER, version TEXT,
		deleted INTEGER, name TEXT, price REAL, qty INTEGER, done INTEGER)`)
	for i := range 50 {
		mustExec(b, db, `INSERT INTO page VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)`, fmt.Sprintf("id-%04d", i),
			int64(1733300000000+i), int64(1733300000000+i), "AAAAAAAAB9E=", fmt.Sprint("item name number ", i), float64(i)*1.25, i, i%2)
	}
	const q = `SELECT id, createdAt, updatedAt, version, deleted, name, price, qty, done FROM page WHERE deleted = ? ORDER BY id LIMIT ?`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	read := func(b *testing.B, r RawRows) {
		n := 0
		for r.Next() {
			n += len(r.Text(0))
			if _, err := r.Time(1); err != nil {
				b.Fatal(err)
			}
			if _, err := r.Time(2); err != nil {
				b.Fatal(err)
			}
			n += len(r.Text(3))
			_ = r.Bool(4)
			if !r.Null(5) {
				n += len(r.Text(5))
			}
			_ = r.Float64(6)
			_ = r.Int64(7)
			_ = r.Bool(8)
		}
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatal("no rows")
		}
	}
	b.Run("inplace", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := db.QueryRaw(ctx, q, false, 10)
			if err != nil {
				b.Fatal(err)
			}
			read(b, r)
		}
	})
	b.Run("inplace-50rows", func(b *testing.B) { // allocations do not grow with rows
		b.ReportAllocs()
		for b.Loop() {
			r, err := db.QueryRaw(ctx, q, false, 50)
			if err != nil {
				b.Fatal(err)
			}
			read(b, r)
		}
	})
	b.Run("databasesql", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rows, err := db.QueryContext(ctx, q, false, 10)
			if err != nil {
				b.Fatal(err)
			}
			r, err := RawFromSQL(rows)
			if err != nil {
				b.Fatal(err)
			}
			read(b, r)
		}
	})
}

// TestQueryRawSQLiteKeepsPlans: a read repeating its arguments reuses its prepared plan; the
// parameters a plan depends on (LIMIT ?, ranges on an indexed column, LIKE) would otherwise have it
// re-prepared on every bind. Changed arguments still give their own answers.
func TestQueryRawSQLiteKeepsPlans(t *testing.T) {
	db := openRawTest(t, 0)
	mustExec(t, db, `CREATE TABLE k (id TEXT PRIMARY KEY, deleted INTEGER, r REAL, b BLOB)`)
	for i := range 20 {
		mustExec(t, db, `INSERT INTO k VALUES (?, ?, ?, ?)`, fmt.Sprintf("id-%02d", i), i%2, float64(i)/2, []byte{byte(i)})
	}
	q := `SELECT count(*) FROM (SELECT id FROM k WHERE deleted = ? AND id > ? AND id LIKE ? AND r >= ? AND (b <> ? OR b IS NULL) ORDER BY id LIMIT ?)`
	count := func(args ...any) int64 {
		t.Helper()
		r, err := db.QueryRaw(context.Background(), q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if !r.Next() {
			t.Fatal(r.Err())
		}
		return r.Int64(0)
	}
	want := func(deleted int, after, like string, rmin float64, not []byte, limit int) int64 {
		n := int64(0)
		for i := range 20 {
			id := fmt.Sprintf("id-%02d", i)
			if i%2 == deleted && id > after && strings.HasPrefix(id, strings.TrimSuffix(like, "%")) && float64(i)/2 >= rmin &&
				not != nil && !bytes.Equal([]byte{byte(i)}, not) && n < int64(limit) {
				n++
			}
		}
		return n
	}
	cases := []struct {
		deleted     int
		after, like string
		rmin        float64
		not         []byte
		limit       int
	}{
		{0, "id-03", "id-%", 0, []byte{4}, 5},
		{0, "id-03", "id-%", 0, []byte{4}, 5},
		{0, "id-03", "id-%", 0, []byte{4}, 50},
		{1, "id-03", "id-1%", 0, []byte{4}, 50},
		{1, "id-03", "id-1%", 6.5, []byte{4}, 50},
		{1, "id-03", "id-1%", 6.5, []byte{13}, 50},
		{1, "id-03", "id-1%", 6.5, nil, 50},
		{1, "id-0", "id-1%", 6.5, nil, 50},
		{1, "id-0", "id-%", 0, []byte{4}, 5},
		{0, "id-03", "id-%", 0, []byte{4}, 5},
	}
	for _, c := range cases {
		var not any = c.not
		if c.not == nil {
			not = nil
		}
		if got, w := count(c.deleted, c.after, c.like, c.rmin, not, c.limit), want(c.deleted, c.after, c.like, c.rmin, c.not, c.limit); got != w {
			t.Errorf("%+v: %d rows, want %d", c, got, w)
		}
	}
	c := db.readers.idle[len(db.readers.idle)-1]
	s := c.stmts[q]
	reprepared := sqlite3.Xsqlite3_stmt_status(c.tls, s.p, sqlite3.SQLITE_STMTSTATUS_REPREPARE, 0)
	for range 10 {
		count(0, "id-03", "id-%", 0.0, []byte{4}, 5)
	}
	if n := sqlite3.Xsqlite3_stmt_status(c.tls, s.p, sqlite3.SQLITE_STMTSTATUS_REPREPARE, 0) - reprepared; n > 1 {
		t.Errorf("10 reads with the same arguments re-prepared the statement %d times", n)
	}
}
