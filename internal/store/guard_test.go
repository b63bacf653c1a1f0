package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func guardFixture(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE gh_app (id TEXT PRIMARY KEY, c_text TEXT)`,
		`CREATE TABLE gh_other (id TEXT PRIMARY KEY, c_text TEXT)`,
		`INSERT INTO gh_app (id, c_text) VALUES ('1', 'milk')`,
		`INSERT INTO gatehouse_meta (key, value) VALUES ('planted', 'SECRET')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func guarded(db *store.DB, g store.Guard, q string) (string, error) {
	var out []string
	err := db.Guarded(context.Background(), g, func(ctx context.Context, c store.Querier) error {
		rows, err := c.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v any
			if err := rows.Scan(&v); err != nil {
				return err
			}
			switch x := v.(type) {
			case []byte:
				out = append(out, string(x))
			case string:
				out = append(out, x)
			}
		}
		return rows.Err()
	})
	return strings.Join(out, ","), err
}

var appGuard = store.Guard{Tables: []string{"gh_app"}, Functions: []string{"count", "upper", "like"}}

// TestGuardSQLiteAuthorizer: the engine refuses what the translator should never print, whatever
// text produced it: other tables (Gatehouse's, the schema table, other app tables than the
// statement's), other functions, PRAGMA, ATTACH, schema changes, writes in a query.
func TestGuardSQLiteAuthorizer(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	guardFixture(t, db)
	if got, err := guarded(db, appGuard, `SELECT upper(c_text) FROM gh_app WHERE c_text LIKE 'm%' AND (SELECT count(*) FROM gh_app) > 0`); err != nil || got != "MILK" {
		t.Fatalf("allowed statement: %q %v", got, err)
	}
	ro := appGuard
	ro.ReadOnly = true
	for _, c := range []struct {
		g store.Guard
		q string
	}{
		{appGuard, `SELECT value FROM gatehouse_meta`},
		{appGuard, `SELECT c_text FROM gh_app UNION SELECT value FROM gatehouse_meta`},
		{appGuard, `SELECT c_text FROM gh_app WHERE c_text IN (SELECT value FROM gatehouse_meta)`},
		{appGuard, `SELECT c_text FROM gh_other`},
		{appGuard, `SELECT name FROM sqlite_master`},
		{appGuard, `SELECT sql FROM sqlite_schema`},
		{appGuard, `SELECT name FROM temp.sqlite_master`},
		{appGuard, `SELECT sqlite_version()`},
		{appGuard, `SELECT "sqlite_version"()`},
		{appGuard, `SELECT load_extension('x')`},
		{appGuard, `SELECT randomblob(10)`},
		{appGuard, `SELECT c_text FROM gh_app WHERE c_text GLOB 'm*'`},
		{appGuard, `PRAGMA table_info(gh_app)`},
		{appGuard, `SELECT * FROM pragma_table_info('gatehouse_meta')`},
		{appGuard, `ATTACH DATABASE ':memory:' AS x`},
		{appGuard, `WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r`},
		{appGuard, `CREATE TABLE gh_new (a)`},
		{appGuard, `CREATE TEMP TABLE gh_app (a)`},
		{appGuard, `DELETE FROM gatehouse_meta`},
		{appGuard, `BEGIN`},
		{ro, `INSERT INTO gh_app (id, c_text) VALUES ('2', 'x') RETURNING id`},
		{ro, `DELETE FROM gh_app RETURNING id`},
	} {
		got, err := guarded(db, c.g, c.q)
		var ge *store.GuardError
		if !errors.As(err, &ge) {
			t.Errorf("%s: %q %v, want a GuardError", c.q, got, err)
		}
		if strings.Contains(got, "SECRET") {
			t.Errorf("%s: leaked %q", c.q, got)
		}
	}
	// The authorizer is removed before the connection returns to the pool.
	db.SetMaxOpenConns(1)
	if _, err := guarded(db, appGuard, `SELECT c_text FROM gh_app`); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := db.QueryRowContext(context.Background(), `SELECT value FROM gatehouse_meta WHERE key = 'planted'`).Scan(&v); err != nil || v != "SECRET" {
		t.Fatalf("pool connection after the guard: %q %v", v, err)
	}
}

// TestGuardTimeout: a statement past the guard's timeout is stopped on both databases.
func TestGuardTimeout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		guardFixture(t, db)
		ctx := context.Background()
		for i := 0; i < 300; i++ {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO gh_other (id, c_text) VALUES (?, 'x')`), hex.EncodeToString([]byte{byte(i >> 8), byte(i)})); err != nil {
				t.Fatal(err)
			}
		}
		g := store.Guard{Tables: []string{"gh_other"}, Functions: []string{"count"}, Timeout: 300 * time.Millisecond, ReadOnly: true}
		start := time.Now()
		_, err := guarded(db, g, `SELECT count(*) FROM gh_other a, gh_other b, gh_other c, gh_other d`)
		if err == nil {
			t.Fatal("a 8.1e9-row join finished within the timeout")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("stopped after %v, want about 300ms", d)
		}
	})
}

// TestGuardPostgresSession: nothing a statement does to the session survives it (finding 3), and the
// statement timeout is SET LOCAL.
func TestGuardPostgresSession(t *testing.T) {
	db := storetest.Open(t, storetest.PostgresURL(t))
	guardFixture(t, db)
	db.SetMaxOpenConns(1) // every statement below reuses the one connection
	ctx := context.Background()
	var pid, pid2 int
	if err := db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	g := store.Guard{Tables: []string{"gh_app"}, Timeout: 2 * time.Second}
	for _, q := range []string{
		`SELECT set_config('default_transaction_read_only', 'on', false)`,
		`SELECT set_config('search_path', 'pg_catalog', false)`,
		`SELECT set_config('statement_timeout', '1', false)`,
		`SELECT set_config('application_name', 'owned', false)`,
	} {
		if _, err := guarded(db, g, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid2); err != nil || pid2 != pid {
		t.Fatalf("the connection was replaced (%d → %d, %v): the reset should have kept it", pid, pid2, err)
	}
	for _, c := range [][2]string{{"default_transaction_read_only", "off"}, {"statement_timeout", "0"}, {"application_name", ""}} {
		var v string
		if err := db.QueryRowContext(ctx, `SELECT current_setting($1)`, c[0]).Scan(&v); err != nil || v != c[1] {
			t.Errorf("%s after the guarded statement: %q %v, want %q", c[0], v, err, c[1])
		}
	}
	for i := 0; i < 20; i++ {
		if _, err := db.ExecContext(ctx, `INSERT INTO gh_app (id, c_text) VALUES ($1, 'after')`, "a"+hex.EncodeToString([]byte{byte(i)})); err != nil {
			t.Fatalf("insert %d after set_config: %v", i, err)
		}
	}
	// A query runs in a read-only transaction.
	ro := g
	ro.ReadOnly = true
	if _, err := guarded(db, ro, `INSERT INTO gh_app (id, c_text) VALUES ('ro', 'x') RETURNING id`); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("write in a query: %v", err)
	}
	// statement_timeout comes from the guard.
	start := time.Now()
	if _, err := guarded(db, store.Guard{Timeout: 300 * time.Millisecond}, `SELECT pg_sleep(5)::text`); err == nil {
		t.Fatal("pg_sleep(5) finished under a 300ms guard")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stopped after %v", d)
	}
	var v string
	if err := db.QueryRowContext(ctx, `SHOW statement_timeout`).Scan(&v); err != nil || v != "0" {
		t.Fatalf("statement_timeout after the guard: %q %v", v, err)
	}
}

// TestGuardPostgresRole: under the configured role a statement reaches the app tables it names and
// nothing else, whatever SQL the translator let through.
func TestGuardPostgresRole(t *testing.T) {
	db := storetest.Open(t, storetest.PostgresURL(t))
	guardFixture(t, db)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b) //nolint:errcheck
	role := "gh_test_scripts_" + hex.EncodeToString(b)
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE ROLE ` + role + ` NOLOGIN`, `GRANT USAGE ON SCHEMA ` + schema + ` TO ` + role} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		db.ExecContext(context.Background(), `DROP OWNED BY `+role) //nolint:errcheck
		db.ExecContext(context.Background(), `DROP ROLE `+role)     //nolint:errcheck
	})
	g := store.Guard{Tables: []string{"gh_app"}, Role: role, Timeout: 5 * time.Second}
	if got, err := guarded(db, g, `SELECT c_text FROM gh_app`); err != nil || got != "milk" {
		t.Fatalf("app table under the role: %q %v", got, err)
	}
	for _, q := range []string{
		`SELECT value FROM gatehouse_meta`,
		`SELECT c_text FROM gh_other`,
		`SELECT query_to_xml('SELECT value FROM gatehouse_meta', true, true, '')::text`,
		`SELECT set_config('role', 'postgres', false)`,
		`SELECT pg_read_file('/etc/hostname')`,
	} {
		got, err := guarded(db, g, q)
		if err == nil || strings.Contains(got, "SECRET") {
			t.Errorf("%s under the role: %q %v, want refused", q, got, err)
		}
	}
	var user string
	if err := db.QueryRowContext(ctx, `SELECT current_user`).Scan(&user); err != nil || user == role {
		t.Fatalf("pool connection runs as %q (%v) after the guard", user, err)
	}
	if store.ValidRole(`x"; DROP TABLE y; --`) || !store.ValidRole("gatehouse_scripts") {
		t.Fatal("ValidRole")
	}
}
