package table_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

// TestStoreConformance runs the Store contract against SQLite and PostgreSQL through the interface.
func TestStoreConformance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var st table.Store = table.NewSQL(db)
		opt := table.Options{SoftDelete: true, PerUser: true, DynamicSchema: true, PageSize: 20, MaxTop: 100,
			Permissions: map[appdir.Operation]auth.Permission{appdir.Read: auth.Public, appdir.Insert: auth.User}}
		s, err := table.NewSchema("Notes", table.StringID, opt, map[string]table.ColumnType{"text": table.String, "n": table.Number, "when": table.Date, "ok": table.Boolean})
		if err != nil {
			t.Fatal(err)
		}
		s.Source = "admin"
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, s); !errors.Is(err, table.ErrExists) {
			t.Fatalf("second create: %v", err)
		}
		all, err := st.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := all["notes"]
		if got == nil || got.Name != "Notes" || got.IDType != table.StringID || !got.Options.SoftDelete || !got.Options.PerUser ||
			got.Options.PageSize != 20 || got.Permission(appdir.Read) != auth.Public || got.Permission(appdir.Delete) != auth.Admin || len(got.Columns()) != 5 {
			t.Fatalf("loaded %+v", got)
		}
		if c, ok := got.Column("WHEN"); !ok || c.Type != table.Date {
			t.Fatalf("column lookup: %+v", c)
		}
		// Adding a column twice (two instances racing) is not an error.
		col := table.Column{Name: "extra", SQL: "c_extra", Type: table.String}
		if err := st.AddColumn(ctx, got, col); err != nil {
			t.Fatal(err)
		}
		if err := st.AddColumn(ctx, got, col); err != nil {
			t.Fatalf("re-adding a column: %v", err)
		}
		all, _ = st.Load(ctx)
		s = all["notes"]
		if _, ok := s.Column("extra"); !ok {
			t.Fatal("added column not loaded")
		}
		s.Options.MaxTop = 50
		if err := st.SetOptions(ctx, s); err != nil {
			t.Fatal(err)
		}

		when := time.Date(1900, 1, 1, 0, 0, 0, 1e6, time.UTC)
		r, err := st.Insert(ctx, s, &table.Row{ID: "a", Values: map[string]any{"text": "hello", "n": 5e-324, "when": when, "ok": true, "userid": "u1"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != "a" || r.Version == "" || r.CreatedAt.IsZero() || r.Values["n"] != 5e-324 || !r.Values["when"].(time.Time).Equal(when) || r.Values["ok"] != true {
			t.Fatalf("inserted %+v", r)
		}
		if _, err := st.Insert(ctx, s, &table.Row{ID: "a", Values: map[string]any{}}); !errors.Is(err, table.ErrDuplicate) {
			t.Fatalf("duplicate: %v", err)
		}
		if err := st.InsertBatch(ctx, s, []*table.Row{{ID: "b", Values: map[string]any{"text": "b", "userid": "u2"}}, {ID: "c", Values: map[string]any{"text": "c", "userid": "u1"}}}); err != nil {
			t.Fatal(err)
		}
		mine := odata.Eq(odata.Ident("userId"), odata.Str("u1"))
		if _, err := st.Get(ctx, s, "b", mine); !errors.Is(err, table.ErrNotFound) {
			t.Fatalf("restricted get: %v", err)
		}
		if g, err := st.Get(ctx, s, "a", mine); err != nil || g.Values["text"] != "hello" {
			t.Fatalf("get: %+v %v", g, err)
		}

		// Update: version check, conflict carries the current row, not-found for others' rows.
		u, err := st.Update(ctx, s, "a", map[string]any{"text": "changed"}, r.Version, mine)
		if err != nil || u.Values["text"] != "changed" || u.Version == r.Version || !u.UpdatedAt.After(r.UpdatedAt.Add(-time.Millisecond)) {
			t.Fatalf("update: %+v %v", u, err)
		}
		var ce *table.ConflictError
		if _, err := st.Update(ctx, s, "a", map[string]any{"text": "x"}, r.Version, mine); !errors.As(err, &ce) || ce.Current.Values["text"] != "changed" {
			t.Fatalf("stale update: %v", err)
		}
		if _, err := st.Update(ctx, s, "b", map[string]any{"text": "x"}, "", mine); !errors.Is(err, table.ErrNotFound) {
			t.Fatalf("update of another user's row: %v", err)
		}
		if _, err := st.Update(ctx, s, "zzz", map[string]any{"text": "x"}, "", nil); !errors.Is(err, table.ErrNotFound) {
			t.Fatalf("update of a missing row: %v", err)
		}
		if chk, err := st.Update(ctx, s, "a", nil, u.Version, nil); err != nil || chk.Version != u.Version {
			t.Fatalf("empty update is a check: %+v %v", chk, err)
		}

		// Soft delete, undelete.
		d, err := st.Delete(ctx, s, "a", "", mine)
		if err != nil || !d.Deleted {
			t.Fatalf("delete: %+v %v", d, err)
		}
		if _, err := st.Delete(ctx, s, "a", "", mine); !errors.Is(err, table.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := st.Update(ctx, s, "a", map[string]any{"text": "x"}, "", mine); !errors.Is(err, table.ErrNotFound) {
			t.Fatalf("update of a deleted row: %v", err)
		}
		if _, err := st.Undelete(ctx, s, "a", "stale", mine); !errors.As(err, &ce) {
			t.Fatalf("stale undelete: %v", err)
		}
		un, err := st.Undelete(ctx, s, "a", d.Version, mine)
		if err != nil || un.Deleted {
			t.Fatalf("undelete: %+v %v", un, err)
		}

		// Query: filter, order, paging, count, restriction.
		q, err := odata.ParseQuery(map[string][]string{"$orderby": {"text desc"}, "$inlinecount": {"allpages"}, "$top": {"1"}}, odata.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		q.Restrict(mine)
		rows, count, err := st.Query(ctx, s, q)
		if err != nil || count != 2 || len(rows) != 1 || rows[0].Values["text"] != "changed" {
			t.Fatalf("query: %d rows %+v count %d %v", len(rows), rows, count, err)
		}
		if err := st.CreateIndex(ctx, s, "text"); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateIndex(ctx, s, "text"); err != nil {
			t.Fatalf("index twice: %v", err)
		}
		if err := st.CreateIndex(ctx, s, "nosuch"); err == nil {
			t.Fatal("index on a missing column")
		}

		// Integer ids and hard delete.
		is, _ := table.NewSchema("Counter", table.IntegerID, table.Options{}, map[string]table.ColumnType{"v": table.Number})
		is.Source = "admin"
		if err := st.Create(ctx, is); err != nil {
			t.Fatal(err)
		}
		for want := int64(1); want <= 3; want++ {
			r, err := st.Insert(ctx, is, &table.Row{Values: map[string]any{"v": float64(want)}})
			if err != nil || r.ID != want {
				t.Fatalf("integer id %v, want %d (%v)", r, want, err)
			}
		}
		if d, err := st.Delete(ctx, is, int64(2), "", nil); err != nil || d.ID != int64(2) {
			t.Fatalf("hard delete: %+v %v", d, err)
		}
		if _, err := st.Get(ctx, is, int64(2), nil); !errors.Is(err, table.ErrNotFound) {
			t.Fatalf("hard-deleted row: %v", err)
		}
		if err := st.Drop(ctx, is); err != nil {
			t.Fatal(err)
		}
		if err := st.Drop(ctx, is); !errors.Is(err, table.ErrNoTable) {
			t.Fatalf("second drop: %v", err)
		}
		if all, _ := st.Load(ctx); all["counter"] != nil || all["notes"] == nil {
			t.Fatal("drop removed the wrong catalogue entry")
		}
	})
}
