package script_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

const (
	masterKey = "script-test-master-key-0123456789"
	appKey    = "script-test-application-key-0123"
	systemKey = "script-test-system-key-012345678"
)

// syncBuffer collects logs from several goroutines.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	waiters []waiter
}

type waiter struct {
	substr string
	ch     chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if bytes.Contains(p, []byte(w.substr)) {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	s.waiters = kept
	return s.b.Write(p)
}

// when returns a channel closed once a log line containing substr is written (from now on).
func (s *syncBuffer) when(substr string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.waiters = append(s.waiters, waiter{substr, ch})
	return ch
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	t      testing.TB
	dir    string
	db     *store.DB
	engine *script.Engine
	svc    *table.Service
	ts     *httptest.Server
	auth   *auth.Authenticator
	minter *auth.Minter
	logs   *syncBuffer
	sched  *script.Scheduler
}

type envOpt func(*script.Options)

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newEnv(t testing.TB, db *store.DB, files map[string]string, opts ...envOpt) *env {
	t.Helper()
	if db == nil {
		db = storetest.Open(t, storetest.SQLiteURL(t))
	}
	dir := t.TempDir()
	writeFiles(t, dir, files)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Secrets{MasterKey: masterKey, ApplicationKey: appKey, SystemKey: systemKey}, auth.Options{MaxTTL: 24 * 40 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	minter := &auth.Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * 40 * time.Hour}
	sopt := script.Options{
		ServiceName: "todolist",
		AppSettings: map[string]string{"GREETING": "hello"},
		Keys:        func() script.Keys { return script.Keys{MasterKey: masterKey, ApplicationKey: appKey} },
		Log:         log,
		Timeout:     5 * time.Second,
	}
	for _, o := range opts {
		o(&sopt)
	}
	// The engine loads the app first so that table declarations are known to the table service.
	engine, err := script.New(dir, sopt)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := table.NewService(context.Background(), table.NewSQL(db), engine.App(), table.Defaults{DynamicSchema: true, Permission: auth.Application}, log)
	if err != nil {
		t.Fatal(err)
	}
	engine.SetServices(&table.ScriptAPI{Service: svc}, script.NewSQL(db, svc))
	srv := server.New(server.Deps{Config: cfg, Auth: a, Minter: minter, App: engine.App(), DB: db, Metrics: metrics.New("test"), Logger: log, Version: "test"})
	srv.Mount("tables", "/tables/{table}", &table.Handler{Service: svc, Log: log, Scripts: &script.TableHook{Engine: engine}})
	srv.Mount("api", "/api/{name}", &script.APIHandler{Engine: engine})
	sched := &script.Scheduler{Engine: engine, DB: db, Holder: "instance-a"}
	srv.Mount("jobs", "/jobs/{job}", &script.JobHandler{Scheduler: sched})
	t.Cleanup(sched.Wait)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return &env{t: t, dir: dir, db: db, engine: engine, svc: svc, ts: ts, auth: a, minter: minter, logs: logs, sched: sched}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (r resp) list(t testing.TB) []map[string]any {
	t.Helper()
	var m []map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// do sends a request; headers is pairs of name, value.
func (e *env) do(method, path, body string, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (e *env) token(uid string) string {
	e.t.Helper()
	tok, _, err := e.minter.Mint(auth.MintRequest{UserID: uid})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func expect(t testing.TB, r resp, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	for _, c := range contains {
		if !strings.Contains(r.body, c) {
			t.Fatalf("body %s does not contain %q", r.body, c)
		}
	}
}
