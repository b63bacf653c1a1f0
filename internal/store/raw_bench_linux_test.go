//go:build linux

package store_test

import (
	"context"
	"fmt"
	"testing"

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
	n, sink := 0, 0
	for r.Next() {
		n++
		sink += len(r.Text(0))
		for _, i := range []int{1, 2} {
			t, err := r.Time(i)
			if err != nil {
				b.Fatal(err)
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
		b.Fatal(err)
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	_ = sink
	return n
}

// BenchmarkRawPostgres compares a read consumed in place (QueryRaw) with the same read through
// database/sql (RawFromSQL), one connection, one read at a time: wall time, allocations, and the
// processor time of this process and of the PostgreSQL backend per read.
// CI=true go test -run xxx -bench RawPostgres -benchmem -benchtime 20000x -count 5 ./internal/store
func BenchmarkRawPostgres(b *testing.B) {
	db := storetest.Open(b, storetest.PostgresURL(b))
	benchItems(b, db)
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	var pid int
	if err := db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		b.Fatal(err)
	}
	read := map[string]func(q string, args ...any) (store.RawRows, error){
		"inplace": func(q string, args ...any) (store.RawRows, error) { return db.QueryRaw(ctx, q, args...) },
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
		for _, how := range []string{"inplace", "sql"} {
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
