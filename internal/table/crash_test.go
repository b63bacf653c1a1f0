package table_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

// When GATEHOUSE_CRASH_WRITER names a database, this test binary becomes a writer that inserts rows
// with a large payload until it is killed (see TestKilledWriterLeavesNoPartialRow).
func TestMain(m *testing.M) {
	if dsn := os.Getenv("GATEHOUSE_CRASH_WRITER"); dsn != "" {
		crashWriter(dsn)
		return
	}
	os.Exit(m.Run())
}

func crashWriter(dsn string) {
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, os.TempDir())
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	svc, err := table.NewService(ctx, table.NewSQL(db), appdir.Empty(), table.Defaults{DynamicSchema: true, Permission: auth.Public}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	s, err := svc.Lookup(ctx, "crash")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	st := table.NewSQL(db)
	payload := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		_, err := st.Insert(ctx, s, &table.Row{ID: fmt.Sprintf("r%06d", i), Values: map[string]any{"a": payload, "b": float64(i), "c": payload}})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("OK", i)
	}
}

// TestKilledWriterLeavesNoPartialRow kills a writer process with SIGKILL in the middle of a stream of
// inserts and checks that every row that exists is complete and the database is intact.
func TestKilledWriterLeavesNoPartialRow(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": storetest.SQLiteURL, "postgres": storetest.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			url := dsn(t)
			db := storetest.Open(t, url)
			svc, err := table.NewService(context.Background(), table.NewSQL(db), appdir.Empty(), table.Defaults{DynamicSchema: true, Permission: auth.Public}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Create(context.Background(), table.Spec{Name: "crash", Columns: map[string]table.ColumnType{"a": table.String, "b": table.Number, "c": table.String}}); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "GATEHOUSE_CRASH_WRITER="+url)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			for seen := 0; seen < 20 && sc.Scan(); seen++ {
				if line := sc.Text(); strings.HasPrefix(line, "ERR") {
					t.Fatalf("writer: %s", line)
				}
			}
			// Kill it while it keeps inserting: the next insert is in flight.
			cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck
			cmd.Wait()                          //nolint:errcheck
			// Reopen as a new process would, and check every row.
			db2 := storetest.Open(t, url)
			svc2, err := table.NewService(context.Background(), table.NewSQL(db2), appdir.Empty(), table.Defaults{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			s, err := svc2.Lookup(context.Background(), "crash")
			if err != nil {
				t.Fatal(err)
			}
			rows, _, err := table.NewSQL(db2).Query(context.Background(), s, &odata.Query{Top: odata.NoLimit})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) < 20 {
				t.Fatalf("only %d rows survived", len(rows))
			}
			for _, r := range rows {
				a, _ := r.Values["a"].(string)
				c, _ := r.Values["c"].(string)
				if len(a) != 64<<10 || len(c) != 64<<10 || r.Values["b"] == nil || r.Version == "" {
					t.Fatalf("partial row %v: a=%d c=%d b=%v", r.ID, len(a), len(c), r.Values["b"])
				}
			}
			if db2.Dialect == store.SQLite {
				var res string
				if err := db2.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
					t.Fatalf("integrity_check: %s %v", res, err)
				}
			}
			t.Logf("%d complete rows after SIGKILL", len(rows))
		})
	}
}
