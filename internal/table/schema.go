// Package table implements /tables: the data half of Mobile Services. A table has an id (string or
// integer), the system columns createdAt, updatedAt, version and deleted, and user columns of four
// types (string, number, boolean, date) declared up front or added on demand (dynamic schema).
//
// Storage: every table is a SQL table in the configured database; its catalogue (name, id type,
// options, permissions, columns) lives in gatehouse_tables and gatehouse_columns so that several
// Gatehouse instances sharing a PostgreSQL database see the same schema. Physical names never come
// from clients: tables are gh_<name>, user columns c_<name>, system columns sys_*, all quoted.
//
// Values: numbers are IEEE doubles end to end; dates are stored with millisecond precision in UTC
// (INTEGER milliseconds on SQLite, timestamptz(3) on PostgreSQL) and returned as
// YYYY-MM-DDTHH:MM:SS.sssZ; booleans are 0/1 on SQLite.
package table

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/odata"
)

// ColumnType is a user column's type.
type ColumnType string

// Column types.
const (
	String  ColumnType = "string"
	Number  ColumnType = "number"
	Boolean ColumnType = "boolean"
	Date    ColumnType = "date"
)

func (t ColumnType) odata() odata.Type {
	switch t {
	case Number:
		return odata.TypeNumber
	case Boolean:
		return odata.TypeBoolean
	case Date:
		return odata.TypeDate
	default:
		return odata.TypeString
	}
}

// ParseColumnType reads a type name.
func ParseColumnType(s string) (ColumnType, error) {
	switch t := ColumnType(strings.ToLower(strings.TrimSpace(s))); t {
	case String, Number, Boolean, Date:
		return t, nil
	}
	return "", fmt.Errorf("unknown column type %q (string, number, boolean or date)", s)
}

// IDType is the type of a table's id.
type IDType string

// Id types.
const (
	StringID  IDType = "string"
	IntegerID IDType = "integer"
)

// Column is a user column.
type Column struct {
	Name string // as first declared or inserted (wire name)
	SQL  string // physical name
	Type ColumnType
}

// Options are a table's settings.
type Options struct {
	SoftDelete    bool                                 `json:"softDelete"`
	PerUser       bool                                 `json:"perUser"`
	DynamicSchema bool                                 `json:"dynamicSchema"`
	PageSize      int                                  `json:"pageSize,omitempty"`
	MaxTop        int                                  `json:"maxTop,omitempty"`
	Permissions   map[appdir.Operation]auth.Permission `json:"permissions"`
}

// Schema is a table's definition. Schemas are immutable once built; changes build a new one.
type Schema struct {
	Name    string // canonical casing
	SQLName string // physical table name (unquoted)
	IDType  IDType
	Options Options
	Source  string // "app" (app directory) or "admin" (CLI/admin API)

	columns map[string]Column // by lower-cased name
	order   []string          // lower-cased names in creation order
	odata   *odata.Columns
	// Built with the columns, read only: the user columns in order, and every column of a read
	// (system columns, then user columns) in scan order.
	cols       []Column
	selectCols []odata.Column
}

// Column finds a user column case-insensitively.
func (s *Schema) Column(name string) (Column, bool) {
	c, ok := s.columns[strings.ToLower(name)]
	return c, ok
}

// Columns lists user columns in creation order.
func (s *Schema) Columns() []Column {
	out := make([]Column, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.columns[n])
	}
	return out
}

// Permission is the permission of an operation.
func (s *Schema) Permission(op appdir.Operation) auth.Permission { return s.Options.Permissions[op] }

// Physical system column names.
const (
	colID        = "id"
	colCreatedAt = "sys_created_at"
	colUpdatedAt = "sys_updated_at"
	colVersion   = "sys_version"
	colDeleted   = "sys_deleted"
	// UserIDColumn is the column per-user tables stamp with the caller's user id.
	UserIDColumn = "userId"
)

// system property names by dialect.
var (
	sysV1 = [4]string{"__createdAt", "__updatedAt", "__version", "__deleted"}
	sysV2 = [4]string{"createdAt", "updatedAt", "version", "deleted"}
	// sysV2Lower is sysV2 lower-cased, as $select names are compared.
	sysV2Lower = [4]string{"createdat", "updatedat", "version", "deleted"}
)

// reservedNames cannot be user columns: they are system properties in one dialect or the other.
var reservedNames = map[string]bool{"id": true, "createdat": true, "updatedat": true, "version": true, "deleted": true}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// ValidColumnName reports whether a property name can be a user column.
func ValidColumnName(name string) bool {
	return nameRE.MatchString(name) && !strings.HasPrefix(name, "__") && !reservedNames[strings.ToLower(name)]
}

// physicalTable is the SQL name of a table: gh_<lower name>, shortened with a hash past PostgreSQL's
// 63-byte identifier limit.
func physicalTable(name string) string {
	return physical("gh_", name)
}

func physicalColumn(name string) string {
	return physical("c_", name)
}

// physical is prefix + the lower-cased name when that fits in 60 bytes, and otherwise exactly 63
// bytes: its first 40 bytes, "_" and 22 hex digits of its SHA-256. A shortened name is longer than any
// unshortened one, so no name can be chosen to equal another name's shortened form (issue 10 #15);
// two long names collide only if their first 40 bytes and 88 bits of hash agree. Catalogues written
// before this scheme shortened to 57 bytes; those names stay as recorded (gatehouse_columns.sql_name,
// gatehouse_tables.sql_name), and new names are checked against every recorded one.
func physical(prefix, name string) string {
	n := prefix + strings.ToLower(name)
	if len(n) <= 60 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return n[:40] + "_" + hex.EncodeToString(sum[:11])
}

// legacyPhysical is the shortening of index names (CREATE INDEX IF NOT EXISTS runs at every start
// for declared indexes, so their names must not change); it is checked against tables by the store.
func legacyPhysical(prefix, name string) string {
	n := prefix + strings.ToLower(name)
	if len(n) <= 60 {
		return n
	}
	sum := sha256.Sum256([]byte(strings.ToLower(name)))
	return n[:40] + "_" + hex.EncodeToString(sum[:8])
}

// systemSQL are the physical names of the system columns, which no user column may take.
var systemSQL = map[string]bool{colID: true, colCreatedAt: true, colUpdatedAt: true, colVersion: true, colDeleted: true}

// nameCollision is the error of a new column or table whose physical name is already taken (only
// possible with names recorded by older versions, or a hash collision): a client mistake, 400.
func nameCollision(kind, name, other string) error {
	if other != "" {
		return inputf("The %s name '%s' cannot be used: its storage name collides with %s '%s'. Choose another name.", kind, name, kind, other)
	}
	return inputf("The %s name '%s' cannot be used: its storage name collides with an existing table, column or index. Choose another name.", kind, name)
}

// checkColumns refuses new columns whose physical names collide with each other, with the columns
// in have, or with a system column. New columns already in have (same name) are not checked.
func checkColumns(have []Column, add []Column) error {
	taken := map[string]string{}
	names := map[string]bool{}
	for _, c := range have {
		taken[strings.ToLower(c.SQL)] = c.Name
		names[strings.ToLower(c.Name)] = true
	}
	for _, c := range add {
		if names[strings.ToLower(c.Name)] {
			continue
		}
		k := strings.ToLower(c.SQL)
		if systemSQL[k] {
			return nameCollision("column", c.Name, "")
		}
		if other, ok := taken[k]; ok {
			return nameCollision("column", c.Name, other)
		}
		taken[k] = c.Name
		names[strings.ToLower(c.Name)] = true
	}
	return nil
}

// build prepares the lookup structures of a schema.
func (s *Schema) build(cols []Column) error {
	s.columns = map[string]Column{}
	s.order = nil
	if err := checkColumns(nil, cols); err != nil {
		return err
	}
	for _, c := range cols {
		k := strings.ToLower(c.Name)
		if _, dup := s.columns[k]; dup {
			return fmt.Errorf("table %s: duplicate column %s", s.Name, c.Name)
		}
		s.columns[k] = c
		s.order = append(s.order, k)
	}
	idType := odata.TypeString
	if s.IDType == IntegerID {
		idType = odata.TypeInteger
	}
	// One OData schema serves both dialects: v1 clients filter on __updatedAt, v2 on updatedAt.
	list := []odata.Column{{Name: "id", SQL: colID, Type: idType}}
	for i, sql := range [4]string{colCreatedAt, colUpdatedAt, colVersion, colDeleted} {
		t := []odata.Type{odata.TypeDate, odata.TypeDate, odata.TypeString, odata.TypeBoolean}[i]
		list = append(list, odata.Column{Name: sysV1[i], SQL: sql, Type: t}, odata.Column{Name: sysV2[i], SQL: sql, Type: t})
	}
	for _, k := range s.order {
		c := s.columns[k]
		list = append(list, odata.Column{Name: c.Name, SQL: c.SQL, Type: c.Type.odata()})
	}
	s.cols = s.Columns()
	s.selectCols = []odata.Column{{Name: "id", SQL: colID}, {Name: "c", SQL: colCreatedAt}, {Name: "u", SQL: colUpdatedAt}, {Name: "v", SQL: colVersion}, {Name: "d", SQL: colDeleted}}
	for _, c := range s.cols {
		s.selectCols = append(s.selectCols, odata.Column{Name: c.Name, SQL: c.SQL})
	}
	var err error
	s.odata, err = odata.NewColumns("id", list...)
	return err
}

// NewSchema builds a schema for a new table.
func NewSchema(name string, id IDType, opt Options, cols map[string]ColumnType) (*Schema, error) {
	if !appdir.ValidName(name) {
		return nil, fmt.Errorf("invalid table name %q: letters, digits and _, starting with a letter or _, at most 128", name)
	}
	if id != StringID && id != IntegerID {
		return nil, fmt.Errorf("invalid id type %q", id)
	}
	s := &Schema{Name: name, SQLName: physicalTable(name), IDType: id, Options: opt}
	if s.Options.Permissions == nil {
		s.Options.Permissions = map[appdir.Operation]auth.Permission{}
	}
	names := make([]string, 0, len(cols))
	for n := range cols {
		names = append(names, n)
	}
	sort.Strings(names)
	var list []Column
	if opt.PerUser {
		list = append(list, Column{Name: UserIDColumn, SQL: physicalColumn(UserIDColumn), Type: String})
	}
	for _, n := range names {
		if strings.EqualFold(n, UserIDColumn) && opt.PerUser {
			continue
		}
		if !ValidColumnName(n) {
			return nil, fmt.Errorf("invalid column name %q", n)
		}
		list = append(list, Column{Name: n, SQL: physicalColumn(n), Type: cols[n]})
	}
	if err := s.build(list); err != nil {
		return nil, err
	}
	return s, nil
}
