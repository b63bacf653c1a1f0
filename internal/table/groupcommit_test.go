package table

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestGroupCommitBatchIsolatesWrites runs one batch holding good writes next to a duplicate insert,
// a version conflict, a write to a missing item and a write whose context has ended, and checks that
// each write gets its own answer and only the good ones are stored: on SQLite through the per-write
// savepoints, on PostgreSQL through the rollback and one-by-one retry, of a pipelined batch and of a
// batch in a transaction.
func TestGroupCommitBatchIsolatesWrites(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		modes := []bool{false}
		if db.Dialect == store.Postgres {
			modes = append(modes, true)
		}
		for _, pipelined := range modes {
			t.Run(fmt.Sprintf("pipelined=%v", pipelined), func(t *testing.T) { batchIsolation(t, db, pipelined) })
		}
	})
}

func batchIsolation(t *testing.T, db *store.DB, pipelined bool) {
	{
		ctx := context.Background()
		st := NewSQL(db)
		s, err := NewSchema(fmt.Sprintf("items%v", pipelined), StringID, Options{}, map[string]ColumnType{"n": Number})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		old, err := st.Insert(ctx, s, &Row{ID: "old", Values: map[string]any{"n": 1.0}})
		if err != nil {
			t.Fatal(err)
		}
		gone, cancel := context.WithCancel(ctx)
		cancel()
		ins := func(ctx context.Context, id string, n float64) *writeOp {
			op := st.insertOp(ctx, s, &Row{ID: id, Values: map[string]any{"n": n}})
			if !pipelined {
				op.pipe = nil
			}
			return op
		}
		upd := func(id, version string, n float64) *writeOp {
			op, err := st.mutateOp(ctx, s, "UPDATE "+quote(s.SQLName)+" SET "+quote(physicalColumn("n"))+" = "+st.ph(1)+", "+colVersion+" = "+st.versionSQL(), []any{n}, id, version, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			if !pipelined {
				op.pipe = nil
			}
			return op
		}
		ops := []*writeOp{
			ins(ctx, "a", 10),
			ins(ctx, "old", 11), // duplicate id
			ins(ctx, "b", 12),
			upd("old", "not-the-version", 13), // version conflict
			upd("missing", "", 14),            // no such item
			ins(gone, "c", 15),                // caller gone before the batch
			upd("old", old.Version, 16),
			ins(ctx, "a", 17), // duplicate of a batch-mate
		}
		st.gc.run(ops)
		for i, op := range ops {
			select {
			case <-op.done:
			default:
				t.Fatalf("op %d not answered", i)
			}
		}
		check := func(i int, ok bool, what string) {
			t.Helper()
			if !ok {
				t.Errorf("op %d: %s: row %+v err %v", i, what, ops[i].row, ops[i].err)
			}
		}
		check(0, ops[0].err == nil && ops[0].row.ID == "a", "insert a")
		check(1, errors.Is(ops[1].err, ErrDuplicate), "duplicate")
		check(2, ops[2].err == nil && ops[2].row.ID == "b", "insert b")
		var ce *ConflictError
		check(3, errors.As(ops[3].err, &ce) && ce.Current.Version == old.Version, "conflict")
		check(4, errors.Is(ops[4].err, ErrNotFound), "not found")
		check(5, errors.Is(ops[5].err, context.Canceled), "cancelled")
		check(6, ops[6].err == nil && ops[6].row.Values["n"] == 16.0 && ops[6].row.Version != old.Version, "update")
		check(7, errors.Is(ops[7].err, ErrDuplicate), "duplicate of a batch-mate")
		want := map[string]float64{"old": 16, "a": 10, "b": 12}
		for id, n := range want {
			r, err := st.Get(ctx, s, id, nil)
			if err != nil || r.Values["n"] != n {
				t.Errorf("stored %s: %+v %v, want n=%v", id, r, err, n)
			}
		}
		if _, err := st.Get(ctx, s, "c", nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("the cancelled insert was stored: %v", err)
		}
	}
}

// TestGroupCommitConcurrentWrites sends many concurrent writes through the committer and checks
// every acknowledged one is stored and every refused one is not.
func TestGroupCommitConcurrentWrites(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewSQL(db)
		s, err := NewSchema("items", StringID, Options{}, map[string]ColumnType{"n": Number})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		const n = 200
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Every fifth id repeats its predecessor's: exactly one of each pair may succeed.
				id := i
				if i%5 == 4 {
					id = i - 1
				}
				_, errs[i] = st.Insert(ctx, s, &Row{ID: fmt.Sprintf("r%03d", id), Values: map[string]any{"n": float64(i)}})
			}()
		}
		wg.Wait()
		stored := map[string]float64{}
		rows, _, err := st.Query(ctx, s, &odata.Query{Top: odata.NoLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			stored[r.ID.(string)] = r.Values["n"].(float64)
		}
		for i := 0; i < n; i += 5 {
			for j := i; j < i+5; j++ {
				if j%5 != 3 && j%5 != 4 {
					if errs[j] != nil || stored[fmt.Sprintf("r%03d", j)] != float64(j) {
						t.Errorf("insert %d: %v, stored %v", j, errs[j], stored[fmt.Sprintf("r%03d", j)])
					}
				}
			}
			a, b := errs[i+3], errs[i+4]
			won := i + 3
			if a != nil {
				won = i + 4
			}
			if (a == nil) == (b == nil) || !errors.Is(a, ErrDuplicate) && !errors.Is(b, ErrDuplicate) {
				t.Errorf("pair %d: %v / %v, want exactly one duplicate", i+3, a, b)
			}
			if got := stored[fmt.Sprintf("r%03d", i+3)]; got != float64(won) {
				t.Errorf("pair %d: stored n=%v, want the acknowledged %d", i+3, got, won)
			}
		}
		if len(stored) != n/5*4 {
			t.Errorf("%d rows stored, want %d", len(stored), n/5*4)
		}
	})
}
