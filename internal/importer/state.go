package importer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// The import state (migration 60): one row per (source, table) with the key of the last row copied.

func loadMark(ctx context.Context, db *store.DB, src, tbl string) (mark, error) {
	var upd, id string
	err := db.QueryRowContext(ctx, db.Rebind(`SELECT updated_at, last_id FROM gatehouse_import_state WHERE source = ? AND table_name = ?`),
		src, strings.ToLower(tbl)).Scan(&upd, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return mark{}, nil
	}
	if err != nil {
		return mark{}, fmt.Errorf("import state of %s: %w", tbl, err)
	}
	t, err := time.Parse(time.RFC3339Nano, upd)
	if err != nil {
		return mark{}, fmt.Errorf("import state of %s: bad time %q", tbl, upd)
	}
	m := mark{set: true, updated: t.UTC()}
	var v any
	dec := json.NewDecoder(strings.NewReader(id))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return mark{}, fmt.Errorf("import state of %s: bad id %q", tbl, id)
	}
	switch x := v.(type) {
	case string:
		m.id = x
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return mark{}, fmt.Errorf("import state of %s: bad id %q", tbl, id)
		}
		m.id = n
	default:
		return mark{}, fmt.Errorf("import state of %s: bad id %q", tbl, id)
	}
	return m, nil
}

// saveMark records the mark inside the transaction that wrote the rows it covers.
func saveMark(ctx context.Context, db *store.DB, tx *sql.Tx, src, tbl string, m mark, rows int64, now time.Time) error {
	id, err := json.Marshal(m.id)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, db.Rebind(`INSERT INTO gatehouse_import_state (source, table_name, updated_at, last_id, rows, changed_at)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, table_name) DO UPDATE SET updated_at = excluded.updated_at,
last_id = excluded.last_id, rows = gatehouse_import_state.rows + excluded.rows, changed_at = excluded.changed_at`),
		src, strings.ToLower(tbl), m.updated.UTC().Format(timeLayout), string(id), rows, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("import state of %s: %w", tbl, err)
	}
	return nil
}

// finishMark notes that a run read the table to its end.
func finishMark(ctx context.Context, db *store.DB, src, tbl string, now time.Time) error {
	_, err := db.ExecContext(ctx, db.Rebind(`UPDATE gatehouse_import_state SET finished_at = ? WHERE source = ? AND table_name = ?`),
		now.UnixMilli(), src, strings.ToLower(tbl))
	if err != nil {
		return fmt.Errorf("import state of %s: %w", tbl, err)
	}
	return nil
}
