package table

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestPerUserReadsWalkUserIndex checks that a user's page of a per-user table walks the table's
// index on (user id, id) instead of fetching and sorting all of the user's rows (string and
// integer ids, both databases), that it answers the right rows, and that a table created by an
// earlier version (an index on the user id alone) is upgraded when the service starts.
func TestPerUserReadsWalkUserIndex(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewSQL(db)
		for _, idType := range []IDType{StringID, IntegerID} {
			t.Run(string(idType), func(t *testing.T) {
				s := createTable(t, st, "Diary"+string(idType), idType, Options{PerUser: true, SoftDelete: true}, map[string]ColumnType{"text": String})
				var rows []*Row
				var want []string // alice's live rows in id order
				for i := 0; i < 120; i++ {
					user := []string{"alice", "bob", "carol"}[i%3]
					r := &Row{Values: map[string]any{"text": fmt.Sprint("entry ", i), "userid": user}, Deleted: i%7 == 0}
					id := fmt.Sprint(1000 + i)
					if idType == StringID {
						id = fmt.Sprintf("e%04d", 1000-i) // inserted in descending id order
						r.ID = id
					} else {
						r.ID = int64(1000 + i)
					}
					if user == "alice" && !r.Deleted {
						want = append(want, id)
					}
					rows = append(rows, r)
				}
				if err := st.InsertBatch(ctx, s, rows); err != nil {
					t.Fatal(err)
				}
				if idType == StringID {
					for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
						want[i], want[j] = want[j], want[i]
					}
				}
				page := func() *odata.Query {
					q := &odata.Query{Top: 10}
					q.Restrict(odata.Eq(odata.Ident("deleted"), odata.Bool(false)))
					q.Restrict(odata.Eq(odata.Ident(UserIDColumn), odata.Str("alice")))
					return q
				}
				check := func(t *testing.T, s *Schema) {
					t.Helper()
					if p := explain(t, db, st, s, page()); !strings.Contains(p, userIndex(s)) || strings.Contains(p, "TEMP B-TREE") || strings.Contains(p, "Sort") {
						t.Errorf("the page does not walk %s:\n%s", userIndex(s), p)
					}
					got, _, err := st.Query(ctx, s, page())
					if err != nil {
						t.Fatal(err)
					}
					var ids []string
					for _, r := range got {
						ids = append(ids, fmt.Sprint(r.ID))
						if r.Values["userid"] != "alice" || r.Deleted {
							t.Errorf("row %v of user %v (deleted %v) in alice's page", r.ID, r.Values["userid"], r.Deleted)
						}
					}
					if strings.Join(ids, ",") != strings.Join(want[:10], ",") {
						t.Errorf("page %v, want %v", ids, want[:10])
					}
				}
				check(t, s)

				// An earlier version's table: its index is on the user id alone.
				if _, err := db.ExecContext(ctx, "DROP INDEX "+quote(userIndex(s))); err != nil {
					t.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE INDEX %s ON %s (%s)", quote(legacyUserIndex(s)), quote(s.SQLName), quote(physicalColumn(UserIDColumn)))); err != nil {
					t.Fatal(err)
				}
				for range 2 { // idempotent
					if _, err := NewService(ctx, st, nil, Defaults{}, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
						t.Fatal(err)
					}
				}
				if kind, err := st.relation(ctx, db, legacyUserIndex(s)); err != nil || kind != "" {
					t.Errorf("the earlier index is still there: %q %v", kind, err)
				}
				if def := indexDef(t, db, userIndex(s)); !strings.Contains(def, "c_userid") || !strings.Contains(def, "id)") {
					t.Errorf("upgraded index: %s", def)
				}
				check(t, s)
			})
		}
	})
}

// createTable creates a table as the admin API would.
func createTable(t *testing.T, st *SQL, name string, id IDType, o Options, cols map[string]ColumnType) *Schema {
	t.Helper()
	s, err := NewSchema(name, id, o, cols)
	if err != nil {
		t.Fatal(err)
	}
	s.Source = "admin"
	if err := st.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}
