package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestAnalyze: after a bulk load, PostgreSQL's planner has the table's statistics at once (pg_class's
// row estimate, -1 for a table never analyzed, becomes the row count), whatever the table's name; on
// SQLite nothing changes (no sqlite_stat1: its plans stay the ones Gatehouse is tuned for).
func TestAnalyze(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, name := range []string{"loaded", `odd"name`} {
			q := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
			if _, err := db.ExecContext(ctx, `CREATE TABLE `+q+` (id TEXT PRIMARY KEY, n INTEGER)`); err != nil {
				t.Fatal(err)
			}
			for i := range 300 {
				if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO `+q+` (id, n) VALUES (?, ?)`), string(rune('a'+i%26))+string(rune('0'+i/26)), i); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := db.Analyze(ctx, "loaded", `odd"name`); err != nil {
			t.Fatal(err)
		}
		if err := db.Analyze(ctx); err != nil {
			t.Fatal(err)
		}
		if db.Dialect == store.Postgres {
			for _, name := range []string{"loaded", `odd"name`} {
				var rows float64
				if err := db.QueryRowContext(ctx, `SELECT reltuples FROM pg_class WHERE oid = to_regclass(quote_ident($1))`, name).Scan(&rows); err != nil {
					t.Fatal(err)
				}
				if rows != 300 {
					t.Fatalf("%s: the planner estimates %v rows after Analyze, want 300", name, rows)
				}
			}
			if err := db.Analyze(ctx, "no_such_table"); err == nil {
				t.Fatal("Analyze of a missing table: no error")
			}
			return
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("SQLite: sqlite_stat1 %d %v, want none", n, err)
		}
	})
}
