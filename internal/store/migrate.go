package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Migration is one schema step. Steps are append-only: never edit one that has shipped. Versions are
// unique; each missing one is applied in slice order, so migrations added on parallel branches with
// interleaved numbers are all applied.
type Migration struct {
	Version  int
	Name     string
	SQLite   string
	Postgres string
}

// migrations is Gatehouse's own schema history. Domain packages add theirs here, in order.
var migrations = []Migration{
	{
		Version:  1,
		Name:     "meta",
		SQLite:   `CREATE TABLE gatehouse_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
		Postgres: `CREATE TABLE gatehouse_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	},
	{
		// Catalogue of the app's tables (package table). name is the lower-cased table name; options
		// is a JSON object of table options and permissions.
		Version: 2,
		Name:    "tables catalogue",
		SQLite: `CREATE TABLE gatehouse_tables (name TEXT PRIMARY KEY, display_name TEXT NOT NULL, sql_name TEXT NOT NULL UNIQUE,
	id_type TEXT NOT NULL, options TEXT NOT NULL, source TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE gatehouse_columns (table_name TEXT NOT NULL REFERENCES gatehouse_tables(name) ON DELETE CASCADE, name TEXT NOT NULL,
	display_name TEXT NOT NULL, sql_name TEXT NOT NULL, type TEXT NOT NULL, PRIMARY KEY (table_name, name))`,
		Postgres: `CREATE TABLE gatehouse_tables (name TEXT PRIMARY KEY, display_name TEXT NOT NULL, sql_name TEXT NOT NULL UNIQUE,
	id_type TEXT NOT NULL, options TEXT NOT NULL, source TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE gatehouse_columns (table_name TEXT NOT NULL REFERENCES gatehouse_tables(name) ON DELETE CASCADE, name TEXT NOT NULL,
	display_name TEXT NOT NULL, sql_name TEXT NOT NULL, type TEXT NOT NULL, PRIMARY KEY (table_name, name))`,
	},
	{
		// Users and their linked provider identities, refresh tokens, user-level revocations and consumed
		// login states (packages user and login). Times are Unix milliseconds. An identity is keyed by
		// (issuer, subject), never by email; tokens holds the provider tokens sealed with AES-GCM (empty
		// unless keeping them is configured). revocations.not_before is the per-user cut-off that every
		// instance polls into memory.
		Version: 10,
		Name:    "users and identities",
		SQLite: `CREATE TABLE gatehouse_users (id TEXT PRIMARY KEY, provider TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_login_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE gatehouse_identities (issuer TEXT NOT NULL, subject TEXT NOT NULL, provider TEXT NOT NULL,
	user_id TEXT NOT NULL REFERENCES gatehouse_users(id) ON DELETE CASCADE, claims TEXT NOT NULL, tokens TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (issuer, subject));
CREATE INDEX gatehouse_identities_user ON gatehouse_identities (user_id);
CREATE TABLE gatehouse_refresh_tokens (token_hash TEXT PRIMARY KEY, family TEXT NOT NULL, user_id TEXT NOT NULL,
	audience TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, family_expires_at INTEGER NOT NULL,
	used_at INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX gatehouse_refresh_tokens_family ON gatehouse_refresh_tokens (family);
CREATE INDEX gatehouse_refresh_tokens_user ON gatehouse_refresh_tokens (user_id);
CREATE TABLE gatehouse_revocations (user_id TEXT PRIMARY KEY, not_before INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX gatehouse_revocations_updated ON gatehouse_revocations (updated_at);
CREATE TABLE gatehouse_login_states (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE INDEX gatehouse_login_states_expires ON gatehouse_login_states (expires_at)`,
		Postgres: `CREATE TABLE gatehouse_users (id TEXT PRIMARY KEY, provider TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, last_login_at BIGINT NOT NULL DEFAULT 0);
CREATE TABLE gatehouse_identities (issuer TEXT NOT NULL, subject TEXT NOT NULL, provider TEXT NOT NULL,
	user_id TEXT NOT NULL REFERENCES gatehouse_users(id) ON DELETE CASCADE, claims TEXT NOT NULL, tokens TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (issuer, subject));
CREATE INDEX gatehouse_identities_user ON gatehouse_identities (user_id);
CREATE TABLE gatehouse_refresh_tokens (token_hash TEXT PRIMARY KEY, family TEXT NOT NULL, user_id TEXT NOT NULL,
	audience TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, family_expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX gatehouse_refresh_tokens_family ON gatehouse_refresh_tokens (family);
CREATE INDEX gatehouse_refresh_tokens_user ON gatehouse_refresh_tokens (user_id);
CREATE TABLE gatehouse_revocations (user_id TEXT PRIMARY KEY, not_before BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX gatehouse_revocations_updated ON gatehouse_revocations (updated_at);
CREATE TABLE gatehouse_login_states (id TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
CREATE INDEX gatehouse_login_states_expires ON gatehouse_login_states (expires_at)`,
	},
	{
		// Built-in email/password accounts (package account). Times are Unix milliseconds. email_key is
		// the lower-cased normalized address (unique); password_stamp changes whenever the password is
		// set, and emailed reset links are bound to it; user_id links the users directory.
		Version: 20,
		Name:    "accounts",
		SQLite: `CREATE TABLE gatehouse_accounts (id TEXT PRIMARY KEY, email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL, password_stamp TEXT NOT NULL, email_verified INTEGER NOT NULL DEFAULT 0,
	disabled INTEGER NOT NULL DEFAULT 0, legacy_user_id TEXT UNIQUE, user_id TEXT, created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL, last_login_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE gatehouse_account_tokens (token_hash TEXT PRIMARY KEY, purpose TEXT NOT NULL,
	account_id TEXT NOT NULL REFERENCES gatehouse_accounts(id) ON DELETE CASCADE, binding TEXT NOT NULL,
	expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX gatehouse_account_tokens_account ON gatehouse_account_tokens (account_id);
CREATE TABLE gatehouse_account_throttle (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, window_start INTEGER NOT NULL,
	window_count INTEGER NOT NULL, blocked_until INTEGER NOT NULL, last_at INTEGER NOT NULL)`,
		Postgres: `CREATE TABLE gatehouse_accounts (id TEXT PRIMARY KEY, email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL, password_stamp TEXT NOT NULL, email_verified INTEGER NOT NULL DEFAULT 0,
	disabled INTEGER NOT NULL DEFAULT 0, legacy_user_id TEXT UNIQUE, user_id TEXT, created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL, last_login_at BIGINT NOT NULL DEFAULT 0);
CREATE TABLE gatehouse_account_tokens (token_hash TEXT PRIMARY KEY, purpose TEXT NOT NULL,
	account_id TEXT NOT NULL REFERENCES gatehouse_accounts(id) ON DELETE CASCADE, binding TEXT NOT NULL,
	expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX gatehouse_account_tokens_account ON gatehouse_account_tokens (account_id);
CREATE TABLE gatehouse_account_throttle (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, window_start BIGINT NOT NULL,
	window_count INTEGER NOT NULL, blocked_until BIGINT NOT NULL, last_at BIGINT NOT NULL)`,
	},
	{
		// Scheduled-job leases (package script): with several instances on one database, the instance
		// holding a job's unexpired lease is the only one running it. expires_at is Unix milliseconds.
		Version:  30,
		Name:     "job leases",
		SQLite:   `CREATE TABLE gatehouse_job_leases (job TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL)`,
		Postgres: `CREATE TABLE gatehouse_job_leases (job TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
	},
	{
		// Data import from a live Zumo backend (package importer): per (source, table), the high-water
		// mark of the rows copied so far, as the (updatedAt, id) key of the last row written. updated_at
		// is the source's own timestamp text; last_id is the id as JSON (a string or a number). Written
		// in the same transaction as the rows it covers. Times are Unix milliseconds.
		Version: 60,
		Name:    "import state",
		SQLite: `CREATE TABLE gatehouse_import_state (source TEXT NOT NULL, table_name TEXT NOT NULL, updated_at TEXT NOT NULL,
	last_id TEXT NOT NULL, rows INTEGER NOT NULL, finished_at INTEGER NOT NULL DEFAULT 0, changed_at INTEGER NOT NULL,
	PRIMARY KEY (source, table_name))`,
		Postgres: `CREATE TABLE gatehouse_import_state (source TEXT NOT NULL, table_name TEXT NOT NULL, updated_at TEXT NOT NULL,
	last_id TEXT NOT NULL, rows BIGINT NOT NULL, finished_at BIGINT NOT NULL DEFAULT 0, changed_at BIGINT NOT NULL,
	PRIMARY KEY (source, table_name))`,
	},
}

// Migrations returns the schema history (for tests and `gatehouse version`).
func Migrations() []Migration { return append([]Migration(nil), migrations...) }

// SchemaVersion is the version the binary expects.
func SchemaVersion() int { return migrations[len(migrations)-1].Version }

// advisoryLockID serialises migrations across instances sharing a PostgreSQL database.
const advisoryLockID = 0x6761746568 // "gateh"

func (db *DB) migrate(ctx context.Context) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	if db.Dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, advisoryLockID); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, advisoryLockID) //nolint:errcheck
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS gatehouse_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	// Each step reads the applied version inside its own write transaction (BEGIN IMMEDIATE on SQLite,
	// the advisory lock on PostgreSQL), so processes starting together never apply a step twice.
	for {
		done, err := db.migrateStep(ctx, conn)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func (db *DB) migrateStep(ctx context.Context, conn *sql.Conn) (done bool, err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM gatehouse_migrations`)
	if err != nil {
		return false, fmt.Errorf("store: migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return false, fmt.Errorf("store: migrate: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("store: migrate: %w", err)
	}
	known := map[int]bool{}
	var next *Migration
	for i := range migrations {
		known[migrations[i].Version] = true
		if next == nil && !applied[migrations[i].Version] {
			next = &migrations[i]
		}
	}
	for v := range applied {
		if !known[v] {
			return false, fmt.Errorf("store: the database has migration %d, which this binary does not know: upgrade Gatehouse", v)
		}
	}
	if next == nil {
		return true, tx.Commit()
	}
	stmt := next.SQLite
	if db.Dialect == Postgres {
		stmt = next.Postgres
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return false, fmt.Errorf("store: migrate %d (%s): %w", next.Version, next.Name, err)
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES (?, ?, ?)`), next.Version, next.Name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return false, fmt.Errorf("store: migrate %d: %w", next.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: migrate %d: %w", next.Version, err)
	}
	return false, nil
}

// AppliedVersion returns the highest applied migration.
func (db *DB) AppliedVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM gatehouse_migrations`).Scan(&v)
	return int(v.Int64), err
}
