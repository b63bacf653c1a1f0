package table

import (
	"context"
	"fmt"
)

// Row versions. The original's __version was SQL Server's rowversion: a database-wide counter, so that
// ordering by __version follows the order in which rows were changed. Gatehouse keeps one counter per
// database (migration 100): a SEQUENCE on PostgreSQL, shared by every instance; on SQLite a one-row
// table bumped inside the write's own transaction (SQLite has one writer at a time, so the counter
// follows commit order). A version is the counter as 16 lower-case hex digits: fixed width, so that
// the text order of versions (what $orderby=__version compares) is their numeric order. Clients treat
// versions as opaque strings (they copy them from ETag and send them back in If-Match). Rows written
// before migration 100, or imported with their source's versions, keep the versions they have.

// versionWidth is the number of hex digits of a version.
const versionWidth = 16

// versionSQL is the SQL expression of a written row's new version. On SQLite it reads the counter,
// which bumpVersion must have advanced in the same transaction first; on PostgreSQL it advances the
// sequence itself, once per row written (a statement can go through a pipelined batch unchanged).
func (st *SQL) versionSQL() string {
	if st.pg() {
		return "lpad(to_hex(nextval('gatehouse_row_version')), 16, '0')"
	}
	return "(SELECT printf('%016x', n) FROM gatehouse_row_version WHERE id = 1)"
}

// bumpVersion advances SQLite's version counter on ex, the transaction of the write that follows
// (nothing to do on PostgreSQL, whose statements call nextval).
func (st *SQL) bumpVersion(ctx context.Context, ex execer) error {
	if st.pg() {
		return nil
	}
	var n int64
	if err := ex.QueryRowContext(ctx, `UPDATE gatehouse_row_version SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&n); err != nil {
		return fmt.Errorf("table: advance the row version: %w", err)
	}
	return nil
}

// nextVersion takes the next version from the counter on ex and returns it as text (for writes that
// carry the version as a value: T-SQL statements of scripts, imported rows without a version).
func (st *SQL) nextVersion(ctx context.Context, ex execer) (string, error) {
	q := `UPDATE gatehouse_row_version SET n = n + 1 WHERE id = 1 RETURNING n`
	if st.pg() {
		q = `SELECT nextval('gatehouse_row_version')`
	}
	var n int64
	if err := ex.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return "", fmt.Errorf("table: next row version: %w", err)
	}
	return formatVersion(n), nil
}

// NextVersion takes a version for a write that carries it as a value (a script's T-SQL statement):
// unique and greater than every version taken before it on this database.
func (st *SQL) NextVersion(ctx context.Context) (string, error) {
	return st.nextVersion(ctx, st.db)
}

func formatVersion(n int64) string { return fmt.Sprintf("%0*x", versionWidth, uint64(n)) }
