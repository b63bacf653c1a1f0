package activity_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestFollow: a cursor returns each new event of every instance once, filtered, and publishes the
// new-events hint on every flush that wrote events.
func TestFollow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
		st := activity.NewStore(db)
		n := notify.NewLocal()
		hints, stop := n.Subscribe(notify.Activity)
		defer stop()
		a := activity.NewRecorder(st, activity.Options{Instance: "inst-a", Log: quiet(), Notify: n})
		b := activity.NewRecorder(st, activity.Options{Instance: "inst-b", Log: quiet(), Notify: n})
		// A cursor started on an empty table returns the first event.
		empty := activity.NewCursor(0)
		if ev, _, err := st.Follow(ctx, activity.Filter{}, empty, now); err != nil || len(ev) != 0 {
			t.Fatalf("empty table: %v %v", ev, err)
		}
		a.Request(activity.Request{RequestID: "old", Method: "GET", Route: "/tables/{table}", Path: "/tables/x", Status: 200})
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		<-hints
		if ev, _, err := st.Follow(ctx, activity.Filter{}, empty, now); err != nil || len(ev) != 1 || ev[0].RequestID != "old" {
			t.Fatalf("the first event after an empty start: %v %v", ev, err)
		}
		all := activity.NewCursor(0)
		if ev, _, err := st.Follow(ctx, activity.Filter{}, all, now); err != nil || len(ev) != 0 || all.After == 0 {
			t.Fatalf("a new cursor starts after the newest event: %v %v %+v", ev, err, all)
		}
		errs, scripts := activity.NewCursor(all.After), activity.NewCursor(all.After)

		a.Request(activity.Request{RequestID: "a1", Method: "GET", Route: "/tables/{table}", Path: "/tables/x", Status: 200})
		b.Request(activity.Request{RequestID: "b1", Method: "POST", Route: "/api/{name}", Path: "/api/hello", Status: 500})
		b.Script(time.Time{}, "info", "api/hello", "b1", "hello")
		for _, r := range []*activity.Recorder{a, b} {
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case p := <-hints:
				if id, err := strconv.ParseInt(p, 10, 64); err != nil || id <= all.After {
					t.Fatalf("hint payload %q", p)
				}
			case <-time.After(time.Second):
				t.Fatal("no hint after a flush")
			}
		}
		if err := a.Flush(ctx); err != nil { // nothing new: no hint
			t.Fatal(err)
		}
		select {
		case p := <-hints:
			t.Fatalf("hint without events: %q", p)
		default:
		}
		ev, more, err := st.Follow(ctx, activity.Filter{}, all, now)
		if err != nil || more || len(ev) != 3 || ev[0].RequestID != "a1" || ev[1].Instance != "inst-b" || ev[2].Kind != activity.KindScript {
			t.Fatalf("every instance's events: %+v %v %v", ev, more, err)
		}
		if ev, _, _ := st.Follow(ctx, activity.Filter{}, all, now); len(ev) != 0 {
			t.Fatalf("events returned twice: %+v", ev)
		}
		if ev, _, _ := st.Follow(ctx, activity.Filter{Status: 5}, errs, now); len(ev) != 1 || ev[0].RequestID != "b1" || ev[0].Status != 500 {
			t.Fatalf("5xx filter: %+v", ev)
		}
		if ev, _, _ := st.Follow(ctx, activity.Filter{Source: "API/Hello", Kind: activity.KindScript}, scripts, now); len(ev) != 1 || ev[0].Message != "hello" {
			t.Fatalf("source filter: %+v", ev)
		}
		// A burst larger than one step: more, then the rest.
		for i := range 1500 {
			a.Request(activity.Request{RequestID: "burst" + strconv.Itoa(i), Method: "GET", Route: "/r", Path: "/r", Status: 200})
		}
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got := 0
		for i := 0; ; i++ {
			ev, more, err := st.Follow(ctx, activity.Filter{}, all, now)
			if err != nil {
				t.Fatal(err)
			}
			got += len(ev)
			if !more {
				break
			}
			if i > 3 {
				t.Fatal("more never ends")
			}
		}
		if got != 1500 {
			t.Fatalf("burst: %d events", got)
		}
	})
}

// TestFollowLateCommit: an instance's batch that commits after a later batch of another instance is
// still returned (the cursor waits for the ids it passed), once; a hole that never fills is given up
// after HoleTTL.
func TestFollowLateCommit(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	dbA, dbB := storetest.Open(t, dsn), storetest.Open(t, dsn)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	st := activity.NewStore(dbB)
	b := activity.NewRecorder(st, activity.Options{Instance: "inst-b", Log: quiet()})
	b.Request(activity.Request{RequestID: "first", Method: "GET", Route: "/r", Path: "/r", Status: 200})
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cur := activity.NewCursor(0)
	if _, _, err := st.Follow(ctx, activity.Filter{}, cur, now); err != nil {
		t.Fatal(err)
	}
	insert := `INSERT INTO gatehouse_activity (at, instance, kind, request_id, method, route, path, status, duration_us, user_id, bytes, level, source, message)
		VALUES ($1, 'inst-a', 'request', $2, 'GET', '/r', '/r', 200, 1, '', 0, '', '', '')`
	// Instance a's batch takes its id, then b's batch commits first.
	txA, err := dbA.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txA.ExecContext(ctx, insert, now.UnixMilli(), "late"); err != nil {
		t.Fatal(err)
	}
	txGone, err := dbA.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txGone.ExecContext(ctx, insert, now.UnixMilli(), "rolled-back"); err != nil {
		t.Fatal(err)
	}
	b.Request(activity.Request{RequestID: "second", Method: "GET", Route: "/r", Path: "/r", Status: 200})
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ev, _, err := st.Follow(ctx, activity.Filter{}, cur, now)
	if err != nil || len(ev) != 1 || ev[0].RequestID != "second" || cur.Holes() != 2 {
		t.Fatalf("before a's commit: %+v %v, %d holes", ev, err, cur.Holes())
	}
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := txGone.Rollback(); err != nil {
		t.Fatal(err)
	}
	ev, _, err = st.Follow(ctx, activity.Filter{}, cur, now.Add(time.Second))
	if err != nil || len(ev) != 1 || ev[0].RequestID != "late" || ev[0].Instance != "inst-a" || cur.Holes() != 1 {
		t.Fatalf("after a's commit: %+v %v, %d holes", ev, err, cur.Holes())
	}
	if ev, _, _ := st.Follow(ctx, activity.Filter{}, cur, now.Add(2*time.Second)); len(ev) != 0 {
		t.Fatalf("returned twice: %+v", ev)
	}
	if _, _, err := st.Follow(ctx, activity.Filter{}, cur, now.Add(activity.HoleTTL+2*time.Second)); err != nil || cur.Holes() != 0 {
		t.Fatalf("the rolled-back id is not given up: %d holes, %v", cur.Holes(), err)
	}
}
