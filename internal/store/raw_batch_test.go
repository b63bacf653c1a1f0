package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/jackc/pgx/v5/pgconn"
)

// holdPipeline keeps db's only pipeline busy for d with a read of its own, so that the reads started
// meanwhile queue and go out together as the next batch. It returns when the read has started.
func holdPipeline(t *testing.T, db *store.DB, d time.Duration) (wait func()) {
	t.Helper()
	db.SetReadPipelines(1)
	done := make(chan error, 1)
	go func() {
		r, err := db.QueryRaw(context.Background(), `SELECT pg_sleep($1::float8)`, d.Seconds())
		if err == nil {
			err = r.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for db.ReadBatchesRunning() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the holding read did not start")
		}
		time.Sleep(time.Millisecond)
	}
	return func() {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestReadBatchIsolation: reads pipelined together each get their own answer, in their own order of
// rows, and one's error (a data exception, a syntax error) is its own: the others succeed.
func TestReadBatchIsolation(t *testing.T) {
	db := openPostgres(t)
	wait := holdPipeline(t, db, 300*time.Millisecond)
	const n = 30
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = func() error {
				var q string
				var args []any
				switch {
				case i%5 == 0:
					q, args = `SELECT 1 / $1::int`, []any{int64(0)}
				case i%7 == 0:
					q = `SELEC 1`
				default:
					q, args = `SELECT x, repeat('y', x) FROM generate_series($1::int, $1::int + 2) x`, []any{int64(i)}
				}
				r, err := db.QueryRaw(context.Background(), q, args...)
				if err != nil {
					return err
				}
				defer r.Close()
				want := int64(i)
				for r.Next() {
					if r.Int64(0) != want || len(r.Text(1)) != int(want) {
						return fmt.Errorf("read %d: row %d %d", i, r.Int64(0), len(r.Text(1)))
					}
					want++
				}
				if want != int64(i)+3 {
					return fmt.Errorf("read %d: %d rows", i, want-int64(i))
				}
				return r.Err()
			}()
		})
	}
	wg.Wait()
	wait()
	for i, err := range errs {
		var pe *pgconn.PgError
		switch {
		case i%5 == 0:
			if !errors.As(err, &pe) || pe.Code != "22012" {
				t.Errorf("read %d: %v, want division_by_zero", i, err)
			}
		case i%7 == 0:
			if !errors.As(err, &pe) || pe.Code != "42601" {
				t.Errorf("read %d: %v, want a syntax error", i, err)
			}
		case err != nil:
			t.Errorf("read %d: %v", i, err)
		}
	}
	// Reads whose statement failed to prepare are not sent; each failed read ends its pipeline (one
	// implicit transaction), and the reads after it go again in the next one.
	pipelines, reads := db.ReadPipelineStats()
	if failed := int64(n/5 + 1); reads < n-n/7 || pipelines > 1+failed {
		t.Errorf("%d reads in %d pipelines: the reads were not pipelined together", reads, pipelines)
	}
	inUse(t, db)
	if n := db.ReadBatchesRunning(); n != 0 {
		t.Errorf("%d read batch slots still taken", n)
	}
}

// TestReadBatchCancelMember: a read whose context ends while it waits in a batch returns at once with
// its context's error; the others of its batch are answered.
func TestReadBatchCancelMember(t *testing.T) {
	db := openPostgres(t)
	wait := holdPipeline(t, db, 300*time.Millisecond)
	var wg sync.WaitGroup
	var slowErr, fastErr error
	var slowTook time.Duration
	var fast int64
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, slowErr = db.QueryRaw(ctx, `SELECT 1 FROM pg_sleep(0.8)`)
		slowTook = time.Since(start)
	})
	wg.Go(func() {
		time.Sleep(20 * time.Millisecond) // after the slow one, in the same batch
		r, err := db.QueryRaw(context.Background(), `SELECT $1::bigint`, int64(42))
		if err != nil {
			fastErr = err
			return
		}
		defer r.Close()
		if r.Next() {
			fast = r.Int64(0)
		}
		fastErr = r.Err()
	})
	wg.Wait()
	wait()
	if !errors.Is(slowErr, context.DeadlineExceeded) || slowTook > 400*time.Millisecond {
		t.Errorf("the cancelled read: %v after %v, want its deadline's error at once", slowErr, slowTook)
	}
	if fastErr != nil || fast != 42 {
		t.Errorf("its batch-mate: %d, %v", fast, fastErr)
	}
	inUse(t, db)
	if n := db.ReadBatchesRunning(); n != 0 {
		t.Errorf("%d read batch slots still taken", n)
	}
	// The pool serves on.
	if got := queryInt(t, db, `SELECT 7`); got != 7 {
		t.Fatal(got)
	}
}

// TestReadBatchStatements: the statements a batcher prepares are bounded per connection, and a
// batcher replaced by SetReadPipelines does not collide with the statements its predecessor left.
func TestReadBatchStatements(t *testing.T) {
	db := openPostgres(t)
	db.SetMaxOpenConns(1)
	db.AlwaysPipelineReads()
	for round := range 2 {
		for i := range 300 {
			q := fmt.Sprintf(`SELECT %d + $1::int`, i)
			if got := queryInt(t, db, q, int64(round)); got != int64(i+round) {
				t.Fatalf("%s: %d", q, got)
			}
		}
		db.SetReadPipelines(store.DefaultReadPipelines) // a new batcher, the same connection
		db.AlwaysPipelineReads()
	}
	n := queryInt(t, db, `SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'gh_read_%'`)
	// Unbounded, 601 (two batchers' 300, the replaced one's left on the connection, and this one);
	// bounded at 256 per batcher, 44 + 44 + 1.
	if n > 256 || n == 0 {
		t.Fatalf("%d statements prepared on the connection", n)
	}
}

// TestReadBatchNested: a caller may read again while it holds rows open, more callers than there are
// pipelines at once, without starving the batcher of slots.
func TestReadBatchNested(t *testing.T) {
	db := openPostgres(t)
	db.SetReadPipelines(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			outer, err := db.QueryRaw(ctx, `SELECT x FROM generate_series(1, 3) x`)
			if err != nil {
				errs <- err
				return
			}
			defer outer.Close()
			for outer.Next() {
				inner, err := db.QueryRaw(ctx, `SELECT $1::int * 2`, outer.Int64(0))
				if err != nil {
					errs <- err
					return
				}
				if !inner.Next() || inner.Int64(0) != 2*outer.Int64(0) {
					errs <- fmt.Errorf("inner read: %v", inner.Err())
				}
				inner.Close()
			}
			if err := outer.Err(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestReadBatchDeadConnection: a pooled connection whose backend was terminated is replaced, streamed
// or pipelined, and the reads after it succeed.
func TestReadBatchDeadConnection(t *testing.T) {
	eachMode(t, func(t *testing.T, db *store.DB, pipelined bool) {
		db.SetMaxOpenConns(1)
		pid := queryInt(t, db, `SELECT pg_backend_pid()`)
		admin := openPostgres(t)
		admin.SetReadPipelines(0)
		if ok := queryInt(t, admin, `SELECT pg_terminate_backend($1::int)::int`, pid); ok != 1 {
			t.Fatal("not terminated")
		}
		time.Sleep(1100 * time.Millisecond) // database/sql's check of an idle connection (pgx: after 1 s)
		if got := queryInt(t, db, `SELECT pg_backend_pid()`); got == pid {
			t.Fatal("the same backend answered")
		}
		if got := queryInt(t, db, `SELECT 5`); got != 5 {
			t.Fatal(got)
		}
		inUse(t, db)
	})
}

// TestReadBatchBufferRows: a read retried alone after its batch failed to reach the server is
// buffered whole, its connection back in the pool before its reader reads (the reader may be gone).
func TestReadBatchBufferRows(t *testing.T) {
	db := openPostgres(t)
	ctx := context.Background()
	r, err := db.QueryRawBuffered(ctx, `SELECT x, CASE WHEN x % 2 = 0 THEN 'é' || x END FROM generate_series(1, 500) x`)
	if err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().InUse; n != 0 {
		t.Fatalf("%d connections in use", n)
	}
	want := int64(1)
	for r.Next() {
		if r.Int64(0) != want || r.Null(1) != (want%2 == 1) || (want%2 == 0 && string(r.Text(1)) != fmt.Sprint("é", want)) {
			t.Fatalf("row %d: %d %q", want, r.Int64(0), r.Text(1))
		}
		want++
	}
	if err := r.Err(); err != nil || want != 501 {
		t.Fatalf("%d rows, %v", want-1, err)
	}
	r.Close()
	var pe *pgconn.PgError
	if _, err := db.QueryRawBuffered(ctx, `SELECT 1 / (x - 300) FROM generate_series(1, 500) x`); !errors.As(err, &pe) || pe.Code != "22012" {
		t.Fatalf("got %v, want division_by_zero", err)
	}
	inUse(t, db)
}

// TestReadBatchSchemaChange: a statement prepared before its table changed is prepared again
// (PostgreSQL refuses a prepared statement whose result type changed).
func TestReadBatchSchemaChange(t *testing.T) {
	eachMode(t, func(t *testing.T, db *store.DB, pipelined bool) {
		db.SetMaxOpenConns(1)
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE sc (a int); INSERT INTO sc VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		if got := queryInt(t, db, `SELECT * FROM sc`); got != 1 {
			t.Fatal(got)
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE sc ADD COLUMN b int DEFAULT 2`); err != nil {
			t.Fatal(err)
		}
		var err error
		for range 2 { // the first read after the change may fail (as pgx's own cache does)
			var r store.RawRows
			if r, err = db.QueryRaw(ctx, `SELECT * FROM sc`); err == nil {
				ok := r.Next() && r.Int64(0) == 1 && len(r.Text(1)) == 1 && r.Int64(1) == 2
				r.Close()
				if !ok {
					t.Fatal("not the new row")
				}
				break
			}
			t.Logf("read after the change: %v", err)
		}
		if err != nil {
			t.Fatalf("still failing after the change: %v", err)
		}
	})
}
