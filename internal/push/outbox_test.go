package push

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// recorder is an Observer that counts.
type recorder struct {
	mu      sync.Mutex
	queued  map[string]int
	sent    map[string]int
	failed  map[string]int
	retried map[string]int
	removed map[string]int
}

func newRecorder() *recorder {
	return &recorder{queued: map[string]int{}, sent: map[string]int{}, failed: map[string]int{}, retried: map[string]int{}, removed: map[string]int{}}
}

func (r *recorder) Queued(p string, n int) { r.mu.Lock(); r.queued[p] += n; r.mu.Unlock() }
func (r *recorder) Sent(p string, _ time.Duration) {
	r.mu.Lock()
	r.sent[p]++
	r.mu.Unlock()
}
func (r *recorder) Failed(p, reason string)  { r.mu.Lock(); r.failed[p+"/"+reason]++; r.mu.Unlock() }
func (r *recorder) Retried(p, reason string) { r.mu.Lock(); r.retried[p+"/"+reason]++; r.mu.Unlock() }
func (r *recorder) Removed(p string, n int)  { r.mu.Lock(); r.removed[p] += n; r.mu.Unlock() }
func (r *recorder) get(m map[string]int, k string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return m[k]
}

func testConfig() Config {
	return Config{Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: time.Second, Lease: 2 * time.Second, SendTimeout: time.Second}
}

func newTestService(t testing.TB, db *store.DB, cfg Config, ps ...Platform) (*Service, *recorder) {
	rec := newRecorder()
	return New(Options{Store: NewStore(db), Platforms: ps, Config: cfg, Observer: rec}), rec
}

// run starts the workers until the test ends (or stop is called).
func run(t testing.TB, s *Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pending(t testing.TB, s *Service) int64 {
	n, err := s.store.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSendAndDeliver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		apns, wns := newTestPlatform(APNs), newTestPlatform(WNS)
		s, rec := newTestService(t, db, testConfig(), apns, wns)
		alice := Caller{UserID: "Google:alice"}
		if err := s.PutInstallation(ctx, alice, "phone-1", Installation{Platform: "apns", PushChannel: "dev-phone1", Tags: []string{"news"},
			Templates: map[string]InstallationTemplate{"alert": {Body: `{"aps":{"alert":"$(msg)"}}`, Tags: []string{"lang-en"}}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutInstallation(ctx, Caller{}, "tablet-1", Installation{Platform: "wns", PushChannel: "dev-tablet1",
			Templates: map[string]InstallationTemplate{"toast": {Body: `<toast><visual><binding template="ToastText01"><text id="1">$(msg)</text></binding></visual></toast>`,
				Headers: map[string]string{"X-WNS-Type": "wns/toast"}}}}); err != nil {
			t.Fatal(err)
		}
		// A template send to the user's tag reaches alice's phone only, with the template expanded.
		tgt, err := s.ResolveTarget("", UserTag("Google:alice")+" && lang-en")
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.SendTemplate(ctx, nil, tgt, map[string]string{"msg": `Hi "A" & <B>`})
		if err != nil || res.Queued != 1 {
			t.Fatalf("SendTemplate = %+v, %v", res, err)
		}
		// A broadcast template send reaches both, each in its platform's syntax.
		if res, err := s.SendTemplate(ctx, nil, Target{All: true}, map[string]string{"msg": "all"}); err != nil || res.Queued != 2 {
			t.Fatalf("broadcast = %+v, %v", res, err)
		}
		// A native send: to the tag (native registrations of APNs) and to a device token directly.
		tgt, _ = s.ResolveTarget(APNs, []string{"news", "dev-direct1"})
		if len(tgt.Devices) != 1 || tgt.Expr == nil {
			t.Fatalf("target = %+v", tgt)
		}
		if res, err := s.SendNative(ctx, nil, tgt, Native{Platform: APNs, Payload: []byte(`{"aps":{"badge":1}}`)}); err != nil || res.Queued != 2 {
			t.Fatalf("native = %+v, %v", res, err)
		}
		// Over the platform's limit: an error before anything is queued.
		if _, err := s.SendNative(ctx, nil, tgt, Native{Platform: APNs, Payload: make([]byte, 5000)}); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Fatalf("oversized: %v", err)
		}
		if n := pending(t, s); n != 5 {
			t.Fatalf("pending = %d", n)
		}
		run(t, s)
		got, err := apns.waitSent(4, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		bodies := map[string]int{}
		for _, d := range got {
			bodies[d.Channel+" "+string(d.Payload)]++
		}
		for _, want := range []string{
			`dev-phone1 {"aps":{"alert":"Hi \"A\" \u0026 \u003cB\u003e"}}`,
			`dev-phone1 {"aps":{"alert":"all"}}`,
			`dev-phone1 {"aps":{"badge":1}}`,
			`dev-direct1 {"aps":{"badge":1}}`,
		} {
			if bodies[want] != 1 {
				t.Errorf("missing %s in %v", want, bodies)
			}
		}
		w, err := wns.waitSent(1, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(w[0].Payload), `<text id="1">all</text>`) || w[0].Headers["X-WNS-Type"] != "wns/toast" {
			t.Fatalf("wns got %s %v", w[0].Payload, w[0].Headers)
		}
		waitFor(t, "an empty outbox", func() bool { return pending(t, s) == 0 })
		if rec.get(rec.sent, APNs) != 4 || rec.get(rec.queued, APNs) != 4 || rec.get(rec.queued, WNS) != 1 {
			t.Fatalf("metrics: sent %d, queued %d apns %d wns", rec.get(rec.sent, APNs), rec.get(rec.queued, APNs), rec.get(rec.queued, WNS))
		}
	})
}

// TestEnqueueInCallersTransaction: a send is part of the caller's transaction.
func TestEnqueueInCallersTransaction(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := context.Background()
	s, _ := newTestService(t, db, testConfig(), newTestPlatform(APNs))
	for _, commit := range []bool{false, true} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SendNative(ctx, tx, Target{Devices: []string{"dev-12345"}}, Native{Platform: APNs, Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if commit {
			_ = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
	}
	if n := pending(t, s); n != 1 {
		t.Fatalf("pending = %d, want only the committed send", n)
	}
}

func TestProviderDownThenUp(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	p := newTestPlatform(FCM)
	var mu sync.Mutex
	down := true
	p.setFail(func(Delivery, int) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return &DeliveryError{Platform: FCM, Status: 503, Reason: "UNAVAILABLE", Retryable: true}
		}
		return nil
	})
	s, rec := newTestService(t, db, testConfig(), p)
	if _, err := s.SendNative(context.Background(), nil, Target{Devices: []string{"dev-android1"}}, Native{Platform: FCM, Payload: []byte(`{"data":{}}`)}); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, "three failed attempts", func() bool { return rec.get(rec.retried, FCM+"/UNAVAILABLE") >= 3 })
	if len(p.deliveries()) != 0 || pending(t, s) != 1 {
		t.Fatal("delivered or lost while the provider was down")
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if _, err := p.waitSent(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an empty outbox", func() bool { return pending(t, s) == 0 })
	time.Sleep(100 * time.Millisecond)
	if n := len(p.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

func TestRetryAfter(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	p := newTestPlatform(APNs)
	var mu sync.Mutex
	var at []time.Time
	p.setFail(func(_ Delivery, n int) error {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if n == 1 {
			return &DeliveryError{Platform: APNs, Status: 429, Reason: "TooManyRequests", Retryable: true, RetryAfter: 700 * time.Millisecond}
		}
		return nil
	})
	s, _ := newTestService(t, db, testConfig(), p)
	if _, err := s.SendNative(context.Background(), nil, Target{Devices: []string{"dev-iphone1"}}, Native{Platform: APNs, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	if _, err := p.waitSent(1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The backoff alone would retry after 10ms; Retry-After holds the message for 700ms (the outbox
	// stores milliseconds, so allow for one of rounding).
	if len(at) != 2 || at[1].Sub(at[0]) < 699*time.Millisecond {
		t.Fatalf("attempts at %v", at)
	}
}

func TestPermanentFailures(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := context.Background()
	p := newTestPlatform(APNs)
	p.setFail(func(d Delivery, _ int) error {
		switch d.Channel {
		case "dev-gone0001":
			return &DeliveryError{Platform: APNs, Status: 410, Reason: "Unregistered", Unregistered: true}
		case "dev-bad00001":
			return &DeliveryError{Platform: APNs, Status: 400, Reason: "BadDeviceToken"}
		}
		return &DeliveryError{Platform: APNs, Status: 500, Reason: "InternalServerError", Retryable: true}
	})
	cfg := testConfig()
	cfg.MaxAttempts = 3
	s, rec := newTestService(t, db, cfg, p)
	for _, ch := range []string{"dev-gone0001", "dev-bad00001", "dev-flaky001"} {
		if err := s.PutInstallation(ctx, Caller{}, "i-"+ch, Installation{Platform: "apns", PushChannel: ch, Tags: []string{"all"}}); err != nil {
			t.Fatal(err)
		}
	}
	tgt, _ := s.ResolveTarget(APNs, "all")
	if res, err := s.SendNative(ctx, nil, tgt, Native{Platform: APNs, Payload: []byte(`{}`)}); err != nil || res.Queued != 3 {
		t.Fatalf("send = %+v, %v", res, err)
	}
	run(t, s)
	waitFor(t, "an empty outbox", func() bool { return pending(t, s) == 0 })
	// A message leaves the outbox just before its failure is counted.
	counted := func() bool {
		return rec.get(rec.failed, APNs+"/unregistered") == 1 && rec.get(rec.failed, APNs+"/BadDeviceToken") == 1 &&
			rec.get(rec.failed, APNs+"/attempts_exhausted") == 1
	}
	waitFor(t, "the failures counted", counted)
	// The gone device's registrations were removed before its message left the outbox.
	if rec.get(rec.removed, APNs) != 1 {
		t.Fatalf("removed %d registrations, want 1", rec.get(rec.removed, APNs))
	}
	time.Sleep(50 * time.Millisecond)
	if !counted() {
		t.Fatal("a failure was counted twice")
	}
	if _, err := s.store.Installation(ctx, "i-dev-gone0001"); err != ErrNotFound {
		t.Fatalf("the gone device's installation remains: %v", err)
	}
	if _, err := s.store.Installation(ctx, "i-dev-bad00001"); err != nil {
		t.Fatalf("a device that failed otherwise lost its installation: %v", err)
	}
}

func TestConcurrencyAndRateLimit(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	p := newTestPlatform(WNS)
	var mu sync.Mutex
	cur, peak := 0, 0
	p.setFail(func(Delivery, int) error {
		mu.Lock()
		cur++
		peak = max(peak, cur)
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		cur--
		mu.Unlock()
		return nil
	})
	cfg := testConfig()
	cfg.Concurrency = 3
	s, _ := newTestService(t, db, cfg, p)
	var devs []string
	for i := 0; i < 30; i++ {
		devs = append(devs, fmt.Sprintf("dev-w%04d", i))
	}
	if _, err := s.SendNative(context.Background(), nil, Target{Devices: devs}, Native{Platform: WNS, Payload: []byte(`<badge value="1"/>`)}); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	if _, err := p.waitSent(30, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if peak != 3 {
		t.Errorf("peak concurrency %d, want 3", peak)
	}
	mu.Unlock()

	// The rate limit: 20 deliveries per second, burst 1.
	q := newTestPlatform(APNs)
	cfg = testConfig()
	cfg.RateLimit, cfg.RateBurst = 20, 1
	s2, _ := newTestService(t, storetest.Open(t, storetest.SQLiteURL(t)), cfg, q)
	if _, err := s2.SendNative(context.Background(), nil, Target{Devices: devs[:11]}, Native{Platform: APNs, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run(t, s2)
	if _, err := q.waitSent(11, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Fatalf("11 deliveries at 20/s took %s", d)
	}
}

// TestKilledMidDelivery kills (SIGKILL) a process while its worker is inside Send; after the lease
// runs out another process delivers the message, once.
func TestKilledMidDelivery(t *testing.T) {
	if os.Getenv("GATEHOUSE_PUSH_HELPER") != "" {
		t.Skip("helper process")
	}
	dsn := storetest.SQLiteURL(t)
	db := storetest.Open(t, dsn)
	s, _ := newTestService(t, db, testConfig(), newTestPlatform(APNs))
	if _, err := s.SendNative(context.Background(), nil, Target{Devices: []string{"dev-killed1"}}, Native{Platform: APNs, Payload: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperDeliverer$", "-test.v")
	cmd.Env = append(os.Environ(), "GATEHOUSE_PUSH_HELPER="+dsn)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	entered := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "SENDING ") {
			entered = true
			break
		}
	}
	if !entered {
		t.Fatal("the helper never reached Send")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n := pending(t, s); n != 1 {
		t.Fatalf("after the kill the outbox has %d messages", n)
	}
	// This process picks it up when the helper's lease (2s) ends.
	// (This instance's own lease is long, so that a slow machine cannot make it re-claim its own
	// message before the delivered one is removed.)
	p := newTestPlatform(APNs)
	cfg := testConfig()
	cfg.Lease = 30 * time.Second
	s2, _ := newTestService(t, db, cfg, p)
	run(t, s2)
	got, err := p.waitSent(1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Payload) != `{"n":1}` {
		t.Fatalf("delivered %s", got[0].Payload)
	}
	waitFor(t, "an empty outbox", func() bool { return pending(t, s2) == 0 })
	time.Sleep(200 * time.Millisecond)
	if n := len(p.deliveries()); n != 1 {
		t.Fatalf("%d deliveries after the restart, want 1", n)
	}
}

// TestHelperDeliverer is the process TestKilledMidDelivery kills: its platform blocks in Send.
func TestHelperDeliverer(t *testing.T) {
	dsn := os.Getenv("GATEHOUSE_PUSH_HELPER")
	if dsn == "" {
		t.Skip("only as TestKilledMidDelivery's helper")
	}
	db, err := store.OpenWith(context.Background(), dsn, t.TempDir(), store.Options{Schema: store.RequireCurrent})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPlatform(APNs)
	p.block = make(chan struct{})
	entered := &announcer{Platform: p}
	s := New(Options{Store: NewStore(db), Platforms: []Platform{entered}, Config: testConfig()})
	_ = s.Run(context.Background()) // until killed
}

type announcer struct{ Platform }

func (a *announcer) Send(ctx context.Context, d Delivery) error {
	fmt.Printf("SENDING %s\n", d.ID)
	return a.Platform.Send(ctx, d)
}

// TestTwoInstancesShareTheOutbox: two services on one PostgreSQL database (separate connection
// pools, as two processes) deliver every message once between them.
func TestTwoInstancesShareTheOutbox(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	db1 := storetest.Open(t, dsn)
	db2, err := store.OpenWith(context.Background(), dsn, t.TempDir(), store.Options{Schema: store.RequireCurrent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	p1, p2 := newTestPlatform(FCM), newTestPlatform(FCM)
	slow := func(Delivery, int) error { time.Sleep(2 * time.Millisecond); return nil }
	p1.setFail(slow)
	p2.setFail(slow)
	cfg := testConfig()
	cfg.Lease = 30 * time.Second // once per message must not depend on the machine's speed
	s1, _ := newTestService(t, db1, cfg, p1)
	s2, _ := newTestService(t, db2, cfg, p2)
	var devs []string
	for i := 0; i < 1000; i++ {
		devs = append(devs, fmt.Sprintf("dev-a%05d", i))
	}
	if _, err := s1.SendNative(context.Background(), nil, Target{Devices: devs}, Native{Platform: FCM, Payload: []byte(`{"data":{}}`)}); err != nil {
		t.Fatal(err)
	}
	run(t, s1)
	run(t, s2)
	waitFor(t, "an empty outbox", func() bool { return pending(t, s1) == 0 })
	time.Sleep(200 * time.Millisecond)
	seen := map[string]int{}
	for _, d := range append(p1.deliveries(), p2.deliveries()...) {
		seen[d.Channel]++
	}
	for _, dev := range devs {
		if seen[dev] != 1 {
			t.Fatalf("%s delivered %d times", dev, seen[dev])
		}
	}
	if len(p1.deliveries()) == 0 || len(p2.deliveries()) == 0 {
		t.Logf("one instance delivered everything: %d / %d", len(p1.deliveries()), len(p2.deliveries()))
	}
	t.Logf("instance 1 delivered %d, instance 2 %d", len(p1.deliveries()), len(p2.deliveries()))
}

// TestFanout: each matching device once, whatever the expression, across pages.
func TestFanout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newTestService(t, db, testConfig(), newTestPlatform(APNs))
		put := func(id string, tags ...string) {
			if err := s.store.PutRegistration(ctx, Registration{ID: id, Platform: APNs, Channel: "dev-" + id, Tags: tags}); err != nil {
				t.Fatal(err)
			}
		}
		put("r1", "a", "b")
		put("r2", "b")
		put("r3", "c")
		for i := 0; i < 600; i++ { // more than a page (500)
			put(fmt.Sprintf("x%04d", i), "x", "b")
		}
		for expr, want := range map[string]int{"a || b": 602, "a && b": 1, "!c": 602, "c || a": 2, "x && !a": 600, "(a || c) && !b": 1} {
			tgt, err := s.ResolveTarget(APNs, expr)
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.SendNative(ctx, nil, tgt, Native{Platform: APNs, Payload: []byte(`{}`)})
			if err != nil || res.Queued != want {
				t.Errorf("%q queued %d (%v), want %d", expr, res.Queued, err, want)
			}
		}
		if res, _ := s.SendNative(ctx, nil, Target{All: true}, Native{Platform: APNs, Payload: []byte(`{}`)}); res.Queued != 603 {
			t.Errorf("broadcast queued %d", res.Queued)
		}
		// push.max_fanout: a send over the limit queues nothing.
		s.cfg.MaxFanout = 550
		before := pending(t, s)
		if _, err := s.SendNative(ctx, nil, Target{All: true}, Native{Platform: APNs, Payload: []byte(`{}`)}); err == nil || !strings.Contains(err.Error(), "more than 550") {
			t.Fatalf("over the fan-out limit: %v", err)
		}
		if pending(t, s) != before {
			t.Fatal("a refused send left messages")
		}
	})
}

// TestWakeAcrossInstances: a send on one instance wakes another's idle workers through LISTEN/NOTIFY,
// well before their poll interval (a minute here).
func TestWakeAcrossInstances(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() (*store.DB, notify.Notifier) {
		db, err := store.OpenWith(ctx, dsn, t.TempDir(), store.Options{Schema: store.Migrate})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		n, err := notify.NewPostgres(ctx, db.DB, dsn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		go n.Run(ctx)
		return db, n
	}
	cfg := testConfig()
	cfg.Poll = time.Minute
	dbA, nA := open()
	dbB, nB := open()
	sender := New(Options{Store: NewStore(dbA), Platforms: []Platform{newTestPlatform(APNs)}, Config: cfg, Notifier: nA}) // queues only
	p := newTestPlatform(APNs)
	worker := New(Options{Store: NewStore(dbB), Platforms: []Platform{p}, Config: cfg, Notifier: nB})
	run(t, worker)
	time.Sleep(300 * time.Millisecond) // the worker's first claim (empty) and its LISTEN are done
	start := time.Now()
	if _, err := sender.SendNative(ctx, nil, Target{Devices: []string{"dev-woken01"}}, Native{Platform: APNs, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.waitSent(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("delivered after %s: the notification did not wake the other instance", d)
	}
}

// TestShutdownLetsDeliveriesFinish: a delivery in flight when the workers stop completes (and is
// settled) instead of being cut off and sent again later.
func TestShutdownLetsDeliveriesFinish(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	p := newTestPlatform(APNs)
	started := make(chan struct{}, 1)
	p.setFail(func(Delivery, int) error {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return nil
	})
	s, _ := newTestService(t, db, testConfig(), p)
	if _, err := s.SendNative(context.Background(), nil, Target{Devices: []string{"dev-slow0001"}}, Native{Platform: APNs, Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	<-started
	stop()
	if n := len(p.deliveries()); n != 1 {
		t.Fatalf("%d deliveries", n)
	}
	if n := pending(t, s); n != 0 {
		t.Fatalf("%d messages left after a completed delivery", n)
	}
}
