package table_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

// A table created with integer ids before the app folder is deployed (the original's
// `azure mobile table create --integerId`) keeps them: the folder's JSON carries permissions only.
func TestDeclarationAdoptsExistingIDType(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		st := table.NewSQL(db)
		s, err := table.NewSchema("TodoItem", table.IntegerID, table.Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		load := func(tableJSON string) (*table.Service, error) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "table"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "table", "TodoItem.json"), []byte(tableJSON), 0o644); err != nil {
				t.Fatal(err)
			}
			app, err := appdir.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			return table.NewService(ctx, st, app, table.Defaults{Permission: auth.Public}, log)
		}
		svc2, err := load(`{"routes":{"*":{"*":{"permission":"public"}}}}`)
		if err != nil {
			t.Fatalf("a declaration without idType must adopt the existing integer ids: %v", err)
		}
		got, err := svc2.Lookup(ctx, "todoitem")
		if err != nil || got.IDType != table.IntegerID {
			t.Fatalf("id type after adoption: %v %v", got, err)
		}
		if _, err := load(`{"idType":"integer"}`); err != nil {
			t.Fatalf("matching explicit idType: %v", err)
		}
		if _, err := load(`{"idType":"string"}`); err == nil || !strings.Contains(err.Error(), "declared idType string") {
			t.Fatalf("explicit conflicting idType must stop start-up, got %v", err)
		}
	})
}
