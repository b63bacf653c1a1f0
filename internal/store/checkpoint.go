package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"time"
)

// SQLite's write-ahead log is copied back into the database file by checkpoints. By default SQLite
// runs one automatically inside the commit that makes the log reach 1,000 pages: that commit (and
// every write of its group commit, and every write queued behind it) waits while the checkpoint
// copies the pages and fsyncs the database file, tens of milliseconds at the tail of the write
// latency. Gatehouse runs them off the write path instead: a goroutine per SQLite database runs a
// PASSIVE checkpoint (which never takes the write lock, so writers carry on appending to the log)
// whenever the log has changed, at most every checkpointInterval. The automatic checkpoint stays
// as a backstop, at autoCheckpointPages, for a log the background checkpointer does not keep small
// (another process writing, a checkpointer starved of a connection).
//
// Durability is unchanged: a commit is acknowledged once its log frames are fsynced
// (synchronous=FULL); a checkpoint only copies committed pages and fsyncs the database file before
// the log may be reused, and one interrupted by a crash is redone from the log on the next open.
const (
	checkpointInterval  = 250 * time.Millisecond
	autoCheckpointPages = 8000 // 32 MB of 4 KB pages
)

// checkpointer runs the background checkpoints of one SQLite database.
type checkpointer struct {
	db      *sql.DB
	wal     string // the log file
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	stats   CheckpointStats
	lastMod time.Time
	lastLen int64
}

// CheckpointStats counts the background checkpoints of a SQLite database.
type CheckpointStats struct {
	Runs     int           // checkpoints run
	Longest  time.Duration // the longest checkpoint
	Failures int           // checkpoints that failed (busy, I/O); the next one retries
}

func startCheckpointer(db *sql.DB, path string) *checkpointer {
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, wal: path + "-wal", stop: stop, done: make(chan struct{})}
	go c.loop(ctx)
	return c
}

func (c *checkpointer) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.changed() {
			continue
		}
		c.run(ctx)
	}
}

// changed reports whether the log file was written since the last checkpoint (its size or
// modification time differ). A write that leaves both equal (within the file system's time
// granularity) is checkpointed after the next one.
func (c *checkpointer) changed() bool {
	fi, err := os.Stat(c.wal)
	if err != nil {
		return false // no log yet
	}
	if fi.ModTime().Equal(c.lastMod) && fi.Size() == c.lastLen {
		return false
	}
	c.lastMod, c.lastLen = fi.ModTime(), fi.Size()
	return true
}

func (c *checkpointer) run(ctx context.Context) {
	start := time.Now()
	var busy, log, copied int64 // copied: the log's frames now in the database file
	err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied)
	d := time.Since(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || busy != 0 {
		c.stats.Failures++
		return
	}
	c.stats.Runs++
	c.stats.Longest = max(c.stats.Longest, d)
}

func (c *checkpointer) close() {
	c.stop()
	<-c.done
}

// CheckpointStats reports the background checkpoints so far (zero on PostgreSQL).
func (db *DB) CheckpointStats() CheckpointStats {
	if db.ckpt == nil {
		return CheckpointStats{}
	}
	db.ckpt.mu.Lock()
	defer db.ckpt.mu.Unlock()
	return db.ckpt.stats
}

// Close stops the background checkpointer (SQLite), closes the in-place readers (SQLite; one a
// RawRows still holds is closed when that is) and closes the database.
func (db *DB) Close() error {
	if db.ckpt != nil {
		db.ckpt.close()
	}
	if db.readers != nil {
		db.readers.close()
	}
	if err := db.DB.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// LockWriter queues this process's SQLite writers in Go: a writer that takes it around its write
// transaction waits for the previous one exactly as long as that one writes. Without it, a writer
// that finds the write lock taken waits in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20,
// 25, 25, 25, 50, 50, 100 … ms between retries, so a writer can go on sleeping up to 100 ms after
// the lock was released (measured: the activity log's flush once a second stalled the group commit
// of table writes for 80–130 ms, the p99 of inserts). Writers that do not take it (short ones,
// other processes) still meet the busy handler, as before. The returned function releases it. On
// PostgreSQL, where writers do not exclude each other, it does nothing.
func (db *DB) LockWriter(ctx context.Context) (func(), error) {
	if db.writer == nil {
		return func() {}, nil
	}
	select {
	case db.writer <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-db.writer }) }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("store: wait to write: %w", ctx.Err())
	}
}
