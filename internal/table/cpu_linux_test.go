//go:build linux

package table_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// BenchmarkReadCPU splits the processor time of one read between Gatehouse (this process: the
// middleware, the driver, the system calls of the round trip) and the PostgreSQL backend that runs
// the statement (its /proc/<pid>/stat), one connection, one request at a time: where a PostgreSQL
// read's cost goes next to the same read on SQLite.
// CI=true go test -run xxx -bench ReadCPU -benchtime 20000x ./internal/table
func BenchmarkReadCPU(b *testing.B) {
	eachDB(b, func(b *testing.B, db *store.DB, _ *atomic.Int64) {
		h, tok := benchEnv(b, db)
		db.SetMaxOpenConns(1)
		pid := 0
		if db.Dialect == store.Postgres {
			if err := db.QueryRowContext(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range []struct{ name, path string }{{"lookup", "/tables/movies/m042"}, {"read", "/tables/movies?$top=10"}} {
			b.Run(c.name, func(b *testing.B) {
				req := httptest.NewRequest("GET", c.path, nil)
				req.Header.Set("X-ZUMO-AUTH", tok)
				req.Header.Set("ZUMO-API-VERSION", "2.0.0")
				serve := func() {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
				serve() // the connection prepares the statement
				backend0, self0 := storetest.BackendCPU(b, pid), storetest.SelfCPU(b)
				b.ResetTimer()
				for b.Loop() {
					serve()
				}
				b.StopTimer()
				b.ReportMetric(float64(storetest.SelfCPU(b)-self0)/1e3/float64(b.N), "gatehouse-cpu-µs/op")
				if pid != 0 {
					b.ReportMetric(float64(storetest.BackendCPU(b, pid)-backend0)/1e3/float64(b.N), "backend-cpu-µs/op")
				}
			})
		}
	})
}
