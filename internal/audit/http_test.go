package audit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct{ method, path, action, target string }{
		{"POST", "/admin/tokens", "token.mint", ""},
		{"POST", "/admin/tables", "table.create", ""},
		{"PATCH", "/admin/tables/Todo%20Items", "table.alter", "Todo Items"},
		{"DELETE", "/admin/tables/todo/", "table.drop", "todo"},
		{"POST", "/admin/keys/rotate", "keys.rotate", ""},
		{"POST", "/admin/users/Google:123/disable", "user.disable", "Google:123"},
		{"POST", "/admin/accounts", "account.create", ""},
		{"POST", "/admin/accounts/import", "account.import", ""},
		{"POST", "/admin/accounts/a%40b.c/password", "account.password", "a@b.c"},
		{"PUT", "/admin/scripts/table/todo.insert.js", "script.update", "table/todo.insert.js"},
		{"POST", "/tables/todo", "row.insert", "todo"},
		{"PATCH", "/tables/todo/1", "row.update", "todo/1"},
		{"DELETE", "/tables/todo/1", "row.delete", "todo/1"},
		{"POST", "/tables/todo/1", "row.undelete", "todo/1"},
		{"POST", "/jobs/cleanup", "job.run", "cleanup"},
	} {
		a, tg, ok := audit.Classify(c.method, c.path)
		if !ok || a != c.action || tg != c.target {
			t.Errorf("%s %s: %q %q %v, want %q %q", c.method, c.path, a, tg, ok, c.action, c.target)
		}
	}
	for _, c := range [][2]string{{"POST", "/api/hello"}, {"POST", "/login/google"}, {"POST", "/tables"}, {"GET", "/tables/todo/1"}, {"POST", "/"}, {"POST", "/jobs"}} {
		if a, _, ok := audit.Classify(c[0], c[1]); ok && c[0] == "POST" {
			t.Errorf("%s %s classified as %q", c[0], c[1], a)
		}
	}
}

func FuzzClassify(f *testing.F) {
	for _, p := range []string{"/admin/tables/x", "/tables/a/b", "//admin//users/%zz/disable", "/jobs/j", "/admin", "/a/b/c/d/e/f/g/h/i/j"} {
		f.Add("POST", p)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		a, tg, ok := audit.Classify(method, path)
		if ok && (a == "" || !strings.Contains(a, ".")) {
			t.Fatalf("%s %s: action %q target %q", method, path, a, tg)
		}
	})
}

type memRecorder struct {
	entries []audit.Entry
	err     error
}

func (m *memRecorder) Record(_ context.Context, e audit.Entry) error {
	if m.err != nil {
		return m.err
	}
	m.entries = append(m.entries, e)
	return nil
}

func TestMiddleware(t *testing.T) {
	rec := &memRecorder{}
	var logs bytes.Buffer
	mw := &audit.Middleware{Recorder: rec, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/bad") {
			httpx.Error(w, r, http.StatusBadRequest, "no")
			return
		}
		if strings.HasSuffix(r.URL.Path, "/noop") {
			audit.NoChange(r.Context())
		}
		audit.Annotate(r.Context(), func(e *audit.Entry) { e.After = audit.Snapshot(map[string]string{"name": "x", "password": "hunter2"}) })
		w.WriteHeader(http.StatusNoContent)
	}))
	serve := func(method, path string, c auth.Caller, p *audit.Principal) {
		r := httptest.NewRequest(method, path, nil)
		ctx := httpx.WithCaller(r.Context(), &c)
		ctx = httpx.WithInfo(ctx, &httpx.Info{RequestID: "rid"})
		if p != nil {
			ctx = audit.WithPrincipal(ctx, *p)
		}
		h.ServeHTTP(httptest.NewRecorder(), r.WithContext(ctx))
	}
	admin := auth.Caller{Level: auth.AdminLevel}
	serve("POST", "/admin/tables", admin, nil)
	serve("GET", "/admin/tables", admin, nil)                     // a read
	serve("POST", "/admin/tables/bad", admin, nil)                // refused
	serve("POST", "/admin/tables/noop", admin, nil)               // nothing changed
	serve("POST", "/tables/todo", auth.Caller{AppKey: true}, nil) // an app client, not an administrator
	serve("PATCH", "/tables/todo/1", auth.Caller{}, &audit.Principal{Actor: "owner@example.com", Via: audit.ViaConsole})
	if len(rec.entries) != 2 {
		t.Fatalf("entries: %+v", rec.entries)
	}
	e := rec.entries[0]
	if e.Actor != "master-key" || e.Via != "admin-api" || e.Action != "table.create" || e.RequestID != "rid" || e.Remote != "192.0.2.1" {
		t.Fatalf("entry: %+v", e)
	}
	if c := rec.entries[1]; c.Actor != "owner@example.com" || c.Via != "console" || c.Action != "row.update" || c.Target != "todo/1" {
		t.Fatalf("console entry: %+v", c)
	}
	// A failed write is logged loudly, without the redacted state.
	rec.err = errors.New("database down")
	serve("DELETE", "/admin/tables/todo", admin, nil)
	if !strings.Contains(logs.String(), "audit entry lost") || !strings.Contains(logs.String(), "table.drop") || strings.Contains(logs.String(), "hunter2") {
		t.Fatalf("lost entry log: %s", logs.String())
	}
}
