//go:build linux

package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// benchItems makes a table shaped like a Gatehouse table (system columns and a few of each type)
// with 1000 rows.
func benchItems(b *testing.B, db *store.DB) {
	b.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE items (id text PRIMARY KEY, "createdAt" timestamptz(3) NOT NULL,
		"updatedAt" timestamptz(3) NOT NULL, version text NOT NULL, deleted boolean NOT NULL, title text, rating double precision, done boolean, owner text)`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO items SELECT 'i' || lpad(x::text, 4, '0'), now(), now(), 'AAAAAAAAB9E=', false,
		'a movie title of some length ' || x, x / 7.0, x % 2 = 0, 'user' || (x % 10) FROM generate_series(1, 1000) x`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE items`); err != nil {
		b.Fatal(err)
	}
}

const itemCols = `id, "createdAt", "updatedAt", version, deleted, title, rating, done`

// consume reads every column of every row with the accessor a renderer would use.
func consume(b *testing.B, r store.RawRows) int {
	n, err := consumeErr(r)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func consumeErr(r store.RawRows) (int, error) {
	n, sink := 0, 0
	for r.Next() {
		n++
		sink += len(r.Text(0))
		for _, i := range []int{1, 2} {
			t, err := r.Time(i)
			if err != nil {
				r.Close()
				return n, err
			}
			sink += t.Nanosecond()
		}
		sink += len(r.Text(3))
		if r.Bool(4) {
			sink++
		}
		if !r.Null(5) {
			sink += len(r.Text(5))
		}
		if !r.Null(6) {
			sink += int(r.Float64(6))
		}
		if !r.Null(7) && r.Bool(7) {
			sink++
		}
	}
	if err := r.Err(); err != nil {
		r.Close()
		return n, err
	}
	_ = sink
	return n, r.Close()
}

// rounds lists a and b alternately, RAW_BENCH_ROUNDS times (default 1).
func rounds(tb testing.TB, modes ...string) []string {
	n := 1
	if s := os.Getenv("RAW_BENCH_ROUNDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			tb.Fatalf("RAW_BENCH_ROUNDS=%q", s)
		}
	}
	var l []string
	for range n {
		l = append(l, modes...)
	}
	return l
}

// BenchmarkRawPostgres compares a read consumed in place (QueryRaw streaming its rows: inplace; through
// the read batcher, which streams a read alone: batcher; every read through a pipeline, its rows
// buffered: pipelined) with the same read through database/sql
// (RawFromSQL: sql), one connection, one read at a time: wall time, allocations, and the
// processor time of this process and of the PostgreSQL backend per read.
// CI=true RAW_BENCH_ROUNDS=5 go test -run xxx -bench RawPostgres -benchmem -benchtime 20000x ./internal/store
func BenchmarkRawPostgres(b *testing.B) {
	db := storetest.Open(b, storetest.PostgresURL(b))
	benchItems(b, db)
	db.SetMaxOpenConns(1)
	db.SetReadPipelines(0)
	ctx := context.Background()
	var pid int
	if err := db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	batcher := db.QueryRawBatched(store.DefaultReadPipelines, false)
	pipelined := db.QueryRawBatched(store.DefaultReadPipelines, true)
	read := map[string]func(q string, args ...any) (store.RawRows, error){
		"inplace":   func(q string, args ...any) (store.RawRows, error) { return db.QueryRaw(ctx, q, args...) },
		"batcher":   func(q string, args ...any) (store.RawRows, error) { return batcher(ctx, q, args...) },
		"pipelined": func(q string, args ...any) (store.RawRows, error) { return pipelined(ctx, q, args...) },
		"sql": func(q string, args ...any) (store.RawRows, error) {
			rows, err := db.QueryContext(ctx, q, args...)
			if err != nil {
				return nil, err
			}
			return store.RawFromSQL(rows)
		},
	}
	for _, c := range []struct {
		name, q string
		arg     func(i int) any
		rows    int
	}{
		{"lookup", `SELECT ` + itemCols + ` FROM items WHERE id = $1 AND NOT deleted`, func(i int) any { return fmt.Sprintf("i%04d", i%1000+1) }, 1},
		{"read10", `SELECT ` + itemCols + ` FROM items WHERE id > $1 AND NOT deleted ORDER BY id LIMIT 10`, func(i int) any { return fmt.Sprintf("i%04d", i%990) }, 10},
	} {
		args := make([]any, 1000)
		for i := range args {
			args[i] = c.arg(i)
		}
		// A and B alternate, rounds times each (RAW_BENCH_ROUNDS, default 1): the machine's load drifts
		// over a run, and -count repeats one sub-benchmark before the next.
		for _, how := range rounds(b, "inplace", "batcher", "pipelined", "sql") {
			b.Run(c.name+"/"+how, func(b *testing.B) {
				q := read[how]
				r, err := q(c.q, args[0]) // the connection prepares the statement
				if err != nil {
					b.Fatal(err)
				}
				consume(b, r)
				b.ReportAllocs()
				backend0, self0 := storetest.BackendCPU(b, pid), storetest.SelfCPU(b)
				i := 0
				for b.Loop() {
					r, err := q(c.q, args[i%len(args)])
					if err != nil {
						b.Fatal(err)
					}
					if n := consume(b, r); n != c.rows {
						b.Fatalf("%d rows, want %d", n, c.rows)
					}
					i++
				}
				b.StopTimer()
				b.ReportMetric(float64(storetest.SelfCPU(b)-self0)/1e3/float64(b.N), "self-cpu-µs/op")
				b.ReportMetric(float64(storetest.BackendCPU(b, pid)-backend0)/1e3/float64(b.N), "backend-cpu-µs/op")
			})
		}
	}
}

// BenchmarkRawPostgresParallel runs lookups from 32 goroutines, each read on its own connection
// (direct) or through the read batcher, which pipelines the reads queued while its runners are busy
// (batched): processor time per read of this process and of all the pool's backends.
// CI=true RAW_BENCH_ROUNDS=5 RAW_BENCH_MODES="direct10 direct2 batched2" go test -run xxx -bench RawPostgresParallel -benchmem -benchtime 20000x ./internal/store
func BenchmarkRawPostgresParallel(b *testing.B) {
	const conns, clients = 10, 32
	dsn := storetest.PostgresURL(b)
	db := storetest.Open(b, dsn)
	benchItems(b, db)
	ctx := context.Background()
	type mode struct {
		db        *store.DB
		pipelines int // SetReadPipelines
		pids      []int
	}
	modes := map[string]mode{}
	// directN: each read on its own connection, a pool of N (a database of its own, whose backends are
	// measured); batchedN: the read batcher with N runners on the pool of 10.
	for _, n := range []int{2, 4, conns} {
		d := db
		if n != conns {
			d = storetest.Open(b, dsn)
		}
		d.SetMaxOpenConns(n)
		d.SetReadPipelines(0)
		modes[fmt.Sprintf("direct%d", n)] = mode{d, 0, poolPids(b, d, n)}
	}
	for _, n := range []int{1, 2, 4, conns} {
		modes[fmt.Sprintf("batched%d", n)] = mode{db, n, modes["direct10"].pids}
	}
	names := strings.Fields(os.Getenv("RAW_BENCH_MODES"))
	if len(names) == 0 {
		names = []string{"direct10", "direct2", "batched2"}
	}
	const q = `SELECT ` + itemCols + ` FROM items WHERE id = $1 AND NOT deleted`
	args := make([]any, 1000)
	for i := range args {
		args[i] = fmt.Sprintf("i%04d", i+1)
	}
	for _, how := range rounds(b, names...) {
		m, ok := modes[how]
		if !ok {
			b.Fatalf("RAW_BENCH_MODES: no mode %q", how)
		}
		backends := func() (d time.Duration) {
			for _, pid := range m.pids {
				d += storetest.BackendCPU(b, pid)
			}
			return d
		}
		b.Run("lookup/"+how, func(b *testing.B) {
			m.db.SetReadPipelines(m.pipelines)
			read := m.db.QueryRaw
			b.ReportAllocs()
			backend0, self0 := backends(), storetest.SelfCPU(b)
			lat := make([]time.Duration, b.N+1)
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for range clients {
				wg.Go(func() {
					for {
						i := int(next.Add(1))
						if i > b.N {
							return
						}
						start := time.Now()
						r, err := read(ctx, q, args[i%len(args)])
						if err == nil {
							var n int
							if n, err = consumeErr(r); err == nil && n != 1 {
								err = fmt.Errorf("%d rows", n)
							}
						}
						lat[i] = time.Since(start)
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			self, backend := storetest.SelfCPU(b)-self0, backends()-backend0
			slices.Sort(lat[1:])
			b.ReportMetric(float64(lat[1+b.N/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[1+b.N*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(self)/1e3/float64(b.N), "self-cpu-µs/op")
			b.ReportMetric(float64(backend)/1e3/float64(b.N), "backend-cpu-µs/op")
			b.ReportMetric(float64(self+backend)/1e3/float64(b.N), "total-cpu-µs/op")
			if p, r := m.db.ReadPipelineStats(); p > 0 {
				b.ReportMetric(float64(r)/float64(p), "reads/pipeline")
				b.ReportMetric(float64(r)/float64(b.N), "pipelined-reads/op")
			}
		})
	}
}

// poolPids opens n connections at once and returns their backends' process ids.
func poolPids(b *testing.B, db *store.DB, n int) []int {
	ctx := context.Background()
	var pids []int
	var held []*sql.Conn
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, c)
		var pid int
		if err := c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			b.Fatal(err)
		}
		pids = append(pids, pid)
	}
	for _, c := range held {
		c.Close()
	}
	return pids
}
