package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/scriptstore"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
	"github.com/gatehouse/gatehouse/internal/user"
)

const (
	testMaster = "console-test-master-key-0123456789"
	testApp    = "console-test-application-key-01234"
	adminEmail = "owner@example.com"
	adminPass  = "correct horse battery"
)

// clock is the console's injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeActivity stands in for package activity's reader (its own tests cover it): a fixed list.
type fakeActivity struct{ events []Event }

func (f *fakeActivity) Tail(_ context.Context, ef EventFilter) ([]Event, error) {
	var out []Event
	for _, e := range f.events {
		if (ef.Source == "" || e.Source == ef.Source) && e.ID > ef.AfterID {
			out = append(out, e)
		}
	}
	return out, nil
}

// Follower returns the fixed events after after, once.
func (f *fakeActivity) Follower(ef EventFilter, after int64) Follower {
	return &fakeFollower{f: f, ef: ef, after: after}
}

type fakeFollower struct {
	f     *fakeActivity
	ef    EventFilter
	after int64
}

func (ff *fakeFollower) Next(ctx context.Context) ([]Event, bool, error) {
	ff.ef.AfterID = ff.after
	ev, _ := ff.f.Tail(ctx, ff.ef)
	for _, e := range ev {
		ff.after = max(ff.after, e.ID)
	}
	return ev, false, nil
}

func (f *fakeActivity) Stats(context.Context, time.Duration) (Stats, error) {
	return Stats{Window: time.Hour, Requests: 120, PerSecond: 120.0 / 3600, P99: 12 * time.Millisecond,
		Instances: []Instance{{ID: "i-1", Requests: 120, LastSeen: time.Now()}},
		Minutes:   []Minute{{Start: time.Now().Add(-time.Minute), Requests: 100}, {Start: time.Now(), Requests: 20}}}, nil
}

type harness struct {
	t        testing.TB
	db       *store.DB
	ts       *httptest.Server
	c        *Console
	st       *SQL
	clock    *clock
	trail    *audit.Store
	appDir   string
	authn    *auth.Authenticator
	tables   *table.Service
	setup    string // the setup token
	activity *fakeActivity
	users    *user.Directory
	accounts *account.Service
}

func newHarness(t testing.TB, db *store.DB) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	files := map[string]string{
		"datamodel.json":        `{"tables":[{"name":"Items","permissions":{"*":"application"},"softDelete":true,"columns":{"title":"string","n":"number"}}]}`,
		"table/items.insert.js": "function insert(item, user, request) { request.execute(); }\n",
		"api/hello.js":          "exports.get = function (req, res) { res.send(200, {v: 1}); };\n",
		"api/hello.json":        `{"routes":{"*":{"get":{"permission":"public"}}}}`,
		"scheduler/cleanup.js":  "function cleanup() {}\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	edits := scriptstore.NewSQL(db)
	engine, err := script.New(dir, script.Options{Log: log, PoolSize: 2, Overlay: edits})
	if err != nil {
		t.Fatal(err)
	}
	app := engine.App()
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Secrets{MasterKey: testMaster, ApplicationKey: testApp, SystemKey: "console-test-system-key-0123456789"}, auth.Options{MaxTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := table.NewService(ctx, table.NewSQL(db), app, table.Defaults{DynamicSchema: true, Permission: auth.Application}, log)
	if err != nil {
		t.Fatal(err)
	}
	engine.SetServices(&table.ScriptAPI{Service: svc}, nil)
	th := &table.Handler{Service: svc, Log: log, Scripts: &script.TableHook{Engine: engine}}
	srv := server.New(server.Deps{Config: cfg, Auth: authn, App: app, DB: db, Metrics: metrics.New("test"), Logger: log, Version: "test"})
	srv.Mount("tables", "/tables/{table}", th)
	srv.Mount("api", "/api/{name}", &script.APIHandler{Engine: engine})
	h, err := password.NewHasher(password.Config{Params: password.Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ck := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	dirUsers, err := user.NewDirectory(user.NewSQL(db), user.Options{})
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := account.NewService(account.Options{Store: account.NewSQL(db), Hasher: h, Users: account.UserDirectory{Dir: dirUsers}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	st := NewSQL(db)
	trail := audit.NewStore(db)
	act := &fakeActivity{}
	editor := &scriptstore.Editor{Store: edits, Engine: engine, Audit: trail, Reload: engine.Reload, Log: log}
	c, err := New(Options{Path: "/console", Store: st, Keys: authn.Secrets, Hasher: h, Throttle: account.NewSQL(db),
		Tables: svc, Rows: th, Audit: trail, AuditLog: trail, Scripts: editor, Activity: act,
		Users: &Users{Directory: dirUsers, Accounts: accounts},
		Rules: account.Rules{Pair: account.Rule{Free: 3, Base: time.Minute, Max: time.Hour, PerHour: 100, Decay: time.Hour},
			IP: account.Rule{Free: 50, Base: time.Second, Max: time.Minute, PerHour: 1000, Decay: time.Hour}},
		InsecureLoopback: true, Now: ck.Now, Log: log,
		Jobs: &Jobs{Ledger: jobs.NewLedger(db), Schedules: &jobs.Schedules{Store: jobs.NewScheduleStore(db), Audit: trail, Now: ck.Now},
			Defs: func() []jobs.Def { return []jobs.Def{{Name: "cleanup", Every: time.Hour}} }}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Mount("/console", "/console", c)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	tok, err := IssueSetupLink(ctx, st, ck.Now(), time.Hour)
	if err != nil || tok == "" {
		t.Fatalf("setup link: %q %v", tok, err)
	}
	return &harness{t: t, db: db, ts: ts, c: c, st: st, clock: ck, trail: trail, appDir: dir, authn: authn, tables: svc, setup: tok, activity: act,
		users: dirUsers, accounts: accounts}
}

// browser is a client with a cookie jar that never follows redirects (the tests look at them).
type browser struct {
	h    *harness
	hc   *http.Client
	csrf string
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

var csrfRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) page {
	b.h.t.Helper()
	res, err := b.hc.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	p := page{status: res.StatusCode, header: res.Header, body: string(body)}
	if m := csrfRE.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(path string) page {
	req, _ := http.NewRequest(http.MethodGet, b.h.ts.URL+path, nil)
	return b.do(req)
}

// post sends a form with the page's CSRF token (unless the form sets _csrf itself).
func (b *browser) post(path string, form url.Values) page {
	if _, ok := form["_csrf"]; !ok {
		form.Set("_csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.h.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.h.ts.URL)
	return b.do(req)
}

// signedIn runs the setup link and returns the first administrator's browser.
func (h *harness) signedIn() *browser {
	h.t.Helper()
	b := h.browser()
	if p := b.get("/console/setup?token=" + url.QueryEscape(h.setup)); p.status != http.StatusOK {
		h.t.Fatalf("setup page: %d %s", p.status, p.body)
	}
	p := b.post("/console/setup", url.Values{"token": {h.setup}, "email": {adminEmail}, "password": {adminPass}, "confirm": {adminPass}})
	if p.status != http.StatusSeeOther {
		h.t.Fatalf("setup: %d %s", p.status, p.body)
	}
	if p := b.get("/console/data"); p.status != http.StatusOK {
		h.t.Fatalf("data after setup: %d", p.status)
	}
	return b
}

func (h *harness) auditActions(t *testing.T) []string {
	t.Helper()
	list, err := h.trail.List(context.Background(), audit.Filter{Ascending: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list {
		if e.Via != audit.ViaConsole {
			t.Errorf("entry %s via %q", e.Action, e.Via)
		}
		out = append(out, e.Action+" "+e.Target+" by "+e.Actor)
	}
	return out
}
