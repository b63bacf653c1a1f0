package odata

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func compileFilterString(t *testing.T, filter string, d Dialect) (string, []any, error) {
	t.Helper()
	e, err := ParseFilter(filter)
	if err != nil {
		t.Fatalf("ParseFilter(%q): %v", filter, err)
	}
	return CompileFilter(e, testSchema(t), d, 1)
}

func TestCompileSQL(t *testing.T) {
	jan := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		filter     string
		sqlite, pg string
		liteArgs   []any
		pgArgs     []any
	}{
		{`name eq 'it''s'`, `("name" = ?1)`, `("name" = $1::text)`, []any{"it's"}, []any{"it's"}},
		{`name eq null`, `("name" IS NULL)`, `("name" IS NULL)`, nil, nil},
		{`null ne name`, `("name" IS NOT NULL)`, `("name" IS NOT NULL)`, nil, nil},
		{`name lt 'b'`, `("name" COLLATE gatehouse_unicode < ?1)`, `("name" COLLATE "und-x-icu" < $1::text)`, []any{"b"}, []any{"b"}},
		{`done eq true`, `("done" = ?1)`, `("done" = $1::boolean)`, []any{int64(1)}, []any{true}},
		{`qty eq 3`, `("qty" = ?1)`, `("qty" = $1::bigint)`, []any{int64(3)}, []any{int64(3)}},
		{`qty eq 3.5`, `("qty" = ?1)`, `("qty" = $1::double precision)`, []any{3.5}, []any{3.5}},
		{`price eq 3`, `("price" = ?1)`, `("price" = $1::double precision)`, []any{3.0}, []any{3.0}},
		{`(updatedAt ge datetimeoffset'2024-01-01T00:00:00.000Z')`, ``, ``, nil, nil},
		{`due ge datetimeoffset'2024-01-01T00:00:00.000Z'`, `("due" >= ?1)`, `("due" >= $1::timestamptz)`,
			[]any{jan.UnixMilli()}, []any{jan}},
		{`due ge '2024-01-01T00:00:00Z'`, `("due" >= ?1)`, `("due" >= $1::timestamptz)`, []any{jan.UnixMilli()}, []any{jan}},
		{`due lt datetime'1969-12-31T23:59:59.9995Z'`, `("due" < ?1)`, `("due" < $1::timestamptz)`,
			[]any{-0.5}, []any{time.Date(1969, 12, 31, 23, 59, 59, 999500000, time.UTC)}},
		{`qty div 2 eq 1`, `((CAST("qty" AS REAL) / ?1) = ?2)`,
			`((CAST("qty" AS double precision) / NULLIF(CAST($1::double precision AS double precision), 0)) = $2::double precision)`,
			[]any{2.0, 1.0}, []any{2.0, 1.0}},
		{`qty add qty eq 2`, `(("qty" + "qty") = ?1)`,
			`((CAST("qty" AS double precision) + CAST("qty" AS double precision)) = $1::double precision)`, []any{2.0}, []any{2.0}},
		{`year(due) eq 2024`, `(CAST(strftime('%Y', "due" / 1000.0, 'unixepoch') AS INTEGER) = ?1)`,
			`(CAST(EXTRACT(YEAR FROM ("due") AT TIME ZONE 'UTC') AS double precision) = $1::bigint)`, []any{int64(2024)}, []any{int64(2024)}},
		{`startswith(name, '50%_')`, `(instr("name", ?1) = 1)`, `starts_with("name", $1::text)`, []any{"50%_"}, []any{"50%_"}},
		{`substringof('x', name)`, `(instr("name", ?1) > 0)`, `(strpos("name", $1::text) > 0)`, []any{"x"}, []any{"x"}},
		{`endswith(name, 'x')`, `(substr("name", -length(?1), length(?1)) = ?1)`, `(right("name", length($1::text)) = $1::text)`, []any{"x"}, []any{"x"}},
		{`tolower(name) eq 'x'`, `(gatehouse_lower("name") = ?1)`, `(lower("name") = $1::text)`, []any{"x"}, []any{"x"}},
		{`weird eq 'w'`, `("we""ird" = ?1)`, `("we""ird" = $1::text)`, []any{"w"}, []any{"w"}},
		{`a eq 1 or b eq 2 or c eq 3`, ``, ``, nil, nil},
		{`done or not done and true`, `("done" OR ((NOT "done") AND ?1))`, `("done" OR ((NOT "done") AND $1::boolean))`, []any{int64(1)}, []any{true}},
		{`name eq 'a' or name eq 'b' or name eq 'c' or name eq 'd'`,
			`((("name" = ?1) OR ("name" = ?2)) OR (("name" = ?3) OR ("name" = ?4)))`,
			`((("name" = $1::text) OR ("name" = $2::text)) OR (("name" = $3::text) OR ("name" = $4::text)))`,
			[]any{"a", "b", "c", "d"}, []any{"a", "b", "c", "d"}},
	} {
		if tc.sqlite == "" {
			continue
		}
		for _, d := range []struct {
			d    Dialect
			sql  string
			args []any
		}{{SQLite{}, tc.sqlite, tc.liteArgs}, {Postgres{}, tc.pg, tc.pgArgs}} {
			sql, args, err := compileFilterString(t, tc.filter, d.d)
			if err != nil {
				t.Errorf("%T %s: %v", d.d, tc.filter, err)
				continue
			}
			if sql != d.sql {
				t.Errorf("%T %s:\n got %s\nwant %s", d.d, tc.filter, sql, d.sql)
			}
			if len(args) != len(d.args) || len(args) > 0 && !reflect.DeepEqual(args, d.args) {
				t.Errorf("%T %s: args %#v, want %#v", d.d, tc.filter, args, d.args)
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		filter string
		kind   string // "column" or "type"
		pos    int
		msg    string
	}{
		{`nosuch eq 1`, "column", 0, "unknown column 'nosuch'"},
		{`name eq 'a' and Nope eq 2`, "column", 16, "unknown column 'Nope'"},
		{`name eq 1`, "type", 5, "cannot compare String with Number"},
		{`due eq 1`, "type", 4, "cannot compare Date with Number"},
		{`done eq 'true'`, "type", 5, "cannot compare Boolean with String"},
		{`due eq 'yesterday'`, "type", 7, "cannot convert 'yesterday' to a date"},
		{`name eq datetime'2024-01-01'`, "type", 5, "cannot compare String with Date"},
		{`price add 'x' eq 1`, "type", 6, "needs numbers"},
		{`name`, "type", 0, "expected a Boolean expression but found String"},
		{`price`, "type", 0, "expected a Boolean expression"},
		{`not price`, "type", 4, "expected a Boolean expression"},
		{`price eq 1 and 2`, "type", 15, "expected a Boolean expression"},
		{`-name eq 1`, "type", 0, "cannot negate String"},
		{`year(name) eq 1`, "type", 5, "argument 1 of year must be Date"},
		{`length(price) eq 1`, "type", 7, "argument 1 of length must be String"},
		{`substring(name, 'a') eq 'b'`, "type", 16, "argument 2 of substring must be Number"},
		{`round(name) eq 1`, "type", 6, "must be Number"},
		{`replace(replace(name,'a','b'),'c','d') eq 'x'`, "type", 0, "cannot be nested"},
		{`replace(name,'a',name) eq 'x'`, "type", 17, "string literal"},
		{`replace(name,'a','` + strings.Repeat("x", 101) + `') eq 'x'`, "type", 17, "string literal"},
		{`startswith(name, 1)`, "type", 17, "must be String"},
	} {
		_, _, err := compileFilterString(t, tc.filter, SQLite{})
		if !errors.Is(err, ErrBadQuery) {
			t.Errorf("%s: %v does not match ErrBadQuery", tc.filter, err)
			continue
		}
		var pos int
		switch tc.kind {
		case "column":
			var ce *UnknownColumnError
			if !errors.As(err, &ce) {
				t.Errorf("%s: %v, want *UnknownColumnError", tc.filter, err)
				continue
			}
			pos = ce.Pos
		case "type":
			var te *TypeError
			if !errors.As(err, &te) {
				t.Errorf("%s: %v, want *TypeError", tc.filter, err)
				continue
			}
			pos = te.Pos
		}
		if pos != tc.pos || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %q at %d, want %q at %d", tc.filter, err, pos, tc.msg, tc.pos)
		}
	}
}

func TestCompileQuery(t *testing.T) {
	s := testSchema(t)
	q := mustQuery(t, "$filter=name%20eq%20'x'&$orderby=substring(name,1)%20desc,price&$top=10&$skip=20&$select=id,NAME,name&$inlinecount=allpages")
	c, err := Compile(q, s, Postgres{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if c.Where != `("name" = $3::text)` || c.WhereArgs != 1 {
		t.Errorf("Where = %s (%d args)", c.Where, c.WhereArgs)
	}
	wantOrder := `substr("name", (SELECT CASE WHEN _v < 0 THEN 0 WHEN _v > 1073741823 THEN 1073741823 ELSE CAST(trunc(_v) AS integer) END FROM (SELECT CAST($4::double precision AS double precision) AS _v) AS _c) + 1) COLLATE "und-x-icu" DESC NULLS LAST, "price" ASC NULLS FIRST, "id" ASC`
	if c.OrderBy != wantOrder {
		t.Errorf("OrderBy:\n got %s\nwant %s", c.OrderBy, wantOrder)
	}
	if len(c.Columns) != 2 || c.Columns[0].Name != "id" || c.Columns[1].Name != "name" {
		t.Errorf("Columns = %+v", c.Columns)
	}
	stmt, args, err := c.SelectSQL(`"items"`, c.Columns)
	if err != nil {
		t.Fatal(err)
	}
	wantStmt := `SELECT "id", "name" FROM "items" WHERE ("name" = $3::text) ORDER BY ` + wantOrder + ` LIMIT $5 OFFSET $6`
	if stmt != wantStmt {
		t.Errorf("SelectSQL:\n got %s\nwant %s", stmt, wantStmt)
	}
	if !reflect.DeepEqual(args, []any{"x", 1.0, int64(10), int64(20)}) {
		t.Errorf("args = %#v", args)
	}
	cs, cargs := c.CountSQL(`"items"`)
	if cs != `SELECT COUNT(*) FROM "items" WHERE ("name" = $3::text)` || !reflect.DeepEqual(cargs, []any{"x"}) {
		t.Errorf("CountSQL = %s %#v", cs, cargs)
	}

	// The primary key is not repeated when it is already a key; no LIMIT
	// with an offset is LIMIT -1 on SQLite.
	q = &Query{OrderBy: []OrderKey{{Expr: Ident("ID"), Desc: true}}, Top: NoLimit, Skip: 5}
	c, err = Compile(q, s, SQLite{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	stmt, args, _ = c.SelectSQL("items", []Column{{Name: "id"}})
	if stmt != `SELECT "id" FROM items ORDER BY "id" COLLATE gatehouse_unicode DESC NULLS LAST LIMIT -1 OFFSET ?1` || !reflect.DeepEqual(args, []any{int64(5)}) {
		t.Errorf("SelectSQL = %s %#v", stmt, args)
	}
	c, _ = Compile(&Query{Top: NoLimit}, s, Postgres{}, 1)
	if stmt, _, _ = c.SelectSQL("items", []Column{{Name: "id"}}); stmt != `SELECT "id" FROM items ORDER BY "id" ASC` {
		t.Errorf("SelectSQL = %s", stmt)
	}

	for _, bad := range []string{"$select=id,nosuch", "$orderby=nosuch", "$orderby=1", "$orderby=null", "$select=*,nosuch"} {
		q := mustQuery(t, bad)
		if _, err := Compile(q, s, SQLite{}, 1); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if c, err := Compile(mustQuery(t, "$select=id,*"), s, SQLite{}, 1); err != nil || c.Columns != nil {
		t.Errorf("$select=* : %v %v", c.Columns, err)
	}
	var ce *UnknownColumnError
	if _, err := Compile(mustQuery(t, "$select=id,nosuch"), s, SQLite{}, 1); !errors.As(err, &ce) || ce.Name != "nosuch" || ce.Option != "$select" {
		t.Errorf("$select unknown column: %#v", err)
	}
}

func TestCompileConfigErrors(t *testing.T) {
	s := testSchema(t)
	q := &Query{Top: 1}
	if _, err := Compile(q, s, SQLite{Collation: "x; DROP"}, 1); err == nil || errors.Is(err, ErrBadQuery) {
		t.Errorf("bad collation name: %v", err)
	}
	if _, err := Compile(q, s, Postgres{}, 0); err == nil {
		t.Errorf("argStart 0 accepted")
	}
	if _, err := NewColumns("nokey", Column{Name: "id", Type: TypeString}); err == nil {
		t.Errorf("missing key accepted")
	}
	if _, err := NewColumns("id", Column{Name: "id", Type: TypeString}, Column{Name: "ID", Type: TypeString}); err == nil {
		t.Errorf("duplicate column accepted")
	}
	if _, err := QuoteIdent("a\x00b"); err == nil {
		t.Errorf("NUL identifier accepted")
	}
	if q, _ := QuoteIdent(`a"b`); q != `"a""b"` {
		t.Errorf("QuoteIdent = %s", q)
	}
}

// TestCompileNeverInlinesValues checks that literal values only ever reach
// the database as bound parameters.
func TestCompileNeverInlinesValues(t *testing.T) {
	for _, f := range []string{
		`name eq 'DROP TABLE items'`,
		`note eq 'x'' OR ''1''=''1'`,
		`substringof('SECRET', name)`,
		`replace(name, 'SECRET', 'OTHER') eq 'MORE'`,
		`due eq '2024-01-01T00:00:00Z' and price eq 12345.678`,
	} {
		for _, d := range []Dialect{SQLite{}, Postgres{}} {
			sql, _, err := compileFilterString(t, f, d)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []string{"DROP", "OR", "SECRET", "OTHER", "MORE", "2024", "12345"} {
				if strings.Contains(sql, v) {
					t.Errorf("%T %s: value %q inlined in %s", d, f, v, sql)
				}
			}
		}
	}
}

func TestCompileProgrammatic(t *testing.T) {
	s := testSchema(t)
	e := And(
		Eq(Ident("userId"), Str("u")),
		Or(Compare(OpGt, Ident("price"), Num(2)), Eq(Ident("due"), Time(time.UnixMilli(0).UTC()))),
		Not(Eq(Ident("done"), Null())),
		NewCall("StartsWith", Ident("name"), Str("A")),
	)
	sql, args, err := CompileFilter(e, s, SQLite{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := `((("userId" = ?1) AND (("price" > ?2) OR ("due" = ?3))) AND ((NOT ("done" IS NULL)) AND (instr("name", ?4) = 1)))`
	if sql != want || !reflect.DeepEqual(args, []any{"u", 2.0, int64(0), "A"}) {
		t.Errorf("got %s %#v", sql, args)
	}
	if _, _, err := CompileFilter(NewCall("nosuch"), s, SQLite{}, 1); !errors.Is(err, ErrBadQuery) {
		t.Errorf("unknown function: %v", err)
	}
	if _, _, err := CompileFilter(Eq(Ident("price"), Num(0).withNaN()), s, SQLite{}, 1); !errors.Is(err, ErrBadQuery) {
		t.Errorf("NaN: %v", err)
	}
	// Programmatic trees deeper than the compiler allows are refused.
	var deep Expr = Ident("done")
	for i := 0; i < 3*MaxDepth; i++ {
		deep = Not(deep)
	}
	var le *LimitError
	if _, _, err := CompileFilter(deep, s, SQLite{}, 1); !errors.As(err, &le) {
		t.Errorf("deep tree: %v", err)
	}
	if sql, args, err := CompileFilter(nil, s, SQLite{}, 1); sql != "" || args != nil || err != nil {
		t.Errorf("nil filter: %q %v %v", sql, args, err)
	}
}
