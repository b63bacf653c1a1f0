package odata

import (
	"fmt"
	"strings"
)

// Type is the storage type of a column or the type of an expression.
type Type uint8

// Column types. Integer is a Number stored as an integer (numeric ids); it
// behaves as a Number in expressions.
const (
	TypeString Type = iota + 1
	TypeNumber
	TypeInteger
	TypeBoolean
	TypeDate

	typeNull Type = 255 // the null literal; fits every type
)

// String returns the type name used in error messages.
func (t Type) String() string {
	switch t {
	case TypeString:
		return "String"
	case TypeNumber:
		return "Number"
	case TypeInteger:
		return "Integer"
	case TypeBoolean:
		return "Boolean"
	case TypeDate:
		return "Date"
	case typeNull:
		return "null"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

func (t Type) numeric() bool { return t == TypeNumber || t == TypeInteger }

// Column describes a column visible to clients.
type Column struct {
	Name string // client-visible name, e.g. "updatedAt"
	SQL  string // stored identifier, unquoted; "" means the same as Name
	Type Type
}

// Ident returns the stored identifier.
func (c Column) Ident() string {
	if c.SQL == "" {
		return c.Name
	}
	return c.SQL
}

// Schema resolves client-visible column names of one table. Column must
// match names case-insensitively, like the original service.
type Schema interface {
	Column(name string) (Column, bool)
	// PrimaryKey is appended to every ORDER BY as the final tie-breaker.
	PrimaryKey() Column
}

// Columns is a Schema over a fixed list of columns.
type Columns struct {
	all    []Column
	byName map[string]int
	key    int
}

// NewColumns builds a Schema. primaryKey names one of cols. Names must be
// unique case-insensitively and every column needs a valid Type.
func NewColumns(primaryKey string, cols ...Column) (*Columns, error) {
	s := &Columns{all: append([]Column(nil), cols...), byName: make(map[string]int, len(cols)), key: -1}
	for i, c := range s.all {
		if c.Name == "" || c.Type < TypeString || c.Type > TypeDate {
			return nil, fmt.Errorf("odata: invalid column %+v", c)
		}
		k := strings.ToLower(c.Name)
		if _, dup := s.byName[k]; dup {
			return nil, fmt.Errorf("odata: duplicate column %q", c.Name)
		}
		s.byName[k] = i
		if strings.EqualFold(c.Name, primaryKey) {
			s.key = i
		}
	}
	if s.key < 0 {
		return nil, fmt.Errorf("odata: primary key %q is not a column", primaryKey)
	}
	return s, nil
}

// Column implements Schema.
func (s *Columns) Column(name string) (Column, bool) {
	i, ok := s.byName[strings.ToLower(name)]
	if !ok {
		return Column{}, false
	}
	return s.all[i], true
}

// PrimaryKey implements Schema.
func (s *Columns) PrimaryKey() Column { return s.all[s.key] }

// All returns the columns in declaration order.
func (s *Columns) All() []Column { return append([]Column(nil), s.all...) }

// QuoteIdent quotes an SQL identifier for SQLite and PostgreSQL: double
// quotes, embedded double quotes doubled. It fails on NUL characters, which
// neither database accepts in identifiers.
func QuoteIdent(name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("odata: invalid identifier %q", name)
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`, nil
}

// writeIdent writes QuoteIdent(name) to b without allocating a string of its own.
func writeIdent(b *strings.Builder, name string) error {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("odata: invalid identifier %q", name)
	}
	b.WriteByte('"')
	for {
		i := strings.IndexByte(name, '"')
		if i < 0 {
			break
		}
		b.WriteString(name[:i+1])
		b.WriteByte('"')
		name = name[i+1:]
	}
	b.WriteString(name)
	b.WriteByte('"')
	return nil
}
