package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// DefaultReadPipelines is the number of connections PostgreSQL reads are pipelined on at once
// (SetReadPipelines).
const DefaultReadPipelines = 4

// readBatcher pipelines concurrent PostgreSQL reads. A read queues; while fewer than max batches run,
// the reader that finds a free slot takes everything queued (its own read among it) and sends it on
// one connection as one pipeline — per read a Bind and Execute, then one Sync (see pipeline for how one
// read's error is kept from failing the others) — then copies each read's rows out (bufRaw) and wakes
// its reader.
// While it runs, new reads queue for the next batch. Under load a read thus costs a share of one write
// and a few reads on each side instead of its own, and far fewer wake-ups (BenchmarkRawPostgresParallel:
// about 40 % less processor time per lookup, this process and the backends together, at 32 readers).
//
// The slot passes from reader to reader: when a runner's batch is done and reads are queued, it hands
// the slot to the first of them and returns to its own caller, so nobody serves batches indefinitely.
//
// Why not pgx.Batch: it too ends the batch with a single Sync, so the batch is one implicit transaction
// and one failed read (a data exception in a client's $filter) aborts every later one; pgx.Batch
// reports those as failed, the batcher sends them again.
type readBatcher struct {
	db  *DB
	max int // batches running at once (each on its own connection)
	// always sends every read through a pipeline, even alone (tests of the buffered path)
	always bool

	mu      sync.Mutex
	pending []*readOp
	running int // slots taken: batches running or handed to a queued reader

	batches, reads atomic.Int64 // pipelines sent, reads in them

	stmtsMu sync.Mutex
	stmts   map[weak.Pointer[pgx.Conn]]*connStmts
}

// maxBatch bounds the reads of one pipeline, and with them the rows one runner buffers and how long
// the last read of a batch waits for those ahead of it.
const maxBatch = 64

type readOp struct {
	ctx  context.Context
	q    string
	args []any
	res  RawRows
	err  error
	done chan struct{} // closed when res or err is set
	// answered says done is closed (touched by the batch's runner only)
	answered bool
	lead     chan struct{}                // receives the slot: run the next batch
	sd       *pgconn.StatementDescription // its prepared statement (the batch's runner only)
}

func newReadBatcher(db *DB, max int) *readBatcher {
	return &readBatcher{db: db, max: max, stmts: map[weak.Pointer[pgx.Conn]]*connStmts{}}
}

// SetReadPipelines sets how many PostgreSQL connections at most carry pipelined reads at once (see
// readBatcher); 0 turns pipelining off, each read then takes a connection of its own and streams its
// rows. A pipeline's reads wait for each other: one slow read delays the reads queued behind it in
// its batch. Call before serving.
func (db *DB) SetReadPipelines(n int) {
	if db.Dialect != Postgres || n <= 0 {
		db.reads = nil
		return
	}
	db.reads = newReadBatcher(db, n)
}

// ReadPipelineStats reports how many pipelines of reads were sent and how many reads they carried
// (their ratio is the mean batch size); zeros when pipelining is off.
func (db *DB) ReadPipelineStats() (pipelines, reads int64) {
	if db.reads == nil {
		return 0, 0
	}
	return db.reads.batches.Load(), db.reads.reads.Load()
}

func (b *readBatcher) query(ctx context.Context, q string, args []any) (RawRows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	if len(b.pending) == 0 && b.running < b.max && !b.always {
		// Nothing queued and a slot free: no batch to gain, stream this read on a connection of its own
		// (no copy of its rows). The slot is held for the round trip (until the first row is in), so
		// that reads arriving meanwhile queue for a batch; not while the caller goes through the rows,
		// so that a caller holding rows open while it reads again cannot starve the batcher of slots.
		b.running++
		b.mu.Unlock()
		r, err := b.db.queryRawPostgres(ctx, q, args)
		b.freeSlot()
		return r, err
	}
	op := &readOp{ctx: ctx, q: q, args: args, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	b.pending = append(b.pending, op)
	if b.running < b.max {
		b.running++
		op.lead <- struct{}{}
	}
	b.mu.Unlock()
	for {
		select {
		case <-op.done:
			b.leave(op)
			if op.err != nil {
				return nil, op.err
			}
			return op.res, nil
		case <-op.lead:
			b.runBatch()
		case <-ctx.Done():
			// The read may still run in a batch; its rows are dropped.
			b.leave(op)
			return nil, ctx.Err()
		}
	}
}

// runBatch runs what is queued, then passes the slot on.
func (b *readBatcher) runBatch() {
	b.mu.Lock()
	batch := b.pending
	if len(batch) > maxBatch {
		batch = slices.Clone(batch[:maxBatch])
		b.pending = slices.Delete(b.pending, 0, maxBatch)
	} else {
		b.pending = nil
	}
	b.mu.Unlock()
	if len(batch) > 0 {
		b.exec(batch)
	}
	b.mu.Lock()
	b.passSlot()
	b.mu.Unlock()
}

func (b *readBatcher) freeSlot() {
	b.mu.Lock()
	b.passSlot()
	b.mu.Unlock()
}

// passSlot gives a slot to the first queued read, or frees it. b.mu is held.
func (b *readBatcher) passSlot() {
	if len(b.pending) > 0 {
		select {
		case b.pending[0].lead <- struct{}{}:
			return
		default: // it already holds one: only possible with the slot that just came back to it
		}
	}
	b.running--
}

// leave takes op out of the queue and passes on a slot handed to it that it will not use.
func (b *readBatcher) leave(op *readOp) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.pending, op); i >= 0 {
		b.pending = slices.Delete(b.pending, i, i+1)
	}
	select {
	case <-op.lead:
		b.passSlot()
	default:
	}
}

// exec runs one batch and answers each of its reads, each as soon as its rows are in.
func (b *readBatcher) exec(batch []*readOp) {
	defer func() {
		for _, op := range batch {
			answer(op)
		}
	}()
	live := batch[:0:0]
	for _, op := range batch {
		if err := op.ctx.Err(); err != nil {
			op.err = err
			continue
		}
		live = append(live, op)
	}
	if len(live) == 0 {
		return
	}
	// The batch runs until no read in it is still wanted: when the contexts of all of them have ended,
	// its context ends too and pgx interrupts the statement (closing the connection, as on the direct
	// path). A batch of one read simply runs under that read's context.
	ctx := live[0].ctx
	if len(live) > 1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		left := len(live)
		var leftMu sync.Mutex
		for _, op := range live {
			stop := context.AfterFunc(op.ctx, func() {
				leftMu.Lock()
				left--
				if left == 0 {
					cancel()
				}
				leftMu.Unlock()
			})
			defer stop()
		}
	}
	fail := func(ops []*readOp, err error) {
		for _, op := range ops {
			if op.err == nil && op.res == nil {
				op.err = batchError(op.ctx, err)
			}
		}
	}

	conn, err := b.db.Conn(ctx)
	if err != nil {
		fail(live, err)
		return
	}
	var pc *pgx.Conn
	if err := conn.Raw(func(dc any) error {
		if c, ok := dc.(*stdlib.Conn); ok {
			pc = c.Conn()
		}
		return nil
	}); err != nil || pc == nil {
		conn.Close()
		fail(live, fmt.Errorf("store: pipelined read: no pgx connection (%v)", err))
		return
	}
	defer release(conn, pc)

	cs := b.stmtsOf(pc)
	sds, err := b.prepare(ctx, pc, cs, live)
	if err != nil {
		fail(live, err)
		return
	}
	todo := live[:0:0]
	for i, op := range live {
		if op.err == nil { // else its statement failed to prepare
			op.sd = sds[i]
			todo = append(todo, op)
		}
	}
	// A read the server skipped because one before it failed runs again in the next pipeline: at most
	// one more pipeline per failed read.
	for len(todo) > 0 {
		todo = slices.DeleteFunc(todo, func(op *readOp) bool {
			if err := op.ctx.Err(); err != nil { // its reader has gone meanwhile
				op.err = err
				answer(op)
				return true
			}
			return false
		})
		if len(todo) == 0 {
			return
		}
		var retry bool
		if todo, retry, err = b.pipeline(ctx, pc, cs, todo); err != nil {
			if retry {
				// Nothing reached the server (a connection found dead on first use, as after a server
				// restart): each read runs again on its own, retried by queryRawPostgres as database/sql
				// would.
				for _, op := range todo {
					op.res, op.err = bufferRows(b.db.queryRawPostgres(op.ctx, op.q, op.args))
					answer(op)
				}
				return
			}
			fail(todo, err)
			return
		}
	}
}

// pipeline sends ops as one pipeline ending in a single Sync, and answers each read as its result is
// read. It returns the reads the server skipped because a read before them failed (PostgreSQL runs a
// pipeline up to its Sync as one implicit transaction, which an error ends), to be sent again; or,
// when the connection failed, the reads not answered, with retry set if none of them reached the
// server.
//
// One Sync per pipeline rather than one per read: every Sync ends a transaction and makes the backend
// flush its output with a system call of its own, and the reader wake up for it. With one for the whole
// pipeline a lookup costs about a third less processor time, this process and the backend together
// (BenchmarkRawPostgresParallel, batched2: 33.5 µs per read with a Sync per read, 22.8 µs with one).
// The price is that a read's rows reach its reader when the pipeline's last read is done (the backend
// flushes at the Sync, or when its 8 KB output buffer fills), and that a failed read costs its
// batch-mates behind it a second pipeline.
func (b *readBatcher) pipeline(ctx context.Context, pc *pgx.Conn, cs *connStmts, ops []*readOp) (again []*readOp, retry bool, err error) {
	tm := pc.TypeMap()
	pl := pc.PgConn().StartPipeline(ctx)
	var eqb pgx.ExtendedQueryBuilder
	sent := ops[:0:0]
	for _, op := range ops {
		if err := eqb.Build(tm, op.sd, op.args); err != nil {
			op.err = err
			answer(op)
			continue
		}
		// The pipeline keeps the result formats to decode with; eqb reuses its slices.
		pl.SendQueryStatement(op.sd, eqb.ParamValues, eqb.ParamFormats, slices.Clone(eqb.ResultFormats))
		sent = append(sent, op)
	}
	if len(sent) == 0 {
		return nil, false, pl.Close()
	}
	pl.SendPipelineSync()
	if err := pl.Flush(); err != nil {
		pl.Close()
		return sent, pgconn.SafeToRetry(err), err
	}
	b.batches.Add(1)
	b.reads.Add(int64(len(sent)))
	for i, op := range sent {
		res, err := pl.GetResults()
		if err == nil {
			if rr, ok := res.(*pgconn.ResultReader); ok {
				var r *bufRaw
				if r, err = readAll(tm, rr); err == nil {
					op.res = r
				}
			} else {
				err = fmt.Errorf("store: pipelined read: unexpected %T", res)
			}
		}
		var pe *pgconn.PgError
		if err != nil && !errors.As(err, &pe) {
			pl.Close()
			return sent[i:], false, err
		}
		op.err = err // the statement's own error
		answer(op)
		if pe != nil {
			if pe.Code == "0A000" || pe.Code == "26000" {
				// "cached plan must not change result type" (a table the statement reads changed) or the
				// statement is gone: prepare it again next time, as pgx does with its own cache.
				delete(cs.sds, op.q)
			}
			// The server skipped the reads after this one, up to the Sync (pgx skips their results).
			again = sent[i+1:]
			break
		}
	}
	if res, err := pl.GetResults(); err != nil {
		pl.Close()
		return again, false, err
	} else if _, ok := res.(*pgconn.PipelineSync); !ok {
		pl.Close()
		return again, false, fmt.Errorf("store: pipelined read: unexpected %T", res)
	}
	if err := pl.Close(); err != nil {
		return again, false, err
	}
	return again, false, nil
}

// answer wakes op's reader, once.
func answer(op *readOp) {
	if !op.answered {
		op.answered = true
		close(op.done)
	}
}

// batchError reports err, the batch's, to a read, as its context's error if that has ended.
func batchError(ctx context.Context, err error) error {
	return ctxError(ctx, err)
}

// bufferRows reads a streamed result to its end into a bufRaw and gives its connection back: a read
// handed to a reader that may have gone (its context ended) must not hold a connection.
func bufferRows(rows RawRows, err error) (RawRows, error) {
	pr, ok := rows.(*pgRaw)
	if err != nil || !ok {
		return rows, err
	}
	defer pr.Close()
	r := &bufRaw{}
	r.init(pr.tm, pr.fds)
	for pr.Next() {
		r.appendRow(pr.vals)
	}
	if err := pr.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *bufRaw) appendRow(vals [][]byte) {
	for _, v := range vals {
		if v == nil {
			r.cells = append(r.cells, cell{off: -1})
			continue
		}
		r.cells = append(r.cells, cell{off: int32(len(r.slab)), n: int32(len(v))})
		r.slab = append(r.slab, v...)
	}
}

// readAll copies a result's rows out of pgx's buffer, which the next result reuses.
func readAll(tm *pgtype.Map, rr *pgconn.ResultReader) (*bufRaw, error) {
	r := &bufRaw{}
	r.init(tm, rr.FieldDescriptions())
	// Room for a lookup's row, so that most reads allocate their buffers once.
	r.cells = make([]cell, 0, 2*len(r.fds))
	r.slab = make([]byte, 0, 512)
	for rr.NextRow() {
		r.appendRow(rr.Values())
	}
	if _, err := rr.Close(); err != nil {
		return nil, err
	}
	return r, nil
}

// connStmts are the statements the batcher prepared on one connection, by SQL. They are kept apart
// from pgx's own statement cache (unexported), and bounded: past maxConnStmts, all of them are
// deallocated and preparing starts over.
type connStmts struct {
	sds map[string]*pgconn.StatementDescription
}

const maxConnStmts = 256

// stmtsOf returns the statements prepared on pc. The entry goes when pc is garbage collected (its
// connection closed and dropped by database/sql): the map holds it weakly.
func (b *readBatcher) stmtsOf(pc *pgx.Conn) *connStmts {
	wp := weak.Make(pc)
	b.stmtsMu.Lock()
	defer b.stmtsMu.Unlock()
	cs := b.stmts[wp]
	if cs == nil {
		cs = &connStmts{sds: map[string]*pgconn.StatementDescription{}}
		b.stmts[wp] = cs
		runtime.AddCleanup(pc, func(wp weak.Pointer[pgx.Conn]) {
			b.stmtsMu.Lock()
			delete(b.stmts, wp)
			b.stmtsMu.Unlock()
		}, wp)
	}
	return cs
}

// prepare returns each read's statement description, preparing those the connection lacks (one round
// trip each, once per connection). A statement that fails to prepare (a syntax error) is that read's
// error. Only this batch's runner uses pc's entry, so it needs no lock of its own.
func (b *readBatcher) prepare(ctx context.Context, pc *pgx.Conn, cs *connStmts, ops []*readOp) ([]*pgconn.StatementDescription, error) {
	sds := make([]*pgconn.StatementDescription, len(ops))
	for i, op := range ops {
		if sd := cs.sds[op.q]; sd != nil {
			sds[i] = sd
			continue
		}
		if len(cs.sds) >= maxConnStmts {
			var dealloc strings.Builder
			for _, sd := range cs.sds {
				dealloc.WriteString("DEALLOCATE " + sd.Name + ";")
			}
			if err := pc.PgConn().Exec(ctx, dealloc.String()).Close(); err != nil {
				return nil, err
			}
			clear(cs.sds)
		}
		// Named by a counter of the DB, not of the batcher or the connection: a batcher replaced by
		// SetReadPipelines leaves its statements on the connections.
		name := "gh_read_" + strconv.FormatInt(b.db.readStmtSeq.Add(1), 10)
		sd, err := pc.PgConn().Prepare(ctx, name, op.q, nil)
		if err != nil {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				return nil, err // the connection failed
			}
			op.err = err
			continue
		}
		cs.sds[op.q] = sd
		sds[i] = sd
	}
	return sds, nil
}

type cell struct{ off, n int32 }

// bufRaw is a read's rows copied out of a pipeline.
type bufRaw struct {
	pgCols
	slab  []byte
	cells []cell
	row   int // rows read so far
}

func (r *bufRaw) Next() bool {
	n := len(r.fds)
	if n == 0 || (r.row+1)*n > len(r.cells) {
		r.vals = nil
		return false
	}
	if r.vals == nil {
		r.vals = make([][]byte, n)
	}
	r.buf = r.buf[:0]
	for i, c := range r.cells[r.row*n : (r.row+1)*n] {
		if c.off < 0 {
			r.vals[i] = nil
		} else {
			r.vals[i] = r.slab[c.off : c.off+c.n : c.off+c.n]
		}
	}
	r.row++
	return true
}

func (r *bufRaw) Err() error   { return nil }
func (r *bufRaw) Close() error { r.vals, r.row = nil, len(r.cells); return nil }
