package table

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Upsert writes rows exactly as given, system columns included (createdAt, updatedAt, version,
// deleted: the values a data import copies from its source), replacing any row with the same id.
// Every row needs an id. The rows and then then(tx), when not nil, run in one transaction: the import
// records its high-water mark there, so the mark never gets ahead of (or behind) the rows written.
// On an integer-id table the id sequence is moved past the largest id, so later inserts never collide
// with imported ids (SQLite's AUTOINCREMENT does this by itself; PostgreSQL's identity does not).
func (st *SQL) Upsert(ctx context.Context, s *Schema, rows []*Row, then func(ctx context.Context, tx *sql.Tx) error) error {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	cols := s.Columns()
	names := []string{"id", colCreatedAt, colUpdatedAt, colVersion, colDeleted}
	for _, c := range cols {
		names = append(names, quote(c.SQL))
	}
	phs := make([]string, len(names))
	sets := make([]string, 0, len(names)-1)
	for i, n := range names {
		phs[i] = st.ph(i + 1)
		if i > 0 {
			sets = append(sets, n+" = excluded."+n)
		}
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (id) DO UPDATE SET %s",
		quote(s.SQLName), strings.Join(names, ", "), strings.Join(phs, ", "), strings.Join(sets, ", "))
	stmt, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return fmt.Errorf("table: upsert into %s: %w", s.Name, err)
	}
	defer stmt.Close()
	for _, r := range rows {
		if r.ID == nil {
			return fmt.Errorf("table: upsert into %s: a row has no id", s.Name)
		}
		if r.Version == "" {
			if r.Version, err = st.nextVersion(ctx, tx); err != nil {
				return fmt.Errorf("table: upsert into %s: %w", s.Name, err)
			}
		}
		args := []any{r.ID, st.arg(r.CreatedAt.UTC()), st.arg(r.UpdatedAt.UTC()), r.Version, st.arg(r.Deleted)}
		for _, c := range cols {
			args = append(args, st.arg(r.Values[strings.ToLower(c.Name)]))
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("table: upsert into %s: id %v: %w", s.Name, r.ID, err)
		}
	}
	if s.IDType == IntegerID && st.pg() && len(rows) > 0 {
		q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence($1, 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM %s), false)`, quote(s.SQLName))
		if _, err := tx.ExecContext(ctx, q, quote(s.SQLName)); err != nil {
			return fmt.Errorf("table: upsert into %s: advance the id sequence: %w", s.Name, err)
		}
	}
	if then != nil {
		if err := then(ctx, tx); err != nil {
			return err
		}
	}
	return tx.Commit()
}
