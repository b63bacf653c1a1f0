// Package store opens Gatehouse's database — SQLite embedded in the data directory by default,
// PostgreSQL for several instances — and keeps its schema current with versioned migrations run at
// start. Domain packages (tables, users, sessions) build their own small stores on the *DB it returns.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/odata"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers "sqlite"
)

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
}

// Options adjust how Open connects.
type Options struct {
	// PostgresConn, when set, adjusts the configuration of every PostgreSQL connection before it is
	// made (tests wrap DialFunc to count round trips).
	PostgresConn func(*pgx.ConnConfig)
}

// Open connects to the database named by dsn ("" = SQLite file gatehouse.db in dataDir) and runs
// the migrations.
func Open(ctx context.Context, dsn, dataDir string) (*DB, error) {
	return OpenWith(ctx, dsn, dataDir, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn, dataDir string, o Options) (*DB, error) {
	db, err := open(dsn, dataDir, o)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", db.Location, err)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func open(dsn, dataDir string, o Options) (*DB, error) {
	if dsn == "" {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data directory: %w", err)
		}
		return openSQLite(filepath.Join(dataDir, "gatehouse.db"))
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
		return openSQLite(p)
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
		return &DB{DB: db, Dialect: Postgres, Location: "postgres://" + loc}, nil
	}
	return nil, fmt.Errorf("store: unsupported database URL scheme %q (sqlite or postgres)", u.Scheme)
}

// pgMaxConns bounds the PostgreSQL connections of one instance.
const pgMaxConns = 32

// openSQLite opens a SQLite file in WAL mode with full synchronous writes (a committed write survives
// a crash or power loss), a busy timeout instead of immediate SQLITE_BUSY, foreign keys on, and
// BEGIN IMMEDIATE transactions so writers queue instead of deadlocking on lock upgrades.
func openSQLite(path string) (*DB, error) {
	if err := registerSQLite(); err != nil {
		return nil, err
	}
	// Create the file ourselves so that it (and the -wal and -shm files SQLite derives from it) is
	// readable by the owner only.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	} else {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Readers run in parallel under WAL; SQLite allows one writer at a time and busy_timeout queues them.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return &DB{DB: db, Dialect: SQLite, Location: path}, nil
}

// The modernc.org/sqlite driver keeps collations and functions in a process-wide registry, and they
// apply to connections opened after registration; so this is registered once per process, before the
// first connection. It is the one piece of package-level state in Gatehouse, imposed by the driver.
var (
	sqliteOnce sync.Once
	sqliteErr  error
)

func registerSQLite() error {
	sqliteOnce.Do(func() { sqliteErr = odata.SQLite{}.Register() })
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
