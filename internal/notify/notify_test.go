package notify_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func recv(t *testing.T, c <-chan string, skipResync bool) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p := <-c:
			if skipResync && p == notify.Resync {
				continue
			}
			return p
		case <-deadline:
			t.Fatal("no notification within 5s")
			return ""
		}
	}
}

func TestLocal(t *testing.T) {
	l := notify.NewLocal()
	a, cancelA := l.Subscribe("x")
	b, cancelB := l.Subscribe("x")
	other, cancelO := l.Subscribe("y")
	defer cancelO()
	if err := l.Publish(context.Background(), "x", "hello"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, a, false); got != "hello" {
		t.Fatalf("a got %q", got)
	}
	if got := recv(t, b, false); got != "hello" {
		t.Fatalf("b got %q", got)
	}
	select {
	case p := <-other:
		t.Fatalf("other channel got %q", p)
	default:
	}
	cancelB()
	cancelB() // idempotent
	// A subscriber that is behind loses hints beyond its queue, never blocks the publisher.
	for range 100 {
		l.Publish(context.Background(), "x", "flood") //nolint:errcheck
	}
	cancelA()
}

func TestPostgres(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	db := storetest.Open(t, dsn)
	otherDB := storetest.Open(t, storetest.PostgresURL(t)) // another schema: another cluster
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	a, err := notify.NewPostgres(ctx, db.DB, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	appName := "notifytest_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	b, err := notify.NewPostgres(ctx, db.DB, dsn+"&application_name="+appName, nil)
	if err != nil {
		t.Fatal(err)
	}
	go a.Run(ctx)
	go b.Run(ctx)
	ca, stopA := a.Subscribe(notify.Tables)
	defer stopA()
	cb, stopB := b.Subscribe(notify.Tables)
	defer stopB()
	// Both listeners deliver Resync once connected.
	if got := recv(t, ca, false); got != notify.Resync {
		t.Fatalf("first delivery %q, want Resync", got)
	}
	if got := recv(t, cb, false); got != notify.Resync {
		t.Fatalf("first delivery %q, want Resync", got)
	}
	// A channel subscribed after the listener started is LISTENed to as well.
	ck, stopK := b.Subscribe(notify.Keys)
	defer stopK()
	time.Sleep(200 * time.Millisecond)

	other, err := notify.NewPostgres(ctx, otherDB.DB, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Publish(ctx, notify.Tables, "other-cluster"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.Publish(ctx, notify.Tables, "t1"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, cb, true); got != "t1" {
		t.Fatalf("b got %q, want t1 (never another schema's notification)", got)
	}
	if got := recv(t, ca, true); got != "t1" {
		t.Fatalf("a got its own %q, want t1", got)
	}
	t.Logf("notification delivered in %s", time.Since(start))
	if err := a.Publish(ctx, notify.Keys, "k1"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, ck, true); got != "k1" {
		t.Fatalf("late channel got %q", got)
	}

	// The listener's connection is killed: it reconnects and says Resync.
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND application_name = $1`, appName); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, cb, false); got != notify.Resync {
		t.Fatalf("after reconnect got %q, want Resync", got)
	}
	if err := a.Publish(ctx, notify.Tables, "t2"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, cb, true); got != "t2" {
		t.Fatalf("after reconnect got %q", got)
	}
	if !b.Connected() {
		t.Fatal("b reports disconnected")
	}
}

func TestFollowReloadsOnHintAndInterval(t *testing.T) {
	n := notify.NewLocal()
	reloads := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		notify.Follow(ctx, n, notify.Tables, time.Hour, func(context.Context) { reloads <- struct{}{} })
		close(done)
	}()
	// The subscription is made inside Follow: publish until the first hint arrives.
	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		_ = n.Publish(ctx, notify.Tables, "x")
		select {
		case <-reloads:
			got = true
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("a hint did not cause a reload")
		}
	}
	_ = n.Publish(ctx, notify.Keys, "other channel")
	select {
	case <-reloads:
		t.Fatal("a hint on another channel caused a reload")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return when its context ended")
	}

	// Without a notifier it polls.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go notify.Follow(ctx, nil, notify.Tables, 5*time.Millisecond, func(context.Context) { reloads <- struct{}{} })
	for range 3 {
		select {
		case <-reloads:
		case <-time.After(5 * time.Second):
			t.Fatal("no reload at the interval")
		}
	}
}
