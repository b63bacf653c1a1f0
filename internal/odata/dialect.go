package odata

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Dialect is the SQL flavour to compile for: SQLite or Postgres. The
// interface is sealed; only this package implements it.
type Dialect interface {
	// Placeholder returns the text of bound parameter n (1-based) without
	// any cast: "?n" for SQLite, "$n" for PostgreSQL.
	Placeholder(n int) string

	validate() error
	param(n int, t Type) string
	boolArg(b bool) any
	timeArg(t time.Time) any
	null(t Type) string
	real(x string) string
	operand(x string, t Type) string
	collate() string
	lower(x string) string
	upper(x string) string
	indexOf(s, t string) string
	contains(h, n string) string
	startsWith(s, p string) string
	endsWith(s, p string) string
	clampIndex(x string) string
	datePart(fn, x string) string
	div(a, b string) string
	mod(a, b string) string
	round(x string) string
	floor(x string) string
	ceiling(x string) string
	noLimit() string
	// indexNulls is the NULL placement to declare on an ascending index key so that it matches
	// the ASC NULLS FIRST that ORDER BY compiles to ("" when that is the dialect's default).
	indexNulls() string
}

// Names used by SQLite{} when its fields are empty. The store registers
// them with SQLite.Register (or its own equivalents) before opening
// connections.
const (
	SQLiteCollation = "gatehouse_unicode"
	SQLiteLower     = "gatehouse_lower"
	SQLiteUpper     = "gatehouse_upper"
)

// PostgresCollation is the default ICU root collation of Postgres{}.
const PostgresCollation = "und-x-icu"

// maxIndex bounds substring positions so that they fit PostgreSQL's int4
// substr arguments (no text value can be longer than 1 GB anyway).
const maxIndex = 1<<30 - 1

var sqlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// SQLite compiles for SQLite (modernc.org/sqlite). Storage: String TEXT,
// Number REAL, Integer INTEGER, Boolean INTEGER 0/1, Date INTEGER
// milliseconds since the Unix epoch (UTC).
//
// Empty fields select SQLiteCollation, SQLiteLower and SQLiteUpper, which
// must be registered (SQLite.Register). Set them to "BINARY", "lower" and
// "upper" to use SQLite's built-ins (byte order, ASCII-only case mapping).
type SQLite struct {
	Collation string // collating sequence for ordering strings
	Lower     string // scalar function used for tolower
	Upper     string // scalar function used for toupper
}

func (d SQLite) names() (coll, lower, upper string) {
	coll, lower, upper = d.Collation, d.Lower, d.Upper
	if coll == "" {
		coll = SQLiteCollation
	}
	if lower == "" {
		lower = SQLiteLower
	}
	if upper == "" {
		upper = SQLiteUpper
	}
	return coll, lower, upper
}

// Placeholder implements Dialect.
func (SQLite) Placeholder(n int) string { return "?" + strconv.Itoa(n) }

func (d SQLite) validate() error {
	c, l, u := d.names()
	for _, n := range []string{c, l, u} {
		if !sqlName.MatchString(n) {
			return fmt.Errorf("odata: invalid SQLite function or collation name %q", n)
		}
	}
	return nil
}

func (SQLite) param(n int, _ Type) string { return "?" + strconv.Itoa(n) }

func (SQLite) boolArg(b bool) any {
	if b {
		return int64(1)
	}
	return int64(0)
}

// timeArg binds milliseconds since the epoch; a sub-millisecond fraction
// makes it a float so that comparisons with stored milliseconds stay exact.
func (SQLite) timeArg(t time.Time) any {
	ms := t.UnixMilli()
	if rem := t.Nanosecond() % 1e6; rem != 0 {
		return float64(ms) + float64(rem)/1e6
	}
	return ms
}

// operand: SQLite integer arithmetic turns into floating point on
// overflow, so integer operands need no cast.
func (SQLite) operand(x string, _ Type) string { return x }

func (SQLite) null(Type) string        { return "NULL" }
func (SQLite) real(x string) string    { return "CAST(" + x + " AS REAL)" }
func (d SQLite) collate() string       { c, _, _ := d.names(); return c }
func (d SQLite) lower(x string) string { _, l, _ := d.names(); return l + "(" + x + ")" }
func (d SQLite) upper(x string) string { _, _, u := d.names(); return u + "(" + x + ")" }
func (SQLite) indexOf(s, t string) string {
	return "(instr(" + s + ", " + t + ") - 1)"
}
func (SQLite) contains(h, n string) string   { return "(instr(" + h + ", " + n + ") > 0)" }
func (SQLite) startsWith(s, p string) string { return "(instr(" + s + ", " + p + ") = 1)" }

// endsWith: substr(s, -n, n) is the last n characters (all of s when it is
// shorter) and the empty string for n = 0.
func (SQLite) endsWith(s, p string) string {
	return "(substr(" + s + ", -length(" + p + "), length(" + p + ")) = " + p + ")"
}

// clampIndex truncates toward zero and clamps to [0, maxIndex]; the
// multi-argument min/max return NULL when an argument is NULL.
func (SQLite) clampIndex(x string) string {
	return "min(max(CAST(" + x + " AS INTEGER), 0), " + strconv.Itoa(maxIndex) + ")"
}

var sqliteDateFormats = map[string]string{"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}

func (SQLite) datePart(fn, x string) string {
	return "CAST(strftime('" + sqliteDateFormats[fn] + "', " + x + " / 1000.0, 'unixepoch') AS INTEGER)"
}

func (SQLite) div(a, b string) string { return "(CAST(" + a + " AS REAL) / " + b + ")" }

func (SQLite) mod(a, b string) string {
	return "(SELECT _a - _b * trunc(_a / _b) FROM (SELECT CAST(" + a + " AS REAL) AS _a, CAST(" + b + " AS REAL) AS _b))"
}

func (SQLite) round(x string) string {
	return "(SELECT CASE WHEN abs(_x - trunc(_x)) >= 0.5 THEN trunc(_x) + sign(_x) ELSE trunc(_x) END FROM (SELECT CAST(" + x + " AS REAL) AS _x))"
}

func (SQLite) floor(x string) string   { return "floor(" + x + ")" }
func (SQLite) ceiling(x string) string { return "ceil(" + x + ")" }
func (SQLite) noLimit() string         { return "-1" }

// indexNulls: SQLite sorts NULLs first ascending and refuses NULLS FIRST in an index.
func (SQLite) indexNulls() string { return "" }

// Postgres compiles for PostgreSQL (pgx). Storage: String text, Number
// double precision, Integer bigint (or integer), Boolean boolean, Date
// timestamptz. Parameters carry explicit casts ($1::text …) so their types
// never depend on inference.
type Postgres struct {
	// Collation for ordering strings; "" = PostgresCollation ("und-x-icu",
	// needs a server built with ICU). Must be deterministic.
	Collation string
}

// Placeholder implements Dialect.
func (Postgres) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

func (d Postgres) validate() error {
	if d.collate() == "" {
		return fmt.Errorf("odata: invalid PostgreSQL collation name %q", d.Collation)
	}
	return nil
}

var pgTypes = map[Type]string{
	TypeString: "text", TypeNumber: "double precision", TypeInteger: "bigint",
	TypeBoolean: "boolean", TypeDate: "timestamptz",
}

func (Postgres) param(n int, t Type) string { return "$" + strconv.Itoa(n) + "::" + pgTypes[t] }
func (Postgres) boolArg(b bool) any         { return b }
func (Postgres) timeArg(t time.Time) any    { return t.UTC() }

func (Postgres) null(t Type) string {
	if n, ok := pgTypes[t]; ok {
		return "CAST(NULL AS " + n + ")"
	}
	return "NULL"
}

func (Postgres) real(x string) string { return "CAST(" + x + " AS double precision)" }

// operand keeps Number (double) semantics when integer columns meet in
// add, sub or mul (bigint arithmetic would raise errors on overflow).
func (d Postgres) operand(x string, t Type) string {
	if t == TypeInteger {
		return d.real(x)
	}
	return x
}

func (d Postgres) collate() string {
	c := d.Collation
	if c == "" {
		c = PostgresCollation
	}
	q, err := QuoteIdent(c)
	if err != nil {
		return ""
	}
	return q
}

func (Postgres) lower(x string) string         { return "lower(" + x + ")" }
func (Postgres) upper(x string) string         { return "upper(" + x + ")" }
func (Postgres) indexOf(s, t string) string    { return "(strpos(" + s + ", " + t + ") - 1)" }
func (Postgres) contains(h, n string) string   { return "(strpos(" + h + ", " + n + ") > 0)" }
func (Postgres) startsWith(s, p string) string { return "starts_with(" + s + ", " + p + ")" }
func (Postgres) endsWith(s, p string) string {
	return "(right(" + s + ", length(" + p + ")) = " + p + ")"
}

// clampIndex truncates toward zero and clamps to [0, maxIndex]. GREATEST
// and LEAST ignore NULLs, so a scalar subquery evaluates x once and keeps
// NULL as NULL.
func (Postgres) clampIndex(x string) string {
	return "(SELECT CASE WHEN _v < 0 THEN 0 WHEN _v > " + strconv.Itoa(maxIndex) +
		" THEN " + strconv.Itoa(maxIndex) + " ELSE CAST(trunc(_v) AS integer) END FROM (SELECT CAST(" +
		x + " AS double precision) AS _v) AS _c)"
}

var pgDateFields = map[string]string{"year": "YEAR", "month": "MONTH", "day": "DAY", "hour": "HOUR", "minute": "MINUTE", "second": "SECOND"}

func (Postgres) datePart(fn, x string) string {
	e := "EXTRACT(" + pgDateFields[fn] + " FROM (" + x + ") AT TIME ZONE 'UTC')"
	if fn == "second" {
		e = "floor(" + e + ")"
	}
	return "CAST(" + e + " AS double precision)"
}

func (Postgres) div(a, b string) string {
	return "(CAST(" + a + " AS double precision) / NULLIF(CAST(" + b + " AS double precision), 0))"
}

func (Postgres) mod(a, b string) string {
	return "(SELECT _a - _b * trunc(_a / _b) FROM (SELECT CAST(" + a + " AS double precision) AS _a, NULLIF(CAST(" +
		b + " AS double precision), 0) AS _b) AS _m)"
}

func (Postgres) round(x string) string {
	return "(SELECT CASE WHEN abs(_x - trunc(_x)) >= 0.5 THEN trunc(_x) + sign(_x) ELSE trunc(_x) END FROM (SELECT CAST(" +
		x + " AS double precision) AS _x) AS _r)"
}

func (Postgres) floor(x string) string   { return "floor(CAST(" + x + " AS double precision))" }
func (Postgres) ceiling(x string) string { return "ceiling(CAST(" + x + " AS double precision))" }
func (Postgres) noLimit() string         { return "" }

// indexNulls: PostgreSQL's ascending indexes put NULLs last unless told otherwise.
func (Postgres) indexNulls() string { return " NULLS FIRST" }
