package scriptstore_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/scriptstore"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestClusterEditReachesEveryInstance: two instances on one PostgreSQL database, each with its own
// copy of the app folder and its own LISTEN/NOTIFY connection. A save through A's admin API serves on
// B within a second; a save with a syntax error changes nothing anywhere; a revert on B reaches A; an
// instance started afterwards loads the edits from the database.
func TestClusterEditReachesEveryInstance(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func() (*instance, *notify.Postgres) {
		db := storetest.Open(t, dsn)
		n, err := notify.NewPostgres(ctx, db.DB, dsn, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		in := newInstance(t, db, n)
		// The fallback poll is a minute: within the test, only notifications can make B reload fast.
		go in.engine.Follow(ctx, n, time.Minute)
		go n.Run(ctx)
		return in, n
	}
	a, na := start()
	b, _ := start()

	// until polls an instance's API until it answers want (no fixed sleeps); it returns how long it took.
	until := func(in *instance, want string, within time.Duration) time.Duration {
		t.Helper()
		began := time.Now()
		for {
			if strings.Contains(in.hello(t), want) {
				return time.Since(began)
			}
			if time.Since(began) > within {
				t.Fatalf("after %v the instance still answers %s, want %s", within, in.hello(t), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// Warm-up: B's listener may still be connecting; A repeats its hint until B has reloaded from one.
	if r := a.admin(t, "PUT", "/shared/warm.js", "exports.warm = 1;"); r.status != http.StatusOK {
		t.Fatalf("warm-up save: %d %s", r.status, r.body)
	}
	rev, _ := a.editor.EditsRevision(ctx)
	for deadline := time.Now().Add(10 * time.Second); b.engine.Current().EditsRevision() != rev; {
		if time.Now().After(deadline) {
			t.Fatal("B never heard A's notifications")
		}
		_ = na.Publish(ctx, notify.Scripts, "shared/warm.js")
		time.Sleep(20 * time.Millisecond)
	}

	// A save on A: B serves it within a second.
	if got := b.hello(t); !strings.Contains(got, `"deployed"`) {
		t.Fatalf("B before: %s", got)
	}
	r := a.admin(t, "PUT", "/api/hello.js", "exports.get = function (req, res) { res.send(200, { v: 'from A' }); };\n")
	if r.status != http.StatusOK {
		t.Fatalf("save on A: %d %s", r.status, r.body)
	}
	if !strings.Contains(a.hello(t), `"from A"`) {
		t.Fatal("A does not serve its own save at once")
	}
	took := until(b, `"from A"`, time.Second)
	t.Logf("a save on A served on B after %v", took)

	// A syntax error: 422 on A; neither instance changes.
	revBefore, _ := a.editor.EditsRevision(ctx)
	r = a.admin(t, "PUT", "/api/hello.js", "exports.get = function (req, res) {\n  res.send(200, { v: 'broken' );\n};\n")
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("syntax error on A: %d %s", r.status, r.body)
	}
	if now, _ := a.editor.EditsRevision(ctx); now != revBefore {
		t.Fatal("the broken script was stored")
	}
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if got := in.hello(t); !strings.Contains(got, `"from A"`) || in.engine.Current().EditsRevision() != revBefore {
			t.Fatalf("%s after a refused save: %s (revision %d, want %d)", name, got, in.engine.Current().EditsRevision(), revBefore)
		}
	}

	// A revert on B reaches A.
	if r := b.admin(t, "DELETE", "/api/hello.js", ""); r.status != http.StatusOK {
		t.Fatalf("revert on B: %d %s", r.status, r.body)
	}
	took = until(a, `"deployed"`, time.Second)
	t.Logf("a revert on B served on A after %v", took)

	// A restore on A reaches B.
	var s scriptstore.Script
	a.admin(t, "GET", "/api/hello.js", "").json(t, &s)
	if len(s.History) != 1 {
		t.Fatalf("history: %+v", s.History)
	}
	if r := a.admin(t, "POST", "/api/hello.js", `{"revision": `+itoa(s.History[0].Revision)+`}`, "Content-Type", "application/json"); r.status != http.StatusOK {
		t.Fatalf("restore on A: %d %s", r.status, r.body)
	}
	until(b, `"from A"`, time.Second)

	// An instance started now (a replaced one) serves the edits from the database at once.
	c, _ := start()
	if got := c.hello(t); !strings.Contains(got, `"from A"`) {
		t.Fatalf("a new instance serves %s", got)
	}
}

// TestPollingFallback: an instance whose notifications never arrive still reloads at its next poll.
func TestPollingFallback(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := newInstance(t, db, nil)
		b := newInstance(t, db, nil)
		go b.engine.Follow(ctx, nil, 100*time.Millisecond)
		if r := a.admin(t, "PUT", "/api/hello.js", "exports.get = function (req, res) { res.send(200, { v: 'polled' }); };\n"); r.status != http.StatusOK {
			t.Fatalf("save: %d %s", r.status, r.body)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(b.hello(t), `"polled"`) {
			if time.Now().After(deadline) {
				t.Fatalf("B never polled the change: %s", b.hello(t))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
