package activity_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestFlushAndPruneInShortTransactions checks the flush and the prune that are cut into short
// transactions (so that table writes are not held up behind them): a flush larger than one
// transaction stores every event exactly once with its minute's statistics; a transaction failing
// half-way keeps exactly the events not stored for the next flush (no event lost, none doubled); a
// prune deleting more than one statement's share leaves exactly the newest events.
func TestFlushAndPruneInShortTransactions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := activity.NewStore(db)
		now := time.Now().UTC()
		r := activity.NewRecorder(st, activity.Options{Instance: "x", MaxPending: 100000, Log: quiet(), Now: func() time.Time { return now }})
		const n = 5100 // more than ten flush transactions, more than two prune statements
		request := func(i int) {
			r.Request(activity.Request{Time: now, RequestID: fmt.Sprint("r", i), Method: "POST", Route: "/tables/{table}", Path: "/tables/e", Status: 201, Duration: time.Millisecond})
		}
		for i := range n {
			request(i)
		}
		if db.Dialect == store.SQLite {
			// The third transaction fails: the two before it stay stored, the rest stays pending.
			if _, err := db.ExecContext(ctx, `CREATE TRIGGER fail_once BEFORE INSERT ON gatehouse_activity WHEN NEW.request_id = 'r1100'
				BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(ctx); err == nil {
				t.Fatal("the flush did not fail")
			}
			if got := count(t, db); got != 1000 {
				t.Fatalf("%d events stored before the failed transaction, want 1000", got)
			}
			if _, err := db.ExecContext(ctx, `DROP TRIGGER fail_once`); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var distinct, total int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(DISTINCT request_id), COUNT(*) FROM gatehouse_activity`).Scan(&distinct, &total); err != nil {
			t.Fatal(err)
		}
		if distinct != n || total != n {
			t.Fatalf("%d events (%d distinct) stored, want %d once each", total, distinct, n)
		}
		stats, err := st.Stats(ctx, now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if stats.Requests != n {
			t.Fatalf("statistics count %d requests, want %d", stats.Requests, n)
		}

		if err := st.Prune(ctx, now.Add(-time.Hour), 100, now.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := st.Tail(ctx, activity.Filter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 100 || count(t, db) != 100 {
			t.Fatalf("%d events after pruning to the newest 100", len(got))
		}
		for _, e := range got {
			var i int
			if _, err := fmt.Sscanf(e.RequestID, "r%d", &i); err != nil || i < n-100 {
				t.Fatalf("pruning kept %s, not one of the newest", e.RequestID)
			}
		}
	})
}

func count(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM gatehouse_activity`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
