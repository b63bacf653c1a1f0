// Package script runs a Mobile Services app's JavaScript unchanged (spec zumo-protocol.md §5): table
// scripts, custom APIs, shared modules and npm packages from the app's node_modules, scheduled jobs
// and the startup hook, on dop251/goja (a JavaScript engine in pure Go) with the subset of Node that
// classic scripts use.
//
// Isolation: each invocation runs on a runtime taken from a per-version pool, with a time budget
// enforced by interrupting the runtime, a bounded call stack, bounded Buffer/crypto allocations and a
// process-wide heap ceiling enforced by a watchdog (memory.go explains what is and is not bounded). A
// script that throws, loops or overruns fails its own request with a JSON 500 and never the process.
// Scripts have no filesystem, process or network access: require resolves only inside the app
// directory, process.env holds only the app settings and the app's MS_ keys.
//
// Hot reload: Reload builds a new Version (every script compiled up front), swaps it in atomically,
// and keeps the previous one serving when any script fails to compile.
//
// Edits: with Options.Overlay, the scripts an administrator edited (stored in the database by package
// scriptstore) are laid over the app folder's files: an edit replaces the deployed file of its path,
// or adds a script the folder does not have. Every instance loads the same edits; Follow reloads when
// they change.
package script

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/notify"
)

// Keys are the app keys scripts may see (mobileservice-config, process.env MS_*), read at each use
// so that key rotation reaches scripts.
type Keys struct {
	MasterKey      string
	ApplicationKey string
}

// Options configure an Engine.
type Options struct {
	// Timeout is each invocation's time budget (default 10s); the request's own deadline also applies.
	Timeout time.Duration
	// JobTimeout is a scheduled job's time budget (default 10m).
	JobTimeout time.Duration
	// MemoryLimit is the Go heap size (bytes) above which the watchdog stops the longest-running
	// invocation (default 1 GiB; see memory.go).
	MemoryLimit uint64
	// AllocLimit bounds what one invocation may allocate through Buffer and crypto (default 64 MiB).
	AllocLimit int64
	// PoolSize is how many idle runtimes each version keeps (default 64: a runtime costs far more to
	// build than to keep, and concurrent requests each hold one).
	PoolSize int
	// ServiceName is MS_MobileServiceName.
	ServiceName string
	// AppSettings are the app's own settings: process.env and mobileservice-config appSettings.
	AppSettings map[string]string
	// Keys returns the current keys (nil: empty keys).
	Keys func() Keys
	// HTTPAllow lists the hosts require('request') may call ("api.example.com", "*.example.com"),
	// and the addresses or CIDR ranges it may reach although they are not public ("10.0.0.5",
	// "10.1.0.0/16"); empty: no outbound HTTP. See request.go.
	HTTPAllow []string
	// HTTPClient is the base client for outbound HTTP (default: 30 s timeout). Its transport, if
	// set, must be an *http.Transport: a copy gets the address-checking dialer.
	HTTPClient *http.Client
	// LookupIP resolves host names for outbound HTTP (nil: the system resolver).
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
	// Tables serves tables.getTable (nil: every table call fails).
	Tables Tables
	// SQL serves mssql (nil: mssql calls fail with "mssql is not configured").
	SQL SQL
	// Push serves the push object (nil, or no platform configured: every push call fails with "push
	// is not configured", as before; see push.go).
	Push Push
	// Identities serves user.getIdentities from the users directory (nil: the token's own
	// credentials only, as the original without its users feature).
	Identities Identities
	Log        *slog.Logger
	// Observe, when set, is told about every finished invocation: the script (relative path such as
	// table/todo.insert.js, api/x.js, scheduler/job.js), its duration and its error (ErrTimeout and
	// ErrMemory for interrupts). Metrics hang here.
	Observe func(script string, d time.Duration, err error)
	// Overlay, when set, holds script edits laid over the app folder's files (package scriptstore).
	Overlay Overlay
}

// Overlay is the script edits stored in the database (scriptstore.SQL implements it).
type Overlay interface {
	// Revision changes whenever any edit changes (a cheap query: it is polled).
	Revision(ctx context.Context) (int64, error)
	// Sources returns the edits in force by path relative to the scripts folder ("api/x.js"), and the
	// revision they reflect.
	Sources(ctx context.Context) (int64, map[string]string, error)
}

// overlayTimeout bounds reading the edits when New has no context of its own.
const overlayTimeout = 30 * time.Second

// Engine owns the current app version and runs scripts.
type Engine struct {
	opt     Options
	dir     string
	cur     atomic.Pointer[Version]
	prelude *goja.Program
	reload  sync.Mutex

	out    *outbound
	client *http.Client

	runMu    sync.Mutex
	running  map[*invocation]struct{}
	watching bool // the memory watchdog goroutine runs
}

// Version is one snapshot of the app directory: its metadata and compiled scripts.
type Version struct {
	App     *appdir.App
	root    string // absolute app directory: the require fence
	scripts string // absolute scripts directory
	print   string // fingerprint of the files
	edits   int64  // the overlay's revision (0 without one)
	// overlay holds the edits' sources by absolute path; they win over the folder's files.
	overlay map[string][]byte

	// tableScripts maps "<lower table>.<op>" to the script file.
	tableScripts map[string]string

	mu    sync.Mutex
	progs map[string]*goja.Program // compiled files by absolute path
	pool  chan *vm
}

// New loads the app directory (with the overlay's edits) and compiles every script. A syntax error is
// an error here (start-up fails with the file and line); after start, Reload keeps the previous version
// instead. Reading the edits is bounded by 30 seconds.
func New(dir string, opt Options) (*Engine, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.JobTimeout <= 0 {
		opt.JobTimeout = 10 * time.Minute
	}
	if opt.MemoryLimit == 0 {
		opt.MemoryLimit = 1 << 30
	}
	if opt.AllocLimit <= 0 {
		opt.AllocLimit = 64 << 20
	}
	if opt.PoolSize <= 0 {
		opt.PoolSize = 64
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Keys == nil {
		opt.Keys = func() Keys { return Keys{} }
	}
	prelude, err := goja.Compile("gatehouse:prelude", preludeJS, true)
	if err != nil {
		return nil, fmt.Errorf("script: prelude: %w", err)
	}
	e := &Engine{opt: opt, dir: dir, prelude: prelude, running: map[*invocation]struct{}{}}
	if e.out, err = newOutbound(opt.HTTPAllow, opt.LookupIP); err != nil {
		return nil, err
	}
	if e.client, err = newHTTPClient(opt.HTTPClient, e.out); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), overlayTimeout)
	defer cancel()
	v, err := e.load(ctx)
	if err != nil {
		return nil, err
	}
	e.cur.Store(v)
	return e, nil
}

// Current is the version serving now.
func (e *Engine) Current() *Version { return e.cur.Load() }

// App is the current version's app metadata.
func (e *Engine) App() *appdir.App { return e.cur.Load().App }

// Reload re-reads the app directory and the overlay's edits when either changed (the files' names,
// sizes and times; the edits' revision). On any error (malformed metadata, a script that does not
// compile, the edits unreadable) the previous version keeps serving and the error is returned (and
// logged with file and line). It reports whether a new version was swapped in.
func (e *Engine) Reload(ctx context.Context) (bool, error) {
	return e.reload1(ctx, true)
}

// reload1 reloads when the edits' revision changed, or (folder) the folder's files did.
func (e *Engine) reload1(ctx context.Context, folder bool) (bool, error) {
	e.reload.Lock()
	defer e.reload.Unlock()
	old := e.cur.Load()
	rev, err := e.editsRevision(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.opt.Log.Error("reading the script edits failed; the previous version keeps serving", "err", err)
		}
		return false, err
	}
	if old != nil && rev == old.edits {
		if !folder {
			return false, nil
		}
		if p, err := fingerprint(e.dir); err == nil && p == old.print {
			return false, nil
		}
	}
	v, err := e.load(ctx)
	if err != nil {
		e.opt.Log.Error("app directory reload failed; the previous version keeps serving", "err", err)
		return false, err
	}
	e.cur.Store(v)
	e.opt.Log.Info("app directory reloaded", "dir", e.dir, "scripts", len(v.progs), "edits", len(v.overlay), "edits_revision", v.edits)
	return true, nil
}

func (e *Engine) editsRevision(ctx context.Context) (int64, error) {
	if e.opt.Overlay == nil {
		return 0, nil
	}
	rev, err := e.opt.Overlay.Revision(ctx)
	if err != nil {
		return 0, fmt.Errorf("script: reading the script edits: %w", err)
	}
	return rev, nil
}

// Watch polls the app directory (and the edits) every interval and reloads on change, until ctx ends.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.Reload(ctx) //nolint:errcheck // logged by Reload
		}
	}
}

// Follow keeps this instance on the overlay's edits, until ctx ends: it reloads at once when another
// instance (or the CLI) announces a change on notify.Scripts (n may be nil), and when a poll of the
// edits' revision every interval sees one (the fallback for a lost notification). The app folder is
// left to Watch.
func (e *Engine) Follow(ctx context.Context, n notify.Notifier, interval time.Duration) {
	if e.opt.Overlay == nil {
		return
	}
	notify.Follow(ctx, n, notify.Scripts, interval, func(ctx context.Context) {
		e.reload1(ctx, false) //nolint:errcheck // logged by reload1
	})
}

// EditsRevision is the revision of the overlay's edits the serving version holds (0 without any).
func (v *Version) EditsRevision() int64 { return v.edits }

// Edited reports whether the serving version's script rel (relative to the scripts folder, e.g.
// "api/x.js") comes from an edit rather than the app folder.
func (v *Version) Edited(rel string) bool {
	_, ok := v.overlay[filepath.Join(v.scripts, filepath.FromSlash(rel))]
	return ok
}

// overlayPath accepts an edit's path: a .js file below table/, api/, scheduler/ or shared/, clean,
// relative, with no hidden or node_modules segment (package scriptstore validates the same on save).
func overlayPath(rel string) bool {
	if !strings.HasSuffix(rel, ".js") || path.Clean(rel) != rel || strings.Contains(rel, "\\") {
		return false
	}
	segs := strings.Split(rel, "/")
	if len(segs) < 2 {
		return false
	}
	switch segs[0] {
	case "table", "api", "scheduler", "shared":
	default:
		return false
	}
	for _, s := range segs {
		if s == "" || s == ".." || strings.HasPrefix(s, ".") || s == "node_modules" {
			return false
		}
	}
	return true
}

func (e *Engine) load(ctx context.Context) (*Version, error) {
	var rev int64
	var edits map[string]string
	if e.opt.Overlay != nil {
		var err error
		if rev, edits, err = e.opt.Overlay.Sources(ctx); err != nil {
			return nil, fmt.Errorf("script: reading the script edits: %w", err)
		}
	}
	app, err := appdir.Load(e.dir)
	if err != nil {
		return nil, err
	}
	root, scripts, err := appPaths(app)
	if err != nil {
		return nil, err
	}
	print, err := fingerprint(e.dir)
	if err != nil {
		return nil, err
	}
	v := &Version{App: app, root: root, scripts: scripts, print: print, edits: rev, overlay: map[string][]byte{},
		progs: map[string]*goja.Program{}, pool: make(chan *vm, e.opt.PoolSize), tableScripts: map[string]string{}}
	for rel, src := range edits {
		if !overlayPath(rel) {
			e.opt.Log.Warn("ignoring a script edit with an invalid path", "path", rel)
			continue
		}
		v.overlay[filepath.Join(scripts, filepath.FromSlash(rel))] = []byte(src)
		app.DeclareScript(rel)
	}
	var errs []error
	seen := map[string]bool{}
	err = filepath.WalkDir(scripts, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && p != scripts {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".js") {
			return nil
		}
		seen[p] = true
		if err := v.add(p); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("script: reading %s: %w", scripts, err)
	}
	// Edits of scripts the folder does not have.
	for p := range v.overlay {
		if !seen[p] {
			if err := v.add(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return v, nil
}

// appPaths are the app's absolute folder (the require fence) and scripts folder, links resolved.
func appPaths(app *appdir.App) (root, scripts string, err error) {
	if root, err = filepath.Abs(app.Dir); err != nil {
		return "", "", err
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	if scripts, err = filepath.Abs(app.ScriptsDir); err != nil {
		return "", "", err
	}
	if r, err := filepath.EvalSymlinks(scripts); err == nil {
		scripts = r
	}
	return root, scripts, nil
}

// add compiles the script file p and registers it when it is a table operation's.
func (v *Version) add(p string) error {
	if _, err := v.compile(p); err != nil {
		return err
	}
	if k, _ := v.kind(p); k == "table" {
		base := strings.TrimSuffix(filepath.Base(p), ".js")
		if t, op, ok := strings.Cut(base, "."); ok {
			switch op {
			case "read", "insert", "update", "delete":
				v.tableScripts[strings.ToLower(t)+"."+op] = p
			}
		}
	}
	return nil
}

// fingerprint summarises the app directory's files (names, sizes, modification times).
func fingerprint(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != dir {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// maxScript bounds a script file.
const maxScript = 4 << 20

func (v *Version) rel(p string) string {
	if r, err := filepath.Rel(v.root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

func (v *Version) readFile(p string) ([]byte, error) {
	if b, ok := v.overlay[p]; ok {
		return b, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, msgError(fmt.Sprintf("Cannot find module '%s'", v.rel(p)))
	}
	if st.Size() > maxScript {
		return nil, fmt.Errorf("%s is larger than %d MiB", v.rel(p), maxScript>>20)
	}
	return os.ReadFile(p)
}

// kind is how a file is wrapped: table and job scripts declare functions that the wrapper returns;
// everything else is a CommonJS module.
func (v *Version) kind(p string) (string, string) {
	rel, err := filepath.Rel(v.scripts, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "module", ""
	}
	rel = filepath.ToSlash(rel)
	dir, file := filepath.Split(rel)
	switch dir {
	case "table/":
		return "table", ""
	case "scheduler/":
		name := strings.TrimSuffix(file, ".js")
		if appdir.ValidName(name) {
			return "job", name
		}
	}
	return "module", ""
}

const moduleHead = "(function (exports, require, module, __filename, __dirname) {"

func (v *Version) compile(p string) (*goja.Program, error) {
	b, err := v.readFile(p)
	if err != nil {
		return nil, err
	}
	prg, err := v.compileSource(p, b)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.progs[p] = prg
	v.mu.Unlock()
	return prg, nil
}

// compileSource compiles a script's text as the file p (its kind decides the wrapper).
func (v *Version) compileSource(p string, b []byte) (*goja.Program, error) {
	src := strings.TrimPrefix(string(b), "\ufeff")
	if strings.HasPrefix(src, "#!") {
		src = "//" + src
	}
	kind, job := v.kind(p)
	var tail string
	switch kind {
	case "table":
		tail = "\n;return {read: typeof read === 'function' ? read : undefined, insert: typeof insert === 'function' ? insert : undefined, " +
			"update: typeof update === 'function' ? update : undefined, del: typeof del === 'function' ? del : undefined};\n})"
	case "job":
		tail = "\n;return {job: typeof " + job + " === 'function' ? " + job + " : undefined};\n})"
	default:
		tail = "\n})"
	}
	prg, err := goja.Compile(v.rel(p), moduleHead+src+tail, false)
	if err != nil {
		// Node accepted sloppy-mode decimals with a leading zero (Date.UTC(2012, 08, 1)); goja does
		// not. Retry once with them rewritten in place; a real syntax error still fails loudly,
		// with the position in the author's text.
		if fixed, ok := decimalLeadingZeros(src); ok {
			// The rewrite keeps every position, so its error (if any) names the real mistake
			// rather than the accepted legacy literal.
			prg, err = goja.Compile(v.rel(p), moduleHead+fixed+tail, false)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", v.rel(p), err)
	}
	return prg, nil
}

// program returns the compiled file (compiling files outside the scripts folder, e.g. node_modules,
// on first use; they are cached for the version's life).
func (v *Version) program(p string) (*goja.Program, error) {
	v.mu.Lock()
	prg, ok := v.progs[p]
	v.mu.Unlock()
	if ok {
		return prg, nil
	}
	return v.compile(p)
}

// ScriptPath is the absolute path of a script in the scripts folder (e.g. "api", "login.js"), and
// whether the version has it.
func (v *Version) ScriptPath(parts ...string) (string, bool) {
	p := filepath.Join(append([]string{v.scripts}, parts...)...)
	v.mu.Lock()
	_, ok := v.progs[p]
	v.mu.Unlock()
	return p, ok
}

// TableScript is the script file of a table operation, if any.
func (v *Version) TableScript(table, op string) (string, bool) {
	p, ok := v.tableScripts[strings.ToLower(table)+"."+op]
	return p, ok
}

// Identities looks up a user's provider identities in the original's getIdentities shape
// ({ google: { userId, accessToken, ... } }); an empty map when the user has none.
type Identities interface {
	ScriptIdentities(ctx context.Context, userID string) (map[string]any, error)
}

// SetIdentities connects user.getIdentities to the users directory (call before serving).
func (e *Engine) SetIdentities(i Identities) { e.opt.Identities = i }

// SetPush connects the push object (call before serving: runtimes read the configured platforms
// when they are built).
func (e *Engine) SetPush(p Push) { e.opt.Push = p }

// SetServices connects tables.getTable and mssql (call before serving).
func (e *Engine) SetServices(t Tables, s SQL) {
	e.opt.Tables, e.opt.SQL = t, s
}

// ---- runtime pool and invocations -------------------------------------------------------------

// get takes a pooled runtime of v, or builds one. Runtimes built under other keys are dropped: module
// code that read a key at load time would otherwise keep a retired key (and mint tokens that fail
// once it is revoked).
func (e *Engine) get(v *Version) (*vm, error) {
	keys := e.opt.Keys()
	for {
		select {
		case m := <-v.pool:
			if m.keys == keys {
				return m, nil
			}
		default:
			return newVM(e, v)
		}
	}
}

func (e *Engine) put(m *vm) {
	m.loop.reset()
	m.inv = nil
	clear(m.calls)
	clear(m.users)
	select {
	case m.ver.pool <- m:
	default:
	}
}

// run executes one invocation on a pooled runtime of version v: start runs first (it typically
// calls the script's function), then the event loop until done reports the work answered, nothing
// is left to run, or the budget ends. A runtime that was interrupted is discarded, never reused.
func (e *Engine) run(ctx context.Context, v *Version, script string, start func(*vm) error, done func() bool) error {
	return e.runFor(ctx, e.opt.Timeout, v, script, start, done)
}

func (e *Engine) runFor(ctx context.Context, budget time.Duration, v *Version, script string, start func(*vm) error, done func() bool) error {
	m, err := e.get(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	inv := &invocation{ctx: ctx, log: e.opt.Log.With("script", script), script: script, started: time.Now(), vm: m}
	m.inv = inv
	m.rt.ClearInterrupt()
	e.track(inv, true)
	stop := context.AfterFunc(ctx, func() { m.rt.Interrupt(ErrTimeout) })
	err = m.protect(func() {
		if err := start(m); err != nil {
			panic(jsError{err})
		}
	})
	if err == nil {
		err = m.loop.run(ctx, done, m.protect)
	}
	fired := !stop()
	e.track(inv, false)
	if e.opt.Observe != nil {
		defer func() { e.opt.Observe(script, time.Since(inv.started), err) }()
	}
	if inv.memory.Load() {
		err = ErrMemory
	} else if err != nil {
		var ie *goja.InterruptedError
		if errors.As(err, &ie) || errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() != nil {
				err = ErrTimeout
			}
		}
	}
	if fired || inv.memory.Load() || isInterrupt(err) {
		return err // the runtime may hold a half-run module: drop it
	}
	e.put(m)
	return err
}

func isInterrupt(err error) bool {
	var ie *goja.InterruptedError
	var ge *internalError
	return errors.As(err, &ie) || errors.As(err, &ge) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrMemory)
}

func (e *Engine) track(inv *invocation, on bool) {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	if on {
		e.running[inv] = struct{}{}
		if !e.watching {
			e.watching = true
			go e.watch()
		}
	} else {
		delete(e.running, inv)
	}
}

// Describe renders an invocation error for logs: the exception with its script position.
func Describe(err error) (msg string, where string) {
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		where = ""
		for _, f := range so.Stack() {
			if n := f.SrcName(); n != "" && !strings.HasPrefix(n, "<") && !strings.HasPrefix(n, "gatehouse:") {
				where = framePos(f)
				break
			}
		}
		return "RangeError: Maximum call stack size exceeded", where
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		where = ""
		if st := ex.Stack(); len(st) > 0 {
			for _, f := range st {
				if n := f.SrcName(); n != "" && !strings.HasPrefix(n, "<") && !strings.HasPrefix(n, "gatehouse:") {
					where = framePos(f)
					break
				}
			}
		}
		if v := ex.Value(); v != nil {
			return v.String(), where
		}
		return ex.Error(), where
	}
	return err.Error(), ""
}

// framePos is "file:line:column" of a stack frame; columns on line 1 are corrected for the CommonJS
// wrapper that shares the first line.
func framePos(f goja.StackFrame) string {
	pos := f.Position()
	col := pos.Column
	if pos.Line == 1 && col > len(moduleHead) {
		col -= len(moduleHead)
	}
	return fmt.Sprintf("%s:%d:%d", f.SrcName(), pos.Line, col)
}
