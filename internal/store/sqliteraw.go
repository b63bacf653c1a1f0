package store

// The in-place SQLite reader behind (*DB).QueryRaw.
//
// Why not the driver: modernc.org/sqlite (the driver behind database/sql here) boxes every column of
// every row into a driver.Value, copies every string and blob out of SQLite's memory into a new Go
// allocation, allocates a row set, column-name and declared-type slices per query, and starts a
// goroutine per query to watch its context; database/sql adds its own boxing on top and has no row
// path without it. The driver also opens every connection SQLITE_OPEN_FULLMUTEX, so every
// sqlite3_column_* call takes a mutex. None of that is changeable from outside the driver. So reads
// whose rows are rendered in place go through the same SQLite engine (modernc.org/sqlite/lib, the
// transpiled SQLite the driver itself calls, with modernc.org/libc) on connections of their own:
// NOMUTEX (a connection is used by one goroutine at a time, which the pool guarantees), statements
// prepared once per connection, columns read where SQLite keeps them.
//
// It must stay the same engine: a second SQLite (another transpilation, a cgo build) in the process
// would keep its own POSIX lock bookkeeping for the same file, and closing one engine's descriptor
// drops the other's locks, which corrupts the database under concurrent writes.
//
// The calling conventions are the driver's (conn.go, sqlite.go in modernc.org/sqlite): every call
// takes the connection's *libc.TLS, which is not safe for concurrent use (hence one per connection,
// and a fresh one for sqlite3_interrupt from another goroutine); strings passed to SQLite are copied
// into C memory (libc.Xmalloc) first, because Go memory may move (stacks) while transpiled code holds
// a uintptr to it; callbacks are plain top-level Go functions turned into C function pointers
// (cFuncPointer), with their state found through the pointer argument SQLite passes back.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/odata"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteMaxConns is the size of each SQLite pool: database/sql's and the in-place readers'.
const sqliteMaxConns = 8

// stmtCacheSize bounds each reader connection's prepared statements. Table reads have few distinct
// shapes (a page query per table and $filter/$orderby/$select shape); a bound keeps a client that
// sends endless distinct filters from growing memory without limit.
const stmtCacheSize = 256

// SQLiteError is an error SQLite returned on an in-place read: its extended result code and message.
type SQLiteError struct {
	Code int // extended result code; Code&0xff is the primary one (sqlite3.SQLITE_TOOBIG, …)
	Msg  string
}

func (e *SQLiteError) Error() string { return fmt.Sprintf("sqlite: %s (%d)", e.Msg, e.Code) }

// SQLiteCode returns the extended SQLite result code err carries, from the driver (*sqlite.Error) or
// from the in-place reader (*SQLiteError); ok is false when err is not a SQLite error.
func SQLiteCode(err error) (code int, ok bool) {
	var se *SQLiteError
	if errors.As(err, &se) {
		return se.Code, true
	}
	var de *sqlite.Error
	if errors.As(err, &de) {
		return de.Code(), true
	}
	return 0, false
}

// errReadersClosed is returned by QueryRaw after DB.Close.
var errReadersClosed = errors.New("store: database is closed")

// readers is the pool of in-place reader connections. Connections are opened on first use (most
// processes that open a DB never read a table page) and kept until DB.Close. Idle ones are reused
// last-in first-out, so that a light load keeps reusing one warm connection (its statement cache)
// instead of cycling through all of them.
type readers struct {
	uri       string
	maxLength int
	ext       *odata.SQLiteExtensions

	mu     sync.Mutex
	size   int
	sem    chan struct{} // a token per connection that may be in use; made on first use
	idle   []*rconn
	closed bool
}

func newReaders(uri string, maxLength int, ext *odata.SQLiteExtensions) *readers {
	return &readers{uri: uri, maxLength: maxLength, ext: ext, size: sqliteMaxConns}
}

// resize sets the pool size; it applies only before the first read (DB.Configure runs at start).
func (p *readers) resize(n int) {
	p.mu.Lock()
	if p.sem == nil && n > 0 {
		p.size = n
	}
	p.mu.Unlock()
}

func (p *readers) tokens() (chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errReadersClosed
	}
	if p.sem == nil {
		p.sem = make(chan struct{}, p.size)
	}
	return p.sem, nil
}

// acquire takes an idle connection or opens one, waiting while all are in use.
func (p *readers) acquire(ctx context.Context) (*rconn, error) {
	sem, err := p.tokens()
	if err != nil {
		return nil, err
	}
	select {
	case sem <- struct{}{}:
	default:
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("store: wait for a SQLite reader: %w", ctx.Err())
		}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-sem
		return nil, errReadersClosed
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	c, err := openReader(p.uri, p.maxLength, p.ext)
	if err != nil {
		<-sem
		return nil, err
	}
	return c, nil
}

// release returns a connection whose statement has been reset; after close it is closed instead.
func (p *readers) release(c *rconn) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
	} else {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
	}
	<-p.sem
}

// close closes the idle connections; those in use are closed when their rows are.
func (p *readers) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// C memory layout of rconn.mem.
const (
	memStmt = 0  // sqlite3_stmt* out-parameter of prepare
	memTail = 8  // const char* tail out-parameter of prepare
	memStop = 16 // int32: set when the context of the read in progress is done
	memSize = 24
)

// rconn is one reader connection. It is used by one goroutine at a time (the pool's), except for
// stopRead, which runs on the context's goroutine and touches only the stop flag and sqlite3_interrupt.
type rconn struct {
	tls     *libc.TLS
	db      uintptr // sqlite3*
	mem     uintptr // C memory, see memStmt …
	scratch uintptr // C buffer for binding text and blobs (copied by SQLite: SQLITE_TRANSIENT)
	scrCap  int

	stmts      map[string]*cstmt
	head, tail *cstmt // most and least recently used

	ctx    context.Context
	stop   func() bool
	fired  chan struct{} // stopRead has finished (cap 1)
	onDone func()        // c.stopRead, bound once so that a read does not allocate it
}

type cstmt struct {
	sql        string
	p          uintptr // sqlite3_stmt*
	nparams    int
	bound      []boundArg // what each parameter is bound to now (bindings outlive a read, see bind)
	prev, next *cstmt
}

// boundArg remembers a parameter's binding, so that an equal value is not bound again.
type boundArg struct {
	kind uint8 // argUnknown …
	n    int64 // argInt: the value; argFloat: its bits
	b    []byte
}

const (
	argUnknown = iota
	argNull
	argInt
	argFloat
	argText
	argBlob
)

// maxRememberedArg bounds the text or blob remembered per parameter.
const maxRememberedArg = 256

func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// cFuncPointer turns a top-level function into the C function pointer transpiled SQLite calls, as the
// driver does (sqlite.go): a func value is a pointer to a static closure record holding the code
// pointer, which is what ccgo's generated code dereferences. Only for top-level functions.
func cFuncPointer[T any](f T) uintptr { return *(*uintptr)(unsafe.Pointer(&struct{ f T }{f})) }

func openReader(uri string, maxLength int, ext *odata.SQLiteExtensions) (_ *rconn, err error) {
	c := &rconn{tls: libc.NewTLS(), fired: make(chan struct{}, 1), stmts: make(map[string]*cstmt)}
	c.onDone = c.stopRead
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if c.mem = libc.Xmalloc(c.tls, memSize); c.mem == 0 {
		return nil, errors.New("store: SQLite reader: out of memory")
	}
	*(*[memSize]byte)(ptr(c.mem)) = [memSize]byte{}
	name, err := libc.CString(uri)
	if err != nil {
		return nil, fmt.Errorf("store: SQLite reader: %w", err)
	}
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, c.mem+memStmt,
		sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_NOMUTEX|sqlite3.SQLITE_OPEN_URI, 0)
	libc.Xfree(c.tls, name)
	c.db = *(*uintptr)(ptr(c.mem + memStmt)) // set even on failure, to be closed
	if rc != sqlite3.SQLITE_OK {
		return nil, fmt.Errorf("store: open SQLite reader: %w", c.errorf(rc))
	}
	sqlite3.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	sqlite3.Xsqlite3_limit(c.tls, c.db, sqlite3.SQLITE_LIMIT_LENGTH, int32(min(maxLength, math.MaxInt32)))
	// query_only: these connections never write, whatever SQL reaches them.
	if err := c.exec("PRAGMA query_only=1"); err != nil {
		return nil, fmt.Errorf("store: SQLite reader: %w", err)
	}
	// Instead of busy_timeout (10 s, as the driver's connections): the same bound, but the wait
	// also ends when the read's context is done (sqlite3_busy_timeout's sleeps do not look at it).
	sqlite3.Xsqlite3_busy_handler(c.tls, c.db, cFuncPointer(busyWait), c.mem+memStop)
	// A sqlite3_interrupt that arrives before the statement's VM starts is cleared by SQLite when it
	// does; the progress handler sees the stop flag every 1000 VM instructions, so such a read still
	// ends (the driver does the same, canceledProgress).
	sqlite3.Xsqlite3_progress_handler(c.tls, c.db, 1000, cFuncPointer(stopRequested), c.mem+memStop)
	if err := c.register(ext); err != nil {
		return nil, err
	}
	return c, nil
}

// register installs the collation and case-mapping functions the driver's connections have
// (odata.SQLite.Register, through the driver's registry): ORDER BY and tolower/toupper must give the
// same answers here. The C callbacks find the implementation from the pointer argument: an index
// into ext, which registerSQLite built once per process and never changes.
func (c *rconn) register(ext *odata.SQLiteExtensions) error {
	if ext == nil {
		return nil
	}
	if ext.Collation != "" {
		z, err := libc.CString(ext.Collation)
		if err != nil {
			return err
		}
		rc := sqlite3.Xsqlite3_create_collation_v2(c.tls, c.db, z, sqlite3.SQLITE_UTF8, 0, cFuncPointer(collateTrampoline), 0)
		libc.Xfree(c.tls, z)
		if rc != sqlite3.SQLITE_OK {
			return fmt.Errorf("store: SQLite reader: collation %s: %w", ext.Collation, c.errorf(rc))
		}
	}
	for i, f := range ext.Functions {
		z, err := libc.CString(f.Name)
		if err != nil {
			return err
		}
		rc := sqlite3.Xsqlite3_create_function_v2(c.tls, c.db, z, 1, sqlite3.SQLITE_UTF8|sqlite3.SQLITE_DETERMINISTIC,
			uintptr(i), cFuncPointer(functionTrampoline), 0, 0, 0)
		libc.Xfree(c.tls, z)
		if rc != sqlite3.SQLITE_OK {
			return fmt.Errorf("store: SQLite reader: function %s: %w", f.Name, c.errorf(rc))
		}
	}
	return nil
}

func (c *rconn) exec(sql string) error {
	z, err := libc.CString(sql)
	if err != nil {
		return err
	}
	defer libc.Xfree(c.tls, z)
	if rc := sqlite3.Xsqlite3_exec(c.tls, c.db, z, 0, 0, 0); rc != sqlite3.SQLITE_OK {
		return c.errorf(rc)
	}
	return nil
}

// errorf is SQLite's error for rc, with the connection's message when it is about rc.
func (c *rconn) errorf(rc int32) error {
	msg := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	if c.db != 0 {
		if ext := sqlite3.Xsqlite3_extended_errcode(c.tls, c.db); ext&0xff == rc&0xff {
			msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
			rc = ext
		}
	}
	return &SQLiteError{Code: int(rc), Msg: msg}
}

// close finalizes the statements and closes the connection, freeing its C memory.
func (c *rconn) close() {
	for _, s := range c.stmts {
		sqlite3.Xsqlite3_finalize(c.tls, s.p)
	}
	c.stmts, c.head, c.tail = nil, nil, nil
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	if c.scratch != 0 {
		libc.Xfree(c.tls, c.scratch)
		c.scratch = 0
	}
	if c.mem != 0 {
		libc.Xfree(c.tls, c.mem)
		c.mem = 0
	}
	c.tls.Close()
}

// prepared returns the cached statement for sql, preparing it on a miss (and finalizing the least
// recently used one beyond the bound).
func (c *rconn) prepared(sql string) (*cstmt, error) {
	if s := c.stmts[sql]; s != nil {
		c.touch(s)
		return s, nil
	}
	n := len(sql)
	z := libc.Xmalloc(c.tls, types.Size_t(n+1))
	if z == 0 {
		return nil, errors.New("store: SQLite reader: out of memory")
	}
	defer libc.Xfree(c.tls, z)
	buf := unsafe.Slice((*byte)(ptr(z)), n+1)
	copy(buf, sql)
	buf[n] = 0
	rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, z, int32(n+1), sqlite3.SQLITE_PREPARE_PERSISTENT, c.mem+memStmt, c.mem+memTail)
	p := *(*uintptr)(ptr(c.mem + memStmt))
	if rc != sqlite3.SQLITE_OK {
		if p != 0 {
			sqlite3.Xsqlite3_finalize(c.tls, p)
		}
		return nil, c.errorf(rc)
	}
	if p == 0 {
		return nil, errors.New("store: QueryRaw: no SQL statement")
	}
	if rest := sql[min(n, int(*(*uintptr)(ptr(c.mem + memTail))-z)):]; strings.Trim(rest, " \t\r\n;") != "" {
		sqlite3.Xsqlite3_finalize(c.tls, p)
		return nil, errors.New("store: QueryRaw takes one SQL statement")
	}
	np := int(sqlite3.Xsqlite3_bind_parameter_count(c.tls, p))
	s := &cstmt{sql: sql, p: p, nparams: np, bound: make([]boundArg, np)}
	c.stmts[sql] = s
	c.push(s)
	if len(c.stmts) > stmtCacheSize {
		old := c.tail
		c.unlink(old)
		delete(c.stmts, old.sql)
		sqlite3.Xsqlite3_finalize(c.tls, old.p)
	}
	return s, nil
}

func (c *rconn) push(s *cstmt) {
	s.prev, s.next = nil, c.head
	if c.head != nil {
		c.head.prev = s
	}
	c.head = s
	if c.tail == nil {
		c.tail = s
	}
}

func (c *rconn) unlink(s *cstmt) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		c.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		c.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

func (c *rconn) touch(s *cstmt) {
	if c.head != s {
		c.unlink(s)
		c.push(s)
	}
}

// bind binds args to s's parameters. Text and blobs are copied into the connection's C scratch
// buffer and from there by SQLite (SQLITE_TRANSIENT), so binding allocates nothing on the Go heap.
//
// A parameter already bound to an equal value is left alone, and Close does not clear bindings:
// this SQLite (STAT4, and LIMIT ? since 3.47) marks a statement whose plan depended on a parameter's
// value to be re-prepared whenever that parameter is bound again or bindings are cleared, even to
// the same value (sqlite3_stmt_status REPREPARE counted one re-preparation per read of a table page,
// "… ORDER BY id LIMIT ?", a third of its CPU). Page reads repeat their LIMIT, OFFSET and mostly
// their other values, so they keep their prepared plan.
func (c *rconn) bind(s *cstmt, args []any) error {
	if len(args) != s.nparams {
		return fmt.Errorf("store: QueryRaw: %d arguments for %d parameters", len(args), s.nparams)
	}
	for i, a := range args {
		n := int32(i + 1)
		b := &s.bound[i]
		kind, iv := uint8(argUnknown), int64(0)
		var text string
		switch v := a.(type) {
		case nil:
			kind = argNull
		case int64:
			kind, iv = argInt, v
		case int:
			kind, iv = argInt, int64(v)
		case bool:
			kind, iv = argInt, int64(BoolInt(v))
		case time.Time:
			// Gatehouse stores instants as Unix milliseconds on SQLite (the driver would bind a
			// time.Time as text, which never compares equal to a stored one).
			kind, iv = argInt, v.UnixMilli()
		case float64:
			kind, iv = argFloat, int64(math.Float64bits(v))
		case string:
			kind, text = argText, v
		case []byte:
			if v == nil {
				kind = argNull // as database/sql binds a nil []byte
				break
			}
			kind, text = argBlob, unsafe.String(unsafe.SliceData(v), len(v))
		default:
			return fmt.Errorf("store: QueryRaw: unsupported argument type %T", a)
		}
		if b.kind == kind && b.n == iv && (kind != argText && kind != argBlob || string(b.b) == text) {
			continue
		}
		b.kind = argUnknown
		var rc int32
		switch kind {
		case argNull:
			rc = sqlite3.Xsqlite3_bind_null(c.tls, s.p, n)
		case argInt:
			rc = sqlite3.Xsqlite3_bind_int64(c.tls, s.p, n, iv)
		case argFloat:
			rc = sqlite3.Xsqlite3_bind_double(c.tls, s.p, n, math.Float64frombits(uint64(iv)))
		case argText, argBlob:
			p, err := c.copyIn(text)
			if err != nil {
				return err
			}
			if kind == argText {
				rc = sqlite3.Xsqlite3_bind_text64(c.tls, s.p, n, p, uint64(len(text)), sqlite3.SQLITE_TRANSIENT, sqlite3.SQLITE_UTF8)
			} else {
				rc = sqlite3.Xsqlite3_bind_blob64(c.tls, s.p, n, p, uint64(len(text)), sqlite3.SQLITE_TRANSIENT)
			}
		}
		if rc != sqlite3.SQLITE_OK {
			return c.errorf(rc)
		}
		if (kind == argText || kind == argBlob) && len(text) > maxRememberedArg {
			continue // not remembered: bound again next time
		}
		b.kind, b.n, b.b = kind, iv, append(b.b[:0], text...)
	}
	return nil
}

// copyIn copies v into the scratch buffer (grown as needed) and returns its address.
func (c *rconn) copyIn(v string) (uintptr, error) {
	if c.scrCap < len(v) || c.scratch == 0 {
		size := max(len(v), 256, 2*c.scrCap)
		p := libc.Xmalloc(c.tls, types.Size_t(size))
		if p == 0 {
			return 0, fmt.Errorf("store: QueryRaw: cannot allocate %d bytes", size)
		}
		if c.scratch != 0 {
			libc.Xfree(c.tls, c.scratch)
		}
		c.scratch, c.scrCap = p, size
	}
	copy(unsafe.Slice((*byte)(ptr(c.scratch)), c.scrCap), v)
	return c.scratch, nil
}

func (c *rconn) stopFlag() *int32 { return (*int32)(ptr(c.mem + memStop)) }

// watch arranges for the read to stop when ctx is done. A context that can never be done costs
// nothing; otherwise context.AfterFunc registers c.onDone (bound once per connection).
func (c *rconn) watch(ctx context.Context) {
	atomic.StoreInt32(c.stopFlag(), 0)
	c.ctx = ctx
	if ctx.Done() != nil {
		c.stop = context.AfterFunc(ctx, c.onDone)
	}
}

// unwatch ends watch; once it returns, stopRead is not running and will not run for this read.
func (c *rconn) unwatch() {
	if c.stop != nil && !c.stop() {
		<-c.fired // it was started: wait until it has finished with the connection
	}
	c.stop, c.ctx = nil, nil
	atomic.StoreInt32(c.stopFlag(), 0)
}

// stopRead runs on its own goroutine when the read's context is done.
func (c *rconn) stopRead() {
	atomic.StoreInt32(c.stopFlag(), 1)
	// Not c.tls: it belongs to the goroutine running the statement, and a libc.TLS is not safe
	// for concurrent use (the driver does the same, conn.interrupt).
	tls := libc.NewTLS()
	sqlite3.Xsqlite3_interrupt(tls, c.db)
	tls.Close()
	c.fired <- struct{}{}
}

// stopRequested is the progress handler: non-zero interrupts the statement.
func stopRequested(_ *libc.TLS, flag uintptr) int32 {
	return atomic.LoadInt32((*int32)(ptr(flag)))
}

// busyWait is the busy handler: 1 ms sleeps for the first 10 retries, then 10 ms, up to about 10 s
// in all, and no further retry once the read's context is done.
func busyWait(_ *libc.TLS, flag uintptr, count int32) int32 {
	if atomic.LoadInt32((*int32)(ptr(flag))) != 0 || count >= 1010 {
		return 0
	}
	if count < 10 {
		time.Sleep(time.Millisecond)
	} else {
		time.Sleep(10 * time.Millisecond)
	}
	return 1
}

// sqliteExt is the collation and functions registerSQLite installed in the driver (set once, under
// sqliteOnce, before the first connection opens; read-only afterwards). The C callbacks below reach
// it this way because a C function pointer cannot carry a Go closure; like the driver's own
// registry, it is process-wide state imposed by the C calling convention.
var sqliteExt *odata.SQLiteExtensions

// collateTrampoline is the collation's C callback. The strings alias SQLite's memory for the call
// only, which Compare allows (it retains nothing).
func collateTrampoline(_ *libc.TLS, _ uintptr, n1 int32, z1 uintptr, n2 int32, z2 uintptr) (r int32) {
	defer func() {
		if recover() != nil {
			r = 0
		}
	}()
	switch v := sqliteExt.Compare(cString(z1, n1), cString(z2, n2)); {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

func cString(p uintptr, n int32) string {
	if p == 0 || n <= 0 {
		return ""
	}
	return unsafe.String((*byte)(ptr(p)), int(n))
}

// functionTrampoline is the C callback of the case-mapping functions; the user data is the index in
// sqliteExt.Functions. As odata's driver adapter: text and blobs map to text, other values pass.
func functionTrampoline(tls *libc.TLS, ctx uintptr, argc int32, argv uintptr) {
	defer func() {
		if recover() != nil {
			sqlite3.Xsqlite3_result_error_code(tls, ctx, sqlite3.SQLITE_ERROR)
		}
	}()
	f := sqliteExt.Functions[sqlite3.Xsqlite3_user_data(tls, ctx)]
	arg := *(*uintptr)(ptr(argv))
	switch sqlite3.Xsqlite3_value_type(tls, arg) {
	case sqlite3.SQLITE_TEXT, sqlite3.SQLITE_BLOB:
	default:
		sqlite3.Xsqlite3_result_value(tls, ctx, arg)
		return
	}
	z := sqlite3.Xsqlite3_value_text(tls, arg)
	in := cString(z, sqlite3.Xsqlite3_value_bytes(tls, arg))
	out := f.Map(in)
	if len(out) == len(in) && (len(in) == 0 || unsafe.StringData(out) == unsafe.StringData(in)) {
		// Unchanged (strings.ToLower returns its argument then): the argument as text.
		sqlite3.Xsqlite3_result_text64(tls, ctx, z, uint64(len(in)), sqlite3.SQLITE_TRANSIENT, sqlite3.SQLITE_UTF8)
		return
	}
	p := libc.Xmalloc(tls, types.Size_t(max(len(out), 1)))
	if p == 0 {
		sqlite3.Xsqlite3_result_error_nomem(tls, ctx)
		return
	}
	copy(unsafe.Slice((*byte)(ptr(p)), len(out)), out)
	sqlite3.Xsqlite3_result_text64(tls, ctx, p, uint64(len(out)), sqlite3.SQLITE_TRANSIENT, sqlite3.SQLITE_UTF8)
	libc.Xfree(tls, p)
}

// queryRaw runs query on a reader connection. The first row is stepped here, so that an error in
// the statement (a value over the length limit, …) is QueryRaw's, as with database/sql.
func (p *readers) queryRaw(ctx context.Context, query string, args []any) (RawRows, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.prepared(query)
	if err != nil {
		p.release(c)
		return nil, err
	}
	r := &sqliteRows{p: p, c: c, s: s.p, ctx: ctx}
	if err := c.bind(s, args); err != nil {
		r.Close()
		return nil, err
	}
	c.watch(ctx)
	r.step()
	if r.err != nil {
		err := r.err
		r.Close()
		return nil, err
	}
	r.first = true
	return r, nil
}

// sqliteRows reads the current row of a statement where SQLite keeps it.
type sqliteRows struct {
	p     *readers
	c     *rconn // nil once closed
	s     uintptr
	ctx   context.Context
	row   bool // positioned on a row
	first bool // the row stepped by queryRaw is not yet returned by Next
	err   error
	num   []byte // Text of a REAL, formatted here
}

func (r *sqliteRows) step() {
	if atomic.LoadInt32(r.c.stopFlag()) != 0 {
		r.row, r.err = false, r.ctxErr(nil)
		return
	}
	switch rc := sqlite3.Xsqlite3_step(r.c.tls, r.s); rc {
	case sqlite3.SQLITE_ROW:
		r.row = true
	case sqlite3.SQLITE_DONE:
		r.row = false
	default:
		err := r.c.errorf(rc)
		r.row = false
		if rc&0xff == sqlite3.SQLITE_INTERRUPT || atomic.LoadInt32(r.c.stopFlag()) != 0 {
			err = r.ctxErr(err)
		}
		r.err = err
	}
}

func (r *sqliteRows) ctxErr(cause error) error {
	err := r.ctx.Err()
	if err == nil {
		err = context.Canceled // interrupted for no other reason than the watcher's
	}
	if cause != nil {
		return fmt.Errorf("store: read stopped: %w (%w)", err, cause)
	}
	return fmt.Errorf("store: read stopped: %w", err)
}

func (r *sqliteRows) Next() bool {
	if r.c == nil || r.err != nil {
		return false
	}
	if r.first {
		r.first = false
		return r.row
	}
	if !r.row {
		return false
	}
	r.step()
	return r.row
}

func (r *sqliteRows) Err() error { return r.err }

// Close resets the statement (keeping it prepared, and its bindings, for the next read) and puts the
// connection back.
func (r *sqliteRows) Close() error {
	c := r.c
	if c == nil {
		return nil
	}
	r.c, r.row = nil, false
	c.unwatch()
	sqlite3.Xsqlite3_reset(c.tls, r.s)
	r.p.release(c)
	return nil
}

func (r *sqliteRows) typ(i int) int32 {
	if r.c == nil || !r.row {
		return sqlite3.SQLITE_NULL
	}
	return sqlite3.Xsqlite3_column_type(r.c.tls, r.s, int32(i))
}

func (r *sqliteRows) Null(i int) bool { return r.typ(i) == sqlite3.SQLITE_NULL }

func (r *sqliteRows) Int64(i int) int64 {
	switch r.typ(i) {
	case sqlite3.SQLITE_INTEGER:
		return sqlite3.Xsqlite3_column_int64(r.c.tls, r.s, int32(i))
	case sqlite3.SQLITE_FLOAT:
		return int64(sqlite3.Xsqlite3_column_double(r.c.tls, r.s, int32(i)))
	}
	return 0
}

func (r *sqliteRows) Float64(i int) float64 {
	switch r.typ(i) {
	case sqlite3.SQLITE_FLOAT:
		return sqlite3.Xsqlite3_column_double(r.c.tls, r.s, int32(i))
	case sqlite3.SQLITE_INTEGER:
		return float64(sqlite3.Xsqlite3_column_int64(r.c.tls, r.s, int32(i)))
	}
	return 0
}

// Text returns the column's bytes where SQLite keeps them (valid until Next or Close). A REAL is
// formatted as Go formats a float64 (as database/sql's conversion does), not as SQLite would.
func (r *sqliteRows) Text(i int) []byte {
	var p uintptr
	switch r.typ(i) {
	case sqlite3.SQLITE_NULL:
		return nil
	case sqlite3.SQLITE_FLOAT:
		r.num = strconv.AppendFloat(r.num[:0], sqlite3.Xsqlite3_column_double(r.c.tls, r.s, int32(i)), 'g', -1, 64)
		return r.num
	case sqlite3.SQLITE_BLOB:
		p = sqlite3.Xsqlite3_column_blob(r.c.tls, r.s, int32(i))
	default:
		p = sqlite3.Xsqlite3_column_text(r.c.tls, r.s, int32(i))
	}
	n := sqlite3.Xsqlite3_column_bytes(r.c.tls, r.s, int32(i))
	if p == 0 || n <= 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(ptr(p)), int(n))
}

func (r *sqliteRows) Bool(i int) bool {
	switch r.typ(i) {
	case sqlite3.SQLITE_INTEGER:
		return sqlite3.Xsqlite3_column_int64(r.c.tls, r.s, int32(i)) != 0
	case sqlite3.SQLITE_FLOAT:
		return sqlite3.Xsqlite3_column_double(r.c.tls, r.s, int32(i)) != 0
	}
	return false
}

func (r *sqliteRows) Time(i int) (time.Time, error) {
	switch t := r.typ(i); t {
	case sqlite3.SQLITE_INTEGER:
		return time.UnixMilli(sqlite3.Xsqlite3_column_int64(r.c.tls, r.s, int32(i))).UTC(), nil
	case sqlite3.SQLITE_FLOAT:
		return time.UnixMilli(int64(sqlite3.Xsqlite3_column_double(r.c.tls, r.s, int32(i)))).UTC(), nil
	default:
		return time.Time{}, fmt.Errorf("store: unexpected date value (SQLite type %d)", t)
	}
}
