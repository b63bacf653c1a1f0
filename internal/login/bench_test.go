package login_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// BenchmarkClientFlowLogin measures client-flow logins with an RS256 ID token (Google-style: verified
// by idtoken on a warm key set) for an existing user, through the whole HTTP stack and SQLite:
// 32 concurrent clients (SetParallelism(16) with GOMAXPROCS 2). It reports logins/s and the p99.
//
//	go test -run '^$' -bench ClientFlowLogin -benchtime 5s ./internal/login
func BenchmarkClientFlowLogin(b *testing.B) {
	db := storetest.Open(b, storetest.SQLiteURL(b))
	e := newEnv(b, db, setup{})
	body := `{"id_token":"` + e.op.IDToken("acme-client", "", nil) + `"}`
	if r := e.do("POST", "/login/acme", nil, body); r.status != 200 { // creates the user, warms the keys
		b.Fatalf("%d %s", r.status, r.body)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			res, err := client.Post(e.ts.URL+"/login/acme", "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body) //nolint:errcheck // drained so the connection is reused
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "logins/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	}
}
