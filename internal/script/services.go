package script

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/table"
)

// Tables is what tables.getTable(name) runs on: the same store, validation and OData engine as
// /tables (implemented by table.ScriptAPI). Items are JSON values (strings, json.Number, bool, nil);
// sys lists the system properties to include ("createdAt", ...; nil for none, "*" for all).
type Tables interface {
	Read(ctx context.Context, table string, q *odata.Query, sys []string) ([]map[string]any, int64, error)
	Lookup(ctx context.Context, table string, id any, sys []string) (map[string]any, error)
	Insert(ctx context.Context, table string, item map[string]any, sys []string) (map[string]any, error)
	Update(ctx context.Context, table string, item map[string]any, sys []string) (map[string]any, error)
	Delete(ctx context.Context, table string, id any, version string) error
}

// SQL is what mssql.query runs on (mssql.go translates T-SQL for it).
type SQL interface {
	Query(ctx context.Context, tsql string, args []any) ([]map[string]any, error)
}

func (m *vm) ctx() context.Context {
	if m.inv != nil {
		return m.inv.ctx
	}
	return context.Background()
}

// currentTable is the table of the running table script (tables.current).
func (m *vm) currentTable() string {
	if m.inv != nil {
		return m.inv.table
	}
	return ""
}

func (m *vm) installServices(gh *goja.Object) {
	rt := m.rt
	_ = gh.Set("currentTable", func() string { return m.currentTable() })
	_ = gh.Set("odata", func(c goja.FunctionCall) goja.Value {
		q, err := m.buildQuery(c.Argument(0))
		if err != nil {
			panic(m.errorValue(err.Error()))
		}
		if q.Filter == nil {
			return rt.ToValue("")
		}
		return rt.ToValue(odata.Format(q.Filter))
	})
	// table(op, name, arg, includeDeleted, systemProperties, done): runs now, answers done(err, res) later.
	_ = gh.Set("table", func(c goja.FunctionCall) goja.Value {
		op, name, arg := c.Argument(0).String(), c.Argument(1).String(), c.Argument(2)
		done, ok := goja.AssertFunction(c.Argument(5))
		if !ok {
			m.throwType("internal: no callback")
		}
		var sys []string
		if s, ok := c.Argument(4).Export().([]any); ok {
			for _, x := range s {
				sys = append(sys, fmt.Sprint(x))
			}
		}
		res, err := m.tableOp(op, name, arg, c.Argument(3).ToBoolean(), sys)
		m.later(done, func() []goja.Value {
			if err != nil {
				return []goja.Value{m.dataError(err)}
			}
			return []goja.Value{goja.Null(), m.toJS(res)}
		})
		return goja.Undefined()
	})
	_ = gh.Set("sql", func(c goja.FunctionCall) goja.Value {
		done, ok := goja.AssertFunction(c.Argument(2))
		if !ok {
			m.throwType("internal: no callback")
		}
		var args []any
		if a, ok := c.Argument(1).Export().([]any); ok {
			args = a
		}
		for i, a := range args {
			if mm, ok := a.(map[string]any); ok {
				if d, ok := mm["__date"].(string); ok {
					if tm, err := time.Parse(time.RFC3339Nano, d); err == nil {
						args[i] = tm
						continue
					}
				}
				m.throwType("mssql.query: parameter %d is an object; parameters must be strings, numbers, booleans, dates or null", i+1)
			}
		}
		var res []map[string]any
		var err error
		if m.e.opt.SQL == nil {
			err = msgError("mssql is not configured")
		} else {
			res, err = m.e.opt.SQL.Query(m.ctx(), c.Argument(0).String(), args)
		}
		m.later(done, func() []goja.Value {
			if err != nil {
				return []goja.Value{m.dataError(err)}
			}
			if res == nil {
				res = []map[string]any{}
			}
			return []goja.Value{goja.Null(), m.toJS(res)}
		})
		return goja.Undefined()
	})
}

// dataError turns a data operation's failure into the Error a script's error callback receives;
// a version conflict carries the server's item (serverItem) for conflict handlers.
func (m *vm) dataError(err error) goja.Value {
	var ie *table.InputError
	var ce *table.ItemConflictError
	var msg string
	switch {
	case errors.As(err, &ce):
		e := m.errorValue("The item has been modified on the server (version conflict).")
		_ = e.Set("serverItem", m.toJS(ce.Item))
		_ = e.Set("code", 412)
		return e
	case errors.As(err, &ie):
		msg = ie.Msg
	case errors.Is(err, table.ErrNotFound):
		e := m.errorValue("An item with the given id does not exist.")
		_ = e.Set("code", 404)
		return e
	case errors.Is(err, table.ErrDuplicate):
		e := m.errorValue("Could not insert the item because an item with that id already exists.")
		_ = e.Set("code", 409)
		return e
	case errors.Is(err, table.ErrNoTable):
		msg = err.Error()
	case errors.Is(err, odata.ErrBadQuery):
		msg = err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		msg = "the operation ran past the script's time limit"
	default:
		var se *SQLError
		var me msgError
		if errors.As(err, &me) {
			msg = me.Error()
			break
		}
		if errors.As(err, &se) {
			msg = se.Error()
			break
		}
		if m.inv != nil {
			m.inv.log.Error("data operation failed", "err", err)
		}
		msg = "The data operation failed."
	}
	return m.errorValue(msg)
}

func (m *vm) tableOp(op, name string, arg goja.Value, includeDeleted bool, sys []string) (any, error) {
	t := m.e.opt.Tables
	if t == nil {
		return nil, msgError("tables are not configured")
	}
	ctx := m.ctx()
	switch op {
	case "read":
		q, err := m.buildQuery(arg)
		if err != nil {
			return nil, err
		}
		q.IncludeDeleted = includeDeleted
		rows, count, err := t.Read(ctx, name, q, sys)
		if err != nil {
			return nil, err
		}
		if rows == nil {
			rows = []map[string]any{}
		}
		if q.InlineCount {
			return map[string]any{"results": rows, "count": count}, nil
		}
		return rows, nil
	case "insert", "update":
		v, err := m.toGo(arg)
		if err != nil {
			return nil, err
		}
		item, ok := v.(map[string]any)
		if !ok {
			return nil, &table.InputError{Msg: "The item must be an object."}
		}
		if op == "insert" {
			return t.Insert(ctx, name, item, sys)
		}
		return t.Update(ctx, name, item, sys)
	case "del", "lookup":
		o := arg.ToObject(m.rt)
		id := jsonID(o.Get("id"))
		if op == "lookup" {
			return t.Lookup(ctx, name, id, sys)
		}
		version := ""
		if v := o.Get("version"); v != nil && !goja.IsNull(v) && !goja.IsUndefined(v) {
			version = v.String()
		}
		return nil, t.Delete(ctx, name, id, version)
	}
	return nil, fmt.Errorf("unknown table operation %q", op)
}

// jsonID turns a script's id into the JSON form the table layer parses (string or json.Number).
func jsonID(v goja.Value) any {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	switch x := v.Export().(type) {
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64))
	case string:
		return x
	}
	return v.String()
}

// ---- query descriptors → OData ----------------------------------------------------------------

type queryDesc struct {
	Where []struct {
		Fn    string            `json:"fn"`
		Args  []json.RawMessage `json:"args"`
		OData *string           `json:"odata"`
		Obj   map[string]any    `json:"obj"`
	} `json:"where"`
	Select []string `json:"select"`
	Order  [][]any  `json:"order"`
	Skip   int      `json:"skip"`
	Take   int      `json:"take"`
	Total  bool     `json:"total"`
}

// buildQuery turns the query builder's state into an OData query: where(object) is an equality
// conjunction, where(string) an OData filter, where(function) a translated JavaScript predicate.
// Script reads have no page limits (take() absent = all rows), as in the original.
func (m *vm) buildQuery(v goja.Value) (*odata.Query, error) {
	s, err := m.stringify(v)
	if err != nil {
		return nil, err
	}
	var d queryDesc
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("invalid query: %w", err)
	}
	q := &odata.Query{Top: odata.NoLimit, Skip: max(d.Skip, 0), InlineCount: d.Total}
	if d.Take >= 0 {
		q.Top = d.Take
	}
	terms, err := m.whereTerms(d)
	if err != nil {
		return nil, err
	}
	if len(terms) > 0 {
		q.Filter = odata.And(terms...)
	}
	q.Select = append(q.Select, d.Select...)
	for _, o := range d.Order {
		if len(o) != 2 {
			continue
		}
		name, _ := o[0].(string)
		desc, _ := o[1].(bool)
		q.OrderBy = append(q.OrderBy, odata.OrderKey{Expr: odata.Ident(name), Desc: desc})
	}
	return q, nil
}

// objectFilter is where({a: 1, b: 'x'}): a = 1 and b = 'x' (null means "is null").
func objectFilter(obj map[string]any) (odata.Expr, error) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sortStrings(keys)
	var terms []odata.Expr
	for _, k := range keys {
		lit, err := literal(obj[k])
		if err != nil {
			return nil, fmt.Errorf("where: property '%s': %w", k, err)
		}
		terms = append(terms, odata.Eq(odata.Ident(k), lit))
	}
	if len(terms) == 0 {
		return nil, nil
	}
	return odata.And(terms...), nil
}

func literal(v any) (odata.Expr, error) {
	switch x := v.(type) {
	case nil:
		return odata.Null(), nil
	case string:
		return odata.Str(x), nil
	case bool:
		return odata.Bool(x), nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return odata.Num(f), nil
	case float64:
		return odata.Num(x), nil
	}
	return nil, fmt.Errorf("values must be strings, numbers, booleans or null, not %T", v)
}
