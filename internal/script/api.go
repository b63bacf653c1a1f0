package script

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// APIHandler serves custom APIs: /api/<name>[/<sub path>] runs api/<name>.js (spec §5.3) with the
// permissions of api/<name>.json.
type APIHandler struct {
	Engine *Engine
	Log    *slog.Logger
}

// apiResponse is what a custom API answered.
type apiResponse struct {
	sent   bool
	status int
	header http.Header
	body   bytes.Buffer
}

func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The path is taken as sent (escaped), split on "/" and decoded per segment: the one canonical
	// form that both the permission lookup and the dispatch below see (appdir/route.go).
	first, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	nameEsc, subEsc := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		nameEsc, subEsc = rest[:i], rest[i:] // subEsc keeps its leading "/" so that "//x" is seen
	}
	api, err1 := url.PathUnescape(first)
	name, err2 := url.PathUnescape(nameEsc)
	if err1 != nil || err2 != nil || !appdir.FoldEqual(api, "api") || name == "" {
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	caller := httpx.CallerOf(r)
	v := h.Engine.Current()
	meta, ok := v.App.API(name)
	var path string
	if ok {
		path, ok = v.ScriptPath("api", meta.Name+".js")
	}
	if !ok {
		// Unknown APIs look like admin-only ones to other callers (no disclosure of API names).
		if !caller.IsAdmin() {
			unauthorized(w, r)
			return
		}
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	// A caller that no route of the API admits is refused before the body is read; the permission
	// of the route the request matches is checked in startAPI, just before its handler runs.
	if p := meta.Loosest(); !caller.Allows(p) {
		if caller.NeedsMFA(p) {
			httpx.Error(w, r, http.StatusForbidden, auth.MsgMFARequired)
			return
		}
		unauthorized(w, r)
		return
	}
	segs, err := appdir.SplitPath(subEsc)
	if err != nil {
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
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
	body, err := parseBody(r, raw)
	if err != nil {
		httpx.Error(w, r, http.StatusBadRequest, err.Error())
		return
	}
	resp := &apiResponse{header: http.Header{}}
	script := v.rel(path)
	err = h.Engine.run(r.Context(), v, script, func(m *vm) error {
		return m.startAPI(path, meta, segs, r, caller, raw, body, resp)
	}, func() bool { return resp.sent })
	if resp.sent {
		if err != nil {
			logFailure(h.Engine.opt.Log, script, r, err, "after responding")
		}
		for k, vs := range resp.header {
			w.Header()[k] = vs
		}
		status := resp.status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		w.Write(resp.body.Bytes()) //nolint:errcheck // the client went away
		return
	}
	if errors.Is(err, errRouteNeedsMFA) {
		httpx.Error(w, r, http.StatusForbidden, auth.MsgMFARequired)
		return
	}
	if errors.Is(err, errRouteForbidden) {
		unauthorized(w, r)
		return
	}
	var nf *routeNotFound
	if errors.As(err, &nf) {
		if len(nf.allow) > 0 {
			httpx.MethodNotAllowed(w, r, nf.allow...)
			return
		}
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	if err == nil {
		err = ErrNoAnswer
	}
	logFailure(h.Engine.opt.Log, script, r, err, "")
	httpx.Error(w, r, http.StatusInternalServerError, httpx.MsgInternal)
}

func unauthorized(w http.ResponseWriter, r *http.Request) {
	if httpx.DialectOf(r) == httpx.V2 {
		httpx.Error(w, r, http.StatusUnauthorized, "You must be logged in to use this application")
		return
	}
	httpx.Error(w, r, http.StatusUnauthorized, httpx.MsgUnauthorized)
}

// logFailure logs a failed invocation with the script's file and line.
func logFailure(log *slog.Logger, script string, r *http.Request, err error, note string) {
	msg, where := Describe(err)
	attrs := []any{"script", script, "error", msg}
	if where != "" {
		attrs = append(attrs, "at", where)
	}
	if r != nil {
		attrs = append(attrs, "request_id", httpx.InfoOf(r).RequestID)
	}
	if note != "" {
		attrs = append(attrs, "note", note)
	}
	log.Error("script failed", attrs...)
}

type routeNotFound struct{ allow []string }

// errRouteForbidden: the caller may not use the route the request matched.
var errRouteForbidden = errors.New("the caller may not use this route")

// errRouteNeedsMFA: the route requires multi-factor sign-in and the caller's token shows none.
var errRouteNeedsMFA = errors.New("the route requires multi-factor sign-in")

func (e *routeNotFound) Error() string { return "no handler for this method and path" }

// parseBody reads a request body as Express 3's body parsers did: JSON, urlencoded form, else text.
func parseBody(r *http.Request, raw []byte) (any, error) {
	if r.Method == http.MethodGet || r.Method == http.MethodDelete || len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "" || ct == "application/json" || strings.HasSuffix(ct, "+json"):
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil || dec.More() {
			if ct == "" {
				return string(raw), nil
			}
			return nil, msgError("The request body is not valid JSON.")
		}
		return v, nil
	case ct == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, msgError("The request body is not a valid form.")
		}
		return queryObject(vals), nil
	}
	return string(raw), nil
}

func queryObject(vals url.Values) map[string]any {
	out := make(map[string]any, len(vals))
	for k, vs := range vals {
		if len(vs) == 1 {
			out[k] = vs[0]
		} else {
			out[k] = vs
		}
	}
	return out
}

// apiRoute is a route registered by exports.register(api).
type apiRoute struct {
	method  string // lower-case or "all"
	pattern appdir.Pattern
	handler goja.Callable
}

// selectRoute is the dispatch half of the route matcher: the first registered route (Express's
// order) whose method and pattern match, or -1.
func selectRoute(routes []apiRoute, method string, segs []string) (int, map[string]string) {
	for i, rt := range routes {
		if rt.method != method && rt.method != "all" {
			continue
		}
		if p, ok := rt.pattern.Match(segs); ok {
			return i, p
		}
	}
	return -1, nil
}

// startAPI finds the handler for the request, checks the caller against the permission of the
// route it matched (the same route, so lookup and dispatch cannot disagree), and calls the handler
// with request and response objects.
func (m *vm) startAPI(path string, meta *appdir.API, segs []string, r *http.Request, caller *auth.Caller, raw []byte, body any, resp *apiResponse) error {
	exports, err := m.exportsOf(path)
	if err != nil {
		return err
	}
	ex, ok := exports.(*goja.Object)
	if !ok {
		ex = m.rt.NewObject()
	}
	method := strings.ToLower(r.Method)
	routes, err := m.apiRoutes(path, ex)
	if err != nil {
		return err
	}
	var handler goja.Callable
	route := appdir.Literal(segs) // no route matched: the path itself decides who may learn that
	i, params := selectRoute(routes, method, segs)
	if i >= 0 {
		handler, route = routes[i].handler, routes[i].pattern
	}
	if handler == nil && len(segs) == 0 {
		keys := []string{method}
		if method == "delete" {
			keys = append(keys, "del")
		}
		for _, k := range keys {
			if f, ok := goja.AssertFunction(ex.Get(k)); ok {
				handler, route, params = f, appdir.Pattern{}, map[string]string{}
				break
			}
		}
	}
	if p := meta.RoutePermission(route, r.Method); !caller.Allows(p) {
		if caller.NeedsMFA(p) {
			return errRouteNeedsMFA
		}
		return errRouteForbidden
	}
	if handler == nil {
		var allow []string
		if len(segs) == 0 {
			for _, k := range []string{"get", "post", "put", "patch", "delete"} {
				_, ok1 := goja.AssertFunction(ex.Get(k))
				_, ok2 := goja.AssertFunction(ex.Get("del"))
				if ok1 || (k == "delete" && ok2) {
					allow = append(allow, strings.ToUpper(k))
				}
			}
		}
		return &routeNotFound{allow: allow}
	}
	res := m.apiResponseObject()
	req := m.apiRequest(r, caller, raw, body, params, resp, res)
	_, err = handler(goja.Undefined(), req, res)
	return err
}

// apiRoutes runs exports.register(api) once per runtime and remembers the routes.
func (m *vm) apiRoutes(path string, ex *goja.Object) ([]apiRoute, error) {
	if cached, ok := m.routes[path]; ok {
		return cached, nil
	}
	var routes []apiRoute
	if reg, ok := goja.AssertFunction(ex.Get("register")); ok {
		api := m.rt.NewObject()
		for _, meth := range []string{"get", "post", "put", "patch", "delete", "del", "all"} {
			method := meth
			if method == "del" {
				method = "delete"
			}
			_ = api.Set(meth, func(c goja.FunctionCall) goja.Value {
				f, ok := goja.AssertFunction(c.Argument(len(c.Arguments) - 1))
				if !ok {
					m.throwType("api.%s requires a handler function", meth)
				}
				routes = append(routes, apiRoute{method: method, pattern: appdir.ParsePattern(c.Argument(0).String()), handler: f})
				return goja.Undefined()
			})
		}
		if _, err := reg(ex, api); err != nil {
			return nil, err
		}
	}
	m.routes[path] = routes
	return routes, nil
}

// numericStatus reads a status given as a string of digits ("500"), as Express 3 accepted.
func numericStatus(v goja.Value) (int, bool) {
	if v == nil {
		return 0, false
	}
	str, ok := v.Export().(string)
	if !ok || len(str) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(str)
	if err != nil || n < 100 || n > 999 || str[0] == '+' || str[0] == '-' {
		return 0, false
	}
	return n, true
}

func statusArg(v goja.Value) (int, bool) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return 0, false
	}
	switch x := v.Export().(type) {
	case int64:
		if x >= 100 && x <= 999 {
			return int(x), true
		}
	case float64:
		if x >= 100 && x <= 999 && x == float64(int(x)) {
			return int(x), true
		}
	}
	return 0, false
}
