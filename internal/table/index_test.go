package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// indexWords are titles the collation orders in ways byte order does not (case, accents, digits,
// punctuation, other scripts).
var indexWords = []string{
	"Amélie", "American Beauty", "apple", "Apple", "APPLE", "résumé", "Resume", "éclair", "eclair",
	"e\u0301clair", "10", "9", "1.5", "½", "a-b", "a b", "ab", "(paren)", "O'Brien", "straße", "strasse",
	"Ærø", "Ωmega", "Дом", "中文", "한국", "عربي", "😀", "", "Zürich", "zebra",
}

// TestDeclaredIndexesServeOrderBy declares indexes on both databases and checks that reads answer
// exactly what they answered without them (the collation is the one $orderby uses), that the
// planner walks them instead of sorting, and the index life cycle: idempotent, errors, the
// per-user prefix, replacing an earlier version's index, and (PostgreSQL) rebuilding a build left
// invalid.
func TestDeclaredIndexesServeOrderBy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewSQL(db)
		for _, perUser := range []bool{false, true} {
			t.Run(fmt.Sprintf("perUser=%v", perUser), func(t *testing.T) {
				name := map[bool]string{false: "Films", true: "MyFilms"}[perUser]
				s := createTable(t, st, name, StringID, Options{PerUser: perUser}, map[string]ColumnType{"title": String, "year": Number, "rating": String})
				var rows []*Row
				for i, w := range append(slices.Clone(indexWords), "<null>") {
					for y := 0; y < 3; y++ {
						v := map[string]any{"title": w, "year": float64(1993 + y), "rating": []string{"R", "PG"}[i%2]}
						if w == "<null>" {
							v["title"] = nil
						}
						if perUser {
							v["userid"] = []string{"alice", "bob"}[(i/2)%2]
						}
						rows = append(rows, &Row{ID: fmt.Sprintf("r%03d-%d", i, y), Values: v})
					}
				}
				if err := st.InsertBatch(ctx, s, rows); err != nil {
					t.Fatal(err)
				}
				queries := []string{
					"$orderby=title&$top=1000",
					"$orderby=title%20desc&$top=1000",
					"$filter=year%20eq%201994&$orderby=title&$top=1000",
					"$filter=year%20eq%201994%20and%20rating%20eq%20'R'&$orderby=title%20desc,id&$top=7",
					"$filter=year%20eq%201995%20and%20title%20ge%20'" + url.QueryEscape("Résumé") + "'&$orderby=title&$top=1000",
				}
				query := func(raw string) *odata.Query {
					t.Helper()
					v, err := url.ParseQuery(raw)
					if err != nil {
						t.Fatal(err)
					}
					q, err := odata.ParseQuery(v, odata.Limits{})
					if err != nil {
						t.Fatal(err)
					}
					if perUser {
						q.Restrict(odata.Eq(odata.Ident(UserIDColumn), odata.Str("alice")))
					}
					return q
				}
				read := func() [][]string {
					var out [][]string
					for _, raw := range queries {
						got, _, err := st.Query(ctx, s, query(raw))
						if err != nil {
							t.Fatalf("%s: %v", raw, err)
						}
						var ids []string
						for _, r := range got {
							ids = append(ids, r.ID.(string))
						}
						if len(ids) == 0 {
							t.Fatalf("%s: no rows", raw)
						}
						out = append(out, ids)
					}
					return out
				}
				before := read()
				for _, spec := range []string{"title", "year+title", "year+title"} {
					if err := st.CreateIndex(ctx, s, spec); err != nil {
						t.Fatalf("index %s: %v", spec, err)
					}
				}
				if after := read(); !slices.EqualFunc(before, after, slices.Equal) {
					t.Errorf("reads changed with the indexes:\nbefore %q\n after %q", before, after)
				}
				// The planner walks the index for the ascending reads (descending ones walk it
				// backwards and sort only ties on id).
				for _, c := range []struct{ raw, index string }{
					{queries[0], orderIndexName(s, mustCols(t, s, "title"))},
					{queries[2], orderIndexName(s, mustCols(t, s, "year", "title"))},
				} {
					if p := explain(t, db, st, s, query(c.raw)); !strings.Contains(p, c.index) || strings.Contains(p, "TEMP B-TREE") || strings.Contains(p, "Sort") {
						t.Errorf("%s does not walk %s:\n%s", c.raw, c.index, p)
					}
				}
				if perUser {
					def := indexDef(t, db, orderIndexName(s, mustCols(t, s, "title")))
					if !strings.Contains(strings.ToLower(def), "(c_userid") && !strings.Contains(strings.ToLower(def), `("c_userid"`) {
						t.Errorf("per-user index does not lead with the user column: %s", def)
					}
				}
			})
		}

		s, err := NewSchema("Shows", StringID, Options{}, map[string]ColumnType{"title": String, "year": Number, "rating": String})
		if err != nil {
			t.Fatal(err)
		}
		s.Source = "admin"
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		for _, spec := range []string{"nosuch", "title+nosuch", "title+Title", "title+year+rating+title", strings.Repeat("title+", 8) + "year"} {
			if err := st.CreateIndex(ctx, s, spec); !isInput(err) {
				t.Errorf("index %q: %v, want an input error", spec, err)
			}
		}
		// An earlier version's single-column index is replaced.
		rating, _ := s.Column("rating")
		legacy := indexName(s, rating)
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX %s ON %s (%s)`, quote(legacy), quote(s.SQLName), quote(rating.SQL))); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateIndex(ctx, s, "rating"); err != nil {
			t.Fatal(err)
		}
		if kind, err := st.relation(ctx, db, legacy); err != nil || kind != "" {
			t.Errorf("earlier index still there: %q %v", kind, err)
		}
		if db.Dialect != store.Postgres {
			return
		}
		// A concurrent build that failed leaves an invalid index under the name: it is rebuilt.
		for i := 0; i < 2; i++ {
			if _, err := st.Insert(ctx, s, &Row{ID: fmt.Sprint("dup", i), Values: map[string]any{"year": float64(2000)}}); err != nil {
				t.Fatal(err)
			}
		}
		name := orderIndexName(s, mustCols(t, s, "year"))
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s)`, quote(name), quote(s.SQLName), quote(physicalColumn("year")))); err == nil {
			t.Fatal("unique index over duplicates built")
		}
		if err := st.CreateIndex(ctx, s, "year"); err != nil {
			t.Fatal(err)
		}
		var valid bool
		if err := db.QueryRowContext(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, name).Scan(&valid); err != nil || !valid {
			t.Errorf("index %s valid = %v, %v", name, valid, err)
		}
		if def := indexDef(t, db, name); strings.Contains(def, "UNIQUE") {
			t.Errorf("the invalid build was kept: %s", def)
		}
	})
}

func isInput(err error) bool {
	var ie *InputError
	return err != nil && errors.As(err, &ie)
}

func mustCols(t *testing.T, s *Schema, names ...string) []Column {
	t.Helper()
	cols, err := ParseIndexSpec(s, strings.Join(names, "+"))
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// explain returns the plan of a read's page query, on PostgreSQL with sorts and sequential scans
// disabled (the test tables are small) so that an index that can serve the order is taken.
func explain(t *testing.T, db *store.DB, st *SQL, s *Schema, q *odata.Query) string {
	t.Helper()
	ctx := context.Background()
	c, err := odata.Compile(q, s.odata, st.d, 1)
	if err != nil {
		t.Fatal(err)
	}
	page, args, err := c.SelectSQL(quote(s.SQLName), allColumns(s))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	prefix := "EXPLAIN QUERY PLAN "
	if db.Dialect == store.Postgres {
		prefix = "EXPLAIN "
		for _, set := range []string{"SET enable_seqscan = off", "SET enable_sort = off", "SET enable_bitmapscan = off"} {
			if _, err := conn.ExecContext(ctx, set); err != nil {
				t.Fatal(err)
			}
		}
		defer conn.ExecContext(ctx, "RESET ALL") //nolint:errcheck
	}
	rows, err := conn.QueryContext(ctx, prefix+page, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals...))
	}
	return strings.Join(lines, "\n")
}

// indexDef is an index's definition as the database reports it.
func indexDef(t *testing.T, db *store.DB, name string) string {
	t.Helper()
	q := `SELECT sql FROM sqlite_master WHERE name = ?`
	if db.Dialect == store.Postgres {
		q = `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1`
	}
	var def sql.NullString
	if err := db.QueryRowContext(context.Background(), q, name).Scan(&def); err != nil {
		t.Fatalf("index %s: %v", name, err)
	}
	return def.String
}
