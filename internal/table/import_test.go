package table_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

// TestUpsert: rows keep the system values they are given, a second write replaces them whole, a
// failing hook rolls the rows back, and integer ids continue after the largest imported one.
func TestUpsert(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := table.NewSQL(db)
		s, err := table.NewSchema("Items", table.IntegerID, table.Options{SoftDelete: true}, map[string]table.ColumnType{"title": table.String, "n": table.Number})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		c := time.Date(2013, 4, 5, 6, 7, 8, 9e6, time.UTC)
		u := c.Add(time.Hour)
		rows := []*table.Row{
			{ID: int64(10), CreatedAt: c, UpdatedAt: u, Version: "AAAAAAAAB9E=", Deleted: true, Values: map[string]any{"title": "ten", "n": 1.5}},
			{ID: int64(3), CreatedAt: c, UpdatedAt: c, Version: "AAAAAAAAB9F=", Values: map[string]any{"title": nil}},
		}
		hooked := false
		if err := st.Upsert(ctx, s, rows, func(ctx context.Context, tx *sql.Tx) error { hooked = true; return nil }); err != nil || !hooked {
			t.Fatal(err, hooked)
		}
		got, err := st.Get(ctx, s, int64(10), nil)
		if err != nil || !got.CreatedAt.Equal(c) || !got.UpdatedAt.Equal(u) || got.Version != "AAAAAAAAB9E=" || !got.Deleted || got.Values["title"] != "ten" || got.Values["n"] != 1.5 {
			t.Fatalf("%+v %v", got, err)
		}
		// Replaced whole (a property absent from the source row is null), in place.
		if err := st.Upsert(ctx, s, []*table.Row{{ID: int64(10), CreatedAt: c, UpdatedAt: u.Add(time.Second), Version: "v2", Values: map[string]any{"n": 2.0}}}, nil); err != nil {
			t.Fatal(err)
		}
		got, _ = st.Get(ctx, s, int64(10), nil)
		if got.Version != "v2" || got.Deleted || got.Values["title"] != nil || got.Values["n"] != 2.0 {
			t.Fatalf("replaced: %+v", got)
		}
		// A failing hook (the high-water mark) rolls the rows back.
		boom := errors.New("boom")
		err = st.Upsert(ctx, s, []*table.Row{{ID: int64(11), CreatedAt: c, UpdatedAt: c, Version: "x"}}, func(context.Context, *sql.Tx) error { return boom })
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, s, int64(11), nil); !errors.Is(err, table.ErrNotFound) {
			t.Fatalf("row of a failed batch: %v", err)
		}
		// New items get ids after the imported ones (PostgreSQL's setval is not transactional: the
		// failed batch may leave a gap, never a collision).
		r, err := st.Insert(ctx, s, &table.Row{Values: map[string]any{"title": "new"}})
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := r.ID.(int64); id < 11 || id > 12 {
			t.Fatalf("insert after import: %+v %v", r, err)
		}
		if err := st.Upsert(ctx, s, []*table.Row{{CreatedAt: c, UpdatedAt: c}}, nil); err == nil {
			t.Fatal("row without id accepted")
		}
	})
}
