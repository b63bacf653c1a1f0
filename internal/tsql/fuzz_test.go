package tsql_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/tsql"
)

// FuzzTranslate: any statement the translator accepts touches only app tables and allowlisted
// functions. The property is checked by the engine, not by reading the output: each accepted
// statement runs on a real SQLite database (which also holds Gatehouse's own tables) under the
// guard's authorizer, allowed exactly the app tables the translation reports; a GuardError means
// the translator let something through. Seed corpus: testdata/fuzz/FuzzTranslate.
func FuzzTranslate(f *testing.F) {
	for _, s := range []string{
		"SELECT TOP 10 [text] FROM todolist.TodoItem WHERE complete = ? ORDER BY [text] DESC",
		"insert into TodoItem (text, complete) values (N'x''y', 1.5e3); -- comment",
		"/* c */ UPDATE TodoItem SET text = getdate() WHERE text <> ?",
		"SELECT t.text, o.qty FROM TodoItem t LEFT JOIN Orders o ON o.item = t.text WHERE o.qty BETWEEN 1 AND 2",
		"SELECT COUNT(DISTINCT text) AS n FROM TodoItem GROUP BY complete HAVING COUNT(*) > 1 ORDER BY n",
		"SELECT text FROM TodoItem WHERE id IN (SELECT item FROM Orders WHERE Orders.qty > 0) OR EXISTS (SELECT 1 FROM Orders)",
		"SELECT CASE WHEN complete = 1 THEN UPPER(text) ELSE LOWER(text) END FROM TodoItem",
		"DELETE FROM Orders WHERE qty IS NULL", "TRUNCATE TABLE Orders", "INSERT INTO Orders (item, qty) VALUES (?, 1)",
		`SELECT text AS gatehouse_accounts FROM TodoItem UNION SELECT "email" FROM "gatehouse_accounts"`,
		"SELECT text FROM (x LEFT JOIN TodoItem ON 1 = 0)",
		`SELECT "sqlite_version"() FROM TodoItem`, `SELECT [name] FROM [sqlite_master]`,
		"SELECT gatehouse_meta.value FROM TodoItem AS gatehouse_meta",
		"[unterminated", "'open", "/* open", "@@version", "1..2e", "SELECT \"q\"\"x\" FROM TodoItem",
	} {
		f.Add(s)
	}
	db := storetest.Open(f, storetest.SQLiteURL(f))
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE gh_todoitem (id TEXT PRIMARY KEY, sys_created_at INTEGER, sys_updated_at INTEGER, sys_version TEXT, sys_deleted INTEGER NOT NULL DEFAULT 0, c_text TEXT, c_complete INTEGER, c_due INTEGER)`,
		`CREATE TABLE gh_orders (id INTEGER PRIMARY KEY AUTOINCREMENT, sys_created_at INTEGER, sys_updated_at INTEGER, sys_version TEXT, sys_deleted INTEGER NOT NULL DEFAULT 0, c_item TEXT, c_qty TEXT)`,
		`INSERT INTO gh_todoitem (id, c_text, c_complete) VALUES ('a', 'milk', 0), ('b', 'eggs', 1)`,
		`INSERT INTO gh_orders (c_item, c_qty) VALUES ('milk', 2)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			f.Fatal(err)
		}
	}
	app := map[string]bool{"gh_todoitem": true, "gh_orders": true}
	funcs := tsql.Functions(tsql.SQLite)
	f.Fuzz(func(t *testing.T, s string) {
		var params []any
		for i := 0; i < strings.Count(s, "?"); i++ {
			params = append(params, "p")
		}
		st, err := tsql.Translate(ctx, opts(tsql.SQLite), s, params)
		if err != nil {
			var te *tsql.Error
			if !errors.As(err, &te) {
				t.Fatalf("%q: error of type %T: %v", s, err, err)
			}
			return
		}
		for _, tb := range st.Tables {
			if !app[tb] {
				t.Fatalf("%q: translation names table %q", s, tb)
			}
		}
		g := store.Guard{Tables: st.Tables, Functions: funcs, ReadOnly: st.Query, Timeout: time.Second}
		err = db.Guarded(ctx, g, func(ctx context.Context, q store.Querier) error {
			if !st.Query {
				_, err := q.ExecContext(ctx, st.SQL, st.Args...)
				return err
			}
			rows, err := q.QueryContext(ctx, st.SQL, st.Args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for n := 0; rows.Next() && n < 1000; n++ {
			}
			return rows.Err()
		})
		var ge *store.GuardError
		if errors.As(err, &ge) {
			t.Fatalf("%q → %s: the engine guard refused %s", s, st.SQL, ge.What)
		}
	})
}
