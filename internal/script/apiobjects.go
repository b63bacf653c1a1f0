package script

import (
	"mime"
	"net/http"
	"strings"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// Request, response and user objects share per-runtime prototypes whose methods find their request
// through the receiver (a map from object to call, cleared after each invocation), so building them
// per request costs a few property sets, and an object kept by a script past its request answers
// nothing for a later one.

// apiCall is the state behind one request's objects.
type apiCall struct {
	r      *http.Request
	resp   *apiResponse
	params map[string]string
	caller *auth.Caller
}

func (m *vm) callOf(this goja.Value) *apiCall {
	if o, ok := this.(*goja.Object); ok {
		if c, ok := m.calls[o]; ok {
			return c
		}
	}
	panic(m.errorValue("this method must be called on the request or response object of the current request"))
}

func (m *vm) apiRequest(r *http.Request, caller *auth.Caller, raw []byte, body any, params map[string]string, resp *apiResponse, res *goja.Object) *goja.Object {
	rt := m.rt
	call := &apiCall{r: r, resp: resp, params: params, caller: caller}
	req := rt.NewObject()
	_ = req.SetPrototype(m.reqProto())
	m.calls[req] = call
	m.calls[res] = call
	_ = req.Set("method", r.Method)
	_ = req.Set("url", r.URL.RequestURI())
	_ = req.Set("originalUrl", r.URL.RequestURI())
	_ = req.Set("path", r.URL.Path)
	query := rt.NewObject()
	for k, vs := range r.URL.Query() {
		if len(vs) == 1 {
			setOwn(query, k, rt.ToValue(vs[0]))
		} else {
			items := make([]any, len(vs))
			for i, v := range vs {
				items[i] = v
			}
			setOwn(query, k, rt.NewArray(items...))
		}
	}
	_ = req.Set("query", query)
	_ = req.Set("parameters", query)
	switch b := body.(type) {
	case nil:
		// Without a body the original's last body parser (runtime/request/middleware/bodyparser.js,
		// after connect 2.7's json parser had set {}) left the empty string: falsy, as scripts
		// that test `if (req.body)` expect.
		_ = req.Set("body", string(raw))
	case string:
		_ = req.Set("body", b)
	default:
		_ = req.Set("body", m.toJS(b))
	}
	_ = req.Set("rawBody", string(raw))
	headers := rt.NewObject()
	for k, vs := range r.Header {
		setOwn(headers, strings.ToLower(k), rt.ToValue(strings.Join(vs, ", ")))
	}
	_ = req.Set("headers", headers)
	p := rt.NewObject()
	for k, v := range params {
		setOwn(p, k, rt.ToValue(v))
	}
	_ = req.Set("params", p)
	if r.TLS != nil {
		_ = req.Set("protocol", "https")
		_ = req.Set("secure", true)
	}
	_ = req.Set("user", m.userObject(caller))
	_ = req.Set("respond", res.Get("send"))
	return req
}

// reqProto holds the request methods and the shared service object.
func (m *vm) reqProto() *goja.Object {
	if m.protoReq != nil {
		return m.protoReq
	}
	rt := m.rt
	p := rt.NewObject()
	get := func(c goja.FunctionCall) goja.Value {
		call := m.callOf(c.This)
		if v := call.r.Header.Get(c.Argument(0).String()); v != "" {
			return rt.ToValue(v)
		}
		return goja.Undefined()
	}
	_ = p.Set("get", get)
	_ = p.Set("header", get)
	_ = p.Set("param", func(c goja.FunctionCall) goja.Value {
		call := m.callOf(c.This)
		n := c.Argument(0).String()
		if v, ok := call.params[n]; ok {
			return rt.ToValue(v)
		}
		if v := call.r.URL.Query().Get(n); v != "" {
			return rt.ToValue(v)
		}
		return goja.Undefined()
	})
	_ = p.Set("protocol", "http")
	_ = p.Set("secure", false)
	svc := rt.NewObject()
	_ = svc.Set("tables", rt.Get("tables"))
	_ = svc.Set("mssql", rt.Get("mssql"))
	_ = svc.Set("push", rt.Get("push"))
	_ = svc.DefineAccessorProperty("config", rt.ToValue(func() goja.Value { return m.configModule() }), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = p.Set("service", svc)
	m.protoReq = p
	return p
}

func (m *vm) apiResponseObject() *goja.Object {
	res := m.rt.NewObject()
	_ = res.SetPrototype(m.resProto())
	_ = res.Set("statusCode", 200)
	return res
}

// resProto is the Express 3 response subset: send, json, set/header, get, status, type, writeHead,
// write/end, redirect. The first answer wins; a second one throws as Express did.
func (m *vm) resProto() *goja.Object {
	if m.protoRes != nil {
		return m.protoRes
	}
	rt := m.rt
	p := rt.NewObject()
	once := func(resp *apiResponse) {
		if resp.sent {
			panic(m.errorValue("Can't set headers after they are sent."))
		}
	}
	writeBody := func(resp *apiResponse, body goja.Value) {
		switch {
		case body == nil || goja.IsUndefined(body):
		case goja.IsNull(body):
			resp.body.WriteString("null")
		default:
			switch x := body.Export().(type) {
			case []byte:
				resp.body.Write(x)
				return
			case string:
				resp.body.WriteString(x)
				return
			}
			s, err := m.stringify(body)
			if err != nil {
				panic(err)
			}
			if resp.header.Get("Content-Type") == "" {
				resp.header.Set("Content-Type", "application/json")
			}
			resp.body.WriteString(s)
		}
	}
	// args reads (status, body), (body, status), (status) or (body).
	args := func(c goja.FunctionCall) (int, goja.Value) {
		a0, a1 := c.Argument(0), c.Argument(1)
		if n, ok := statusArg(a0); ok {
			if len(c.Arguments) == 1 {
				return n, rt.ToValue(http.StatusText(n))
			}
			return n, a1
		}
		if n, ok := statusArg(a1); ok {
			return n, a0
		}
		// Express 3's send(status, body) took any first argument of two as the status, so
		// res.send(req.query.status, body) with "500" answered 500. Only numeric strings count.
		if len(c.Arguments) == 2 {
			if n, ok := numericStatus(a0); ok {
				return n, a1
			}
		}
		return 0, a0
	}
	_ = p.Set("send", func(c goja.FunctionCall) goja.Value {
		resp := m.callOf(c.This).resp
		once(resp)
		status, body := args(c)
		if status != 0 {
			resp.status = status
		}
		writeBody(resp, body)
		resp.sent = true
		return c.This
	})
	_ = p.Set("json", func(c goja.FunctionCall) goja.Value {
		resp := m.callOf(c.This).resp
		once(resp)
		status, body := args(c)
		if status != 0 {
			resp.status = status
		}
		s, err := m.stringify(body)
		if err != nil {
			panic(err)
		}
		if resp.header.Get("Content-Type") == "" {
			resp.header.Set("Content-Type", "application/json")
		}
		resp.body.WriteString(s)
		resp.sent = true
		return c.This
	})
	setHeader := func(c goja.FunctionCall) goja.Value {
		resp := m.callOf(c.This).resp
		if o, ok := c.Argument(0).(*goja.Object); ok && len(c.Arguments) == 1 {
			for _, k := range o.Keys() {
				resp.header.Set(k, o.Get(k).String())
			}
			return c.This
		}
		once(resp)
		name := c.Argument(0).String()
		if name == "" || strings.ContainsAny(name, "\r\n:") {
			m.throwType("Invalid header name")
		}
		val := c.Argument(1).String()
		if strings.ContainsAny(val, "\r\n") {
			m.throwType("Invalid header value for %s", name)
		}
		resp.header.Set(name, val)
		return c.This
	}
	_ = p.Set("set", setHeader)
	_ = p.Set("header", setHeader)
	_ = p.Set("setHeader", setHeader)
	getHeader := func(c goja.FunctionCall) goja.Value {
		if v := m.callOf(c.This).resp.header.Get(c.Argument(0).String()); v != "" {
			return rt.ToValue(v)
		}
		return goja.Undefined()
	}
	_ = p.Set("get", getHeader)
	_ = p.Set("getHeader", getHeader)
	_ = p.Set("status", func(c goja.FunctionCall) goja.Value {
		if n, ok := statusArg(c.Argument(0)); ok {
			m.callOf(c.This).resp.status = n
		}
		return c.This
	})
	setType := func(c goja.FunctionCall) goja.Value {
		t := c.Argument(0).String()
		if !strings.Contains(t, "/") {
			if mt := mime.TypeByExtension("." + strings.TrimPrefix(t, ".")); mt != "" {
				t = mt
			}
		}
		m.callOf(c.This).resp.header.Set("Content-Type", t)
		return c.This
	}
	_ = p.Set("type", setType)
	_ = p.Set("contentType", setType)
	_ = p.Set("writeHead", func(c goja.FunctionCall) goja.Value {
		resp := m.callOf(c.This).resp
		if n, ok := statusArg(c.Argument(0)); ok {
			resp.status = n
		}
		if o, ok := c.Argument(1).(*goja.Object); ok {
			for _, k := range o.Keys() {
				resp.header.Set(k, o.Get(k).String())
			}
		}
		return c.This
	})
	_ = p.Set("write", func(c goja.FunctionCall) goja.Value {
		resp := m.callOf(c.This).resp
		once(resp)
		writeBody(resp, c.Argument(0))
		return rt.ToValue(true)
	})
	_ = p.Set("end", func(c goja.FunctionCall) goja.Value {
		resp := m.callOf(c.This).resp
		if resp.sent {
			// Node 0.10's ServerResponse.end on a finished response returned false silently;
			// scripts that call res.end() after res.send() relied on it.
			return rt.ToValue(false)
		}
		writeBody(resp, c.Argument(0))
		resp.sent = true
		return goja.Undefined()
	})
	_ = p.Set("redirect", func(c goja.FunctionCall) goja.Value {
		resp := m.callOf(c.This).resp
		once(resp)
		status, target := http.StatusFound, c.Argument(0)
		if n, ok := statusArg(c.Argument(0)); ok && len(c.Arguments) > 1 {
			status, target = n, c.Argument(1)
		}
		loc := target.String()
		if strings.ContainsAny(loc, "\r\n") {
			m.throwType("Invalid redirect location")
		}
		resp.status = status
		resp.header.Set("Location", loc)
		resp.sent = true
		return goja.Undefined()
	})
	m.protoRes = p
	return p
}

// userObject is the script's user (spec §2.7): level, userId, id, getIdentities in its three styles.
func (m *vm) userObject(c *auth.Caller) *goja.Object {
	rt := m.rt
	u := rt.NewObject()
	_ = u.SetPrototype(m.userProtoObj())
	m.users[u] = c
	_ = u.Set("level", c.Level.String())
	if c.Claims != nil && c.UserID() != "" {
		uid := c.Claims.UID
		if uid == "" {
			uid = c.UserID()
		}
		_ = u.Set("userId", uid)
		if c.Claims.ID != "" {
			_ = u.Set("id", c.Claims.ID)
		}
	} else {
		_ = u.Set("userId", goja.Undefined())
	}
	return u
}

func (m *vm) userProtoObj() *goja.Object {
	if m.protoUser != nil {
		return m.protoUser
	}
	rt := m.rt
	p := rt.NewObject()
	identities := func(c *auth.Caller) goja.Value {
		if c.Claims == nil || c.Claims.UID == "" {
			return goja.Null()
		}
		raw, err := c.Claims.Raw()
		if err != nil {
			return goja.Null()
		}
		creds, ok := raw["urn:microsoft:credentials"].(map[string]any)
		if !ok {
			return goja.Null()
		}
		key := strings.ToLower(c.Claims.Provider())
		if key == "microsoftaccount" {
			key = "microsoft"
		}
		id := map[string]any{"userId": c.Claims.UID}
		for k, v := range creds {
			id[k] = v
		}
		return m.toJS(map[string]any{key: id})
	}
	// stored reads the users directory, as the original's asynchronous forms did when its users
	// feature was on; a user with no linked identity (custom auth) falls back to the token's own.
	stored := func(caller *auth.Caller) (goja.Value, error) {
		if m.e.opt.Identities == nil || caller.UserID() == "" || m.inv == nil {
			return identities(caller), nil
		}
		ids, err := m.e.opt.Identities.ScriptIdentities(m.inv.ctx, caller.UserID())
		if err != nil {
			m.inv.log.Error("user.getIdentities: users directory failed", "err", err)
			return nil, msgError("Unable to retrieve the user's identities.")
		}
		if len(ids) == 0 {
			return identities(caller), nil
		}
		return m.toJS(ids), nil
	}
	_ = p.Set("getIdentities", func(call goja.FunctionCall) goja.Value {
		o, _ := call.This.(*goja.Object)
		caller, ok := m.users[o]
		if !ok {
			panic(m.errorValue("getIdentities must be called on the current request's user"))
		}
		a := call.Argument(0)
		if f, ok := goja.AssertFunction(a); ok {
			v, err := stored(caller)
			if err != nil {
				e := m.errorValue(err.Error())
				m.later(f, func() []goja.Value { return []goja.Value{e} })
				return goja.Undefined()
			}
			m.later(f, func() []goja.Value { return []goja.Value{goja.Null(), v} })
			return goja.Undefined()
		}
		if opts, ok := a.(*goja.Object); ok {
			v, err := stored(caller)
			if err != nil {
				if f, ok := goja.AssertFunction(opts.Get("error")); ok {
					e := m.errorValue(err.Error())
					m.later(f, func() []goja.Value { return []goja.Value{e} })
				}
				return goja.Undefined()
			}
			if f, ok := goja.AssertFunction(opts.Get("success")); ok {
				m.later(f, func() []goja.Value { return []goja.Value{v} })
			}
			return goja.Undefined()
		}
		if m.inv != nil {
			m.inv.log.Warn("user.getIdentities() without a callback is deprecated; pass {success: function (identities) {...}}")
		}
		return identities(caller)
	})
	m.protoUser = p
	return p
}
