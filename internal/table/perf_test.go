package table_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// countingConn counts the writes a PostgreSQL connection makes. pgx writes each batch of protocol
// messages it sends before waiting for an answer in one Write, so writes are round trips.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(b)
}

// openCountingPostgres opens a fresh PostgreSQL schema whose connections count their round trips.
func openCountingPostgres(t testing.TB) (*store.DB, *atomic.Int64) {
	t.Helper()
	n := &atomic.Int64{}
	db, err := store.OpenWith(context.Background(), storetest.PostgresURL(t), t.TempDir(), store.Options{Schema: store.Migrate,
		PostgresConn: func(c *pgx.ConnConfig) {
			dial := c.DialFunc
			c.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{Conn: conn, n: n}, nil
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, n
}

// TestPostgresRoundTrips pins the number of round trips to PostgreSQL a table request costs once the
// connection has prepared its statements: one for each read, lookup and write (no transaction around
// reads, no statement preparation per request, nothing else on the request path).
func TestPostgresRoundTrips(t *testing.T) {
	db, n := openCountingPostgres(t)
	e := newEnvTB(t, db)
	tok := e.token("custom:rt")
	for i := 0; i < 20; i++ {
		expect(t, e.do("POST", "/tables/movies", fmt.Sprintf(`{"id":"m%03d","title":"Movie %d","year":%d}`, i, i, 1950+i), "v2"), 201)
	}
	seq := 100
	cases := []struct {
		name   string
		method string
		path   func() string
		body   func() string
		status int
	}{
		{"read $top=10", "GET", func() string { return "/tables/movies?$top=10" }, nil, 200},
		{"read filter+orderby", "GET", func() string { return "/tables/movies?$filter=year%20gt%201955&$orderby=title&$top=5" }, nil, 200},
		{"lookup", "GET", func() string { return "/tables/movies/m003" }, nil, 200},
		{"insert", "POST", func() string { return "/tables/movies" }, func() string { seq++; return fmt.Sprintf(`{"id":"n%d","title":"New","year":2000}`, seq) }, 201},
		{"update", "PATCH", func() string { return "/tables/movies/m004" }, func() string { return `{"year":1999}` }, 200},
	}
	// The database/sql pool may hand any of its connections to a request, and each prepares a
	// statement the first time it sees it, so every case is warmed up on a single connection.
	db.SetMaxOpenConns(1)
	for _, c := range cases {
		for i := 0; i < 2; i++ {
			body := ""
			if c.body != nil {
				body = c.body()
			}
			expect(t, e.do(c.method, c.path(), body, "v2", "X-ZUMO-AUTH", tok), c.status)
		}
	}
	for _, c := range cases {
		const reqs = 10
		before := n.Load()
		for i := 0; i < reqs; i++ {
			body := ""
			if c.body != nil {
				body = c.body()
			}
			expect(t, e.do(c.method, c.path(), body, "v2", "X-ZUMO-AUTH", tok), c.status)
		}
		per := float64(n.Load()-before) / reqs
		t.Logf("%s: %.1f round trips per request", c.name, per)
		if per != 1 {
			t.Errorf("%s: %.1f round trips per request, want 1", c.name, per)
		}
	}
}

// benchEnv seeds the movies table with 248 rows and returns the server's handler and a user token.
func benchEnv(b *testing.B, db *store.DB) (http.Handler, string) {
	e := newEnvTB(b, db)
	for i := 0; i < 248; i++ {
		r := e.do("POST", "/tables/movies", fmt.Sprintf(`{"id":"m%03d","title":"Movie %d","year":%d}`, i, i, 1950+i%70), "v2")
		if r.status != 201 {
			b.Fatalf("seed: %d %s", r.status, r.body)
		}
	}
	return e.srv.Handler(), e.token("custom:bench")
}

// eachDB runs fn on SQLite and on PostgreSQL; rt counts PostgreSQL round trips (nil on SQLite).
func eachDB(b *testing.B, fn func(b *testing.B, db *store.DB, rt *atomic.Int64)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, storetest.Open(b, storetest.SQLiteURL(b)), nil) })
	b.Run("postgres", func(b *testing.B) {
		db, rt := openCountingPostgres(b)
		fn(b, db, rt)
	})
}

// BenchmarkConcurrent runs table requests from 32 goroutines through the whole middleware chain (no
// network) on both databases: reads, lookups and one-row inserts.
func BenchmarkConcurrent(b *testing.B) {
	eachDB(b, func(b *testing.B, db *store.DB, rt *atomic.Int64) {
		h, tok := benchEnv(b, db)
		var seq atomic.Int64
		for _, c := range []struct {
			name   string
			method string
			path   string
			body   bool
			status int
		}{
			{"read", "GET", "/tables/movies?$top=10", false, 200},
			{"lookup", "GET", "/tables/movies/m042", false, 200},
			{"filter-orderby", "GET", "/tables/movies?$filter=year%20gt%202010&$orderby=title&$top=10", false, 200},
			{"insert", "POST", "/tables/movies", true, 201},
		} {
			b.Run(c.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(16) // 32 goroutines on 2 processors
				var rt0 int64
				if rt != nil {
					rt0 = rt.Load()
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						var req *http.Request
						if c.body {
							req = httptest.NewRequest(c.method, c.path, strings.NewReader(fmt.Sprintf(`{"id":"b%d","title":"Bench","year":2001}`, seq.Add(1))))
						} else {
							req = httptest.NewRequest(c.method, c.path, nil)
						}
						req.Header.Set("X-ZUMO-AUTH", tok)
						req.Header.Set("ZUMO-API-VERSION", "2.0.0")
						w := httptest.NewRecorder()
						h.ServeHTTP(w, req)
						if w.Code != c.status {
							b.Errorf("status %d: %s", w.Code, w.Body)
							return
						}
					}
				})
				if rt != nil {
					b.ReportMetric(float64(rt.Load()-rt0)/float64(b.N), "roundtrips/op")
				}
			})
		}
	})
}

// TestConcurrentConflicts sends concurrent updates of one item, all based on the same version, so
// that they share group commits: exactly one wins and every other gets the version conflict it got
// without group commit (412 after If-Match, 409 for a v2 body version) with the winner's item.
func TestConcurrentConflicts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		for _, mode := range []string{"if-match", "body"} {
			id := "c-" + mode
			created := e.do("POST", "/tables/movies", `{"id":"`+id+`","title":"Start","year":1}`, "v2")
			expect(t, created, 201)
			version := created.json(t)["version"].(string)
			const n = 16
			results := make([]res, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if mode == "if-match" {
						results[i] = e.do("PATCH", "/tables/movies/"+id, fmt.Sprintf(`{"year":%d}`, 100+i), "v2", "If-Match", `"`+version+`"`)
					} else {
						results[i] = e.do("PATCH", "/tables/movies/"+id, fmt.Sprintf(`{"year":%d,"version":"%s"}`, 100+i, version), "v2")
					}
				}()
			}
			wg.Wait()
			want := 412
			if mode == "body" {
				want = 409
			}
			var winner map[string]any
			for _, r := range results {
				if r.status == 200 {
					if winner != nil {
						t.Fatalf("%s: two updates won", mode)
					}
					winner = r.json(t)
				}
			}
			if winner == nil {
				t.Fatalf("%s: no update won: %+v", mode, results[0])
			}
			for _, r := range results {
				if r.status == 200 {
					continue
				}
				if r.status != want {
					t.Fatalf("%s: status %d, want %d: %s", mode, r.status, want, r.body)
				}
				if got := r.json(t); got["version"] != winner["version"] || got["year"] != winner["year"] {
					t.Fatalf("%s: conflict body %v, want the winner's item %v", mode, got, winner)
				}
			}
		}
	})
}

// BenchmarkInsertLatency is the in-process view of bench/all.sh's insert scenario: 32 clients each
// inserting one row per request through the whole middleware chain into a table without declared
// indexes, reporting the latency distribution a client sees (p50, p99, max) and the inserts per
// second. Run it with a fixed count so the rounds compare, e.g.
// CI=true go test -run xxx -bench InsertLatency -benchtime 20000x ./internal/table
func BenchmarkInsertLatency(b *testing.B) {
	eachDB(b, func(b *testing.B, db *store.DB, _ *atomic.Int64) {
		e := newEnvTB(b, db)
		h, tok := e.srv.Handler(), e.token("custom:bench")
		const clients = 32
		lat := make([]time.Duration, b.N)
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					req := httptest.NewRequest("POST", "/tables/Strict", strings.NewReader(`{"title":"Bench","n":2001}`))
					req.Header.Set("X-ZUMO-AUTH", tok)
					req.Header.Set("ZUMO-API-VERSION", "2.0.0")
					w := httptest.NewRecorder()
					t0 := time.Now()
					h.ServeHTTP(w, req)
					lat[i] = time.Since(t0)
					if w.Code != http.StatusCreated {
						b.Errorf("status %d: %s", w.Code, w.Body)
						return
					}
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6 }
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "inserts/s")
		if db.Dialect == store.SQLite {
			// The checkpoints the writes no longer wait for (store/checkpoint.go).
			cs := db.CheckpointStats()
			b.ReportMetric(float64(cs.Runs), "checkpoints")
			b.ReportMetric(float64(cs.Longest)/1e6, "checkpoint-max-ms")
		}
	})
}
