package table_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

// When GATEHOUSE_CRASH_WRITER names a database, this test binary becomes a writer that inserts rows
// until it is killed (see TestKilledWriterLeavesNoPartialRow): GATEHOUSE_CRASH_WRITERS goroutines
// (default 1) insert rows of 2×GATEHOUSE_CRASH_PAYLOAD bytes (default 64 KiB) concurrently, so that
// with several they share group commits, and each prints "OK <id>" once its insert is acknowledged.
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
	writers, size := 1, 64<<10
	if n, err := strconv.Atoi(os.Getenv("GATEHOUSE_CRASH_WRITERS")); err == nil && n > 0 {
		writers = n
	}
	if n, err := strconv.Atoi(os.Getenv("GATEHOUSE_CRASH_PAYLOAD")); err == nil && n > 0 {
		size = n
	}
	payload := strings.Repeat("x", size)
	var mu sync.Mutex
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%02d-%06d", w, i)
				_, err := st.Insert(ctx, s, &table.Row{ID: id, Values: map[string]any{"a": payload, "b": float64(i), "c": payload}})
				mu.Lock()
				if err != nil {
					fmt.Println("ERR", err)
					os.Exit(1)
				}
				fmt.Println("OK", id)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestKilledWriterLeavesNoPartialRow kills a writer process with SIGKILL in the middle of a stream of
// inserts and checks that every row that exists is complete, every acknowledged row exists and the
// database is intact: with one writer, and with 32 concurrent writers sharing group commits.
func TestKilledWriterLeavesNoPartialRow(t *testing.T) {
	for _, load := range []struct {
		name             string
		writers, payload int
		acked            int // acknowledged rows to wait for before the kill
	}{
		{"sequential", 1, 64 << 10, 20},
		{"concurrent", 32, 1 << 10, 2000},
	} {
		for name, dsn := range map[string]func(testing.TB) string{"sqlite": storetest.SQLiteURL, "postgres": storetest.PostgresURL} {
			t.Run(load.name+"/"+name, func(t *testing.T) { killWriter(t, dsn(t), load.writers, load.payload, load.acked) })
		}
	}
}

func killWriter(t *testing.T, url string, writers, payload, acked int) {
	db := storetest.Open(t, url)
	svc, err := table.NewService(context.Background(), table.NewSQL(db), appdir.Empty(), table.Defaults{DynamicSchema: true, Permission: auth.Public}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(context.Background(), table.Spec{Name: "crash", Columns: map[string]table.ColumnType{"a": table.String, "b": table.Number, "c": table.String}}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GATEHOUSE_CRASH_WRITER="+url,
		fmt.Sprintf("GATEHOUSE_CRASH_WRITERS=%d", writers), fmt.Sprintf("GATEHOUSE_CRASH_PAYLOAD=%d", payload))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	ack := map[string]bool{}
	read := func() {
		line := sc.Text()
		if strings.HasPrefix(line, "ERR") {
			t.Fatalf("writer: %s", line)
		}
		if id, ok := strings.CutPrefix(line, "OK "); ok {
			ack[id] = true
		}
	}
	start := time.Now()
	for len(ack) < acked && sc.Scan() {
		read()
	}
	rate := float64(len(ack)) / time.Since(start).Seconds()
	// Kill it while it keeps inserting: the next inserts are in flight. What it printed
	// before it died (still in the pipe) was acknowledged too.
	cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck
	for sc.Scan() {
		read()
	}
	cmd.Wait() //nolint:errcheck
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
	if len(rows) < acked {
		t.Fatalf("only %d rows survived", len(rows))
	}
	stored := map[string]bool{}
	for _, r := range rows {
		stored[r.ID.(string)] = true
		a, _ := r.Values["a"].(string)
		c, _ := r.Values["c"].(string)
		if len(a) != payload || len(c) != payload || r.Values["b"] == nil || r.Version == "" {
			t.Fatalf("partial row %v: a=%d c=%d b=%v", r.ID, len(a), len(c), r.Values["b"])
		}
	}
	if db2.Dialect == store.SQLite {
		var res string
		if err := db2.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
			t.Fatalf("integrity_check: %s %v", res, err)
		}
	}
	for id := range ack {
		if !stored[id] {
			t.Errorf("acknowledged row %s lost", id)
		}
	}
	t.Logf("%d writers at %.0f acknowledged inserts/s; %d acknowledged, %d complete rows after SIGKILL", writers, rate, len(ack), len(rows))
}
