// Package importer copies the tables of a live Zumo-compatible backend (Azure Mobile Services v1, Azure
// Mobile Apps v2, or another Gatehouse) into the local database over the source's own REST API.
//
// Reads are keyset-paged on (updatedAt, id) with __systemProperties=* and __includeDeleted=true, so
// paging is stable while the source keeps changing, and every row keeps its id, createdAt, updatedAt,
// version and deleted flag. Each page is written in one transaction together with the table's
// high-water mark (gatehouse_import_state), so a failed run leaves the rows and the mark consistent and
// the next run continues from the mark; rows are upserted, so a re-run copies only what changed.
//
// Hard deletes made on the source after a run cannot be seen over the REST API (the row is gone);
// soft-deleted rows are copied as deleted.
package importer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
)

// Defaults and bounds.
const (
	DefaultPageSize = 200
	MaxPageSize     = 1000
	DefaultTimeout  = 60 * time.Second
	DefaultMaxBody  = 32 << 20
)

// Config is one import run.
type Config struct {
	From      string   // the source's base URL
	MasterKey string   // the source's master key ("" for sources whose tables need none)
	AllowHTTP bool     // allow plain http to a non-loopback host
	Tables    []string // tables to copy; empty = the source's list (Gatehouse sources only)
	Since     time.Time
	Full      bool     // ignore the high-water marks: read every row again (upserted)
	Protocol  Protocol // "" = detect
	PageSize  int
	Timeout   time.Duration // per request
	MaxBody   int64         // bytes per answer
	Progress  Progress      // nil = none
	Now       func() time.Time
	Log       *slog.Logger
}

// Target is the local database.
type Target struct {
	DB      *store.DB
	Service *table.Service
	Store   *table.SQL
}

// TableSummary is what one table's import did.
type TableSummary struct {
	Name        string
	IDType      table.IDType
	Rows        int64 // rows written this run
	Deleted     int64 // of which soft-deleted
	Created     bool  // the local table was created by this run
	SoftDeleted bool  // soft delete was turned on locally
	Legacy      bool  // a Mobile Services integer-id table without system columns (read in id order)
}

// Summary is a run's result.
type Summary struct {
	Source   string
	Protocol Protocol
	Tables   []TableSummary
	Rows     int64
	Deleted  int64
	Duration time.Duration
}

// Progress receives the progress of a run.
type Progress interface {
	Start(table string, total int64) // total < 0: unknown
	Add(table string, n int)
	Done(table string, rows, deleted int64)
}

// Run imports the configured tables.
func Run(ctx context.Context, cfg Config, tgt Target) (*Summary, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.PageSize > MaxPageSize {
		return nil, fmt.Errorf("page size %d is over the limit of %d", cfg.PageSize, MaxPageSize)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	base, err := parseSource(cfg.From, cfg.AllowHTTP)
	if err != nil {
		return nil, err
	}
	src := &source{base: base, masterKey: cfg.MasterKey, client: newClient(cfg.Timeout), maxBody: cfg.MaxBody}
	start := cfg.Now()
	list, listed, err := src.listTables(ctx)
	if err != nil {
		if len(cfg.Tables) == 0 {
			return nil, err
		}
		// The listing only adds hints (options, declared columns) when the tables are named.
		cfg.Log.Debug("no table listing from the source", "err", err)
		list, listed = nil, false
	}
	hints := map[string]tableInfo{}
	for _, ti := range list {
		hints[strings.ToLower(ti.Name)] = ti
	}
	names := cfg.Tables
	if len(names) == 0 {
		if !listed {
			return nil, errors.New("the source has no table listing (Mobile Services and Mobile Apps have none): name the tables to copy with --tables a,b,c")
		}
		for _, ti := range list {
			names = append(names, ti.Name)
		}
		sort.Strings(names)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if !appdir.ValidName(n) {
			return nil, fmt.Errorf("invalid table name %q", n)
		}
		if seen[strings.ToLower(n)] {
			return nil, fmt.Errorf("table %s is named twice", n)
		}
		seen[strings.ToLower(n)] = true
	}
	sum := &Summary{Source: src.key()}
	if len(names) == 0 {
		sum.Duration = cfg.Now().Sub(start)
		return sum, nil
	}
	switch cfg.Protocol {
	case "":
		if src.proto, err = src.detect(ctx, names[0]); err != nil {
			return nil, err
		}
	case V1, V2:
		src.proto = cfg.Protocol
	default:
		return nil, fmt.Errorf("unknown protocol %q (v1 or v2)", cfg.Protocol)
	}
	sum.Protocol = src.proto
	for _, n := range names {
		hint, hasHint := hints[strings.ToLower(n)]
		ts, err := importTable(ctx, cfg, tgt, src, n, hint, hasHint)
		if ts != nil {
			sum.Tables = append(sum.Tables, *ts)
			sum.Rows += ts.Rows
			sum.Deleted += ts.Deleted
		}
		if err != nil {
			sum.Duration = cfg.Now().Sub(start)
			return sum, err
		}
	}
	sum.Duration = cfg.Now().Sub(start)
	return sum, nil
}

// mark is the (updatedAt, id) key of the last row copied.
type mark struct {
	set     bool
	updated time.Time
	id      any // string or int64
}

func (m mark) less(o mark) bool {
	if !m.updated.Equal(o.updated) {
		return m.updated.Before(o.updated)
	}
	switch a := m.id.(type) {
	case int64:
		b, _ := o.id.(int64)
		return a < b
	case string:
		b, _ := o.id.(string)
		return a < b
	}
	return false
}

const timeLayout = "2006-01-02T15:04:05.000Z"

func literal(t time.Time) string { return "datetimeoffset'" + t.UTC().Format(timeLayout) + "'" }

func idLiteral(id any) string {
	switch x := id.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		return "'" + strings.ReplaceAll(fmt.Sprint(x), "'", "''") + "'"
	}
}

func importTable(ctx context.Context, cfg Config, tgt Target, src *source, name string, hint tableInfo, hasHint bool) (*TableSummary, error) {
	ts := &TableSummary{Name: name}
	sys := src.proto.sysNames()
	upd := sys[1]
	m, err := loadMark(ctx, tgt.DB, src.key(), name)
	if err != nil {
		return ts, err
	}
	if cfg.Full {
		m = mark{}
	}
	since := mark{}
	if !cfg.Since.IsZero() && (!m.set || m.updated.Before(cfg.Since)) {
		since = mark{set: true, updated: cfg.Since.UTC().Truncate(time.Millisecond)}
		m = mark{}
	}
	schema, err := tgt.Service.Lookup(ctx, name)
	if errors.Is(err, table.ErrNoTable) {
		schema, err = nil, nil
	}
	if err != nil {
		return ts, err
	}
	if schema != nil {
		ts.IDType = schema.IDType
	}
	// Mobile Services' integer-id tables have no system columns at all: they are read in id order, and
	// a re-run copies the rows added since (changes to older rows are not visible without updatedAt).
	legacy, empty, err := probe(ctx, src, name)
	if err != nil {
		return ts, err
	}
	if legacy && !since.set {
		ts.Legacy = true
	} else if legacy {
		return ts, fmt.Errorf("table %s has no %s (a Mobile Services integer-id table): --since cannot apply", name, upd)
	}
	if empty && cfg.Progress != nil {
		cfg.Progress.Start(name, 0)
	}
	first := true
	for !empty {
		q := url.Values{
			"$top":               {strconv.Itoa(cfg.PageSize)},
			"$orderby":           {upd + " asc,id asc"},
			"__systemProperties": {"*"},
			"__includeDeleted":   {"true"},
		}
		switch {
		case legacy:
			// Without a deleted flag in the answer, deleted rows could only be copied as live ones:
			// read what the source's v1 clients see.
			q.Del("__includeDeleted")
			q.Set("$orderby", "id asc")
			if m.set {
				q.Set("$filter", "id gt "+idLiteral(m.id))
			}
		case m.set:
			q.Set("$filter", fmt.Sprintf("(%s gt %s) or (%s eq %s and id gt %s)", upd, literal(m.updated), upd, literal(m.updated), idLiteral(m.id)))
		case since.set:
			q.Set("$filter", fmt.Sprintf("%s ge %s", upd, literal(since.updated)))
		}
		if first {
			q.Set("$inlinecount", "allpages")
		}
		v, _, err := src.get(ctx, "/tables/"+url.PathEscape(name), q, src.proto)
		if err != nil {
			return ts, tableError(name, err)
		}
		p, err := parsePage(v)
		if err != nil {
			return ts, fmt.Errorf("table %s: %w", name, err)
		}
		if first {
			first = false
			if cfg.Progress != nil {
				cfg.Progress.Start(name, p.count)
			}
		}
		if len(p.items) == 0 {
			break
		}
		rows, err := convertRows(name, src.proto, p.items, legacy, cfg.Now())
		if err != nil {
			return ts, err
		}
		last := mark{set: true, updated: rows[len(rows)-1].UpdatedAt, id: rows[len(rows)-1].ID}
		if legacy {
			last.updated = time.Time{}
		}
		if m.set && !m.less(last) {
			return ts, fmt.Errorf("table %s: the source's answer does not advance past %s/%v (is it ordering by %s, id?)", name, m.updated.Format(timeLayout), m.id, upd)
		}
		if schema, err = prepareTable(ctx, tgt.Service, schema, name, rows, p.items, hint, hasHint, ts); err != nil {
			return ts, err
		}
		if err := ensureValues(schema, rows); err != nil {
			return ts, err
		}
		var deleted int64
		for _, r := range rows {
			if r.Deleted {
				deleted++
			}
		}
		total := int64(len(rows))
		err = tgt.Store.Upsert(ctx, schema, rows, func(ctx context.Context, tx *sql.Tx) error {
			return saveMark(ctx, tgt.DB, tx, src.key(), name, last, total, cfg.Now())
		})
		if err != nil {
			return ts, fmt.Errorf("table %s: %w", name, err)
		}
		m = last
		ts.Rows += total
		ts.Deleted += deleted
		if cfg.Progress != nil {
			cfg.Progress.Add(name, len(rows))
		}
		cfg.Log.Debug("import page written", "table", name, "rows", len(rows))
	}
	if schema == nil {
		// An empty source table: create it (with what the source says about it) so the app finds it.
		if _, err := prepareTable(ctx, tgt.Service, nil, name, nil, nil, hint, hasHint, ts); err != nil {
			return ts, err
		}
	}
	if err := finishMark(ctx, tgt.DB, src.key(), name, cfg.Now()); err != nil {
		return ts, err
	}
	if ts.Rows > 0 {
		// Statistics now, so that the first reads after an import are planned on them: a failure
		// costs only plans until autovacuum gathers them, not the import.
		if err := tgt.DB.Analyze(ctx, schema.SQLName); err != nil {
			cfg.Log.Warn("import: gathering the planner's statistics failed; autovacuum will", "table", name, "err", err)
		}
	}
	if cfg.Progress != nil {
		cfg.Progress.Done(name, ts.Rows, ts.Deleted)
	}
	return ts, nil
}

// probe reads one item of a table: legacy is true when the source returns integer ids without system
// properties (Mobile Services' integer-id tables), empty when the table has no rows at all.
func probe(ctx context.Context, src *source, name string) (legacy, empty bool, err error) {
	q := url.Values{"$top": {"1"}, "__systemProperties": {"*"}, "__includeDeleted": {"true"}}
	v, _, err := src.get(ctx, "/tables/"+url.PathEscape(name), q, src.proto)
	if err != nil {
		return false, false, tableError(name, err)
	}
	p, err := parsePage(v)
	if err != nil {
		return false, false, fmt.Errorf("table %s: %w", name, err)
	}
	if len(p.items) == 0 {
		return false, true, nil
	}
	_, hasUpdated := p.items[0][src.proto.sysNames()[1]]
	_, intID := p.items[0]["id"].(json.Number)
	return !hasUpdated && intID, false, nil
}

// convertRows reads the system properties of the source's items; user values are converted later,
// once the columns' types are known.
func convertRows(name string, proto Protocol, items []map[string]any, legacy bool, now time.Time) ([]*table.Row, error) {
	sys := proto.sysNames()
	rows := make([]*table.Row, 0, len(items))
	for i, it := range items {
		r := &table.Row{Values: map[string]any{}}
		switch id := it["id"].(type) {
		case string:
			if id == "" {
				return nil, fmt.Errorf("table %s: item %d has an empty id", name, i)
			}
			if err := table.ValidateStringID(id); err != nil {
				return nil, fmt.Errorf("table %s: item id %q: %w", name, id, err)
			}
			r.ID = id
		case json.Number:
			n, err := id.Int64()
			if err != nil || n < 1 {
				return nil, fmt.Errorf("table %s: item %d: id %s is not a positive integer", name, i, id)
			}
			r.ID = n
		default:
			return nil, fmt.Errorf("table %s: item %d has no id", name, i)
		}
		if legacy {
			if _, ok := r.ID.(int64); !ok {
				return nil, fmt.Errorf("table %s: item %v has a string id but no system properties", name, r.ID)
			}
			now := now.UTC().Truncate(time.Millisecond)
			r.CreatedAt, r.UpdatedAt = now, now
			for k, v := range it {
				if k != "id" {
					r.Values[strings.ToLower(k)] = v
				}
			}
			rows = append(rows, r)
			continue
		}
		var err error
		if r.CreatedAt, err = sysTime(it, sys[0]); err != nil {
			return nil, fmt.Errorf("table %s: item %v: %w", name, r.ID, err)
		}
		if r.UpdatedAt, err = sysTime(it, sys[1]); err != nil {
			return nil, fmt.Errorf("table %s: item %v: %w", name, r.ID, err)
		}
		if v, ok := it[sys[2]].(string); ok && v != "" {
			r.Version = v
		} else {
			return nil, fmt.Errorf("table %s: item %v has no %s (the source must return system properties)", name, r.ID, sys[2])
		}
		switch d := it[sys[3]].(type) {
		case bool:
			r.Deleted = d
		case nil:
		default:
			return nil, fmt.Errorf("table %s: item %v: %s is not a boolean", name, r.ID, sys[3])
		}
		for k, v := range it {
			if !isSystem(k) {
				r.Values[strings.ToLower(k)] = v
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func sysTime(it map[string]any, name string) (time.Time, error) {
	s, ok := it[name].(string)
	if !ok {
		return time.Time{}, fmt.Errorf("no %s (the source must return system properties)", name)
	}
	t, ok := parseDate(s)
	if !ok {
		return time.Time{}, fmt.Errorf("%s %q is not a date", name, s)
	}
	return t, nil
}

// isSystem reports whether a property is a system property in either dialect (never a user column).
func isSystem(k string) bool {
	switch strings.ToLower(k) {
	case "id", "createdat", "updatedat", "version", "deleted", "__createdat", "__updatedat", "__version", "__deleted":
		return true
	}
	return strings.HasPrefix(k, "__")
}

// inferColumns decides the types of properties that are not yet columns, from a page of items: a
// property whose non-null values are all ISO 8601 date strings is a date, other strings are strings,
// numbers numbers, booleans booleans. Properties that are null throughout wait for a later page.
func inferColumns(name string, s *table.Schema, items []map[string]any) (map[string]table.ColumnType, error) {
	out := map[string]table.ColumnType{}
	display := map[string]string{}
	for _, it := range items {
		for k, v := range it {
			if isSystem(k) || v == nil {
				continue
			}
			if s != nil {
				if _, ok := s.Column(k); ok {
					continue
				}
			}
			lk := strings.ToLower(k)
			if d, ok := display[lk]; ok && d != k {
				return nil, fmt.Errorf("table %s: properties %s and %s differ only in case", name, d, k)
			}
			display[lk] = k
			var t table.ColumnType
			switch x := v.(type) {
			case string:
				t = table.String
				if _, ok := parseDate(x); ok && isoDate.MatchString(x) {
					t = table.Date
				}
			case json.Number:
				t = table.Number
			case bool:
				t = table.Boolean
			default:
				return nil, fmt.Errorf("table %s: item %v: property %s is an object or array, which a table cannot hold", name, it["id"], k)
			}
			prev, ok := out[k]
			switch {
			case !ok || prev == t:
				out[k] = t
			case (prev == table.Date && t == table.String) || (prev == table.String && t == table.Date):
				out[k] = table.String
			default:
				return nil, fmt.Errorf("table %s: property %s holds both %s and %s values", name, k, prev, t)
			}
		}
	}
	for k := range out {
		if !table.ValidColumnName(k) {
			return nil, fmt.Errorf("table %s: property %q cannot be a column name", name, k)
		}
	}
	return out, nil
}

// prepareTable makes sure the local table exists with the id type of the rows, every column the page
// needs, and soft delete on when the source has deleted rows.
func prepareTable(ctx context.Context, svc *table.Service, s *table.Schema, name string, rows []*table.Row, items []map[string]any, hint tableInfo, hasHint bool, ts *TableSummary) (*table.Schema, error) {
	idType := table.StringID
	if hasHint && strings.EqualFold(hint.IDType, "integer") {
		idType = table.IntegerID
	}
	if len(rows) > 0 {
		if _, ok := rows[0].ID.(int64); ok {
			idType = table.IntegerID
		} else {
			idType = table.StringID
		}
	}
	for _, r := range rows {
		if _, isInt := r.ID.(int64); isInt != (idType == table.IntegerID) {
			return nil, fmt.Errorf("table %s: the source mixes string and integer ids", name)
		}
	}
	anyDeleted := false
	for _, r := range rows {
		anyDeleted = anyDeleted || r.Deleted
	}
	cols, err := inferColumns(name, s, items)
	if err != nil {
		return nil, err
	}
	if s == nil {
		req := table.SpecRequest{Name: name, IDType: string(idType), Columns: map[string]string{}}
		soft := anyDeleted || (hasHint && hint.SoftDelete)
		req.SoftDelete = &soft
		if hasHint {
			perUser, dyn := hint.PerUser, hint.DynamicSchema
			req.PerUser, req.DynamicSchema = &perUser, &dyn
			req.Permissions = hint.Permissions
			for c, t := range hint.Columns {
				if !(perUser && strings.EqualFold(c, table.UserIDColumn)) {
					req.Columns[c] = t
				}
			}
		}
		for c, t := range cols {
			if _, ok := req.Columns[c]; !ok {
				req.Columns[c] = string(t)
			}
		}
		sp, err := req.Spec()
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", name, err)
		}
		if s, err = svc.Create(ctx, sp); err != nil {
			return nil, fmt.Errorf("table %s: create: %w", name, err)
		}
		ts.Created, ts.IDType, ts.SoftDeleted = true, s.IDType, soft
		return s, nil
	}
	if s.IDType != idType && len(rows) > 0 {
		return nil, fmt.Errorf("table %s exists here with %s ids but the source's are %s", name, s.IDType, idType)
	}
	ts.IDType = s.IDType
	if len(cols) == 0 && (!anyDeleted || s.Options.SoftDelete) {
		return s, nil
	}
	sp := table.Spec{Name: s.Name, Columns: cols}
	if anyDeleted && !s.Options.SoftDelete {
		on := true
		sp.SoftDelete = &on
		ts.SoftDeleted = true
	}
	if s, err = svc.Update(ctx, sp); err != nil {
		return nil, fmt.Errorf("table %s: %w", name, err)
	}
	return s, nil
}

// ensureValues converts the rows' user values (JSON as read) to the columns' types, in place. A
// property absent from an item is null: the row is copied whole.
func ensureValues(s *table.Schema, rows []*table.Row) error {
	for _, r := range rows {
		vals := make(map[string]any, len(r.Values))
		for k, v := range r.Values {
			c, ok := s.Column(k)
			if !ok {
				if v == nil {
					continue
				}
				return fmt.Errorf("table %s: item %v: no column for property %s", s.Name, r.ID, k)
			}
			cv, err := convertValue(c, v)
			if err != nil {
				return fmt.Errorf("table %s: item %v: property %s: %w", s.Name, r.ID, k, err)
			}
			vals[strings.ToLower(c.Name)] = cv
		}
		r.Values = vals
	}
	return nil
}

func convertValue(c table.Column, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c.Type {
	case table.String:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case table.Number:
		if n, ok := v.(json.Number); ok {
			f, err := strconv.ParseFloat(string(n), 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%s is not a representable number", n)
			}
			return f, nil
		}
	case table.Boolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case table.Date:
		if s, ok := v.(string); ok {
			if t, ok := parseDate(s); ok {
				return t, nil
			}
			return nil, fmt.Errorf("%q is not a date, but the local column is a date column", s)
		}
	}
	return nil, fmt.Errorf("a %T value does not fit the local %s column", v, c.Type)
}

var (
	isoDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$`)
	msDate  = regexp.MustCompile(`^/Date\((-?\d+)([+-]\d{4})?\)/$`)
)

// parseDate reads the date forms the Zumo servers send (the same rule the table package's dynamic
// schema applies): ISO 8601 with Z or an offset, or /Date(ms)/; millisecond precision, UTC.
func parseDate(s string) (time.Time, bool) {
	if isoDate.MatchString(s) {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.Year() < 1 || t.Year() > 9999 {
			return time.Time{}, false
		}
		return t.UTC().Truncate(time.Millisecond), true
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
