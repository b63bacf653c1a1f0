package script

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// nodeVersion is what process.version reports: the Node line the hosted runtime ran on. Scripts that
// branch on it take the pre-v6 paths whose semantics (binary strings in crypto) Gatehouse implements.
const nodeVersion = "v0.10.48"

// statusCodes is the original's global of that name (MOVED_PERMANANTLY sic).
var statusCodes = map[string]int{
	"OK": 200, "CREATED": 201, "ACCEPTED": 202, "NO_CONTENT": 204, "MOVED_PERMANANTLY": 301, "FOUND": 302,
	"NOT_MODIFIED": 304, "BAD_REQUEST": 400, "UNAUTHORIZED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404,
	"METHOD_NOT_ALLOWED": 405, "CONFLICT": 409, "GONE": 410, "PRECONDITION_FAILED": 412,
	"REQUEST_ENTITY_TOO_LARGE": 413, "INTERNAL_SERVER_ERROR": 500, "BAD_GATEWAY": 502, "SERVICE_UNAVAILABLE": 503,
}

// maxPBKDF2 bounds pbkdf2 work so that one call cannot outlive the invocation budget by much (pbkdf2
// runs in Go and cannot be interrupted mid-way).
const maxPBKDF2Iterations = 1_000_000

func (m *vm) installGlobals() error {
	rt := m.rt
	gh := rt.NewObject()
	set := func(name string, f func(call goja.FunctionCall) goja.Value) { _ = gh.Set(name, f) }
	set("count", func(c goja.FunctionCall) goja.Value { m.count(c.Argument(0).ToInteger()); return goja.Undefined() })
	set("decode", func(c goja.FunctionCall) goja.Value {
		b := m.decode(c.Argument(0).String(), encArg(c.Argument(1), "utf8"))
		return rt.ToValue(rt.NewArrayBuffer(b))
	})
	set("encode", func(c goja.FunctionCall) goja.Value {
		b := m.bytes(c.Argument(0), "")
		s, e := int(c.Argument(2).ToInteger()), int(c.Argument(3).ToInteger())
		if s < 0 || e > len(b) || s > e {
			s, e = 0, len(b)
		}
		return rt.ToValue(m.encode(b[s:e], c.Argument(1).String()))
	})
	set("isEncoding", func(c goja.FunctionCall) goja.Value {
		_, ok := normEnc(c.Argument(0).String())
		return rt.ToValue(ok)
	})
	set("byteLength", func(c goja.FunctionCall) goja.Value {
		return rt.ToValue(len(m.decode(c.Argument(0).String(), encArg(c.Argument(1), "utf8"))))
	})
	set("log", func(c goja.FunctionCall) goja.Value {
		lvl := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[c.Argument(0).String()]
		msg := c.Argument(1).String()
		if len(msg) > 8192 {
			msg = msg[:8192] + "…"
		}
		log := m.e.opt.Log
		if m.inv != nil {
			log = m.inv.log
		}
		log.Log(m.ctx(), lvl, msg, "source", "console")
		return goja.Undefined()
	})
	set("timer", func(c goja.FunctionCall) goja.Value {
		f, ok := goja.AssertFunction(c.Argument(0))
		if !ok {
			m.throwType("callback must be a function")
		}
		d := time.Duration(c.Argument(1).ToFloat() * float64(time.Millisecond))
		id := m.loop.addTimer(rt, d, c.Argument(2).ToBoolean(), func() { m.mustCall(f, nil) })
		return rt.ToValue(id)
	})
	set("clearTimer", func(c goja.FunctionCall) goja.Value {
		m.loop.clearTimer(c.Argument(0).ToInteger())
		return goja.Undefined()
	})
	set("immediate", func(c goja.FunctionCall) goja.Value {
		f, ok := goja.AssertFunction(c.Argument(0))
		if !ok {
			m.throwType("callback must be a function")
		}
		m.loop.enqueue(rt, func() { m.mustCall(f, nil) })
		return goja.Undefined()
	})
	set("urlParse", func(c goja.FunctionCall) goja.Value { return m.urlParse(c.Argument(0).String()) })
	set("urlResolve", func(c goja.FunctionCall) goja.Value {
		base, err := url.Parse(c.Argument(0).String())
		if err != nil {
			return c.Argument(1)
		}
		ref, err := url.Parse(c.Argument(1).String())
		if err != nil {
			return c.Argument(1)
		}
		return rt.ToValue(base.ResolveReference(ref).String())
	})
	m.installServices(gh)
	m.installPush(gh)

	fnv, err := rt.RunProgram(m.e.prelude)
	if err != nil {
		return err
	}
	prelude, _ := goja.AssertFunction(fnv)
	out, err := prelude(goja.Undefined(), gh, rt.GlobalObject())
	if err != nil {
		return err
	}
	builtins := out.ToObject(rt)
	m.bufferCtor = builtins.Get("Buffer").ToObject(rt)
	m.bufferFrom, _ = goja.AssertFunction(m.bufferCtor.Get("from"))
	m.queryCtor = builtins.Get("Query").ToObject(rt)
	for _, name := range []string{"util", "events", "querystring", "url", "buffer"} {
		mod := rt.NewObject()
		_ = mod.Set("exports", builtins.Get(name))
		m.modules["builtin:"+name] = mod
	}
	crypto := m.cryptoModule()
	cm := rt.NewObject()
	_ = cm.Set("exports", crypto)
	m.modules["builtin:crypto"] = cm

	_ = rt.Set("global", rt.GlobalObject())
	_ = rt.Set("GLOBAL", rt.GlobalObject())
	codes := rt.NewObject()
	for k, v := range statusCodes {
		_ = codes.Set(k, v)
	}
	_ = rt.Set("statusCodes", codes)
	_ = rt.Set("process", m.processObject())
	_ = rt.Set("require", m.requireFor(""))
	return nil
}

// builtin returns a Node core module or one of the original's runtime modules.
func (m *vm) builtin(name string) (goja.Value, bool) {
	switch name {
	case "crypto", "util", "events", "querystring", "url", "buffer":
		return m.modules["builtin:"+name].Get("exports"), true
	case "mobileservice-config":
		return m.configModule(), true
	case "request":
		return m.requestModule(), true
	case "fs", "child_process", "net", "http", "https", "tls", "dgram", "cluster", "vm", "os", "path", "module", "worker_threads", "azure", "tedious", "mssql":
		panic(m.errorValue(fmt.Sprintf("Cannot find module '%s' (not available to scripts in Gatehouse)", name)))
	}
	return nil, false
}

func (m *vm) processObject() *goja.Object {
	rt := m.rt
	p := rt.NewObject()
	env := rt.NewObject()
	for k, v := range m.e.opt.AppSettings {
		_ = env.Set(k, v)
	}
	// The keys are read at each access, so that a rotation reaches scripts (as mobileservice-config).
	key := func(f func(Keys) string) goja.Value {
		return rt.ToValue(func() string { return f(m.e.opt.Keys()) })
	}
	_ = env.DefineAccessorProperty("MS_MasterKey", key(func(k Keys) string { return k.MasterKey }), nil, goja.FLAG_TRUE, goja.FLAG_TRUE)
	_ = env.DefineAccessorProperty("MS_ApplicationKey", key(func(k Keys) string { return k.ApplicationKey }), nil, goja.FLAG_TRUE, goja.FLAG_TRUE)
	_ = env.Set("MS_MobileServiceName", m.e.opt.ServiceName)
	_ = p.Set("env", env)
	_ = p.Set("version", nodeVersion)
	versions := rt.NewObject()
	_ = versions.Set("node", strings.TrimPrefix(nodeVersion, "v"))
	_ = p.Set("versions", versions)
	_ = p.Set("platform", "linux")
	_ = p.Set("arch", "x64")
	_ = p.Set("title", "node")
	_ = p.Set("argv", []any{"node"})
	_ = p.Set("pid", 1)
	start := time.Now()
	_ = p.Set("uptime", func() float64 { return time.Since(start).Seconds() })
	_ = p.Set("cwd", func() string { return "/" })
	_ = p.Set("hrtime", func(c goja.FunctionCall) goja.Value {
		n := time.Since(start)
		sec, ns := int64(n/time.Second), int64(n%time.Second)
		if prev, ok := c.Argument(0).Export().([]any); ok && len(prev) == 2 {
			ps, _ := toInt64(prev[0])
			pn, _ := toInt64(prev[1])
			d := (sec*1e9 + ns) - (ps*1e9 + pn)
			sec, ns = d/1e9, d%1e9
		}
		return rt.ToValue([]any{sec, ns})
	})
	_ = p.Set("memoryUsage", func() map[string]int { return map[string]int{"rss": 0, "heapTotal": 0, "heapUsed": 0} })
	_ = p.Set("nextTick", func(c goja.FunctionCall) goja.Value {
		f, ok := goja.AssertFunction(c.Argument(0))
		if !ok {
			m.throwType("callback must be a function")
		}
		args := append([]goja.Value(nil), c.Arguments[1:]...)
		m.loop.nextTick(rt, func() { m.mustCall(f, nil, args...) })
		return goja.Undefined()
	})
	for _, name := range []string{"exit", "abort", "kill", "chdir", "setuid", "setgid", "dlopen", "binding"} {
		n := name
		_ = p.Set(n, func(goja.FunctionCall) goja.Value {
			panic(m.errorValue("process." + n + " is not available to scripts"))
		})
	}
	_ = p.Set("on", func(goja.FunctionCall) goja.Value { return p })
	return p
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		return int64(x), true
	}
	return 0, false
}

// configModule is require('mobileservice-config'): the keys read at each access (rotation).
func (m *vm) configModule() goja.Value {
	rt := m.rt
	o := rt.NewObject()
	getter := func(f func() string) goja.Value { return rt.ToValue(func() string { return f() }) }
	_ = o.DefineAccessorProperty("masterKey", getter(func() string { return m.e.opt.Keys().MasterKey }), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = o.DefineAccessorProperty("applicationKey", getter(func() string { return m.e.opt.Keys().ApplicationKey }), nil, goja.FLAG_FALSE, goja.FLAG_TRUE)
	_ = o.Set("mobileServiceName", m.e.opt.ServiceName)
	_ = o.Set("serviceName", m.e.opt.ServiceName)
	settings := rt.NewObject()
	for k, v := range m.e.opt.AppSettings {
		_ = settings.Set(k, v)
	}
	_ = o.Set("appSettings", settings)
	return o
}

// ---- byte accounting --------------------------------------------------------------------------

// count charges n bytes to the invocation's allocation budget; past it the script gets a RangeError.
func (m *vm) count(n int64) {
	if n < 0 {
		return
	}
	limit := m.e.opt.AllocLimit
	if n > limit {
		panic(m.rangeError(fmt.Sprintf("Buffer of %d bytes exceeds the script allocation limit (%d bytes)", n, limit)))
	}
	if m.inv == nil {
		return
	}
	m.inv.counted += n
	if m.inv.counted > limit {
		panic(m.rangeError(fmt.Sprintf("the script allocated more than %d bytes in Buffers and crypto output", limit)))
	}
}

func (m *vm) rangeError(msg string) *goja.Object {
	o, err := m.rt.New(m.rt.Get("RangeError").ToObject(m.rt), m.rt.ToValue(msg))
	if err != nil {
		panic(err)
	}
	return o
}

// newBuffer wraps Go bytes in a Buffer (no copy).
func (m *vm) newBuffer(b []byte) goja.Value {
	m.count(int64(len(b)))
	v, err := m.bufferFrom(m.bufferCtor, m.rt.ToValue(m.rt.NewArrayBuffer(b)))
	if err != nil {
		panic(err)
	}
	return v
}

// ---- encodings --------------------------------------------------------------------------------

func normEnc(e string) (string, bool) {
	switch strings.ToLower(e) {
	case "utf8", "utf-8":
		return "utf8", true
	case "hex":
		return "hex", true
	case "base64":
		return "base64", true
	case "base64url":
		return "base64url", true
	case "binary", "latin1":
		return "latin1", true
	case "ascii":
		return "ascii", true
	case "ucs2", "ucs-2", "utf16le", "utf-16le":
		return "ucs2", true
	}
	return "", false
}

func encArg(v goja.Value, def string) string {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return def
	}
	return v.String()
}

// decode turns a string into bytes with Node's encodings (lenient, like Node: invalid hex stops at
// the first bad pair, base64 ignores whitespace and accepts URL-safe letters and missing padding).
func (m *vm) decode(s, enc string) []byte {
	e, ok := normEnc(enc)
	if !ok {
		m.throwType("Unknown encoding: %s", enc)
	}
	m.count(int64(len(s)))
	switch e {
	case "hex":
		n := len(s) / 2
		out := make([]byte, 0, n)
		for i := 0; i+1 < len(s); i += 2 {
			b, err := hex.DecodeString(s[i : i+2])
			if err != nil {
				break
			}
			out = append(out, b[0])
		}
		return out
	case "base64", "base64url":
		clean := strings.Map(func(r rune) rune {
			switch {
			case r == '-':
				return '+'
			case r == '_':
				return '/'
			case r == '=' || r == ' ' || r == '\n' || r == '\r' || r == '\t':
				return -1
			}
			return r
		}, s)
		if i := strings.IndexFunc(clean, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/')
		}); i >= 0 {
			clean = clean[:i]
		}
		if len(clean)%4 == 1 {
			clean = clean[:len(clean)-1]
		}
		out, _ := base64.RawStdEncoding.DecodeString(clean)
		return out
	case "latin1", "ascii":
		units := utf16.Encode([]rune(s))
		out := make([]byte, len(units))
		for i, u := range units {
			out[i] = byte(u)
		}
		return out
	case "ucs2":
		units := utf16.Encode([]rune(s))
		out := make([]byte, 2*len(units))
		for i, u := range units {
			out[2*i], out[2*i+1] = byte(u), byte(u>>8)
		}
		return out
	}
	return []byte(s)
}

func (m *vm) encode(b []byte, enc string) string {
	e, ok := normEnc(enc)
	if !ok {
		m.throwType("Unknown encoding: %s", enc)
	}
	m.count(int64(len(b)))
	switch e {
	case "hex":
		return hex.EncodeToString(b)
	case "base64":
		return base64.StdEncoding.EncodeToString(b)
	case "base64url":
		return base64.RawURLEncoding.EncodeToString(b)
	case "latin1":
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	case "ascii":
		r := make([]byte, len(b))
		for i, c := range b {
			r[i] = c & 0x7f
		}
		return string(r)
	case "ucs2":
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
		}
		return string(utf16.Decode(u))
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// bytes reads a Buffer/typed array (shared, not copied) or a string in the given encoding
// (crypto's default for strings is "binary", as in Node before v6; "" means utf8).
func (m *vm) bytes(v goja.Value, enc string) []byte {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		m.throwType("Data must be a string or a buffer")
	}
	switch x := v.Export().(type) {
	case []byte:
		return x
	case goja.ArrayBuffer:
		return x.Bytes()
	case string:
		if enc == "" {
			enc = "utf8"
		}
		return m.decode(x, enc)
	}
	if o, ok := v.(*goja.Object); ok {
		var b []byte
		if err := m.rt.ExportTo(o, &b); err == nil {
			return b
		}
	}
	m.throwType("Data must be a string or a buffer")
	return nil
}

// ---- crypto -----------------------------------------------------------------------------------

func newHash(name string) (func() hash.Hash, bool) {
	switch strings.ToLower(strings.TrimPrefix(strings.ToLower(name), "rsa-")) {
	case "md5":
		return md5.New, true
	case "sha1", "sha-1":
		return sha1.New, true
	case "sha256", "sha-256":
		return sha256.New, true
	case "sha224":
		return sha256.New224, true
	case "sha384":
		return sha512.New384, true
	case "sha512", "sha-512":
		return sha512.New, true
	}
	return nil, false
}

// hashObject is the object createHash/createHmac return: update(data[, enc]) and digest([enc]).
func (m *vm) hashObject(h hash.Hash) *goja.Object {
	rt := m.rt
	o := rt.NewObject()
	done := false
	_ = o.Set("update", func(c goja.FunctionCall) goja.Value {
		if done {
			panic(m.errorValue("Digest already called"))
		}
		h.Write(m.bytes(c.Argument(0), encArg(c.Argument(1), "binary")))
		return o
	})
	_ = o.Set("digest", func(c goja.FunctionCall) goja.Value {
		if done {
			panic(m.errorValue("Digest already called"))
		}
		done = true
		sum := h.Sum(nil)
		if enc := encArg(c.Argument(0), ""); enc != "" && enc != "buffer" {
			return rt.ToValue(m.encode(sum, enc))
		}
		return m.newBuffer(sum)
	})
	_ = o.Set("write", o.Get("update"))
	return o
}

func (m *vm) cryptoModule() *goja.Object {
	rt := m.rt
	c := rt.NewObject()
	_ = c.Set("createHash", func(call goja.FunctionCall) goja.Value {
		nh, ok := newHash(call.Argument(0).String())
		if !ok {
			panic(m.errorValue("Digest method not supported"))
		}
		return m.hashObject(nh())
	})
	_ = c.Set("createHmac", func(call goja.FunctionCall) goja.Value {
		nh, ok := newHash(call.Argument(0).String())
		if !ok {
			panic(m.errorValue("Digest method not supported"))
		}
		key := m.bytes(call.Argument(1), "binary")
		return m.hashObject(hmac.New(nh, append([]byte(nil), key...)))
	})
	_ = c.Set("randomBytes", func(call goja.FunctionCall) goja.Value {
		n := call.Argument(0).ToInteger()
		if n < 0 || n > 1<<20 {
			panic(m.rangeError("randomBytes size must be between 0 and 1048576"))
		}
		b := make([]byte, n)
		rand.Read(b) //nolint:errcheck // crypto/rand does not fail on supported platforms
		buf := m.newBuffer(b)
		if cb, ok := goja.AssertFunction(call.Argument(1)); ok {
			m.later(cb, func() []goja.Value { return []goja.Value{goja.Null(), buf} })
			return goja.Undefined()
		}
		return buf
	})
	_ = c.Set("pseudoRandomBytes", c.Get("randomBytes"))
	pbkdf := func(call goja.FunctionCall) ([]byte, goja.Callable) {
		pw := m.bytes(call.Argument(0), "binary")
		salt := m.bytes(call.Argument(1), "binary")
		iter := call.Argument(2).ToInteger()
		keyLen := call.Argument(3).ToInteger()
		digest := "sha1"
		var cb goja.Callable
		if f, ok := goja.AssertFunction(call.Argument(4)); ok {
			cb = f
		} else {
			if d := call.Argument(4); !goja.IsUndefined(d) && !goja.IsNull(d) {
				digest = d.String()
			}
			cb, _ = goja.AssertFunction(call.Argument(5))
		}
		if iter <= 0 || iter > maxPBKDF2Iterations {
			m.throwType("Bad iterations (1 to %d)", maxPBKDF2Iterations)
		}
		if keyLen < 0 || keyLen > 1<<16 {
			m.throwType("Bad key length")
		}
		nh, ok := newHash(digest)
		if !ok {
			m.throwType("Digest method not supported")
		}
		key, err := pbkdf2.Key(nh, string(pw), salt, int(iter), int(keyLen))
		if err != nil {
			panic(m.rt.NewGoError(err))
		}
		return key, cb
	}
	_ = c.Set("pbkdf2", func(call goja.FunctionCall) goja.Value {
		key, cb := pbkdf(call)
		if cb == nil {
			m.throwType("No callback provided to pbkdf2")
		}
		buf := m.newBuffer(key)
		m.later(cb, func() []goja.Value { return []goja.Value{goja.Null(), buf} })
		return goja.Undefined()
	})
	_ = c.Set("pbkdf2Sync", func(call goja.FunctionCall) goja.Value {
		key, _ := pbkdf(call)
		return m.newBuffer(key)
	})
	_ = c.Set("timingSafeEqual", func(call goja.FunctionCall) goja.Value {
		a, b := m.bytes(call.Argument(0), ""), m.bytes(call.Argument(1), "")
		if len(a) != len(b) {
			panic(m.rangeError("Input buffers must have the same length"))
		}
		return rt.ToValue(subtle.ConstantTimeCompare(a, b) == 1)
	})
	_ = c.Set("getHashes", func() []string { return []string{"md5", "sha1", "sha224", "sha256", "sha384", "sha512"} })
	m.installCiphers(c)
	return c
}

// urlParse is url.parse in Node's legacy shape.
func (m *vm) urlParse(s string) goja.Value {
	rt := m.rt
	o := rt.NewObject()
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		_ = o.Set("href", s)
		_ = o.Set("path", s)
		_ = o.Set("pathname", s)
		return o
	}
	null := goja.Null()
	val := func(s string) goja.Value {
		if s == "" {
			return null
		}
		return rt.ToValue(s)
	}
	proto := ""
	if u.Scheme != "" {
		proto = strings.ToLower(u.Scheme) + ":"
	}
	_ = o.Set("protocol", val(proto))
	_ = o.Set("slashes", val(map[bool]string{true: "true"}[u.Host != "" || strings.Contains(s, "//")]))
	if u.Host != "" || strings.Contains(s, "//") {
		_ = o.Set("slashes", true)
	}
	auth := ""
	if u.User != nil {
		auth = u.User.String()
		if a, err := url.PathUnescape(auth); err == nil {
			auth = a
		}
	}
	_ = o.Set("auth", val(auth))
	_ = o.Set("host", val(strings.ToLower(u.Host)))
	_ = o.Set("port", val(u.Port()))
	_ = o.Set("hostname", val(strings.ToLower(u.Hostname())))
	hash := ""
	if u.Fragment != "" || u.RawFragment != "" {
		hash = "#" + u.EscapedFragment()
	}
	_ = o.Set("hash", val(hash))
	search := ""
	if u.RawQuery != "" || u.ForceQuery {
		search = "?" + u.RawQuery
	}
	_ = o.Set("search", val(search))
	_ = o.Set("query", val(u.RawQuery))
	path := u.EscapedPath()
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" && u.Host != "" {
		path = "/"
	}
	_ = o.Set("pathname", val(path))
	_ = o.Set("path", val(path+search))
	href := u.String()
	if u.Host != "" && u.Path == "" {
		href = strings.TrimSuffix(proto+"//"+u.Host, "") + "/" + search + hash
		if auth != "" {
			href = proto + "//" + auth + "@" + u.Host + "/" + search + hash
		}
	}
	_ = o.Set("href", href)
	return o
}
