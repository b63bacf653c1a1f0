// Package storetest gives tests real databases: a SQLite file in a temporary directory, and a fresh
// schema on the PostgreSQL server named by GATEHOUSE_TEST_POSTGRES (default
// postgres://postgres@127.0.0.1:5432/test). When that server is unreachable the Postgres tests skip
// with a message — unless CI is set, where they fail, so CI can never pass without running them.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// DefaultPostgres is the server the tests use when GATEHOUSE_TEST_POSTGRES is unset.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL returns a DSN whose search_path is a new empty schema, dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("GATEHOUSE_TEST_POSTGRES")
	if base == "" {
		base = DefaultPostgres
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("storetest: PostgreSQL at %s is unreachable and CI is set: %v", redacted(base), err)
		}
		t.Skipf("storetest: skipping PostgreSQL test: no server reachable at %s (%v); set GATEHOUSE_TEST_POSTGRES or start PostgreSQL", redacted(base), err)
	}
	b := make([]byte, 6)
	rand.Read(b) //nolint:errcheck
	schema := "gh_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("storetest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Logf("storetest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SQLiteURL returns a DSN for a SQLite file in a temporary directory. The path is escaped: test names
// (and so temporary directories) may contain '#', which would otherwise start a URL fragment.
func SQLiteURL(t testing.TB) string {
	return (&url.URL{Scheme: "sqlite", Path: t.TempDir() + "/test.db"}).String()
}

// Each runs fn once per database (subtests "sqlite" and "postgres"), each with a freshly migrated DB.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, Open(t, SQLiteURL(t))) })
	t.Run("postgres", func(t *testing.T) { fn(t, Open(t, PostgresURL(t))) })
}

// Open opens and migrates a database, closed when the test ends.
func Open(t testing.TB, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, t.TempDir())
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func redacted(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}
