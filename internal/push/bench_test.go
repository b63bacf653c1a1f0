package push_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/push"
	"github.com/gatehouse/gatehouse/internal/push/platform"
	"github.com/gatehouse/gatehouse/internal/push/pushfake"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func apnsToken(i int) string { return fmt.Sprintf("%064x", i+1) }

// realAPNs is the APNs platform talking HTTP/2 to the APNs fake on loopback.
func realAPNs(b testing.TB) (*platform.APNs, *pushfake.APNs) {
	fake := pushfake.NewAPNs(b, "com.example.app")
	a, err := platform.NewAPNs(fake.TokenConfig(), fake.Options())
	if err != nil {
		b.Fatal(err)
	}
	return a, fake
}

func eachDB(b *testing.B, fn func(b *testing.B, db *store.DB)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, storetest.Open(b, storetest.SQLiteURL(b))) })
	b.Run("postgres", func(b *testing.B) { fn(b, storetest.Open(b, storetest.PostgresURL(b))) })
}

// BenchmarkOutboxDeliveries measures deliveries per second through the outbox: b.N notifications
// queued by one send, then claimed, sent over HTTP/2 to the APNs fake (which verifies the provider
// token of every request) and settled, with the default concurrency (16 in flight).
//
//	go test ./internal/push -run XXX -bench OutboxDeliveries -benchtime 5000x
func BenchmarkOutboxDeliveries(b *testing.B) {
	eachDB(b, func(b *testing.B, db *store.DB) {
		a, fake := realAPNs(b)
		svc := push.New(push.Options{Store: push.NewStore(db), Platforms: []push.Platform{a}, Config: push.Config{MaxFanout: 10_000_000}})
		devs := make([]string, b.N)
		for i := range devs {
			devs[i] = apnsToken(i)
		}
		ctx := context.Background()
		if _, err := svc.SendNative(ctx, nil, push.Target{Devices: devs}, push.Native{Platform: push.APNs, Payload: []byte(`{"aps":{"alert":"bench"}}`)}); err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		b.ResetTimer()
		start := time.Now()
		go func() { _ = svc.Run(rctx) }()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Minute)
		defer wcancel()
		if _, err := fake.Wait(wctx, b.N); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
		cancel()
	})
}

// BenchmarkScriptToReceipt measures the latency from a custom API's push.apns.send to the APNs
// fake's receipt, one notification at a time: the script runs, the send is written to the outbox
// and committed, the worker is woken, claims it, sends it over HTTP/2 and the fake accepts it.
//
//	go test ./internal/push -run XXX -bench ScriptToReceipt -benchtime 500x
func BenchmarkScriptToReceipt(b *testing.B) {
	eachDB(b, func(b *testing.B, db *store.DB) {
		a, fake := realAPNs(b)
		svc := push.New(push.Options{Store: push.NewStore(db), Platforms: []push.Platform{a}})
		dir := b.TempDir()
		files := map[string]string{
			"api/notify.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
			"api/notify.js": `exports.post = function (req, res) {
  push.apns.send(req.query.token, { alert: 'hi', payload: { n: req.query.n } }, {
    success: function () { res.send(202); }, error: function (e) { res.send(500, { error: e.message }); } });
};`,
		}
		for name, body := range files {
			p := filepath.Join(dir, name)
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
			_ = os.WriteFile(p, []byte(body), 0o644)
		}
		e, err := script.New(dir, script.Options{Push: push.Scripts{S: svc}})
		if err != nil {
			b.Fatal(err)
		}
		h := &script.APIHandler{Engine: e, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = svc.Run(ctx) }()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			r := httptest.NewRequest("POST", fmt.Sprintf("/api/notify?token=%s&n=%d", apnsToken(i%1000), i), strings.NewReader("{}"))
			r = r.WithContext(httpx.WithCaller(r.Context(), &auth.Caller{}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusAccepted {
				b.Fatalf("api: %d %s", w.Code, w.Body)
			}
			wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := fake.Wait(wctx, i+1)
			wcancel()
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	})
}

// BenchmarkQueued100k measures the memory of an instance with 100,000 notifications waiting: one
// send fans out to 100,000 registrations (the outbox is written in batches, never held whole), then
// the workers run against a service that does not answer (every delivery waits in flight) and the
// Go heap is read. Reported: heap in use after the send and while delivering, in MB.
//
//	go test ./internal/push -run XXX -bench Queued100k -benchtime 1x
func BenchmarkQueued100k(b *testing.B) {
	eachDB(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		st := push.NewStore(db)
		const n = 100_000
		stuck := &stuckPlatform{}
		svc := push.New(push.Options{Store: st, Platforms: []push.Platform{stuck}, Config: push.Config{SendTimeout: time.Hour, Lease: 2 * time.Hour}})
		// 100,000 template registrations with one tag, written in one transaction.
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		reg, _ := tx.PrepareContext(ctx, db.Rebind(`INSERT INTO gatehouse_push_registrations (id, installation_id, platform, channel, tags, template_name,
			template_body, headers, expiry, user_id, created_at, updated_at) VALUES (?, '', 'stuck', ?, '["everyone"]', 't', '{"aps":{"alert":"$(msg)"}}', '{}', '', '', 0, 0)`))
		tag, _ := tx.PrepareContext(ctx, db.Rebind(`INSERT INTO gatehouse_push_tags (tag, registration_id) VALUES ('everyone', ?)`))
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("r%06d", i)
			if _, err := reg.ExecContext(ctx, id, fmt.Sprintf("dev-%06d", i)); err != nil {
				b.Fatal(err)
			}
			if _, err := tag.ExecContext(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			before := heapMB()
			peak := make(chan float64)
			stop := make(chan struct{})
			go func() { peak <- samplePeak(stop) }()
			sendStart := time.Now()
			res, err := svc.SendTemplate(ctx, nil, push.Target{Expr: mustExpr(b, "everyone")}, map[string]string{"msg": "hello"})
			b.ReportMetric(time.Since(sendStart).Seconds(), "s-send")
			close(stop)
			b.ReportMetric(<-peak-before, "MB-heap-peak-during-send")
			if err != nil || res.Queued != n {
				b.Fatalf("send: %+v %v", res, err)
			}
			afterSend := heapMB()
			rctx, cancel := context.WithCancel(ctx)
			go func() { _ = svc.Run(rctx) }()
			time.Sleep(2 * time.Second)
			delivering := heapMB()
			cancel()
			pending, _ := st.Pending(ctx)
			b.ReportMetric(afterSend-before, "MB-heap-growth-after-send")
			b.ReportMetric(delivering, "MB-heap-delivering")
			b.ReportMetric(float64(pending), "queued")
		}
	})
}

func mustExpr(b *testing.B, s string) *push.Expr {
	e, err := push.ParseExpr(s)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// samplePeak reads the heap in use every millisecond until stop is closed and returns the largest.
func samplePeak(stop <-chan struct{}) float64 {
	var top uint64
	var m runtime.MemStats
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		runtime.ReadMemStats(&m)
		top = max(top, m.HeapInuse)
		select {
		case <-stop:
			return float64(top) / (1 << 20)
		case <-t.C:
		}
	}
}

func heapMB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// stuckPlatform accepts everything and never answers a send (a service that hangs).
type stuckPlatform struct{}

func (stuckPlatform) Name() string                                    { return "stuck" }
func (stuckPlatform) ValidateChannel(string) error                    { return nil }
func (stuckPlatform) ValidatePayload([]byte, map[string]string) error { return nil }
func (stuckPlatform) Send(ctx context.Context, _ push.Delivery) error {
	<-ctx.Done()
	return ctx.Err()
}
