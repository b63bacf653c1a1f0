package table_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

const (
	masterKey = "table-test-master-key-012345678"
	appKey    = "table-test-application-key-0123"
)

// appFiles is the app directory every test starts from.
var appFiles = map[string]string{
	"datamodel.json": `{"tables":[
		{"name":"TodoItem","permissions":{"*":"public"},"softDelete":true},
		{"name":"Counter","permissions":{"*":"public"},"idType":"integer"},
		{"name":"Strict","permissions":{"*":"public"},"dynamicSchema":false,"columns":{"title":"string","n":"number"}},
		{"name":"Notes","permissions":{"*":"user"},"perUser":true,"softDelete":true},
		{"name":"Movies","permissions":{"*":"public"},"columns":{"title":"string","year":"number","released":"date","good":"boolean"},"indexes":["year","title"]}
	]}`,
	"table/foo.json":    `{"routes":{"*":{"read":{"permission":"authenticated"},"*":{"permission":"public"}}}}`,
	"table/secret.json": `{"routes":{"*":{"*":{"permission":"admin"}}}}`,
	"table/app.json":    `{"routes":{"*":{"*":{"permission":"application"}}}}`,
	"table/vault.json":  `{"routes":{"*":{"read":{"permission":"user"},"*":{"permission":"mfa"}}}}`,
}

type env struct {
	t      testing.TB
	srv    *server.Server
	ts     *httptest.Server
	minter *auth.Minter
	svc    *table.Service
}

func newEnv(t *testing.T, db *store.DB) *env { return newEnvTB(t, db) }

func newEnvTB(t testing.TB, db *store.DB) *env {
	t.Helper()
	return newEnvWith(t, db, table.Defaults{DynamicSchema: true, Permission: auth.Application}, nil)
}

// newEnvWith is newEnv with table defaults and a configuration change.
func newEnvWith(t testing.TB, db *store.DB, d table.Defaults, cfgf func(*config.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	for name, body := range appFiles {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	app, err := appdir.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfgf != nil {
		cfgf(cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := auth.New(auth.Secrets{MasterKey: masterKey, ApplicationKey: appKey, SystemKey: "table-test-system-key-01234567"}, auth.Options{MaxTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := table.NewService(context.Background(), table.NewSQL(db), app, d, log)
	if err != nil {
		t.Fatal(err)
	}
	minter := &auth.Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: time.Hour}
	srv := server.New(server.Deps{Config: cfg, Auth: a, Minter: minter, App: app, DB: db, Metrics: metrics.New("test"), Logger: log, Version: "test"})
	srv.Mount("tables", "/tables/{table}", &table.Handler{Service: svc, Log: log})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{t: t, srv: srv, ts: ts, minter: minter, svc: svc}
}

func (e *env) adminMount() {
	e.srv.Mount("/admin/tables", "/admin/tables", &table.AdminHandler{Service: e.svc})
}

func (e *env) token(uid string) string {
	tok, _, err := e.minter.Mint(auth.MintRequest{UserID: uid})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type res struct {
	status int
	header http.Header
	body   string
}

func (r res) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (r res) list(t *testing.T) []map[string]any {
	t.Helper()
	var m []map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// do sends a request; h holds headers; "v2" in h adds ZUMO-API-VERSION.
func (e *env) do(method, path, body string, h ...string) res {
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
	for i := 0; i < len(h); i++ {
		if h[i] == "v2" {
			req.Header.Set("ZUMO-API-VERSION", "2.0.0")
			continue
		}
		req.Header.Set(h[i], h[i+1])
		i++
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return res{resp.StatusCode, resp.Header, string(b)}
}

func expect(t *testing.T, r res, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	for _, c := range contains {
		if !strings.Contains(r.body, c) {
			t.Fatalf("body %s lacks %s", r.body, c)
		}
	}
}

func TestV1CRUD(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		r := e.do("POST", "/tables/todoitem", `{"text":"buy milk","complete":false}`)
		expect(t, r, 201, `"text":"buy milk"`)
		item := r.json(t)
		id := item["id"].(string)
		// As the original: no __version in the answer, so no ETag (the v1 client would copy it).
		if len(item) != 3 || r.header.Get("ETag") != "" || r.header.Get("Location") != "/tables/todoitem/"+id {
			t.Fatalf("v1 insert answers submitted fields + id, without ETag: %s %v", r.body, r.header)
		}
		r = e.do("GET", "/tables/TodoItem/"+id+"?__systemProperties=__version,createdAt", "")
		expect(t, r, 200, `"__version"`, `"__createdAt"`)
		if strings.Contains(r.body, "__updatedAt") {
			t.Fatalf("unrequested system property: %s", r.body)
		}
		version := r.json(t)["__version"].(string)
		if r.header.Get("ETag") != `"`+version+`"` {
			t.Fatalf("etag %q", r.header.Get("ETag"))
		}
		r = e.do("GET", "/tables/TodoItem/"+id+"?__systemProperties=__version", "", "If-None-Match", `"`+version+`"`)
		expect(t, r, 304)
		// Without __version in the result the original neither sent an ETag nor answered 304.
		r = e.do("GET", "/tables/TodoItem/"+id+"?__systemProperties=__createdAt", "", "If-None-Match", `"`+version+`"`)
		expect(t, r, 200, `"__createdAt"`)
		if r.header.Get("ETag") != "" {
			t.Fatalf("v1 answer without __version carries an ETag: %v", r.header)
		}
		r = e.do("POST", "/tables/todoitem?__systemProperties=__version", `{"text":"eggs"}`)
		expect(t, r, 201, `"__version"`)
		if r.header.Get("ETag") == "" {
			t.Fatalf("v1 insert with __version must carry an ETag: %v", r.header)
		}
		// __systemProperties is validated on every verb; * only alone.
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/tables/todoitem?__systemProperties=__created", `{"text":"x"}`},
			{"DELETE", "/tables/todoitem/" + id + "?__systemProperties=__created", ""},
			{"PATCH", "/tables/todoitem/" + id + "?__systemProperties=__created", `{"text":"x"}`},
			{"GET", "/tables/todoitem?__systemProperties=*,__updatedAt", ""},
		} {
			r := e.do(c.method, c.path, c.body)
			expect(t, r, 400, "is not a supported system property")
		}
		expect(t, e.do("GET", "/tables/todoitem?__systemProperties=*", ""), 200, `"__updatedAt"`)
		r = e.do("PATCH", "/tables/todoitem/"+id, `{"complete":true}`, "If-Match", `"`+version+`"`)
		expect(t, r, 200, `"complete":true`)
		if m := r.json(t); len(m) != 2 {
			t.Fatalf("v1 PATCH answers submitted fields + id: %s", r.body)
		}
		r = e.do("PATCH", "/tables/todoitem/"+id, `{"complete":false}`, "If-Match", `"`+version+`"`)
		expect(t, r, 412, `"__version"`, `"complete":true`)
		if strings.Contains(r.body, `"error"`) || r.header.Get("ETag") == "" {
			t.Fatalf("412 body must be the server item: %s", r.body)
		}
		r = e.do("PATCH", "/tables/todoitem/"+id, `{"id":"other","complete":false}`)
		expect(t, r, 400, "must match the id specified in the url")
		r = e.do("PATCH", "/tables/todoitem", `{"complete":false}`)
		expect(t, r, 400, "An id value must be specified in the URL")
		r = e.do("DELETE", "/tables/todoitem/"+id, "")
		expect(t, r, 204)
		r = e.do("GET", "/tables/todoitem/"+id, "")
		expect(t, r, 404, fmt.Sprintf("Error: An item with id '%s' does not exist.", id))
		r = e.do("GET", "/tables/todoitem/"+id+"?__includeDeleted=true&__systemProperties=deleted", "")
		expect(t, r, 200, `"__deleted":true`)
		r = e.do("POST", "/tables/todoitem/"+id, "")
		expect(t, r, 200, `"__deleted":false`)
		r = e.do("GET", "/tables/todoitem", "")
		if l := r.list(t); len(l) != 2 { // buy milk, undeleted, and eggs
			t.Fatalf("after undelete: %s", r.body)
		}
		r = e.do("DELETE", "/tables/todoitem/nope", "")
		expect(t, r, 404)
		r = e.do("PUT", "/tables/todoitem/"+id, "{}")
		expect(t, r, 405)
		if r.header.Get("Allow") != "GET, POST, PATCH, DELETE" {
			t.Fatalf("allow %q", r.header.Get("Allow"))
		}
	})
}

func TestV2CRUDAndConflicts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		r := e.do("POST", "/tables/todoitem", `{"id":"a1","text":"x"}`, "v2")
		expect(t, r, 201, `"id":"a1"`, `"createdAt"`, `"updatedAt"`, `"version"`, `"deleted":false`)
		v := r.json(t)["version"].(string)
		r = e.do("POST", "/tables/todoitem", `{"id":"a1","text":"y"}`, "v2")
		expect(t, r, 409, `"text":"x"`)
		r = e.do("PATCH", "/tables/todoitem/a1", `{"text":"z"}`, "v2", "If-Match", `"stale"`)
		expect(t, r, 412, `"text":"x"`)
		if strings.Contains(r.body, `"error"`) {
			t.Fatalf("v2 412 body has an error field: %s", r.body)
		}
		r = e.do("PATCH", "/tables/todoitem/a1", `{"text":"z","version":"stale"}`, "v2")
		expect(t, r, 409, `"text":"x"`)
		r = e.do("PATCH", "/tables/todoitem/a1", `{"text":"z"}`, "v2", "If-Match", `"`+v+`"`)
		expect(t, r, 200, `"text":"z"`, `"createdAt"`)
		if nv := r.json(t)["version"].(string); nv == v {
			t.Fatal("version did not change on update")
		}
		r = e.do("PATCH", "/tables/todoitem/a1", `{"updatedAt":"2020-01-01T00:00:00.000Z"}`, "v2")
		expect(t, r, 400, "reserved")
		r = e.do("DELETE", "/tables/todoitem/a1", "", "v2")
		expect(t, r, 200, `"deleted":true`)
		r = e.do("GET", "/tables/todoitem", "", "v2")
		expect(t, r, 200)
		if r.body != "[]" {
			t.Fatalf("deleted row visible: %s", r.body)
		}
		r = e.do("GET", "/tables/todoitem?__includeDeleted=true", "", "v2")
		if len(r.list(t)) != 1 {
			t.Fatalf("includeDeleted: %s", r.body)
		}
		r = e.do("GET", "/tables/todoitem?__includeDeleted=false", "", "v2")
		if r.body != "[]" {
			t.Fatalf("__includeDeleted=false must not include deleted rows: %s", r.body)
		}
		r = e.do("POST", "/tables/todoitem/a1", "", "v2")
		expect(t, r, 201, `"deleted":false`)
		r = e.do("GET", "/tables/todoitem/missing", "", "v2")
		expect(t, r, 404, `{"error":"The item does not exist"}`)
		// Undelete on a table without soft delete.
		r = e.do("POST", "/tables/movies/x", "", "v2")
		expect(t, r, 400, "undelete operation is not supported")
		// Hard delete answers the row that was deleted.
		r = e.do("POST", "/tables/movies", `{"id":"m1","title":"Up"}`, "v2")
		expect(t, r, 201)
		r = e.do("DELETE", "/tables/movies/m1", "", "v2")
		expect(t, r, 200, `"title":"Up"`)
		r = e.do("GET", "/tables/movies/m1", "", "v2")
		expect(t, r, 404)
		// Bad API version.
		r = e.do("GET", "/tables/movies", "", "ZUMO-API-VERSION", "1.0.0")
		expect(t, r, 400, "ZUMO-API-VERSION of 2.0.0")
	})
}

func TestIDs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		for i, body := range []string{`{"n":1}`, `{"id":0,"n":2}`, `{"id":null,"n":3}`, `{"id":"","n":4}`} {
			r := e.do("POST", "/tables/counter", body)
			expect(t, r, 201, fmt.Sprintf(`"id":%d`, i+1))
		}
		expect(t, e.do("POST", "/tables/counter", `{"id":7}`), 400, "A value cannot be specified for property 'id'")
		expect(t, e.do("GET", "/tables/counter/abc", ""), 400, "must be a number")
		expect(t, e.do("GET", "/tables/counter/2", ""), 200, `"n":2`)
		expect(t, e.do("GET", "/tables/counter/2?__systemProperties=*", ""), 200)
		if r := e.do("GET", "/tables/counter/2?__systemProperties=*", ""); strings.Contains(r.body, "__version") {
			t.Fatalf("integer-id tables expose no system properties in v1: %s", r.body)
		}

		long := strings.Repeat("é", 255)
		r := e.do("POST", "/tables/todoitem", `{"id":"`+long+`"}`, "v2")
		expect(t, r, 201)
		expect(t, e.do("GET", "/tables/todoitem/"+url.PathEscape(long), "", "v2"), 200)
		expect(t, e.do("POST", "/tables/todoitem", `{"id":"`+long+`x"}`, "v2"), 400, "too long")
		// %2F-style ids are decoded exactly once: a literal "%41" stays "%41".
		expect(t, e.do("POST", "/tables/todoitem", `{"id":"a%41 b"}`, "v2"), 201)
		expect(t, e.do("GET", "/tables/todoitem/a%2541%20b", "", "v2"), 200, `"id":"a%41 b"`)
		for _, bad := range []string{`"a/b"`, `"a\"b"`, `"a+b"`, `"a?b"`, `"a\\b"`, "\"a`b\"", `".."`, `"\u0001"`, `5`, `true`} {
			expect(t, e.do("POST", "/tables/todoitem", `{"id":`+bad+`}`), 400, "'id'")
		}
		expect(t, e.do("POST", "/tables/todoitem", `{"Id":"x"}`), 400, "Item identifiers can only be specified via the 'id' property.")
		expect(t, e.do("GET", "/tables/todoitem/..", ""), 400)
		expect(t, e.do("POST", "/tables/todoitem", `{"id":"dup"}`), 201)
		expect(t, e.do("POST", "/tables/todoitem", `{"id":"dup"}`), 409, "Could not insert the item because an item with that id already exists.")
	})
}

func TestValuesRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		cases := []struct{ in, out string }{
			{`1.7976931348623157e308`, `1.7976931348623157e+308`},
			{`5e-324`, `5e-324`},
			{`2.2250738585072014e-308`, `2.2250738585072014e-308`},
			{`-0.1`, `-0.1`},
			{`123456789012345680000`, `123456789012345680000`},
			{`1e21`, `1e+21`},
			{`3`, `3`},
		}
		for i, c := range cases {
			id := fmt.Sprintf("num%d", i)
			expect(t, e.do("POST", "/tables/movies", `{"id":"`+id+`","year":`+c.in+`}`, "v2"), 201)
			r := e.do("GET", "/tables/movies/"+id, "", "v2")
			expect(t, r, 200, `"year":`+c.out)
		}
		for i, d := range []string{"1900-01-01T00:00:00.001Z", "9999-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z", "2024-02-29T12:00:00.000Z"} {
			id := fmt.Sprintf("date%d", i)
			expect(t, e.do("POST", "/tables/movies", `{"id":"`+id+`","released":"`+d+`"}`, "v2"), 201)
			expect(t, e.do("GET", "/tables/movies/"+id, "", "v2"), 200, `"released":"`+d+`"`)
		}
		// Offsets are normalised to UTC.
		expect(t, e.do("POST", "/tables/movies", `{"id":"off","released":"2024-01-01T01:00:00.000+01:00"}`, "v2"), 201, `"released":"2024-01-01T00:00:00.000Z"`)
		expect(t, e.do("POST", "/tables/movies", `{"id":"bad","released":"yesterday"}`, "v2"), 400, "not a valid date")
		expect(t, e.do("POST", "/tables/movies", `{"id":"bad","year":"1999"}`, "v2"), 400, "must be of type number")
		expect(t, e.do("POST", "/tables/movies", `{"id":"bad","year":1e999}`, "v2"), 400, "not a representable number")
		expect(t, e.do("POST", "/tables/movies", `{"id":"s","title":"quote \" and \\ and \u2028 and <tag> é 😀"}`, "v2"), 201)
		r := e.do("GET", "/tables/movies/s", "", "v2")
		if got := r.json(t)["title"]; got != "quote \" and \\ and \u2028 and <tag> é 😀" {
			t.Fatalf("string round trip: %q", got)
		}
		expect(t, e.do("POST", "/tables/movies", `{"id":"b","good":true}`, "v2"), 201, `"good":true`)
		expect(t, e.do("GET", "/tables/movies?$filter=good%20eq%20true", "", "v2"), 200, `"id":"b"`)
	})
}

func TestDynamicSchema(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		r := e.do("POST", "/tables/todoitem", `{"text":"a","n":1,"ok":true,"when":"2024-01-01T00:00:00.000Z"}`, "v2")
		expect(t, r, 201)
		s, err := e.svc.Lookup(context.Background(), "todoitem")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]table.ColumnType{"text": table.String, "n": table.Number, "ok": table.Boolean, "when": table.Date}
		for n, typ := range want {
			if c, ok := s.Column(n); !ok || c.Type != typ {
				t.Fatalf("column %s: %+v %v", n, c, ok)
			}
		}
		expect(t, e.do("POST", "/tables/todoitem", `{"text":"a","obj":{"a":1}}`), 400, "of type 'object' which is not a supported type")
		expect(t, e.do("POST", "/tables/todoitem", `{"text":"a","arr":[1]}`), 400, "'array'")
		expect(t, e.do("POST", "/tables/todoitem", `{"newprop":null}`), 400, "Unable to insert a null value for new property 'newprop'")
		expect(t, e.do("POST", "/tables/todoitem", `{"__x":1}`), 400, "Properties that begin with a '__' are considered system properties")
		expect(t, e.do("POST", "/tables/todoitem", `{"a-b":1}`), 400, "is invalid")
		expect(t, e.do("POST", "/tables/todoitem", `{"text":5}`), 400, "must be of type string")
		expect(t, e.do("POST", "/tables/strict", `{"title":"ok","n":1}`), 201)
		expect(t, e.do("POST", "/tables/strict", `{"title":"ok","other":1}`), 400, "not in the table schema")
		for _, bad := range []string{``, `[]`, `"x"`, `{`, `{"a":1}{"b":2}`, `null`} {
			expect(t, e.do("POST", "/tables/todoitem", bad), 400)
		}
		// A failed insert leaves nothing behind.
		r = e.do("GET", "/tables/strict?$inlinecount=allpages", "", "v2")
		expect(t, r, 200, `"count":1`)
	})
}

func TestQueries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		for i, title := range []string{"American Beauty", "Amélie", "Brazil", "alien", "Zulu", "Ägypten"} {
			expect(t, e.do("POST", "/tables/movies", fmt.Sprintf(`{"id":"m%d","title":%q,"year":%d,"released":"%d-06-01T00:00:00.000Z"}`, i, title, 1990+i, 1990+i), "v2"), 201)
		}
		titles := func(r res) string {
			var out []string
			for _, m := range r.list(t) {
				out = append(out, fmt.Sprint(m["title"]))
			}
			return strings.Join(out, "|")
		}
		get := func(q string) res {
			return e.do("GET", "/tables/movies?"+q, "", "v2")
		}
		if got := titles(get("$orderby=title")); got != "Ägypten|alien|Amélie|American Beauty|Brazil|Zulu" {
			t.Fatalf("culture-aware order: %s", got)
		}
		if got := titles(get("$filter=" + url.QueryEscape("year ge 1992 and startswith(title,'B') or title eq 'Zulu'") + "&$orderby=" + url.QueryEscape("year desc"))); got != "Zulu|Brazil" {
			t.Fatalf("filter: %s", got)
		}
		if got := titles(get("$filter=" + url.QueryEscape("year(released) eq 1991"))); got != "Amélie" {
			t.Fatalf("date part: %s", got)
		}
		if got := titles(get("$orderby=year&$top=2&$skip=1")); got != "Amélie|Brazil" {
			t.Fatalf("paging: %s", got)
		}
		r := get("$orderby=year&$top=2")
		if link := r.header.Get("Link"); !strings.HasPrefix(link, "</tables/movies?") || !strings.Contains(link, "%24skip=2") || !strings.HasSuffix(link, ">; rel=next") {
			t.Fatalf("Link header %q", link)
		}
		r = get("$select=title,year&$filter=" + url.QueryEscape("title eq 'Brazil'"))
		if m := r.list(t); len(m) != 1 || len(m[0]) != 2 || m[0]["year"] != float64(1992) {
			t.Fatalf("select: %s", r.body)
		}
		r = get("$inlinecount=allpages&$top=1&$filter=" + url.QueryEscape("year gt 1991"))
		expect(t, r, 200, `"count":4`, `"results":[`)
		r = e.do("GET", "/tables/movies?$top=0&$inlinecount=allpages", "", "v2")
		expect(t, r, 200, `"count":6`, `"results":[]`)
		bad := []struct{ q, want string }{
			{"$filter=" + url.QueryEscape("title eq 'x"), "position"},
			{"$filter=" + url.QueryEscape("nosuch eq 1"), "unknown column 'nosuch'"},
			{"$orderby=" + url.QueryEscape("title; DROP TABLE x"), "$orderby"},
			{"$select=" + url.QueryEscape("title,\"x"), "$select"},
			{"$top=1001", "You cannot request more than 1000 records"},
			{"$top=abc", "must be a number"},
			{"$top=-1", "greater or equal to 0"},
			{"$foo=1", "Invalid query parameter name '$foo'"},
			{"__bar=1", "Invalid query parameter name '__bar'"},
			{"__systemProperties=bogus", "not a supported system property"},
			{"$filter=" + url.QueryEscape("title eq 'a' or 1 eq 1) --"), "position"},
		}
		for _, b := range bad {
			expect(t, e.do("GET", "/tables/movies?"+b.q, ""), 400, b.want)
		}
		// The injected text is data, not SQL: the table still works.
		expect(t, get("$filter="+url.QueryEscape("title eq 'x'' or ''1''=''1'")), 200)
		if r := get("$filter=" + url.QueryEscape("title eq 'x'' or ''1''=''1'")); r.body != "[]" {
			t.Fatalf("quote injection matched rows: %s", r.body)
		}
		expect(t, e.do("GET", "/tables/movies/m1?$top=1", ""), 400, "cannot be applied to id queries")
		expect(t, e.do("GET", "/tables/movies?noScript=true", ""), 401)
	})
}

func TestPermissionsWalkthrough(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		expect(t, e.do("GET", "/tables/foo", "", "X-ZUMO-AUTH", "randomgoop"), 401, "Invalid token format. Expected Envelope.Claims.Signature.")
		expect(t, e.do("GET", "/tables/foo", ""), 401, "Unauthorized")
		expect(t, e.do("POST", "/tables/foo", `{"title":"Jaws","year":1975}`), 201)
		expect(t, e.do("GET", "/tables/foo", "", "X-ZUMO-AUTH", e.token("custom:123")), 200, `"title":"Jaws"`)
		expect(t, e.do("GET", "/tables/secret", ""), 401)
		expect(t, e.do("GET", "/tables/secret", "", "X-ZUMO-AUTH", e.token("custom:1")), 401)
		expect(t, e.do("GET", "/tables/secret", "", "X-ZUMO-MASTER", masterKey), 200)
		expect(t, e.do("GET", "/tables/app", ""), 401)
		expect(t, e.do("GET", "/tables/app", "", "X-ZUMO-APPLICATION", appKey), 200)
		// Unknown tables are not disclosed to non-admins.
		expect(t, e.do("GET", "/tables/nosuchtable", ""), 401)
		expect(t, e.do("GET", "/tables/nosuchtable", "", "X-ZUMO-MASTER", masterKey), 404, "Table 'nosuchtable' does not exist.")
		expect(t, e.do("GET", "/tables/no;such", "", "X-ZUMO-MASTER", masterKey), 404)
		expect(t, e.do("GET", "/tables/"+url.PathEscape(`x" OR 1=1 --`), "", "X-ZUMO-MASTER", masterKey), 404)
		expect(t, e.do("GET", "/tables/", ""), 404)
	})
}

// TestMFAPermission: operations marked "mfa" need a token whose amr shows a multi-factor sign-in.
func TestMFAPermission(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		mint := func(amr ...string) string {
			tok, _, err := e.minter.Mint(auth.MintRequest{UserID: "custom:7", AMR: amr})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		pwd, multi := mint("pwd"), mint("hwk", "mfa")
		expect(t, e.do("POST", "/tables/vault", `{"x":1}`, "X-ZUMO-AUTH", pwd), 403, "requires multi-factor sign-in")
		expect(t, e.do("POST", "/tables/vault", `{"x":1}`, "X-ZUMO-AUTH", pwd, "v2"), 403, "requires multi-factor sign-in")
		expect(t, e.do("POST", "/tables/vault", `{"x":1}`), 401)
		expect(t, e.do("POST", "/tables/vault", `{"x":1}`, "X-ZUMO-APPLICATION", appKey), 401)
		expect(t, e.do("POST", "/tables/vault", `{"id":"a","x":1}`, "X-ZUMO-AUTH", multi), 201)
		expect(t, e.do("GET", "/tables/vault", "", "X-ZUMO-AUTH", pwd), 200, `"x":1`)
		expect(t, e.do("DELETE", "/tables/vault/a", "", "X-ZUMO-AUTH", mint()), 403, "requires multi-factor sign-in")
		expect(t, e.do("DELETE", "/tables/vault/a", "", "X-ZUMO-AUTH", multi), 204)
	})
}

// TestPerUserIsolation tries every way for user B to see or change user A's rows.
func TestPerUserIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		alice, bob := e.token("custom:alice"), e.token("custom:bob")
		expect(t, e.do("POST", "/tables/notes", `{"id":"a1","text":"alice secret"}`, "X-ZUMO-AUTH", alice), 201, `"userId":"custom:alice"`)
		expect(t, e.do("POST", "/tables/notes", `{"id":"a2","text":"alice forged","userId":"custom:bob"}`, "X-ZUMO-AUTH", alice), 400, "set by the server")
		expect(t, e.do("POST", "/tables/notes", `{"id":"b1","text":"bob note"}`, "X-ZUMO-AUTH", bob, "v2"), 201)
		expect(t, e.do("GET", "/tables/notes", ""), 401)

		reads := []string{
			"/tables/notes",
			"/tables/notes?$filter=" + url.QueryEscape("userId eq 'custom:alice'"),
			"/tables/notes?$filter=" + url.QueryEscape("userId eq 'custom:alice' or true"),
			"/tables/notes?$filter=" + url.QueryEscape("true or userId ne 'x'"),
			"/tables/notes?$filter=" + url.QueryEscape("(userId ne null) or (1 eq 1)"),
			"/tables/notes?$select=text,userId",
			"/tables/notes?__includeDeleted=true&$inlinecount=allpages",
			"/tables/notes?$orderby=userId",
		}
		for _, p := range reads {
			for _, v := range [][]string{{"X-ZUMO-AUTH", bob}, {"X-ZUMO-AUTH", bob, "v2"}} {
				r := e.do("GET", p, "", v...)
				expect(t, r, 200)
				if strings.Contains(r.body, "alice") {
					t.Fatalf("%s leaked alice's row to bob: %s", p, r.body)
				}
			}
		}
		if r := e.do("GET", "/tables/notes?$inlinecount=allpages", "", "X-ZUMO-AUTH", bob); !strings.Contains(r.body, `"count":1`) {
			t.Fatalf("count leaks other users' rows: %s", r.body)
		}
		for _, v := range [][]string{{"X-ZUMO-AUTH", bob}, {"X-ZUMO-AUTH", bob, "v2"}} {
			expect(t, e.do("GET", "/tables/notes/a1", "", v...), 404)
			expect(t, e.do("PATCH", "/tables/notes/a1", `{"text":"pwned"}`, v...), 404)
			expect(t, e.do("PATCH", "/tables/notes/a1", `{"text":"pwned"}`, append(v, "If-Match", `"*"`)...), 404)
			expect(t, e.do("DELETE", "/tables/notes/a1", "", v...), 404)
			expect(t, e.do("POST", "/tables/notes/a1", "", v...), 404)
			// Re-inserting alice's id reveals nothing about her row.
			r := e.do("POST", "/tables/notes", `{"id":"a1","text":"mine now"}`, v...)
			expect(t, r, 409)
			if strings.Contains(r.body, "alice") {
				t.Fatalf("duplicate insert leaked the row: %s", r.body)
			}
			expect(t, e.do("PATCH", "/tables/notes/b1", `{"userId":"custom:alice"}`, v...), 400, "set by the server")
		}
		expect(t, e.do("PATCH", "/tables/notes/b1", `{"userId":"custom:bob","text":"still mine"}`, "X-ZUMO-AUTH", bob), 200)
		r := e.do("GET", "/tables/notes/a1", "", "X-ZUMO-AUTH", alice)
		expect(t, r, 200, `"text":"alice secret"`)
		// The master key sees every row.
		r = e.do("GET", "/tables/notes", "", "X-ZUMO-MASTER", masterKey)
		if l := r.list(t); len(l) != 2 {
			t.Fatalf("admin sees %s", r.body)
		}
	})
}

func TestBodyLimitAndMethods(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		big := `{"text":"` + strings.Repeat("x", 2<<20) + `"}`
		expect(t, e.do("POST", "/tables/todoitem", big), 413)
		expect(t, e.do("GET", "/tables/todoitem", ""), 200)
		expect(t, e.do("DELETE", "/tables/todoitem", ""), 405)
		expect(t, e.do("PATCH", "/tables/todoitem/x", `{"text":"a"}`, "If-Match", `"a", "b"`), 400, "Only single etag")
		expect(t, e.do("PATCH", "/tables/todoitem/x", `{"text":"a"}`, "If-Match", `abc`), 400, "Invalid 'if-match' header.")
	})
}
