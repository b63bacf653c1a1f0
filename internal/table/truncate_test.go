package table_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

// TestTruncateRestartsIDs: truncating an integer-id table restarts its ids at 1, as SQL Server's
// TRUNCATE TABLE restarted the identity (issue 13, item 13); restarting after a DELETE never reuses an
// id a row still has; string-id tables truncate too.
func TestTruncateRestartsIDs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := table.NewSQL(db)
		s, err := table.NewSchema("Counters", table.IntegerID, table.Options{SoftDelete: true}, map[string]table.ColumnType{"n": table.Number})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		insert := func() int64 {
			t.Helper()
			r, err := st.Insert(ctx, s, &table.Row{Values: map[string]any{"n": 1.0}})
			if err != nil {
				t.Fatal(err)
			}
			return r.ID.(int64)
		}
		count := func() int {
			t.Helper()
			rows, _, err := st.Query(ctx, s, &odata.Query{Top: odata.NoLimit, IncludeDeleted: true})
			if err != nil {
				t.Fatal(err)
			}
			return len(rows)
		}
		for want := int64(1); want <= 3; want++ {
			if id := insert(); id != want {
				t.Fatalf("id %d, want %d", id, want)
			}
		}
		// A soft-deleted row goes too.
		if _, err := st.Delete(ctx, s, int64(3), "", nil); err != nil {
			t.Fatal(err)
		}
		if n, err := st.Truncate(ctx, s); err != nil || n != 3 {
			t.Fatalf("truncate: %d, %v", n, err)
		}
		if c := count(); c != 0 {
			t.Fatalf("%d rows after truncate", c)
		}
		if id := insert(); id != 1 {
			t.Fatalf("first id after truncate: %d", id)
		}
		// Truncating a table that was never written to, twice, is fine.
		if _, err := st.Truncate(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Truncate(ctx, s); err != nil {
			t.Fatal(err)
		}
		if id := insert(); id != 1 {
			t.Fatalf("first id after a second truncate: %d", id)
		}

		// RestartIDs (after a script's TRUNCATE TABLE ran as a DELETE) moves the next id to one past
		// the largest left: 1 on an empty table, never an id in use.
		insert() // 2
		insert() // 3
		if _, err := db.ExecContext(ctx, db.Rebind(`DELETE FROM "`+s.SQLName+`" WHERE id > ?`), 1); err != nil {
			t.Fatal(err)
		}
		if err := st.RestartIDs(ctx, s); err != nil {
			t.Fatal(err)
		}
		if id := insert(); id != 2 {
			t.Fatalf("next id with id 1 left: %d", id)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM "`+s.SQLName+`"`); err != nil {
			t.Fatal(err)
		}
		if err := st.RestartIDs(ctx, s); err != nil {
			t.Fatal(err)
		}
		if id := insert(); id != 1 {
			t.Fatalf("next id on the emptied table: %d", id)
		}

		// String ids: rows go, nothing else to restart.
		ss, err := table.NewSchema("Notes", table.StringID, table.Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, ss); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Insert(ctx, ss, &table.Row{ID: "a", Values: map[string]any{}}); err != nil {
			t.Fatal(err)
		}
		if n, err := st.Truncate(ctx, ss); err != nil || n != 1 {
			t.Fatalf("truncate of a string-id table: %d, %v", n, err)
		}
		if err := st.RestartIDs(ctx, ss); err != nil {
			t.Fatal(err)
		}
	})
}
