package store_test

import (
	"context"
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

// A data directory whose name holds URI metacharacters opens the database inside it, not a file cut
// short at the '#' or '?'.
func TestSQLitePathWithURICharacters(t *testing.T) {
	base := t.TempDir()
	for _, name := range []string{"a#b", "c?d", "e%41f"} {
		dir := base + "/" + name
		db, err := store.Open(context.Background(), "", dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var file string
		if err := db.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if !strings.HasPrefix(file, dir+"/") {
			t.Fatalf("%s: database opened at %q", name, file)
		}
	}
}
