package odata

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// registerSQLite registers the default SQLite dialect's collation and
// functions once per test binary (registration is process-wide).
var registerSQLite = sync.OnceValue(func() error { return SQLite{}.Register() })

func openTestSQLite(t testing.TB) *sql.DB {
	t.Helper()
	if err := registerSQLite(); err != nil {
		t.Fatalf("register sqlite functions: %v", err)
	}
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testPostgresDSN is the local test server; GATEHOUSE_TEST_POSTGRES overrides it.
func testPostgresDSN() string {
	if dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// openTestPostgres connects to the test server and creates a fresh schema
// that is dropped when the test ends. It skips the test when the server is
// unreachable, unless the CI environment variable is set, in which case it
// fails.
func openTestPostgres(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dsn := testPostgresDSN()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if os.Getenv("CI") == "" {
			t.Skipf("PostgreSQL unreachable at %s (%v); skipping (set CI=1 to make this a failure)", dsn, err)
		}
		t.Fatalf("PostgreSQL unreachable at %s: %v (CI is set, so this is a failure)", dsn, err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "odata_test_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA "`+schema+`"`); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA "`+schema+`" CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	return db, schema
}
