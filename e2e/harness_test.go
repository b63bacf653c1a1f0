package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables the harness reads (README.md lists them).
const (
	envCI       = "CI"                  // set: missing tools fail the tests instead of skipping them
	envChromium = "GATEHOUSE_CHROMIUM"  // Chromium executable (default /usr/bin/chromium)
	envBinary   = "GATEHOUSE_E2E_BIN"   // a gatehouse binary to test instead of building ./cmd/gatehouse
	envNode     = "GATEHOUSE_E2E_NODE"  // node executable (default: node on PATH)
	envRunLimit = "GATEHOUSE_E2E_LIMIT" // time limit for one node/browser run (Go duration, default 90s)

	defaultChromium = "/usr/bin/chromium"
	// originSuffix names extra origins on loopback: browser.mjs maps *.gatehouse.test to 127.0.0.1,
	// so http://other.gatehouse.test:PORT is the same server as http://127.0.0.1:PORT under another
	// origin (for CORS tests).
	originSuffix = ".gatehouse.test"
	bundlePath   = "/azure-mobile-apps-client.js"
)

// suite is what the tests of one `go test` run share: the checkout, and the gatehouse binary and the
// SDK bundle, each built once, on first use, into a directory removed when the run ends.
type suite struct {
	root string // repository root
	dir  string // this package's directory (e2e/)
	tmp  string

	binOnce sync.Once
	bin     string
	binErr  error

	bundleOnce sync.Once
	bundle     string
	bundleErr  error

	// turn is held by the test that has the machine (alone): the tests start servers, browsers and
	// clusters whose timing assertions assume they are not sharing two cores with another such test.
	turn sync.Mutex
}

// alone runs t after the other tests that called alone, one at a time, but beside a test that called
// beside. Every test calls one of the two as its first statement.
func alone(t *testing.T) {
	t.Parallel()
	shared.turn.Lock()
	t.Cleanup(shared.turn.Unlock) // registered first, so it runs after the test's own cleanups
}

// beside runs t while the others take their turns: for a test that spends most of its time waiting
// (schedule slots, leases) rather than working, so that its waits do not add to the run's length.
func beside(t *testing.T) { t.Parallel() }

// shared is set once by TestMain before any test runs and only read afterwards.
var shared *suite

func TestMain(m *testing.M) {
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	root := filepath.Dir(dir)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: repository root not found beside", dir, ":", err)
		os.Exit(1)
	}
	tmp, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	shared = &suite{root: root, dir: dir, tmp: tmp}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// needTools is the one place that decides what happens when the e2e tests cannot run: it checks
// for node, the npm packages in e2e/node_modules and, when browser is true, Chromium. Anything
// missing skips the test with the way to install it, or fails it when CI is set, so that CI never
// passes without running the end-to-end tests.
func needTools(t testing.TB, browser bool) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath(nodeBinary()); err != nil {
		missing = append(missing, "node ("+err.Error()+"; apt-get install nodejs)")
	}
	for _, pkg := range []string{"azure-mobile-apps-client", "playwright-core", "browserify", "oidc-provider"} {
		if _, err := os.Stat(filepath.Join(shared.dir, "node_modules", pkg, "package.json")); err != nil {
			missing = append(missing, "npm package "+pkg+" (run: npm ci --prefix e2e)")
		}
	}
	if browser {
		exe := chromiumBinary()
		if st, err := os.Stat(exe); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, "Chromium at "+exe+" (apt-get install chromium, or set "+envChromium+")")
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "end-to-end test needs: " + strings.Join(missing, "; ")
	if os.Getenv(envCI) != "" {
		t.Fatalf("%s (CI is set: failing instead of skipping)", msg)
	}
	t.Skip(msg)
}

func nodeBinary() string {
	if v := os.Getenv(envNode); v != "" {
		return v
	}
	return "node"
}

func chromiumBinary() string {
	if v := os.Getenv(envChromium); v != "" {
		return v
	}
	return defaultChromium
}

func runLimit(t testing.TB) time.Duration {
	if v := os.Getenv(envRunLimit); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive Go duration", envRunLimit, v)
		}
		return d
	}
	return 90 * time.Second
}

// gatehouseBinary returns the binary under test, building ./cmd/gatehouse once per run (without
// -race: the race detector covers the test process, not the server).
func gatehouseBinary(t testing.TB) string {
	t.Helper()
	s := shared
	s.binOnce.Do(func() {
		if v := os.Getenv(envBinary); v != "" {
			s.bin, s.binErr = filepath.Abs(v)
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			s.binErr = fmt.Errorf("go toolchain not on PATH: %w", err)
			return
		}
		out := filepath.Join(s.tmp, "gatehouse")
		// The release build's flags (Dockerfile): the tests run what ships, and cmd/gatehouse's
		// TestDocs and TestDockerfile build with the same flags, so the three share one compile.
		cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, "./cmd/gatehouse")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Dir = s.root
		if b, err := cmd.CombinedOutput(); err != nil {
			s.binErr = fmt.Errorf("go build ./cmd/gatehouse: %w\n%s", err, b)
			return
		}
		s.bin = out
	})
	if s.binErr != nil {
		t.Fatal(s.binErr)
	}
	return s.bin
}

// sdkBundle returns the browser bundle of azure-mobile-apps-client (global WindowsAzure), built once
// per run by js/bundle.mjs: the npm package ships only its CommonJS sources.
func sdkBundle(t testing.TB) string {
	t.Helper()
	needTools(t, false)
	s := shared
	s.bundleOnce.Do(func() {
		out := filepath.Join(s.tmp, "azure-mobile-apps-client.js")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, nodeBinary(), filepath.Join("js", "bundle.mjs"), out)
		cmd.Dir = s.dir
		if b, err := cmd.CombinedOutput(); err != nil {
			s.bundleErr = fmt.Errorf("node js/bundle.mjs: %w\n%s", err, b)
			return
		}
		s.bundle = out
	})
	if s.bundleErr != nil {
		t.Fatal(s.bundleErr)
	}
	return s.bundle
}

// syncBuffer is a bytes.Buffer safe for a process's output goroutines and the test together; it
// signals each write on changed so a reader can wait for a line without polling.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// GatehouseOptions configure one gatehouse process.
type GatehouseOptions struct {
	App  string            // --app directory; empty for none
	Env  map[string]string // extra environment, e.g. MS_CrossDomainWhitelist; may override the keys
	Args []string          // extra flags after `serve`
}

// Gatehouse is a running gatehouse binary on 127.0.0.1 with a data directory of its own and keys
// the test knows.
type Gatehouse struct {
	URL            string // base URL, http://127.0.0.1:PORT
	DataDir        string
	MasterKey      string
	ApplicationKey string
	SystemKey      string

	bin     string
	env     []string
	cmd     *exec.Cmd
	stdout  *syncBuffer
	stderr  *syncBuffer
	exited  chan struct{} // closed when the process has exited; waitErr is set before
	waitErr error
	stopped bool
}

func randomKey(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startGatehouse builds (once) and starts gatehouse on a free loopback port, waits until /status
// answers 200, and stops it with SIGTERM when the test ends, failing the test unless it exits 0.
// Its stderr (the JSON access log) is written to the test log if the test failed.
func startGatehouse(t *testing.T, opts GatehouseOptions) *Gatehouse {
	t.Helper()
	bin := gatehouseBinary(t)
	g := &Gatehouse{
		DataDir:        filepath.Join(t.TempDir(), "data"),
		MasterKey:      randomKey(t),
		ApplicationKey: randomKey(t),
		SystemKey:      randomKey(t),
		bin:            bin,
		stdout:         newSyncBuffer(),
		stderr:         newSyncBuffer(),
		exited:         make(chan struct{}),
	}
	env := map[string]string{
		"MS_MasterKey":               g.MasterKey,
		"MS_ApplicationKey":          g.ApplicationKey,
		"MS_ApplicationSystemKey":    g.SystemKey,
		"GATEHOUSE_SHUTDOWN_TIMEOUT": "10s",
		"GATEHOUSE_LOG_LEVEL":        "debug",
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	g.MasterKey, g.ApplicationKey, g.SystemKey = env["MS_MasterKey"], env["MS_ApplicationKey"], env["MS_ApplicationSystemKey"]
	g.env = cleanEnv(env)

	args := []string{"serve", "--listen", "127.0.0.1:0", "--data", g.DataDir}
	if opts.App != "" {
		args = append(args, "--app", opts.App)
	}
	args = append(args, opts.Args...)
	g.cmd = exec.Command(bin, args...)
	g.cmd.Env = g.env
	g.cmd.Stdout = g.stdout
	g.cmd.Stderr = g.stderr
	g.cmd.WaitDelay = 5 * time.Second
	ownGroup(g.cmd)
	g.cmd.Cancel = nil // gatehouse is stopped by Stop, never by a context
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start gatehouse: %v", err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		g.Stop(t)
		if t.Failed() {
			t.Logf("gatehouse %s stdout:\n%s\ngatehouse stderr:\n%s", g.URL, g.stdout.String(), g.stderr.String())
		}
	})

	listening := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for g.URL == "" {
		if m := listening.FindStringSubmatch(g.stdout.String()); m != nil {
			g.URL = m[1]
			break
		}
		select {
		case <-g.stdout.changed:
		case <-g.exited:
			t.Fatalf("gatehouse exited before listening (%v):\n%s", g.waitErr, g.stderr.String())
		case <-deadline.C:
			t.Fatalf("gatehouse did not print its address within 30s:\n%s", g.stderr.String())
		}
	}
	if code, body := g.get(t, "/status", nil); code != http.StatusOK {
		t.Fatalf("GET /status: %d %s", code, body)
	}
	return g
}

// cleanEnv is this process's environment without Gatehouse's own settings (so a developer's shell
// cannot change what a test sees), plus env.
func cleanEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GATEHOUSE_") || strings.HasPrefix(k, "MS_") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// Stop sends SIGTERM and waits for a clean exit; the test fails if the server had already died, does
// not exit within 30 s, or exits non-zero. Calling it again does nothing.
func (g *Gatehouse) Stop(t testing.TB) {
	t.Helper()
	if g.stopped {
		return
	}
	g.stopped = true
	select {
	case <-g.exited:
		t.Errorf("gatehouse had exited before the test stopped it: %v", g.waitErr)
		return
	default:
	}
	if err := terminate(g.cmd); err != nil {
		t.Errorf("SIGTERM gatehouse: %v", err)
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-g.exited:
		if g.waitErr != nil {
			t.Errorf("gatehouse did not exit cleanly after SIGTERM: %v", g.waitErr)
		}
	case <-timer.C:
		_ = g.cmd.Process.Kill()
		<-g.exited
		t.Errorf("gatehouse did not exit within 30s of SIGTERM")
	}
}

// Stderr is what the server has logged so far.
func (g *Gatehouse) Stderr() string { return g.stderr.String() }

// MintToken runs `gatehouse token mint` against this server's data directory and keys.
func (g *Gatehouse) MintToken(t testing.TB, user string, extra ...string) string {
	t.Helper()
	args := append([]string{"token", "mint", "--data", g.DataDir, "--user", user}, extra...)
	cmd := exec.Command(g.bin, args...)
	cmd.Env = g.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gatehouse token mint: %v\n%s", err, stderr.String())
	}
	tok := strings.TrimSpace(stdout.String())
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("gatehouse token mint printed %q, not a token", tok)
	}
	return tok
}

// get is a plain Go request to the server, for checks beside the SDK's.
func (g *Gatehouse) get(t testing.TB, path string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 15 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return res.StatusCode, string(b)
}

// runNodeAtLeast runs `node js/SCRIPT ARGS...` in e2e/ with env added to the environment, bounded by
// GATEHOUSE_E2E_LIMIT, and decodes the last line of its stdout as JSON into out (when out is not
// nil). It returns the exit code; it fails the test if node cannot start, runs out of time, or
// prints no JSON. Its stderr goes to the test log if the test fails.
// The limit is at least least: the long scenarios (the console walks every page) take longer than
// the default on a loaded 2-core machine.
func runNodeAtLeast(t testing.TB, least time.Duration, env map[string]string, out any, script string, args ...string) int {
	t.Helper()
	needTools(t, false)
	limit := max(runLimit(t), least)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBinary(), append([]string{filepath.Join("js", script)}, args...)...)
	cmd.Dir = shared.dir
	e := map[string]string{"GATEHOUSE_E2E_TIMEOUT_MS": fmt.Sprint((limit - 10*time.Second).Milliseconds())}
	if limit <= 20*time.Second {
		e["GATEHOUSE_E2E_TIMEOUT_MS"] = fmt.Sprint(limit.Milliseconds() / 2)
	}
	for k, v := range env {
		e[k] = v
	}
	cmd.Env = envWith(e)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ownGroup(cmd)
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	t.Cleanup(func() {
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("node js/%s stderr:\n%s", script, stderr.String())
		}
	})
	if ctx.Err() != nil {
		t.Fatalf("node js/%s: no result within %v (%s)\nstdout:\n%s\nstderr:\n%s", script, limit, envRunLimit, stdout.String(), stderr.String())
	}
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("node js/%s: %v", script, err)
	}
	if out != nil {
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		last := lines[len(lines)-1]
		if err := json.Unmarshal([]byte(last), out); err != nil {
			t.Fatalf("node js/%s (exit %d) printed no JSON result: %v\nstdout:\n%s\nstderr:\n%s", script, code, err, stdout.String(), stderr.String())
		}
	}
	return code
}

// envWith is this process's environment plus env.
func envWith(env map[string]string) []string {
	out := os.Environ()
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// BrowserRun is what js/browser.mjs prints.
type BrowserRun struct {
	OK         bool             `json:"ok"`
	Result     json.RawMessage  `json:"result"`
	Error      string           `json:"error"`
	Requests   []BrowserRequest `json:"requests"`
	Console    []string         `json:"console"`
	PageErrors []string         `json:"pageErrors"`
}

// BrowserRequest is one request the pages made, with the headers Chromium really sent.
type BrowserRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"` // lower-case names
	Status  int               `json:"status"`  // 0 when the request failed
	Failure string            `json:"failure"` // Chromium's error text for a failed request
}

// requestsTo returns the recorded requests whose URL starts with prefix.
func (r *BrowserRun) requestsTo(prefix string) []BrowserRequest {
	var out []BrowserRequest
	for _, q := range r.Requests {
		if strings.HasPrefix(q.URL, prefix) {
			out = append(out, q)
		}
	}
	return out
}

// runBrowser opens pageURL in headless Chromium and runs js/scenarios/SCENARIO.mjs there with args
// (any JSON value); the scenario's result is decoded into result. The test fails if the scenario
// throws or the page reports an uncaught error.
// scenarioLimit is the least time limit of a scenario: the console walks every page (with an
// accessibility check on each) and takes 60-100 s on a loaded 2-core machine.
func scenarioLimit(scenario string) time.Duration {
	if scenario == "console" {
		return 240 * time.Second
	}
	return 0
}

func runBrowser(t testing.TB, scenario, pageURL, gatehouseURL string, args, result any) *BrowserRun {
	t.Helper()
	needTools(t, true)
	a, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	var run BrowserRun
	code := runNodeAtLeast(t, scenarioLimit(scenario), map[string]string{
		"GATEHOUSE_PAGE_URL": pageURL,
		"GATEHOUSE_URL":      gatehouseURL,
		"GATEHOUSE_ARGS":     string(a),
		"GATEHOUSE_CHROMIUM": chromiumBinary(),
	}, &run, "browser.mjs", scenario)
	if code != 0 || !run.OK {
		t.Fatalf("browser scenario %s (exit %d): %s\nconsole: %q\npage errors: %q", scenario, code, run.Error, run.Console, run.PageErrors)
	}
	if len(run.PageErrors) > 0 {
		t.Fatalf("browser scenario %s: uncaught page errors: %q", scenario, run.PageErrors)
	}
	if result != nil {
		if err := json.Unmarshal(run.Result, result); err != nil {
			t.Fatalf("browser scenario %s result %s: %v", scenario, run.Result, err)
		}
	}
	return &run
}

// Page is a static site on its own loopback port — another origin than Gatehouse's — serving the
// SDK's browser bundle at /azure-mobile-apps-client.js, an index page that loads it, and any extra
// files a test gives.
type Page struct {
	srv  *httptest.Server
	port string
}

// servePage starts the static site; files maps paths ("/done.html") to contents. It is closed when
// the test ends.
func servePage(t testing.TB, files map[string]string) *Page {
	t.Helper()
	bundle := sdkBundle(t)
	index := `<!doctype html>
<html><head><meta charset="utf-8"><title>gatehouse e2e</title>
<script src="` + bundlePath + `"></script></head>
<body><p>Gatehouse end-to-end page</p></body></html>
`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, index)
	})
	mux.HandleFunc("GET "+bundlePath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, bundle)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	for p, content := range files {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, p, time.Time{}, strings.NewReader(content))
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return &Page{srv: srv, port: port}
}

// URL is the page's base URL on 127.0.0.1.
func (p *Page) URL() string { return p.srv.URL + "/" }

// URLAs is the same page under the origin http://NAME.gatehouse.test:PORT (Chromium only).
func (p *Page) URLAs(name string) string { return "http://" + name + originSuffix + ":" + p.port + "/" }

// writeApp creates an app directory in the Mobile Services layout for GatehouseOptions.App; files
// maps relative paths ("datamodel.json", "table/TodoItem.json") to contents.
func writeApp(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
