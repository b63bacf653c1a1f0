package table

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Errors of the data operations.
var (
	ErrNotFound  = errors.New("table: item not found")
	ErrDuplicate = errors.New("table: an item with that id already exists")
	ErrNoTable   = errors.New("table: no such table")
	ErrExists    = errors.New("table: table already exists")
)

// ConflictError is a failed version check; Current is the server's item.
type ConflictError struct{ Current *Row }

func (e *ConflictError) Error() string { return "table: version conflict" }

// Row is one item.
type Row struct {
	ID        any // string or int64
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   string
	Deleted   bool
	// Values holds user columns by lower-cased name: nil, string, float64, bool or time.Time.
	Values map[string]any
}

// Store keeps tables: their catalogue and their rows. SQL implements it for SQLite and PostgreSQL;
// the conformance suite (store_test.go) runs against both.
type Store interface {
	// Catalogue.
	Load(ctx context.Context) (map[string]*Schema, error)
	Create(ctx context.Context, s *Schema) error
	AddColumn(ctx context.Context, s *Schema, c Column) error
	AddColumns(ctx context.Context, s *Schema, cols []Column, maxColumns int) error
	SetOptions(ctx context.Context, s *Schema) error
	Drop(ctx context.Context, s *Schema) error

	// Rows. restrict, when not nil, is a predicate every affected row must also match (per-user
	// tables). Update, Delete and Undelete check version when it is not "" and answer ErrNotFound or a
	// *ConflictError when nothing matched.
	Query(ctx context.Context, s *Schema, q *odata.Query) ([]*Row, int64, error)
	Get(ctx context.Context, s *Schema, id any, restrict odata.Expr) (*Row, error)
	Insert(ctx context.Context, s *Schema, r *Row) (*Row, error)
	InsertBatch(ctx context.Context, s *Schema, rows []*Row) error
	Update(ctx context.Context, s *Schema, id any, values map[string]any, version string, restrict odata.Expr) (*Row, error)
	Delete(ctx context.Context, s *Schema, id any, version string, restrict odata.Expr) (*Row, error)
	Undelete(ctx context.Context, s *Schema, id any, version string, restrict odata.Expr) (*Row, error)
	// NextVersion takes a row version for a write that carries it as a value (see versionSQL).
	NextVersion(ctx context.Context) (string, error)
	// Truncate removes every row and restarts integer ids; RestartIDs only restarts them (after a
	// DELETE of every row), never below the largest id left.
	Truncate(ctx context.Context, s *Schema) (int64, error)
	RestartIDs(ctx context.Context, s *Schema) error
	CreateIndex(ctx context.Context, s *Schema, spec string) error // spec: ParseIndexSpec
}

var _ Store = (*SQL)(nil)

// SQL is the table store on a SQL database (SQLite or PostgreSQL).
type SQL struct {
	db    *store.DB
	d     odata.Dialect
	stmts *stmtCache
	gc    *committer // group commit for row writes
	plans planCache  // compiled page reads (plan.go)
}

// NewSQL builds the store.
func NewSQL(db *store.DB) *SQL {
	var d odata.Dialect = odata.SQLite{}
	if db.Dialect == store.Postgres {
		d = odata.Postgres{}
	}
	st := &SQL{db: db, d: d}
	if db.Dialect == store.SQLite {
		// pgx caches prepared statements per connection itself; modernc's SQLite parses every
		// statement anew, which is a sixth of a table read, so reads reuse prepared statements.
		st.stmts = &stmtCache{db: db, m: map[string]*sql.Stmt{}, max: 512}
	}
	st.gc = newCommitter(db, st.stmts)
	return st
}

// stmtCache keeps prepared statements by SQL text (bounded; an arbitrary entry is evicted when full).
// Statement texts never contain values, only identifiers and placeholders, so the set is small.
type stmtCache struct {
	db  *store.DB
	mu  sync.Mutex
	m   map[string]*sql.Stmt
	max int
}

func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[q]; ok {
		return s, nil
	}
	s, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(c.m) >= c.max {
		for k, old := range c.m {
			old.Close() // closed once no query uses it any more
			delete(c.m, k)
			break
		}
	}
	c.m[q] = s
	return s, nil
}

// query runs a read through the statement cache when there is one.
func (st *SQL) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st.stmts != nil {
		s, err := st.stmts.get(ctx, q)
		if err != nil {
			return nil, err
		}
		return s.QueryContext(ctx, args...)
	}
	return st.db.QueryContext(ctx, q, args...)
}

func (st *SQL) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st.stmts != nil {
		if s, err := st.stmts.get(ctx, q); err == nil {
			return s.QueryRowContext(ctx, args...)
		}
	}
	return st.db.QueryRowContext(ctx, q, args...)
}

func (st *SQL) pg() bool { return st.db.Dialect == store.Postgres }

func (st *SQL) ph(n int) string { return st.d.Placeholder(n) }

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func (st *SQL) sqlType(t ColumnType) string {
	switch t {
	case Number:
		if st.pg() {
			return "DOUBLE PRECISION"
		}
		return "REAL"
	case Boolean:
		if st.pg() {
			return "BOOLEAN"
		}
		return "INTEGER"
	case Date:
		if st.pg() {
			return "TIMESTAMPTZ(3)"
		}
		return "INTEGER"
	default:
		return "TEXT"
	}
}

type catalogueOptions struct {
	Options
	Permissions map[string]string `json:"permissions"`
}

func encodeOptions(o Options) (string, error) {
	co := catalogueOptions{Options: o, Permissions: map[string]string{}}
	co.Options.Permissions = nil
	for op, p := range o.Permissions {
		co.Permissions[string(op)] = p.String()
	}
	b, err := json.Marshal(co)
	return string(b), err
}

func decodeOptions(s string) (Options, error) {
	var co catalogueOptions
	if err := json.Unmarshal([]byte(s), &co); err != nil {
		return Options{}, err
	}
	o := co.Options
	o.Permissions = map[appdir.Operation]auth.Permission{}
	for op, ps := range co.Permissions {
		p, err := auth.ParsePermission(ps)
		if err != nil {
			return Options{}, err
		}
		o.Permissions[appdir.Operation(op)] = p
	}
	return o, nil
}

// Load reads the catalogue.
func (st *SQL) Load(ctx context.Context) (map[string]*Schema, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT name, display_name, sql_name, id_type, options, source FROM gatehouse_tables`)
	if err != nil {
		return nil, fmt.Errorf("table: load catalogue: %w", err)
	}
	defer rows.Close()
	out := map[string]*Schema{}
	for rows.Next() {
		var key, name, sqlName, idType, opts, source string
		if err := rows.Scan(&key, &name, &sqlName, &idType, &opts, &source); err != nil {
			return nil, fmt.Errorf("table: load catalogue: %w", err)
		}
		o, err := decodeOptions(opts)
		if err != nil {
			return nil, fmt.Errorf("table: catalogue entry %s: %w", name, err)
		}
		out[key] = &Schema{Name: name, SQLName: sqlName, IDType: IDType(idType), Options: o, Source: source}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	cols := map[string][]Column{}
	crows, err := st.db.QueryContext(ctx, `SELECT table_name, display_name, sql_name, type FROM gatehouse_columns ORDER BY table_name, sql_name`)
	if err != nil {
		return nil, fmt.Errorf("table: load columns: %w", err)
	}
	defer crows.Close()
	for crows.Next() {
		var t, name, sqlName, typ string
		if err := crows.Scan(&t, &name, &sqlName, &typ); err != nil {
			return nil, err
		}
		cols[t] = append(cols[t], Column{Name: name, SQL: sqlName, Type: ColumnType(typ)})
	}
	if err := crows.Err(); err != nil {
		return nil, err
	}
	for key, s := range out {
		if err := s.build(cols[key]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Create makes a table and records it in the catalogue, in one transaction.
func (st *SQL) Create(ctx context.Context, s *Schema) error {
	opts, err := encodeOptions(s.Options)
	if err != nil {
		return err
	}
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	var exists bool
	if err := tx.QueryRowContext(ctx, st.db.Rebind(`SELECT EXISTS (SELECT 1 FROM gatehouse_tables WHERE name = ?)`), strings.ToLower(s.Name)).Scan(&exists); err != nil {
		return fmt.Errorf("table: create %s: %w", s.Name, err)
	}
	if exists {
		return ErrExists
	}
	// Every relation the table brings (itself and its indexes) must have a free name: a table name
	// can spell another table's index name ("x_updated" and the index of "x").
	for _, rel := range []string{s.SQLName, updatedIndex(s), userIndex(s)} {
		if kind, err := st.relation(ctx, tx, rel); err != nil {
			return fmt.Errorf("table: create %s: %w", s.Name, err)
		} else if kind != "" {
			return nameCollision("table", s.Name, "")
		}
	}
	if _, err := tx.ExecContext(ctx, st.db.Rebind(`INSERT INTO gatehouse_tables (name, display_name, sql_name, id_type, options, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		strings.ToLower(s.Name), s.Name, s.SQLName, string(s.IDType), opts, s.Source, time.Now().UTC().Format(time.RFC3339)); err != nil {
		if isUnique(err) {
			return ErrExists
		}
		return fmt.Errorf("table: create %s: %w", s.Name, err)
	}
	id := "id TEXT PRIMARY KEY NOT NULL"
	if s.IDType == IntegerID {
		id = "id INTEGER PRIMARY KEY AUTOINCREMENT"
		if st.pg() {
			id = "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
		}
	}
	deleted := "INTEGER NOT NULL DEFAULT 0"
	if st.pg() {
		deleted = "BOOLEAN NOT NULL DEFAULT false"
	}
	ddl := fmt.Sprintf(`CREATE TABLE %s (%s, %s %s NOT NULL, %s %s NOT NULL, %s TEXT NOT NULL, %s %s`,
		quote(s.SQLName), id, colCreatedAt, st.sqlType(Date), colUpdatedAt, st.sqlType(Date), colVersion, colDeleted, deleted)
	for _, c := range s.Columns() {
		ddl += fmt.Sprintf(", %s %s", quote(c.SQL), st.sqlType(c.Type))
	}
	ddl += ")"
	if _, err := tx.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("table: create %s: %w", s.Name, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX %s ON %s (%s)`, quote(updatedIndex(s)), quote(s.SQLName), colUpdatedAt)); err != nil {
		return fmt.Errorf("table: create %s: %w", s.Name, err)
	}
	if s.Options.PerUser {
		keys, err := st.userIndexKeys()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE INDEX %s ON %s (%s)`, quote(userIndex(s)), quote(s.SQLName), strings.Join(keys, ", "))); err != nil {
			return fmt.Errorf("table: create %s: %w", s.Name, err)
		}
	}
	for _, c := range s.Columns() {
		if err := st.recordColumn(ctx, tx, s, c); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (st *SQL) recordColumn(ctx context.Context, tx *sql.Tx, s *Schema, c Column) error {
	_, err := tx.ExecContext(ctx, st.db.Rebind(`INSERT INTO gatehouse_columns (table_name, name, display_name, sql_name, type) VALUES (?, ?, ?, ?, ?)`),
		strings.ToLower(s.Name), strings.ToLower(c.Name), c.Name, c.SQL, string(c.Type))
	if err != nil {
		return fmt.Errorf("table: record column %s.%s: %w", s.Name, c.Name, err)
	}
	return nil
}

// AddColumn adds a user column. When another instance added the same column first, it returns nil
// (the caller reloads the catalogue).
func (st *SQL) AddColumn(ctx context.Context, s *Schema, c Column) error {
	return st.AddColumns(ctx, s, []Column{c}, 0)
}

// AddColumns adds user columns in one transaction: all of them or none. Columns another instance
// added first (same name and type) are skipped; one added with another type is an *InputError, and
// so is a table that would have more than maxColumns user columns (0 = no bound) or a physical name
// already taken (an *InputError too). Concurrent schema changes of one table are serialised (a row
// lock on PostgreSQL, SQLite's single writer), so the bound holds across instances.
func (st *SQL) AddColumns(ctx context.Context, s *Schema, cols []Column, maxColumns int) error {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	lock := `SELECT name FROM gatehouse_tables WHERE name = ?`
	if st.pg() {
		lock += ` FOR UPDATE`
	}
	var key string
	if err := tx.QueryRowContext(ctx, st.db.Rebind(lock), strings.ToLower(s.Name)).Scan(&key); errors.Is(err, sql.ErrNoRows) {
		return ErrNoTable
	} else if err != nil {
		return fmt.Errorf("table: add columns to %s: %w", s.Name, err)
	}
	rows, err := tx.QueryContext(ctx, st.db.Rebind(`SELECT display_name, sql_name, type FROM gatehouse_columns WHERE table_name = ?`), key)
	if err != nil {
		return fmt.Errorf("table: add columns to %s: %w", s.Name, err)
	}
	var have []Column
	byName := map[string]Column{}
	for rows.Next() {
		var c Column
		var typ string
		if err := rows.Scan(&c.Name, &c.SQL, &typ); err != nil {
			rows.Close()
			return err
		}
		c.Type = ColumnType(typ)
		have = append(have, c)
		byName[strings.ToLower(c.Name)] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var add []Column
	for _, c := range cols {
		if old, ok := byName[strings.ToLower(c.Name)]; ok {
			if old.Type != c.Type {
				return inputf("The value of property '%s' must be of type %s.", c.Name, old.Type)
			}
			continue
		}
		add = append(add, c)
	}
	if len(add) == 0 {
		return nil
	}
	if maxColumns > 0 && len(have)+len(add) > maxColumns {
		return inputf("Table '%s' would have %d columns; a table can have at most %d.", s.Name, len(have)+len(add), maxColumns)
	}
	if err := checkColumns(have, add); err != nil {
		return err
	}
	for _, c := range add {
		if err := st.recordColumn(ctx, tx, s, c); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s %s`, quote(s.SQLName), quote(c.SQL), st.sqlType(c.Type))); err != nil {
			return fmt.Errorf("table: add column %s.%s: %w", s.Name, c.Name, err)
		}
	}
	return tx.Commit()
}

// updatedIndex and userIndex name a table's own indexes (within PostgreSQL's 63 bytes, so that it
// never truncates one name into another).
func updatedIndex(s *Schema) string { return physical("", s.SQLName+"_updated") }
func userIndex(s *Schema) string    { return physical("", s.SQLName+"_user_id") }

// legacyUserIndex is the index on the user id alone of per-user tables created by earlier versions,
// replaced by userIndex (see upgradeUserIndex).
func legacyUserIndex(s *Schema) string { return physical("", s.SQLName+"_user") }

// indexName names the index of a declared column.
func indexName(s *Schema, c Column) string { return legacyPhysical(s.SQLName+"_ix_", c.Name) }

// relation returns the kind of the relation (table, index, view …) with that name in the database
// (the current schema on PostgreSQL), or "" when there is none. Names compare case-insensitively.
func (st *SQL) relation(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (string, error) {
	query := `SELECT type FROM sqlite_master WHERE lower(name) = lower(?)`
	if st.pg() {
		query = `SELECT CAST(c.relkind AS text) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND lower(c.relname) = lower($1)`
	}
	var kind string
	err := q.QueryRowContext(ctx, query, name).Scan(&kind)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if kind == "i" {
		kind = "index"
	}
	return kind, err
}

// SetOptions replaces a table's options (permissions, soft delete, paging, dynamic schema). The id
// type and per-user mode cannot change once the table exists: rows depend on them.
func (st *SQL) SetOptions(ctx context.Context, s *Schema) error {
	opts, err := encodeOptions(s.Options)
	if err != nil {
		return err
	}
	res, err := st.db.ExecContext(ctx, st.db.Rebind(`UPDATE gatehouse_tables SET options = ?, source = ? WHERE name = ?`), opts, s.Source, strings.ToLower(s.Name))
	if err != nil {
		return fmt.Errorf("table: update %s: %w", s.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNoTable
	}
	return nil
}

// Drop deletes a table and its rows.
func (st *SQL) Drop(ctx context.Context, s *Schema) error {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, st.db.Rebind(`DELETE FROM gatehouse_columns WHERE table_name = ?`), strings.ToLower(s.Name)); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, st.db.Rebind(`DELETE FROM gatehouse_tables WHERE name = ?`), strings.ToLower(s.Name))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNoTable
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE `+quote(s.SQLName)); err != nil {
		return fmt.Errorf("table: drop %s: %w", s.Name, err)
	}
	return tx.Commit()
}

// selectList is every column of a table in scan order.
func selectList(s *Schema) string {
	var b strings.Builder
	b.WriteString("id, " + colCreatedAt + ", " + colUpdatedAt + ", " + colVersion + ", " + colDeleted)
	for _, c := range s.Columns() {
		b.WriteString(", ")
		b.WriteString(quote(c.SQL))
	}
	return b.String()
}

type scanner interface{ Scan(dest ...any) error }

// scanBuf holds the scan destinations of one statement, reused for each of its rows.
type scanBuf struct {
	cols []Column
	keys []string // lower-cased column names
	dest []any
	vals []any
	// rows, when it has room, holds the Rows of a multi-row read: one allocation instead of one each.
	rows []Row
}

func newScanBuf(s *Schema) *scanBuf {
	b := &scanBuf{cols: s.cols, keys: s.order} // read only
	b.dest = make([]any, 5+len(b.cols))
	b.vals = make([]any, len(b.dest))
	for i := range b.dest {
		b.dest[i] = &b.vals[i]
	}
	return b
}

func (st *SQL) scanRow(s *Schema, sc scanner) (*Row, error) {
	return st.scan(newScanBuf(s), sc)
}

func (st *SQL) scan(b *scanBuf, sc scanner) (*Row, error) {
	cols, vals := b.cols, b.vals
	clear(vals)
	if err := sc.Scan(b.dest...); err != nil {
		return nil, err
	}
	var r *Row
	if n := len(b.rows); n < cap(b.rows) {
		b.rows = b.rows[:n+1]
		r = &b.rows[n]
	} else {
		r = &Row{}
	}
	r.Values = make(map[string]any, len(cols))
	set := func(i int, v any) { r.Values[b.keys[i]] = v }
	// Values the driver returns already boxed in the type a Row holds are stored as they are, so
	// they are not boxed a second time.
	switch id := vals[0].(type) {
	case int64, string:
		r.ID = vals[0]
	case []byte:
		r.ID = string(id)
	default:
		return nil, fmt.Errorf("table: unexpected id type %T", vals[0])
	}
	var err error
	if r.CreatedAt, err = st.toTime(vals[1]); err != nil {
		return nil, err
	}
	if r.UpdatedAt, err = st.toTime(vals[2]); err != nil {
		return nil, err
	}
	r.Version, _ = vals[3].(string)
	r.Deleted = toBool(vals[4])
	for i, c := range cols {
		v := vals[5+i]
		if v == nil {
			set(i, nil)
			continue
		}
		switch c.Type {
		case Date:
			t, err := st.toTime(v)
			if err != nil {
				return nil, err
			}
			set(i, t)
		case Boolean:
			set(i, toBool(v))
		case Number:
			switch x := v.(type) {
			case float64:
				set(i, v)
			case int64:
				set(i, float64(x))
			default:
				return nil, fmt.Errorf("table: column %s holds %T", c.Name, v)
			}
		default:
			switch x := v.(type) {
			case string:
				set(i, v)
			case []byte:
				set(i, string(x))
			default:
				set(i, fmt.Sprint(x))
			}
		}
	}
	return r, nil
}

func (st *SQL) toTime(v any) (time.Time, error) { return store.TimeValue(v) }

func toBool(v any) bool { return store.BoolValue(v) }

// arg converts a value for binding.
func (st *SQL) arg(v any) any {
	switch x := v.(type) {
	case time.Time:
		if st.pg() {
			return x.UTC()
		}
		return x.UnixMilli()
	case bool:
		if st.pg() {
			return x
		}
		if x {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// Query runs a compiled read and returns its rows (and the total count when asked). A read whose rows
// are only rendered goes through renderPage instead.
func (st *SQL) Query(ctx context.Context, s *Schema, q *odata.Query) ([]*Row, int64, error) {
	c, err := odata.Compile(q, s.odata, st.d, 1)
	if err != nil {
		return nil, 0, err
	}
	from := quote(s.SQLName)
	page, args, err := c.SelectSQL(from, allColumns(s))
	if err != nil {
		return nil, 0, err
	}
	rows, err := st.query(ctx, st.pageQuery(page, c), args...)
	if err != nil {
		return nil, 0, queryError(s, err)
	}
	defer rows.Close()
	var out []*Row
	var size int64
	buf := newScanBuf(s)
	if c.Limit > 0 {
		buf.rows = make([]Row, 0, min(c.Limit, 64))
		out = make([]*Row, 0, min(c.Limit, 64))
	}
	for rows.Next() {
		r, err := st.scan(buf, rows)
		if err != nil {
			return nil, 0, err
		}
		if q.MaxBytes > 0 {
			if size += rowSize(r); size > q.MaxBytes {
				return nil, 0, resultTooLarge(q.MaxBytes)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, queryError(s, err)
	}
	var count int64 = -1
	if c.Count {
		cq, cargs := c.CountSQL(from)
		if err := st.queryRow(ctx, cq, cargs...).Scan(&count); err != nil {
			return nil, 0, queryError(s, err)
		}
	}
	return out, count, nil
}

// pageQuery is the statement that runs a page's SELECT through database/sql (Query; a page read
// consumed in place does not need it, see plan). On SQLite: modernc.org/sqlite interrupts
// a statement when its context ends only while the first row is computed; later rows.Next calls
// run to completion whatever the deadline (a sparse filter can scan the rest of the table in one
// step). A materialized CTE makes the first step compute the whole page, so the request deadline
// interrupts all the work. The outer ORDER BY (over the page only) keeps the order; SQLite may
// otherwise drop a subquery's.
func (st *SQL) pageQuery(page string, c *odata.Compiled) string {
	if st.pg() {
		return page
	}
	return "WITH page AS MATERIALIZED (" + page + ") SELECT * FROM page ORDER BY " + c.OrderBy
}

// resultTooLarge is the error of a read whose rows exceed maxBytes (a 400: the client can ask for
// fewer rows).
func resultTooLarge(maxBytes int64) error {
	return &odata.LimitError{Option: "$top", Max: int(min(maxBytes, math.MaxInt32)), Msg: fmt.Sprintf(
		"The result of this read would be larger than the maximum of %d bytes; request fewer rows with $top.", maxBytes)}
}

// rowSize approximates the bytes a row takes in memory and in a response: every value read (also of
// columns $select leaves out, which are read all the same), plus a fixed overhead per value.
func rowSize(r *Row) int64 {
	n := int64(128 + len(r.Version))
	if id, ok := r.ID.(string); ok {
		n += int64(len(id))
	}
	for k, v := range r.Values {
		n += int64(len(k)) + 16
		if s, ok := v.(string); ok {
			n += int64(len(s))
		}
	}
	return n
}

// allColumns is every column of a read in scan order (read only).
func allColumns(s *Schema) []odata.Column { return s.selectCols }

// where builds "id = $1 [AND <restrict>]" for single-item statements, numbering from n.
func (st *SQL) where(s *Schema, id any, restrict odata.Expr, n int) (string, []any, error) {
	w := "id = " + st.ph(n)
	args := []any{id}
	if restrict != nil {
		rw, rargs, err := odata.CompileFilter(restrict, s.odata, st.d, n+1)
		if err != nil {
			return "", nil, err
		}
		w += " AND (" + rw + ")"
		args = append(args, rargs...)
	}
	return w, args, nil
}

// Get reads one item (deleted ones included) that also matches restrict.
func (st *SQL) Get(ctx context.Context, s *Schema, id any, restrict odata.Expr) (*Row, error) {
	return st.get(ctx, nil, s, id, restrict)
}

// get is Get on ex (a write batch's transaction), or through the statement cache when ex is nil.
func (st *SQL) get(ctx context.Context, ex execer, s *Schema, id any, restrict odata.Expr) (*Row, error) {
	w, args, err := st.where(s, id, restrict, 1)
	if err != nil {
		return nil, err
	}
	q := "SELECT " + selectList(s) + " FROM " + quote(s.SQLName) + " WHERE " + w
	var row *sql.Row
	if ex != nil {
		row = ex.QueryRowContext(ctx, q, args...)
	} else {
		row = st.queryRow(ctx, q, args...)
	}
	r, err := st.scanRow(s, row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// Insert adds an item. r.ID nil means "generate": a UUID for string ids, the next integer otherwise.
// It returns once the item is durable; concurrent writes share a commit (see committer).
func (st *SQL) Insert(ctx context.Context, s *Schema, r *Row) (*Row, error) {
	return st.gc.do(st.insertOp(ctx, s, r))
}

func (st *SQL) insertOp(ctx context.Context, s *Schema, r *Row) *writeOp {
	op := newWriteOp(ctx, func(ctx context.Context, ex execer) (*Row, error) { return st.insert(ctx, ex, s, r) })
	if st.pg() {
		q, args := st.insertStmt(s, r)
		op.pipe = &piped{q: q, args: args, scan: func(sc scanner) (*Row, error) { return st.scanRow(s, sc) }}
	}
	return op
}

func (st *SQL) insert(ctx context.Context, ex execer, s *Schema, r *Row) (*Row, error) {
	if err := st.bumpVersion(ctx, ex); err != nil {
		return nil, err
	}
	q, args := st.insertStmt(s, r)
	out, err := st.scanRow(s, ex.QueryRowContext(ctx, q, args...))
	if err != nil {
		if isUnique(err) {
			return nil, ErrDuplicate
		}
		return nil, writeError(s, err)
	}
	return out, nil
}

// insertStmt is the INSERT … RETURNING statement for r (setting its times; the database sets its
// version, see versionSQL).
func (st *SQL) insertStmt(s *Schema, r *Row) (string, []any) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	r.CreatedAt, r.UpdatedAt = now, now
	cols := []string{colCreatedAt, colUpdatedAt, colDeleted}
	args := []any{st.arg(now), st.arg(now), st.arg(r.Deleted)}
	if r.ID != nil {
		cols = append([]string{"id"}, cols...)
		args = append([]any{r.ID}, args...)
	}
	for _, c := range s.Columns() {
		if v, ok := r.Values[strings.ToLower(c.Name)]; ok {
			cols = append(cols, quote(c.SQL))
			args = append(args, st.arg(v))
		}
	}
	phs := make([]string, len(args))
	for i := range phs {
		phs[i] = st.ph(i + 1)
	}
	cols, phs = append(cols, colVersion), append(phs, st.versionSQL())
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) RETURNING %s", quote(s.SQLName), strings.Join(cols, ", "), strings.Join(phs, ", "), selectList(s))
	return q, args
}

// Update sets values on an item that is not deleted and matches restrict; version, when not "",
// must equal the stored one. With no values it only checks the item and version.
func (st *SQL) Update(ctx context.Context, s *Schema, id any, values map[string]any, version string, restrict odata.Expr) (*Row, error) {
	if len(values) == 0 {
		return st.check(ctx, s, id, version, restrict)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	sets := []string{colUpdatedAt + " = " + st.ph(1), colVersion + " = " + st.versionSQL()}
	args := []any{st.arg(now)}
	for _, c := range s.Columns() {
		if v, ok := values[strings.ToLower(c.Name)]; ok {
			args = append(args, st.arg(v))
			sets = append(sets, quote(c.SQL)+" = "+st.ph(len(args)))
		}
	}
	return st.mutate(ctx, s, "UPDATE "+quote(s.SQLName)+" SET "+strings.Join(sets, ", "), args, id, version, restrict, false)
}

// Delete removes an item (soft: flags it deleted).
func (st *SQL) Delete(ctx context.Context, s *Schema, id any, version string, restrict odata.Expr) (*Row, error) {
	if s.Options.SoftDelete {
		now := time.Now().UTC().Truncate(time.Millisecond)
		return st.mutate(ctx, s, "UPDATE "+quote(s.SQLName)+" SET "+colDeleted+" = "+st.ph(1)+", "+colUpdatedAt+" = "+st.ph(2)+", "+colVersion+" = "+st.versionSQL(),
			[]any{st.arg(true), st.arg(now)}, id, version, restrict, false)
	}
	return st.mutate(ctx, s, "DELETE FROM "+quote(s.SQLName), nil, id, version, restrict, false)
}

// Undelete restores a soft-deleted item.
func (st *SQL) Undelete(ctx context.Context, s *Schema, id any, version string, restrict odata.Expr) (*Row, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return st.mutate(ctx, s, "UPDATE "+quote(s.SQLName)+" SET "+colDeleted+" = "+st.ph(1)+", "+colUpdatedAt+" = "+st.ph(2)+", "+colVersion+" = "+st.versionSQL(),
		[]any{st.arg(false), st.arg(now)}, id, version, restrict, true)
}

// mutate runs an UPDATE or DELETE on one item: WHERE id AND restrict AND deleted = <wantDeleted>
// [AND version]. When nothing matched it tells not-found from a version conflict. It returns once
// the change is durable; concurrent writes share a commit (see committer).
func (st *SQL) mutate(ctx context.Context, s *Schema, head string, args []any, id any, version string, restrict odata.Expr, wantDeleted bool) (*Row, error) {
	op, err := st.mutateOp(ctx, s, head, args, id, version, restrict, wantDeleted)
	if err != nil {
		return nil, err
	}
	return st.gc.do(op)
}

func (st *SQL) mutateOp(ctx context.Context, s *Schema, head string, args []any, id any, version string, restrict odata.Expr, wantDeleted bool) (*writeOp, error) {
	op := newWriteOp(ctx, func(ctx context.Context, ex execer) (*Row, error) {
		return st.mutateOn(ctx, ex, s, head, args, id, version, restrict, wantDeleted)
	})
	if st.pg() {
		q, qargs, err := st.mutateStmt(s, head, args, id, version, restrict, wantDeleted)
		if err != nil {
			return nil, err
		}
		op.pipe = &piped{q: q, args: qargs, scan: func(sc scanner) (*Row, error) { return st.scanRow(s, sc) },
			missed: func(ctx context.Context, ex execer) (*Row, error) {
				return st.missed(ctx, ex, s, id, restrict, wantDeleted)
			}}
	}
	return op, nil
}

func (st *SQL) mutateOn(ctx context.Context, ex execer, s *Schema, head string, args []any, id any, version string, restrict odata.Expr, wantDeleted bool) (*Row, error) {
	q, args, err := st.mutateStmt(s, head, args, id, version, restrict, wantDeleted)
	if err != nil {
		return nil, err
	}
	if err := st.bumpVersion(ctx, ex); err != nil {
		return nil, err
	}
	r, err := st.scanRow(s, ex.QueryRowContext(ctx, q, args...))
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, writeError(s, err)
	}
	return st.missed(ctx, ex, s, id, restrict, wantDeleted)
}

// mutateStmt is the statement of mutate.
func (st *SQL) mutateStmt(s *Schema, head string, args []any, id any, version string, restrict odata.Expr, wantDeleted bool) (string, []any, error) {
	args = append([]any(nil), args...) // a retried batch builds this again
	w, wargs, err := st.where(s, id, restrict, len(args)+1)
	if err != nil {
		return "", nil, err
	}
	args = append(args, wargs...)
	args = append(args, st.arg(wantDeleted))
	w += " AND " + colDeleted + " = " + st.ph(len(args))
	if version != "" {
		args = append(args, version)
		w += " AND " + colVersion + " = " + st.ph(len(args))
	}
	return head + " WHERE " + w + " RETURNING " + selectList(s), args, nil
}

// missed tells why a mutate matched no row: the item is missing (or in the other deleted state),
// or its version differs.
func (st *SQL) missed(ctx context.Context, ex execer, s *Schema, id any, restrict odata.Expr, wantDeleted bool) (*Row, error) {
	cur, err := st.get(ctx, ex, s, id, restrict)
	if err != nil {
		return nil, err
	}
	if cur.Deleted != wantDeleted {
		return nil, ErrNotFound
	}
	return nil, &ConflictError{Current: cur}
}

// check verifies that an item exists (not deleted) with the given version, changing nothing.
func (st *SQL) check(ctx context.Context, s *Schema, id any, version string, restrict odata.Expr) (*Row, error) {
	cur, err := st.Get(ctx, s, id, restrict)
	if err != nil {
		return nil, err
	}
	if cur.Deleted {
		return nil, ErrNotFound
	}
	if version != "" && version != cur.Version {
		return nil, &ConflictError{Current: cur}
	}
	return cur, nil
}

// tooBig reports SQLite's SQLITE_TOOBIG: a string, blob or row longer than the connection's
// SQLITE_LIMIT_LENGTH (store.Options.SQLiteMaxLength).
func tooBig(err error) bool {
	code, ok := store.SQLiteCode(err)
	return ok && code&0xff == sqlite3.SQLITE_TOOBIG
}

// writeError wraps a failed write; a value or row over the database's length limit is the client's
// (a 400), anything else ours.
func writeError(s *Schema, err error) error {
	if tooBig(err) {
		return &InputError{Msg: "The item is too large to store."}
	}
	return fmt.Errorf("table: write %s: %w", s.Name, err)
}

func isUnique(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "constraint failed: UNIQUE")
}

// queryError maps a failed read: PostgreSQL data exceptions (SQLSTATE class 22, e.g. numeric overflow
// in "price mul 1e308") come from the client's expression and are a 400; anything else is ours.
func queryError(s *Schema, err error) error {
	if tooBig(err) {
		return &InputError{Msg: "The query could not be evaluated: it would compute a value larger than the database allows."}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22") {
		return &InputError{Msg: "The query could not be evaluated: a value is out of range or invalid (" + pe.Message + ")."}
	}
	return fmt.Errorf("table: query %s: %w", s.Name, err)
}

// InsertBatch inserts many items in one transaction (imports and benchmarks). Every item needs an id
// on string-id tables.
func (st *SQL) InsertBatch(ctx context.Context, s *Schema, rows []*Row) error {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	cols := s.Columns()
	names := []string{"id", colCreatedAt, colUpdatedAt, colDeleted}
	for _, c := range cols {
		names = append(names, quote(c.SQL))
	}
	phs := make([]string, len(names))
	for i := range phs {
		phs[i] = st.ph(i + 1)
	}
	names, phs = append(names, colVersion), append(phs, st.versionSQL())
	stmt, err := tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", quote(s.SQLName), strings.Join(names, ", "), strings.Join(phs, ", ")))
	if err != nil {
		return fmt.Errorf("table: batch insert into %s: %w", s.Name, err)
	}
	defer stmt.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, r := range rows {
		if r.ID == nil {
			r.ID = newID()
		}
		args := []any{r.ID, st.arg(now), st.arg(now), st.arg(r.Deleted)}
		for _, c := range cols {
			args = append(args, st.arg(r.Values[strings.ToLower(c.Name)]))
		}
		if err := st.bumpVersion(ctx, tx); err != nil {
			return fmt.Errorf("table: batch insert into %s: %w", s.Name, err)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			if isUnique(err) {
				return fmt.Errorf("table: batch insert into %s: id %v: %w", s.Name, r.ID, ErrDuplicate)
			}
			return fmt.Errorf("table: batch insert into %s: %w", s.Name, err)
		}
	}
	return tx.Commit()
}

// CreateIndex creates the index a declared index spec describes (see ParseIndexSpec): its columns
// in order, then the primary key, so that a read filtering by equality on the leading columns and
// ordering by the last one (then by id, the tie-breaker every $orderby ends with) walks the index
// instead of sorting. On a per-user table the index leads with the user id column, which every
// non-admin read filters on. Columns before the last are keyed for equality (as stored); the last
// one is keyed the way ORDER BY sorts it (strings with the collation, see odata.OrderIndexKey), so
// it also serves ordering comparisons (lt, ge …), but equality only on non-string columns.
//
// On PostgreSQL the index is built CONCURRENTLY (writes go on during the build), one build at a
// time across instances (an advisory lock), and a build left invalid by an interrupted one is
// dropped and built again. On SQLite the build holds the database's write lock: about 30 s for a
// string column of 1,000,000 rows, during which writes wait (up to the busy timeout, then fail). A single-column index created by
// earlier versions (no id key, and on PostgreSQL not usable by ORDER BY) is dropped once its
// replacement exists. Idempotent.
func (st *SQL) CreateIndex(ctx context.Context, s *Schema, spec string) error {
	cols, err := ParseIndexSpec(s, spec)
	if err != nil {
		return err
	}
	var keys []string
	if s.Options.PerUser && !strings.EqualFold(cols[0].Name, UserIDColumn) {
		k, err := odata.EqualityIndexKey(st.d, physicalColumn(UserIDColumn))
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	for i, c := range cols {
		k, err := odata.OrderIndexKey(st.d, c.SQL, c.Type.odata())
		if i < len(cols)-1 {
			k, err = odata.EqualityIndexKey(st.d, c.SQL)
		}
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	keys = append(keys, colID)
	name := orderIndexName(s, cols)
	var legacy string
	if len(cols) == 1 {
		legacy = indexName(s, cols[0])
	}
	err = st.buildIndex(ctx, s, name, keys, legacy, func() error { return nameCollision("column", cols[len(cols)-1].Name, "") })
	var ie *InputError
	if err != nil && !errors.As(err, &ie) {
		return fmt.Errorf("table: index %s (%s): %w", s.Name, spec, err)
	}
	return err
}

// upgradeUserIndex gives a per-user table created by an earlier version the index on (user id, id)
// that serves its reads (every non-admin read filters on the user and orders by id last) in place
// of the one on the user id alone (which made every page sort all of the user's rows first).
func (st *SQL) upgradeUserIndex(ctx context.Context, s *Schema) error {
	if !s.Options.PerUser {
		return nil
	}
	// Every start and every admin command's table service comes here: once the index is in place
	// (and the one it replaced gone) two catalogue lookups answer, without the build's advisory
	// lock and pinned connection, which instances starting together would otherwise queue on.
	if legacy, err := st.relation(ctx, st.db, legacyUserIndex(s)); err == nil && legacy == "" && st.indexReady(ctx, userIndex(s)) {
		return nil
	}
	keys, err := st.userIndexKeys()
	if err != nil {
		return err
	}
	return st.buildIndex(ctx, s, userIndex(s), keys, legacyUserIndex(s), func() error {
		return fmt.Errorf("table: index %s: the name is taken", userIndex(s))
	})
}

// indexReady reports whether the index name exists and, on PostgreSQL, is valid (a CONCURRENTLY
// build cut short leaves an invalid one, which buildIndex drops and builds again).
func (st *SQL) indexReady(ctx context.Context, name string) bool {
	if !st.pg() {
		kind, err := st.relation(ctx, st.db, name)
		return err == nil && kind == "index"
	}
	var valid bool
	err := st.db.QueryRowContext(ctx, `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = $1`, name).Scan(&valid)
	return err == nil && valid
}

// userIndexKeys are the keys of a per-user table's own index: the user id column keyed as its
// equality compares it, then id, the last key of every $orderby.
func (st *SQL) userIndexKeys() ([]string, error) {
	k, err := odata.EqualityIndexKey(st.d, physicalColumn(UserIDColumn))
	if err != nil {
		return nil, err
	}
	return []string{k, colID}, nil
}

// buildIndex creates the index name on keys unless it exists, then drops the index legacy (when
// not "") that it replaces. taken is the error when name belongs to something other than an index.
// On PostgreSQL the build is CONCURRENTLY, one at a time across instances, and an unfinished one is
// dropped and built again (see CreateIndex).
func (st *SQL) buildIndex(ctx context.Context, s *Schema, name string, keys []string, legacy string, taken func() error) error {
	if !st.pg() {
		if err := st.checkIndexName(ctx, st.db, name, taken); err != nil {
			return err
		}
		q := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)", quote(name), quote(s.SQLName), strings.Join(keys, ", "))
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			return err
		}
		return st.dropLegacyIndex(ctx, st.db, legacy, "")
	}
	conn, err := st.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, indexLockID); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, indexLockID) //nolint:errcheck
	if err := st.checkIndexName(ctx, conn, name, taken); err != nil {
		return err
	}
	var valid bool
	err = conn.QueryRowContext(ctx, `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = $1`, name).Scan(&valid)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	case valid:
		return st.dropLegacyIndex(ctx, conn, legacy, " CONCURRENTLY")
	default: // a build that did not finish
		if _, err := conn.ExecContext(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+quote(name)); err != nil {
			return fmt.Errorf("drop the unfinished build: %w", err)
		}
	}
	q := fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON %s (%s)", quote(name), quote(s.SQLName), strings.Join(keys, ", "))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return err
	}
	return st.dropLegacyIndex(ctx, conn, legacy, " CONCURRENTLY")
}

// indexLockID serialises index builds across instances sharing a PostgreSQL database.
const indexLockID = 0x6761746569 // "gatei"

type queryRower interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}

// checkIndexName refuses an index whose name is taken by something other than an index (IF NOT
// EXISTS would skip the index silently): the error is taken's.
func (st *SQL) checkIndexName(ctx context.Context, q queryRower, name string, taken func() error) error {
	kind, err := st.relation(ctx, q, name)
	if err != nil {
		return err
	}
	if kind != "" && kind != "index" {
		return taken()
	}
	return nil
}

// dropLegacyIndex drops an index created by earlier versions for a declared column, once the
// index replacing it exists.
func (st *SQL) dropLegacyIndex(ctx context.Context, q queryRower, name, how string) error {
	if name == "" {
		return nil
	}
	if kind, err := st.relation(ctx, q, name); err != nil || kind != "index" {
		return err
	}
	if _, err := q.ExecContext(ctx, "DROP INDEX"+how+" IF EXISTS "+quote(name)); err != nil {
		return fmt.Errorf("table: drop the earlier index %s: %w", name, err)
	}
	return nil
}

// maxIndexColumns bounds the columns of a declared index.
const maxIndexColumns = 8

// ParseIndexSpec resolves a declared index: column names joined by "+" ("year+title"), at most
// eight, each once. The last column is the one reads order by; the ones before it are those they
// filter on by equality.
func ParseIndexSpec(s *Schema, spec string) ([]Column, error) {
	names := strings.Split(spec, "+")
	if len(names) > maxIndexColumns {
		return nil, inputf("An index of table %s can have at most %d columns; %q has %d.", s.Name, maxIndexColumns, spec, len(names))
	}
	cols := make([]Column, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		c, ok := s.Column(n)
		if !ok {
			return nil, inputf("table %s has no column %s to index", s.Name, n)
		}
		if seen[strings.ToLower(c.Name)] {
			return nil, inputf("index %q names column %s twice", spec, c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
		cols = append(cols, c)
	}
	return cols, nil
}

// orderIndexName names the index of a declared spec: <table>_ox_<columns joined by "_">, and a hash
// of the exact column list so that two lists joined alike ("a_b"+"c", "a"+"b_c") differ.
func orderIndexName(s *Schema, cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = strings.ToLower(c.Name)
	}
	sum := sha256.Sum256([]byte(strings.Join(names, "+")))
	return physical("", s.SQLName+"_ox_"+strings.Join(names, "_")+"_"+hex.EncodeToString(sum[:3]))
}
