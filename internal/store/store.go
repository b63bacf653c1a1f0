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

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"; guard.go uses its authorizer
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
	// grants remembers the app tables the script SQL role was granted (guard.go).
	grants sync.Map

	// Newer lists migrations the database has and this binary does not know, all additive (a newer
	// release migrated the database; this one runs on it, see Migration.Additive).
	Newer []Applied

	migrations []Migration
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
		return openSQLite(filepath.Join(dataDir, "gatehouse.db"), o.Schema == Migrate || o.CreateDatabase)
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
		return openSQLite(p, o.Schema == Migrate || o.CreateDatabase)
	case "postgres", "postgresql":
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: %w", redact(err, dsn))
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
		loc := u.Host + u.Path
		return &DB{DB: db, Dialect: Postgres, Location: "postgres://" + loc}, nil
	}
	return nil, fmt.Errorf("store: unsupported database URL scheme %q (sqlite or postgres)", u.Scheme)
}

// openSQLite opens a SQLite file in WAL mode with full synchronous writes (a committed write survives
// a crash or power loss), a busy timeout instead of immediate SQLITE_BUSY, foreign keys on, and
// BEGIN IMMEDIATE transactions so writers queue instead of deadlocking on lock upgrades.
func openSQLite(path string, create bool) (*DB, error) {
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
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	// The path is percent-encoded: SQLite reads "file:" names as URIs, where a raw '#' or '?' would end
	// the path and open (and create) a different file.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
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
