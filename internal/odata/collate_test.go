package odata

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// collationWords are strings that Go (x/text), SQLite (the registered collation) and PostgreSQL
// (ICU und-x-icu) must order identically, with and without an index. Characters assigned after
// Unicode 6.2, the version of x/text's collation tables, are left out: x/text gives them implicit
// weights after every assigned character while ICU sorts them with their script or symbol group
// (for example 🙂 U+1F642, Unicode 7.0), a known difference documented in docs/performance.md.
var collationWords = []string{
	"Amélie", "American Beauty", "apple", "Apple", "APPLE", "résumé", "Resume", "resume", "Résumé",
	"zebra", "Zebra", "éclair", "eclair", "Eclair", "a b", "ab", "a-b", "a_b", "10", "9", "Ärger", "Arger",
	"straße", "strasse", "Ωmega", "omega", "Дом", "дом", "", "ß", "ss", "naïve", "naive", "co-op", "coop",
	"e\u0301clair", "Zürich", "Zurich", "O'Brien", "OBrien", "Ørsted", "Orsted",
	// digits and numbers
	"1", "01", "1.5", "-1", "+1", "100", "2", "½", "²", "①", "ⅰ", "Ⅰ",
	// punctuation, symbols, spaces
	"!", "#hash", "(paren)", "*star", "@at", "~tilde", " lead", "\tTab", "a\u00a0b", "€", "$", "£", "😀",
	// compatibility forms, ligatures, special cases
	"Ａ", "ａ", "𝔄", "Æsir", "aesir", "Œuvre", "ﬁle", "file", "ﬀ", "ǅ", "Ǆ", "ǆ", "İstanbul", "ıstanbul",
	"ä", "a\u0308", "Å", "A\u030a", "\u212b", "x", "xy",
	// other scripts
	"Ελληνικά", "α", "Α", "Ῥ", "中文", "日本", "カタカナ", "ひらがな", "한국", "عربي", "עברית", "ไทย", "हिन्दी",
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
// und-x-icu) and with UnicodeCompare in Go; all three must agree, without
// an index and with the index OrderIndexKey describes, which the planner
// must walk instead of sorting.
func TestCollationOnBothDatabases(t *testing.T) {
	if n := len(collationWords); n != len(slices.Compact(slices.Sorted(slices.Values(collationWords)))) {
		t.Fatal("collationWords has duplicates")
	}
	u := NewUnicodeCollation()
	// Row i holds collationWords[i]; the last row holds NULL.
	null := len(collationWords)
	ids := make([]int, null+1)
	for i := range ids {
		ids[i] = i
	}
	order := func(desc bool) []string {
		s := slices.Clone(ids)
		slices.SortFunc(s, func(a, b int) int {
			switch {
			case a == b:
				return 0
			case a == null:
				return map[bool]int{false: -1, true: 1}[desc]
			case b == null:
				return map[bool]int{false: 1, true: -1}[desc]
			}
			r := u.Compare(collationWords[a], collationWords[b])
			if desc {
				r = -r
			}
			if r == 0 {
				r = a - b
			}
			return r
		})
		out := make([]string, len(s))
		for i, id := range s {
			out[i] = fmt.Sprint(id)
		}
		return out
	}
	wantAsc, wantDesc := order(false), order(true)
	s, err := NewColumns("id", Column{Name: "id", Type: TypeInteger}, Column{Name: "w", Type: TypeString})
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, tdb testDB, ddlType, table string) {
		ctx := context.Background()
		// One connection, so that planner settings apply to every statement.
		conn, err := tdb.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := conn.ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec("CREATE TABLE " + tdb.from + " (id " + ddlType + " PRIMARY KEY, w TEXT)")
		ins := fmt.Sprintf("INSERT INTO %s VALUES (%s, %s)", tdb.from, tdb.dialect.Placeholder(1), tdb.dialect.Placeholder(2))
		for i, w := range collationWords {
			exec(ins, int64(i), w)
		}
		exec(ins, int64(null), nil)
		query := func(raw string) (string, []any) {
			t.Helper()
			c, err := Compile(mustQuery(t, raw), s, tdb.dialect, 1)
			if err != nil {
				t.Fatal(err)
			}
			stmt, args, err := c.SelectSQL(tdb.from, []Column{{Name: "id", Type: TypeInteger}})
			if err != nil {
				t.Fatal(err)
			}
			return stmt, args
		}
		ordered := func(raw string) []string {
			t.Helper()
			stmt, args := query(raw)
			rows, err := conn.QueryContext(ctx, stmt, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprint(id))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			return got
		}
		words := func(ids []string) []string {
			out := make([]string, len(ids))
			for i, id := range ids {
				var n int
				fmt.Sscan(id, &n)
				if n == null {
					out[i] = "<null>"
				} else {
					out[i] = collationWords[n]
				}
			}
			return out
		}
		check := func(t *testing.T) {
			for _, c := range []struct {
				raw  string
				want []string
			}{{"$orderby=w&$top=1000", wantAsc}, {"$orderby=w%20desc&$top=1000", wantDesc}} {
				if got := ordered(c.raw); !slices.Equal(got, c.want) {
					t.Errorf("%s:\n got %q\nwant %q", c.raw, words(got), words(c.want))
				}
			}
			// Ordering comparisons agree with ORDER BY.
			for _, pivot := range []string{"American Beauty", "resume", "Zurich", "1.5", "Ελληνικά", "😀"} {
				got := ordered("$top=1000&$orderby=w&$filter=w%20lt%20'" + url.QueryEscape(pivot) + "'")
				want := wantAsc[1:slices.Index(wantAsc, fmt.Sprint(slices.Index(collationWords, pivot)))] // no NULL
				if !slices.Equal(got, want) {
					t.Errorf("w lt %q:\n got %q\nwant %q", pivot, words(got), words(want))
				}
			}
		}
		t.Run("no index", check)
		key, err := OrderIndexKey(tdb.dialect, "w", TypeString)
		if err != nil {
			t.Fatal(err)
		}
		exec("CREATE INDEX " + table + "_w ON " + tdb.from + " (" + key + ", id)")
		plan := "EXPLAIN QUERY PLAN "
		if tdb.name == "postgres" {
			// Tiny table: make the planner take the index whenever it can serve the order.
			exec("SET enable_seqscan = off")
			exec("SET enable_sort = off")
			plan = "EXPLAIN "
		}
		t.Run("index", check)
		stmt, args := query("$orderby=w&$top=10")
		rows, err := conn.QueryContext(ctx, plan+stmt, args...)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			cols, _ := rows.Columns()
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
		rows.Close()
		p := strings.Join(lines, "\n")
		if !strings.Contains(p, table+"_w") || strings.Contains(p, "TEMP B-TREE") || strings.Contains(p, "Sort") {
			t.Errorf("ORDER BY w does not walk the index:\n%s", p)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		tdb := testDB{name: "sqlite", db: openTestSQLite(t), dialect: SQLite{}, from: "words"}
		run(t, tdb, "INTEGER", "words")
	})
	t.Run("postgres", func(t *testing.T) {
		db, schema := openTestPostgres(t)
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM pg_collation WHERE collname = 'und-x-icu'`).Scan(&n); err != nil || n == 0 {
			t.Fatalf("ICU collation und-x-icu missing (server built without ICU?): %v", err)
		}
		run(t, testDB{name: "postgres", db: db, dialect: Postgres{}, from: `"` + schema + `".words`}, "bigint", "words")
	})
}

func TestOrderIndexKey(t *testing.T) {
	for _, c := range []struct {
		d    Dialect
		typ  Type
		want string
	}{
		{SQLite{}, TypeString, `"c_title" COLLATE gatehouse_unicode`},
		{SQLite{}, TypeNumber, `"c_title"`},
		{Postgres{}, TypeString, `"c_title" COLLATE "und-x-icu" NULLS FIRST`},
		{Postgres{}, TypeDate, `"c_title" NULLS FIRST`},
	} {
		got, err := OrderIndexKey(c.d, "c_title", c.typ)
		if err != nil || got != c.want {
			t.Errorf("OrderIndexKey(%T, %s) = %q, %v; want %q", c.d, c.typ, got, err, c.want)
		}
	}
	if got, _ := EqualityIndexKey(Postgres{}, "c_user"); got != `"c_user" NULLS FIRST` {
		t.Errorf("EqualityIndexKey = %q", got)
	}
	if _, err := OrderIndexKey(SQLite{}, "", TypeString); err == nil {
		t.Error("empty identifier accepted")
	}
}
