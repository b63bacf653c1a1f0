package script

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
	"github.com/gatehouse/gatehouse/internal/tsql"
)

// SQLError is a statement mssql.query refuses (naming the construct) or that the database rejected.
type SQLError struct{ Msg string }

func (e *SQLError) Error() string { return e.Msg }

// MSSQL runs the T-SQL that classic scripts hold on the configured database (SQLite or PostgreSQL).
// internal/tsql parses each statement, resolves every name against the app's tables (gh_<name>,
// c_<name>, the system columns), admits allowlisted functions only and refuses everything else with
// the construct named. The translated statement then runs under the engine guard (store.Guarded):
// an authorizer on SQLite, a transaction with SET LOCAL settings only, a statement timeout and the
// configured restricted role on PostgreSQL. See docs/security.md.
type MSSQL struct {
	DB     *store.DB
	Tables *table.Service
	// Role is the PostgreSQL role statements run as (scripts.sql_role; "": the connection's role).
	Role string
	// Timeout bounds one statement (scripts.sql_timeout; 0: DefaultSQLTimeout).
	Timeout time.Duration
}

// DefaultSQLTimeout bounds one mssql.query statement when MSSQL.Timeout is unset.
const DefaultSQLTimeout = 5 * time.Second

// NewSQL builds the mssql service.
func NewSQL(db *store.DB, svc *table.Service) *MSSQL { return &MSSQL{DB: db, Tables: svc} }

// catalogue shows the translator the app's tables and nothing else.
type catalogue struct{ svc *table.Service }

func (c catalogue) Table(ctx context.Context, name string) (*tsql.Table, error) {
	sc, err := c.svc.Lookup(ctx, name)
	if errors.Is(err, table.ErrNoTable) {
		return nil, tsql.ErrNoTable
	}
	if err != nil {
		return nil, err
	}
	t := &tsql.Table{Name: sc.Name, SQL: sc.SQLName, StringID: sc.IDType == table.StringID}
	for _, col := range sc.Columns() {
		t.Columns = append(t.Columns, tsql.Column{Name: col.Name, SQL: col.SQL, Type: string(col.Type)})
	}
	t.Column = func(n string) (tsql.Column, bool) {
		if phys, ok := table.SystemColumn(n); ok {
			return tsql.Column{Name: table.SystemProperty(phys), SQL: phys, System: true}, true
		}
		if col, ok := sc.Column(n); ok {
			return tsql.Column{Name: col.Name, SQL: col.SQL, Type: string(col.Type)}, true
		}
		return tsql.Column{}, false
	}
	return t, nil
}

func (s *MSSQL) dialect() tsql.Dialect {
	if s.DB.Dialect == store.Postgres {
		return tsql.Postgres
	}
	return tsql.SQLite
}

func (s *MSSQL) dateArg(t time.Time) any {
	if s.DB.Dialect == store.Postgres {
		return t.UTC()
	}
	return t.UTC().UnixMilli()
}

// translate turns a T-SQL statement into the configured dialect.
func (s *MSSQL) translate(ctx context.Context, q string, params []any) (*tsql.Statement, error) {
	ps := make([]any, len(params))
	for i, a := range params {
		if d, ok := a.(time.Time); ok {
			a = s.dateArg(d)
		}
		ps[i] = a
	}
	st, err := tsql.Translate(ctx, tsql.Options{
		Dialect: s.dialect(), Catalog: catalogue{s.Tables},
		NewVersion: func() (string, error) { return s.Tables.Store().NextVersion(ctx) }, NewID: table.NewItemID,
	}, q, ps)
	var te *tsql.Error
	if errors.As(err, &te) {
		return nil, &SQLError{Msg: te.Msg}
	}
	return st, err
}

// maxRows bounds what one query may answer.
const maxRows = 100000

// Query runs a statement: rows for SELECT (column names and values as the app sees them), an empty
// list for the others.
func (s *MSSQL) Query(ctx context.Context, q string, params []any) ([]map[string]any, error) {
	st, err := s.translate(ctx, q, params)
	if err != nil {
		return nil, err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultSQLTimeout
	}
	g := store.Guard{Tables: st.Tables, Functions: tsql.Functions(s.dialect()), ReadOnly: st.Query, Timeout: timeout, Role: s.Role}
	out := []map[string]any{}
	err = s.DB.Guarded(ctx, g, func(ctx context.Context, db store.Querier) error {
		if !st.Query {
			_, err := db.ExecContext(ctx, st.SQL, st.Args...)
			return err
		}
		rows, err := db.QueryContext(ctx, st.SQL, st.Args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		names, err := rows.Columns()
		if err != nil {
			return err
		}
		for rows.Next() {
			vals := make([]any, len(names))
			ptrs := make([]any, len(names))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			row := make(map[string]any, len(names))
			for i, n := range names {
				row[s.wireName(st, n)] = s.wireValue(st, n, vals[i])
			}
			out = append(out, row)
			if len(out) > maxRows {
				return &SQLError{Msg: fmt.Sprintf("mssql: more than %d rows; use TOP", maxRows)}
			}
		}
		return rows.Err()
	})
	if err == nil && st.Truncated != "" {
		// SQL Server's TRUNCATE TABLE restarted the identity; the guarded DELETE cannot (the script's
		// role may not move sequences), so Gatehouse does it, after the rows are gone.
		var tb *table.Schema
		if tb, err = s.Tables.Lookup(ctx, st.Truncated); err == nil {
			err = s.Tables.Store().RestartIDs(ctx, tb)
		}
	}
	var se *SQLError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &se):
		return nil, err
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return nil, &SQLError{Msg: fmt.Sprintf("mssql: the statement ran longer than %s", timeout)}
	}
	return nil, &SQLError{Msg: "mssql: the statement failed: " + err.Error()}
}

func (s *MSSQL) wireName(tr *tsql.Statement, n string) string {
	if p := table.SystemProperty(n); p != "" {
		return p
	}
	if c, ok := tr.Columns[n]; ok {
		return c.Name
	}
	return n
}

func (s *MSSQL) wireValue(tr *tsql.Statement, n string, v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(table.DateFormat)
	}
	if s.DB.Dialect == store.SQLite {
		typ := table.ColumnType("")
		if c, ok := tr.Columns[n]; ok {
			typ = table.ColumnType(c.Type)
		}
		switch {
		case n == tsql.ColCreatedAt || n == tsql.ColUpdatedAt || typ == table.Date:
			if ms, ok := v.(int64); ok {
				return time.UnixMilli(ms).UTC().Format(table.DateFormat)
			}
		case n == tsql.ColDeleted || typ == table.Boolean:
			if b, ok := v.(int64); ok {
				return b != 0
			}
		}
	}
	return v
}
