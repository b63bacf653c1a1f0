package table

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestInPlaceRendersLikeRows checks that a read rendered in place (renderPage, renderItem) writes
// exactly what rendering the Rows of Query and Get writes, for both id types, every column type,
// NULLs, strings that need escaping, numbers at the edges of the formatting rules, deleted rows, v1
// and v2 views and $select; and that it fails the result size limit exactly when a read into Rows
// does.
func TestInPlaceRendersLikeRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewSQL(db)
		texts := []string{"", "plain", "quote \" and \\ back", "tab\tnew\nline\r\x01", "caf\u00e9 \u65e5\u672c \U0001F600", "sep \u2028 \u2029", strings.Repeat("long ", 300)}
		nums := []float64{0, 1, -1, 0.25, 1.0 / 3, 1e20, 1e21, -1e-7, 123456789012345, math.MaxFloat64, math.SmallestNonzeroFloat64}
		for _, id := range []IDType{StringID, IntegerID} {
			s := createTable(t, st, "Mixed"+string(id), id, Options{SoftDelete: true}, map[string]ColumnType{"title": String, "n": Number, "when": Date, "ok": Boolean})
			var rows []*Row
			for i := range 75 {
				v := map[string]any{"title": texts[i%len(texts)], "n": nums[i%len(nums)], "when": time.UnixMilli(int64(i)*86400001 - 5e11).UTC(), "ok": i%2 == 0}
				if i%6 == 0 {
					v = map[string]any{"title": nil, "n": nil, "when": nil, "ok": nil}
				}
				r := &Row{ID: int64(i + 1), Values: v}
				if id == StringID {
					r.ID = fmt.Sprintf("r%03d\u00e9", i)
				}
				rows = append(rows, r)
			}
			if err := st.InsertBatch(ctx, s, rows); err != nil {
				t.Fatal(err)
			}
			all, _, err := st.Query(ctx, s, &odata.Query{Top: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Delete(ctx, s, all[7].ID, "", nil); err != nil {
				t.Fatal(err)
			}
			views := []view{{v2: true}, {sys: sysAll}, {}, {sys: sysVersion | sysDeleted},
				{v2: true, cols: map[string]bool{"n": true, "ok": true, "createdat": true}},
				{cols: map[string]bool{"title": true, "id": true}, includeID: true, sys: sysVersion}}
			for _, top := range []int{1, 10, 1000} {
				for vi, v := range views {
					q := func() *odata.Query { return &odata.Query{Top: top, IncludeDeleted: true, InlineCount: true} }
					want, wantN, wantCount := renderRows(t, st, s, q(), v)
					got, n, count, err := st.renderPage(ctx, s, pageRead{q: q()}, v, []byte("["))
					if err != nil {
						t.Fatal(err)
					}
					if string(got) != want || n != wantN || count != wantCount {
						t.Fatalf("%s $top=%d view %d: in place (%d rows, count %d)\n%s\nfrom Rows (%d rows, count %d)\n%s", id, top, vi, n, count, got, wantN, wantCount, want)
					}
				}
			}
			// The size limit: at every limit around the page's size, both fail or both succeed.
			for _, limit := range []int64{100, 1000, 2000, 5000, 20000, 40000, 60000} {
				q := &odata.Query{Top: 1000, IncludeDeleted: true, MaxBytes: limit}
				_, _, errRows := st.Query(ctx, s, q)
				if errRows == nil {
					q2 := *q
					_, _, _, errRows = renderRowsErr(st, s, &q2, view{v2: true})
				}
				q3 := *q
				_, _, _, errInPlace := st.renderPage(ctx, s, pageRead{q: &q3}, view{v2: true}, []byte("["))
				var le *odata.LimitError
				if (errRows == nil) != (errInPlace == nil) || (errInPlace != nil && !errors.As(errInPlace, &le)) {
					t.Fatalf("limit %d: from Rows %v, in place %v", limit, errRows, errInPlace)
				}
			}
			for _, i := range []int{0, 3, 7, 74} {
				row, err := st.Get(ctx, s, all[i].ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				for vi, v := range views[:4] {
					b, version, deleted, err := st.renderItem(ctx, s, all[i].ID, nil, v, nil)
					if err != nil {
						t.Fatal(err)
					}
					if want := string(appendRow(nil, s, row, v)); string(b) != want || version != row.Version || deleted != row.Deleted {
						t.Fatalf("%s item %d view %d: in place %s (%q, %v), from Get %s (%q, %v)", id, i, vi, b, version, deleted, want, row.Version, row.Deleted)
					}
				}
			}
			if _, _, _, err := st.renderItem(ctx, s, "nope", nil, view{}, nil); id == StringID && !errors.Is(err, ErrNotFound) {
				t.Fatalf("missing item: %v", err)
			}
		}
	})
}

// renderRows renders a read the way a store without in-place reads does: Query, then appendRow.
func renderRows(t *testing.T, st *SQL, s *Schema, q *odata.Query, v view) (string, int, int64) {
	t.Helper()
	b, n, count, err := renderRowsErr(st, s, q, v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), n, count
}

func renderRowsErr(st *SQL, s *Schema, q *odata.Query, v view) ([]byte, int, int64, error) {
	rows, count, err := st.Query(context.Background(), s, q)
	if err != nil {
		return nil, 0, 0, err
	}
	b := []byte("[")
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		if b = appendRow(b, s, r, v); q.MaxBytes > 0 && int64(len(b)) > q.MaxBytes {
			return nil, 0, 0, resultTooLarge(q.MaxBytes)
		}
	}
	return b, len(rows), count, nil
}

// TestPlansServeEveryCaller checks the compiled page reads (plan.go): one plan serves every caller of
// a per-user table, each seeing only its own rows; different option texts get different plans; a
// table whose columns changed gets a new plan that selects them; and the cache stays bounded.
func TestPlansServeEveryCaller(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewSQL(db)
		s := createTable(t, st, "Notes", StringID, Options{PerUser: true}, map[string]ColumnType{"text": String})
		var rows []*Row
		for i := range 6 {
			user := []string{"custom:a", "custom:b"}[i%2]
			rows = append(rows, &Row{ID: fmt.Sprintf("n%d", i), Values: map[string]any{"userid": user, "text": fmt.Sprintf("%s %d", user, i)}})
		}
		if err := st.InsertBatch(ctx, s, rows); err != nil {
			t.Fatal(err)
		}
		read := func(s *Schema, user, filter string) string {
			t.Helper()
			q := &odata.Query{Top: 50}
			if filter != "" {
				f, err := odata.ParseFilter(filter)
				if err != nil {
					t.Fatal(err)
				}
				q.Filter = f
			}
			r := pageRead{q: q, perUser: true, user: user, key: &planKey{s: s, filter: filter, top: 50, perUser: true}}
			b, _, _, err := st.renderPage(ctx, s, r, view{v2: true, cols: map[string]bool{"text": true}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		if got, want := read(s, "custom:a", ""), `{"text":"custom:a 0"},{"text":"custom:a 2"},{"text":"custom:a 4"}`; got != want {
			t.Fatalf("a reads %s", got)
		}
		if got, want := read(s, "custom:b", ""), `{"text":"custom:b 1"},{"text":"custom:b 3"},{"text":"custom:b 5"}`; got != want {
			t.Fatalf("b reads %s", got)
		}
		if n := st.plans.n.Load(); n != 1 {
			t.Fatalf("%d plans for one query text", n)
		}
		if got, want := read(s, "custom:b", "text ne 'custom:b 3'"), `{"text":"custom:b 1"},{"text":"custom:b 5"}`; got != want {
			t.Fatalf("b's filtered read: %s", got)
		}
		if got := read(s, "custom:c", ""); got != "" {
			t.Fatalf("a user without rows reads %s", got)
		}
		if n := st.plans.n.Load(); n != 2 {
			t.Fatalf("%d plans for two query texts", n)
		}
		// A new column: the table's schema is loaded anew, and its plan selects the column.
		if err := st.AddColumns(ctx, s, []Column{{Name: "extra", SQL: physicalColumn("extra"), Type: String}}, 0); err != nil {
			t.Fatal(err)
		}
		all, err := st.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s2 := all[strings.ToLower(s.Name)]
		if s2 == nil || s2 == s {
			t.Fatalf("schema after the new column: %v", s2)
		}
		q := &odata.Query{Top: 50}
		b, _, _, err := st.renderPage(ctx, s2, pageRead{q: q, perUser: true, user: "custom:a", key: &planKey{s: s2, top: 50, perUser: true}}, view{v2: true}, nil)
		if err != nil || !strings.Contains(string(b), `"extra":null`) {
			t.Fatalf("after the new column: %s %v", b, err)
		}
		for i := range maxPlans + 10 {
			read(s, "custom:a", fmt.Sprintf("text eq 'x%d'", i))
			if n := st.plans.n.Load(); n > maxPlans {
				t.Fatalf("%d plans kept (bound %d)", n, maxPlans)
			}
		}
	})
}

// TestInPlaceReadStopsAtDeadline: a page read consumed in place stops when its context ends, on both
// databases, also when the expensive part comes after the first row: its statement is not the
// materialized page that Query runs on SQLite (pageQuery), so this holds only because the in-place
// reader interrupts SQLite at any step.
func TestInPlaceReadStopsAtDeadline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewSQL(db)
		s := createTable(t, st, "Big", StringID, Options{}, map[string]ColumnType{"t": String})
		const n = 20000
		body := strings.Repeat("a", 4000)
		rows := make([]*Row, 0, n)
		for i := range n {
			v := body
			if i == 0 || i == n-1 { // matches at both ends: the first row comes at once
				v = "needle" + body
			}
			rows = append(rows, &Row{ID: fmt.Sprintf("%06d", i), Values: map[string]any{"t": v}})
		}
		if err := st.InsertBatch(ctx, s, rows); err != nil {
			t.Fatal(err)
		}
		f, err := odata.ParseFilter("substringof('needle', replace(t,'a','bbbb'))")
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		r := pageRead{q: &odata.Query{Filter: f, Top: 10}, key: &planKey{s: s, filter: "needle", top: 10}}
		_, _, _, err = st.renderPage(c, s, r, view{v2: true}, nil)
		d := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v after %v, want the deadline", err, d)
		}
		if d > time.Second {
			t.Fatalf("the read ran %v past a 100ms deadline", d)
		}
	})
}
