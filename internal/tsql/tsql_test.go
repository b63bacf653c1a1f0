package tsql_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/tsql"
)

// catalog is the app of these tests: TodoItem (string ids) and Orders (integer ids).
type catalog map[string]*tsql.Table

func (c catalog) Table(_ context.Context, name string) (*tsql.Table, error) {
	if t, ok := c[strings.ToLower(name)]; ok {
		return t, nil
	}
	return nil, tsql.ErrNoTable
}

func newTable(name, sql string, stringID bool, cols ...string) *tsql.Table {
	t := &tsql.Table{Name: name, SQL: sql, StringID: stringID}
	for _, c := range cols {
		t.Columns = append(t.Columns, tsql.Column{Name: c, SQL: "c_" + strings.ToLower(c), Type: "string"})
	}
	t.Column = func(n string) (tsql.Column, bool) {
		switch strings.ToLower(strings.TrimPrefix(n, "__")) {
		case "id":
			return tsql.Column{Name: "id", SQL: tsql.ColID, System: true}, true
		case "createdat":
			return tsql.Column{Name: "__createdAt", SQL: tsql.ColCreatedAt, System: true}, true
		case "updatedat":
			return tsql.Column{Name: "__updatedAt", SQL: tsql.ColUpdatedAt, System: true}, true
		case "version":
			return tsql.Column{Name: "__version", SQL: tsql.ColVersion, System: true}, true
		case "deleted":
			return tsql.Column{Name: "__deleted", SQL: tsql.ColDeleted, System: true}, true
		}
		for _, c := range t.Columns {
			if strings.EqualFold(c.Name, n) {
				return c, true
			}
		}
		return tsql.Column{}, false
	}
	return t
}

func testCatalog() catalog {
	return catalog{
		"todoitem": newTable("TodoItem", "gh_todoitem", true, "text", "complete", "due"),
		"orders":   newTable("Orders", "gh_orders", false, "item", "qty"),
	}
}

func opts(d tsql.Dialect) tsql.Options {
	return tsql.Options{Dialect: d, Catalog: testCatalog(), NewVersion: func() (string, error) { return "V", nil }, NewID: func() string { return "ID" }}
}

func TestTranslate(t *testing.T) {
	for _, c := range []struct {
		in     string
		params []any
		sqlite string
		pg     string
		args   []any
	}{
		{"SELECT TOP 2 [text], complete FROM todolist.TodoItem WHERE complete = ? ORDER BY [text] DESC", []any{false},
			`SELECT t1."c_text", t1."c_complete" FROM "gh_todoitem" AS t1 WHERE (t1."c_complete" = ?) ORDER BY t1."c_text" DESC LIMIT 2`,
			`SELECT t1."c_text", t1."c_complete" FROM "gh_todoitem" AS t1 WHERE (t1."c_complete" = $1) ORDER BY t1."c_text" DESC LIMIT 2`, []any{false}},
		// Placeholders are numbered in the order they are printed (the ON condition follows the select list).
		{"SELECT ? AS a, o.qty FROM TodoItem t JOIN Orders o ON o.item = t.text AND o.qty > ? WHERE t.text = ?", []any{1, 2, 3},
			`SELECT ? AS "a", t2."c_qty" FROM "gh_todoitem" AS t1 JOIN "gh_orders" AS t2 ON ((t2."c_item" = t1."c_text") AND (t2."c_qty" > ?)) WHERE (t1."c_text" = ?)`,
			`SELECT $1 AS "a", t2."c_qty" FROM "gh_todoitem" AS t1 JOIN "gh_orders" AS t2 ON ((t2."c_item" = t1."c_text") AND (t2."c_qty" > $2)) WHERE (t1."c_text" = $3)`, []any{1, 2, 3}},
		{"SELECT COUNT(*) total, ISNULL(MAX(LEN(text)), 0) FROM TodoItem WHERE __createdAt <= GETUTCDATE() ORDER BY total", nil,
			`SELECT count(*) AS "total", coalesce(max(length(t1."c_text")), 0) FROM "gh_todoitem" AS t1 WHERE (t1."sys_created_at" <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) ORDER BY "total"`,
			`SELECT count(*) AS "total", coalesce(max(length(t1."c_text")), 0) FROM "gh_todoitem" AS t1 WHERE (t1."sys_created_at" <= CURRENT_TIMESTAMP) ORDER BY "total"`, nil},
		{"insert into todoitem (text) values (N'it''s')", nil,
			`INSERT INTO "gh_todoitem" ("c_text", "sys_created_at", "sys_updated_at", "sys_version", "sys_deleted", "id") VALUES ('it''s', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), ?, FALSE, ?)`,
			`INSERT INTO "gh_todoitem" ("c_text", "sys_created_at", "sys_updated_at", "sys_version", "sys_deleted", "id") VALUES ('it''s', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, $1, FALSE, $2)`, []any{"V", "ID"}},
		{"UPDATE Orders SET qty = qty + ? WHERE item IN (SELECT text FROM TodoItem WHERE Orders.id > 0)", []any{1},
			`UPDATE "gh_orders" SET "sys_updated_at" = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), "sys_version" = ?, "c_qty" = ("gh_orders"."c_qty" + ?) WHERE ("gh_orders"."c_item" IN (SELECT t1."c_text" FROM "gh_todoitem" AS t1 WHERE ("gh_orders"."id" > 0)))`,
			`UPDATE "gh_orders" SET "sys_updated_at" = CURRENT_TIMESTAMP, "sys_version" = $1, "c_qty" = ("gh_orders"."c_qty" + $2) WHERE ("gh_orders"."c_item" IN (SELECT t1."c_text" FROM "gh_todoitem" AS t1 WHERE ("gh_orders"."id" > 0)))`, []any{"V", 1}},
		{"TRUNCATE TABLE [Orders];", nil, `DELETE FROM "gh_orders"`, `DELETE FROM "gh_orders"`, nil},
		{"SELECT x.* FROM (TodoItem AS x LEFT JOIN Orders AS y ON 1 = 0) WHERE y.id IS NULL", nil,
			`SELECT t1.* FROM ("gh_todoitem" AS t1 LEFT JOIN "gh_orders" AS t2 ON (1 = 0)) WHERE (t2."id" IS NULL)`,
			`SELECT t1.* FROM ("gh_todoitem" AS t1 LEFT JOIN "gh_orders" AS t2 ON (1 = 0)) WHERE (t2."id" IS NULL)`, nil},
	} {
		for _, d := range []tsql.Dialect{tsql.SQLite, tsql.Postgres} {
			st, err := tsql.Translate(context.Background(), opts(d), c.in, c.params)
			if err != nil {
				t.Errorf("%s: %v", c.in, err)
				continue
			}
			want := c.sqlite
			if d == tsql.Postgres {
				want = c.pg
			}
			if st.SQL != want {
				t.Errorf("%s (%d):\n got %s\nwant %s", c.in, d, st.SQL, want)
			}
			if len(st.Args) != len(c.args) || (len(c.args) > 0 && !reflect.DeepEqual(st.Args, c.args)) {
				t.Errorf("%s: args %v, want %v", c.in, st.Args, c.args)
			}
		}
	}
}

func TestTranslateRefuses(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT text AS gatehouse_accounts FROM TodoItem UNION SELECT "email" FROM "gatehouse_accounts"`: "unknown table 'gatehouse_accounts'",
		`SELECT text FROM (x LEFT JOIN todoitem ON 1 = 0)`:                                               "unknown table 'x'",
		`SELECT "sqlite_version"()`:                                                "function sqlite_version() is not supported",
		`SELECT [pg_sleep](1) FROM TodoItem`:                                       "function pg_sleep() is not supported",
		`SELECT "set_config"('a', 'b', false)`:                                     "function set_config() is not supported",
		`SELECT pg_catalog.version()`:                                              "schema-qualified functions",
		`SELECT text AS x FROM TodoItem WHERE x = 1`:                               "unknown column or unsupported construct 'x'",
		`SELECT y.text FROM TodoItem x`:                                            "'y' is not a table or alias",
		`SELECT TodoItem.text FROM TodoItem, todoitem`:                             "used twice",
		`SELECT id FROM TodoItem, Orders`:                                          "ambiguous",
		`SELECT text FROM TodoItem; SELECT 1`:                                      "multiple statements",
		`SELECT text FROM TodoItem WHERE text = ?`:                                 "1 '?' parameters but 0 values",
		"SELECT text FROM TodoItem WHERE text = \u2018x\u2019":                     "non-ASCII",
		`SELECT * FROM (SELECT text FROM TodoItem) AS s`:                           "derived tables",
		`INSERT INTO TodoItem (text, __version) VALUES ('a', 'b')`:                 "maintained by Gatehouse",
		`INSERT INTO TodoItem (text) VALUES ('a'), ('b')`:                          "one row",
		`SELECT ` + strings.Repeat("(", 200) + `1` + strings.Repeat(")", 200):      "nests too deeply",
		`SELECT text FROM TodoItem WHERE ` + strings.Repeat("NOT ", 200) + `1 = 1`: "nests too deeply",
		`SELECT LEN(text, 1) FROM TodoItem`:                                        "takes 1 argument",
		`SELECT UPPER(DISTINCT text) FROM TodoItem`:                                "aggregate functions only",
	} {
		_, err := tsql.Translate(context.Background(), opts(tsql.SQLite), in, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

// TestTranslateTruncate: TRUNCATE TABLE names the table whose ids the caller restarts (a DELETE does
// not), and a failure to take a version fails the write's translation.
func TestTranslateTruncate(t *testing.T) {
	ctx := context.Background()
	for q, want := range map[string]string{"TRUNCATE TABLE [Orders]": "Orders", "DELETE FROM Orders": "", "TRUNCATE TABLE todoitem": "TodoItem"} {
		st, err := tsql.Translate(ctx, opts(tsql.SQLite), q, nil)
		if err != nil || st.Truncated != want {
			t.Errorf("%s: truncated %q, %v; want %q", q, st.Truncated, err, want)
		}
	}
	o := opts(tsql.Postgres)
	o.NewVersion = func() (string, error) { return "", errors.New("database down") }
	for _, q := range []string{"UPDATE Orders SET qty = 1", "INSERT INTO Orders (item) VALUES ('x')"} {
		if _, err := tsql.Translate(ctx, o, q, nil); err == nil || !strings.Contains(err.Error(), "database down") {
			t.Errorf("%s without a version: %v", q, err)
		}
	}
}
