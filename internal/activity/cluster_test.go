package activity_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

const (
	masterKey = "cluster-master-key-0123456789abcdef"
	appKey    = "cluster-application-key-012345678"
	systemKey = "cluster-system-key-0123456789abcdef"
)

// instance is one Gatehouse server as serve wires it: activity recorder, audit middleware, the
// table API and the admin endpoints, on its own connection pool to the shared database.
type instance struct {
	id  string
	db  *store.DB
	rec *activity.Recorder
	ts  *httptest.Server
}

func newInstance(t testing.TB, dsn, id string) *instance {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, dsn)
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.RequestTimeout = 10 * time.Second
	a, err := auth.New(auth.Secrets{MasterKey: masterKey, ApplicationKey: appKey, SystemKey: systemKey}, auth.Options{ClockSkew: time.Minute, MaxTTL: cfg.TokenMaxTTL})
	if err != nil {
		t.Fatal(err)
	}
	log := quiet()
	rec := activity.NewRecorder(activity.NewStore(db), activity.Options{Instance: id, Log: log})
	auditStore := audit.NewStore(db)
	srv := server.New(server.Deps{Config: cfg, Auth: a, Minter: &auth.Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: cfg.TokenMaxTTL},
		DB: db, Metrics: metrics.New("test"), Logger: log, Version: "test",
		Activity: rec, Audit: &audit.Middleware{Recorder: auditStore, Log: log}})
	tables, err := table.NewService(ctx, table.NewSQL(db), appdir.Empty(), table.Defaults{DynamicSchema: true, Permission: auth.Application}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.Mount("tables", "/tables/{table}", &table.Handler{Service: tables, Log: log})
	srv.Mount("/admin/tables", "/admin/tables", &table.AdminHandler{Service: tables})
	srv.Mount("/admin/audit", "/admin/audit", server.RequirePermission(auth.Admin, &audit.AdminHandler{Store: auditStore, Log: log}))
	srv.Mount("/admin/activity", "/admin/activity", server.RequirePermission(auth.Admin, &activity.AdminHandler{Store: activity.NewStore(db)}))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &instance{id: id, db: db, rec: rec, ts: ts}
}

func (in *instance) do(t testing.TB, method, path string, body string, hdr map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := in.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

var master = map[string]string{"X-ZUMO-MASTER": masterKey}

// TestCluster runs two instances on one PostgreSQL database: requests served by each appear in one
// tail and one set of statistics read from either; admin changes on each appear in one audit trail;
// and no key, token or query value reaches the activity log or the trail.
func TestCluster(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	a := newInstance(t, dsn, "instance-a")
	b := newInstance(t, dsn, "instance-b")
	ctx := context.Background()

	// Admin changes through both instances.
	if code, body := a.do(t, "POST", "/admin/tables", `{"name":"todo","columns":{"text":"string","password":"string"},"permissions":{"*":"application"}}`, master); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body := b.do(t, "PATCH", "/admin/tables/todo", `{"permissions":{"read":"user"}}`, master); code != 200 {
		t.Fatalf("alter: %d %s", code, body)
	}
	code, body := b.do(t, "POST", "/admin/tokens", `{"userId":"custom:alice"}`, master)
	if code != 200 {
		t.Fatalf("mint: %d %s", code, body)
	}
	var minted struct {
		Token string `json:"authenticationToken"`
	}
	if err := json.Unmarshal(body, &minted); err != nil || minted.Token == "" {
		t.Fatalf("minted: %s", body)
	}
	// Refused and failed changes are not changes.
	if code, _ := a.do(t, "DELETE", "/admin/tables/todo", "", map[string]string{"X-ZUMO-APPLICATION": appKey}); code != 401 {
		t.Fatalf("app key on admin: %d", code)
	}
	if code, _ := a.do(t, "POST", "/admin/tables", `{"name":"todo"}`, master); code != 409 {
		t.Fatalf("duplicate create: %d", code)
	}

	// Traffic carrying secrets every way a client can send them.
	secrets := []string{masterKey, appKey, minted.Token, "SECRETQUERY1", "SECRETQUERY2", "SECRETBEARER", "SECRETCODE"}
	userHdr := map[string]string{"X-ZUMO-APPLICATION": appKey, "X-ZUMO-AUTH": minted.Token}
	if code, body := a.do(t, "POST", "/tables/todo?access_token=SECRETQUERY1", `{"text":"hello"}`, map[string]string{"X-ZUMO-APPLICATION": appKey}); code != 201 {
		t.Fatalf("insert: %d %s", code, body)
	}
	if code, body := b.do(t, "GET", "/tables/todo?$filter=text%20eq%20'SECRETQUERY2'", "", userHdr); code != 200 {
		t.Fatalf("user read: %d %s", code, body)
	}
	if code, _ := a.do(t, "GET", "/tables/todo", "", map[string]string{"Authorization": "Bearer SECRETBEARER"}); code != 401 {
		t.Fatalf("bad bearer: %d", code)
	}
	if code, _ := b.do(t, "GET", "/login/google?code=SECRETCODE&state=x", "", nil); code != 404 {
		t.Fatalf("unknown route: %d", code)
	}
	if code, body := b.do(t, "PATCH", "/tables/todo/nope", `{"text":"x"}`, master); code != 404 {
		t.Fatalf("master-key update of a missing row: %d %s", code, body)
	}
	if code, _ := b.do(t, "GET", "/healthz", "", nil); code != 200 {
		t.Fatal("healthz")
	}
	for _, in := range []*instance{a, b} {
		if err := in.rec.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// One tail, read through instance a's admin API, holds both instances' requests.
	code, body = a.do(t, "GET", "/admin/activity?kind=request&limit=1000", "", master)
	if code != 200 {
		t.Fatalf("tail: %d %s", code, body)
	}
	var tail struct {
		Events []activity.Event `json:"events"`
		Next   string           `json:"next"`
	}
	if err := json.Unmarshal(body, &tail); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var userRead *activity.Event
	for i, e := range tail.Events {
		seen[e.Instance]++
		if e.Route == "/healthz" {
			t.Fatalf("probe in the ring: %+v", e)
		}
		if e.Method == "GET" && e.Status == 200 && e.Path == "/tables/todo" && e.Instance == "instance-b" {
			userRead = &tail.Events[i]
		}
	}
	if seen["instance-a"] < 4 || seen["instance-b"] < 4 {
		t.Fatalf("both instances in one tail: %v", seen)
	}
	if userRead == nil || userRead.UserID != "custom:alice" || userRead.Route != "/tables/{table}" || userRead.Duration <= 0 || userRead.Bytes <= 0 {
		t.Fatalf("the user's read: %+v", userRead)
	}
	// Filters through the API, the live tail's cursor included.
	code, body = b.do(t, "GET", "/admin/activity?status=4xx&route=/login/google", "", master)
	if code != 200 || !strings.Contains(string(body), `"path":"/login/google"`) || strings.Contains(string(body), `"status":200`) {
		t.Fatalf("filtered tail: %d %s", code, body)
	}
	code, body = b.do(t, "GET", "/admin/activity?after="+tail.Next, "", master)
	if code != 200 || !strings.Contains(string(body), `"events":[]`) || !strings.Contains(string(body), `"next":"`+tail.Next+`"`) {
		t.Fatalf("tail after the last event: %d %s", code, body)
	}
	if code, _ := b.do(t, "GET", "/admin/activity?status=9", "", master); code != 400 {
		t.Fatalf("bad status filter: %d", code)
	}
	if code, _ := b.do(t, "GET", "/admin/activity", "", map[string]string{"X-ZUMO-APPLICATION": appKey}); code != 401 {
		t.Fatalf("activity without the master key: %d", code)
	}

	code, body = b.do(t, "GET", "/admin/activity/stats?since=1h", "", master)
	if code != 200 {
		t.Fatalf("stats: %d %s", code, body)
	}
	var stats activity.Stats
	if err := json.Unmarshal(body, &stats); err != nil {
		t.Fatal(err)
	}
	if len(stats.Instances) != 2 || stats.Requests < 11 || stats.Errors4xx < 4 || stats.P99 <= 0 || len(stats.Minutes) < 60 {
		t.Fatalf("stats: %+v", stats)
	}

	// One audit trail, read through instance b: the changes of both, in order, nothing refused.
	code, body = b.do(t, "GET", "/admin/audit?order=asc", "", master)
	if code != 200 {
		t.Fatalf("audit: %d %s", code, body)
	}
	var trail struct {
		Entries []audit.Entry `json:"entries"`
	}
	if err := json.Unmarshal(body, &trail); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range trail.Entries {
		got = append(got, e.Action+" "+e.Target+" "+e.Actor+" "+e.Via)
		if e.RequestID == "" || e.Remote != "127.0.0.1" {
			t.Fatalf("entry without request id or remote: %+v", e)
		}
	}
	want := []string{
		"table.create todo master-key admin-api",
		"table.permissions todo master-key admin-api",
		"token.mint custom:alice master-key admin-api",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	perm := trail.Entries[1]
	if !strings.Contains(string(perm.Before), `"read":"application"`) || !strings.Contains(string(perm.After), `"read":"user"`) {
		t.Fatalf("before/after of the permission change: %s → %s", perm.Before, perm.After)
	}
	code, body = a.do(t, "GET", "/admin/audit/export?format=csv", "", master)
	if code != 200 || strings.Count(string(body), "\n") != 4 || !strings.HasPrefix(string(body), "id,time,actor") {
		t.Fatalf("csv export: %d %s", code, body)
	}

	// Nothing secret anywhere in either table.
	dump := dumpTables(t, a.db, "gatehouse_activity", "gatehouse_activity_minutes", "gatehouse_audit")
	if !strings.Contains(dump, "custom:alice") || !strings.Contains(dump, "/login/google") || !strings.Contains(dump, "table.permissions") {
		t.Fatalf("the dump misses rows it must have:\n%s", dump)
	}
	for _, s := range secrets {
		if strings.Contains(dump, s) {
			t.Fatalf("secret %.12s… stored:\n%s", s, dump)
		}
	}
}

func dumpTables(t testing.TB, db *store.DB, tables ...string) string {
	t.Helper()
	var sb strings.Builder
	for _, tb := range tables {
		rows, err := db.QueryContext(context.Background(), `SELECT * FROM `+tb)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch x := v.(type) {
				case []byte:
					sb.Write(x)
				case string:
					sb.WriteString(x)
				}
				sb.WriteByte('|')
			}
			sb.WriteByte('\n')
		}
		rows.Close()
	}
	return sb.String()
}
