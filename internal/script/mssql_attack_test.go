package script_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// attackApp is sqlApp plus a typical injectable customer script: the query string is pasted into
// the statement.
var attackApp = func() map[string]string {
	m := map[string]string{}
	for k, v := range sqlApp {
		m[k] = v
	}
	m["api/search.json"] = `{"routes":{"*":{"*":{"permission":"public"}}}}`
	m["api/search.js"] = `exports.get = function (request, response) {
    mssql.query("SELECT text FROM TodoItem WHERE text = '" + request.query.q + "'", {
        success: function (results) { response.send(200, { rows: results }); },
        error: function (err) { response.send(400, { error: err.message }); }
    });
};`
	return m
}()

// secrets are what Gatehouse's own tables hold in these tests; no answer may contain them.
var secrets = []string{"victim@example.com", "ARGON2SECRETHASH", "REFRESHSECRET", "gatehouse_tables"}

func plantSecrets(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO gatehouse_accounts (id, email, email_key, password_hash, password_stamp, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		"acc1", "victim@example.com", "victim@example.com", "$argon2id$ARGON2SECRETHASH", "s", 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO gatehouse_meta (key, value) VALUES (?, ?)`), "planted", "REFRESHSECRET"); err != nil {
		t.Fatal(err)
	}
}

// TestMSSQLAttacks: issue 10 findings 1–3 and their siblings, through mssql.query on SQLite and
// PostgreSQL. Every statement is refused with 400 and no answer carries Gatehouse's own data.
func TestMSSQLAttacks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		plantSecrets(t, db)
		e := newEnv(t, db, attackApp)
		run := func(sql string, params ...any) (int, string) {
			t.Helper()
			if params == nil {
				params = []any{}
			}
			b, _ := json.Marshal(map[string]any{"sql": sql, "params": params})
			r := e.do("POST", "/api/sql", string(b))
			return r.status, r.body
		}
		if st, body := run("INSERT INTO TodoItem (text, complete) VALUES (?, ?)", "milk", false); st != 200 {
			t.Fatalf("insert: %d %s", st, body)
		}
		noSecret := func(what, body string) {
			t.Helper()
			for _, s := range secrets {
				if strings.Contains(body, s) {
					t.Errorf("%s: answer leaks %q: %s", what, s, body)
				}
			}
		}
		attacks := []string{
			// Finding 1: a name introduced with AS, then reused quoted.
			`SELECT text AS gatehouse_accounts FROM TodoItem UNION SELECT "password_hash" FROM "gatehouse_accounts"`,
			`SELECT [text] AS [gatehouse_accounts] FROM TodoItem UNION SELECT [email] FROM [gatehouse_accounts]`,
			`SELECT text AS email FROM TodoItem WHERE "email" IS NOT NULL`,
			`SELECT t.text FROM TodoItem AS t JOIN "gatehouse_accounts" AS a ON 1 = 1`,
			`SELECT * FROM TodoItem AS [gatehouse_accounts] JOIN [gatehouse_accounts] ON 1 = 1`,
			`SELECT text FROM TodoItem t WHERE t.text = 'x' UNION SELECT email FROM gatehouse_accounts t`,
			// Finding 1: parenthesised FROM items.
			`SELECT text FROM (gatehouse_accounts LEFT JOIN TodoItem ON 1 = 0)`,
			`SELECT text FROM (x LEFT JOIN todoitem ON 1 = 0)`,
			`SELECT text FROM (TodoItem LEFT JOIN gatehouse_accounts ON 1 = 0)`,
			`SELECT text FROM ((TodoItem AS x LEFT JOIN [gatehouse_accounts] AS y ON 1 = 0))`,
			`SELECT email FROM (SELECT email FROM gatehouse_accounts) AS x`,
			// Finding 2: quoted names followed by '('.
			`SELECT "sqlite_version"() FROM TodoItem`,
			`SELECT [sqlite_version]()`,
			`SELECT sqlite_version()`,
			`SELECT "version"()`,
			`SELECT [version]() FROM TodoItem`,
			`SELECT "pg_sleep"(5)`,
			`SELECT [pg_sleep](5) FROM TodoItem`,
			`SELECT "query_to_xml"('SELECT email, password_hash FROM gatehouse_accounts', true, true, '')`,
			`SELECT text FROM TodoItem WHERE text = "query_to_xml"('SELECT 1', true, true, '')`,
			`SELECT pg_catalog.version()`,
			`SELECT "pg_catalog"."version"()`,
			`SELECT dbo.anything() FROM TodoItem`,
			`SELECT "current_setting"('data_directory')`,
			`SELECT "pg_read_file"('/etc/passwd')`,
			`SELECT "load_extension"('x')`,
			`SELECT "readfile"('/etc/passwd')`,
			`SELECT "generate_series"(1, 10)`,
			`SELECT * FROM generate_series(1, 10)`,
			`SELECT "lo_import"('/etc/passwd')`,
			`SELECT "dblink"('host=127.0.0.1', 'SELECT 1')`,
			`SELECT "pg_advisory_lock"(1)`,
			`SELECT "txid_current"()`,
			`SELECT "random"() FROM TodoItem`,
			`SELECT "randomblob"(1000000000) FROM TodoItem`,
			`SELECT "zeroblob"(1000000000)`,
			`SELECT "printf"('%s', text) FROM TodoItem`,
			`SELECT "json_each"(text) FROM TodoItem`,
			// Finding 3: session state.
			`SELECT "set_config"('default_transaction_read_only', 'on', false)`,
			`SELECT [set_config]('statement_timeout', '1', false) FROM TodoItem`,
			`SET default_transaction_read_only = on`,
			`SELECT text FROM TodoItem; SET ROLE postgres`,
			`RESET ALL`,
			`DISCARD ALL`,
			`PRAGMA writable_schema = 1`,
			`ATTACH DATABASE '/tmp/x.db' AS x`,
			`VACUUM`,
			`COPY gatehouse_accounts TO '/tmp/x'`,
			// Comments, look-alike quotes, stacked statements.
			"SELECT text FROM TodoItem -- x\n UNION SELECT email FROM gatehouse_accounts",
			`SELECT text /* */ FROM/**/gatehouse_accounts`,
			"SELECT text FROM TodoItem /* /* */ UNION SELECT email FROM gatehouse_accounts",
			"SELECT text FROM \uff02gatehouse_accounts\uff02",
			"SELECT text FROM TodoItem WHERE text = \u02bcx\u02bc UNION SELECT email FROM gatehouse_accounts",
			"SELECT text FROM gatehouse\u200b_accounts",
			"SELECT text FROM TodoItem\u00a0UNION SELECT email FROM gatehouse_accounts",
			`SELECT text FROM TodoItem; SELECT email FROM gatehouse_accounts`,
			`SELECT text FROM TodoItem;; DELETE FROM gatehouse_accounts`,
			// CTEs and set operations with system tables.
			`WITH a AS (SELECT * FROM gatehouse_accounts) SELECT * FROM a`,
			`SELECT text FROM TodoItem UNION SELECT name FROM sqlite_master`,
			`SELECT text FROM TodoItem UNION SELECT sql FROM "sqlite_schema"`,
			`SELECT text FROM TodoItem UNION SELECT tablename FROM pg_catalog.pg_tables`,
			`SELECT text FROM TodoItem UNION ALL SELECT table_name FROM information_schema.tables`,
			`SELECT text FROM TodoItem UNION SELECT [table_name] FROM [information_schema].[tables]`,
			`SELECT text FROM TodoItem UNION SELECT usename FROM pg_user`,
			`SELECT text FROM TodoItem INTERSECT SELECT email FROM gatehouse_accounts`,
			`SELECT text FROM TodoItem EXCEPT SELECT email FROM gatehouse_accounts`,
			// Schema-qualified names.
			`SELECT email FROM main.gatehouse_accounts`,
			`SELECT * FROM public.gatehouse_accounts`,
			`SELECT * FROM [dbo].[gatehouse_accounts]`,
			`SELECT gatehouse_accounts.email FROM TodoItem`,
			`SELECT main.gatehouse_accounts.email FROM TodoItem`,
			`SELECT * FROM temp.sqlite_master`,
			`SELECT * FROM pg_catalog.pg_authid`,
			`SELECT text FROM todolist.gatehouse_meta`,
			// Subqueries anywhere.
			`SELECT text FROM TodoItem WHERE text IN (SELECT email FROM gatehouse_accounts)`,
			`SELECT (SELECT TOP 1 password_hash FROM gatehouse_accounts) AS h FROM TodoItem`,
			`SELECT text FROM TodoItem WHERE EXISTS (SELECT 1 FROM gatehouse_accounts WHERE email LIKE 'v%')`,
			`SELECT text FROM TodoItem ORDER BY (SELECT TOP 1 email FROM gatehouse_accounts)`,
			`SELECT text FROM TodoItem GROUP BY text HAVING COUNT(*) > (SELECT COUNT(*) FROM gatehouse_meta)`,
			// Writes to Gatehouse's tables.
			`INSERT INTO gatehouse_accounts (id, email) VALUES ('x', 'y')`,
			`INSERT INTO TodoItem (text) VALUES ((SELECT TOP 1 email FROM gatehouse_accounts))`,
			`UPDATE TodoItem SET text = (SELECT TOP 1 password_hash FROM gatehouse_accounts)`,
			`UPDATE gatehouse_accounts SET password_hash = 'x'`,
			`DELETE FROM [gatehouse_refresh_tokens]`,
			`DELETE gatehouse_accounts`,
			`TRUNCATE TABLE gatehouse_accounts`,
			`UPDATE TodoItem SET text = 'x' FROM gatehouse_accounts`,
			// Identifiers built from strings, dynamic SQL, variables.
			`EXEC('SELECT * FROM ' + 'gatehouse_accounts')`,
			`EXECUTE sp_executesql N'SELECT * FROM gatehouse_accounts'`,
			`SELECT * FROM "gatehouse_" + "accounts"`,
			`SELECT text FROM TodoItem WHERE text = @@version`,
			`SELECT * INTO #t FROM gatehouse_accounts`,
			// Engine-specific columns and names.
			`SELECT rowid FROM TodoItem`,
			`SELECT oid, ctid, xmin FROM TodoItem`,
			`SELECT t FROM TodoItem t`,
			`SELECT TodoItem FROM TodoItem`,
			`SELECT text FROM TodoItem INDEXED BY x`,
			`SELECT text FROM TodoItem WITH (NOLOCK)`,
			`SELECT text FROM TodoItem (NOLOCK)`,
			`SELECT text FROM TodoItem WHERE text = 'a\' UNION SELECT email FROM gatehouse_accounts --'`,
			`SELECT text FROM TodoItem WHERE text = E'\x27' UNION SELECT email FROM gatehouse_accounts`,
			`SELECT text FROM TodoItem WHERE text = $$x$$ UNION SELECT email FROM gatehouse_accounts`,
			`SELECT text FROM TodoItem WHERE text = 'x' COLLATE "C"`,
			"SELECT text FROM TodoItem WHERE text = `x`",
			`SELECT text FROM TodoItem WHERE text LIKE 'x' ESCAPE '\'`,
			`SELECT text::regclass FROM TodoItem`,
			`SELECT text || email FROM TodoItem, gatehouse_accounts`,
		}
		for _, a := range attacks {
			st, body := run(a)
			if st != 400 || !strings.Contains(body, "mssql:") {
				t.Errorf("%s: %d %s, want 400 with an mssql error", a, st, body)
			}
			noSecret(a, body)
		}

		// Name resolution is the statement's own: an alias that happens to be a system table's name
		// still means the app table it was given to.
		for _, ok := range []string{
			`SELECT gatehouse_accounts.text FROM TodoItem AS gatehouse_accounts`,
			`SELECT [sqlite_master].[text] FROM TodoItem [sqlite_master] WHERE [sqlite_master].complete = FALSE OR 1 = 1`,
			`SELECT "count"(*) AS n FROM TodoItem`,
			"SELECT text FROM TodoItem /* /* */ UNION SELECT email FROM gatehouse_accounts */",
			`SELECT text FROM TodoItem WHERE text = 'it''s' OR text = 'milk'`,
		} {
			st, body := run(ok)
			if st != 200 {
				t.Errorf("%s: %d %s, want 200", ok, st, body)
			}
			noSecret(ok, body)
		}

		// Through the injectable customer script.
		for _, q := range []string{
			`x' UNION SELECT email FROM gatehouse_accounts --`,
			`x' UNION SELECT "password_hash" FROM "gatehouse_accounts" --`,
			`x' UNION SELECT text AS gatehouse_accounts FROM TodoItem UNION SELECT email FROM "gatehouse_accounts" --`,
			`x' UNION SELECT text FROM (gatehouse_accounts LEFT JOIN TodoItem ON 1 = 0) --`,
			`x' OR "query_to_xml"('SELECT email FROM gatehouse_accounts', true, true, '') IS NOT NULL --`,
			`x' OR "sqlite_version"() IS NOT NULL --`,
			`x' OR "set_config"('default_transaction_read_only', 'on', false) IS NOT NULL --`,
			`x'; DELETE FROM gatehouse_accounts --`,
			`x' UNION SELECT name FROM sqlite_master --`,
			`x' UNION SELECT value FROM gatehouse_meta --`,
		} {
			r := e.do("GET", "/api/search?q="+url.QueryEscape(q), "")
			if r.status != 400 {
				t.Errorf("search %q: %d %s, want 400", q, r.status, r.body)
			}
			noSecret(q, r.body)
		}
		if r := e.do("GET", "/api/search?q=milk", ""); r.status != 200 || !strings.Contains(r.body, "milk") {
			t.Fatalf("search milk: %d %s", r.status, r.body)
		}

		// Finding 3: whatever scripts send, later writes by other clients succeed.
		run(`SELECT "set_config"('default_transaction_read_only', 'on', false)`)
		run(`SELECT text FROM TodoItem WHERE "set_config"('default_transaction_read_only', 'on', false) = 'on'`)
		var wg sync.WaitGroup
		fails := make(chan string, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do("POST", "/tables/TodoItem", `{"text":"after"}`, "X-ZUMO-APPLICATION", appKey)
				if r.status != 201 {
					fails <- r.body
				}
			}()
		}
		wg.Wait()
		close(fails)
		for f := range fails {
			t.Errorf("insert after set_config attempt failed: %s", f)
		}
	})
}
