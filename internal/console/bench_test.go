package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

// BenchmarkBrowse is the data browser's server time (query, count, render) for one page of 50 rows of
// a table with GATEHOUSE_BENCH_ROWS rows (default 1,000,000), sorted by updatedAt and filtered.
//
//	go test -run '^$' -bench Browse -benchtime 20x ./internal/console
func BenchmarkBrowse(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("GATEHOUSE_BENCH_ROWS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	db := storetest.Open(b, storetest.SQLiteURL(b))
	h := newHarness(b, db)
	ctx := context.Background()
	s, err := h.tables.Lookup(ctx, "Items")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for start := 0; start < n; start += 10_000 {
		rows := make([]*table.Row, 0, 10_000)
		for i := start; i < min(n, start+10_000); i++ {
			rows = append(rows, &table.Row{ID: fmt.Sprintf("id-%08d", i), CreatedAt: now, UpdatedAt: now.Add(time.Duration(i) * time.Millisecond),
				Version: "v", Values: map[string]any{"title": fmt.Sprintf("item %d", i), "n": float64(i % 1000)}})
		}
		if err := h.tables.Store().InsertBatch(ctx, s, rows); err != nil {
			b.Fatal(err)
		}
	}
	br := h.signedIn()
	for _, path := range []string{"/console/data/Items", "/console/data/Items?filter=" + url.QueryEscape("n eq 7") + "&page=3"} {
		b.Run(path, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if p := br.get(path); p.status != http.StatusOK {
					b.Fatalf("%s: %d", path, p.status)
				}
			}
		})
	}
}
