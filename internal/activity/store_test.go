package activity_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestStore is the conformance suite: two recorders (two instances) on one database, their events
// in one tail, their minutes in one set of statistics.
func TestStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Date(2026, 12, 4, 12, 0, 10, 0, time.UTC)}
		st := activity.NewStore(db)
		a := activity.NewRecorder(st, activity.Options{Instance: "inst-a", Now: clk.now, Log: quiet(), MaxEvents: 1000})
		b := activity.NewRecorder(st, activity.Options{Instance: "inst-b", Now: clk.now, Log: quiet(), MaxEvents: 1000})

		// Minute 12:00: a serves 98 fast requests and one slow one; b one 500 and one 404.
		for i := 0; i < 98; i++ {
			a.Request(activity.Request{RequestID: fmt.Sprintf("a%d", i), Method: "GET", Route: "/tables/{table}", Path: "/tables/todo",
				Status: 200, Duration: time.Millisecond, UserID: "sid:1", Bytes: 10})
		}
		a.Request(activity.Request{RequestID: "slow", Method: "GET", Route: "/tables/{table}", Path: "/tables/todo/1?secret=x",
			Status: 200, Duration: 800 * time.Millisecond})
		b.Request(activity.Request{RequestID: "b1", Method: "POST", Route: "/api/{name}", Path: "/api/hello", Status: 500, Duration: 2 * time.Millisecond})
		b.Request(activity.Request{RequestID: "b2", Method: "GET", Route: "/tables/{table}", Path: "/tables/nope", Status: 404, Duration: time.Millisecond, UserID: "sid:2"})
		b.Request(activity.Request{RequestID: "probe", Method: "GET", Route: "/healthz", Path: "/healthz", Status: 200, Duration: time.Microsecond})
		b.Script(time.Time{}, "error", "api/hello.js", "b1", "script failed: error=boom")
		for _, r := range []*activity.Recorder{a, b} {
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// Minute 12:01: a serves one more; flushing again replaces a's rows, never doubles them.
		clk.t = clk.t.Add(time.Minute)
		a.Request(activity.Request{RequestID: "late", Method: "DELETE", Route: "/tables/{table}", Path: "/tables/todo/2", Status: 204, Duration: 3 * time.Millisecond})
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}

		all, err := st.Tail(ctx, activity.Filter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		// 98 + slow + b1 + b2 + script + late; the probe is counted but not kept.
		if len(all) != 103 {
			t.Fatalf("events: %d", len(all))
		}
		for i := 1; i < len(all); i++ {
			if all[i].ID <= all[i-1].ID {
				t.Fatalf("tail not oldest first at %d", i)
			}
		}
		instances := map[string]int{}
		for _, e := range all {
			instances[e.Instance]++
			if e.Path == "/tables/todo/1?secret=x" || e.Path == "/tables/todo/1" && e.RequestID != "slow" {
				t.Fatalf("query string kept: %+v", e)
			}
		}
		if instances["inst-a"] != 100 || instances["inst-b"] != 3 {
			t.Fatalf("instances in one tail: %v", instances)
		}

		check := func(f activity.Filter, want ...string) {
			t.Helper()
			got, err := st.Tail(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.RequestID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(want) {
				t.Errorf("%+v: got %v, want %v", f, ids, want)
			}
		}
		check(activity.Filter{Status: 5}, "b1")
		check(activity.Filter{Status: 404}, "b2")
		check(activity.Filter{Status: 4, User: "sid:2"}, "b2")
		check(activity.Filter{Kind: activity.KindScript}, "b1")
		check(activity.Filter{RequestID: "b1"}, "b1", "b1")
		check(activity.Filter{Route: "/api/{name}"}, "b1")
		check(activity.Filter{Route: "/tables/todo", Limit: 2}, "slow", "late")
		check(activity.Filter{Route: "/tables/todo/2"}, "late")
		check(activity.Filter{Instance: "inst-b", Kind: activity.KindRequest}, "b1", "b2")
		// The live tail's cursor: everything after the slow request, in order.
		var slowID int64
		for _, e := range all {
			if e.RequestID == "slow" {
				slowID = e.ID
				if e.Duration != 800*time.Millisecond || e.Method != "GET" || e.Status != 200 {
					t.Fatalf("slow event: %+v", e)
				}
			}
		}
		check(activity.Filter{AfterID: slowID, Limit: 2}, "b1", "b2")

		stats, err := st.Stats(ctx, clk.t.Add(-time.Hour), clk.t)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Requests != 103 || stats.Errors5xx != 1 || stats.Errors4xx != 1 {
			t.Fatalf("totals: %+v", stats)
		}
		if len(stats.Minutes) != 61 {
			t.Fatalf("minutes: %d", len(stats.Minutes))
		}
		m0, m1 := stats.Minutes[59], stats.Minutes[60]
		if m0.Requests != 102 || m0.Errors5xx != 1 || m1.Requests != 1 {
			t.Fatalf("per minute: %+v %+v", m0, m1)
		}
		// 103 requests: the 99th percentile is the 102nd fastest, a few milliseconds, not the slow one.
		if stats.P99 < 2*time.Millisecond || stats.P99 > 4*time.Millisecond {
			t.Fatalf("p99 %v", stats.P99)
		}
		if m1.P99 < 3*time.Millisecond || m1.P99 > 3*time.Millisecond*110/100 {
			t.Fatalf("p99 of one 3 ms request: %v", m1.P99)
		}
		if len(stats.Instances) != 2 || stats.Instances[0].ID != "inst-a" || stats.Instances[0].Requests != 100 || stats.Instances[1].Requests != 3 {
			t.Fatalf("instances: %+v", stats.Instances)
		}
		if stats.RequestsPerSecond <= 0 {
			t.Fatalf("rate: %+v", stats)
		}

		// The ring is bounded by count and by age.
		if err := st.Prune(ctx, clk.t.Add(-time.Hour), 10, clk.t.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		left, _ := st.Tail(ctx, activity.Filter{Limit: 1000})
		if len(left) != 10 || left[9].RequestID != "late" {
			t.Fatalf("after pruning to 10: %d", len(left))
		}
		if err := st.Prune(ctx, clk.t.Add(time.Second), 1000, clk.t.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		left, _ = st.Tail(ctx, activity.Filter{})
		stats, _ = st.Stats(ctx, clk.t.Add(-time.Hour), clk.t)
		if len(left) != 0 || stats.Requests != 0 {
			t.Fatalf("after pruning by age: %d events, %d requests", len(left), stats.Requests)
		}
	})
}

// TestPendingBound: when the database cannot be written, the batch stays in memory up to its bound
// and the excess is dropped (and counted), never queued without limit.
func TestPendingBound(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := context.Background()
	st := activity.NewStore(db)
	r := activity.NewRecorder(st, activity.Options{Instance: "x", MaxPending: 5, Log: quiet()})
	for i := 0; i < 8; i++ {
		r.Request(activity.Request{RequestID: fmt.Sprint(i), Route: "/r", Path: "/r", Status: 200})
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE gatehouse_activity RENAME TO broken`); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush into a missing table succeeded")
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE broken RENAME TO gatehouse_activity`); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Tail(ctx, activity.Filter{})
	if len(got) != 5 || got[0].RequestID != "0" {
		t.Fatalf("kept after a failed flush: %d", len(got))
	}
	stats, _ := st.Stats(ctx, time.Now().Add(-time.Hour), time.Now())
	if stats.Requests != 8 {
		t.Fatalf("statistics count every request, dropped events included: %d", stats.Requests)
	}
}
