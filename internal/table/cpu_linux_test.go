//go:build linux

package table_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
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
				backend0, self0 := backendCPU(b, pid), selfCPU(b)
				b.ResetTimer()
				for b.Loop() {
					serve()
				}
				b.StopTimer()
				b.ReportMetric(float64(selfCPU(b)-self0)/1e3/float64(b.N), "gatehouse-cpu-µs/op")
				if pid != 0 {
					b.ReportMetric(float64(backendCPU(b, pid)-backend0)/1e3/float64(b.N), "backend-cpu-µs/op")
				}
			})
		}
	})
}

// backendCPU is the user and system time of process pid (0: none).
func backendCPU(b *testing.B, pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("the PostgreSQL backend's times are not readable here: %v", err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from the third on
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
