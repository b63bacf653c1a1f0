package tsql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Dialect is the SQL the translation is printed in.
type Dialect int

// Dialects.
const (
	SQLite Dialect = iota
	Postgres
)

// Column is a column of an app table.
type Column struct {
	Name   string // wire name
	SQL    string // physical name
	Type   string // the app's column type (string, number, boolean, date), "" for system columns
	System bool
}

// Table is an app table as the translator sees it.
type Table struct {
	Name     string // canonical name
	SQL      string // physical name (gh_...)
	StringID bool   // inserts without an id get a generated one
	// Column resolves a user or system column name (any case) of the table.
	Column func(name string) (Column, bool)
	// Columns lists the user columns.
	Columns []Column
}

// ErrNoTable is what a Catalog answers for a name that is not an app table.
var ErrNoTable = errors.New("no such table")

// Catalog resolves table names (any case) to the app's tables; any other name is ErrNoTable.
type Catalog interface {
	Table(ctx context.Context, name string) (*Table, error)
}

// Physical system columns every app table has.
const (
	ColID        = "id"
	ColCreatedAt = "sys_created_at"
	ColUpdatedAt = "sys_updated_at"
	ColVersion   = "sys_version"
	ColDeleted   = "sys_deleted"
)

// Options are what a translation needs besides the statement.
type Options struct {
	Dialect Dialect
	Catalog Catalog
	// NewVersion and NewID make the values of the system columns a write maintains.
	NewVersion func() (string, error)
	NewID      func() string
}

// Statement is a translated statement.
type Statement struct {
	SQL   string
	Args  []any
	Query bool // returns rows (SELECT)
	// Columns maps the physical names of the columns the statement names back to the app's columns.
	Columns map[string]Column
	// Tables are the physical names of the app tables the statement reads or writes.
	Tables []string
	// Truncated is the table (canonical name) a TRUNCATE TABLE empties; it runs as a DELETE, after
	// which the caller restarts the table's integer ids as SQL Server's TRUNCATE did.
	Truncated string
}

// Functions lists the functions a translation may call, by their name in each dialect's output
// (lower case). The engine guard admits these and no others.
func Functions(d Dialect) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range functions {
		n := strings.ToLower(f.sqlite)
		if d == Postgres {
			n = strings.ToLower(f.postgres)
		}
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if d == SQLite {
		// The dialect's own spellings of operators and of "now": LIKE is the function like(),
		// CURRENT_TIMESTAMP is computed with julianday().
		out = append(out, "like", "julianday")
	}
	return out
}

type fn struct {
	sqlite, postgres string
	min, max         int // argument count; max -1: any
	aggregate        bool
}

// functions is the allowlist, by upper-case T-SQL name. Nothing set-returning, nothing that reads
// server state or other tables, nothing with side effects.
var functions = map[string]fn{
	"COUNT": {"count", "count", 1, 1, true}, "SUM": {"sum", "sum", 1, 1, true}, "MIN": {"min", "min", 1, 1, true},
	"MAX": {"max", "max", 1, 1, true}, "AVG": {"avg", "avg", 1, 1, true},
	"UPPER": {"upper", "upper", 1, 1, false}, "LOWER": {"lower", "lower", 1, 1, false},
	"LEN": {"length", "length", 1, 1, false}, "LTRIM": {"ltrim", "ltrim", 1, 1, false}, "RTRIM": {"rtrim", "rtrim", 1, 1, false},
	"ABS": {"abs", "abs", 1, 1, false}, "ROUND": {"round", "round", 1, 2, false},
	"COALESCE": {"coalesce", "coalesce", 2, -1, false}, "ISNULL": {"coalesce", "coalesce", 2, 2, false},
	"SUBSTRING": {"substr", "substring", 3, 3, false}, "REPLACE": {"replace", "replace", 3, 3, false},
}

// now-functions take no arguments and become the dialect's current time.
var nowFunctions = map[string]bool{"GETDATE": true, "GETUTCDATE": true, "SYSDATETIME": true, "SYSUTCDATETIME": true, "SYSDATETIMEOFFSET": true, "CURRENT_TIMESTAMP": true}

// Translate parses one T-SQL statement and prints it for the dialect. params are the values of the
// statement's '?' placeholders, in order.
func Translate(ctx context.Context, opt Options, tsql string, params []any) (*Statement, error) {
	toks, err := lex(tsql)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	st, err := p.statement()
	if err != nil {
		return nil, err
	}
	if p.nParams != len(params) {
		return nil, errorf("the statement has %d '?' parameters but %d values were given", p.nParams, len(params))
	}
	t := &translator{ctx: ctx, opt: opt, params: params, out: &Statement{Columns: map[string]Column{}}, tables: map[string]bool{}}
	switch s := st.(type) {
	case *selectStmt:
		t.out.Query = true
		err = t.selectStmt(s, nil)
	case *insertStmt:
		err = t.insert(s)
	case *updateStmt:
		err = t.update(s)
	case *deleteStmt:
		err = t.delete(s)
	}
	if err != nil {
		return nil, err
	}
	t.out.SQL = t.b.String()
	return t.out, nil
}

type translator struct {
	ctx    context.Context
	opt    Options
	params []any
	b      strings.Builder
	out    *Statement
	tables map[string]bool
	nAlias int
}

func (t *translator) w(s ...string) {
	for _, x := range s {
		t.b.WriteString(x)
	}
}

func quoteIdent(n string) string { return `"` + strings.ReplaceAll(n, `"`, `""`) + `"` }

func (t *translator) arg(v any) {
	t.out.Args = append(t.out.Args, v)
	if t.opt.Dialect == Postgres {
		t.w("$" + strconv.Itoa(len(t.out.Args)))
	} else {
		t.w("?")
	}
}

func (t *translator) now() {
	if t.opt.Dialect == Postgres {
		t.w("CURRENT_TIMESTAMP")
	} else {
		t.w("CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)")
	}
}

// lookup resolves a table name written [schema.]table. The schema part (the original's service
// schema, dbo, ...) is not a namespace here: only the app's tables exist.
func (t *translator) lookup(parts []name) (*Table, error) {
	if len(parts) > 2 {
		return nil, errorf("table name '%s' has too many parts", joinNames(parts))
	}
	n := parts[len(parts)-1].text
	tb, err := t.opt.Catalog.Table(t.ctx, n)
	if err != nil {
		if errors.Is(err, ErrNoTable) {
			return nil, errorf("unknown table '%s' (scripts can query only the app's tables)", n)
		}
		return nil, fmt.Errorf("mssql: %w", err)
	}
	if !t.tables[tb.SQL] {
		t.tables[tb.SQL] = true
		t.out.Tables = append(t.out.Tables, tb.SQL)
	}
	return tb, nil
}

// scope is the names one SELECT (or the target of an UPDATE/DELETE) makes visible: the tables its
// own FROM clause introduces, each under its alias or, without one, its name. Subqueries see their
// enclosing scopes (correlation); nothing else is visible.
type scope struct {
	parent  *scope
	entries []*entry
	aliases map[string]bool // select-list aliases (ORDER BY only)
	orderBy bool
}

type entry struct {
	key   string // lower-case alias or table name
	table *Table
	emit  string // qualifier printed before its columns
}

func (s *scope) add(e *entry) error {
	for _, x := range s.entries {
		if x.key == e.key {
			return errorf("the name '%s' is used twice in FROM; give each table its own alias", e.key)
		}
	}
	s.entries = append(s.entries, e)
	return nil
}

// bindFrom resolves the tables of a FROM item into the scope (before the select list is printed,
// whose names they give).
func (t *translator) bindFrom(s *scope, f fromItem) error {
	switch f := f.(type) {
	case *tableRef:
		tb, err := t.lookup(f.parts)
		if err != nil {
			return err
		}
		key := strings.ToLower(tb.Name)
		if f.alias != nil {
			key = strings.ToLower(f.alias.text)
		}
		t.nAlias++
		f.ent = &entry{key: key, table: tb, emit: "t" + strconv.Itoa(t.nAlias)}
		return s.add(f.ent)
	case *joinItem:
		if err := t.bindFrom(s, f.left); err != nil {
			return err
		}
		return t.bindFrom(s, f.right)
	case *parenFrom:
		return t.bindFrom(s, f.inner)
	}
	return errorf("unsupported FROM item")
}

// printFrom prints a FROM item bound by bindFrom.
func (t *translator) printFrom(s *scope, f fromItem) error {
	switch f := f.(type) {
	case *tableRef:
		t.w(quoteIdent(f.ent.table.SQL), " AS ", f.ent.emit)
	case *joinItem:
		if err := t.printFrom(s, f.left); err != nil {
			return err
		}
		switch f.kind {
		case "INNER":
			t.w(" JOIN ")
		case "CROSS":
			t.w(" CROSS JOIN ")
		default:
			t.w(" ", f.kind, " JOIN ")
		}
		if err := t.printFrom(s, f.right); err != nil {
			return err
		}
		if f.on != nil {
			t.w(" ON ")
			if err := t.expr(s, f.on); err != nil {
				return err
			}
		}
	case *parenFrom:
		t.w("(")
		if err := t.printFrom(s, f.inner); err != nil {
			return err
		}
		t.w(")")
	default:
		return errorf("unsupported FROM item")
	}
	return nil
}

func (t *translator) selectStmt(s *selectStmt, parent *scope) error {
	for i, c := range s.cores {
		if i > 0 {
			t.w(" UNION ")
			if s.unionAll[i-1] {
				t.w("ALL ")
			}
		}
		if err := t.selectCore(c, parent, s.orderBy, len(s.cores) == 1); err != nil {
			return err
		}
	}
	return nil
}

// selectCore prints one SELECT; a lone core also prints the statement's ORDER BY and TOP (as LIMIT).
func (t *translator) selectCore(c *selectCore, parent *scope, orderBy []orderItem, lone bool) error {
	s := &scope{parent: parent, aliases: map[string]bool{}}
	// FROM is resolved first: its tables give the select list its names.
	for _, f := range c.from {
		if err := t.bindFrom(s, f); err != nil {
			return err
		}
	}
	t.w("SELECT ")
	if c.distinct {
		t.w("DISTINCT ")
	}
	for i, it := range c.items {
		if i > 0 {
			t.w(", ")
		}
		switch {
		case it.star && it.qual == nil:
			if len(s.entries) == 0 {
				return errorf("SELECT * needs a FROM clause")
			}
			for j, e := range s.entries {
				if j > 0 {
					t.w(", ")
				}
				t.w(e.emit, ".*")
				t.noteColumns(e.table)
			}
		case it.star:
			e, err := s.qualifier(it.qual, true)
			if err != nil {
				return err
			}
			t.w(e.emit, ".*")
			t.noteColumns(e.table)
		default:
			if err := t.expr(s, it.x); err != nil {
				return err
			}
			if it.alias != nil {
				if err := checkAlias(it.alias.text); err != nil {
					return err
				}
				t.w(" AS ", quoteIdent(it.alias.text))
				s.aliases[strings.ToLower(it.alias.text)] = true
			}
		}
	}
	for i, f := range c.from {
		if i == 0 {
			t.w(" FROM ")
		} else {
			t.w(", ")
		}
		if err := t.printFrom(s, f); err != nil {
			return err
		}
	}
	if c.where != nil {
		t.w(" WHERE ")
		if err := t.expr(s, c.where); err != nil {
			return err
		}
	}
	for i, g := range c.groupBy {
		if i == 0 {
			t.w(" GROUP BY ")
		} else {
			t.w(", ")
		}
		if err := t.expr(s, g); err != nil {
			return err
		}
	}
	if c.having != nil {
		t.w(" HAVING ")
		if err := t.expr(s, c.having); err != nil {
			return err
		}
	}
	if lone {
		s.orderBy = true
		for i, o := range orderBy {
			if i == 0 {
				t.w(" ORDER BY ")
			} else {
				t.w(", ")
			}
			if err := t.expr(s, o.x); err != nil {
				return err
			}
			if o.desc {
				t.w(" DESC")
			}
		}
		s.orderBy = false
		if c.top >= 0 {
			t.w(" LIMIT ", strconv.Itoa(c.top))
		}
	}
	return nil
}

// checkAlias refuses select-list aliases the databases would mangle (PostgreSQL truncates names past 63 bytes).
func checkAlias(a string) error {
	if len(a) > 63 {
		return errorf("alias '%s' is longer than 63 bytes", a)
	}
	return nil
}

func (t *translator) noteColumns(tb *Table) {
	for _, c := range tb.Columns {
		t.out.Columns[c.SQL] = c
	}
}

// qualifier finds the FROM entry a qualifier (alias, table name, or schema.table) names, in this
// scope or, for correlated subqueries, an enclosing one.
func (s *scope) qualifier(q []name, here bool) (*entry, error) {
	key := strings.ToLower(q[len(q)-1].text)
	if len(q) > 2 {
		return nil, errorf("name '%s' has too many parts", joinNames(q))
	}
	for sc := s; sc != nil; sc = sc.parent {
		for _, e := range sc.entries {
			// With a schema prefix only a table's own name matches, never an alias.
			if len(q) == 2 && e.key != strings.ToLower(e.table.Name) {
				continue
			}
			if e.key == key {
				return e, nil
			}
		}
		if here {
			break
		}
	}
	return nil, errorf("'%s' is not a table or alias of this statement's FROM clause", joinNames(q))
}

// column resolves a column reference against the scopes.
func (t *translator) column(s *scope, c *colRef) error {
	parts := c.parts
	if len(parts) == 1 {
		n := parts[0].text
		if s.orderBy && s.aliases[strings.ToLower(n)] {
			t.w(quoteIdent(n))
			return nil
		}
		for sc := s; sc != nil; sc = sc.parent {
			var found *entry
			var col Column
			for _, e := range sc.entries {
				if cc, ok := e.table.Column(n); ok {
					if found != nil {
						return errorf("column '%s' is ambiguous: qualify it with a table alias", n)
					}
					found, col = e, cc
				}
			}
			if found != nil {
				t.w(found.emit, ".", quoteIdent(col.SQL))
				t.out.Columns[col.SQL] = col
				return nil
			}
		}
		return errorf("unknown column or unsupported construct '%s'", n)
	}
	e, err := s.qualifier(parts[:len(parts)-1], false)
	if err != nil {
		return err
	}
	n := parts[len(parts)-1].text
	col, ok := e.table.Column(n)
	if !ok {
		return errorf("unknown column '%s' of table '%s'", n, e.table.Name)
	}
	t.w(e.emit, ".", quoteIdent(col.SQL))
	t.out.Columns[col.SQL] = col
	return nil
}

func (t *translator) exprList(s *scope, xs []expr) error {
	for i, x := range xs {
		if i > 0 {
			t.w(", ")
		}
		if err := t.expr(s, x); err != nil {
			return err
		}
	}
	return nil
}

func (t *translator) subSelect(s *scope, sel *selectStmt) error {
	t.w("(")
	if err := t.selectStmt(sel, s); err != nil {
		return err
	}
	t.w(")")
	return nil
}

func (t *translator) expr(s *scope, x expr) error {
	switch x := x.(type) {
	case *colRef:
		return t.column(s, x)
	case *strLit:
		t.w("'", strings.ReplaceAll(x.v, "'", "''"), "'")
	case *numLit:
		t.w(x.v)
	case *nullLit:
		t.w("NULL")
	case *boolLit:
		if x.v {
			t.w("TRUE")
		} else {
			t.w("FALSE")
		}
	case *paramRef:
		t.arg(t.params[x.idx])
	case *nowExpr:
		t.now()
	case *call:
		return t.call(s, x)
	case *unary:
		if x.op == "NOT" {
			t.w("NOT ")
		} else {
			t.w(x.op)
		}
		t.w("(")
		if err := t.expr(s, x.x); err != nil {
			return err
		}
		t.w(")")
	case *binary:
		t.w("(")
		if err := t.expr(s, x.l); err != nil {
			return err
		}
		t.w(" ", x.op, " ")
		if err := t.expr(s, x.r); err != nil {
			return err
		}
		t.w(")")
	case *parenExpr:
		t.w("(")
		if err := t.expr(s, x.x); err != nil {
			return err
		}
		t.w(")")
	case *isNull:
		t.w("(")
		if err := t.expr(s, x.x); err != nil {
			return err
		}
		if x.not {
			t.w(" IS NOT NULL)")
		} else {
			t.w(" IS NULL)")
		}
	case *inExpr:
		t.w("(")
		if err := t.expr(s, x.x); err != nil {
			return err
		}
		if x.not {
			t.w(" NOT")
		}
		t.w(" IN ")
		if x.sub != nil {
			if err := t.subSelect(s, x.sub); err != nil {
				return err
			}
		} else {
			t.w("(")
			if err := t.exprList(s, x.list); err != nil {
				return err
			}
			t.w(")")
		}
		t.w(")")
	case *likeExpr:
		t.w("(")
		if err := t.expr(s, x.x); err != nil {
			return err
		}
		if x.not {
			t.w(" NOT")
		}
		t.w(" LIKE ")
		if err := t.expr(s, x.pat); err != nil {
			return err
		}
		t.w(")")
	case *between:
		t.w("(")
		if err := t.expr(s, x.x); err != nil {
			return err
		}
		if x.not {
			t.w(" NOT")
		}
		t.w(" BETWEEN ")
		if err := t.expr(s, x.lo); err != nil {
			return err
		}
		t.w(" AND ")
		if err := t.expr(s, x.hi); err != nil {
			return err
		}
		t.w(")")
	case *existsExpr:
		t.w("EXISTS ")
		return t.subSelect(s, x.sub)
	case *subquery:
		return t.subSelect(s, x.sel)
	case *caseExpr:
		t.w("CASE")
		if x.operand != nil {
			t.w(" ")
			if err := t.expr(s, x.operand); err != nil {
				return err
			}
		}
		for _, w := range x.whens {
			t.w(" WHEN ")
			if err := t.expr(s, w[0]); err != nil {
				return err
			}
			t.w(" THEN ")
			if err := t.expr(s, w[1]); err != nil {
				return err
			}
		}
		if x.els != nil {
			t.w(" ELSE ")
			if err := t.expr(s, x.els); err != nil {
				return err
			}
		}
		t.w(" END")
	default:
		return errorf("unsupported expression")
	}
	return nil
}

// call prints an allowlisted function. The name is looked up as written, whatever its quoting: a
// quoted or bracketed name is no way around the allowlist.
func (t *translator) call(s *scope, c *call) error {
	u := strings.ToUpper(c.fn.text)
	if nowFunctions[u] {
		if c.star || len(c.args) != 0 {
			return errorf("%s() takes no arguments", c.fn.text)
		}
		t.now()
		return nil
	}
	f, ok := functions[u]
	if !ok {
		return errorf("function %s() is not supported", c.fn.text)
	}
	if c.star {
		if u != "COUNT" {
			return errorf("%s(*) is not supported", c.fn.text)
		}
		t.w("count(*)")
		return nil
	}
	if c.distinct && !f.aggregate {
		return errorf("DISTINCT is allowed in aggregate functions only")
	}
	if len(c.args) < f.min || (f.max >= 0 && len(c.args) > f.max) {
		return errorf("%s() takes %s", c.fn.text, argCount(f))
	}
	n := f.sqlite
	if t.opt.Dialect == Postgres {
		n = f.postgres
	}
	t.w(n, "(")
	if c.distinct {
		t.w("DISTINCT ")
	}
	if err := t.exprList(s, c.args); err != nil {
		return err
	}
	t.w(")")
	return nil
}

func argCount(f fn) string {
	switch {
	case f.max < 0:
		return "at least " + strconv.Itoa(f.min) + " arguments"
	case f.min == f.max && f.min == 1:
		return "1 argument"
	case f.min == f.max:
		return strconv.Itoa(f.min) + " arguments"
	}
	return strconv.Itoa(f.min) + " to " + strconv.Itoa(f.max) + " arguments"
}

// target resolves the table of an INSERT, UPDATE or DELETE; its columns are printed qualified with
// the physical table name.
func (t *translator) target(r tableRef) (*Table, *scope, error) {
	tb, err := t.lookup(r.parts)
	if err != nil {
		return nil, nil, err
	}
	s := &scope{}
	s.entries = []*entry{{key: strings.ToLower(tb.Name), table: tb, emit: quoteIdent(tb.SQL)}}
	return tb, s, nil
}

// maintained are the system columns every write keeps up to date itself.
var maintained = map[string]bool{ColCreatedAt: true, ColUpdatedAt: true, ColVersion: true}

func (t *translator) insert(st *insertStmt) error {
	tb, _, err := t.target(st.table)
	if err != nil {
		return err
	}
	empty := &scope{}
	var cols []string
	seen := map[string]bool{}
	hasID, hasDeleted := false, false
	for _, n := range st.cols {
		c, ok := tb.Column(n.text)
		if !ok {
			return errorf("unknown column '%s' of table '%s'", n.text, tb.Name)
		}
		if maintained[c.SQL] {
			return errorf("column '%s' is maintained by Gatehouse and cannot be written", n.text)
		}
		if seen[c.SQL] {
			return errorf("column '%s' is named twice", n.text)
		}
		seen[c.SQL] = true
		hasID = hasID || c.SQL == ColID
		hasDeleted = hasDeleted || c.SQL == ColDeleted
		cols = append(cols, quoteIdent(c.SQL))
		t.out.Columns[c.SQL] = c
	}
	cols = append(cols, quoteIdent(ColCreatedAt), quoteIdent(ColUpdatedAt), quoteIdent(ColVersion))
	if !hasDeleted {
		cols = append(cols, quoteIdent(ColDeleted))
	}
	addID := !hasID && tb.StringID
	if addID {
		cols = append(cols, quoteIdent(ColID))
	}
	t.w("INSERT INTO ", quoteIdent(tb.SQL), " (", strings.Join(cols, ", "), ") VALUES (")
	for i, v := range st.values {
		if i > 0 {
			t.w(", ")
		}
		if err := t.expr(empty, v); err != nil {
			return err
		}
	}
	if len(st.values) > 0 {
		t.w(", ")
	}
	t.now()
	t.w(", ")
	t.now()
	t.w(", ")
	v, err := t.opt.NewVersion()
	if err != nil {
		return err
	}
	t.arg(v)
	if !hasDeleted {
		t.w(", FALSE")
	}
	if addID {
		t.w(", ")
		t.arg(t.opt.NewID())
	}
	t.w(")")
	return nil
}

func (t *translator) update(st *updateStmt) error {
	tb, s, err := t.target(st.table)
	if err != nil {
		return err
	}
	t.w("UPDATE ", quoteIdent(tb.SQL), " SET ", quoteIdent(ColUpdatedAt), " = ")
	t.now()
	t.w(", ", quoteIdent(ColVersion), " = ")
	v, err := t.opt.NewVersion()
	if err != nil {
		return err
	}
	t.arg(v)
	seen := map[string]bool{}
	for _, it := range st.sets {
		n := it.col[len(it.col)-1].text
		if len(it.col) > 1 {
			if _, err := s.qualifier(it.col[:len(it.col)-1], true); err != nil {
				return err
			}
		}
		c, ok := tb.Column(n)
		if !ok {
			return errorf("unknown column '%s' of table '%s'", n, tb.Name)
		}
		if maintained[c.SQL] {
			return errorf("column '%s' is maintained by Gatehouse and cannot be written", n)
		}
		if seen[c.SQL] {
			return errorf("column '%s' is set twice", n)
		}
		seen[c.SQL] = true
		t.out.Columns[c.SQL] = c
		t.w(", ", quoteIdent(c.SQL), " = ")
		if err := t.expr(s, it.x); err != nil {
			return err
		}
	}
	if st.where != nil {
		t.w(" WHERE ")
		return t.expr(s, st.where)
	}
	return nil
}

func (t *translator) delete(st *deleteStmt) error {
	tb, s, err := t.target(st.table)
	if err != nil {
		return err
	}
	t.w("DELETE FROM ", quoteIdent(tb.SQL))
	if st.truncate {
		t.out.Truncated = tb.Name
	}
	if st.where != nil {
		t.w(" WHERE ")
		return t.expr(s, st.where)
	}
	return nil
}
