package scriptstore_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/scriptstore"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const (
	testMaster = "scriptstore-test-master-key-01234567"
	testApp    = "scriptstore-test-application-key-012"
)

var testFiles = map[string]string{
	"api/hello.json":    `{"routes":{"*":{"get":{"permission":"public"}}}}`,
	"api/hello.js":      "exports.get = function (req, res) { res.send(200, { v: 'deployed' }); };\n",
	"shared/version.js": "exports.value = 1;\n",
}

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

// instance is one Gatehouse instance's script parts on db, serving /api and /admin/scripts.
type instance struct {
	dir    string
	engine *script.Engine
	editor *scriptstore.Editor
	trail  *audit.Store
	url    string
}

func newInstance(t testing.TB, db *store.DB, n notify.Notifier) *instance {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, testFiles)
	log := slog.New(slog.DiscardHandler)
	st := scriptstore.NewSQL(db)
	engine, err := script.New(dir, script.Options{Log: log, PoolSize: 2, Overlay: st})
	if err != nil {
		t.Fatal(err)
	}
	trail := audit.NewStore(db)
	ed := &scriptstore.Editor{Store: st, Engine: engine, Audit: trail, Notifier: n, Reload: engine.Reload, Log: log}
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Secrets{MasterKey: testMaster, ApplicationKey: testApp, SystemKey: "scriptstore-test-system-key-0123456"}, auth.Options{MaxTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Deps{Config: cfg, Auth: a, App: engine.App(), DB: db, Metrics: metrics.New("test"), Logger: log, Version: "test",
		Audit: &audit.Middleware{Recorder: trail, Log: log}})
	srv.Mount("api", "/api/{name}", &script.APIHandler{Engine: engine})
	srv.Mount("/admin/scripts", "/admin/scripts", server.RequirePermission(auth.Admin, &scriptstore.AdminHandler{Editor: ed, Log: log}))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &instance{dir: dir, engine: engine, editor: ed, trail: trail, url: ts.URL}
}

type reply struct {
	status int
	body   string
}

func (r reply) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// call sends a request; headers are pairs of name, value.
func call(t testing.TB, method, url, body string, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("ZUMO-API-VERSION", "2.0.0")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, string(b)}
}

func (in *instance) admin(t testing.TB, method, path, body string, headers ...string) reply {
	t.Helper()
	return call(t, method, in.url+"/admin/scripts"+path, body, append([]string{"X-ZUMO-MASTER", testMaster}, headers...)...)
}

func (in *instance) hello(t testing.TB) string {
	t.Helper()
	return call(t, "GET", in.url+"/api/hello", "").body
}

func entries(t testing.TB, trail *audit.Store, action string) []audit.Entry {
	t.Helper()
	list, err := trail.List(context.Background(), audit.Filter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestAdminAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		in := newInstance(t, db, notify.NewLocal())
		newHello := "exports.get = function (req, res) { res.send(200, { v: 'edited' }); };\n"

		// Authorisation: the master key only.
		for _, c := range []struct{ method, body string }{{"GET", ""}, {"PUT", newHello}, {"POST", `{"revision":1}`}, {"DELETE", ""}} {
			for _, hdr := range [][]string{nil, {"X-ZUMO-APPLICATION", testApp}, {"X-ZUMO-MASTER", "wrong-" + testMaster}} {
				if r := call(t, c.method, in.url+"/admin/scripts/api/hello.js", c.body, hdr...); r.status != http.StatusUnauthorized {
					t.Fatalf("%s with %v: %d %s", c.method, hdr, r.status, r.body)
				}
			}
		}
		if r := call(t, "GET", in.url+"/admin/scripts", ""); r.status != http.StatusUnauthorized {
			t.Fatalf("list without a key: %d", r.status)
		}
		if strings.Contains(in.hello(t), "edited") || len(entries(t, in.trail, "script.*")) != 0 {
			t.Fatal("an unauthorised request changed something")
		}

		// The listing shows the deployed files.
		var list struct {
			Revision int64                `json:"revision"`
			Scripts  []scriptstore.Script `json:"scripts"`
		}
		in.admin(t, "GET", "", "").json(t, &list)
		if len(list.Scripts) != 2 || list.Scripts[0].Path != "api/hello.js" || !list.Scripts[0].Deployed || list.Scripts[0].Edit != nil {
			t.Fatalf("list: %+v", list)
		}

		// A raw save serves at once and is audited once, in the change's transaction.
		r := in.admin(t, "PUT", "/api/hello.js", newHello, "Content-Type", "application/javascript")
		var sv struct {
			scriptstore.Edit
			Loaded bool `json:"loaded"`
		}
		r.json(t, &sv)
		if r.status != http.StatusOK || !sv.Loaded || sv.Revision < 1 || sv.SHA256 != scriptstore.Hash([]byte(newHello)) || sv.SavedBy != audit.ActorMasterKey {
			t.Fatalf("save: %d %s", r.status, r.body)
		}
		if got := in.hello(t); !strings.Contains(got, `"edited"`) {
			t.Fatalf("after save: %s", got)
		}
		es := entries(t, in.trail, "script.*")
		if len(es) != 1 || es[0].Action != "script.save" || es[0].Target != "api/hello.js" || es[0].Actor != audit.ActorMasterKey || es[0].Via != audit.ViaAdminAPI ||
			!strings.Contains(string(es[0].Before), "deployed") || !strings.Contains(string(es[0].After), "edited") {
			t.Fatalf("audit: %+v", es)
		}

		// JSON body.
		second := "exports.get = function (req, res) { res.send(200, { v: 'second' }); };\n"
		body, _ := json.Marshal(map[string]string{"source": second})
		if r := in.admin(t, "PUT", "/api/hello.js", string(body), "Content-Type", "application/json; charset=utf-8"); r.status != http.StatusOK {
			t.Fatalf("JSON save: %d %s", r.status, r.body)
		}
		if got := in.hello(t); !strings.Contains(got, `"second"`) {
			t.Fatalf("after JSON save: %s", got)
		}

		// A syntax error: 422 with the position; nothing stored, nothing audited.
		rev, _ := in.editor.EditsRevision(context.Background())
		r = in.admin(t, "PUT", "/api/hello.js", "exports.get = function (req, res) {\n  res.send(200, { v: 3 );\n};\n")
		var se struct {
			Error, File  string
			Line, Column int
		}
		r.json(t, &se)
		if r.status != http.StatusUnprocessableEntity || se.File != "api/hello.js" || se.Line != 2 || se.Column < 1 || se.Error == "" {
			t.Fatalf("syntax error: %d %s", r.status, r.body)
		}
		if now, _ := in.editor.EditsRevision(context.Background()); now != rev {
			t.Fatal("a script with a syntax error was stored")
		}
		if len(entries(t, in.trail, "script.*")) != 2 {
			t.Fatal("a refused save was audited")
		}

		// Limits and bad input.
		for _, c := range []struct {
			method, path, body, ctype string
			status                    int
		}{
			{"PUT", "/api/hello.js", strings.Repeat("/", scriptstore.MaxSource+1), "text/plain", http.StatusRequestEntityTooLarge},
			{"PUT", "/api/hello.js", "exports.x = 1;\x00", "text/plain", http.StatusBadRequest},
			{"PUT", "/api/hello.js", "exports.x = '\xff';", "text/plain", http.StatusBadRequest},
			{"PUT", "/api/hello.js", `{"source": 1}`, "application/json", http.StatusBadRequest},
			{"PUT", "/api/hello.js", `{"src": "x"}`, "application/json", http.StatusBadRequest},
			{"PUT", "/api/hello.js", `{"source": "a", "source": "b"}`, "application/json", http.StatusBadRequest},
			{"PUT", "/datamodel.json", "{}", "text/plain", http.StatusBadRequest},
			{"PUT", "/extensions/startup.js", "//", "text/plain", http.StatusBadRequest},
			{"PUT", "/api/../../x.js", "//", "text/plain", http.StatusBadRequest},
			{"PUT", "/api/bad-name.js", "//", "text/plain", http.StatusBadRequest},
			{"POST", "/api/hello.js", `{"revision": 0}`, "application/json", http.StatusBadRequest},
			{"POST", "/api/hello.js", `{"revision": 999999}`, "application/json", http.StatusNotFound},
			{"GET", "/api/nothing.js", "", "", http.StatusNotFound},
			{"GET", "/api/hello.js?revision=x", "", "", http.StatusBadRequest},
			{"DELETE", "/api/nothing.js", "", "", http.StatusNotFound},
			{"PATCH", "/api/hello.js", "//", "text/plain", http.StatusMethodNotAllowed},
		} {
			r := in.admin(t, c.method, c.path, c.body, "Content-Type", c.ctype)
			var e struct{ Error string }
			if r.status != c.status || json.Unmarshal([]byte(r.body), &e) != nil || e.Error == "" {
				t.Errorf("%s %s: %d %s (want %d)", c.method, c.path, r.status, r.body, c.status)
			}
		}
		if n, _ := in.editor.EditsRevision(context.Background()); n != rev {
			t.Fatal("refused input was stored")
		}

		// Show: the edit in force, its source, the history.
		var s scriptstore.Script
		in.admin(t, "GET", "/api/hello.js", "").json(t, &s)
		if s.Edit == nil || s.Source != second || len(s.History) != 2 || s.Drift || !s.Deployed {
			t.Fatalf("show: %+v", s)
		}
		var old scriptstore.Edit
		in.admin(t, "GET", "/api/hello.js?revision="+itoa(s.History[1].Revision), "").json(t, &old)
		if old.Source != newHello {
			t.Fatalf("revision: %+v", old)
		}

		// Restore the first edit: a new revision with its source.
		if r := in.admin(t, "POST", "/api/hello.js", `{"revision": `+itoa(old.Revision)+`}`, "Content-Type", "application/json"); r.status != http.StatusOK {
			t.Fatalf("restore: %d %s", r.status, r.body)
		}
		if got := in.hello(t); !strings.Contains(got, `"edited"`) {
			t.Fatalf("after restore: %s", got)
		}
		if es := entries(t, in.trail, "script.restore"); len(es) != 1 || !strings.Contains(string(es[0].After), `"restoredFrom"`) {
			t.Fatalf("restore audit: %+v", es)
		}

		// The deployed file changes after the edit: the edit still wins, marked as drifted.
		writeFiles(t, in.dir, map[string]string{"api/hello.js": "exports.get = function (req, res) { res.send(200, { v: 'redeployed' }); };\n"})
		if _, err := in.engine.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		list.Scripts = nil
		in.admin(t, "GET", "", "").json(t, &list)
		if !list.Scripts[0].Drift || list.Scripts[0].Edit == nil || !strings.Contains(in.hello(t), `"edited"`) {
			t.Fatalf("drift: %+v %s", list.Scripts[0], in.hello(t))
		}

		// Revert: the deployed file serves again; audited; a second revert finds nothing.
		if r := in.admin(t, "DELETE", "/api/hello.js", ""); r.status != http.StatusOK {
			t.Fatalf("revert: %d %s", r.status, r.body)
		}
		if got := in.hello(t); !strings.Contains(got, `"redeployed"`) {
			t.Fatalf("after revert: %s", got)
		}
		if es := entries(t, in.trail, "script.revert"); len(es) != 1 || !strings.Contains(string(es[0].After), "redeployed") {
			t.Fatalf("revert audit: %+v", es)
		}
		if r := in.admin(t, "DELETE", "/api/hello.js", ""); r.status != http.StatusNotFound {
			t.Fatalf("second revert: %d", r.status)
		}
		// The history outlives the revert.
		s = scriptstore.Script{}
		in.admin(t, "GET", "/api/hello.js", "").json(t, &s)
		if s.Edit != nil || len(s.History) != 3 {
			t.Fatalf("after revert: %+v", s)
		}

		// A new script that the folder lacks; reverting removes it.
		if r := in.admin(t, "PUT", "/api/fresh.js", "exports.get = function (req, res) { res.send(200, 'fresh'); };"); r.status != http.StatusOK {
			t.Fatalf("new API: %d %s", r.status, r.body)
		}
		if r := call(t, "GET", in.url+"/api/fresh", "", "X-ZUMO-MASTER", testMaster); r.status != http.StatusOK || !strings.Contains(r.body, "fresh") {
			t.Fatalf("new API serves: %d %s", r.status, r.body)
		}
		if r := in.admin(t, "DELETE", "/api/fresh.js", ""); r.status != http.StatusOK {
			t.Fatalf("revert new API: %d", r.status)
		}
		if r := call(t, "GET", in.url+"/api/fresh", "", "X-ZUMO-MASTER", testMaster); r.status != http.StatusNotFound {
			t.Fatalf("reverted new API: %d", r.status)
		}

		// Reverting onto a deployed file with a syntax error is refused; the edit stays in force.
		in.admin(t, "PUT", "/shared/version.js", "exports.value = 2;\n")
		writeFiles(t, in.dir, map[string]string{"shared/version.js": "exports.value = ;\n"})
		r = in.admin(t, "DELETE", "/shared/version.js", "")
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"file":"shared/version.js"`) {
			t.Fatalf("revert onto a broken file: %d %s", r.status, r.body)
		}
		s = scriptstore.Script{}
		in.admin(t, "GET", "/shared/version.js", "").json(t, &s)
		if s.Edit == nil {
			t.Fatal("the refused revert removed the edit")
		}
		// Nothing was recorded twice by the audit middleware.
		for _, e := range entries(t, in.trail, "") {
			if strings.HasPrefix(e.Action, "script.") && e.Action != "script.save" && e.Action != "script.restore" && e.Action != "script.revert" {
				t.Fatalf("middleware entry: %+v", e)
			}
		}
	})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestSaveWhileAnotherScriptIsBroken: a good edit is stored and announced even when this instance
// cannot load the app (another, deployed script is broken); the answer says so and the previous
// version keeps serving here.
func TestSaveWhileAnotherScriptIsBroken(t *testing.T) {
	in := newInstance(t, storetest.Open(t, storetest.SQLiteURL(t)), nil)
	writeFiles(t, in.dir, map[string]string{"shared/broken.js": "exports.x = ;\n"})
	r := in.admin(t, "PUT", "/api/hello.js", "exports.get = function (req, res) { res.send(200, { v: 'stored' }); };\n")
	var sv struct {
		Revision  int64  `json:"revision"`
		Loaded    bool   `json:"loaded"`
		LoadError string `json:"loadError"`
	}
	r.json(t, &sv)
	if r.status != http.StatusOK || sv.Loaded || !strings.Contains(sv.LoadError, "shared/broken.js") || sv.Revision != 1 {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	if got := in.hello(t); !strings.Contains(got, `"deployed"`) {
		t.Fatalf("the previous version should serve: %s", got)
	}
	// Fixing the broken file loads everything, the edit included.
	writeFiles(t, in.dir, map[string]string{"shared/broken.js": "exports.x = 1;\n"})
	if _, err := in.engine.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := in.hello(t); !strings.Contains(got, `"stored"`) {
		t.Fatalf("after the fix: %s", got)
	}
}
