package appdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/auth"
)

func write(t *testing.T, dir string, files map[string]string) {
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

func TestLoadOriginalLayout(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"datamodel.json": "\xef\xbb\xbf" + `{"tables":[{"name":"TodoItem","permissions":{"insert":"application","read":"Application","update":"user","delete":"admin"}},
			{"name":"movies","permissions":{"*":"public"},"softDelete":true,"idType":"integer","columns":{"title":"String","year":"number"}}],
			"jobs":[{"name":"cleanup"}], "portalStuff": 1}`,
		"service/x.txt":          "ignored",
		"table/Secret.json":      `{"routes":{"*":{"read":{"permission":"authenticated"},"*":{"permission":"admin"}}},"perUser":true}`,
		"table/todoitem.json":    `{"routes":{"/":{"read":{"permission":"public"}}}}`,
		"table/orders.insert.js": "function insert(item, user, request) { request.execute(); }",
		"api/hello.json":         `{"routes":{"*":{"get":{"permission":"public"},"post":{"permission":"user"}},"/admin/stuff":{"*":{"permission":"admin"}},"/open":{"*":{"permission":"public"}}}}`,
		"api/noperm.js":          "exports.get = function(req, res) {}",
		"scheduler/nightly.js":   "function nightly() {}",
	})
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	todo, ok := a.Table("TODOITEM")
	if !ok || todo.Name != "TodoItem" {
		t.Fatalf("table lookup: %+v", todo)
	}
	wantTodo := map[Operation]auth.Permission{Insert: auth.Application, Read: auth.Public, Update: auth.User, Delete: auth.Admin}
	for op, p := range wantTodo {
		if todo.Permission(op) != p {
			t.Errorf("TodoItem %s = %s, want %s (table file overrides datamodel)", op, todo.Permission(op), p)
		}
	}
	movies, _ := a.Table("movies")
	if movies.Permission(Delete) != auth.Public || movies.Options.IDType != "integer" || !*movies.Options.SoftDelete || movies.Options.Columns["title"] != "string" {
		t.Errorf("movies: %+v", movies)
	}
	secret, _ := a.Table("secret")
	if secret.Permission(Read) != auth.User || secret.Permission(Insert) != auth.Admin || !*secret.Options.PerUser {
		t.Errorf("secret: %+v", secret)
	}
	orders, ok := a.Table("orders")
	if !ok || orders.Permission(Read) != auth.Admin {
		t.Errorf("script-only table should exist with admin permissions: %+v", orders)
	}
	hello, _ := a.API("Hello")
	for _, c := range []struct {
		path, method string
		want         auth.Permission
	}{
		{"", "GET", auth.Public}, {"/", "post", auth.User}, {"", "DELETE", auth.Admin},
		{"/admin/stuff/", "GET", auth.Admin}, {"open", "PATCH", auth.Public}, {"unknown/sub", "GET", auth.Public},
	} {
		if got := hello.RoutePermission(ParsePattern(c.path), c.method); got != c.want {
			t.Errorf("hello %s %q = %s, want %s", c.method, c.path, got, c.want)
		}
	}
	noperm, ok := a.API("noperm")
	if !ok || noperm.RoutePermission(Pattern{}, "GET") != auth.Admin {
		t.Errorf("API without metadata must be admin-only")
	}
	if _, ok := a.Job("Nightly"); !ok {
		t.Error("scheduler job not found")
	}
	if _, ok := a.Job("cleanup"); !ok {
		t.Error("datamodel job not found")
	}
	if len(a.Tables()) != 4 || len(a.APIs()) != 2 {
		t.Errorf("tables %d apis %d", len(a.Tables()), len(a.APIs()))
	}
}

func TestServiceSubdirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"service/table/items.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`})
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if it, ok := a.Table("items"); !ok || it.Permission(Read) != auth.Public {
		t.Fatalf("service/ layout not read: %+v", it)
	}
}

func TestMalformedFilesNameFileAndKey(t *testing.T) {
	cases := []struct {
		name, file, body, wantKey string
	}{
		{"not json", "datamodel.json", `{"tables":`, ""},
		{"tables not array", "datamodel.json", `{"tables":{}}`, "tables"},
		{"bad permission", "datamodel.json", `{"tables":[{"name":"t","permissions":{"read":"everyone"}}]}`, "tables[0].permissions.read"},
		{"bad op", "datamodel.json", `{"tables":[{"name":"t","permissions":{"select":"public"}}]}`, "tables[0].permissions.select"},
		{"bad table name", "datamodel.json", `{"tables":[{"name":"drop table;"}]}`, "tables[0].name"},
		{"bad option type", "datamodel.json", `{"tables":[{"name":"t","softDelete":"yes"}]}`, "tables[0].softDelete"},
		{"bad id type", "table/t.json", `{"idType":"uuid"}`, ""},
		{"bad column type", "table/t.json", `{"columns":{"a":"blob"}}`, ""},
		{"extra leaf key", "api/a.json", `{"routes":{"*":{"get":{"permission":"public","cache":true}}}}`, "routes.*.get.cache"},
		{"leaf not string", "api/a.json", `{"routes":{"*":{"get":{"permission":5}}}}`, "routes.*.get.permission"},
		{"api unknown top key", "api/a.json", `{"route":{}}`, "route"},
		{"table bad route", "table/t.json", `{"routes":{"/sub":{"read":{"permission":"public"}}}}`, "routes.sub"},
		{"bad api name", "api/a-b.json", `{}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{tc.file: tc.body})
			_, err := Load(dir)
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FileError", err)
			}
			if !strings.HasSuffix(fe.File, filepath.FromSlash(tc.file)) || fe.Key != tc.wantKey {
				t.Fatalf("error names %s key %q, want %s key %q (%v)", fe.File, fe.Key, tc.file, tc.wantKey, err)
			}
			if !strings.Contains(err.Error(), "Invalid metadata file") {
				t.Fatalf("message %q", err)
			}
		})
	}
}

func TestLoadMissingDir(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("missing app directory accepted")
	}
}
