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

// Register registers the dialect's collation and case-mapping functions
// with the modernc.org/sqlite driver: the collation orders with
// UnicodeCollation, the functions map case with Go's Unicode tables
// (strings.ToLower / ToUpper), so that tolower/toupper agree with
// PostgreSQL's on non-ASCII letters. Registration is process-wide and
// affects connections opened afterwards; call it once per process, before
// opening the database. Names set to SQLite built-ins ("BINARY", "lower",
// "upper", …) are skipped.
func (d SQLite) Register() error {
	if err := d.validate(); err != nil {
		return err
	}
	coll, lower, upper := d.names()
	if !builtinSQLite[strings.ToLower(coll)] {
		u := NewUnicodeCollation()
		if err := sqlite.RegisterCollationUtf8(coll, u.Compare); err != nil {
			return fmt.Errorf("odata: register collation %s: %w", coll, err)
		}
	}
	for name, f := range map[string]func(string) string{lower: strings.ToLower, upper: strings.ToUpper} {
		if builtinSQLite[strings.ToLower(name)] {
			continue
		}
		if err := sqlite.RegisterDeterministicScalarFunction(name, 1, caseFunc(f)); err != nil {
			return fmt.Errorf("odata: register function %s: %w", name, err)
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
