package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func TestOpenMigrates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		v, err := db.AppliedVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != store.SchemaVersion() {
			t.Fatalf("applied %d, want %d", v, store.SchemaVersion())
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO gatehouse_meta (key, value) VALUES (?, ?)`), "k", "v"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	dsns := map[string]string{"sqlite": storetest.SQLiteURL(t), "postgres": storetest.PostgresURL(t)}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db, err := store.Open(context.Background(), dsn, t.TempDir())
					if err != nil {
						errs <- err
						return
					}
					db.Close()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	for _, dsn := range []string{"mysql://x", "sqlite://", "postgres://user:secretpw@127.0.0.1:1/none?connect_timeout=1"} {
		_, err := store.Open(context.Background(), dsn, t.TempDir())
		if err == nil {
			t.Fatalf("%s: opened", dsn)
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Fatalf("password leaked in %v", err)
		}
	}
}

// TestSQLiteMaxLength: every pooled connection carries SQLITE_LIMIT_LENGTH, so a statement that would
// build a longer string fails instead of allocating it (issue 10 #5), and the default is set too.
func TestSQLiteMaxLength(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenWith(ctx, storetest.SQLiteURL(t), t.TempDir(), store.Options{Schema: store.Migrate, SQLiteMaxLength: 4000})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Hold several connections at once so that more than one is opened.
	var conns []interface{ Close() error }
	for range 4 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var n int
		if err := c.QueryRowContext(ctx, `SELECT length(printf('%.*c', 3000, 'x'))`).Scan(&n); err != nil || n != 3000 {
			t.Fatalf("3000 bytes under a 4000-byte limit: %d %v", n, err)
		}
		err = c.QueryRowContext(ctx, `SELECT length(printf('%.*c', 5000, 'x') || 'y')`).Scan(&n)
		if err == nil || !strings.Contains(err.Error(), "too big") {
			t.Fatalf("5000 bytes over a 4000-byte limit: %d %v", n, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	def := storetest.Open(t, storetest.SQLiteURL(t))
	var n int
	err = def.QueryRowContext(ctx, `SELECT length(zeroblob(?))`, store.DefaultSQLiteMaxLength+1).Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "too big") {
		t.Fatalf("default limit not set: %d %v", n, err)
	}
}

// TestSQLitePathWithURICharacters: a file name with '#', '?' or '%' opens that very file (SQLite
// reads "file:" names as URIs; '#' used to cut the path short, so two databases shared one file).
func TestSQLitePathWithURICharacters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, name := range []string{"a#1", "a#2", "b?x=1", "c%41"} {
		d := filepath.Join(dir, name)
		db, err := store.Open(ctx, "", d)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		if _, err := os.Stat(filepath.Join(d, "gatehouse.db")); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Fatalf("files outside the named directories: %d entries", len(entries))
	}
}
