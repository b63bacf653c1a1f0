package script

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// maxCallStack bounds recursion depth ("Maximum call stack size exceeded" instead of a Go stack blowup).
const maxCallStack = 2000

// vm is one goja runtime with the Node subset installed, bound to one app version (its module cache
// belongs to that version). A vm serves one invocation at a time.
type vm struct {
	rt      *goja.Runtime
	e       *Engine
	ver     *Version
	loop    *loop
	modules map[string]*goja.Object // module cache: absolute path or builtin name → module object
	inv     *invocation
	scripts map[string]*goja.Object // evaluated table and job scripts, by file
	routes  map[string][]apiRoute   // custom API routes registered by exports.register, by file
	// per-invocation objects of request, response and user (cleared after each invocation)
	calls                         map[*goja.Object]*apiCall
	users                         map[*goja.Object]*auth.Caller
	protoReq, protoRes, protoUser *goja.Object

	// keys are the keys in force when the runtime was built: a runtime whose modules may have copied
	// older keys (var masterKey = require('mobileservice-config').masterKey) is not reused.
	keys Keys

	jsonParse, jsonStringify goja.Callable
	bufferFrom               goja.Callable // Buffer.from(arrayBuffer)
	bufferCtor               *goja.Object
	queryCtor                *goja.Object // the prelude's Query (table script read queries)
}

// invocation is one run of a script: a request, a job run, the startup hook.
type invocation struct {
	ctx     context.Context
	log     *slog.Logger
	script  string // file relative to the app directory, for logs
	table   string // the table of a table script (tables.current)
	started time.Time
	vm      *vm
	memory  atomic.Bool // stopped by the memory watchdog
	// counted is what the Node subset allocated for this invocation (Buffers, crypto output).
	counted int64
}

// internalError is a Go panic inside a service call.
type internalError struct {
	value any
	stack string
}

func (e *internalError) Error() string { return fmt.Sprintf("script: internal error: %v", e.value) }

// jsError is a JavaScript exception or interrupt raised outside the runtime's own frames (in a loop
// task), carried by panic to the loop's recover.
type jsError struct{ err error }

func newVM(e *Engine, ver *Version) (*vm, error) {
	rt := goja.New()
	rt.SetMaxCallStackSize(maxCallStack)
	m := &vm{rt: rt, e: e, ver: ver, loop: newLoop(), modules: map[string]*goja.Object{}, routes: map[string][]apiRoute{}, scripts: map[string]*goja.Object{},
		calls: map[*goja.Object]*apiCall{}, users: map[*goja.Object]*auth.Caller{}, keys: e.opt.Keys()}
	j := rt.Get("JSON").ToObject(rt)
	m.jsonParse, _ = goja.AssertFunction(j.Get("parse"))
	m.jsonStringify, _ = goja.AssertFunction(j.Get("stringify"))
	if err := m.installGlobals(); err != nil {
		return nil, err
	}
	return m, nil
}

// protect runs fn, turning a panic carrying a JavaScript error into an error.
func (m *vm) protect(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			switch x := r.(type) {
			case jsError:
				err = x.err
			case *goja.InterruptedError:
				err = x
			case *goja.Exception:
				err = x
			case goja.Value:
				err = fmt.Errorf("script: uncaught %s", x.String())
			default:
				// A bug on the Go side of a service: fail this invocation (the runtime is dropped), not
				// the process.
				err = &internalError{value: r, stack: string(debug.Stack())}
			}
		}
	}()
	fn()
	return nil
}

// mustCall calls a JavaScript function from a loop task; an exception aborts the task (and the
// invocation) through protect.
func (m *vm) mustCall(fn goja.Callable, this goja.Value, args ...goja.Value) goja.Value {
	if this == nil {
		this = goja.Undefined()
	}
	v, err := fn(this, args...)
	if err != nil {
		// A JavaScript exception propagates as itself, so that inside a native function it stays
		// catchable by the script; anything else travels as jsError to protect.
		var ex *goja.Exception
		if errors.As(err, &ex) {
			panic(ex)
		}
		panic(jsError{err})
	}
	return v
}

// later queues a call of fn (a JavaScript callback) with args produced when it runs.
func (m *vm) later(fn goja.Callable, args func() []goja.Value) {
	m.loop.enqueue(m.rt, func() { m.mustCall(fn, nil, args()...) })
}

// toJS turns a JSON-able Go value into plain JavaScript objects (through JSON, so scripts get
// ordinary objects and arrays they can change freely). Members become own data properties, as
// JSON.parse makes them: a "__proto__" member is a property named __proto__, never the prototype.
func (m *vm) toJS(v any) goja.Value {
	switch x := v.(type) {
	case nil:
		return goja.Null()
	case string:
		return m.rt.ToValue(x)
	case bool:
		return m.rt.ToValue(x)
	case float64:
		return m.rt.ToValue(x)
	case int64:
		return m.rt.ToValue(x)
	case int:
		return m.rt.ToValue(x)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return m.rt.ToValue(n)
		}
		f, _ := x.Float64()
		return m.rt.ToValue(f)
	case map[string]any:
		o := m.rt.NewObject()
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sortStrings(keys)
		for _, k := range keys {
			setOwn(o, k, m.toJS(x[k]))
		}
		return o
	case []any:
		items := make([]any, len(x))
		for i, e := range x {
			items[i] = m.toJS(e)
		}
		return m.rt.NewArray(items...)
	case []map[string]any:
		items := make([]any, len(x))
		for i, e := range x {
			items[i] = m.toJS(e)
		}
		return m.rt.NewArray(items...)
	case []string:
		items := make([]any, len(x))
		for i, e := range x {
			items[i] = e
		}
		return m.rt.NewArray(items...)
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(m.rt.NewGoError(err))
	}
	return m.parseJSON(string(b))
}

// setOwn gives o an own, writable, enumerable, configurable data property k, as JSON.parse and object
// literals with computed keys do. Object.Set would assign instead: for k == "__proto__" that runs
// Object.prototype's __proto__ setter and replaces o's prototype with a client's object.
func setOwn(o *goja.Object, k string, v goja.Value) {
	_ = o.DefineDataProperty(k, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
}

func (m *vm) parseJSON(s string) goja.Value {
	v, err := m.jsonParse(goja.Undefined(), m.rt.ToValue(s))
	if err != nil {
		panic(err)
	}
	return v
}

// fromJS serialises a JavaScript value to JSON (undefined → "", like JSON.stringify's undefined).
func (m *vm) stringify(v goja.Value) (string, error) {
	out, err := m.jsonStringify(goja.Undefined(), v)
	if err != nil {
		return "", err
	}
	if out == nil || goja.IsUndefined(out) {
		return "", nil
	}
	return out.String(), nil
}

// toGo turns a JavaScript value into JSON-decoded Go values (map[string]any, []any, json.Number...).
func (m *vm) toGo(v goja.Value) (any, error) {
	s, err := m.stringify(v)
	if err != nil || s == "" {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

func (m *vm) throwf(format string, args ...any) {
	panic(m.rt.NewGoError(fmt.Errorf(format, args...)))
}

func (m *vm) throwType(format string, args ...any) {
	panic(m.rt.NewTypeError(fmt.Sprintf(format, args...)))
}

// errorValue builds a JavaScript Error with a message (and optional properties).
func (m *vm) errorValue(msg string) *goja.Object {
	ctor := m.rt.Get("Error").ToObject(m.rt)
	o, err := m.rt.New(ctor, m.rt.ToValue(msg))
	if err != nil {
		panic(err)
	}
	return o
}

// ---- require ----------------------------------------------------------------------------------

// require resolves a module name from the module at from (an absolute path; "" for the app root).
func (m *vm) require(from, name string) goja.Value {
	if mod, ok := m.builtin(name); ok {
		return mod
	}
	path, err := m.ver.resolve(from, name)
	if err != nil {
		panic(m.errorValue(err.Error()))
	}
	if mod, ok := m.modules[path]; ok {
		return mod.Get("exports")
	}
	return m.load(path)
}

func (m *vm) load(path string) goja.Value {
	module := m.rt.NewObject()
	exports := m.rt.NewObject()
	_ = module.Set("exports", exports)
	_ = module.Set("id", path)
	_ = module.Set("filename", path)
	m.modules[path] = module
	if strings.HasSuffix(path, ".json") {
		b, err := m.ver.readFile(path)
		if err != nil {
			delete(m.modules, path)
			panic(m.errorValue(err.Error()))
		}
		_ = module.Set("exports", m.parseJSON(string(b)))
		return module.Get("exports")
	}
	prg, err := m.ver.program(path)
	if err != nil {
		delete(m.modules, path)
		panic(m.rt.NewGoError(err))
	}
	fn, err := m.rt.RunProgram(prg)
	if err != nil {
		delete(m.modules, path)
		panic(err)
	}
	call, ok := goja.AssertFunction(fn)
	if !ok {
		delete(m.modules, path)
		m.throwf("module %s did not compile to a function", m.ver.rel(path))
	}
	if _, err := call(exports, exports, m.requireFor(path), module, m.rt.ToValue(path), m.rt.ToValue(filepath.Dir(path))); err != nil {
		delete(m.modules, path)
		panic(err)
	}
	return module.Get("exports")
}

// requireFor is the require function handed to the module at path.
func (m *vm) requireFor(path string) goja.Value {
	return m.rt.ToValue(func(call goja.FunctionCall) goja.Value {
		name := call.Argument(0)
		if goja.IsUndefined(name) || name.ExportType() == nil || name.ExportType().Kind().String() != "string" {
			m.throwType("The \"id\" argument must be a string")
		}
		return m.require(path, name.String())
	})
}

// runScript evaluates a compiled table or job script (wrapped so that it returns its functions) and
// returns what the wrapper returned.
func (m *vm) runScript(path string) (*goja.Object, error) {
	if o, ok := m.scripts[path]; ok {
		return o, nil
	}
	o, err := m.evalScript(path)
	if err != nil {
		return nil, err
	}
	m.scripts[path] = o
	return o, nil
}

func (m *vm) evalScript(path string) (*goja.Object, error) {
	prg, err := m.ver.program(path)
	if err != nil {
		return nil, err
	}
	fn, err := m.rt.RunProgram(prg)
	if err != nil {
		return nil, err
	}
	call, ok := goja.AssertFunction(fn)
	if !ok {
		return nil, fmt.Errorf("script %s did not compile to a function", m.ver.rel(path))
	}
	module := m.rt.NewObject()
	exports := m.rt.NewObject()
	_ = module.Set("exports", exports)
	out, err := call(exports, exports, m.requireFor(path), module, m.rt.ToValue(path), m.rt.ToValue(filepath.Dir(path)))
	if err != nil {
		return nil, err
	}
	if o, ok := out.(*goja.Object); ok {
		return o, nil
	}
	return module.Get("exports").ToObject(m.rt), nil
}

// exportsOf loads a module (custom APIs) fresh from the module cache.
func (m *vm) exportsOf(path string) (goja.Value, error) {
	if mod, ok := m.modules[path]; ok {
		return mod.Get("exports"), nil
	}
	var out goja.Value
	err := m.protect(func() { out = m.load(path) }) // a file of the version, not a script's require
	return out, err
}

// ---- resolution (Node's algorithm, fenced to the app directory) -------------------------------

// msgError is an error whose text is shown to scripts or clients as is (the original's wording).
type msgError string

func (e msgError) Error() string { return string(e) }

// outsideError is a require of a path outside the app directory.
type outsideError struct{ name string }

func (e *outsideError) Error() string {
	return "Cannot find module '" + e.name + "' (outside the app directory)"
}

// checkModuleName refuses, before the filesystem is touched, module names that could leave the
// folder they are resolved from: absolute paths, backslashes, NUL and control characters, percent
// signs, empty segments, and "." or ".." anywhere but at the start of a relative name ("./x",
// "../../shared/x"). Bare names ("pkg", "pkg/sub", "@scope/pkg") may not contain them at all, so
// "x/../../../etc/pkg" never reaches a lookup.
func checkModuleName(name string) error {
	bad := msgError(fmt.Sprintf("Cannot find module '%s' (invalid module name)", name))
	if name == "" || len(name) > 1024 || strings.HasPrefix(name, "/") || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return bad
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || c == '\\' || c == '%' || c == utf8.RuneError {
			return bad
		}
	}
	relative := name == "." || name == ".." || strings.HasPrefix(name, "./") || strings.HasPrefix(name, "../")
	leading := relative // still in the leading "." / ".." run of a relative name
	for i, seg := range strings.Split(name, "/") {
		switch {
		case seg == "":
			return bad
		case seg == "." && leading && i == 0:
		case seg == ".." && leading:
		case seg == "." || seg == "..":
			return bad
		default:
			leading = false
		}
	}
	return nil
}

// resolve finds the file a require names. Relative names resolve against the requiring file; bare
// names look in node_modules folders from the requiring file's folder up to the app directory, then
// in shared/. The name is checked first (checkModuleName); every candidate must lie inside the app
// directory both as written and after symbolic links are resolved, and the real path is returned
// (as Node's module cache does).
func (v *Version) resolve(from, name string) (string, error) {
	if err := checkModuleName(name); err != nil {
		return "", err
	}
	base := v.root
	if from != "" {
		base = filepath.Dir(from)
	}
	notFound := msgError(fmt.Sprintf("Cannot find module '%s'", name))
	if name == "." || name == ".." || strings.HasPrefix(name, "./") || strings.HasPrefix(name, "../") {
		p := filepath.Join(base, filepath.FromSlash(name))
		if !v.inside(p) {
			return "", &outsideError{name: name}
		}
		if f, ok := v.resolveFile(p); ok {
			return f, nil
		}
		return "", notFound
	}
	for dir := base; v.inside(dir); dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "node_modules", filepath.FromSlash(name))
		if v.inside(p) {
			if f, ok := v.resolveFile(p); ok {
				return f, nil
			}
		}
		if dir == v.root {
			break
		}
	}
	// The original also looked under the scripts folder's shared/ for bare names.
	if p := filepath.Join(v.scripts, "shared", filepath.FromSlash(name)); v.inside(p) {
		if f, ok := v.resolveFile(p); ok {
			return f, nil
		}
	}
	return "", notFound
}

func (v *Version) inside(p string) bool {
	rel, err := filepath.Rel(v.root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// realInside is p with symbolic links resolved, if that lies inside the app directory.
func (v *Version) realInside(p string) (string, bool) {
	if !v.inside(p) {
		return "", false
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil || !v.inside(real) {
		return "", false
	}
	return real, true
}

// resolveFile applies Node's file and directory rules: p, p.js, p.json, p/package.json "main",
// p/index.js, p/index.json. Nothing is read or returned whose real path is outside the app directory
// (package.json included).
func (v *Version) resolveFile(p string) (string, bool) {
	file := func(f string) (string, bool) {
		if _, ok := v.overlay[f]; ok {
			return f, true // an edit (the folder may not have the file)
		}
		real, ok := v.realInside(f)
		if !ok {
			return "", false
		}
		st, err := os.Stat(real)
		if err != nil || st.IsDir() {
			return "", false
		}
		return real, true
	}
	for _, f := range []string{p, p + ".js", p + ".json"} {
		if real, ok := file(f); ok {
			return real, true
		}
	}
	if pj, ok := file(filepath.Join(p, "package.json")); ok {
		if b, err := v.readFile(pj); err == nil {
			var pkg struct {
				Main string `json:"main"`
			}
			if json.Unmarshal(b, &pkg) == nil && pkg.Main != "" {
				main := strings.TrimPrefix(pkg.Main, "./")
				if checkModuleName("./"+main) == nil && !strings.HasPrefix(main, "../") && main != ".." {
					m := filepath.Join(p, filepath.FromSlash(main))
					for _, f := range []string{m, m + ".js", m + ".json", filepath.Join(m, "index.js")} {
						if real, ok := file(f); ok {
							return real, true
						}
					}
				}
			}
		}
	}
	for _, f := range []string{filepath.Join(p, "index.js"), filepath.Join(p, "index.json")} {
		if real, ok := file(f); ok {
			return real, true
		}
	}
	return "", false
}
