package script

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
)

// SQLError is a statement mssql.query refuses (naming the construct) or that the database rejected.
type SQLError struct{ Msg string }

func (e *SQLError) Error() string { return e.Msg }

func sqlErrorf(format string, args ...any) error {
	return &SQLError{Msg: "mssql: " + fmt.Sprintf(format, args...)}
}

// MSSQL runs the T-SQL that classic scripts hold on the configured database (SQLite or PostgreSQL):
// the common forms are translated (TOP n, [bracketed] and schema-qualified names, TRUNCATE TABLE,
// GETDATE()/GETUTCDATE(), LEN, ISNULL), table and column names are mapped to the app's own tables
// (gh_<name>, c_<name>, the system columns), and everything else is refused with the construct named.
// Statements reach only the app's tables: an unknown table or column name is an error.
type MSSQL struct {
	DB     *store.DB
	Tables *table.Service
}

// NewSQL builds the mssql service.
func NewSQL(db *store.DB, svc *table.Service) *MSSQL { return &MSSQL{DB: db, Tables: svc} }

type tokKind int

const (
	tWord tokKind = iota
	tQuoted
	tString
	tNumber
	tParam
	tPunct
)

type sqlTok struct {
	kind tokKind
	text string // word text (original case), quoted name without quotes, literal as written
}

func tokenize(s string) ([]sqlTok, error) {
	var out []sqlTok
	r := []rune(s)
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '-' && i+1 < len(r) && r[i+1] == '-':
			for i < len(r) && r[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(r) && r[i+1] == '*':
			end := strings.Index(string(r[i+2:]), "*/")
			if end < 0 {
				return nil, sqlErrorf("unterminated comment")
			}
			i += 2 + len([]rune(string(r[i+2:])[:end])) + 2
		case c == '\'' || ((c == 'N' || c == 'n') && i+1 < len(r) && r[i+1] == '\''):
			if c != '\'' {
				i++
			}
			j := i + 1
			var b strings.Builder
			for {
				if j >= len(r) {
					return nil, sqlErrorf("unterminated string literal")
				}
				if r[j] == '\'' {
					if j+1 < len(r) && r[j+1] == '\'' {
						b.WriteRune('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteRune(r[j])
				j++
			}
			out = append(out, sqlTok{kind: tString, text: b.String()})
			i = j + 1
		case c == '[' || c == '"':
			closer := ']'
			if c == '"' {
				closer = '"'
			}
			j := i + 1
			for j < len(r) && r[j] != closer {
				j++
			}
			if j >= len(r) {
				return nil, sqlErrorf("unterminated quoted name")
			}
			out = append(out, sqlTok{kind: tQuoted, text: string(r[i+1 : j])})
			i = j + 1
		case c == '?':
			out = append(out, sqlTok{kind: tParam, text: "?"})
			i++
		case unicode.IsDigit(c) || (c == '.' && i+1 < len(r) && unicode.IsDigit(r[i+1])):
			j := i
			for j < len(r) && (unicode.IsDigit(r[j]) || r[j] == '.' || r[j] == 'e' || r[j] == 'E') {
				j++
			}
			out = append(out, sqlTok{kind: tNumber, text: string(r[i:j])})
			i = j
		case unicode.IsLetter(c) || c == '_' || c == '@' || c == '#':
			j := i
			for j < len(r) && (unicode.IsLetter(r[j]) || unicode.IsDigit(r[j]) || r[j] == '_' || r[j] == '@' || r[j] == '#' || r[j] == '$') {
				j++
			}
			out = append(out, sqlTok{kind: tWord, text: string(r[i:j])})
			i = j
		default:
			two := ""
			if i+1 < len(r) {
				two = string(r[i : i+2])
			}
			switch two {
			case "<>", "!=", "<=", ">=":
				out = append(out, sqlTok{kind: tPunct, text: two})
				i += 2
				continue
			}
			if strings.ContainsRune("(),.;*=<>+-/%", c) {
				out = append(out, sqlTok{kind: tPunct, text: string(c)})
				i++
				continue
			}
			return nil, sqlErrorf("unexpected character %q", c)
		}
	}
	return out, nil
}

// keywords pass through (upper-cased); functions are mapped per dialect.
var sqlKeywords = map[string]bool{
	"SELECT": true, "DISTINCT": true, "FROM": true, "WHERE": true, "AND": true, "OR": true, "NOT": true, "IN": true,
	"IS": true, "NULL": true, "LIKE": true, "BETWEEN": true, "ORDER": true, "BY": true, "ASC": true, "DESC": true,
	"GROUP": true, "HAVING": true, "AS": true, "INSERT": true, "INTO": true, "VALUES": true, "UPDATE": true,
	"SET": true, "DELETE": true, "JOIN": true, "INNER": true, "LEFT": true, "RIGHT": true, "OUTER": true, "ON": true,
	"CASE": true, "WHEN": true, "THEN": true, "ELSE": true, "END": true, "EXISTS": true, "UNION": true, "ALL": true,
	"TRUE": true, "FALSE": true,
}

var sqlFunctions = map[string]string{
	"COUNT": "COUNT", "SUM": "SUM", "MIN": "MIN", "MAX": "MAX", "AVG": "AVG", "UPPER": "UPPER", "LOWER": "LOWER",
	"LEN": "LENGTH", "LTRIM": "LTRIM", "RTRIM": "RTRIM", "ABS": "ABS", "ROUND": "ROUND", "COALESCE": "COALESCE",
	"ISNULL": "COALESCE", "SUBSTRING": "SUBSTR", "REPLACE": "REPLACE",
}

// refused names the T-SQL constructs we answer with a clear error.
var refused = map[string]string{
	"EXEC": "EXEC (stored procedures)", "EXECUTE": "EXECUTE (stored procedures)", "CREATE": "CREATE", "DROP": "DROP",
	"ALTER": "ALTER", "MERGE": "MERGE", "DECLARE": "DECLARE (variables)", "WITH": "WITH (common table expressions, table hints)",
	"OUTPUT": "OUTPUT", "APPLY": "APPLY", "PIVOT": "PIVOT", "OFFSET": "OFFSET ... FETCH", "FETCH": "OFFSET ... FETCH",
	"GRANT": "GRANT", "REVOKE": "REVOKE", "BEGIN": "transactions (BEGIN)", "COMMIT": "transactions (COMMIT)",
	"ROLLBACK": "transactions (ROLLBACK)", "NEWID": "NEWID()", "CHARINDEX": "CHARINDEX", "CONVERT": "CONVERT",
	"CAST": "CAST", "DATEADD": "DATEADD", "DATEDIFF": "DATEDIFF", "IDENTITY": "IDENTITY", "SCOPE_IDENTITY": "SCOPE_IDENTITY()",
	"NOLOCK": "table hints", "IIF": "IIF", "OPENQUERY": "OPENQUERY", "OPENROWSET": "OPENROWSET", "INFORMATION_SCHEMA": "INFORMATION_SCHEMA",
	"SYS": "system views", "WAITFOR": "WAITFOR", "USE": "USE", "GO": "GO",
}

// translation is one statement made ready for the database.
type translation struct {
	sql     string
	args    []any
	query   bool                    // returns rows
	columns map[string]table.Column // physical column name → column, to map results back
}

func (s *MSSQL) dateArg(t time.Time) any {
	if s.DB.Dialect == store.Postgres {
		return t.UTC()
	}
	return t.UTC().UnixMilli()
}

func (s *MSSQL) now() string {
	if s.DB.Dialect == store.Postgres {
		return "CURRENT_TIMESTAMP"
	}
	return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
}

func quoteName(n string) string { return `"` + strings.ReplaceAll(n, `"`, `""`) + `"` }

// translate turns a T-SQL statement into the configured dialect.
func (s *MSSQL) translate(ctx context.Context, tsql string, params []any) (*translation, error) {
	toks, err := tokenize(tsql)
	if err != nil {
		return nil, err
	}
	for len(toks) > 0 && toks[len(toks)-1].kind == tPunct && toks[len(toks)-1].text == ";" {
		toks = toks[:len(toks)-1]
	}
	if len(toks) == 0 {
		return nil, sqlErrorf("empty statement")
	}
	nParams := 0
	for _, t := range toks {
		if t.kind == tPunct && t.text == ";" {
			return nil, sqlErrorf("multiple statements in one query are not supported")
		}
		if t.kind == tParam {
			nParams++
		}
		if t.kind == tWord {
			u := strings.ToUpper(t.text)
			if strings.HasPrefix(t.text, "@") || strings.HasPrefix(t.text, "#") {
				return nil, sqlErrorf("'%s' is not supported (variables and temporary tables)", t.text)
			}
			if what, ok := refused[u]; ok {
				return nil, sqlErrorf("%s is not supported", what)
			}
		}
	}
	if nParams != len(params) {
		return nil, sqlErrorf("the statement has %d '?' parameters but %d values were given", nParams, len(params))
	}
	first := strings.ToUpper(toks[0].text)
	tr := &translation{columns: map[string]table.Column{}}
	switch first {
	case "SELECT":
		tr.query = true
	case "INSERT", "UPDATE", "DELETE":
	case "TRUNCATE":
		if len(toks) < 3 || !strings.EqualFold(toks[1].text, "TABLE") {
			return nil, sqlErrorf("expected TRUNCATE TABLE <name>")
		}
		toks = append([]sqlTok{{kind: tWord, text: "DELETE"}, {kind: tWord, text: "FROM"}}, toks[2:]...)
		first = "DELETE"
	default:
		return nil, sqlErrorf("'%s' statements are not supported (SELECT, INSERT, UPDATE, DELETE and TRUNCATE TABLE are)", toks[0].text)
	}

	// Pass 1: tables (after FROM, JOIN, INTO, UPDATE, and comma lists after FROM), with optional
	// schema prefix, and their aliases.
	tables := map[string]*table.Schema{} // by lower name
	aliases := map[string]bool{}
	tableAt := map[int]*table.Schema{} // token index of a table name → schema (prefix tokens dropped)
	skip := map[int]bool{}
	var schemas []*table.Schema
	inFrom := false
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		u := strings.ToUpper(t.text)
		isName := func(j int) bool { return j < len(toks) && (toks[j].kind == tWord || toks[j].kind == tQuoted) }
		expectTable := false
		if t.kind == tWord {
			switch u {
			case "FROM", "JOIN", "INTO":
				expectTable = true
				inFrom = u == "FROM" || u == "JOIN"
			case "UPDATE":
				expectTable = i == 0
			case "WHERE", "ORDER", "GROUP", "ON", "SET", "VALUES", "HAVING":
				inFrom = false
			}
		}
		if t.kind == tPunct && t.text == "," && inFrom {
			expectTable = true
		}
		if !expectTable || !isName(i+1) {
			continue
		}
		j := i + 1
		if isName(j+2) && toks[j+1].kind == tPunct && toks[j+1].text == "." {
			skip[j], skip[j+1] = true, true // schema prefix (the original's service schema)
			j += 2
		}
		sc, err := s.Tables.Lookup(ctx, toks[j].text)
		if err != nil {
			if errors.Is(err, table.ErrNoTable) {
				return nil, sqlErrorf("unknown table '%s' (scripts can query only the app's tables)", toks[j].text)
			}
			return nil, err
		}
		tables[strings.ToLower(sc.Name)] = sc
		schemas = append(schemas, sc)
		tableAt[j] = sc
		// alias: FROM t x | FROM t AS x
		k := j + 1
		if k < len(toks) && toks[k].kind == tWord && strings.EqualFold(toks[k].text, "AS") {
			k++
		}
		if k < len(toks) && (toks[k].kind == tQuoted || (toks[k].kind == tWord && !sqlKeywords[strings.ToUpper(toks[k].text)] && !isClause(toks[k].text))) {
			aliases[strings.ToLower(toks[k].text)] = true
		}
		i = j
	}
	if len(schemas) == 0 {
		return nil, sqlErrorf("the statement names no table")
	}
	for _, sc := range schemas {
		for _, c := range sc.Columns() {
			tr.columns[c.SQL] = c
		}
	}
	// column aliases: <expr> AS name
	for i := 0; i+1 < len(toks); i++ {
		if toks[i].kind == tWord && strings.EqualFold(toks[i].text, "AS") && (toks[i+1].kind == tWord || toks[i+1].kind == tQuoted) {
			aliases[strings.ToLower(toks[i+1].text)] = true
		}
	}
	column := func(name string) (string, table.Column, bool) {
		if phys, ok := table.SystemColumn(name); ok {
			return phys, table.Column{Name: name, SQL: phys}, true
		}
		for _, sc := range schemas {
			if c, ok := sc.Column(name); ok {
				return c.SQL, c, true
			}
		}
		return "", table.Column{}, false
	}

	// Pass 2: rewrite.
	var out []string
	var args []any
	pi := 0
	limit := ""
	insertCols := -1 // token index where the INSERT column list closes
	for i := 0; i < len(toks); i++ {
		if skip[i] {
			continue
		}
		t := toks[i]
		if sc, ok := tableAt[i]; ok {
			out = append(out, quoteName(sc.SQLName))
			continue
		}
		switch t.kind {
		case tString:
			out = append(out, "'"+strings.ReplaceAll(t.text, "'", "''")+"'")
			continue
		case tNumber:
			out = append(out, t.text)
			continue
		case tParam:
			out = append(out, "?")
			a := params[pi]
			if d, ok := a.(time.Time); ok {
				a = s.dateArg(d)
			}
			args = append(args, a)
			pi++
			continue
		case tPunct:
			out = append(out, t.text)
			if t.text == ")" && first == "INSERT" && insertCols < 0 {
				insertCols = len(out) - 1
			}
			continue
		}
		u := strings.ToUpper(t.text)
		if t.kind == tWord && u == "TOP" {
			if first != "SELECT" {
				return nil, sqlErrorf("TOP is supported in SELECT only")
			}
			// TOP n | TOP (n)
			j := i + 1
			paren := j < len(toks) && toks[j].text == "("
			if paren {
				j++
			}
			if j >= len(toks) || toks[j].kind != tNumber {
				return nil, sqlErrorf("TOP needs a number")
			}
			n, err := strconv.Atoi(toks[j].text)
			if err != nil || n < 0 {
				return nil, sqlErrorf("TOP needs a whole number")
			}
			limit = " LIMIT " + strconv.Itoa(n)
			if paren {
				j++
			}
			if j < len(toks) && strings.EqualFold(toks[j].text, "PERCENT") {
				return nil, sqlErrorf("TOP ... PERCENT is not supported")
			}
			i = j
			continue
		}
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1].text
		}
		if t.kind == tWord && sqlKeywords[u] {
			out = append(out, u)
			continue
		}
		if t.kind == tWord && next == "(" {
			switch u {
			case "GETDATE", "GETUTCDATE", "SYSDATETIMEOFFSET", "SYSUTCDATETIME", "SYSDATETIME", "CURRENT_TIMESTAMP":
				if i+2 < len(toks) && toks[i+2].text == ")" {
					out = append(out, s.now())
					i += 2
					continue
				}
			}
			if f, ok := sqlFunctions[u]; ok {
				if f == "SUBSTR" && s.DB.Dialect == store.Postgres {
					f = "SUBSTRING"
				}
				out = append(out, f)
				continue
			}
			return nil, sqlErrorf("function %s() is not supported", t.text)
		}
		lower := strings.ToLower(t.text)
		if sc, ok := tables[lower]; ok && next == "." {
			out = append(out, quoteName(sc.SQLName))
			continue
		}
		if aliases[lower] {
			out = append(out, quoteName(t.text))
			continue
		}
		if phys, c, ok := column(t.text); ok {
			out = append(out, quoteName(phys))
			tr.columns[phys] = c
			continue
		}
		if t.kind == tWord && u == "CURRENT_TIMESTAMP" {
			out = append(out, s.now())
			continue
		}
		return nil, sqlErrorf("unknown column or unsupported construct '%s'", t.text)
	}

	// System columns a write must maintain.
	sc := schemas[0]
	switch first {
	case "UPDATE":
		// UPDATE t SET ... → also bump updatedAt and the version.
		for i, w := range out {
			if w == "SET" {
				extra := []string{quoteName("sys_updated_at"), "=", s.now(), ",", quoteName("sys_version"), "=", "?", ","}
				out = append(out[:i+1], append(extra, out[i+1:]...)...)
				args = append([]any{table.NewVersion()}, args...)
				break
			}
		}
	case "INSERT":
		if insertCols < 0 || !strings.Contains(strings.Join(out, " "), "VALUES") {
			return nil, sqlErrorf("INSERT needs a column list and VALUES (INSERT ... SELECT is not supported)")
		}
		cols := []string{",", quoteName("sys_created_at"), ",", quoteName("sys_updated_at"), ",", quoteName("sys_version"), ",", quoteName("sys_deleted")}
		vals := []string{",", s.now(), ",", s.now(), ",", "?", ",", "?"}
		extraArgs := []any{table.NewVersion(), s.falseValue()}
		hasID := false
		for _, c := range tr.columns {
			if c.SQL == "id" {
				hasID = true
			}
		}
		if !hasID && sc.IDType == table.StringID {
			cols = append(cols, ",", "id")
			vals = append(vals, ",", "?")
			extraArgs = append(extraArgs, table.NewItemID())
		}
		// VALUES ( ... ) : find the closing parenthesis of the (single) row.
		vi := -1
		for i, w := range out {
			if w == "VALUES" {
				vi = i
			}
		}
		depth, closeAt := 0, -1
		for i := vi + 1; i < len(out); i++ {
			if out[i] == "(" {
				depth++
			}
			if out[i] == ")" {
				depth--
				if depth == 0 {
					closeAt = i
					break
				}
			}
		}
		if closeAt < 0 || closeAt != len(out)-1 {
			return nil, sqlErrorf("INSERT supports one row of VALUES")
		}
		out = append(out[:closeAt], append(vals, ")")...)
		out = append(out[:insertCols], append(cols, out[insertCols:]...)...)
		args = append(args, extraArgs...)
	}
	tr.sql = s.DB.Rebind(strings.Join(out, " ") + limit)
	tr.args = args
	return tr, nil
}

func (s *MSSQL) falseValue() any {
	if s.DB.Dialect == store.Postgres {
		return false
	}
	return int64(0)
}

func isClause(w string) bool {
	switch strings.ToUpper(w) {
	case "WHERE", "ORDER", "GROUP", "HAVING", "SET", "VALUES", "ON", "JOIN", "INNER", "LEFT", "RIGHT", "OUTER", "UNION":
		return true
	}
	return false
}

// Query runs a statement: rows for SELECT (column names and values as the app sees them), an empty
// list for the others.
func (s *MSSQL) Query(ctx context.Context, tsql string, params []any) ([]map[string]any, error) {
	tr, err := s.translate(ctx, tsql, params)
	if err != nil {
		return nil, err
	}
	if !tr.query {
		if _, err := s.DB.ExecContext(ctx, tr.sql, tr.args...); err != nil {
			return nil, &SQLError{Msg: "mssql: the statement failed: " + err.Error()}
		}
		return []map[string]any{}, nil
	}
	rows, err := s.DB.QueryContext(ctx, tr.sql, tr.args...)
	if err != nil {
		return nil, &SQLError{Msg: "mssql: the statement failed: " + err.Error()}
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for rows.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(map[string]any, len(names))
		for i, n := range names {
			row[s.wireName(tr, n)] = s.wireValue(tr, n, vals[i])
		}
		out = append(out, row)
		if len(out) > 100000 {
			return nil, sqlErrorf("more than 100000 rows; use TOP")
		}
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, &SQLError{Msg: "mssql: the statement failed: " + err.Error()}
	}
	return out, nil
}

func (s *MSSQL) wireName(tr *translation, n string) string {
	if p := table.SystemProperty(n); p != "" {
		return p
	}
	if c, ok := tr.columns[n]; ok {
		return c.Name
	}
	return n
}

func (s *MSSQL) wireValue(tr *translation, n string, v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(table.DateFormat)
	}
	if s.DB.Dialect == store.SQLite {
		typ := table.ColumnType("")
		if c, ok := tr.columns[n]; ok {
			typ = c.Type
		}
		switch {
		case n == "sys_created_at" || n == "sys_updated_at" || typ == table.Date:
			if ms, ok := v.(int64); ok {
				return time.UnixMilli(ms).UTC().Format(table.DateFormat)
			}
		case n == "sys_deleted" || typ == table.Boolean:
			if b, ok := v.(int64); ok {
				return b != 0
			}
		}
	}
	return v
}
