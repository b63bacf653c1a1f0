package odata

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
)

var collationWords = []string{
	"Amélie", "American Beauty", "apple", "Apple", "APPLE", "résumé", "Resume", "resume", "Résumé",
	"zebra", "Zebra", "éclair", "eclair", "Eclair", "a b", "ab", "a-b", "a_b", "10", "9", "Ärger", "Arger",
	"straße", "strasse", "Ωmega", "omega", "Дом", "дом", "", "ß", "ss", "naïve", "naive", "co-op", "coop",
	"e\u0301clair", "Zürich", "Zurich", "O'Brien", "OBrien", "Ørsted", "Orsted",
}

func TestUnicodeCompare(t *testing.T) {
	u := NewUnicodeCollation()
	for _, p := range [][2]string{
		{"Amélie", "American Beauty"}, // culture-aware: é ~ e at the primary level, l < r
		{"apple", "Apple"},            // lower case first (tertiary)
		{"Apple", "banana"},           // case is not primary
		{"resume", "Resume"},
		{"Resume", "résumé"}, // accents (secondary) outweigh case (tertiary)
		{"Zebra", "Ωmega"},   // Latin before Greek
		{"Ωmega", "Дом"},     // Greek before Cyrillic
		{"", "a"},
		{"0", "9"},
		{"9", "a"},
	} {
		if got := u.Compare(p[0], p[1]); got != -1 {
			t.Errorf("Compare(%q, %q) = %d, want -1", p[0], p[1], got)
		}
		if got := u.Compare(p[1], p[0]); got != 1 {
			t.Errorf("Compare(%q, %q) = %d, want 1", p[1], p[0], got)
		}
	}
	// Canonically equivalent but different strings are not equal (bytewise
	// tie-break, like PostgreSQL's deterministic collations).
	if u.Compare("éclair", "e\u0301clair") == 0 {
		t.Errorf("precomposed and decomposed strings compare equal")
	}
	if u.Compare("same", "same") != 0 {
		t.Errorf("identical strings differ")
	}
}

func TestUnicodeCompareConcurrent(t *testing.T) {
	u := NewUnicodeCollation()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if u.Compare("Amélie", "American Beauty") != -1 {
					errs <- "wrong order under concurrency"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestCollationOnBothDatabases sorts the same words with ORDER BY on both
// databases (SQLite with the registered collation, PostgreSQL with ICU
// und-x-icu) and with UnicodeCompare in Go; all three must agree.
func TestCollationOnBothDatabases(t *testing.T) {
	want := slices.Clone(collationWords)
	slices.SortFunc(want, NewUnicodeCollation().Compare)
	s, err := NewColumns("id", Column{Name: "id", Type: TypeInteger}, Column{Name: "w", Type: TypeString})
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, tdb testDB, ddlType string) {
		ctx := context.Background()
		if _, err := tdb.db.ExecContext(ctx, "CREATE TABLE "+tdb.from+" (id "+ddlType+" PRIMARY KEY, w TEXT)"); err != nil {
			t.Fatal(err)
		}
		for i, w := range collationWords {
			if _, err := tdb.db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%s, %s)", tdb.from,
				tdb.dialect.Placeholder(1), tdb.dialect.Placeholder(2)), int64(i), w); err != nil {
				t.Fatal(err)
			}
		}
		q := mustQuery(t, "$orderby=w&$top=1000")
		c, err := Compile(q, s, tdb.dialect, 1)
		if err != nil {
			t.Fatal(err)
		}
		stmt, args, err := c.SelectSQL(tdb.from, []Column{{Name: "w", Type: TypeString}})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := tdb.db.QueryContext(ctx, stmt, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var w string
			if err := rows.Scan(&w); err != nil {
				t.Fatal(err)
			}
			got = append(got, w)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("ORDER BY w:\n got %q\nwant %q", got, want)
		}
		for _, p := range [][2]string{{"Amélie", "American Beauty"}, {"apple", "Apple"}, {"resume", "Résumé"}, {"Ärger", "zebra"}} {
			if i, j := slices.Index(got, p[0]), slices.Index(got, p[1]); i < 0 || j < 0 || i > j {
				t.Errorf("%q should sort before %q (positions %d, %d)", p[0], p[1], i, j)
			}
		}
		// Ordering comparisons agree with ORDER BY.
		for _, pivot := range []string{"American Beauty", "resume", "Zurich"} {
			q := mustQuery(t, "$top=1000&$orderby=w&$filter=w%20lt%20'"+pivot+"'")
			c, err := Compile(q, s, tdb.dialect, 1)
			if err != nil {
				t.Fatal(err)
			}
			stmt, args, _ := c.SelectSQL(tdb.from, []Column{{Name: "w", Type: TypeString}})
			var n int
			if err := tdb.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ("+stmt+") AS t", args...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if wantN := slices.Index(want, pivot); n != wantN {
				t.Errorf("w lt %q: %d rows, want %d", pivot, n, wantN)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		tdb := testDB{name: "sqlite", db: openTestSQLite(t), dialect: SQLite{}, from: "words"}
		run(t, tdb, "INTEGER")
	})
	t.Run("postgres", func(t *testing.T) {
		db, schema := openTestPostgres(t)
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM pg_collation WHERE collname = 'und-x-icu'`).Scan(&n); err != nil || n == 0 {
			t.Fatalf("ICU collation und-x-icu missing (server built without ICU?): %v", err)
		}
		run(t, testDB{name: "postgres", db: db, dialect: Postgres{}, from: `"` + schema + `".words`}, "bigint")
	})
}
