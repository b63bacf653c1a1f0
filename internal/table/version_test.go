package table_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

var versionRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestVersionsMonotonic checks that __version behaves like SQL Server's rowversion (issue 13, item 7):
// every write gives a row a new version, unique in the database and greater than every version handed
// out before it, also with concurrent writers on two instances (two connection pools on one database,
// each with its own group commit); ordering by __version follows the order of modification; version
// checks (conflicts) still work; a row written with a version of its own (an import) keeps it.
func TestVersionsMonotonic(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": storetest.SQLiteURL, "postgres": storetest.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			url := dsn(t)
			versionsMonotonic(t, storetest.Open(t, url), storetest.Open(t, url))
		})
	}
}

func versionsMonotonic(t *testing.T, db1, db2 *store.DB) {
	ctx := context.Background()
	st1, st2 := table.NewSQL(db1), table.NewSQL(db2)
	mk := func(name string, id table.IDType) *table.Schema {
		s, err := table.NewSchema(name, id, table.Options{SoftDelete: true}, map[string]table.ColumnType{"n": table.Number})
		if err != nil {
			t.Fatal(err)
		}
		if err := st1.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	strs, ints := mk("Strs", table.StringID), mk("Ints", table.IntegerID)

	// Concurrent writers on both instances, on both tables: each inserts a row, updates it, deletes
	// and undeletes it, recording the versions in the order of its own writes.
	const writers, rounds = 8, 12
	var (
		mu   sync.Mutex
		all  = map[string]string{} // version → row that got it
		errs []error
		wg   sync.WaitGroup
	)
	record := func(row string, vs []string) {
		mu.Lock()
		defer mu.Unlock()
		for i, v := range vs {
			if !versionRE.MatchString(v) {
				errs = append(errs, fmt.Errorf("row %s: version %q is not 16 hex digits", row, v))
			}
			if other, dup := all[v]; dup {
				errs = append(errs, fmt.Errorf("version %s given to %s and %s", v, other, row))
			}
			all[v] = row
			if i > 0 && vs[i-1] >= v {
				errs = append(errs, fmt.Errorf("row %s: version %s after %s", row, v, vs[i-1]))
			}
		}
	}
	for w := range writers {
		st := st1
		if w%2 == 1 {
			st = st2
		}
		s := strs
		if w%4 >= 2 {
			s = ints
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var id any
				if s.IDType == table.StringID {
					id = fmt.Sprintf("w%d-r%d", w, r)
				}
				row, err := st.Insert(ctx, s, &table.Row{ID: id, Values: map[string]any{"n": 0.0}})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				vs := []string{row.Version}
				for _, step := range []func(v string) (*table.Row, error){
					func(v string) (*table.Row, error) {
						return st.Update(ctx, s, row.ID, map[string]any{"n": 1.0}, v, nil)
					},
					func(v string) (*table.Row, error) {
						return st.Update(ctx, s, row.ID, map[string]any{"n": 2.0}, "", nil)
					},
					func(v string) (*table.Row, error) { return st.Delete(ctx, s, row.ID, v, nil) },
					func(v string) (*table.Row, error) { return st.Undelete(ctx, s, row.ID, v, nil) },
				} {
					got, err := step(vs[len(vs)-1])
					if err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("%s %v: %w", s.Name, row.ID, err))
						mu.Unlock()
						return
					}
					vs = append(vs, got.Version)
				}
				record(fmt.Sprintf("%s/%v", s.Name, row.ID), vs)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d problems, first: %v", len(errs), errs[0])
	}
	if len(all) != writers*rounds*5 {
		t.Fatalf("%d distinct versions, want %d", len(all), writers*rounds*5)
	}
	highest := ""
	for v := range all {
		highest = max(highest, v)
	}

	// A write that starts after all of those gets a greater version, on either instance; so does a
	// version a script's T-SQL statement takes.
	after, err := st2.Update(ctx, strs, "w0-r0", map[string]any{"n": 3.0}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version <= highest {
		t.Fatalf("version %s after the concurrent writes is not above %s", after.Version, highest)
	}
	tv, err := st1.NextVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !versionRE.MatchString(tv) || tv <= after.Version {
		t.Fatalf("NextVersion %s after %s", tv, after.Version)
	}

	// A version check still refuses a stale version, and answers the current row.
	var ce *table.ConflictError
	if _, err := st1.Update(ctx, strs, "w0-r0", map[string]any{"n": 4.0}, highest, nil); !errors.As(err, &ce) || ce.Current.Version != after.Version {
		t.Fatalf("stale version: %v", err)
	}

	// Ordering by __version follows the order in which the rows were last changed.
	ids := []string{"w0-r1", "w0-r2", "w0-r3", "w0-r4", "w0-r5", "w0-r6"}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for i, id := range ids {
		st := []*table.SQL{st1, st2}[i%2]
		if _, err := st.Update(ctx, strs, id, map[string]any{"n": 10.0}, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	q, err := odata.ParseQuery(map[string][]string{"$filter": {"n eq 10"}, "$orderby": {"__version"}}, odata.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := st1.Query(ctx, strs, q)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range rows {
		order = append(order, r.ID.(string))
	}
	if fmt.Sprint(order) != fmt.Sprint(ids) {
		t.Fatalf("ordered by __version: %v, changed in the order %v", order, ids)
	}

	// A row written with its own version (an import) keeps it; the next change gives it a counter one.
	const imported = "AAAAAAAAB9E="
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := st1.Upsert(ctx, strs, []*table.Row{{ID: "imp", CreatedAt: now, UpdatedAt: now, Version: imported, Values: map[string]any{"n": 1.0}}}, nil); err != nil {
		t.Fatal(err)
	}
	if r, err := st2.Get(ctx, strs, "imp", nil); err != nil || r.Version != imported {
		t.Fatalf("imported row: %+v, %v", r, err)
	}
	r, err := st2.Update(ctx, strs, "imp", map[string]any{"n": 2.0}, imported, nil)
	if err != nil || !versionRE.MatchString(r.Version) || r.Version <= tv {
		t.Fatalf("update of the imported row: %+v, %v", r, err)
	}
	// Rows a batch insert writes get versions too.
	if err := st1.InsertBatch(ctx, strs, []*table.Row{{ID: "b1", Values: map[string]any{}}, {ID: "b2", Values: map[string]any{}}}); err != nil {
		t.Fatal(err)
	}
	b1, _ := st1.Get(ctx, strs, "b1", nil)
	b2, _ := st1.Get(ctx, strs, "b2", nil)
	if b1 == nil || b2 == nil || b1.Version <= r.Version || b2.Version <= b1.Version {
		t.Fatalf("batch versions: %+v %+v after %s", b1, b2, r.Version)
	}
}
