package script_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

var sqlApp = map[string]string{
	"datamodel.json": `{"tables":[{"name":"TodoItem","permissions":{"*":"public"},"columns":{"text":"string","complete":"boolean","due":"date"}}]}`,
	"api/sql.json":   `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	// Runs the statement of the body and answers the rows, or the error message.
	"api/sql.js": `exports.post = function (request, response) {
    request.service.mssql.query(request.body.sql, request.body.params || [], {
        success: function (results) { response.send(200, { rows: results }); },
        error: function (err) { response.send(400, { error: err.message }); }
    });
};`,
}

func TestMSSQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, sqlApp)
		run := func(sql string, params ...any) (int, []map[string]any, string) {
			t.Helper()
			b, _ := json.Marshal(map[string]any{"sql": sql, "params": params})
			r := e.do("POST", "/api/sql", string(b))
			var out struct {
				Rows  []map[string]any
				Error string
			}
			if err := json.Unmarshal([]byte(r.body), &out); err != nil {
				t.Fatalf("%s: %s", sql, r.body)
			}
			return r.status, out.Rows, out.Error
		}
		ok := func(sql string, params ...any) []map[string]any {
			t.Helper()
			st, rows, msg := run(sql, params...)
			if st != 200 {
				t.Fatalf("%s: %d %s", sql, st, msg)
			}
			return rows
		}
		ok("INSERT INTO TodoItem ([text], complete) VALUES (?, ?)", "milk", false)
		ok("insert into todolist.todoitem (text, complete) values (?, ?);", "bread", true)
		ok("INSERT INTO [todolist].[TodoItem] (text, complete) VALUES (N'eggs', ?)", false)
		// Inserted rows are ordinary items for /tables.
		items := e.do("GET", "/tables/TodoItem?$orderby=text", "").list(t)
		if len(items) != 3 || items[0]["text"] != "bread" || items[0]["id"] == "" {
			t.Fatalf("items: %v", items)
		}

		rows := ok("SELECT TOP 2 [text], complete FROM TodoItem WHERE complete = ? ORDER BY [text] DESC", false)
		if len(rows) != 2 || rows[0]["text"] != "milk" || rows[0]["complete"] != false {
			t.Fatalf("top: %v", rows)
		}
		rows = ok("SELECT COUNT(*) AS total FROM TodoItem t WHERE t.__createdAt <= GETDATE() AND LEN(t.text) > ?", 4)
		if len(rows) != 1 || rows[0]["total"] != 1.0 {
			t.Fatalf("count: %v", rows)
		}
		ok("UPDATE TodoItem SET complete = ? WHERE text = ?", true, "milk")
		rows = ok("SELECT id, text, __updatedAt, __version FROM TodoItem WHERE complete = ? ORDER BY text", true)
		if len(rows) != 2 || rows[1]["text"] != "milk" || rows[1]["__version"] == items[2]["__version"] {
			t.Fatalf("after update: %v", rows)
		}
		if _, ok := rows[0]["__updatedAt"].(string); !ok {
			t.Fatalf("__updatedAt: %v", rows[0])
		}
		ok("DELETE FROM TodoItem WHERE text = ?", "eggs")
		if rows := ok("SELECT * FROM TodoItem"); len(rows) != 2 || rows[0]["text"] == nil {
			t.Fatalf("select *: %v", rows)
		}
		ok("TRUNCATE TABLE TodoItem")
		if rows := ok("SELECT * FROM TodoItem"); len(rows) != 0 {
			t.Fatalf("after truncate: %v", rows)
		}

		for sql, want := range map[string]string{
			"EXEC sp_who":                                "EXEC (stored procedures) is not supported",
			"SELECT * FROM gatehouse_tables":             "unknown table 'gatehouse_tables'",
			"SELECT secret FROM TodoItem":                "unknown column or unsupported construct 'secret'",
			"SELECT * FROM TodoItem; DROP TABLE x":       "multiple statements",
			"SELECT NEWID() FROM TodoItem":               "NEWID() is not supported",
			"SELECT * FROM TodoItem WITH (NOLOCK)":       "WITH",
			"DECLARE @x int":                             "not supported",
			"SELECT * FROM TodoItem WHERE text = ?":      "1 '?' parameters but 0 values",
			"SELECT CONVERT(varchar, due) FROM TodoItem": "CONVERT is not supported",
			"SELECT * FROM sys.tables":                   "system views",
		} {
			st, _, msg := run(sql)
			if st != 400 || !strings.Contains(msg, want) {
				t.Errorf("%s: %d %q, want %q", sql, st, msg, want)
			}
		}
	})
}

// TestMSSQLTruncateRestartsIDs: a script's TRUNCATE TABLE on an integer-id table restarts its ids at
// 1, as SQL Server's did (issue 13, item 13), and a T-SQL write gives the row a new, greater version.
func TestMSSQLTruncateRestartsIDs(t *testing.T) {
	app := map[string]string{}
	for k, v := range sqlApp {
		app[k] = v
	}
	app["datamodel.json"] = `{"tables":[{"name":"Counter","idType":"integer","permissions":{"*":"public"},"columns":{"text":"string"}}]}`
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, app)
		sql := func(q string, params ...any) []map[string]any {
			t.Helper()
			b, _ := json.Marshal(map[string]any{"sql": q, "params": params})
			r := e.do("POST", "/api/sql", string(b))
			var out struct{ Rows []map[string]any }
			if r.status != 200 || json.Unmarshal([]byte(r.body), &out) != nil {
				t.Fatalf("%s: %d %s", q, r.status, r.body)
			}
			return out.Rows
		}
		insert := func(text string) float64 {
			t.Helper()
			r := e.do("POST", "/tables/Counter", `{"text":"`+text+`"}`)
			var item map[string]any
			if r.status != 201 || json.Unmarshal([]byte(r.body), &item) != nil {
				t.Fatalf("insert: %d %s", r.status, r.body)
			}
			return item["id"].(float64)
		}
		insert("a")
		insert("b")
		sql("INSERT INTO Counter (text) VALUES (?)", "c")
		before := sql("SELECT id, __version FROM Counter WHERE text = ?", "a")
		sql("UPDATE Counter SET text = ? WHERE text = ?", "a2", "a")
		after := sql("SELECT id, __version FROM Counter WHERE text = ?", "a2")
		if len(before) != 1 || len(after) != 1 || !(after[0]["__version"].(string) > before[0]["__version"].(string)) {
			t.Fatalf("version before %v, after a T-SQL update %v", before, after)
		}
		if rows := sql("SELECT MAX(id) AS biggest FROM Counter"); len(rows) != 1 || rows[0]["biggest"] != 3.0 {
			t.Fatalf("max id: %v", rows)
		}
		sql("TRUNCATE TABLE Counter")
		if rows := sql("SELECT * FROM Counter"); len(rows) != 0 {
			t.Fatalf("after truncate: %v", rows)
		}
		if id := insert("first again"); id != 1 {
			t.Fatalf("first id after TRUNCATE TABLE: %v", id)
		}
		sql("INSERT INTO Counter (text) VALUES (?)", "second")
		if rows := sql("SELECT id FROM Counter WHERE text = ?", "second"); len(rows) != 1 || rows[0]["id"] != 2.0 {
			t.Fatalf("second id after TRUNCATE TABLE: %v", rows)
		}
		// A plain DELETE keeps the identity going, as SQL Server's did.
		sql("DELETE FROM Counter")
		if id := insert("after delete"); id != 3 {
			t.Fatalf("id after DELETE: %v", id)
		}
	})
}
