// Package store opens Gatehouse's database — SQLite embedded in the data directory by default,
// PostgreSQL for several instances — and keeps its schema current with versioned migrations run at
// start. Domain packages (tables, users, sessions) build their own small stores on the *DB it returns.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/odata"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DefaultSQLiteMaxLength is the default Options.SQLiteMaxLength: 64 MiB.
const DefaultSQLiteMaxLength = 64 << 20

// Dialect names the SQL flavour.
type Dialect string

// Dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open database.
type DB struct {
	*sql.DB
	Dialect Dialect
	// Location is a printable description (file path or host/db, never a password).
	Location string
	// Transport says how PostgreSQL is reached (a Unix socket, TCP with or without verified TLS);
	// empty on SQLite. serve logs it, and its Warning (transport.go).
	Transport Transport
	// grants remembers the app tables the script SQL role was granted (guard.go).
	grants sync.Map

	// Newer lists migrations the database has and this binary does not know, all additive (a newer
	// release migrated the database; this one runs on it, see Migration.Additive).
	Newer []Applied

	migrations  []Migration
	ckpt        *checkpointer // SQLite: the background checkpoints (checkpoint.go)
	writer      chan struct{} // SQLite: held by this process's queued writer (LockWriter)
	readers     *readers      // SQLite: the in-place readers behind QueryRaw (sqliteraw.go)
	reads       *readBatcher  // PostgreSQL: pipelined reads (raw_batch.go); nil: off
	readStmtSeq atomic.Int64  // PostgreSQL: names the statements the read batchers prepare
}

// SchemaPolicy is what opening a database does about its schema.
type SchemaPolicy int

// Schema policies.
const (
	// RequireCurrent refuses a database with pending migrations (or none at all), naming
	// `gatehouse migrate up`; nothing is migrated. Every command but serve and migrate up.
	RequireCurrent SchemaPolicy = iota
	// Migrate applies the pending migrations (serve with auto_migrate, migrate up).
	Migrate
	// AnySchema checks nothing and migrates nothing (migrate status, backup).
	AnySchema
)

// Options tune OpenWith.
type Options struct {
	Schema SchemaPolicy
	// CreateDataDir lets the default SQLite database create the data directory; without it a missing
	// data directory is an error naming --data (admin commands never create one by accident).
	CreateDataDir bool
	// CreateDatabase lets a SQLite database file be created (implied by Migrate); otherwise a missing
	// file is an error instead of an empty database left behind.
	CreateDatabase bool
	// Migrations replaces Gatehouse's schema history (tests simulate other releases).
	Migrations []Migration
	// SQLiteMaxLength is SQLite's limit on the length of one string, blob or row in bytes
	// (SQLITE_LIMIT_LENGTH), set on every connection: a statement that would make a longer value
	// fails with SQLITE_TOOBIG instead of allocating it. SQLite's own default is 1 GB. Zero: the
	// default.
	SQLiteMaxLength int
	// PostgresConn, when set, adjusts the configuration of every PostgreSQL connection before it is
	// made (tests wrap DialFunc to count round trips).
	PostgresConn func(*pgx.ConnConfig)
}

// ErrNoDataDir is returned when the data directory does not exist and may not be created.
var ErrNoDataDir = errors.New("store: the data directory does not exist")

// Open connects to the database named by dsn ("" = SQLite file gatehouse.db in dataDir), creating the
// data directory if needed, and runs the migrations (what serve does).
func Open(ctx context.Context, dsn, dataDir string) (*DB, error) {
	return OpenWith(ctx, dsn, dataDir, Options{Schema: Migrate, CreateDataDir: true})
}

// OpenWith connects to the database named by dsn ("" = SQLite file gatehouse.db in dataDir) and
// treats its schema as o says. A database whose newer migrations this binary does not know is
// accepted only when they are all additive (DB.Newer lists them).
func OpenWith(ctx context.Context, dsn, dataDir string, o Options) (*DB, error) {
	if o.SQLiteMaxLength <= 0 {
		o.SQLiteMaxLength = DefaultSQLiteMaxLength
	}
	db, err := open(dsn, dataDir, o)
	if err != nil {
		return nil, err
	}
	db.migrations = o.Migrations
	if db.migrations == nil {
		db.migrations = migrations
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", db.Location, err)
	}
	if err := db.checkSchema(ctx, o.Schema); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) checkSchema(ctx context.Context, p SchemaPolicy) error {
	switch p {
	case AnySchema:
		return nil
	case Migrate:
		if err := db.migrate(ctx); err != nil {
			return err
		}
	}
	st, err := db.Status(ctx)
	if err != nil {
		return err
	}
	if err := st.Compatible(); err != nil {
		return err
	}
	if len(st.Pending) > 0 {
		return &BehindError{Location: db.Location, Status: st}
	}
	db.Newer = st.Unknown
	return nil
}

func open(dsn, dataDir string, o Options) (*DB, error) {
	if dsn == "" {
		if _, err := os.Stat(dataDir); errors.Is(err, os.ErrNotExist) && !o.CreateDataDir {
			return nil, fmt.Errorf("%w: %s (pass --data DIR, or set GATEHOUSE_DATA, naming the server's data directory; only 'gatehouse serve' creates one)", ErrNoDataDir, dataDir)
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
		return openSQLite(filepath.Join(dataDir, "gatehouse.db"), o)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: database URL: %w", redact(err, dsn))
	}
	switch u.Scheme {
	case "sqlite":
		p := u.Path
		if u.Host != "" { // sqlite://relative/path
			p = u.Host + u.Path
		}
		if p == "" {
			return nil, errors.New("store: sqlite URL needs a path, e.g. sqlite:///var/lib/gatehouse/gatehouse.db")
		}
		return openSQLite(p, o)
	case "postgres", "postgresql":
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("store: %w", redact(err, dsn))
		}
		// Statements are prepared once per connection and kept by SQL text (pgx's statement cache,
		// QueryExecModeCacheStatement): a request then costs one round trip (Bind, Execute, Sync).
		cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
		if o.PostgresConn != nil {
			o.PostgresConn(cfg)
		}
		db := stdlib.OpenDB(*cfg)
		// Every open connection stays idle in the pool: a connection closed after a burst is a new
		// PostgreSQL backend process (a fork, authentication, an empty statement cache) on the next
		// one, which under load cost more than the queries themselves.
		db.SetMaxOpenConns(pgMaxConns)
		db.SetMaxIdleConns(pgMaxConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
		loc := u.Host + u.Path
		pg := &DB{DB: db, Dialect: Postgres, Location: "postgres://" + loc, Transport: postgresTransport(cfg)}
		pg.SetReadPipelines(DefaultReadPipelines)
		return pg, nil
	}
	return nil, fmt.Errorf("store: unsupported database URL scheme %q (sqlite or postgres)", u.Scheme)
}

// pgMaxConns bounds the PostgreSQL connections of one instance.
const pgMaxConns = 32

// openSQLite opens a SQLite file in WAL mode with full synchronous writes (a committed write survives
// a crash or power loss), a busy timeout instead of immediate SQLITE_BUSY, foreign keys on, and
// BEGIN IMMEDIATE transactions so writers queue instead of deadlocking on lock upgrades. Checkpoints
// run in the background, off the write path (checkpoint.go).
func openSQLite(path string, opt Options) (*DB, error) {
	create := opt.Schema == Migrate || opt.CreateDatabase
	if err := registerSQLite(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && !create {
		// Only a migrating open creates the database: anything else would leave an empty file behind.
		return nil, fmt.Errorf("store: no Gatehouse database at %s (check --data or --database; 'gatehouse migrate up' or 'gatehouse serve' creates it)", path)
	}
	// Create the file ourselves so that it (and the -wal and -shm files SQLite derives from it) is
	// readable by the owner only.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	} else {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)",
		fmt.Sprintf("wal_autocheckpoint(%d)", autoCheckpointPages)} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	// SQLite decodes a file: URI: '#' would end the path (so "/tmp/x#1/db" opened "/tmp/x"), '?' start
	// the query, and %xx be decoded; escape them so the file is the one named.
	esc := strings.NewReplacer("%", "%25", "#", "%23", "?", "%3f").Replace(path)
	base, err := sqlite.NewConnector("file:" + esc + "?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db := sql.OpenDB(&limitConnector{base: base, maxLength: opt.SQLiteMaxLength})
	// Readers run in parallel under WAL; SQLite allows one writer at a time and busy_timeout queues them.
	db.SetMaxOpenConns(sqliteMaxConns)
	db.SetMaxIdleConns(sqliteMaxConns)
	return &DB{DB: db, Dialect: SQLite, Location: path, ckpt: startCheckpointer(db, path), writer: make(chan struct{}, 1),
		// The driver's _pragma and _txlock parameters are its own, not SQLite's: the readers open
		// the bare file URI and set up their connections themselves.
		readers: newReaders("file:"+esc, opt.SQLiteMaxLength, sqliteExt)}, nil
}

// limitConnector sets SQLite's run-time limits on every connection it opens. There is no pragma for
// SQLITE_LIMIT_LENGTH, and the driver exposes sqlite3_limit only as sqlite.Limit on a *sql.Conn, so
// the new connection is lent to a single-use sql.DB for that one call (see setLimit).
type limitConnector struct {
	base      driver.Connector
	maxLength int
}

func (c *limitConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := setLimit(ctx, conn, sqlite3.SQLITE_LIMIT_LENGTH, c.maxLength); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: set SQLite length limit: %w", err)
	}
	return conn, nil
}

func (c *limitConnector) Driver() driver.Driver { return c.base.Driver() }

// setLimit calls sqlite3_limit on a driver connection through sqlite.Limit, which reaches the
// driver's connection behind any wrapper with an Unwrap method.
func setLimit(ctx context.Context, conn driver.Conn, id, value int) error {
	tmp := sql.OpenDB(lend{conn})
	defer tmp.Close() // closes only the lent wrapper
	c, err := tmp.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = sqlite.Limit(c, id, value)
	return err
}

// lend is a connector that hands out one connection without ever closing it.
type lend struct{ conn driver.Conn }

func (l lend) Connect(context.Context) (driver.Conn, error) { return lent{l.conn}, nil }
func (l lend) Driver() driver.Driver                        { return nil }

type lent struct{ driver.Conn }

func (lent) Close() error          { return nil }
func (l lent) Unwrap() driver.Conn { return l.Conn }

// The modernc.org/sqlite driver keeps collations and functions in a process-wide registry, and they
// apply to connections opened after registration; so this is registered once per process, before the
// first connection. It is the one piece of package-level state in Gatehouse, imposed by the driver.
var (
	sqliteOnce sync.Once
	sqliteErr  error
)

func registerSQLite() error {
	sqliteOnce.Do(func() {
		d := odata.SQLite{}
		ext, err := d.Extensions()
		if err == nil {
			err = d.Register()
		}
		sqliteExt, sqliteErr = &ext, err
	})
	if sqliteErr != nil {
		return fmt.Errorf("store: %w", sqliteErr)
	}
	return nil
}

// redact removes a password from errors that quote the URL.
func redact(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	if p, ok := u.User.Password(); ok && p != "" {
		return errors.New(strings.ReplaceAll(err.Error(), p, "****"))
	}
	return err
}

// Ping checks the database within a short time, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// Placeholder returns the n-th (1-based) bind placeholder.
func (db *DB) Placeholder(n int) string {
	if db.Dialect == Postgres {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// Rebind turns a query written with ? placeholders into the dialect's.
func (db *DB) Rebind(q string) string {
	if db.Dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Millis is how Gatehouse's own tables store a time: Unix milliseconds, 0 for the zero time.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMillis is the time Millis stored (UTC; the zero time for 0).
func FromMillis(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// BoolInt is how Gatehouse's own tables store a flag (an integer column on both databases).
func BoolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Analyze gathers the planner's statistics for tables after a bulk load, on PostgreSQL: its planner
// costs plans by them, and until autovacuum's next pass (a minute, or longer on a busy server) it
// guesses, e.g. reading all of a user's rows and sorting them instead of the first page in index
// order. SQLite's planner does not need them for Gatehouse's indexed reads and keeps its plans: a
// no-op there.
func (db *DB) Analyze(ctx context.Context, tables ...string) error {
	if db.Dialect != Postgres || len(tables) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("ANALYZE ")
	for i, t := range tables {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(t))
	}
	if _, err := db.ExecContext(ctx, b.String()); err != nil {
		return fmt.Errorf("store: analyze: %w", err)
	}
	return nil
}

// quoteIdent quotes an SQL identifier (the same on both databases).
func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
