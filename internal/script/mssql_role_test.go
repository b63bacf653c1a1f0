package script_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestMSSQLRole: with scripts.sql_role set, the usual statements work on PostgreSQL under the
// restricted role (Gatehouse grants it the app tables as they are used, integer-id tables included),
// and Gatehouse's own tables stay out of reach of the role.
func TestMSSQLRole(t *testing.T) {
	db := storetest.Open(t, storetest.PostgresURL(t))
	app := map[string]string{
		"datamodel.json": `{"tables":[{"name":"TodoItem","permissions":{"*":"public"},"columns":{"text":"string","complete":"boolean"}},` +
			`{"name":"Counter","idType":"integer","permissions":{"*":"public"},"columns":{"n":"number"}}]}`,
	}
	e := newEnv(t, db, app)
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
	m := script.NewSQL(db, e.svc)
	m.Role, m.Timeout = role, 2*time.Second
	for _, q := range []string{
		"INSERT INTO TodoItem (text, complete) VALUES ('milk', 0 = 1)",
		"INSERT INTO Counter (n) VALUES (1)",
		"UPDATE Counter SET n = n + 1 WHERE n > 0",
		"DELETE FROM TodoItem WHERE text = 'none'",
	} {
		if _, err := m.Query(ctx, q, nil); err != nil {
			t.Fatalf("%s under the role: %v", q, err)
		}
	}
	rows, err := m.Query(ctx, "SELECT c.n, t.text FROM Counter c CROSS JOIN TodoItem t", nil)
	if err != nil || len(rows) != 1 || rows[0]["n"] != 2.0 || rows[0]["text"] != "milk" {
		t.Fatalf("select under the role: %v %v", rows, err)
	}
	// The role holds nothing on Gatehouse's tables.
	var can bool
	if err := db.QueryRowContext(ctx, `SELECT has_table_privilege($1, 'gatehouse_tables', 'SELECT')`, role).Scan(&can); err != nil || can {
		t.Fatalf("role may read gatehouse_tables: %v %v", can, err)
	}
	if _, err := m.Query(ctx, `SELECT "version"()`, nil); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("version(): %v", err)
	}
}
