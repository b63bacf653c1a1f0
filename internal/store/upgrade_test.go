package store_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// eachDSN runs fn with a fresh, unmigrated database of each kind.
func eachDSN(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, storetest.SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, storetest.PostgresURL(t)) })
}

func openWith(t *testing.T, dsn string, o store.Options) (*store.DB, error) {
	t.Helper()
	db, err := store.OpenWith(context.Background(), dsn, t.TempDir(), o)
	if err == nil {
		t.Cleanup(func() { db.Close() })
	}
	return db, err
}

// previousRelease is the schema history of the release before this one: this one's without its last
// migration.
func previousRelease() []store.Migration {
	all := store.Migrations()
	return all[:len(all)-1]
}

// TestPreviousReleaseStartsOnNewerAdditiveSchema is the rolling-upgrade rule: the new release migrates
// the database; an instance still running the previous release (simulated by the truncated migration
// list) restarts on it, because the newer migration is additive.
func TestPreviousReleaseStartsOnNewerAdditiveSchema(t *testing.T) {
	all := store.Migrations()
	if !all[len(all)-1].Additive {
		t.Skip("the latest migration is not additive: the previous release must refuse it (covered below)")
	}
	eachDSN(t, func(t *testing.T, dsn string) {
		if _, err := openWith(t, dsn, store.Options{Schema: store.Migrate}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []store.SchemaPolicy{store.Migrate, store.RequireCurrent} {
			old, err := openWith(t, dsn, store.Options{Schema: p, Migrations: previousRelease()})
			if err != nil {
				t.Fatalf("the previous release refused the newer schema (policy %d): %v", p, err)
			}
			if len(old.Newer) != 1 || old.Newer[0].Version != all[len(all)-1].Version || !old.Newer[0].Additive {
				t.Fatalf("Newer = %+v", old.Newer)
			}
			// It works on its own tables.
			if _, err := old.ExecContext(context.Background(), old.Rebind(`INSERT INTO gatehouse_meta (key, value) VALUES (?, ?)`), "k"+string(rune('0'+p)), "v"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestOlderBinaryRefusesNonAdditiveMigration: a newer release's non-additive migration makes this
// binary refuse the database, naming the migration.
func TestOlderBinaryRefusesNonAdditiveMigration(t *testing.T) {
	eachDSN(t, func(t *testing.T, dsn string) {
		next := append(store.Migrations(), store.Migration{Version: 9001, Name: "rename meta", Additive: false,
			SQLite:   `ALTER TABLE gatehouse_meta RENAME TO gatehouse_settings`,
			Postgres: `ALTER TABLE gatehouse_meta RENAME TO gatehouse_settings`})
		if _, err := openWith(t, dsn, store.Options{Schema: store.Migrate, Migrations: next}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []store.SchemaPolicy{store.Migrate, store.RequireCurrent} {
			_, err := openWith(t, dsn, store.Options{Schema: p})
			if err == nil || !strings.Contains(err.Error(), "migration 9001 (rename meta)") || !strings.Contains(err.Error(), "not backward compatible") {
				t.Fatalf("policy %d: %v", p, err)
			}
		}
		// migrate status still reads it.
		db, err := openWith(t, dsn, store.Options{Schema: store.AnySchema})
		if err != nil {
			t.Fatal(err)
		}
		st, err := db.Status(context.Background())
		if err != nil || len(st.Unknown) != 1 || st.Unknown[0].Additive || st.Compatible() == nil {
			t.Fatalf("status %+v %v", st, err)
		}
	})
}

// TestBehindDatabaseRefusedUntilMigrateUp: commands that do not migrate refuse a database with pending
// migrations, naming `gatehouse migrate up`, and change nothing; MigrateUp applies exactly the pending.
func TestBehindDatabaseRefusedUntilMigrateUp(t *testing.T) {
	eachDSN(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		if _, err := openWith(t, dsn, store.Options{Schema: store.Migrate, Migrations: previousRelease()}); err != nil {
			t.Fatal(err)
		}
		_, err := openWith(t, dsn, store.Options{Schema: store.RequireCurrent})
		var behind *store.BehindError
		if !errors.As(err, &behind) || !strings.Contains(err.Error(), "gatehouse migrate up") {
			t.Fatalf("behind database opened: %v", err)
		}
		db, err := openWith(t, dsn, store.Options{Schema: store.AnySchema})
		if err != nil {
			t.Fatal(err)
		}
		st, err := db.Status(ctx)
		if err != nil || len(st.Pending) != 1 || st.Target != store.SchemaVersion() {
			t.Fatalf("status after the refusal: %+v %v", st, err)
		}
		done, err := db.MigrateUp(ctx)
		if err != nil || len(done) != 1 || done[0].Version != store.SchemaVersion() {
			t.Fatalf("migrate up: %+v %v", done, err)
		}
		if again, err := db.MigrateUp(ctx); err != nil || len(again) != 0 {
			t.Fatalf("second migrate up: %+v %v", again, err)
		}
		if _, err := openWith(t, dsn, store.Options{Schema: store.RequireCurrent}); err != nil {
			t.Fatalf("current database refused: %v", err)
		}
	})
}

// TestEmptyDatabaseNeedsMigrateUp: a database without Gatehouse's schema is refused, and the SQLite
// file and data directory are not created by commands that do not migrate.
func TestEmptyDatabaseNeedsMigrateUp(t *testing.T) {
	_, err := openWith(t, storetest.PostgresURL(t), store.Options{Schema: store.RequireCurrent})
	if err == nil || !strings.Contains(err.Error(), "no Gatehouse schema yet") || !strings.Contains(err.Error(), "gatehouse migrate up") {
		t.Fatalf("empty PostgreSQL schema: %v", err)
	}
	dir := t.TempDir()
	_, err = store.OpenWith(context.Background(), "", dir, store.Options{Schema: store.RequireCurrent})
	if err == nil || !strings.Contains(err.Error(), "no Gatehouse database") {
		t.Fatalf("empty data directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gatehouse.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a database file was created: %v", err)
	}
	missing := filepath.Join(dir, "nothere")
	_, err = store.OpenWith(context.Background(), "", missing, store.Options{Schema: store.Migrate})
	if !errors.Is(err, store.ErrNoDataDir) || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("missing data directory: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the data directory was created")
	}
}

// TestBookkeepingFromBeforeTheAdditiveFlag: a database migrated by a release whose bookkeeping table
// has no additive column is upgraded in place.
func TestBookkeepingFromBeforeTheAdditiveFlag(t *testing.T) {
	eachDSN(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		if u, _ := url.Parse(dsn); u.Scheme == "sqlite" {
			// An empty file is an empty SQLite database.
			if err := os.WriteFile(u.Path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		raw, err := openWith(t, dsn, store.Options{Schema: store.AnySchema})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`CREATE TABLE gatehouse_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
			`CREATE TABLE gatehouse_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
			`INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES (1, 'meta', '2026-01-01T00:00:00Z')`,
		} {
			if _, err = raw.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		db, err := openWith(t, dsn, store.Options{Schema: store.Migrate})
		if err != nil {
			t.Fatal(err)
		}
		st, err := db.Status(ctx)
		if err != nil || len(st.Pending) != 0 || st.Applied[0].Additive || !st.Applied[len(st.Applied)-1].Additive {
			t.Fatalf("status %+v %v", st, err)
		}
	})
}

// TestSQLitePathWithURIDelimiters: a data directory whose path holds '#', '?', '%' or a space keeps its
// database there (mode 0600), not in a file named by the path's prefix.
func TestSQLitePathWithURIDelimiters(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "data #1?x=%41 y")
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), `INSERT INTO gatehouse_meta (key, value) VALUES ('k', 'v')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := os.Stat(filepath.Join(dir, "gatehouse.db"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() == 0 {
		t.Fatalf("database file: %v %v", st, err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Fatalf("files beside the data directory: %v", entries)
	}
	again, err := store.OpenWith(context.Background(), "", dir, store.Options{Schema: store.RequireCurrent})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	var v string
	if err := again.QueryRowContext(context.Background(), `SELECT value FROM gatehouse_meta WHERE key = 'k'`).Scan(&v); err != nil || v != "v" {
		t.Fatalf("reopened: %q %v", v, err)
	}
}
