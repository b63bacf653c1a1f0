package table

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/odata"
)

// ScriptAPI runs data operations for server scripts (tables.getTable(name) in package script): the
// same validation, store and OData engine as /tables, with the rights scripts had in the original
// (all rows, no per-user restriction, no page limits: scripts are the app's own trusted code).
// Items are JSON values as encoding/json decodes them with UseNumber; dates come back as
// YYYY-MM-DDTHH:MM:SS.sssZ strings.
type ScriptAPI struct {
	Service *Service
}

// ItemConflictError is a version conflict with the server's current item (system properties
// included), for a script's conflict handler.
type ItemConflictError struct{ Item map[string]any }

func (e *ItemConflictError) Error() string { return "table: version conflict" }

func (a *ScriptAPI) request(ctx context.Context, name string) (*request, error) {
	s, err := a.Service.Lookup(ctx, name)
	if errors.Is(err, ErrNoTable) {
		return nil, &InputError{Msg: "Table '" + name + "' does not exist."}
	}
	if err != nil {
		return nil, err
	}
	r := (&http.Request{Method: http.MethodGet, URL: &url.URL{}, Header: http.Header{}}).WithContext(ctx)
	return &request{h: &Handler{Service: a.Service}, r: r, s: s, caller: &auth.Caller{Level: auth.AdminLevel}}, nil
}

// scriptSys reads system property names ("createdAt", "__version", "*").
func scriptSys(names []string) uint8 {
	if len(names) == 0 {
		return 0
	}
	bits, err := ParseSystemProperties(strings.Join(names, ","))
	if err != nil {
		return 0
	}
	return bits
}

// itemMap renders a row as a script sees it: id, requested system properties (v1 names), columns.
func itemMap(s *Schema, r *Row, sys uint8, cols map[string]bool) map[string]any {
	out := make(map[string]any, len(s.order)+5)
	if cols == nil || cols["id"] {
		out["id"] = r.ID
	}
	if s.IDType == StringID {
		if sys&sysCreatedAt != 0 {
			out[sysV1[0]] = r.CreatedAt.UTC().Format(DateFormat)
		}
		if sys&sysUpdatedAt != 0 {
			out[sysV1[1]] = r.UpdatedAt.UTC().Format(DateFormat)
		}
		if sys&sysVersion != 0 {
			out[sysV1[2]] = r.Version
		}
		if sys&sysDeleted != 0 {
			out[sysV1[3]] = r.Deleted
		}
	}
	for _, k := range s.order {
		if cols != nil && !cols[k] {
			continue
		}
		v := r.Values[k]
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(DateFormat)
		}
		out[s.columns[k].Name] = v
	}
	return out
}

// Read runs a query; q.Top may be odata.NoLimit.
func (a *ScriptAPI) Read(ctx context.Context, name string, q *odata.Query, sys []string) ([]map[string]any, int64, error) {
	rq, err := a.request(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	var cols map[string]bool
	if len(q.Select) > 0 && !contains(q.Select, "*") {
		cols = map[string]bool{}
		for _, c := range q.Select {
			cols[strings.ToLower(c)] = true
		}
	}
	if !q.IncludeDeleted {
		q.Restrict(odata.Eq(odata.Ident("deleted"), odata.Bool(false)))
	}
	if q.Cost == (odata.CostLimits{}) {
		q.Cost = a.Service.defaults.Cost // scripts often pass a client's $filter on
	}
	rows, count, err := a.Service.st.Query(ctx, rq.s, q)
	var uc *odata.UnknownColumnError
	if errors.As(err, &uc) && rq.s.Options.DynamicSchema {
		// A column no item has brought yet: nothing matches (the original's dynamic-schema answer).
		return []map[string]any{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	bits := scriptSys(sys)
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		out[i] = itemMap(rq.s, r, bits, cols)
	}
	return out, count, nil
}

// Lookup reads one item (404 when missing or deleted).
func (a *ScriptAPI) Lookup(ctx context.Context, name string, id any, sys []string) (map[string]any, error) {
	rq, err := a.request(ctx, name)
	if err != nil {
		return nil, err
	}
	pid, err := rq.parseID(id)
	if err != nil {
		return nil, err
	}
	row, err := a.Service.st.Get(ctx, rq.s, pid, nil)
	if err != nil {
		return nil, err
	}
	if row.Deleted {
		return nil, ErrNotFound
	}
	return itemMap(rq.s, row, scriptSys(sys), nil), nil
}

// Insert adds an item with the /tables insert rules.
func (a *ScriptAPI) Insert(ctx context.Context, name string, item map[string]any, sys []string) (map[string]any, error) {
	rq, err := a.request(ctx, name)
	if err != nil {
		return nil, err
	}
	row := &Row{}
	switch id := item["id"]; {
	case id == nil:
	case rq.s.IDType == IntegerID:
		if n, ok := id.(json.Number); !ok || n != "0" {
			return nil, inputf("A value cannot be specified for property 'id'")
		}
	default:
		s, ok := id.(string)
		if !ok {
			return nil, inputf("The value specified for property 'id' must be a string")
		}
		if s != "" {
			if err := ValidateStringID(s); err != nil {
				return nil, err
			}
			row.ID = s
		}
	}
	if row.ID == nil && rq.s.IDType == StringID {
		row.ID = newID()
	}
	vals, _, add, err := rq.values(item, false)
	if err != nil {
		return nil, err
	}
	s, err := a.Service.ensureColumns(ctx, rq.s, add)
	if err != nil {
		return nil, err
	}
	row.Values = vals
	out, err := a.Service.st.Insert(ctx, s, row)
	if err != nil {
		return nil, err
	}
	return itemMap(s, out, scriptSys(sys), nil), nil
}

// Update changes an item (item.id required; __version, when present, must match).
func (a *ScriptAPI) Update(ctx context.Context, name string, item map[string]any, sys []string) (map[string]any, error) {
	rq, err := a.request(ctx, name)
	if err != nil {
		return nil, err
	}
	if item["id"] == nil {
		return nil, inputf("An id value must be specified for an update operation.")
	}
	id, err := rq.parseID(item["id"])
	if err != nil {
		return nil, err
	}
	version := ""
	for _, k := range []string{"version", "__version"} {
		if v, ok := item[k].(string); ok && v != "" {
			version = v
		}
	}
	vals, _, add, err := rq.values(item, true)
	if err != nil {
		return nil, err
	}
	s, err := a.Service.ensureColumns(ctx, rq.s, add)
	if err != nil {
		return nil, err
	}
	out, err := a.Service.st.Update(ctx, s, id, vals, version, nil)
	if err != nil {
		return nil, scriptFailure(s, err)
	}
	return itemMap(s, out, scriptSys(sys), nil), nil
}

// Delete removes an item (soft on soft-delete tables); version "" means no check.
func (a *ScriptAPI) Delete(ctx context.Context, name string, id any, version string) error {
	rq, err := a.request(ctx, name)
	if err != nil {
		return err
	}
	pid, err := rq.parseID(id)
	if err != nil {
		return err
	}
	_, err = a.Service.st.Delete(ctx, rq.s, pid, version, nil)
	return scriptFailure(rq.s, err)
}

func scriptFailure(s *Schema, err error) error {
	var ce *ConflictError
	if errors.As(err, &ce) {
		return &ItemConflictError{Item: itemMap(s, ce.Current, sysAll, nil)}
	}
	return err
}

// SystemColumn maps a system property name (v1 "__createdAt" or v2 "createdAt", any case) or "id" to
// its physical column (for the T-SQL translation of mssql.query).
func SystemColumn(name string) (string, bool) {
	switch strings.ToLower(strings.TrimPrefix(name, "__")) {
	case "id":
		return colID, true
	case "createdat":
		return colCreatedAt, true
	case "updatedat":
		return colUpdatedAt, true
	case "version":
		return colVersion, true
	case "deleted":
		return colDeleted, true
	}
	return "", false
}

// SystemProperty is the v1 wire name of a physical system column ("" for user columns).
func SystemProperty(physical string) string {
	switch physical {
	case colID:
		return "id"
	case colCreatedAt:
		return sysV1[0]
	case colUpdatedAt:
		return sysV1[1]
	case colVersion:
		return sysV1[2]
	case colDeleted:
		return sysV1[3]
	}
	return ""
}

// NewItemID returns an id for a new item of a string-id table.
func NewItemID() string { return newID() }
