package script

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dop251/goja"
)

// Outbound HTTP: require('request') in the style of the npm "request" module the original's scripts
// used, limited to the hosts of Options.HTTPAllow (exact names or "*.example.com"); redirects are
// followed only to allowed hosts; the response body is bounded by the allocation limit. With an empty
// allowlist every call fails with "outbound HTTP is not allowed to <host>".

// hostAllowed matches a host (no port) against the allowlist.
func hostAllowed(allow []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range allow {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "":
		case strings.HasPrefix(p, "*."):
			if strings.HasSuffix(host, p[1:]) && len(host) > len(p)-1 {
				return true
			}
		case p == host:
			return true
		}
	}
	return false
}

func (e *Engine) httpClient() *http.Client {
	base := e.opt.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: 30 * time.Second}
	}
	c := *base
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if !hostAllowed(e.opt.HTTPAllow, req.URL.Hostname()) {
			return fmt.Errorf("outbound HTTP is not allowed to %s (redirect)", req.URL.Hostname())
		}
		return nil
	}
	return &c
}

// requestModule is require('request').
func (m *vm) requestModule() goja.Value {
	if mod, ok := m.modules["builtin:request"]; ok {
		return mod.Get("exports")
	}
	rt := m.rt
	call := func(method string) func(goja.FunctionCall) goja.Value {
		return func(c goja.FunctionCall) goja.Value {
			opts := c.Argument(0)
			cb, _ := goja.AssertFunction(c.Argument(1))
			if o, ok := opts.(*goja.Object); ok && cb == nil {
				cb, _ = goja.AssertFunction(o.Get("callback"))
			}
			res, body, err := m.doRequest(method, opts)
			if cb == nil {
				return goja.Undefined()
			}
			m.later(cb, func() []goja.Value {
				if err != nil {
					return []goja.Value{m.errorValue(err.Error())}
				}
				return []goja.Value{goja.Null(), res, body}
			})
			return goja.Undefined()
		}
	}
	fn := rt.ToValue(call("")).ToObject(rt)
	for _, meth := range []string{"get", "post", "put", "patch", "del", "head"} {
		verb := strings.ToUpper(meth)
		if verb == "DEL" {
			verb = "DELETE"
		}
		_ = fn.Set(meth, call(verb))
	}
	_ = fn.Set("delete", fn.Get("del"))
	mod := rt.NewObject()
	_ = mod.Set("exports", fn)
	m.modules["builtin:request"] = mod
	return fn
}

// doRequest performs one request (synchronously, on the invocation's context) and returns the
// response object and body the callback receives.
func (m *vm) doRequest(method string, opts goja.Value) (goja.Value, goja.Value, error) {
	var o *goja.Object
	target := ""
	if s, ok := opts.Export().(string); ok {
		target = s
	} else if obj, ok := opts.(*goja.Object); ok {
		o = obj
		for _, k := range []string{"url", "uri"} {
			if v := o.Get(k); v != nil && !goja.IsUndefined(v) {
				target = v.String()
			}
		}
		if method == "" {
			if v := o.Get("method"); v != nil && !goja.IsUndefined(v) {
				method = strings.ToUpper(v.String())
			}
		}
	}
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, msgError(fmt.Sprintf("Invalid URI %q", target))
	}
	if !hostAllowed(m.e.opt.HTTPAllow, u.Hostname()) {
		return nil, nil, fmt.Errorf("outbound HTTP is not allowed to %s (scripts.http_allowlist)", u.Hostname())
	}
	get := func(k string) goja.Value {
		if o == nil {
			return nil
		}
		v := o.Get(k)
		if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
			return nil
		}
		return v
	}
	if qs := get("qs"); qs != nil {
		q := u.Query()
		qo := qs.ToObject(m.rt)
		for _, k := range qo.Keys() {
			q.Set(k, qo.Get(k).String())
		}
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	header := http.Header{}
	jsonMode := false
	if j := get("json"); j != nil {
		jsonMode = true
		if _, isObj := j.(*goja.Object); isObj {
			s, err := m.stringify(j)
			if err != nil {
				return nil, nil, err
			}
			body = strings.NewReader(s)
			header.Set("Content-Type", "application/json")
		} else if !j.ToBoolean() {
			jsonMode = false
		}
		header.Set("Accept", "application/json")
	}
	if f := get("form"); f != nil {
		vals := url.Values{}
		fo := f.ToObject(m.rt)
		for _, k := range fo.Keys() {
			vals.Set(k, fo.Get(k).String())
		}
		body = strings.NewReader(vals.Encode())
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b := get("body"); b != nil {
		if raw, ok := b.Export().([]byte); ok {
			body = bytes.NewReader(append([]byte(nil), raw...))
		} else if _, isObj := b.(*goja.Object); isObj && jsonMode {
			s, err := m.stringify(b)
			if err != nil {
				return nil, nil, err
			}
			body = strings.NewReader(s)
			header.Set("Content-Type", "application/json")
		} else {
			body = strings.NewReader(b.String())
		}
	}
	if h := get("headers"); h != nil {
		ho := h.ToObject(m.rt)
		for _, k := range ho.Keys() {
			v := ho.Get(k).String()
			if strings.ContainsAny(k+v, "\r\n") {
				return nil, nil, fmt.Errorf("invalid header %q", k)
			}
			header.Set(k, v)
		}
	}
	ctx := m.ctx()
	if t := get("timeout"); t != nil {
		if ms := t.ToInteger(); ms > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
			defer cancel()
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	req.Header = header
	resp, err := m.e.httpClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, err
	}
	defer resp.Body.Close()
	limit := m.e.opt.AllocLimit
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(data)) > limit {
		return nil, nil, fmt.Errorf("the response body is larger than the script allocation limit (%d bytes)", limit)
	}
	m.count(int64(len(data)))
	res := m.rt.NewObject()
	_ = res.Set("statusCode", resp.StatusCode)
	hdrs := m.rt.NewObject()
	for k, vs := range resp.Header {
		setOwn(hdrs, strings.ToLower(k), m.rt.ToValue(strings.Join(vs, ", ")))
	}
	_ = res.Set("headers", hdrs)
	var bodyVal goja.Value = m.rt.ToValue(string(data))
	if jsonMode && len(bytes.TrimSpace(data)) > 0 && json.Valid(data) {
		bodyVal = m.parseJSON(string(data))
	}
	_ = res.Set("body", bodyVal)
	return res, bodyVal, nil
}
