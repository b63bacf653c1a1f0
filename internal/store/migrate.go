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
//
// Additive marks a step the previous release keeps working with once it is applied: new tables, new
// indexes, new columns that are nullable or have a default, wider constraints. Renaming or dropping
// anything, changing a type, or a constraint older code would violate is not additive. The flag is
// recorded in gatehouse_migrations, so an older binary that finds only additive migrations it does not
// know still starts (rolling upgrades); one non-additive unknown migration makes it refuse. The zero
// value (not additive) is the safe default.
type Migration struct {
	Version  int
	Name     string
	Additive bool
	SQLite   string
	Postgres string
}

// migrations is Gatehouse's own schema history. Domain packages add theirs here, in order.
var migrations = []Migration{
	{
		Version:  1,
		Name:     "meta",
		Additive: true,
		SQLite:   `CREATE TABLE gatehouse_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
		Postgres: `CREATE TABLE gatehouse_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	},
	{
		// Catalogue of the app's tables (package table). name is the lower-cased table name; options
		// is a JSON object of table options and permissions.
		Version:  2,
		Name:     "tables catalogue",
		Additive: true,
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
		Version:  10,
		Name:     "users and identities",
		Additive: true,
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
		Version:  20,
		Name:     "accounts",
		Additive: true,
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
		Additive: true,
		SQLite:   `CREATE TABLE gatehouse_job_leases (job TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL)`,
		Postgres: `CREATE TABLE gatehouse_job_leases (job TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
	},
	{
		// Job run history and slot claims (package jobs). A scheduled run's slot is the start of its
		// schedule-aligned time bucket (Unix milliseconds); the unique (job, slot) index is what makes a
		// slot run once across the cluster (manual runs have a NULL slot, which never conflicts). Times are
		// Unix milliseconds; deadline is when a run still marked running counts as abandoned.
		Version:  35,
		Name:     "job runs",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_job_runs (id TEXT PRIMARY KEY, job TEXT NOT NULL, slot INTEGER, kind TEXT NOT NULL,
	instance TEXT NOT NULL, started_at INTEGER NOT NULL, finished_at INTEGER, deadline INTEGER NOT NULL,
	outcome TEXT NOT NULL, error TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX gatehouse_job_runs_slot ON gatehouse_job_runs (job, slot);
CREATE INDEX gatehouse_job_runs_started ON gatehouse_job_runs (job, started_at)`,
		Postgres: `CREATE TABLE gatehouse_job_runs (id TEXT PRIMARY KEY, job TEXT NOT NULL, slot BIGINT, kind TEXT NOT NULL,
	instance TEXT NOT NULL, started_at BIGINT NOT NULL, finished_at BIGINT, deadline BIGINT NOT NULL,
	outcome TEXT NOT NULL, error TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX gatehouse_job_runs_slot ON gatehouse_job_runs (job, slot);
CREATE INDEX gatehouse_job_runs_started ON gatehouse_job_runs (job, started_at)`,
	},
	{
		// The cluster key ring (package keyring): one row; doc is the public part (fingerprints, states,
		// times), sealed the secrets under the key-encryption key named by kek_id ("" = fingerprints
		// only), bound to doc and version. instances are the running servers: heartbeat_at and the
		// ring version each has loaded (its acknowledgement of a rotation). Times are Unix milliseconds.
		Version:  50,
		Name:     "key ring and instances",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_key_ring (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, doc TEXT NOT NULL,
	kek_id TEXT NOT NULL, sealed TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE gatehouse_instances (id TEXT PRIMARY KEY, host TEXT NOT NULL, started_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL,
	ring_version INTEGER NOT NULL, config_keys TEXT NOT NULL)`,
		Postgres: `CREATE TABLE gatehouse_key_ring (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, doc TEXT NOT NULL,
	kek_id TEXT NOT NULL, sealed TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE gatehouse_instances (id TEXT PRIMARY KEY, host TEXT NOT NULL, started_at BIGINT NOT NULL, heartbeat_at BIGINT NOT NULL,
	ring_version BIGINT NOT NULL, config_keys TEXT NOT NULL)`,
	},
	{
		// Data import from a live Zumo backend (package importer): per (source, table), the high-water
		// mark of the rows copied so far, as the (updatedAt, id) key of the last row written. updated_at
		// is the source's own timestamp text; last_id is the id as JSON (a string or a number). Written
		// in the same transaction as the rows it covers. Times are Unix milliseconds.
		Version:  60,
		Name:     "import state",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_import_state (source TEXT NOT NULL, table_name TEXT NOT NULL, updated_at TEXT NOT NULL,
	last_id TEXT NOT NULL, rows INTEGER NOT NULL, finished_at INTEGER NOT NULL DEFAULT 0, changed_at INTEGER NOT NULL,
	PRIMARY KEY (source, table_name))`,
		Postgres: `CREATE TABLE gatehouse_import_state (source TEXT NOT NULL, table_name TEXT NOT NULL, updated_at TEXT NOT NULL,
	last_id TEXT NOT NULL, rows BIGINT NOT NULL, finished_at BIGINT NOT NULL DEFAULT 0, changed_at BIGINT NOT NULL,
	PRIMARY KEY (source, table_name))`,
	},
	{
		// Push notifications (package push). registrations are devices: v1 registrations (id chosen
		// by POST /push/registrationids) and the rows of v2 installations (one native row "i:<id>" and
		// one per template "i:<id>/<template>"); tags lists each row's tags for lookups by tag. outbox
		// holds the notifications to deliver: available_at is when a worker may claim the message (a
		// claim moves it to the lease's end, so a crashed worker's message comes back), lease the
		// claim's fencing token. Times are Unix milliseconds.
		Version:  70,
		Name:     "push registrations and outbox",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_push_registrations (id TEXT PRIMARY KEY, installation_id TEXT NOT NULL, platform TEXT NOT NULL,
	channel TEXT NOT NULL, tags TEXT NOT NULL, template_name TEXT NOT NULL, template_body TEXT NOT NULL, headers TEXT NOT NULL,
	expiry TEXT NOT NULL, user_id TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX gatehouse_push_registrations_channel ON gatehouse_push_registrations (platform, channel);
CREATE INDEX gatehouse_push_registrations_installation ON gatehouse_push_registrations (installation_id);
CREATE INDEX gatehouse_push_registrations_user ON gatehouse_push_registrations (user_id);
CREATE TABLE gatehouse_push_tags (tag TEXT NOT NULL, registration_id TEXT NOT NULL, PRIMARY KEY (tag, registration_id));
CREATE INDEX gatehouse_push_tags_registration ON gatehouse_push_tags (registration_id);
CREATE TABLE gatehouse_push_outbox (id TEXT PRIMARY KEY, platform TEXT NOT NULL, channel TEXT NOT NULL, registration_id TEXT NOT NULL,
	payload BLOB NOT NULL, headers TEXT NOT NULL, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL, available_at INTEGER NOT NULL,
	attempts INTEGER NOT NULL, lease TEXT NOT NULL, last_error TEXT NOT NULL);
CREATE INDEX gatehouse_push_outbox_available ON gatehouse_push_outbox (platform, available_at)`,
		Postgres: `CREATE TABLE gatehouse_push_registrations (id TEXT PRIMARY KEY, installation_id TEXT NOT NULL, platform TEXT NOT NULL,
	channel TEXT NOT NULL, tags TEXT NOT NULL, template_name TEXT NOT NULL, template_body TEXT NOT NULL, headers TEXT NOT NULL,
	expiry TEXT NOT NULL, user_id TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX gatehouse_push_registrations_channel ON gatehouse_push_registrations (platform, channel);
CREATE INDEX gatehouse_push_registrations_installation ON gatehouse_push_registrations (installation_id);
CREATE INDEX gatehouse_push_registrations_user ON gatehouse_push_registrations (user_id);
CREATE TABLE gatehouse_push_tags (tag TEXT NOT NULL, registration_id TEXT NOT NULL, PRIMARY KEY (tag, registration_id));
CREATE INDEX gatehouse_push_tags_registration ON gatehouse_push_tags (registration_id);
CREATE TABLE gatehouse_push_outbox (id TEXT PRIMARY KEY, platform TEXT NOT NULL, channel TEXT NOT NULL, registration_id TEXT NOT NULL,
	payload BYTEA NOT NULL, headers TEXT NOT NULL, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, available_at BIGINT NOT NULL,
	attempts INTEGER NOT NULL, lease TEXT NOT NULL, last_error TEXT NOT NULL);
CREATE INDEX gatehouse_push_outbox_available ON gatehouse_push_outbox (platform, available_at)`,
	},
	{
		// The admin console's own sign-in (package console): administrators (email_key is the
		// lower-cased address; password_hash an argon2id PHC string), their sessions (id_hash is the
		// SHA-256 of the random session id; the cookie also carries an HMAC under the cluster's master
		// key) and the one-time setup links of a fresh install (token_hash: SHA-256 of the token,
		// single use through used_at). Times are Unix milliseconds.
		Version:  80,
		Name:     "console admins and sessions",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_console_admins (id TEXT PRIMARY KEY, email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE gatehouse_console_sessions (id_hash TEXT PRIMARY KEY, admin_id TEXT NOT NULL REFERENCES gatehouse_console_admins(id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, remote TEXT NOT NULL, agent TEXT NOT NULL);
CREATE INDEX gatehouse_console_sessions_admin ON gatehouse_console_sessions (admin_id);
CREATE TABLE gatehouse_console_setup (token_hash TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
	used_at INTEGER NOT NULL DEFAULT 0)`,
		Postgres: `CREATE TABLE gatehouse_console_admins (id TEXT PRIMARY KEY, email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE gatehouse_console_sessions (id_hash TEXT PRIMARY KEY, admin_id TEXT NOT NULL REFERENCES gatehouse_console_admins(id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL, seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, remote TEXT NOT NULL, agent TEXT NOT NULL);
CREATE INDEX gatehouse_console_sessions_admin ON gatehouse_console_sessions (admin_id);
CREATE TABLE gatehouse_console_setup (token_hash TEXT PRIMARY KEY, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL DEFAULT 0)`,
	},
	{
		// The audit trail (package audit): one row per change made through the console, the admin API
		// or the CLI. at is Unix microseconds; before_state and after_state are redacted JSON (NULL when
		// not recorded). Append-only: a trigger refuses UPDATE; the only DELETE is the optional retention.
		Version:  85,
		Name:     "audit trail",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, via TEXT NOT NULL,
	action TEXT NOT NULL, target TEXT NOT NULL, remote TEXT NOT NULL, request_id TEXT NOT NULL, before_state TEXT, after_state TEXT);
CREATE INDEX gatehouse_audit_at ON gatehouse_audit (at);
CREATE INDEX gatehouse_audit_actor ON gatehouse_audit (actor, id);
CREATE INDEX gatehouse_audit_action ON gatehouse_audit (action, id);
CREATE INDEX gatehouse_audit_target ON gatehouse_audit (target, id);
CREATE TRIGGER gatehouse_audit_append_only BEFORE UPDATE ON gatehouse_audit
BEGIN SELECT RAISE(ABORT, 'gatehouse_audit is append-only'); END`,
		Postgres: `CREATE TABLE gatehouse_audit (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL,
	via TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, remote TEXT NOT NULL, request_id TEXT NOT NULL, before_state TEXT, after_state TEXT);
CREATE INDEX gatehouse_audit_at ON gatehouse_audit (at);
CREATE INDEX gatehouse_audit_actor ON gatehouse_audit (actor, id);
CREATE INDEX gatehouse_audit_action ON gatehouse_audit (action, id);
CREATE INDEX gatehouse_audit_target ON gatehouse_audit (target, id);
CREATE FUNCTION gatehouse_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'gatehouse_audit is append-only'; END $$;
CREATE TRIGGER gatehouse_audit_append_only BEFORE UPDATE ON gatehouse_audit FOR EACH ROW EXECUTE FUNCTION gatehouse_audit_append_only()`,
	},
	{
		// Activity (package activity): recent request and script events of every instance in a bounded
		// ring (pruned by age and count), and per-minute, per-instance request counts with a latency
		// histogram (log-scale buckets "index:count,…") from which p99 over any window is computed.
		// at and minute are Unix milliseconds.
		Version:  86,
		Name:     "activity",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_activity (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, instance TEXT NOT NULL,
	kind TEXT NOT NULL, request_id TEXT NOT NULL, method TEXT NOT NULL, route TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
	duration_us INTEGER NOT NULL, user_id TEXT NOT NULL, bytes INTEGER NOT NULL, level TEXT NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX gatehouse_activity_at ON gatehouse_activity (at);
CREATE TABLE gatehouse_activity_minutes (minute INTEGER NOT NULL, instance TEXT NOT NULL, requests INTEGER NOT NULL,
	errors_4xx INTEGER NOT NULL, errors_5xx INTEGER NOT NULL, latency TEXT NOT NULL, PRIMARY KEY (minute, instance))`,
		Postgres: `CREATE TABLE gatehouse_activity (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at BIGINT NOT NULL, instance TEXT NOT NULL,
	kind TEXT NOT NULL, request_id TEXT NOT NULL, method TEXT NOT NULL, route TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
	duration_us BIGINT NOT NULL, user_id TEXT NOT NULL, bytes BIGINT NOT NULL, level TEXT NOT NULL, source TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX gatehouse_activity_at ON gatehouse_activity (at);
CREATE TABLE gatehouse_activity_minutes (minute BIGINT NOT NULL, instance TEXT NOT NULL, requests BIGINT NOT NULL,
	errors_4xx BIGINT NOT NULL, errors_5xx BIGINT NOT NULL, latency TEXT NOT NULL, PRIMARY KEY (minute, instance))`,
	},
	{
		// Second factors of built-in accounts (package account). totp.secret is the authenticator
		// secret sealed with AES-GCM; confirmed_at stays 0 until a first code proved the app has it;
		// last_step is the last RFC 6238 time step whose code was accepted (replay protection).
		// recovery holds SHA-256 hashes of single-use recovery codes. Times are Unix milliseconds.
		Version:  95,
		Name:     "account second factors",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_account_totp (account_id TEXT PRIMARY KEY REFERENCES gatehouse_accounts(id) ON DELETE CASCADE,
	secret TEXT NOT NULL, confirmed_at INTEGER NOT NULL DEFAULT 0, last_step INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
CREATE TABLE gatehouse_account_recovery (account_id TEXT NOT NULL REFERENCES gatehouse_accounts(id) ON DELETE CASCADE,
	code_hash TEXT NOT NULL, used_at INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, PRIMARY KEY (account_id, code_hash))`,
		Postgres: `CREATE TABLE gatehouse_account_totp (account_id TEXT PRIMARY KEY REFERENCES gatehouse_accounts(id) ON DELETE CASCADE,
	secret TEXT NOT NULL, confirmed_at BIGINT NOT NULL DEFAULT 0, last_step BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
CREATE TABLE gatehouse_account_recovery (account_id TEXT NOT NULL REFERENCES gatehouse_accounts(id) ON DELETE CASCADE,
	code_hash TEXT NOT NULL, used_at BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, PRIMARY KEY (account_id, code_hash))`,
	},
	{
		// Passkeys of built-in accounts and the WebAuthn ceremonies in flight (package account).
		// passkeys.credential is the go-webauthn credential as JSON (public key, flags, AAGUID);
		// sign_count is kept apart so that a counter that does not move forward is refused by one
		// conditional UPDATE on any instance. webauthn holds each challenge until its answer: handle is
		// the SHA-256 of the id the client got, browser the SHA-256 of the asking browser's nonce
		// cookie; rows are taken with DELETE … RETURNING (single use). Times are Unix milliseconds.
		Version:  96,
		Name:     "account passkeys",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_account_passkeys (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES gatehouse_accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL, credential TEXT NOT NULL, sign_count INTEGER NOT NULL, created_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL DEFAULT 0);
CREATE INDEX gatehouse_account_passkeys_account ON gatehouse_account_passkeys (account_id);
CREATE TABLE gatehouse_account_webauthn (handle TEXT PRIMARY KEY, kind TEXT NOT NULL, account_id TEXT NOT NULL, browser TEXT NOT NULL,
	mfa_token TEXT NOT NULL, session TEXT NOT NULL, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL)`,
		Postgres: `CREATE TABLE gatehouse_account_passkeys (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES gatehouse_accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL, credential TEXT NOT NULL, sign_count BIGINT NOT NULL, created_at BIGINT NOT NULL, last_used_at BIGINT NOT NULL DEFAULT 0);
CREATE INDEX gatehouse_account_passkeys_account ON gatehouse_account_passkeys (account_id);
CREATE TABLE gatehouse_account_webauthn (handle TEXT PRIMARY KEY, kind TEXT NOT NULL, account_id TEXT NOT NULL, browser TEXT NOT NULL,
	mfa_token TEXT NOT NULL, session TEXT NOT NULL, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL)`,
	},
	{
		// Monotonic row versions (package table): the database-wide counter every row write takes its
		// __version from, like SQL Server's rowversion. SQLite: one row, bumped in the write's own
		// transaction; PostgreSQL: a sequence shared by every instance. Rows written before keep theirs.
		Version:  100,
		Name:     "row version counter",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_row_version (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT INTO gatehouse_row_version (id, n) VALUES (1, 0)`,
		Postgres: `CREATE SEQUENCE gatehouse_row_version`,
	},
	{
		// Script edits made in the console, the admin API or the CLI (package scriptstore), laid over
		// the app folder's files by every instance. history keeps each saved source (the newest
		// MaxHistory per path); edits names the revision in force per path (path is below table/,
		// api/, scheduler/ or shared/ of the scripts folder); a revert deletes the edits row only.
		// base_sha256 is the SHA-256 of the deployed file when the edit was made ("" when there was
		// none). script_revision is the counter every change bumps in its own transaction: revisions
		// are unique, and instances poll it to notice any change. Times are Unix milliseconds.
		Version:  110,
		Name:     "script edits",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_script_history (path TEXT NOT NULL, revision INTEGER NOT NULL, source TEXT NOT NULL,
	bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, base_sha256 TEXT NOT NULL, saved_by TEXT NOT NULL, saved_at INTEGER NOT NULL,
	PRIMARY KEY (path, revision));
CREATE TABLE gatehouse_script_edits (path TEXT PRIMARY KEY, revision INTEGER NOT NULL,
	FOREIGN KEY (path, revision) REFERENCES gatehouse_script_history (path, revision));
CREATE TABLE gatehouse_script_revision (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT INTO gatehouse_script_revision (id, n) VALUES (1, 0)`,
		Postgres: `CREATE TABLE gatehouse_script_history (path TEXT NOT NULL, revision BIGINT NOT NULL, source TEXT NOT NULL,
	bytes BIGINT NOT NULL, sha256 TEXT NOT NULL, base_sha256 TEXT NOT NULL, saved_by TEXT NOT NULL, saved_at BIGINT NOT NULL,
	PRIMARY KEY (path, revision));
CREATE TABLE gatehouse_script_edits (path TEXT PRIMARY KEY, revision BIGINT NOT NULL,
	FOREIGN KEY (path, revision) REFERENCES gatehouse_script_history (path, revision));
CREATE TABLE gatehouse_script_revision (id INTEGER PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL);
INSERT INTO gatehouse_script_revision (id, n) VALUES (1, 0)`,
	},
	{
		// Job schedules set at run time (package jobs): per job, an interval (every_ms; 0 keeps the
		// configured scripts.jobs interval) and whether scheduled runs are off. A row whose every_ms is 0
		// and disabled 0 is the configured default, kept for updated_at: the schedule in force since then
		// is the one the missed-slot accounting measures against. Times are Unix milliseconds.
		Version:  120,
		Name:     "job schedules",
		Additive: true,
		SQLite: `CREATE TABLE gatehouse_job_schedules (job TEXT PRIMARY KEY, every_ms INTEGER NOT NULL DEFAULT 0,
	disabled INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL, updated_by TEXT NOT NULL)`,
		Postgres: `CREATE TABLE gatehouse_job_schedules (job TEXT PRIMARY KEY, every_ms BIGINT NOT NULL DEFAULT 0,
	disabled INTEGER NOT NULL DEFAULT 0, updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL)`,
	},
}

// Migrations returns the schema history (for tests and `gatehouse version`).
func Migrations() []Migration { return append([]Migration(nil), migrations...) }

// SchemaVersion is the version the binary expects.
func SchemaVersion() int { return migrations[len(migrations)-1].Version }

// advisoryLockID serialises migrations across instances sharing a PostgreSQL database.
const advisoryLockID = 0x6761746568 // "gateh"

// Applied is a migration recorded in the database.
type Applied struct {
	Version   int    `json:"version"`
	Name      string `json:"name"`
	Additive  bool   `json:"additive"`
	AppliedAt string `json:"appliedAt"`
}

// Status compares the database's schema with this binary's.
type Status struct {
	// Applied lists the database's migrations in version order.
	Applied []Applied `json:"applied"`
	// Pending are this binary's migrations the database lacks, in the order they would be applied.
	Pending []Migration `json:"-"`
	// Unknown are the database's migrations this binary does not know (a newer release applied them).
	Unknown []Applied `json:"unknown"`
	// Current is the highest applied version (0: empty database); Target the binary's highest.
	Current int `json:"current"`
	Target  int `json:"target"`
}

// Compatible is nil unless the database has a migration this binary does not know that is not
// additive: then this binary must not run on it.
func (st Status) Compatible() error {
	for _, a := range st.Unknown {
		if !a.Additive {
			return fmt.Errorf("store: the database has migration %d (%s), which this binary does not know and which is not backward compatible: upgrade Gatehouse (or restore a backup taken before that migration)", a.Version, a.Name)
		}
	}
	return nil
}

// BehindError is a database with pending migrations opened by a command that does not migrate.
type BehindError struct {
	Location string
	Status   Status
}

func (e *BehindError) Error() string {
	if e.Status.Current == 0 && len(e.Status.Applied) == 0 {
		return fmt.Sprintf("store: the database at %s has no Gatehouse schema yet: run 'gatehouse migrate up' (or start 'gatehouse serve') first", e.Location)
	}
	return fmt.Sprintf("store: the database at %s is behind this binary (%d migration(s) pending, first %d): run 'gatehouse migrate up' first (or 'gatehouse serve', which migrates unless auto_migrate is false)",
		e.Location, len(e.Status.Pending), e.Status.Pending[0].Version)
}

// Status reads the applied migrations and compares them with the binary's.
func (db *DB) Status(ctx context.Context) (Status, error) {
	ms := db.migrations
	if ms == nil {
		ms = migrations
	}
	st := Status{Target: ms[len(ms)-1].Version}
	applied, err := db.applied(ctx, db.DB)
	if err != nil {
		return Status{}, err
	}
	st.Applied = applied
	known := map[int]bool{}
	for _, m := range ms {
		known[m.Version] = true
	}
	have := map[int]bool{}
	for _, a := range applied {
		have[a.Version] = true
		if a.Version > st.Current {
			st.Current = a.Version
		}
		if !known[a.Version] {
			st.Unknown = append(st.Unknown, a)
		}
	}
	for _, m := range ms {
		if !have[m.Version] {
			st.Pending = append(st.Pending, m)
		}
	}
	return st, nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// applied lists the recorded migrations; none when the bookkeeping table does not exist. Databases
// migrated before the additive flag existed have no additive column: their rows count as not additive.
func (db *DB) applied(ctx context.Context, q querier) ([]Applied, error) {
	exists, additive, err := db.bookkeeping(ctx, q)
	if err != nil || !exists {
		return nil, err
	}
	col := "0"
	if additive {
		col = "additive"
	}
	rows, err := q.QueryContext(ctx, `SELECT version, name, applied_at, `+col+` FROM gatehouse_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	defer rows.Close()
	var out []Applied
	for rows.Next() {
		var a Applied
		var add int
		if err := rows.Scan(&a.Version, &a.Name, &a.AppliedAt, &add); err != nil {
			return nil, fmt.Errorf("store: read migrations: %w", err)
		}
		a.Additive = add != 0
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	return out, nil
}

// bookkeeping reports whether gatehouse_migrations exists and has the additive column.
func (db *DB) bookkeeping(ctx context.Context, q querier) (exists, additive bool, err error) {
	var n, c int
	if db.Dialect == Postgres {
		err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'gatehouse_migrations'`).Scan(&n)
		if err == nil && n > 0 {
			err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'gatehouse_migrations' AND column_name = 'additive'`).Scan(&c)
		}
	} else {
		err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'gatehouse_migrations'`).Scan(&n)
		if err == nil && n > 0 {
			err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('gatehouse_migrations') WHERE name = 'additive'`).Scan(&c)
		}
	}
	if err != nil {
		return false, false, fmt.Errorf("store: read migrations: %w", err)
	}
	return n > 0, c > 0, nil
}

// MigrateUp applies the pending migrations and returns those it applied.
func (db *DB) MigrateUp(ctx context.Context) ([]Migration, error) {
	before, err := db.Status(ctx)
	if err != nil {
		return nil, err
	}
	if err := before.Compatible(); err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		return nil, err
	}
	after, err := db.Status(ctx)
	if err != nil {
		return nil, err
	}
	still := map[int]bool{}
	for _, m := range after.Pending {
		still[m.Version] = true
	}
	var done []Migration
	for _, m := range before.Pending {
		if !still[m.Version] {
			done = append(done, m)
		}
	}
	return done, nil
}

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
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS gatehouse_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL, additive INTEGER NOT NULL DEFAULT 0)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	// Databases migrated by releases before the additive flag get the column (a default of 0: their
	// rows are all known to this binary anyway).
	if _, additive, err := db.bookkeeping(ctx, conn); err != nil {
		return err
	} else if !additive {
		if _, err := conn.ExecContext(ctx, `ALTER TABLE gatehouse_migrations ADD COLUMN additive INTEGER NOT NULL DEFAULT 0`); err != nil {
			// Another SQLite process may have added it first (PostgreSQL holds the advisory lock).
			if _, added, rerr := db.bookkeeping(ctx, conn); rerr != nil || !added {
				return fmt.Errorf("store: migrate: %w", err)
			}
		}
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
	applied, err := db.applied(ctx, tx)
	if err != nil {
		return false, err
	}
	have := map[int]Applied{}
	for _, a := range applied {
		have[a.Version] = a
	}
	ms := db.migrations
	if ms == nil {
		ms = migrations
	}
	known := map[int]bool{}
	var next *Migration
	for i := range ms {
		known[ms[i].Version] = true
		if _, ok := have[ms[i].Version]; next == nil && !ok {
			next = &ms[i]
		}
	}
	st := Status{}
	for _, a := range applied {
		if !known[a.Version] {
			st.Unknown = append(st.Unknown, a)
		}
	}
	if err := st.Compatible(); err != nil {
		return false, err
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
	add := 0
	if next.Additive {
		add = 1
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO gatehouse_migrations (version, name, applied_at, additive) VALUES (?, ?, ?, ?)`), next.Version, next.Name, time.Now().UTC().Format(time.RFC3339Nano), add); err != nil {
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
