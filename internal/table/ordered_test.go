package table

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestOrderedReadRendersLikeValues checks that the rows a read takes for rendering only (values in
// column order, no map) render exactly like the rows of Query (with their Values maps), for every
// column type, NULLs, v1 and v2 views and $select, and count the same against the result size limit.
func TestOrderedReadRendersLikeValues(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewSQL(db)
		s := createTable(t, st, "Mixed", StringID, Options{}, map[string]ColumnType{"title": String, "n": Number, "when": Date, "ok": Boolean})
		var rows []*Row
		for i := range 75 { // more than one page of the ordered values' first chunk
			v := map[string]any{"title": fmt.Sprintf("t\"%d\u00e9", i), "n": float64(i) / 4, "when": time.UnixMilli(int64(i) * 86400001).UTC(), "ok": i%2 == 0}
			if i%5 == 0 {
				v = map[string]any{"title": nil, "n": nil, "when": nil, "ok": nil}
			}
			rows = append(rows, &Row{ID: fmt.Sprintf("r%03d", i), Values: v})
		}
		if err := st.InsertBatch(ctx, s, rows); err != nil {
			t.Fatal(err)
		}
		for _, top := range []int{10, 1000} {
			q := func() *odata.Query { return &odata.Query{Top: top} }
			plain, _, err := st.Query(ctx, s, q())
			if err != nil {
				t.Fatal(err)
			}
			ordered, _, err := st.queryOrdered(ctx, s, q())
			if err != nil {
				t.Fatal(err)
			}
			if len(plain) != len(ordered) || len(plain) != min(top, 75) {
				t.Fatalf("$top=%d: %d and %d rows", top, len(plain), len(ordered))
			}
			for _, v := range []view{{v2: true}, {sys: sysAll}, {v2: true, cols: map[string]bool{"n": true, "ok": true}}} {
				for i := range plain {
					if ordered[i].Values != nil || plain[i].ordered != nil {
						t.Fatal("a read kept both forms of values")
					}
					a, b := string(appendRow(nil, s, plain[i], v)), string(appendRow(nil, s, ordered[i], v))
					if a != b {
						t.Fatalf("row %d renders\n%s\nwith a map and\n%s\nin column order", i, a, b)
					}
					if !strings.Contains(a, `"id":"r`) && v.cols == nil {
						t.Fatalf("row %d: %s", i, a)
					}
				}
			}
			if a, b := rowSize(plain[3], s.order), rowSize(ordered[3], s.order); a != b {
				t.Errorf("row size %d with a map, %d in column order", a, b)
			}
		}
	})
}
