package odata

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/text/collate"
	"golang.org/x/text/language"
	"modernc.org/sqlite"
)

// UnicodeCollation compares strings with the Unicode root collation (CLDR
// "und", as ICU's und-x-icu in PostgreSQL): "Amélie" < "American Beauty",
// "a" < "A" < "á". Strings equal under the collation are ordered bytewise,
// like PostgreSQL's deterministic ICU collations, so that only identical
// strings compare equal. It is safe for concurrent use: x/text collators
// are not, so each call borrows one from a pool.
type UnicodeCollation struct {
	pool sync.Pool
}

// NewUnicodeCollation returns a ready UnicodeCollation.
func NewUnicodeCollation() *UnicodeCollation {
	u := &UnicodeCollation{}
	u.pool.New = func() any { return collate.New(language.Und) }
	return u
}

// Compare returns -1, 0 or +1.
func (u *UnicodeCollation) Compare(a, b string) int {
	c := u.pool.Get().(*collate.Collator)
	r := c.CompareString(a, b)
	u.pool.Put(c)
	if r != 0 {
		return r
	}
	return strings.Compare(a, b)
}

// SQLiteExtensions are the collation and case-mapping functions of a SQLite dialect, the one source
// of their implementations: Register installs them in the modernc.org/sqlite driver, and a caller
// that opens SQLite connections through the engine directly (store's in-place reader) installs the
// same ones there, so that both give the same order and the same results.
type SQLiteExtensions struct {
	// Collation names the collating sequence Compare implements; empty when the dialect uses a
	// SQLite built-in (nothing to register).
	Collation string
	// Compare orders two strings as the collation does (UnicodeCollation): -1, 0 or +1. It does
	// not retain its arguments, so they may alias memory valid only during the call.
	Compare func(a, b string) int
	// Functions are the one-argument case-mapping scalar functions (deterministic, UTF-8); built-ins
	// are left out.
	Functions []SQLiteFunction
}

// SQLiteFunction is a deterministic one-argument scalar function on text: a TEXT or BLOB argument
// maps to Map of its text (a TEXT result), any other value is returned unchanged.
type SQLiteFunction struct {
	Name string
	Map  func(string) string
}

// Extensions returns the dialect's collation and functions (see Register).
func (d SQLite) Extensions() (SQLiteExtensions, error) {
	if err := d.validate(); err != nil {
		return SQLiteExtensions{}, err
	}
	coll, lower, upper := d.names()
	var e SQLiteExtensions
	if !builtinSQLite[strings.ToLower(coll)] {
		e.Collation, e.Compare = coll, NewUnicodeCollation().Compare
	}
	for _, f := range []SQLiteFunction{{lower, strings.ToLower}, {upper, strings.ToUpper}} {
		if !builtinSQLite[strings.ToLower(f.Name)] {
			e.Functions = append(e.Functions, f)
		}
	}
	return e, nil
}

// Register registers the dialect's collation and case-mapping functions
// with the modernc.org/sqlite driver: the collation orders with
// UnicodeCollation, the functions map case with Go's Unicode tables
// (strings.ToLower / ToUpper), so that tolower/toupper agree with
// PostgreSQL's on non-ASCII letters. Registration is process-wide and
// affects connections opened afterwards; call it once per process, before
// opening the database. Names set to SQLite built-ins ("BINARY", "lower",
// "upper", …) are skipped.
func (d SQLite) Register() error {
	e, err := d.Extensions()
	if err != nil {
		return err
	}
	if e.Collation != "" {
		if err := sqlite.RegisterCollationUtf8(e.Collation, e.Compare); err != nil {
			return fmt.Errorf("odata: register collation %s: %w", e.Collation, err)
		}
	}
	for _, f := range e.Functions {
		if err := sqlite.RegisterDeterministicScalarFunction(f.Name, 1, caseFunc(f.Map)); err != nil {
			return fmt.Errorf("odata: register function %s: %w", f.Name, err)
		}
	}
	return nil
}

var builtinSQLite = map[string]bool{"binary": true, "nocase": true, "rtrim": true, "lower": true, "upper": true}

func caseFunc(f func(string) string) func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
	return func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return f(v), nil
		case []byte:
			return f(string(v)), nil
		default:
			return v, nil
		}
	}
}

// OrderIndexKey returns the key of a column in a CREATE INDEX column list such that $orderby on
// that column can walk the index instead of sorting: string columns with the dialect's collation
// (the one ORDER BY and ordering comparisons use), NULLs placed as ascending keys compile them
// (ASC NULLS FIRST; a backward scan gives DESC NULLS LAST). ident is the column's physical name.
//
// A string key with the collation serves ordering and ordering comparisons (lt, ge, …) but not
// equality, which compiles without a collation: use EqualityIndexKey for columns an index is
// meant to look up by equality.
func OrderIndexKey(d Dialect, ident string, t Type) (string, error) {
	if err := d.validate(); err != nil {
		return "", err
	}
	q, err := QuoteIdent(ident)
	if err != nil {
		return "", err
	}
	if t == TypeString {
		q += " COLLATE " + d.collate()
	}
	return q + d.indexNulls(), nil
}

// EqualityIndexKey returns the key of a column in a CREATE INDEX column list for lookups by
// equality (eq, and per-user rows): the column as stored, in the database's default collation,
// which is what equality compiles to. NULLs are placed as OrderIndexKey places them, so that the
// keys after it can still serve ordering.
func EqualityIndexKey(d Dialect, ident string) (string, error) {
	if err := d.validate(); err != nil {
		return "", err
	}
	q, err := QuoteIdent(ident)
	if err != nil {
		return "", err
	}
	return q + d.indexNulls(), nil
}
