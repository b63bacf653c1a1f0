package script

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/table"
)

// TableHook runs table scripts table/<t>.<op>.js for table.Handler (spec §5.2).
type TableHook struct {
	Engine *Engine
}

// HasTableScript reports whether the current version has a script for the operation.
func (h *TableHook) HasTableScript(t string, op appdir.Operation) bool {
	_, ok := h.Engine.Current().TableScript(t, string(op))
	return ok
}

// recorder captures what the default operation answered.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// tableRun is one table script invocation.
type tableRun struct {
	w    http.ResponseWriter
	r    *http.Request
	c    *table.ScriptCall
	m    *vm
	raw  []byte
	body map[string]any // the decoded item (insert, update)
	item *goja.Object   // insert/update: the item the script sees
	// read
	query    *goja.Object
	initial  string // the query's descriptor before the script ran
	rawOrder string

	executed  bool
	responded bool
	waiting   bool // callbacks were supplied: the response waits for respond()
	last      *recorder
	results   goja.Value // read results handed to success
	inline    bool
}

// ServeTableScript runs the operation's script.
func (h *TableHook) ServeTableScript(w http.ResponseWriter, r *http.Request, c *table.ScriptCall) {
	v := h.Engine.Current()
	path, ok := v.TableScript(c.Table, string(c.Op))
	if !ok {
		c.Default(w, r)
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpx.Error(w, r, http.StatusRequestEntityTooLarge, httpx.MsgBodyTooLarge)
			return
		}
		httpx.Error(w, r, http.StatusBadRequest, "The request body could not be read.")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	run := &tableRun{w: w, r: r, c: c, raw: raw}
	// Requests the default operation would refuse before touching data are refused the same way
	// without running the script (malformed body or OData).
	if run.invalid() {
		c.Default(w, r)
		return
	}
	script := v.rel(path)
	err = h.Engine.run(r.Context(), v, script, func(m *vm) error {
		m.inv.table = c.Table
		run.m = m
		return run.start(path)
	}, func() bool { return run.responded })
	if run.responded {
		if err != nil {
			logFailure(h.Engine.opt.Log, script, r, err, "after responding")
		}
		return
	}
	if err == nil {
		err = ErrNoAnswer
	}
	logFailure(h.Engine.opt.Log, script, r, err, "")
	httpx.Error(w, r, http.StatusInternalServerError, httpx.MsgInternal)
}

func (t *tableRun) invalid() bool {
	switch t.c.Op {
	case appdir.Insert, appdir.Update:
		if t.c.Undelete {
			return false
		}
		dec := json.NewDecoder(bytes.NewReader(t.raw))
		dec.UseNumber()
		if dec.Decode(&t.body) != nil || t.body == nil || dec.More() {
			return true
		}
	case appdir.Read:
		if _, err := odata.ParseQuery(odataOnly(t.r.URL.Query()), odata.Limits{MaxTop: math.MaxInt32}); err != nil {
			return true
		}
	}
	return false
}

func odataOnly(q url.Values) url.Values {
	out := url.Values{}
	for k, vs := range q {
		if strings.HasPrefix(k, "$") {
			out[k] = vs
		}
	}
	return out
}

func (t *tableRun) start(path string) error {
	m := t.m
	rt := m.rt
	fns, err := m.runScript(path)
	if err != nil {
		return err
	}
	name := string(t.c.Op)
	if t.c.Op == appdir.Delete {
		name = "del"
	}
	f, ok := goja.AssertFunction(fns.Get(name))
	if !ok {
		return fmt.Errorf("%s does not define function %s", m.inv.script, name)
	}
	user := m.userObject(t.c.Caller)
	req := t.requestObject()
	var first goja.Value
	switch t.c.Op {
	case appdir.Insert, appdir.Update:
		if t.c.Undelete {
			t.item = rt.NewObject()
		} else {
			t.item = m.toJS(t.body).ToObject(rt)
		}
		if t.c.HasID {
			_ = t.item.Set("id", t.idValue())
		}
		first = t.item
	case appdir.Delete:
		first = t.idValue()
	case appdir.Read:
		t.query = t.newQuery()
		first = t.query
	}
	_, err = f(goja.Undefined(), first, user, req)
	return err
}

// idValue is the URL id as scripts see it: a number on integer-id tables, else the string.
func (t *tableRun) idValue() goja.Value {
	if t.c.IntegerID {
		if n, err := strconv.ParseInt(t.c.ID, 10, 64); err == nil {
			return t.m.rt.ToValue(n)
		}
	}
	return t.m.rt.ToValue(t.c.ID)
}

// newQuery converts the request's OData into the script's query object.
func (t *tableRun) newQuery() *goja.Object {
	m := t.m
	q, err := m.rt.New(m.queryCtor, m.rt.ToValue(t.c.Table))
	if err != nil {
		panic(err)
	}
	if t.c.HasID {
		// The original set query.id on lookups (GET /tables/t/{id}); scripts test it.
		_ = q.Set("id", t.idValue())
	}
	vals := t.r.URL.Query()
	if f := vals.Get("$filter"); strings.TrimSpace(f) != "" {
		where, _ := goja.AssertFunction(q.Get("where"))
		m.mustCall(where, q, m.rt.ToValue(f))
	}
	if s := vals.Get("$select"); s != "" {
		var cols []any
		for _, c := range strings.Split(s, ",") {
			cols = append(cols, strings.TrimSpace(c))
		}
		_ = q.Set("_select", m.rt.NewArray(cols...))
	}
	if n, err := strconv.Atoi(vals.Get("$top")); err == nil {
		_ = q.Set("_take", n)
	}
	if n, err := strconv.Atoi(vals.Get("$skip")); err == nil {
		_ = q.Set("_skip", n)
	}
	if vals.Get("$inlinecount") == "allpages" {
		_ = q.Set("_total", true)
	}
	t.rawOrder = vals.Get("$orderby")
	t.initial = t.describe(q)
	return q
}

func (t *tableRun) describe(q *goja.Object) string {
	desc, _ := goja.AssertFunction(q.Get("_desc"))
	s, err := t.m.stringify(t.m.mustCall(desc, q))
	if err != nil {
		panic(err)
	}
	return s
}

// requestObject is the script's request: operation, parameters, systemProperties, includeDeleted,
// undelete, execute, respond.
func (t *tableRun) requestObject() *goja.Object {
	m := t.m
	rt := m.rt
	req := rt.NewObject()
	_ = req.Set("operation", string(t.c.Op))
	params := url.Values{}
	var sys []any
	includeDeleted := false
	for k, vs := range t.r.URL.Query() {
		lk := strings.ToLower(k)
		switch {
		case lk == "__systemproperties" && len(vs) > 0:
			for _, p := range strings.Split(vs[0], ",") {
				if p = strings.TrimSpace(p); p != "" {
					sys = append(sys, p)
				}
			}
		case lk == "__includedeleted" && len(vs) > 0:
			includeDeleted = strings.EqualFold(strings.TrimSpace(vs[0]), "true")
		case strings.HasPrefix(k, "$"):
		default:
			params[k] = vs
		}
	}
	_ = req.Set("parameters", m.toJS(queryObject(params)))
	_ = req.Set("systemProperties", rt.NewArray(sys...))
	_ = req.Set("includeDeleted", includeDeleted)
	_ = req.Set("undelete", t.c.Undelete)
	_ = req.Set("execute", func(c goja.FunctionCall) goja.Value { t.execute(c.Argument(0)); return goja.Undefined() })
	_ = req.Set("respond", func(c goja.FunctionCall) goja.Value { t.respond(c); return goja.Undefined() })
	return req
}

func (t *tableRun) throw(msg string) { panic(t.m.errorValue(msg)) }

func (t *tableRun) execute(opts goja.Value) {
	m := t.m
	if t.responded {
		t.throw("Execute cannot be called after respond has been called.")
	}
	if t.executed {
		t.throw("Execute cannot be called more than once.")
	}
	var o *goja.Object
	if opts != nil && !goja.IsUndefined(opts) && !goja.IsNull(opts) {
		var ok bool
		if o, ok = opts.(*goja.Object); !ok {
			t.throw("Invalid options passed to 'execute'. The options must be an object.")
		}
	}
	cb := func(name string) goja.Callable {
		if o == nil {
			return nil
		}
		f, _ := goja.AssertFunction(o.Get(name))
		return f
	}
	success, fail, conflict := cb("success"), cb("error"), cb("conflict")
	t.executed = true
	t.waiting = success != nil || fail != nil || conflict != nil
	r2, lookupViaRead, err := t.rewrite(o)
	if err != nil {
		t.throw(err.Error())
	}
	rec := &recorder{header: http.Header{}}
	if lookupViaRead {
		t.c.DefaultRead(rec, r2)
		t.unwrapLookup(rec)
	} else {
		t.c.Default(rec, r2)
	}
	t.last = rec
	if t.c.Op == appdir.Read && rec.status < 300 && t.query != nil {
		if fn, ok := goja.AssertFunction(t.query.Get("_projection")); ok {
			t.project(rec, fn)
		}
	}
	if rec.status < 300 {
		if !t.waiting {
			t.write(rec) // a pass-through: the default answer as is
			return
		}
		res := t.successValue(rec)
		if success != nil {
			m.later(success, func() []goja.Value { return []goja.Value{res} })
		}
		return
	}
	if (rec.status == http.StatusPreconditionFailed || rec.status == http.StatusConflict) && conflict != nil && t.item != nil {
		server := m.parseJSON(rec.body.String())
		if so, ok := server.(*goja.Object); ok {
			for _, k := range []string{"__version", "version"} {
				if v := so.Get(k); v != nil && !goja.IsUndefined(v) {
					_ = t.item.Set(k, v)
				}
			}
		}
		t.executed = false // the conflict handler may execute again
		m.later(conflict, func() []goja.Value { return []goja.Value{server} })
		return
	}
	if fail != nil {
		e := t.errorFrom(rec)
		m.later(fail, func() []goja.Value { return []goja.Value{e} })
		return
	}
	t.write(rec)
}

// rewrite builds the request the default operation runs: the script's item as the body, the
// script's query as OData, execute's systemProperties and includeDeleted options.
func (t *tableRun) rewrite(o *goja.Object) (*http.Request, bool, error) {
	m := t.m
	r2 := t.r.Clone(t.r.Context())
	q := r2.URL.Query()
	if o != nil {
		if sp := o.Get("systemProperties"); sp == nil {
		} else if s, ok := sp.Export().([]any); ok {
			parts := make([]string, len(s))
			for i, x := range s {
				parts[i] = fmt.Sprint(x)
			}
			setParam(q, "__systemProperties", strings.Join(parts, ","))
		}
		if v := o.Get("includeDeleted"); v != nil && !goja.IsUndefined(v) {
			setParam(q, "__includeDeleted", strconv.FormatBool(v.ToBoolean()))
		}
	}
	lookupViaRead := false
	switch t.c.Op {
	case appdir.Insert, appdir.Update:
		if t.c.HasID && !t.c.Undelete {
			if id := t.item.Get("id"); id == nil || goja.IsUndefined(id) || goja.IsNull(id) || id.String() != t.c.ID {
				return nil, false, msgError("Update scripts cannot modify the id of the item to be updated.")
			}
		}
		if !t.c.Undelete {
			body, err := m.stringify(t.item)
			if err != nil {
				return nil, false, err
			}
			r2.Body = io.NopCloser(strings.NewReader(body))
			r2.ContentLength = int64(len(body))
		} else {
			r2.Body = io.NopCloser(bytes.NewReader(t.raw))
		}
	case appdir.Delete:
		r2.Body = http.NoBody
	case appdir.Read:
		desc := t.describe(t.query)
		if t.c.HasID && desc == t.initial {
			break // an unchanged lookup runs as a lookup (ETag, If-None-Match)
		}
		var d queryDesc
		dec := json.NewDecoder(strings.NewReader(desc))
		dec.UseNumber()
		if err := dec.Decode(&d); err != nil {
			return nil, false, err
		}
		for _, k := range []string{"$filter", "$orderby", "$top", "$skip", "$select", "$inlinecount"} {
			q.Del(k)
		}
		terms, err := m.whereTerms(d)
		if err != nil {
			return nil, false, err
		}
		if t.c.HasID {
			// The script narrowed a lookup: read with the id as a filter term, then unwrap.
			var idLit odata.Expr = odata.Str(t.c.ID)
			if n, err := strconv.ParseInt(t.c.ID, 10, 64); err == nil && t.c.IntegerID {
				idLit = odata.Num(float64(n))
			}
			terms = append([]odata.Expr{odata.Eq(odata.Ident("id"), idLit)}, terms...)
			lookupViaRead = true
			d.Take, d.Skip, d.Total = 2, 0, false
		}
		if len(terms) > 0 {
			q.Set("$filter", odata.Format(odata.And(terms...)))
		}
		order := t.rawOrder
		for _, k := range d.Order {
			if len(k) != 2 {
				continue
			}
			key := fmt.Sprint(k[0])
			if desc, _ := k[1].(bool); desc {
				key += " desc"
			}
			if order != "" {
				order += ","
			}
			order += key
		}
		if order != "" {
			q.Set("$orderby", order)
		}
		if d.Take >= 0 {
			q.Set("$top", strconv.Itoa(d.Take))
		}
		if d.Skip > 0 {
			q.Set("$skip", strconv.Itoa(d.Skip))
		}
		if d.Select != nil {
			q.Set("$select", strings.Join(d.Select, ","))
		}
		if d.Total {
			q.Set("$inlinecount", "allpages")
			t.inline = true
		}
	}
	r2.URL.RawQuery = q.Encode()
	r2.RequestURI = ""
	return r2, lookupViaRead, nil
}

func setParam(q url.Values, name, value string) {
	for k := range q {
		if strings.EqualFold(k, name) {
			q.Del(k)
		}
	}
	q.Set(name, value)
}

// whereTerms converts a query descriptor's where clauses to OData expressions.
func (m *vm) whereTerms(d queryDesc) ([]odata.Expr, error) {
	var terms []odata.Expr
	for _, w := range d.Where {
		switch {
		case w.OData != nil:
			e, err := odata.ParseFilter(*w.OData)
			if err != nil {
				return nil, err
			}
			if e != nil {
				terms = append(terms, e)
			}
		case w.Fn != "":
			args := make([]any, len(w.Args))
			for i, a := range w.Args {
				dec := json.NewDecoder(bytes.NewReader(a))
				dec.UseNumber()
				if err := dec.Decode(&args[i]); err != nil {
					return nil, err
				}
			}
			e, err := translatePredicate(w.Fn, args)
			if err != nil {
				return nil, err
			}
			terms = append(terms, e)
		default:
			e, err := objectFilter(w.Obj)
			if err != nil {
				return nil, err
			}
			if e != nil {
				terms = append(terms, e)
			}
		}
	}
	return terms, nil
}

// unwrapLookup turns the read a narrowed lookup ran into the lookup's answer: the single item, or 404.
func (t *tableRun) unwrapLookup(rec *recorder) {
	if rec.status != http.StatusOK {
		return
	}
	var items []json.RawMessage
	if json.Unmarshal(rec.body.Bytes(), &items) != nil || len(items) != 1 {
		rec.status = http.StatusNotFound
		rec.body.Reset()
		msg := fmt.Sprintf("An item with id '%s' does not exist.", t.c.ID)
		if httpx.DialectOf(t.r) == httpx.V2 {
			msg = "The item does not exist"
		}
		eb := &recorder{header: http.Header{}}
		httpx.Error(eb, t.r, http.StatusNotFound, msg)
		rec.body = eb.body
		return
	}
	rec.header.Del("Link")
	rec.body.Reset()
	rec.body.Write(items[0])
}

// project maps a read's results through the query's projection function (query.select(fn)), with
// this = each row, as the original's data operation did before answering or calling success.
func (t *tableRun) project(rec *recorder, fn goja.Callable) {
	m := t.m
	if rec.body.Len() == 0 {
		return
	}
	mapRows := func(v goja.Value) goja.Value {
		arr, ok := v.(*goja.Object)
		if !ok || arr.ClassName() != "Array" {
			out, err := fn(v)
			if err != nil {
				panic(err)
			}
			return out
		}
		n := int(arr.Get("length").ToInteger())
		out := make([]any, n)
		for i := 0; i < n; i++ {
			row := arr.Get(strconv.Itoa(i))
			r, err := fn(row)
			if err != nil {
				panic(err)
			}
			out[i] = r
		}
		return m.rt.NewArray(out...)
	}
	v := m.parseJSON(rec.body.String())
	if o, ok := v.(*goja.Object); ok && t.inline && o.ClassName() != "Array" {
		_ = o.Set("results", mapRows(o.Get("results")))
	} else {
		v = mapRows(v)
	}
	s, err := m.stringify(v)
	if err != nil {
		panic(err)
	}
	rec.body.Reset()
	rec.body.WriteString(s)
	rec.header.Del("Content-Length")
}

// successValue is what execute's success callback receives: the results of a read (an array,
// with totalCount when the count was asked for), the item of an insert or update (updated in place
// with what the server stored), nothing for a delete.
func (t *tableRun) successValue(rec *recorder) goja.Value {
	m := t.m
	switch t.c.Op {
	case appdir.Read:
		if rec.body.Len() == 0 {
			return goja.Undefined()
		}
		v := m.parseJSON(rec.body.String())
		if o, ok := v.(*goja.Object); ok && t.inline {
			res := o.Get("results")
			if ro, ok := res.(*goja.Object); ok {
				_ = ro.Set("totalCount", o.Get("count"))
			}
			t.results = res
			return res
		}
		if t.c.HasID {
			arr := m.rt.NewArray(v)
			t.results = arr
			return arr
		}
		t.results = v
		return v
	case appdir.Insert, appdir.Update:
		if rec.body.Len() > 0 {
			if o, ok := m.parseJSON(rec.body.String()).(*goja.Object); ok {
				for _, k := range o.Keys() {
					setOwn(t.item, k, o.Get(k))
				}
			}
		}
		return t.item
	}
	return goja.Undefined()
}

// errorFrom builds the Error an execute error callback receives from a failed default operation.
func (t *tableRun) errorFrom(rec *recorder) *goja.Object {
	var body struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(rec.body.Bytes(), &body)
	msg := strings.TrimPrefix(body.Error, "Error: ")
	if msg == "" {
		msg = http.StatusText(rec.status)
	}
	e := t.m.errorValue(msg)
	_ = e.Set("statusCode", rec.status)
	return e
}

// write sends a recorded answer to the client.
func (t *tableRun) write(rec *recorder) {
	t.responded = true
	for k, vs := range rec.header {
		t.w.Header()[k] = vs
	}
	t.w.WriteHeader(rec.status)
	t.w.Write(rec.body.Bytes()) //nolint:errcheck // the client went away
}

// msgMultipleForID is the original's error for a lookup given several items.
const msgMultipleForID = "Cannot return more than one item for a query by id."

// unwrapOne turns a one-element array answered to a lookup into its element; several elements are
// an error; anything else is returned unchanged.
func (t *tableRun) unwrapOne(v goja.Value) (goja.Value, error) {
	o, ok := v.(*goja.Object)
	if !ok || o.ClassName() != "Array" {
		return v, nil
	}
	switch o.Get("length").ToInteger() {
	case 0:
		return v, nil
	case 1:
		return o.Get("0"), nil
	}
	return nil, msgError(msgMultipleForID)
}

// lookupError answers a script error on a lookup: logged, 500 without details, as the original.
func (t *tableRun) lookupError(err error) {
	t.responded = true
	t.m.inv.log.Error("script error", "error", err.Error())
	httpx.Error(t.w, t.r, http.StatusInternalServerError, httpx.MsgInternal)
}

// respond answers the request: respond() releases the default result (with the script's changes to
// the item or results), respond(status, body) writes body as JSON, respond(error) answers with the
// error's statusCode (500 without one).
func (t *tableRun) respond(c goja.FunctionCall) {
	m := t.m
	if t.responded {
		t.throw("Respond cannot be called more than once.")
	}
	if len(c.Arguments) == 0 {
		if !t.executed || t.last == nil {
			t.throw("Execute must be called before respond.")
		}
		rec := t.last
		if rec.status < 300 {
			var body goja.Value
			switch {
			case t.c.Op == appdir.Read && t.results != nil:
				body = t.results
				if t.c.HasID {
					if o, ok := body.(*goja.Object); ok {
						if o.Get("length").ToInteger() == 0 {
							t.responded = true
							httpx.Error(t.w, t.r, http.StatusNotFound, fmt.Sprintf("An item with id '%s' does not exist.", t.c.ID))
							return
						}
						var err error
						if body, err = t.unwrapOne(body); err != nil {
							t.lookupError(err)
							return
						}
					}
				}
			case (t.c.Op == appdir.Insert || t.c.Op == appdir.Update) && t.item != nil && !t.c.Undelete:
				body = t.item
			}
			if body != nil {
				s, err := m.stringify(body)
				if err != nil {
					panic(err)
				}
				if t.inline && t.c.Op == appdir.Read {
					var count json.RawMessage
					var env struct {
						Count json.RawMessage `json:"count"`
					}
					if json.Unmarshal(rec.body.Bytes(), &env) == nil {
						count = env.Count
					}
					s = `{"results":` + s + `,"count":` + string(count) + `}`
				}
				rec.body.Reset()
				rec.body.WriteString(s)
			}
		}
		t.write(rec)
		return
	}
	a0 := c.Argument(0)
	if status, ok := statusArg(a0); ok {
		rec := &recorder{header: http.Header{}}
		rec.status = status
		if body := c.Argument(1); len(c.Arguments) > 1 && !goja.IsUndefined(body) {
			if t.c.Op == appdir.Read && t.c.HasID {
				// The original's pipeline unwrapped a one-element array answered to a lookup.
				var err error
				if body, err = t.unwrapOne(body); err != nil {
					t.lookupError(err)
					return
				}
			}
			s, err := m.stringify(body)
			if err != nil {
				panic(err)
			}
			rec.header.Set("Content-Type", "application/json")
			rec.body.WriteString(s)
		}
		t.write(rec)
		return
	}
	if o, ok := a0.(*goja.Object); ok {
		status := http.StatusInternalServerError
		if n, ok := statusArg(o.Get("statusCode")); ok {
			status = n
		}
		msg := ""
		if mv := o.Get("message"); mv != nil && !goja.IsUndefined(mv) {
			msg = mv.String()
		}
		t.responded = true
		if status >= 500 {
			m.inv.log.Error("script responded with an error", "error", msg)
			httpx.Error(t.w, t.r, status, httpx.MsgInternal)
			return
		}
		httpx.Error(t.w, t.r, status, msg)
		return
	}
	t.throw("Invalid arguments passed to 'respond'.")
}
