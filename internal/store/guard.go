package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// Guard is what one statement written by an app script may do, enforced by the database engine
// itself, beneath the T-SQL translator (internal/tsql): should the translator ever print SQL that
// names a table or function it should not, the engine refuses it.
type Guard struct {
	// Tables are the physical app tables (gh_...) the statement may read or write.
	Tables []string
	// Functions are the lower-case SQL functions the statement may call (SQLite).
	Functions []string
	// ReadOnly refuses writes (SELECT statements).
	ReadOnly bool
	// Timeout bounds the statement (0: only the context's deadline).
	Timeout time.Duration
	// Role is the PostgreSQL role the statement runs as ("": the connection's own role). Gatehouse
	// grants it SELECT, INSERT, UPDATE and DELETE on each app table it is used with.
	Role string
}

// Querier runs statements; fn passed to Guarded gets one bound to the guarded connection.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// GuardError is a statement the engine guard refused.
type GuardError struct{ What string }

func (e *GuardError) Error() string {
	return "the database refused " + e.What + " (outside the app's tables and functions)"
}

var roleRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidRole reports whether name can be a script SQL role (a plain PostgreSQL identifier).
func ValidRole(name string) bool { return roleRE.MatchString(name) }

// Guarded runs fn on a connection of its own under g. On SQLite an authorizer (sqlite3_set_authorizer)
// is installed on that connection for the duration: every table the compiled statement touches must
// be one of g.Tables in the main database, every function one of g.Functions, and nothing else
// (PRAGMA, ATTACH, transactions, schema changes, recursive CTEs) is allowed. On PostgreSQL fn runs
// in a transaction whose settings are all SET LOCAL (statement_timeout, the role), and afterwards
// the connection's session state is reset (RESET ALL, the role and session authorization) before it
// returns to the pool; a connection that cannot be reset is closed instead.
func (db *DB) Guarded(ctx context.Context, g Guard, fn func(ctx context.Context, q Querier) error) error {
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	if db.Dialect == Postgres {
		return db.guardedPostgres(ctx, g, fn)
	}
	return db.guardedSQLite(ctx, g, fn)
}

// authorizer is the SQLite policy of one guarded statement. The callback runs on the goroutine
// preparing the statement; the mutex only makes the recorded refusal safe to read afterwards.
type authorizer struct {
	tables, funcs map[string]bool
	readOnly      bool
	mu            sync.Mutex
	denied        string
}

func (a *authorizer) deny(what string) sqlite.AuthorizerReturnCode {
	a.mu.Lock()
	if a.denied == "" {
		a.denied = what
	}
	a.mu.Unlock()
	return sqlite.AuthorizerDeny
}

func (a *authorizer) check(action sqlite.AuthorizerActionCode, arg1, arg2, dbName, _ string) sqlite.AuthorizerReturnCode {
	table := func(verb string) sqlite.AuthorizerReturnCode {
		// SQLite names no database for some reads (count(*) over a whole table); temp and attached
		// databases cannot exist on a guarded statement (CREATE and ATTACH are denied).
		if (dbName != "main" && dbName != "") || !a.tables[arg1] || !strings.HasPrefix(arg1, "gh_") {
			return a.deny(verb + " of table " + strconv.Quote(arg1))
		}
		return sqlite.AuthorizerOK
	}
	switch action {
	case sqlite.AuthSelect:
		return sqlite.AuthorizerOK
	case sqlite.AuthRead:
		return table("read")
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		if a.readOnly {
			return a.deny("a write to table " + strconv.Quote(arg1) + " in a query")
		}
		return table("a write")
	case sqlite.AuthFunction:
		if !a.funcs[strings.ToLower(arg2)] {
			return a.deny("function " + strconv.Quote(arg2))
		}
		return sqlite.AuthorizerOK
	}
	return a.deny("operation " + strconv.Itoa(int(action)))
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// guardedSQLite installs the authorizer through database/sql's Conn.Raw on a connection taken out of
// the pool for this statement, and removes it before the connection goes back (closing the connection
// instead if removal fails). modernc.org/sqlite exposes sqlite3_set_authorizer as
// AuthorizerRegisterer; the authorizer runs while SQLite compiles the statement, so it sees every
// table and function the compiled program uses, whatever text produced it.
func (db *DB) guardedSQLite(ctx context.Context, g Guard, fn func(ctx context.Context, q Querier) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	a := &authorizer{tables: set(g.Tables), funcs: set(g.Functions), readOnly: g.ReadOnly}
	if err := conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("store: the SQLite driver does not support an authorizer")
		}
		return r.RegisterAuthorizer(a.check)
	}); err != nil {
		return fmt.Errorf("store: install the SQL guard: %w", err)
	}
	defer conn.Raw(func(dc any) error { //nolint:errcheck // a failure closes the connection
		if err := dc.(sqlite.AuthorizerRegisterer).RegisterAuthorizer(nil); err != nil {
			return driver.ErrBadConn
		}
		return nil
	})
	err = fn(ctx, conn)
	a.mu.Lock()
	denied := a.denied
	a.mu.Unlock()
	if denied != "" {
		return &GuardError{What: denied}
	}
	return err
}

func (db *DB) guardedPostgres(ctx context.Context, g Guard, fn func(ctx context.Context, q Querier) error) error {
	if g.Role != "" {
		if !ValidRole(g.Role) {
			return fmt.Errorf("store: invalid script SQL role %q", g.Role)
		}
		if err := db.grant(ctx, g.Role, g.Tables); err != nil {
			return err
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	clean := false
	defer func() {
		if !clean {
			conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // closes the connection
		}
	}()
	err = runLocal(ctx, conn, g, fn)
	// Whatever the statement did to the session (set_config(..., false) commits with the
	// transaction), none of it may reach the next user of this connection. After a COMMIT the
	// ROLLBACK only draws a notice.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, rerr := conn.ExecContext(rctx, "ROLLBACK; RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL"); rerr == nil {
		clean = true
	}
	return err
}

// runLocal runs fn inside a transaction opened by hand, so that BEGIN and the SET LOCAL settings
// travel in one round trip (simple protocol); guardedPostgres ends it.
func runLocal(ctx context.Context, conn *sql.Conn, g Guard, fn func(ctx context.Context, q Querier) error) error {
	timeout := "0"
	if d, ok := ctx.Deadline(); ok {
		ms := time.Until(d).Milliseconds()
		if ms < 1 {
			return context.DeadlineExceeded
		}
		timeout = strconv.FormatInt(ms, 10)
	}
	// SET LOCAL statements rather than set_config(), so that an operator can revoke set_config from
	// PUBLIC (docs/security.md) without breaking Gatehouse. All of them end with the transaction.
	q := "BEGIN"
	if g.ReadOnly {
		q += " READ ONLY"
	}
	q += "; SET LOCAL statement_timeout = " + timeout + "; SET LOCAL standard_conforming_strings = on"
	if g.Role != "" {
		q += `; SET LOCAL ROLE "` + g.Role + `"`
	}
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("store: prepare the script SQL transaction: %w", err)
	}
	if err := fn(ctx, conn); err != nil {
		return err
	}
	if g.Role != "" {
		// The connection's login role may take itself back (set_config('role', ...)); a statement
		// that did is refused and its rows and writes discarded. Revoking set_config from PUBLIC
		// closes this at the source (docs/security.md).
		var cur string
		if err := conn.QueryRowContext(ctx, `SELECT current_user`).Scan(&cur); err != nil {
			return err
		}
		if cur != g.Role {
			return &GuardError{What: "a change of role"}
		}
	}
	if g.ReadOnly {
		return nil // rolled back by guardedPostgres
	}
	_, err := conn.ExecContext(ctx, "COMMIT")
	return err
}

// grant gives role what script SQL needs on the app tables, once per table and process (GRANT is
// idempotent; two instances granting at once may collide, so a failure is retried once).
func (db *DB) grant(ctx context.Context, role string, tables []string) error {
	for _, t := range tables {
		key := role + "\x00" + t
		if _, ok := db.grants.Load(key); ok {
			continue
		}
		if !strings.HasPrefix(t, "gh_") {
			return fmt.Errorf("store: refusing to grant on %q: not an app table", t)
		}
		q := `GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE ` + quoteIdent(t) + ` TO "` + role + `"`
		_, err := db.ExecContext(ctx, q)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			_, err = db.ExecContext(ctx, q)
		}
		if err != nil {
			return fmt.Errorf("store: grant script SQL role %s access to %s: %w", role, t, err)
		}
		db.grants.Store(key, true)
	}
	return nil
}
