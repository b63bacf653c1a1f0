package console

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/scriptstore"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const xss = `<script>alert("x")</script>`

// apiGetMaster reads an app route with the master key.
func (h *harness) apiGetMaster(t *testing.T, path string) (int, string) {
	t.Helper()
	return h.apiGetAs(t, path, "X-ZUMO-MASTER", testMaster)
}

// apiGet reads /tables as a client with the application key.
func (h *harness) apiGet(t *testing.T, path string) (int, string) {
	t.Helper()
	return h.apiGetAs(t, path, "X-ZUMO-APPLICATION", testApp)
}

func (h *harness) apiGetAs(t *testing.T, path, header, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
	req.Header.Set(header, key)
	req.Header.Set("ZUMO-API-VERSION", "2.0.0")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

var rowLink = regexp.MustCompile(`/console/data/Items/row/([^"]+)"`)

func TestDataPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		b := h.signedIn()
		b.get("/console/data/Items/new")
		p := b.post("/console/data/Items/new", url.Values{"f.title": {xss}, "f.n": {"7"}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("insert: %d %s", p.status, p.body)
		}
		// The row is there for clients of /tables.
		code, body := h.apiGet(t, "/tables/Items")
		if code != http.StatusOK || !strings.Contains(body, `"n":7`) {
			t.Fatalf("/tables: %d %s", code, body)
		}
		var items []map[string]any
		if err := json.Unmarshal([]byte(body), &items); err != nil || len(items) != 1 || items[0]["title"] != xss {
			t.Fatalf("/tables items: %v %v", items, err)
		}
		id := items[0]["id"].(string)
		// The browser renders the value inert.
		p = b.get("/console/data/Items")
		if p.status != http.StatusOK || strings.Contains(p.body, xss) || !strings.Contains(p.body, "&lt;script&gt;") {
			t.Fatalf("browse: %d, raw script present: %v", p.status, strings.Contains(p.body, xss))
		}
		if m := rowLink.FindStringSubmatch(p.body); m == nil || m[1] != id {
			t.Fatalf("row link: %v", m)
		}
		// The filter box: a syntax error with its position.
		p = b.get("/console/data/Items?filter=" + url.QueryEscape("n gt (3"))
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, "position") || !strings.Contains(p.body, "<mark>") {
			t.Fatalf("filter error: %d %s", p.status, p.body)
		}
		p = b.get("/console/data/Items?filter=" + url.QueryEscape("n gt 3") + "&order=n&dir=desc")
		if p.status != http.StatusOK || !strings.Contains(p.body, "Rows 1–1 of 1") {
			t.Fatalf("filtered: %d", p.status)
		}
		// Edit: open the form (version v1), change it elsewhere, then save: a conflict with both versions.
		p = b.get("/console/data/Items/row/" + id)
		ver := attr(`version`, p.body)
		if p.status != http.StatusOK || ver == nil || !strings.Contains(p.body, "&lt;script&gt;") {
			t.Fatalf("edit form: %d", p.status)
		}
		req, _ := http.NewRequest(http.MethodPatch, h.ts.URL+"/tables/Items/"+id, strings.NewReader(`{"title":"theirs"}`))
		req.Header.Set("X-ZUMO-APPLICATION", testApp)
		req.Header.Set("ZUMO-API-VERSION", "2.0.0")
		req.Header.Set("Content-Type", "application/json")
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("concurrent update: %v %v", res, err)
		}
		p = b.post("/console/data/Items/row/"+id, url.Values{"version": {ver[1]}, "f.title": {"mine"}, "f.n": {"8"}})
		if p.status != http.StatusConflict || !strings.Contains(p.body, "mine") || !strings.Contains(p.body, "theirs") {
			t.Fatalf("stale edit: %d", p.status)
		}
		cur := attr(`current`, p.body)
		if cur == nil {
			t.Fatal("no current version in the conflict form")
		}
		p = b.post("/console/data/Items/row/"+id, url.Values{"version": {ver[1]}, "current": {cur[1]}, "overwrite": {"1"}, "f.title": {"mine"}, "f.n": {"8"}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("overwrite: %d %s", p.status, p.body)
		}
		if _, body := h.apiGet(t, "/tables/Items/"+id); !strings.Contains(body, `"title":"mine"`) {
			t.Fatalf("after overwrite: %s", body)
		}
		// Delete (soft), see it with deleted rows, restore.
		p = b.get("/console/data/Items/row/" + id)
		ver = attr(`version`, p.body)
		if p = b.post("/console/data/Items/row/"+id+"/delete", url.Values{"version": {ver[1]}}); p.status != http.StatusSeeOther || strings.Contains(p.header.Get("Location"), "problem") {
			t.Fatalf("delete: %d %s", p.status, p.header.Get("Location"))
		}
		if code, body := h.apiGet(t, "/tables/Items"); code != 200 || body != "[]" {
			t.Fatalf("after delete: %s", body)
		}
		if p = b.get("/console/data/Items?deleted=1"); !strings.Contains(p.body, "deleted") || !strings.Contains(p.body, "Restore") {
			t.Fatal("deleted row not shown on request")
		}
		if p = b.post("/console/data/Items/row/"+id+"/undelete", url.Values{}); p.status != http.StatusSeeOther {
			t.Fatalf("undelete: %d", p.status)
		}
		// Export.
		if p = b.get("/console/data/Items/export?format=csv"); p.status != 200 || !strings.Contains(p.body, "mine") {
			t.Fatalf("export: %d %s", p.status, p.body)
		}
		acts := strings.Join(h.auditActions(t), "\n")
		for _, want := range []string{"row.insert Items/" + id, "row.update Items/" + id, "row.delete", "row.undelete", "rows.export"} {
			if !strings.Contains(acts, want) {
				t.Errorf("audit lacks %q:\n%s", want, acts)
			}
		}
	})
}

func TestSchemaPermissions(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	b := h.signedIn()
	b.get("/console/schema")
	p := b.post("/console/schema", url.Values{"name": {"Books"}, "idType": {"integer"}, "softDelete": {"1"},
		"perm.read": {"application"}, "perm.insert": {"application"}, "perm.update": {"application"}, "perm.delete": {"admin"},
		"col0": {"title"}, "type0": {"string"}, "col1": {"year"}, "type1": {"number"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", p.status, p.body)
	}
	if code, _ := h.apiGet(t, "/tables/Books"); code != http.StatusOK {
		t.Fatalf("/tables/Books: %d", code)
	}
	// An invalid column name is refused with the table API's message, escaped.
	p = b.post("/console/schema/Books", url.Values{"action": {"column"}, "column": {xss}, "type": {"string"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("bad column: %d", p.status)
	}
	p = b.get(p.header.Get("Location"))
	if strings.Contains(p.body, xss) || !strings.Contains(p.body, "&lt;script&gt;") {
		t.Fatal("column name not escaped in the error")
	}
	p = b.post("/console/schema/Books", url.Values{"action": {"permissions"}, "perm.read": {"admin"}, "perm.insert": {"application"},
		"perm.update": {"application"}, "perm.delete": {"admin"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("permissions: %d", p.status)
	}
	if code, _ := h.apiGet(t, "/tables/Books"); code != http.StatusUnauthorized {
		t.Fatalf("/tables/Books after read=admin: %d", code)
	}
	list, _ := h.trail.List(context.Background(), auditFilterAction("table.permissions"))
	if len(list) != 1 || !strings.Contains(string(list[0].Before), `"read":"application"`) || !strings.Contains(string(list[0].After), `"read":"admin"`) {
		t.Fatalf("permission audit: %+v", list)
	}
}

func TestScriptsPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		h.activity.events = []Event{{ID: 1, Time: time.Now(), Kind: "script", Level: "error", Source: "table/items.insert.js", Message: xss}}
		b := h.signedIn()
		p := b.get("/console/scripts")
		if p.status != http.StatusOK || !strings.Contains(p.body, "table/items.insert.js") || !strings.Contains(p.body, "hello") || strings.Contains(p.body, "in the console") {
			t.Fatalf("scripts: %d", p.status)
		}
		p = b.get("/console/scripts/table/items.insert.js")
		if p.status != http.StatusOK || strings.Contains(p.body, xss) || !strings.Contains(p.body, "&lt;script&gt;alert") {
			t.Fatalf("script page: %d, raw log line: %v", p.status, strings.Contains(p.body, xss))
		}
		file := filepath.Join(h.appDir, "table", "items.insert.js")
		deployed, _ := os.ReadFile(file)
		p = b.post("/console/scripts/table/items.insert.js", url.Values{"source": {"function insert(item, user, request) {\n  request.execute(;\n}\n"}})
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "table/items.insert.js:2:") {
			t.Fatalf("syntax error: %d %s", p.status, p.body)
		}
		if list, _ := h.trail.List(context.Background(), auditFilterAction("script.save")); len(list) != 0 {
			t.Fatal("a script with a syntax error was stored")
		}
		good := "function insert(item, user, request) { item.n = 42; request.execute(); }\n"
		if p = b.post("/console/scripts/table/items.insert.js", url.Values{"source": {good}}); p.status != http.StatusSeeOther {
			t.Fatalf("save: %d %s", p.status, p.body)
		}
		if !strings.Contains(insertItem(t, h), `"n":42`) {
			t.Fatal("the new script does not serve")
		}
		// The edit lives in the database: the deployed file is untouched.
		if now, _ := os.ReadFile(file); string(now) != string(deployed) {
			t.Fatal("the save wrote the app folder")
		}
		list, _ := h.trail.List(context.Background(), auditFilterAction("script.save"))
		if len(list) != 1 || list[0].Actor != adminEmail || list[0].Via != "console" || !strings.Contains(string(list[0].After), "item.n = 42") ||
			!strings.Contains(string(list[0].Before), "request.execute()") {
			t.Fatalf("audit: %+v", list)
		}
		// The list and the page mark the edit; the history lists it.
		if p = b.get("/console/scripts"); !strings.Contains(p.body, "edited in the console") {
			t.Fatal("the list does not mark the edit")
		}
		p = b.get("/console/scripts/table/items.insert.js")
		if !strings.Contains(p.body, "overrides the deployed file") || !strings.Contains(p.body, "in force") || !strings.Contains(p.body, "Revert to the deployed file") {
			t.Fatalf("script page after the edit: %s", p.body)
		}
		first := regexp.MustCompile(`\?revision=(\d+)`).FindStringSubmatch(p.body)
		if first == nil {
			t.Fatal("no revision link")
		}
		// A second edit, then the first one restored from the history.
		if p = b.post("/console/scripts/table/items.insert.js", url.Values{"source": {"function insert(item, user, request) { item.n = 7; request.execute(); }\n"}}); p.status != http.StatusSeeOther {
			t.Fatalf("second save: %d", p.status)
		}
		if !strings.Contains(insertItem(t, h), `"n":7`) {
			t.Fatal("the second edit does not serve")
		}
		if p = b.get("/console/scripts/table/items.insert.js?revision=" + first[1]); p.status != http.StatusOK || !strings.Contains(p.body, "item.n = 42") || !strings.Contains(p.body, "Restore revision") {
			t.Fatalf("revision page: %d", p.status)
		}
		if p = b.post("/console/scripts/table/items.insert.js", url.Values{"do": {"restore"}, "revision": {first[1]}}); p.status != http.StatusSeeOther {
			t.Fatalf("restore: %d %s", p.status, p.body)
		}
		if !strings.Contains(insertItem(t, h), `"n":42`) {
			t.Fatal("the restored revision does not serve")
		}
		// The deployed file changes: the page warns.
		if err := os.WriteFile(file, []byte("function insert(item, user, request) { item.n = 1; request.execute(); }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if p = b.get("/console/scripts/table/items.insert.js"); !strings.Contains(p.body, "deployed file changed after this edit") {
			t.Fatal("no drift warning")
		}
		// Revert: the deployed file serves again.
		if p = b.post("/console/scripts/table/items.insert.js", url.Values{"do": {"revert"}}); p.status != http.StatusSeeOther {
			t.Fatalf("revert: %d %s", p.status, p.body)
		}
		if !strings.Contains(insertItem(t, h), `"n":1`) {
			t.Fatal("the deployed file does not serve after the revert")
		}
		for _, action := range []string{"script.restore", "script.revert"} {
			if list, _ := h.trail.List(context.Background(), auditFilterAction(action)); len(list) != 1 || list[0].Actor != adminEmail {
				t.Fatalf("%s audit: %+v", action, list)
			}
		}
		// A new script the folder lacks.
		if p = b.get("/console/scripts/api/fresh.js"); p.status != http.StatusNotFound {
			t.Fatalf("unknown script: %d", p.status)
		}
		if p = b.get("/console/scripts/api/fresh.js?new=1"); p.status != http.StatusOK || !strings.Contains(p.body, "A new script") {
			t.Fatalf("new script page: %d", p.status)
		}
		if p = b.post("/console/scripts/api/fresh.js", url.Values{"source": {"exports.get = function (req, res) { res.send(200, 'fresh'); };"}}); p.status != http.StatusSeeOther {
			t.Fatalf("new script: %d %s", p.status, p.body)
		}
		if code, body := h.apiGetMaster(t, "/api/fresh"); code != http.StatusOK || !strings.Contains(body, "fresh") {
			t.Fatalf("new API: %d %s", code, body)
		}
		if p = b.get("/console/scripts"); !strings.Contains(p.body, "added in the console") {
			t.Fatal("the list does not mark the added script")
		}
		// Limits and refusals.
		if p = b.post("/console/scripts/api/hello.js", url.Values{"source": {strings.Repeat("/", scriptstore.MaxSource+1)}}); p.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("too large: %d", p.status)
		}
		if p = b.post("/console/scripts/api/hello.js", url.Values{"do": {"revert"}}); p.status != http.StatusNotFound {
			t.Fatalf("revert without an edit: %d", p.status)
		}
		// Paths outside the scripts are refused.
		for _, bad := range []string{"../datamodel.json", "table/../../x.js", "node_modules/x.js", "table/.hidden.js", "extensions/startup.js"} {
			if p := b.get("/console/scripts/" + bad); p.status != http.StatusNotFound {
				t.Errorf("%s: %d", bad, p.status)
			}
		}
	})
}

// TestScriptsReadOnlyFolder: an app folder the server cannot write does not stop edits, which live in
// the database; a save writes nothing there (checked by its listing and times, which also holds when
// the test runs as root, for whom the mode bits do not bind).
func TestScriptsReadOnlyFolder(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	snapshot := func() string {
		var out []string
		_ = filepath.WalkDir(h.appDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				info, _ := d.Info()
				out = append(out, p+" "+info.ModTime().String())
			}
			return nil
		})
		return strings.Join(out, "\n")
	}
	for _, d := range []string{h.appDir, filepath.Join(h.appDir, "table")} {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(d, 0o755) })
	}
	before := snapshot()
	b := h.signedIn()
	if p := b.post("/console/scripts/table/items.insert.js", url.Values{"source": {"function insert(item, user, request) { item.n = 5; request.execute(); }\n"}}); p.status != http.StatusSeeOther {
		t.Fatalf("save into a read-only folder: %d %s", p.status, p.body)
	}
	if !strings.Contains(insertItem(t, h), `"n":5`) {
		t.Fatal("the edit does not serve")
	}
	if after := snapshot(); after != before {
		t.Fatalf("the app folder changed:\n%s\n---\n%s", before, after)
	}
}

// insertItem inserts a row into Items with the application key and returns the response body.
func insertItem(t *testing.T, h *harness) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/tables/Items", strings.NewReader(`{"title":"a"}`))
	req.Header.Set("X-ZUMO-APPLICATION", testApp)
	req.Header.Set("ZUMO-API-VERSION", "2.0.0")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return string(body)
}

func TestLogsInertAndHeaders(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	h.activity.events = []Event{{ID: 3, Time: time.Now(), Kind: "request", Status: 500, Method: "GET", Path: "/api/" + xss, Route: "/api/{name}"},
		{ID: 4, Time: time.Now(), Kind: "script", Level: "info", Source: "api/hello.js", Message: xss}}
	b := h.signedIn()
	for _, path := range []string{"/console/logs", "/console/audit", "/console/jobs", "/console/keys", "/console/account", "/console/schema", "/console/data"} {
		p := b.get(path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: %d", path, p.status)
		}
		if strings.Contains(p.body, xss) {
			t.Errorf("%s renders a raw script", path)
		}
		csp := p.header.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s CSP %q lacks %s", path, csp, want)
			}
		}
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") || strings.Contains(p.body, "onclick") {
			t.Errorf("%s has inline script or style", path)
		}
		if p.header.Get("X-Frame-Options") != "DENY" || p.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s headers: %v", path, p.header)
		}
	}
	p := b.get("/console/logs/tail")
	var ev []Event
	if err := json.Unmarshal([]byte(p.body), &ev); err != nil || len(ev) != 2 || p.header.Get("Content-Type") != "application/json" {
		t.Fatalf("tail: %v %s", err, p.body)
	}
}

func auditFilterAction(a string) audit.Filter { return audit.Filter{Action: a} }

// attr is the value of the hidden input name in a page, unescaped as a browser reads it.
func attr(name, body string) []string {
	m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(body)
	if m != nil {
		m[1] = html.UnescapeString(m[1])
	}
	return m
}

// TestJobSchedules: the Jobs page's schedule form (CSRF-protected, labelled) sets a job's interval,
// disables it, returns to the configured schedule; bad input is a problem notice; each change is one
// audit entry by the administrator.
func TestJobSchedules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		b := h.signedIn()
		p := b.get("/console/jobs")
		for _, want := range []string{`action="/console/jobs/cleanup/schedule"`, `<label for="every-cleanup" class="sr">Interval of cleanup</label>`,
			`placeholder="1h"`, `name="enabled" value="1" checked`, "Next run", "2026-12-04 13:00"} {
			if !strings.Contains(p.body, want) {
				t.Fatalf("jobs page lacks %s:\n%s", want, p.body)
			}
		}
		effective := func() string {
			t.Helper()
			list, err := h.c.o.Jobs.Schedules.Effective(context.Background(), h.c.o.Jobs.Defs())
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%v %v %s", list[0].Every, list[0].Enabled, list[0].Source)
		}
		// Without the form's token: refused, nothing changed.
		if p := b.post("/console/jobs/cleanup/schedule", url.Values{"_csrf": {"forged"}, "every": {"15m"}, "enabled": {"1"}}); p.status != http.StatusForbidden {
			t.Fatalf("forged: %d", p.status)
		}
		if p := b.post("/console/jobs/cleanup/schedule", url.Values{"every": {"15m"}, "enabled": {"1"}}); p.status != http.StatusSeeOther ||
			!strings.Contains(p.header.Get("Location"), "notice=") || strings.Contains(p.header.Get("Location"), "problem") {
			t.Fatalf("save: %d %s", p.status, p.header.Get("Location"))
		}
		if got := effective(); got != "15m0s true database" {
			t.Fatalf("after save: %s", got)
		}
		p = b.get("/console/jobs")
		if !strings.Contains(p.body, `value="15m"`) || !strings.Contains(p.body, "set by "+adminEmail) || !strings.Contains(p.body, "Use configured") {
			t.Fatalf("page after save:\n%s", p.body)
		}
		if p := b.post("/console/jobs/cleanup/schedule", url.Values{"every": {"30s"}, "enabled": {"1"}}); p.status != http.StatusSeeOther ||
			!strings.Contains(p.header.Get("Location"), "problem=") {
			t.Fatalf("bad interval: %d %s", p.status, p.header.Get("Location"))
		}
		// Unchecked and empty: the configured interval, disabled.
		if p := b.post("/console/jobs/cleanup/schedule", url.Values{"every": {""}}); p.status != http.StatusSeeOther {
			t.Fatalf("disable: %d", p.status)
		}
		if got := effective(); got != "1h0m0s false database" {
			t.Fatalf("after disable: %s", got)
		}
		if p := b.get("/console/jobs"); !strings.Contains(p.body, "every 1h, disabled") || strings.Contains(p.body, `value="1" checked`) {
			t.Fatalf("page after disable:\n%s", p.body)
		}
		if p := b.post("/console/jobs/cleanup/schedule", url.Values{"reset": {"1"}}); p.status != http.StatusSeeOther {
			t.Fatalf("reset: %d", p.status)
		}
		if got := effective(); got != "1h0m0s true configuration" {
			t.Fatalf("after reset: %s", got)
		}
		if p := b.post("/console/jobs/nothere/schedule", url.Values{"every": {"1h"}}); p.status != http.StatusNotFound {
			t.Fatalf("undeclared job: %d", p.status)
		}
		var sched []string
		for _, a := range h.auditActions(t) {
			if strings.HasPrefix(a, "job.schedule") {
				sched = append(sched, a)
			}
		}
		if len(sched) != 3 || sched[0] != "job.schedule cleanup by "+adminEmail {
			t.Fatalf("audit: %v", sched)
		}
	})
}
