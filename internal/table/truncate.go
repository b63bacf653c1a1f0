package table

import (
	"context"
	"database/sql"
	"fmt"
)

// Truncating a table. SQL Server's TRUNCATE TABLE (what the original's `azure mobile data truncate`
// and a script's `mssql.query('TRUNCATE TABLE …')` ran) removed every row and restarted the table's
// identity, so the next insert got id 1 again. Soft-deleted rows go too: truncation is not a delete
// clients sync (as in the original).

// Truncate removes every row of a table and restarts its integer ids, in one transaction. It returns
// the number of rows removed.
func (st *SQL) Truncate(ctx context.Context, s *Schema) (int64, error) {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("table: truncate %s: %w", s.Name, err)
	}
	defer tx.Rollback() //nolint:errcheck
	res, err := tx.ExecContext(ctx, "DELETE FROM "+quote(s.SQLName))
	if err != nil {
		return 0, fmt.Errorf("table: truncate %s: %w", s.Name, err)
	}
	n, _ := res.RowsAffected()
	if err := st.restartIDs(ctx, tx, s); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("table: truncate %s: %w", s.Name, err)
	}
	return n, nil
}

// RestartIDs restarts an integer-id table's id sequence after its rows were deleted (a script's
// TRUNCATE TABLE, which runs as a guarded DELETE): the next id is one more than the largest left, so 1
// on an empty table, and never one a row still has. Nothing to do on string-id tables.
func (st *SQL) RestartIDs(ctx context.Context, s *Schema) error {
	if s.IDType != IntegerID {
		return nil
	}
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("table: restart the ids of %s: %w", s.Name, err)
	}
	defer tx.Rollback() //nolint:errcheck
	if err := st.restartIDs(ctx, tx, s); err != nil {
		return err
	}
	return tx.Commit()
}

func (st *SQL) restartIDs(ctx context.Context, tx *sql.Tx, s *Schema) error {
	if s.IDType != IntegerID {
		return nil
	}
	var err error
	if st.pg() {
		// The lock keeps inserts out between reading the largest id and moving the sequence (reads
		// go on); setval is not transactional, but it runs under the lock and just before the commit.
		if _, err = tx.ExecContext(ctx, "LOCK TABLE "+quote(s.SQLName)+" IN EXCLUSIVE MODE"); err == nil {
			_, err = tx.ExecContext(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence($1, 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM %s), false)`,
				quote(s.SQLName)), quote(s.SQLName))
		}
	} else {
		// AUTOINCREMENT keeps the largest id ever used in sqlite_sequence; a table never inserted
		// into has no row there, which is the same as 0.
		_, err = tx.ExecContext(ctx, fmt.Sprintf(`UPDATE sqlite_sequence SET seq = (SELECT COALESCE(MAX(id), 0) FROM %s) WHERE name = ?`,
			quote(s.SQLName)), s.SQLName)
	}
	if err != nil {
		return fmt.Errorf("table: restart the ids of %s: %w", s.Name, err)
	}
	return nil
}

// Truncate removes every row of a table and restarts its integer ids (see SQL.Truncate).
func (svc *Service) Truncate(ctx context.Context, name string) (int64, error) {
	s, err := svc.Lookup(ctx, name)
	if err != nil {
		return 0, err
	}
	return svc.st.Truncate(ctx, s)
}
