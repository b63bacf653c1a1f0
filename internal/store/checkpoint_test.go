package store_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestSQLiteCheckpointsInBackground checks that SQLite's write-ahead log is copied back into the
// database file by the background checkpointer, not by the commits: every connection has the
// automatic checkpoint raised to the backstop, checkpoints run while the writes go on, and the rows
// are all there after the database is closed and opened again.
func TestSQLiteCheckpointsInBackground(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.SQLiteURL(t)
	db, err := store.Open(ctx, dsn, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]interface{ Close() error }, 0, 3)
	for range 3 { // distinct pool connections
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var pages int
		if err := c.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if pages != 8000 {
			t.Fatalf("wal_autocheckpoint = %d, want 8000", pages)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE ckpt_test (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", 2000)
	const txs, perTx = 100, 10 // about 2 MB of log: 500 pages and more
	for i := range txs {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := range perTx {
			if _, err := tx.ExecContext(ctx, "INSERT INTO ckpt_test (id, body) VALUES (?, ?)", i*perTx+j, body); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// The rows reach the database file itself (not only the log) well before the 8,000-page
	// backstop: the background checkpointer copied them.
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	file := u.Path
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		// The file grows while the checkpoint runs; its stats are counted when it returns.
		if fi.Size() >= txs*perTx*2000 && db.CheckpointStats().Runs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes: no background checkpoint copied the log: %+v", fi.Size(), db.CheckpointStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := db.CheckpointStats(); st.Runs == 0 || st.Longest <= 0 {
		t.Fatalf("checkpoint stats %+v", st)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db.Close() //nolint:errcheck // closing twice must not hang
	db, err = store.Open(ctx, dsn, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM ckpt_test WHERE length(body) = 2000").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != txs*perTx {
		t.Fatalf("%d rows after reopening, want %d", n, txs*perTx)
	}
	if st := (&store.DB{}).CheckpointStats(); st != (store.CheckpointStats{}) {
		t.Fatalf("stats of a database without a checkpointer: %+v", st)
	}
}
