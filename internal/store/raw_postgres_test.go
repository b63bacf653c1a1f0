package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/jackc/pgx/v5/pgconn"
)

func openPostgres(t testing.TB) *store.DB {
	t.Helper()
	return storetest.Open(t, storetest.PostgresURL(t))
}

// eachMode runs fn on PostgreSQL, each time on a fresh database, with reads streamed on a connection
// each ("stream": pipelining off), as by default ("default": streamed when alone, pipelined when they
// queue), and each sent through a pipeline, its rows buffered ("pipelined").
func eachMode(t *testing.T, fn func(t *testing.T, db *store.DB, pipelined bool)) {
	for _, mode := range []string{"stream", "default", "pipelined"} {
		t.Run(mode, func(t *testing.T) {
			db := openPostgres(t)
			switch mode {
			case "stream":
				db.SetReadPipelines(0)
			case "pipelined":
				db.AlwaysPipelineReads()
			}
			fn(t, db, mode == "pipelined")
			if n := db.ReadBatchesRunning(); n != 0 {
				t.Errorf("%d read batch slots still taken", n)
			}
			if p, _ := db.ReadPipelineStats(); mode == "pipelined" && p == 0 {
				t.Error("no read was pipelined")
			}
		})
	}
}

// rawTypesTable makes a table with a column of each type Gatehouse's tables use (and a few more)
// and rows with the edge values of each, a row of NULLs included.
func rawTypesTable(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE raw_types (
		k int PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, b boolean,
		tz timestamptz(3), ts timestamp, d date, t text, v varchar(40), n numeric, by bytea, j jsonb, u uuid)`); err != nil {
		t.Fatal(err)
	}
	rows := []string{
		`(1, 0, 0, 0, 0, 0, false, '2026-12-04T18:30:00.123Z', '2026-12-04 18:30:00.5', '2026-12-04', '', '', 0, '', '{}', '00000000-0000-0000-0000-000000000000')`,
		`(2, 32767, 2147483647, 9223372036854775807, 3.4e38, 1e308, true, '1970-01-01T00:00:00.001Z', '1999-12-31 23:59:59.999999', '1999-12-31', 'héllo wörld ✓ 😀', 'ünïcødé', 12345678901234567890.5, '\x00ff10', '{"a": [1, "x"]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')`,
		`(3, -32768, -2147483648, -9223372036854775808, -1.5, '-0', true, '1900-06-30T12:00:00.999+02:00', '0001-01-01 00:00:00', '0001-01-01', 'quote '' and "double" and \n', 'x', -0.000001, '\x', '[]', NULL)`,
		`(4, 1, -1, 4503599627370497, 'Infinity', '-Infinity', false, '2262-04-11T23:47:16.854Z', '2100-02-28 12:00:00', '2100-02-28', 'a', 'b', 42, '\x41', '"s"', NULL)`,
		`(5, NULL, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
		`(6, 7, 8, 9, 1e-45, 5e-324, true, '2026-01-01T00:00:00Z', '2026-01-01 00:00:00', 'infinity', 'z', 'z', 'NaN', NULL, 'null', NULL)`,
	}
	for _, r := range rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO raw_types VALUES `+r); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
}

// TestRawPostgresAgrees reads every column of every row through QueryRaw's in-place reader and
// through RawFromSQL over database/sql and compares every accessor.
func TestRawPostgresAgrees(t *testing.T) {
	eachMode(t, func(t *testing.T, db *store.DB, pipelined bool) {
		rawTypesTable(t, db)
		ctx := context.Background()
		const q = `SELECT k, i2, i4, i8, f4, f8, b, tz, ts, d, t, v, n, by, j, u, $1::bigint, $2::text, $3::double precision, $4::boolean, $5::timestamptz FROM raw_types ORDER BY k`
		args := []any{int64(-7), "ärg", 2.5, true, time.Date(2026, 5, 6, 7, 8, 9, 123e6, time.UTC)}
		cols := []string{"k", "i2", "i4", "i8", "f4", "f8", "b", "tz", "ts", "d", "t", "v", "n", "by", "j", "u", "$1", "$2", "$3", "$4", "$5"}

		in, err := db.QueryRaw(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		sqlRows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		fb, err := store.RawFromSQL(sqlRows)
		if err != nil {
			t.Fatal(err)
		}
		defer fb.Close()

		n := 0
		for in.Next() {
			if !fb.Next() {
				t.Fatalf("in-place has more rows than database/sql (%d)", n)
			}
			n++
			for i, c := range cols {
				where := fmt.Sprintf("row %d column %s", n, c)
				if a, b := in.Null(i), fb.Null(i); a != b {
					t.Errorf("%s: Null %v, database/sql %v", where, a, b)
				}
				if a, b := in.Text(i), fb.Text(i); !bytes.Equal(a, b) || (a == nil) != (b == nil) {
					t.Errorf("%s: Text %q, database/sql %q", where, a, b)
				}
				if c == "n" {
					continue // numeric: see TestRawPostgresNumeric
				}
				if a, b := in.Int64(i), fb.Int64(i); a != b {
					t.Errorf("%s: Int64 %d, database/sql %d", where, a, b)
				}
				if a, b := in.Float64(i), fb.Float64(i); math.Float64bits(a) != math.Float64bits(b) && !(math.IsNaN(a) && math.IsNaN(b)) {
					t.Errorf("%s: Float64 %v, database/sql %v", where, a, b)
				}
				if a, b := in.Bool(i), fb.Bool(i); a != b {
					t.Errorf("%s: Bool %v, database/sql %v", where, a, b)
				}
				at, aerr := in.Time(i)
				bt, berr := fb.Time(i)
				if !at.Equal(bt) || at.Location() != bt.Location() || (aerr == nil) != (berr == nil) {
					t.Errorf("%s: Time %v (%v), database/sql %v (%v)", where, at, aerr, bt, berr)
				}
			}
		}
		if err := in.Err(); err != nil {
			t.Fatal(err)
		}
		if fb.Next() {
			t.Fatal("database/sql has more rows than in-place")
		}
		if n != 6 {
			t.Fatalf("%d rows, want 6", n)
		}
		// The values themselves, not only the agreement.
		check := func(q string, want func(r store.RawRows) error) {
			t.Helper()
			r, err := db.QueryRaw(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !r.Next() {
				t.Fatalf("%s: no row (%v)", q, r.Err())
			}
			if err := want(r); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
		check(`SELECT i8, f8, tz, t FROM raw_types WHERE k = 2`, func(r store.RawRows) error {
			tz, err := r.Time(2)
			switch {
			case r.Int64(0) != math.MaxInt64:
				return fmt.Errorf("i8 %d", r.Int64(0))
			case r.Float64(1) != 1e308:
				return fmt.Errorf("f8 %v", r.Float64(1))
			case err != nil || !tz.Equal(time.UnixMilli(1)):
				return fmt.Errorf("tz %v %v", tz, err)
			case string(r.Text(3)) != "héllo wörld ✓ 😀":
				return fmt.Errorf("t %q", r.Text(3))
			}
			return nil
		})
		check(`SELECT f8, tz FROM raw_types WHERE k = 3`, func(r store.RawRows) error {
			tz, err := r.Time(1)
			if f := r.Float64(0); f != 0 || !math.Signbit(f) {
				return fmt.Errorf("f8 %v, want -0", f)
			}
			if want := time.Date(1900, 6, 30, 10, 0, 0, 999e6, time.UTC); err != nil || !tz.Equal(want) || tz.Location() != time.UTC {
				return fmt.Errorf("tz %v %v, want %v", tz, err, want)
			}
			return nil
		})
	})
}

// TestRawPostgresNumeric: a numeric column (no Gatehouse table has one; an expression could) reads
// as its text, and as a number where database/sql's fallback, which boxes it as a string, gives 0.
func TestRawPostgresNumeric(t *testing.T) {
	eachMode(t, func(t *testing.T, db *store.DB, pipelined bool) {
		r, err := db.QueryRaw(context.Background(), `SELECT 12.5::numeric, 12345678901234567890::numeric, 7::numeric`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if !r.Next() {
			t.Fatal(r.Err())
		}
		if got := string(r.Text(0)); got != "12.5" {
			t.Errorf("Text %q", got)
		}
		if got := r.Float64(0); got != 12.5 {
			t.Errorf("Float64 %v", got)
		}
		if got := r.Int64(0); got != 12 {
			t.Errorf("Int64 %v", got)
		}
		if got := r.Float64(1); got != 12345678901234567890 {
			t.Errorf("Float64 %v", got)
		}
		if got := r.Int64(2); got != 7 {
			t.Errorf("Int64 %v", got)
		}
	})
}

func inUse(t testing.TB, db *store.DB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for db.Stats().InUse != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still in use", db.Stats().InUse)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRawPostgresDataException: a data exception (SQLSTATE class 22, what internal/table answers with
// a 400) reaches the caller as a *pgconn.PgError, raised by the first row or by a later one.
func TestRawPostgresDataException(t *testing.T) {
	eachMode(t, func(t *testing.T, db *store.DB, pipelined bool) {
		ctx := context.Background()
		_, err := db.QueryRaw(ctx, `SELECT 1 / $1::int`, int64(0))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "22012" {
			t.Fatalf("got %v, want division_by_zero", err)
		}
		_, err = db.QueryRaw(ctx, `SELECT $1::bigint * 1e308::float8::bigint`, int64(1))
		if !errors.As(err, &pe) || pe.Code[:2] != "22" {
			t.Fatalf("got %v, want a class 22 error", err)
		}
		inUse(t, db)

		// Raised by the third row: streamed, after two rows were read; pipelined (the rows are buffered
		// before the read returns), by QueryRaw.
		r, err := db.QueryRaw(ctx, `SELECT 1 / (x - 3) FROM generate_series(1, 5) x`)
		if pipelined {
			if !errors.As(err, &pe) || pe.Code != "22012" {
				t.Fatalf("got %v, want division_by_zero", err)
			}
			inUse(t, db)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for r.Next() {
			n++
		}
		if !errors.As(r.Err(), &pe) || pe.Code != "22012" {
			t.Fatalf("got %v, want division_by_zero", r.Err())
		}
		if n != 2 {
			t.Fatalf("%d rows before the error, want 2", n)
		}
		r.Close()
		inUse(t, db)
	})
}

// TestRawPostgresContext: the end of a read's context stops the statement promptly with the
// context's error, and no connection stays taken.
func TestRawPostgresContext(t *testing.T) {
	eachMode(t, func(t *testing.T, db *store.DB, pipelined bool) {
		for _, c := range []struct {
			name string
			ctx  func() (context.Context, context.CancelFunc)
			want error
		}{
			{"deadline", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			}, context.DeadlineExceeded},
			{"cancel", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, cancel
			}, context.Canceled},
		} {
			t.Run(c.name, func(t *testing.T) {
				ctx, cancel := c.ctx()
				defer cancel()
				start := time.Now()
				r, err := db.QueryRaw(ctx, `SELECT pg_sleep(10)`)
				if err == nil {
					r.Close()
					t.Fatal("no error")
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("took %v", d)
				}
				inUse(t, db)
			})
		}

		// Already over: the pool is not even asked.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := db.QueryRaw(ctx, `SELECT 1`); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}

		// Ended while the rows are read (streamed) or buffered (pipelined).
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		// 100 kB of rows come first (the server flushes them), then the statement sleeps.
		start := time.Now()
		time.AfterFunc(300*time.Millisecond, cancel)
		r, err := db.QueryRaw(ctx, `SELECT x, repeat('x', 1000), pg_sleep(CASE WHEN x = 100 THEN 10 ELSE 0 END) FROM generate_series(1, 1000) x`)
		if pipelined {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v", err)
			}
		} else {
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for r.Next() {
				n++
			}
			if n < 50 || n >= 100 {
				t.Errorf("%d rows before the end, want the ones sent before the sleep", n)
			}
			if !errors.Is(r.Err(), context.Canceled) {
				t.Fatalf("got %v", r.Err())
			}
			r.Close()
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
		inUse(t, db)

		// The pool still serves.
		queryInt(t, db, `SELECT 1`)
	})
}

func queryInt(t testing.TB, db *store.DB, q string, args ...any) int64 {
	t.Helper()
	r, err := db.QueryRaw(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatalf("no row: %v", r.Err())
	}
	n := r.Int64(0)
	if r.Next() {
		t.Fatal("more than one row")
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRawPostgresReuse: after a syntax error, a read closed early and one read to the end, the one
// connection is back in the pool and still works (the same backend answers).
func TestRawPostgresReuse(t *testing.T) {
	eachMode(t, func(t *testing.T, db *store.DB, pipelined bool) {
		db.SetMaxOpenConns(1)
		ctx := context.Background()
		pid := queryInt(t, db, `SELECT pg_backend_pid()`)
		_, err := db.QueryRaw(ctx, `SELEC 1`)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42601" {
			t.Fatalf("got %v, want a syntax error", err)
		}
		inUse(t, db)

		r, err := db.QueryRaw(ctx, `SELECT x FROM generate_series(1, 100000) x`)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Next() || r.Int64(0) != 1 {
			t.Fatal("first row")
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if r.Next() {
			t.Fatal("Next after Close")
		}
		inUse(t, db)

		r, err = db.QueryRaw(ctx, `SELECT 1 WHERE false`)
		if err != nil {
			t.Fatal(err)
		}
		if r.Next() {
			t.Fatal("a row")
		}
		inUse(t, db) // an empty result gives its connection back before Close
		r.Close()

		if got := queryInt(t, db, `SELECT pg_backend_pid()`); got != pid {
			t.Fatalf("backend %d, was %d: the connection was not reused", got, pid)
		}
	})
}

// TestRawPostgresConcurrent: many goroutines reading at once each get their own rows (run with
// -race).
func TestRawPostgresConcurrent(t *testing.T) {
	eachMode(t, func(t *testing.T, db *store.DB, pipelined bool) {
		db.SetMaxOpenConns(4)
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE items (id bigint PRIMARY KEY, name text, price double precision)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO items SELECT x, 'item ' || x, x * 1.5 FROM generate_series(1, 200) x`); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := range 16 {
			wg.Go(func() {
				for j := range 50 {
					id := int64((g*50+j)%200 + 1)
					r, err := db.QueryRaw(ctx, `SELECT id, name, price FROM items WHERE id >= $1 ORDER BY id LIMIT 3`, id)
					if err != nil {
						errs <- err
						return
					}
					k := id
					for r.Next() {
						if r.Int64(0) != k || string(r.Text(1)) != fmt.Sprintf("item %d", k) || r.Float64(2) != float64(k)*1.5 {
							errs <- fmt.Errorf("row %d: %d %q %v", k, r.Int64(0), r.Text(1), r.Float64(2))
						}
						k++
					}
					if err := r.Err(); err != nil {
						errs <- err
					}
					r.Close()
					if want := min(id+3, 201); k != want {
						errs <- fmt.Errorf("from %d: read up to %d, want %d", id, k, want)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		inUse(t, db)
	})
}
