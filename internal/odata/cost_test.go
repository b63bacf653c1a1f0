package odata

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

// attackFilter is issue 10's amplification: every replace multiplies a 1 MiB value by 100.
func attackFilter(n int) string {
	r := strings.Repeat("R", 100)
	e := "replace(t,'a','" + r + "')"
	for range n {
		e = "concat(" + e + ",replace(t,'a','" + r + "'))"
	}
	return "length(" + e + ") gt 0"
}

func costSchema(t testing.TB) *Columns {
	t.Helper()
	s, err := NewColumns("id", Column{Name: "id", Type: TypeString}, Column{Name: "t", Type: TypeString},
		Column{Name: "u", Type: TypeString}, Column{Name: "n", Type: TypeNumber})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCostRules(t *testing.T) {
	for _, tc := range []struct {
		filter        string
		growth, bytes float64
	}{
		{"t eq 'x'", 0, 0},
		{"length(t) gt 1", 0, 0},
		{"concat(t,u) eq 'x'", 2, 0},
		{"concat(concat(t,'ab'),u) eq 'x'", 1 + 2, 2 + 2},
		{"tolower(t) eq 'x'", 3, 0},
		{"substringof('x', toupper(t))", 3, 0},
		{"replace(t,'a','bbbb') eq 'x'", 4, 0},
		{"replace(t,'aa','b') eq 'x'", 1, 0},
		{"replace(t,'','bbbb') eq 'x'", 1, 0},
		{"replace(t,u,'bbb') eq 'x'", 3, 0},
		{"replace('aaaa','a','bb') eq 'x'", 0, 8},
		{"substring(concat(t,t),1) eq 'x'", 2 + 2, 0},
		{"trim(t) eq 'x' and endswith(t,'y')", 1 + 1, 0},
		{"concat(replace(t,'a','RRRRRRRRRR'),replace(t,'a','RRRRRRRRRR')) eq 'x'", 10 + 10 + 20, 0},
	} {
		e, err := ParseFilter(tc.filter)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		c := EstimateCost(e)
		if c.Growth != tc.growth || c.Bytes != tc.bytes {
			t.Errorf("%s: cost %+v, want growth %v bytes %v", tc.filter, c, tc.growth, tc.bytes)
		}
	}
}

// TestCostRefusesAmplification: issue 10 finding 5 is refused at compile time on both dialects,
// with a bad-query error naming the bound, for $filter and $orderby, through ParseQuery's limits
// and with the defaults of a directly built Query or CompileFilter.
func TestCostRefusesAmplification(t *testing.T) {
	s := costSchema(t)
	for _, d := range []Dialect{SQLite{}, Postgres{}} {
		for _, raw := range []string{
			"$filter=" + url.QueryEscape(attackFilter(8)),
			"$orderby=" + url.QueryEscape(strings.TrimSuffix(attackFilter(8), " gt 0")),
			"$filter=" + url.QueryEscape(strings.Repeat("tolower(", 11)+"t"+strings.Repeat(")", 11)+" eq 'x'"),
			"$filter=" + url.QueryEscape("replace('"+strings.Repeat("a", 20000)+"','a','"+strings.Repeat("b", 100)+"') eq t"),
		} {
			v, _ := url.ParseQuery(raw)
			q, err := ParseQuery(v, Limits{})
			if err != nil {
				t.Fatalf("%.60s: parse: %v", raw, err)
			}
			_, err = Compile(q, s, d, 1)
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrBadQuery) || !strings.Contains(err.Error(), "too expensive") {
				t.Fatalf("%T %.60s: err = %v, want a cost LimitError", d, raw, err)
			}
		}
		e, _ := ParseFilter(attackFilter(2))
		if _, _, err := CompileFilter(e, s, d, 1); !errors.Is(err, ErrBadQuery) {
			t.Fatalf("CompileFilter: %v", err)
		}
		// A Query built by code (scripts) gets the default bound too.
		if _, err := Compile(&Query{Filter: e, Top: NoLimit}, s, d, 1); !errors.Is(err, ErrBadQuery) {
			t.Fatalf("Compile without limits: %v", err)
		}
	}
	// Ordinary queries pass, and the bound is configurable.
	ok := []string{
		"substringof('x', tolower(t)) or substringof('x', tolower(u))",
		"concat(concat(t,' '),u) eq 'a b'",
		"replace(t,' ','') eq 'ab' and startswith(toupper(u),'A')",
	}
	for _, f := range ok {
		e, err := ParseFilter(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Compile(&Query{Filter: e, Top: 10}, s, SQLite{}, 1); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if _, err := Compile(&Query{Filter: e, Top: 10, Cost: CostLimits{MaxGrowth: 1.5}}, s, SQLite{}, 1); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%s with MaxGrowth 1.5: %v", f, err)
		}
	}
}

// exprSQL compiles a string expression (not a predicate) for the soundness checks.
func exprSQL(e Expr, s Schema, d Dialect) (string, []any, error) {
	c := &compiler{d: d, s: s, argStart: 1}
	var out string
	err := c.run("$filter", func() {
		var t Type
		out, t = c.expr(e, TypeString)
		if t != TypeString {
			c.typeErr(e, "not a string")
		}
	})
	return out, c.args, err
}

// genExpr builds a random string expression from next (a source of bytes), depth-bounded.
func genExpr(next func() byte, depth int, inReplace bool) Expr {
	lit := func() *Literal {
		alphabet := []string{"a", "b", "ɐ", "ΐ", "ß", "ȿ", " ", "aa", "K", "\u0130"}
		n := int(next() % 6)
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[int(next())%len(alphabet)])
		}
		return Str(b.String())
	}
	op := next() % 9
	if depth <= 0 {
		op %= 2
	}
	switch op {
	case 0:
		return Ident([]string{"t", "u"}[next()%2])
	case 1:
		return lit()
	case 2:
		return NewCall("concat", genExpr(next, depth-1, inReplace), genExpr(next, depth-1, inReplace))
	case 3:
		if inReplace {
			return Ident("t")
		}
		var pat Expr = lit()
		if next()%4 == 0 {
			pat = genExpr(next, 0, true)
		}
		r := strings.Repeat(lit().Str, 1+int(next()%4))
		if len([]rune(r)) > maxReplaceLen {
			r = string([]rune(r)[:maxReplaceLen])
		}
		return NewCall("replace", genExpr(next, depth-1, true), pat, Str(r))
	case 4:
		if next()%2 == 0 {
			return NewCall("substring", genExpr(next, depth-1, inReplace), Num(float64(next()%5)))
		}
		return NewCall("substring", genExpr(next, depth-1, inReplace), Num(float64(next()%5)), Num(float64(next()%9)))
	case 5:
		return NewCall("tolower", genExpr(next, depth-1, inReplace))
	case 6:
		return NewCall("toupper", genExpr(next, depth-1, inReplace))
	case 7:
		return NewCall("trim", genExpr(next, depth-1, inReplace))
	}
	return Ident("t")
}

// costRows are the stored values the soundness checks run against: the longest is costL bytes.
// They hold what makes functions grow most: patterns that match everywhere, letters whose case
// mapping is longer, and (SQLite only) bytes that are not UTF-8.
var costRows = [][2]string{
	{strings.Repeat("a", 24), strings.Repeat("ab", 12)},
	{strings.Repeat("ɐ", 12), strings.Repeat("ΐ", 12)},
	{strings.Repeat("ß", 6) + strings.Repeat("ȿ", 6), " a b "},
	{"", strings.Repeat("aa", 12)},
}

const costL = 24

// setupCostDB fills the table; invalid (SQLite) adds a row that is not UTF-8.
func setupCostDB(t testing.TB, db *sql.DB, from string, invalid bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE `+from+` (id text PRIMARY KEY, t text, u text)`); err != nil {
		t.Fatal(err)
	}
	rows := costRows
	if invalid {
		rows = append(rows, [2]string{strings.Repeat("\xff", 24), "\xc3" + strings.Repeat("b", 23)})
	}
	for i, r := range rows {
		if len(r[0]) > costL || len(r[1]) > costL {
			t.Fatalf("row %d longer than %d bytes", i, costL)
		}
		q := `INSERT INTO ` + from + ` VALUES (?, ?, ?)`
		if !invalid { // PostgreSQL (which refuses invalid UTF-8)
			q = `INSERT INTO ` + from + ` VALUES ($1, $2, $3)`
		}
		if _, err := db.ExecContext(ctx, q, string(rune('a'+i)), r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
}

// checkCostSound evaluates e on every row and fails when a value is longer than the bound.
func checkCostSound(t *testing.T, db *sql.DB, d Dialect, from string, e Expr) {
	t.Helper()
	s := costSchema(t)
	q, args, err := exprSQL(e, s, d)
	if err != nil {
		return // refused by the compiler (nested replace and the like)
	}
	lenSQL := "length(CAST(" + q + " AS BLOB))"
	if _, ok := d.(Postgres); ok {
		lenSQL = "octet_length(" + q + ")"
	}
	var got sql.NullInt64
	if err := db.QueryRowContext(context.Background(), "SELECT max("+lenSQL+") FROM "+from, args...).Scan(&got); err != nil {
		t.Fatalf("%s: %v", Format(e), err)
	}
	var total Cost
	bound := size(e, &total).Bound(costL)
	if got.Valid && float64(got.Int64) > bound {
		t.Fatalf("%T %s: a value of %d bytes, but the cost model bounds it by %v", d, Format(e), got.Int64, bound)
	}
	if tb := total.Bound(costL); !math.IsInf(tb, 1) && tb < bound && !isLeaf(e) {
		t.Fatalf("%s: total %v below the root's size %v", Format(e), tb, bound)
	}
}

func isLeaf(e Expr) bool {
	switch e.(type) {
	case *Member, *Literal:
		return true
	}
	return false
}

// TestCostSoundRandom checks the cost model against what both databases compute, for random
// expressions over rows built to make functions grow.
func TestCostSoundRandom(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			var db *sql.DB
			var d Dialect
			from := "cost"
			if name == "sqlite" {
				db, d = openTestSQLite(t), SQLite{}
			} else {
				var schema string
				db, schema = openTestPostgres(t)
				d, from = Postgres{}, `"`+schema+`".cost`
			}
			setupCostDB(t, db, from, name == "sqlite")
			rng := rand.New(rand.NewPCG(10, 5))
			next := func() byte { return byte(rng.Uint32()) }
			for range 400 {
				checkCostSound(t, db, d, from, genExpr(next, 4, false))
			}
		})
	}
}

// FuzzCostBound: for any expression the fuzzer builds, the value SQLite computes on rows of at most
// costL bytes is no longer than the cost model's bound, so any query the model accepts computes at
// most MaxGrowth·L + MaxBytes bytes per row. Seeds: testdata/fuzz/FuzzCostBound.
func FuzzCostBound(f *testing.F) {
	f.Add([]byte{2, 3, 0, 1, 3, 1, 2, 3, 5, 0, 1})
	f.Add([]byte{5, 6, 2, 3, 0, 0, 1, 4, 2, 1, 9, 9, 9})
	f.Add([]byte{3, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	db := openTestSQLite(f)
	setupCostDB(f, db, "cost", true)
	f.Fuzz(func(t *testing.T, data []byte) {
		i := 0
		next := func() byte {
			if i >= len(data) {
				return 0
			}
			i++
			return data[i-1]
		}
		checkCostSound(t, db, SQLite{}, "cost", genExpr(next, 5, false))
	})
}
