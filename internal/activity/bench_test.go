package activity_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

type nopPinger struct{}

func (nopPinger) Ping(context.Context) error { return nil }

// benchServer is the full middleware chain in front of a trivial handler, with or without the
// activity recorder (flushing to SQLite in the background, as in production).
func benchServer(b *testing.B, withActivity bool) http.Handler {
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	a, err := auth.New(auth.Secrets{MasterKey: masterKey, ApplicationKey: appKey, SystemKey: systemKey}, auth.Options{ClockSkew: time.Minute, MaxTTL: cfg.TokenMaxTTL})
	if err != nil {
		b.Fatal(err)
	}
	d := server.Deps{Config: cfg, Auth: a, DB: nopPinger{}, Metrics: metrics.New("bench"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "bench"}
	if withActivity {
		db := storetest.Open(b, storetest.SQLiteURL(b))
		rec := activity.NewRecorder(activity.NewStore(db), activity.Options{Instance: "bench", Log: quiet(), MaxPending: 1 << 20})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); rec.Run(ctx) }()
		b.Cleanup(func() { cancel(); <-done })
		d.Activity = rec
	}
	s := server.New(d)
	s.MountPath("/bench", "/bench", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	return s.Handler()
}

func benchRequests(b *testing.B, withActivity bool) {
	h := benchServer(b, withActivity)
	req := httptest.NewRequest("GET", "/bench?x=1", nil)
	req.Header.Set("X-ZUMO-APPLICATION", appKey)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// BenchmarkRequestWithoutActivity and BenchmarkRequestWithActivity: the request path's cost of
// activity recording is the difference (go test ./internal/activity -run '^$' -bench Request).
func BenchmarkRequestWithoutActivity(b *testing.B) { benchRequests(b, false) }
func BenchmarkRequestWithActivity(b *testing.B)    { benchRequests(b, true) }

// BenchmarkRecorderRequest is Recorder.Request alone (no flushing: the batch only grows).
func BenchmarkRecorderRequest(b *testing.B) {
	db := storetest.Open(b, storetest.SQLiteURL(b))
	rec := activity.NewRecorder(activity.NewStore(db), activity.Options{Instance: "bench", Log: quiet(), MaxPending: 1 << 30})
	q := activity.Request{RequestID: "0123456789abcdef", Method: "GET", Route: "/tables/{table}", Path: "/tables/todo", Status: 200, Duration: time.Millisecond, UserID: "sid:1", Bytes: 100}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec.Request(q)
	}
}

// BenchmarkFlush is the background writer's cost per event (batches of 1,000 into SQLite).
func BenchmarkFlush(b *testing.B) {
	db := storetest.Open(b, storetest.SQLiteURL(b))
	rec := activity.NewRecorder(activity.NewStore(db), activity.Options{Instance: "bench", Log: quiet(), MaxPending: 1 << 30})
	q := activity.Request{RequestID: "0123456789abcdef", Method: "GET", Route: "/tables/{table}", Path: "/tables/todo", Status: 200, Duration: time.Millisecond, UserID: "sid:1", Bytes: 100}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec.Request(q)
		if i%1000 == 999 {
			if err := rec.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}
