package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse/gatehouse/internal/store"
)

// execer runs a statement: the database itself (autocommit) or a group-commit transaction.
type execer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writeOp is one request's write: fn runs its statements on ex and returns the written row.
type writeOp struct {
	ctx context.Context
	fn  func(ctx context.Context, ex execer) (*Row, error)
	// pipe, on PostgreSQL, is the same write as one statement, for a pipelined batch.
	pipe *piped
	row  *Row
	err  error
	done chan struct{}
}

func newWriteOp(ctx context.Context, fn func(ctx context.Context, ex execer) (*Row, error)) *writeOp {
	return &writeOp{ctx: ctx, fn: fn, done: make(chan struct{})}
}

// piped is a write as one statement returning the written row. missed, when set, answers a statement
// that matched no row (after the batch committed).
type piped struct {
	q      string
	args   []any
	scan   func(scanner) (*Row, error)
	missed func(ctx context.Context, ex execer) (*Row, error)
}

// committer is group commit for row writes. Concurrent writes queue up; one goroutine (started when
// the queue turns non-empty, gone when it is empty again) takes everything queued, runs it in one
// transaction and commits it with one fsync, while the next requests queue for the following batch.
// Each request is answered only after the commit that made its row durable.
//
// One request's failure does not fail its batch-mates: on SQLite every write runs inside its own
// SAVEPOINT and a failed one is rolled back to it (SQLite savepoints cost no round trip). On
// PostgreSQL a savepoint would cost two round trips per write, so a batch runs optimistically and,
// if a statement fails (which aborts a PostgreSQL transaction), is rolled back and every write of
// it runs again on its own, exactly as without group commit. Version conflicts and missing items
// are not statement errors: they are answered from inside the batch on both databases.
type committer struct {
	db    *store.DB
	stmts *stmtCache // SQLite: statements prepared once (nil on PostgreSQL, whose driver caches them)
	max   int        // writes per batch

	mu      sync.Mutex
	pending []*writeOp
	running bool
}

func newCommitter(db *store.DB, stmts *stmtCache) *committer {
	return &committer{db: db, stmts: stmts, max: 256}
}

// cachedTx runs a batch's statements through the statement cache: SQLite parses a statement on
// every use otherwise, which in a batch is most of the writer's time besides the fsync.
type cachedTx struct {
	tx    *sql.Tx
	stmts *stmtCache
}

func (t cachedTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if s, err := t.stmts.get(ctx, q); err == nil {
		return t.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

func (t cachedTx) exec(ctx context.Context, q string) error {
	s, err := t.stmts.get(ctx, q)
	if err != nil {
		return err
	}
	_, err = t.tx.StmtContext(ctx, s).ExecContext(ctx)
	return err
}

// batchTimeout bounds one batch's transaction.
const batchTimeout = 30 * time.Second

// do queues a write and waits until it is committed (or failed).
func (c *committer) do(op *writeOp) (*Row, error) {
	c.mu.Lock()
	c.pending = append(c.pending, op)
	if !c.running {
		c.running = true
		go c.loop()
	}
	c.mu.Unlock()
	// Wait for the outcome even when ctx ends meanwhile: once the batch has started, the write may
	// be committed, and the caller must not be told otherwise.
	<-op.done
	return op.row, op.err
}

func (c *committer) loop() {
	for {
		c.mu.Lock()
		batch := c.pending
		if len(batch) > c.max {
			batch = batch[:c.max:c.max]
			c.pending = c.pending[c.max:]
		} else {
			c.pending = nil
		}
		if len(batch) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.run(batch)
	}
}

// run executes one batch and answers each of its writes.
func (c *committer) run(batch []*writeOp) {
	defer func() {
		for _, op := range batch {
			close(op.done)
		}
	}()
	live := batch[:0:0]
	for _, op := range batch {
		if err := op.ctx.Err(); err != nil {
			op.err = err // the caller has gone (or timed out) before its write started
			continue
		}
		live = append(live, op)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		c.single(live[0])
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	run := c.batch
	if c.db.Dialect == store.Postgres && allPiped(live) {
		run = c.pipeline
	}
	if err := run(ctx, live); err != nil {
		if errors.Is(err, errRetrySingly) {
			for _, op := range live {
				op.row, op.err = nil, nil
				c.single(op)
			}
			return
		}
		for _, op := range live {
			op.row, op.err = nil, err
		}
	}
}

// errRetrySingly says a PostgreSQL batch failed a statement and was rolled back.
var errRetrySingly = errors.New("table: batch rolled back; retrying its writes one by one")

// single runs one write on its own: autocommit on PostgreSQL; on SQLite a transaction of its own,
// because a write there is two statements (the version counter, then the row; see bumpVersion).
func (c *committer) single(op *writeOp) {
	if c.db.Dialect == store.SQLite {
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		defer cancel()
		if err := c.batch(ctx, []*writeOp{op}); err != nil {
			op.row, op.err = nil, err
		}
		return
	}
	op.row, op.err = op.fn(context.WithoutCancel(op.ctx), c.db)
}

// batch runs the writes in one transaction. It returns an error when nothing of the batch is
// committed: errRetrySingly, or the error of the transaction itself (which every write reports).
func (c *committer) batch(ctx context.Context, ops []*writeOp) error {
	unlock, err := c.db.LockWriter(ctx) // SQLite: queue behind this process's other writers in Go
	if err != nil {
		return fmt.Errorf("table: write batch: %w", err)
	}
	defer unlock()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("table: begin write batch: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck
	pg := c.db.Dialect == store.Postgres
	ex := execer(tx)
	var ctx2 cachedTx
	if c.stmts != nil {
		ctx2 = cachedTx{tx: tx, stmts: c.stmts}
		ex = ctx2
	}
	for _, op := range ops {
		octx := context.WithoutCancel(op.ctx)
		if pg {
			op.row, op.err = op.fn(octx, ex)
			if op.err != nil && !answerable(op.err) {
				return errRetrySingly
			}
			continue
		}
		if err := ctx2.exec(ctx, "SAVEPOINT w"); err != nil {
			return fmt.Errorf("table: write batch: %w", err)
		}
		op.row, op.err = op.fn(octx, ex)
		if op.err != nil {
			if err := ctx2.exec(ctx, "ROLLBACK TO w"); err != nil {
				return fmt.Errorf("table: write batch: %w", err)
			}
		}
		if err := ctx2.exec(ctx, "RELEASE w"); err != nil {
			return fmt.Errorf("table: write batch: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("table: commit write batch: %w", err)
	}
	return nil
}

func allPiped(ops []*writeOp) bool {
	for _, op := range ops {
		if op.pipe == nil {
			return false
		}
	}
	return true
}

// pipeline runs a PostgreSQL batch in one round trip: every statement sent at once, followed by a
// single Sync, so that PostgreSQL runs them as one implicit transaction and commits them together
// (or none of them, if one fails). database/sql cannot pipeline, so this uses the pgx connection
// underneath. A statement that failed makes it errRetrySingly; writes that matched no row are told
// apart (missing item or version conflict) after the commit.
func (c *committer) pipeline(ctx context.Context, ops []*writeOp) error {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("table: write batch: %w", err)
	}
	defer conn.Close()
	var missed []*writeOp
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("table: unexpected PostgreSQL connection %T", dc)
		}
		b := &pgx.Batch{}
		for _, op := range ops {
			b.Queue(op.pipe.q, op.pipe.args...)
		}
		br := sc.Conn().SendBatch(ctx, b)
		var stmtErr, otherErr error
		for _, op := range ops {
			r, err := op.pipe.scan(br.QueryRow())
			var pe *pgconn.PgError
			switch {
			case err == nil:
				op.row = r
				continue
			case errors.Is(err, sql.ErrNoRows) && op.pipe.missed != nil:
				missed = append(missed, op)
				continue
			case errors.As(err, &pe):
				stmtErr = err
			default:
				// Not the server's: this write's own answer failed (the connection, if broken,
				// fails Close below and with it the whole batch).
				op.err = fmt.Errorf("table: write: %w", err)
				continue
			}
			break
		}
		if err := br.Close(); err != nil && stmtErr == nil && otherErr == nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				stmtErr = err
			} else {
				otherErr = err
			}
		}
		switch {
		case otherErr != nil:
			return fmt.Errorf("table: write batch: %w", otherErr)
		case stmtErr != nil:
			return errRetrySingly // the implicit transaction was rolled back
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, op := range missed {
		op.row, op.err = op.pipe.missed(context.WithoutCancel(op.ctx), c.db)
	}
	return nil
}

// answerable reports whether a write's error leaves a PostgreSQL transaction usable (it came from
// our checks, not from a failed statement).
func answerable(err error) bool {
	var ce *ConflictError
	return errors.Is(err, ErrNotFound) || errors.As(err, &ce)
}
