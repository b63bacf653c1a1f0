package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/odata"
)

// Defaults apply to tables that do not set their own.
type Defaults struct {
	PageSize      int  // default 50
	MaxTop        int  // default 1000
	DynamicSchema bool // default true (the original's MS_DynamicSchemaEnabled)
	// Permission for tables created by the CLI or admin API without explicit permissions.
	Permission auth.Permission
	// Cost bounds what one read's $filter and $orderby compute per row (odata.CostLimits; zero
	// fields take odata's defaults).
	Cost odata.CostLimits
	// MaxResultBytes bounds the rows one client read returns (default DefaultMaxResultBytes).
	MaxResultBytes int64
	// MaxColumns bounds a table's user columns (default DefaultMaxColumns); MaxNewColumns the
	// columns one request may add through dynamic schema (default DefaultMaxNewColumns).
	MaxColumns    int
	MaxNewColumns int
}

// Defaults of the table limits.
const (
	DefaultMaxResultBytes = 32 << 20
	DefaultMaxColumns     = 500
	DefaultMaxNewColumns  = 100
)

// Service is the table catalogue: schemas cached in memory, backed by the store, shared by every
// instance through the database.
type Service struct {
	st       Store
	defaults Defaults
	log      *slog.Logger

	mu     sync.RWMutex
	tables map[string]*Schema
	ddl    sync.Mutex // serialises this instance's schema changes

	notifier notify.Notifier // nil: other instances see changes at their next poll
}

// Notify makes the service tell the other instances about every catalogue change it makes, and (in
// Run) reload when they tell it about theirs. Call before Run and before serving.
func (svc *Service) Notify(n notify.Notifier) { svc.notifier = n }

// changed tells the other instances that a table's schema or permissions changed. The change is
// committed: a failure only delays them to their next poll, so it is logged, not returned.
func (svc *Service) changed(ctx context.Context, name string) {
	if svc.notifier == nil {
		return
	}
	if err := svc.notifier.Publish(context.WithoutCancel(ctx), notify.Tables, strings.ToLower(name)); err != nil {
		svc.log.Warn("notifying other instances of a table change failed; they reload at their next poll", "table", name, "err", err)
	}
}

// NewService loads the catalogue and makes sure every table the app directory declares exists with
// the declared options. A declared table whose explicit id type differs from the existing one is an
// error; a declaration without idType adopts the existing table's.
func NewService(ctx context.Context, st Store, app *appdir.App, d Defaults, log *slog.Logger) (*Service, error) {
	if d.PageSize <= 0 {
		d.PageSize = 50
	}
	if d.MaxTop <= 0 {
		d.MaxTop = 1000
	}
	if d.MaxResultBytes <= 0 {
		d.MaxResultBytes = DefaultMaxResultBytes
	}
	if d.MaxColumns <= 0 {
		d.MaxColumns = DefaultMaxColumns
	}
	if d.MaxNewColumns <= 0 {
		d.MaxNewColumns = DefaultMaxNewColumns
	}
	svc := &Service{st: st, defaults: d, log: log}
	if err := svc.reload(ctx); err != nil {
		return nil, err
	}
	svc.upgradeIndexes(ctx)
	if app == nil {
		return svc, nil
	}
	for _, t := range app.Tables() {
		if err := svc.syncDeclared(ctx, t); err != nil {
			return nil, fmt.Errorf("table %s (%s): %w", t.Name, t.File, err)
		}
	}
	return svc, svc.reload(ctx)
}

// upgradeIndexes brings the own indexes of tables created by earlier versions up to date (see
// SQL.upgradeUserIndex). A table that cannot be upgraded keeps its index, which answers the same
// rows, only slower: that is logged, not fatal.
func (svc *Service) upgradeIndexes(ctx context.Context) {
	up, ok := svc.st.(interface {
		upgradeUserIndex(ctx context.Context, s *Schema) error
	})
	if !ok {
		return
	}
	svc.mu.RLock()
	tables := make([]*Schema, 0, len(svc.tables))
	for _, s := range svc.tables {
		tables = append(tables, s)
	}
	svc.mu.RUnlock()
	for _, s := range tables {
		if err := up.upgradeUserIndex(ctx, s); err != nil {
			svc.log.Warn("the per-user index of a table could not be upgraded; its reads sort the user's rows", "table", s.Name, "err", err)
		}
	}
}

// Store is the data store the service and handlers use.
func (svc *Service) Store() Store { return svc.st }

func (svc *Service) reload(ctx context.Context) error {
	tables, err := svc.st.Load(ctx)
	if err != nil {
		return err
	}
	svc.mu.Lock()
	svc.tables = tables
	svc.mu.Unlock()
	return nil
}

// syncDeclared creates or updates a table declared in the app directory.
func (svc *Service) syncDeclared(ctx context.Context, t *appdir.Table) error {
	opt := Options{
		SoftDelete:    boolOr(t.Options.SoftDelete, false),
		PerUser:       boolOr(t.Options.PerUser, false),
		DynamicSchema: boolOr(t.Options.DynamicSchema, svc.defaults.DynamicSchema),
		PageSize:      t.Options.PageSize,
		MaxTop:        t.Options.MaxTop,
		Permissions:   map[appdir.Operation]auth.Permission{},
	}
	for op, p := range t.Permissions {
		opt.Permissions[op] = p
	}
	id := StringID
	if t.Options.IDType == "integer" {
		id = IntegerID
	}
	cols := map[string]ColumnType{}
	for n, typ := range t.Options.Columns {
		cols[n] = ColumnType(typ)
	}
	if len(cols) > svc.defaults.MaxColumns {
		return fmt.Errorf("%d columns declared; a table can have at most %d (max_columns)", len(cols), svc.defaults.MaxColumns)
	}
	existing, ok := svc.cached(t.Name)
	if !ok {
		s, err := NewSchema(t.Name, id, opt, cols)
		if err != nil {
			return err
		}
		s.Source = "app"
		if err := svc.st.Create(ctx, s); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
		return svc.createIndexes(ctx, s, t.Options.Indexes)
	}
	// As in the original, the id type belongs to the existing table (created with
	// `table create --integer-id` before the app folder is deployed): a declaration without idType
	// adopts it, and only an explicit, different idType is an error.
	if t.Options.IDType != "" && existing.IDType != id {
		return fmt.Errorf("declared idType %s but the table exists with %s ids", id, existing.IDType)
	}
	if existing.Options.PerUser != opt.PerUser {
		return fmt.Errorf("perUser cannot change on an existing table (it is %v)", existing.Options.PerUser)
	}
	ns := *existing
	ns.Options, ns.Source = opt, "app"
	if err := svc.st.SetOptions(ctx, &ns); err != nil {
		return err
	}
	var add []Column
	for _, n := range sortedKeys(cols) {
		typ := cols[n]
		if c, ok := existing.Column(n); ok {
			if c.Type != typ {
				return fmt.Errorf("column %s is declared %s but exists as %s", n, typ, c.Type)
			}
			continue
		}
		if !ValidColumnName(n) {
			return fmt.Errorf("invalid column name %q", n)
		}
		add = append(add, Column{Name: n, SQL: physicalColumn(n), Type: typ})
	}
	if err := svc.st.AddColumns(ctx, existing, add, svc.defaults.MaxColumns); err != nil {
		return err
	}
	if len(t.Options.Indexes) > 0 {
		tables, err := svc.st.Load(ctx)
		if err != nil {
			return err
		}
		return svc.createIndexes(ctx, tables[strings.ToLower(t.Name)], t.Options.Indexes)
	}
	return nil
}

// createIndexes indexes declared columns (CREATE INDEX IF NOT EXISTS: idempotent across starts).
func (svc *Service) createIndexes(ctx context.Context, s *Schema, cols []string) error {
	for _, c := range cols {
		if err := svc.st.CreateIndex(ctx, s, c); err != nil {
			return fmt.Errorf("index %s: %w", c, err)
		}
	}
	return nil
}

func boolOr(p *bool, d bool) bool {
	if p == nil {
		return d
	}
	return *p
}

func (svc *Service) cached(name string) (*Schema, bool) {
	svc.mu.RLock()
	defer svc.mu.RUnlock()
	s, ok := svc.tables[strings.ToLower(name)]
	return s, ok
}

// Lookup finds a table case-insensitively; on a miss it reloads the catalogue once (another instance
// may have created the table).
func (svc *Service) Lookup(ctx context.Context, name string) (*Schema, error) {
	if s, ok := svc.cached(name); ok {
		return s, nil
	}
	if !appdir.ValidName(name) {
		return nil, ErrNoTable
	}
	if err := svc.reload(ctx); err != nil {
		return nil, err
	}
	if s, ok := svc.cached(name); ok {
		return s, nil
	}
	return nil, ErrNoTable
}

// Refresh reloads one table's schema from the catalogue (after another instance changed it).
func (svc *Service) Refresh(ctx context.Context, name string) (*Schema, error) {
	if err := svc.reload(ctx); err != nil {
		return nil, err
	}
	return svc.Lookup(ctx, name)
}

// List returns every table, sorted by name.
func (svc *Service) List(ctx context.Context) ([]*Schema, error) {
	if err := svc.reload(ctx); err != nil {
		return nil, err
	}
	svc.mu.RLock()
	defer svc.mu.RUnlock()
	out := make([]*Schema, 0, len(svc.tables))
	for _, s := range svc.tables {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Spec describes a table to create or update through the CLI or admin API.
type Spec struct {
	Name        string
	IDType      IDType // "" = string
	Columns     map[string]ColumnType
	SoftDelete  *bool
	PerUser     *bool
	Dynamic     *bool
	Permissions map[appdir.Operation]auth.Permission
	Indexes     []string // indexes to create (ParseIndexSpec)
}

// Create makes a new table.
func (svc *Service) Create(ctx context.Context, sp Spec) (*Schema, error) {
	svc.ddl.Lock()
	defer svc.ddl.Unlock()
	if sp.IDType == "" {
		sp.IDType = StringID
	}
	opt := Options{
		SoftDelete:    boolOr(sp.SoftDelete, false),
		PerUser:       boolOr(sp.PerUser, false),
		DynamicSchema: boolOr(sp.Dynamic, svc.defaults.DynamicSchema),
		Permissions:   map[appdir.Operation]auth.Permission{},
	}
	for _, op := range []appdir.Operation{appdir.Read, appdir.Insert, appdir.Update, appdir.Delete} {
		opt.Permissions[op] = svc.defaults.Permission
	}
	for op, p := range sp.Permissions {
		opt.Permissions[op] = p
	}
	if len(sp.Columns) > svc.defaults.MaxColumns {
		return nil, inputf("A table can have at most %d columns; %d were given.", svc.defaults.MaxColumns, len(sp.Columns))
	}
	s, err := NewSchema(sp.Name, sp.IDType, opt, sp.Columns)
	if err != nil {
		return nil, &InputError{Msg: err.Error()}
	}
	s.Source = "admin"
	if err := svc.st.Create(ctx, s); err != nil {
		return nil, err
	}
	defer svc.changed(ctx, sp.Name)
	if err := svc.createIndexes(ctx, s, sp.Indexes); err != nil {
		return nil, err
	}
	return svc.Refresh(ctx, sp.Name)
}

// Update changes a table's options, permissions and adds columns. Id type and per-user mode are
// fixed at creation.
func (svc *Service) Update(ctx context.Context, sp Spec) (*Schema, error) {
	svc.ddl.Lock()
	defer svc.ddl.Unlock()
	s, err := svc.Refresh(ctx, sp.Name)
	if err != nil {
		return nil, err
	}
	if sp.IDType != "" && sp.IDType != s.IDType {
		return nil, &InputError{Msg: "the id type of an existing table cannot change"}
	}
	if sp.PerUser != nil && *sp.PerUser != s.Options.PerUser {
		return nil, &InputError{Msg: "perUser cannot change on an existing table"}
	}
	ns := *s
	ns.Options.Permissions = map[appdir.Operation]auth.Permission{}
	for op, p := range s.Options.Permissions {
		ns.Options.Permissions[op] = p
	}
	for op, p := range sp.Permissions {
		ns.Options.Permissions[op] = p
	}
	ns.Options.SoftDelete = boolOr(sp.SoftDelete, s.Options.SoftDelete)
	ns.Options.DynamicSchema = boolOr(sp.Dynamic, s.Options.DynamicSchema)
	// Columns are checked before anything changes, and added in one transaction.
	var add []Column
	for _, n := range sortedKeys(sp.Columns) {
		if c, ok := s.Column(n); ok {
			if c.Type != sp.Columns[n] {
				return nil, &InputError{Msg: fmt.Sprintf("column %s exists with type %s", c.Name, c.Type)}
			}
			continue
		}
		if !ValidColumnName(n) {
			return nil, &InputError{Msg: fmt.Sprintf("invalid column name %q", n)}
		}
		add = append(add, Column{Name: n, SQL: physicalColumn(n), Type: sp.Columns[n]})
	}
	if n := len(s.Columns()) + len(add); n > svc.defaults.MaxColumns {
		return nil, inputf("Table '%s' would have %d columns; a table can have at most %d.", s.Name, n, svc.defaults.MaxColumns)
	}
	if err := checkColumns(s.Columns(), add); err != nil {
		return nil, err
	}
	if err := svc.st.SetOptions(ctx, &ns); err != nil {
		return nil, err
	}
	defer svc.changed(ctx, sp.Name)
	if err := svc.st.AddColumns(ctx, s, add, svc.defaults.MaxColumns); err != nil {
		return nil, err
	}
	if len(sp.Indexes) > 0 {
		cur, err := svc.Refresh(ctx, sp.Name)
		if err != nil {
			return nil, err
		}
		if err := svc.createIndexes(ctx, cur, sp.Indexes); err != nil {
			return nil, err
		}
	}
	return svc.Refresh(ctx, sp.Name)
}

// Drop deletes a table with all its rows.
func (svc *Service) Drop(ctx context.Context, name string) error {
	svc.ddl.Lock()
	defer svc.ddl.Unlock()
	s, err := svc.Refresh(ctx, name)
	if err != nil {
		return err
	}
	if err := svc.st.Drop(ctx, s); err != nil {
		return err
	}
	defer svc.changed(ctx, name)
	return svc.reload(ctx)
}

// ensureColumns adds the columns an item needs (dynamic schema) and returns the schema to use.
func (svc *Service) ensureColumns(ctx context.Context, s *Schema, add []Column) (*Schema, error) {
	if len(add) == 0 {
		return s, nil
	}
	if len(add) > svc.defaults.MaxNewColumns {
		return nil, inputf("The item would add %d columns to table '%s'; one request can add at most %d.", len(add), s.Name, svc.defaults.MaxNewColumns)
	}
	svc.ddl.Lock()
	defer svc.ddl.Unlock()
	cur, err := svc.Refresh(ctx, s.Name)
	if err != nil {
		return nil, err
	}
	// All or nothing, with the table's column bound checked inside the transaction.
	if err := svc.st.AddColumns(ctx, cur, add, svc.defaults.MaxColumns); err != nil {
		return nil, err
	}
	if len(add) > 0 {
		defer svc.changed(ctx, s.Name)
	}
	for _, c := range add {
		svc.log.Info("column added by dynamic schema", "table", s.Name, "column", c.Name, "type", string(c.Type))
	}
	return svc.Refresh(ctx, s.Name)
}

func sortedKeys(m map[string]ColumnType) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// InputError is a client mistake (400) with the message to show.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func inputf(format string, args ...any) error { return &InputError{Msg: fmt.Sprintf(format, args...)} }

var isoDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$`)
var msDate = regexp.MustCompile(`^/Date\((-?\d+)([+-]\d{4})?\)/$`)

// parseDate reads the date forms clients send: ISO 8601 with Z or an offset, or /Date(ms)/.
func parseDate(s string) (time.Time, bool) {
	if isoDate.MatchString(s) {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, false
		}
		t = t.UTC().Truncate(time.Millisecond)
		if t.Year() < 1 || t.Year() > 9999 {
			return time.Time{}, false
		}
		return t, true
	}
	if m := msDate.FindStringSubmatch(s); m != nil {
		ms, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.UnixMilli(ms).UTC(), true
	}
	return time.Time{}, false
}

// inferType is the column type dynamic schema gives a new property.
func inferType(v any) (ColumnType, bool) {
	switch x := v.(type) {
	case string:
		if _, ok := parseDate(x); ok && isoDate.MatchString(x) {
			return Date, true
		}
		return String, true
	case json.Number:
		return Number, true
	case bool:
		return Boolean, true
	}
	return "", false
}

// convert turns a JSON value into a column's Go value.
func convert(c Column, name string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c.Type {
	case String:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case Number:
		if n, ok := v.(json.Number); ok {
			f, err := strconv.ParseFloat(string(n), 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, inputf("The value of property '%s' is not a representable number.", name)
			}
			return f, nil
		}
	case Boolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case Date:
		if s, ok := v.(string); ok {
			if t, ok := parseDate(s); ok {
				return t, nil
			}
			return nil, inputf("The value of property '%s' is not a valid date (expected YYYY-MM-DDTHH:MM:SS.sssZ).", name)
		}
	}
	return nil, inputf("The value of property '%s' must be of type %s.", name, c.Type)
}

// ValidateStringID applies the original's id rules (spec §4.5) and our length bound.
func ValidateStringID(id string) error {
	if id == "." || id == ".." {
		return inputf("The value specified for property 'id' is invalid. An id must not contain any control characters or the characters \", +, ?, \\, `.")
	}
	if len([]rune(id)) > 255 {
		return inputf("The value specified for property 'id' is too long. An id must be at most 255 characters.")
	}
	for _, r := range id {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) || strings.ContainsRune("\"+?\\/`", r) {
			return inputf("The value specified for property 'id' is invalid. An id must not contain any control characters or the characters \", +, ?, \\, `.")
		}
	}
	return nil
}
