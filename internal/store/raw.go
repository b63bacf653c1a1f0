package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RawRows is a read's result consumed in place: a renderer asks each column for the one type it
// expects (the schema says which), and no value is boxed into an interface or copied into a Go string
// on the way. Text's bytes are valid only until the next call of Next or Close.
//
// Bool and Time decode each dialect's storage: SQLite keeps booleans as integers and instants as Unix
// milliseconds; PostgreSQL has boolean and timestamptz.
type RawRows interface {
	Next() bool
	Err() error
	Close() error
	Null(i int) bool
	Int64(i int) int64
	Float64(i int) float64
	Text(i int) []byte
	Bool(i int) bool
	Time(i int) (time.Time, error)
}

// QueryRaw runs a read whose rows are consumed in place (RawRows). args are the values database/sql
// would take: nil, int64, float64, bool, string, []byte or time.Time.
//
// On SQLite it runs on the in-place readers (sqliteraw.go): query must be one read-only statement
// with ? or ?N placeholders; a time.Time binds as Unix milliseconds (how Gatehouse stores instants
// there), and other argument types than those listed are an error.
func (db *DB) QueryRaw(ctx context.Context, query string, args ...any) (RawRows, error) {
	if db.readers != nil {
		return db.readers.queryRaw(ctx, query, args)
	}
	if db.Dialect == Postgres {
		if db.reads != nil {
			return db.reads.query(ctx, query, args)
		}
		return db.queryRawPostgres(ctx, query, args)
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return RawFromSQL(rows)
}

// RawFromSQL reads a database/sql row set through RawRows. Its values are boxed by database/sql as
// always; it is the portable fallback behind the in-place readers.
func RawFromSQL(rows *sql.Rows) (RawRows, error) {
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return nil, err
	}
	r := &sqlRaw{rows: rows, vals: make([]any, len(cols)), dest: make([]any, len(cols))}
	for i := range r.vals {
		r.dest[i] = &r.vals[i]
	}
	return r, nil
}

type sqlRaw struct {
	rows *sql.Rows
	vals []any
	dest []any
	err  error
}

func (r *sqlRaw) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	clear(r.vals)
	if err := r.rows.Scan(r.dest...); err != nil {
		r.err = err
		return false
	}
	return true
}

func (r *sqlRaw) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

func (r *sqlRaw) Close() error    { return r.rows.Close() }
func (r *sqlRaw) Null(i int) bool { return r.vals[i] == nil }

func (r *sqlRaw) Int64(i int) int64 {
	switch x := r.vals[i].(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	case bool:
		if x {
			return 1
		}
	}
	return 0
}

func (r *sqlRaw) Float64(i int) float64 {
	switch x := r.vals[i].(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

func (r *sqlRaw) Text(i int) []byte {
	switch x := r.vals[i].(type) {
	case string:
		return []byte(x)
	case []byte:
		return x
	case nil:
		return nil
	default:
		return fmt.Append(nil, x)
	}
}

func (r *sqlRaw) Bool(i int) bool               { return BoolValue(r.vals[i]) }
func (r *sqlRaw) Time(i int) (time.Time, error) { return TimeValue(r.vals[i]) }

// BoolValue reads a boolean as database/sql returns it from either dialect: a bool (PostgreSQL) or
// an integer (SQLite).
func BoolValue(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	}
	return false
}

// TimeValue reads an instant as database/sql returns it from either dialect: a time.Time
// (PostgreSQL) or Unix milliseconds (SQLite).
func TimeValue(v any) (time.Time, error) {
	switch x := v.(type) {
	case int64:
		return time.UnixMilli(x).UTC(), nil
	case float64:
		return time.UnixMilli(int64(x)).UTC(), nil
	case time.Time:
		return x.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("store: unexpected date value %T", v)
}
