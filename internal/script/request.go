package script

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/dop251/goja"
)

// Outbound HTTP: require('request') in the style of the npm "request" module the original's scripts
// used, limited to the hosts of Options.HTTPAllow; the response body is bounded by the allocation
// limit. With an empty allowlist every call fails with "outbound HTTP is not allowed to <host>".
//
// Two checks, both on every hop of a redirect:
//   - by name, before the request: the URL's host must match an entry ("api.example.com",
//     "*.example.com", or an address or range for hosts written as addresses);
//   - by address, when the connection is dialled: every address the name resolves to must be a
//     public unicast address, unless the allowlist lists it (an address or a CIDR range). A name
//     that resolves to loopback, private, link-local, CGNAT, multicast or other special-purpose
//     addresses is refused, and the address checked is the one dialled (no second lookup to
//     rebind). No proxy is used: a proxy would make the dial check meaningless.

// outbound is the parsed allowlist.
type outbound struct {
	names    []string       // lower case: exact names, or "*.suffix"
	prefixes []netip.Prefix // addresses (as /32 or /128) and ranges the operator listed
	lookup   func(ctx context.Context, host string) ([]netip.Addr, error)
}

func newOutbound(allow []string, lookup func(ctx context.Context, host string) ([]netip.Addr, error)) (*outbound, error) {
	o := &outbound{lookup: lookup}
	if o.lookup == nil {
		o.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	for _, entry := range allow {
		p := strings.ToLower(strings.TrimSpace(entry))
		p = strings.TrimSuffix(strings.TrimPrefix(p, "["), "]")
		switch {
		case p == "":
		case strings.Contains(p, "/"):
			pre, err := netip.ParsePrefix(p)
			if err != nil {
				return nil, fmt.Errorf("script: http allowlist entry %q is not a CIDR range: %w", entry, err)
			}
			o.prefixes = append(o.prefixes, pre.Masked())
		default:
			if a, err := netip.ParseAddr(p); err == nil {
				a = a.Unmap()
				o.prefixes = append(o.prefixes, netip.PrefixFrom(a, a.BitLen()))
				continue
			}
			o.names = append(o.names, strings.TrimSuffix(p, "."))
		}
	}
	return o, nil
}

// hostAllowed is the check by name: host (no port) against the allowlist.
func (o *outbound) hostAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if a, err := netip.ParseAddr(host); err == nil {
		return o.listed(a)
	}
	for _, p := range o.names {
		switch {
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

func (o *outbound) listed(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range o.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrAllowed is the check by address, at dial time.
func (o *outbound) addrAllowed(a netip.Addr) bool { return o.listed(a) || publicAddr(a) }

// specialPurpose are the IANA special-purpose ranges (RFC 6890 and successors) that are not
// reachable public hosts, beyond what netip's predicates cover.
var specialPurpose = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
		"::/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16",
		"3fff::/20", "fec0::/10",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// publicAddr reports whether a is a public unicast address: not loopback, private (RFC 1918, ULA),
// link-local, multicast, unspecified, CGNAT, documentation, benchmarking, reserved, or an IPv6 form
// that embeds an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo).
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range specialPurpose {
		if p.Contains(a.WithZone("")) {
			return false
		}
	}
	return true
}

// dial connects to addr ("host:port") on an address that passes addrAllowed.
func (o *outbound) dial(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = o.lookup(ctx, host); err != nil {
		return nil, err
	}
	var refused netip.Addr
	var lastErr error
	for _, a := range addrs {
		if !o.addrAllowed(a) {
			refused = a
			continue
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	if lastErr != nil {
		return nil, lastErr
	}
	if refused.IsValid() {
		return nil, fmt.Errorf("outbound HTTP is not allowed to %s: it resolves to %s, a loopback, private or reserved address (list the address in scripts.http_allowlist to allow it)", host, refused)
	}
	return nil, fmt.Errorf("outbound HTTP: %s has no address", host)
}

// newHTTPClient is the client scripts' requests go through: base's settings (timeout, TLS roots),
// our dialer, no proxy, the redirect checks.
func newHTTPClient(base *http.Client, o *outbound) (*http.Client, error) {
	if base == nil {
		base = &http.Client{Timeout: 30 * time.Second}
	}
	var tr *http.Transport
	switch t := base.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, fmt.Errorf("script: the HTTP client's transport must be an *http.Transport (it gets the address checks), not %T", t)
	}
	d := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		// Control sees the address actually connected to: a second line behind dial's checks.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !o.addrAllowed(ap.Addr()) {
				return fmt.Errorf("outbound HTTP is not allowed to %s", address)
			}
			return nil
		},
	}
	tr.Proxy = nil
	tr.DialTLSContext = nil
	//lint:ignore SA1019 a base transport's deprecated dialer would otherwise bypass ours
	tr.DialTLS = nil
	//lint:ignore SA1019 idem
	tr.Dial = nil
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return o.dial(ctx, d, network, addr)
	}
	c := *base
	c.Transport = tr
	c.Jar = nil
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("outbound HTTP: redirect to a %s: URL", req.URL.Scheme)
		}
		if !o.hostAllowed(req.URL.Hostname()) {
			return fmt.Errorf("outbound HTTP is not allowed to %s (redirect)", req.URL.Hostname())
		}
		return nil
	}
	return &c, nil
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
	if !m.e.out.hostAllowed(u.Hostname()) {
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
	resp, err := m.e.client.Do(req)
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
