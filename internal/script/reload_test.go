package script_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var reloadApp = map[string]string{
	"datamodel.json":    `{"tables":[{"name":"Boot","permissions":{"*":"public"}}]}`,
	"api/hello.json":    `{"routes":{"*":{"get":{"permission":"public"}}}}`,
	"api/hello.js":      `var v = require('../shared/version'); exports.get = function (req, res) { res.send(200, { v: v.value }); };`,
	"shared/version.js": `exports.value = 1;`,
	"extensions/startup.js": `exports.startup = function (context, done) {
    context.tables.getTable('Boot').insert({ at: 'startup' }, { success: function () { done(); }, error: done });
};`,
}

func TestHotReload(t *testing.T) {
	e := newEnv(t, nil, reloadApp)
	write := func(name, body string) {
		t.Helper()
		writeFiles(t, e.dir, map[string]string{name: body})
	}
	reload := func() error {
		t.Helper()
		_, err := e.engine.Reload(context.Background())
		return err
	}
	expect(t, e.do("GET", "/api/hello", ""), 200, `{"v":1}`)

	// Unchanged files: nothing to do.
	if changed, err := e.engine.Reload(context.Background()); changed || err != nil {
		t.Fatalf("reload without changes: %v %v", changed, err)
	}

	// A shared module changes: the new version has a fresh module cache.
	write("shared/version.js", `exports.value = 2; // changed`)
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do("GET", "/api/hello", ""), 200, `{"v":2}`)

	// A syntax error keeps the previous version serving and names the file and line.
	write("api/hello.js", "exports.get = function (req, res) {\n  res.send(200, { v: 3 );\n};")
	err := reload()
	if err == nil || !strings.Contains(err.Error(), "api/hello.js") || !strings.Contains(err.Error(), "Line 2:") {
		t.Fatalf("reload error: %v", err)
	}
	if !strings.Contains(e.logs.String(), "reload failed") {
		t.Fatal("reload failure not logged")
	}
	expect(t, e.do("GET", "/api/hello", ""), 200, `{"v":2}`)

	// Fixed: the fix serves; a new API with its permissions appears without a restart.
	write("api/hello.js", `exports.get = function (req, res) { res.send(200, { v: 'fixed' }); };`)
	write("api/extra.js", `exports.get = function (req, res) { res.send(200, 'extra'); };`)
	write("api/extra.json", `{"routes":{"*":{"get":{"permission":"application"}}}}`)
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do("GET", "/api/hello", ""), 200, `{"v":"fixed"}`)
	expect(t, e.do("GET", "/api/extra", ""), 401)
	expect(t, e.do("GET", "/api/extra", "", "X-ZUMO-APPLICATION", appKey), 200, "extra")

	// Removed: gone.
	if err := os.Remove(filepath.Join(e.dir, "api", "extra.js")); err != nil {
		t.Fatal(err)
	}
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do("GET", "/api/extra", "", "X-ZUMO-MASTER", masterKey), 404)
}

func TestStartupHook(t *testing.T) {
	e := newEnv(t, nil, reloadApp)
	if err := e.engine.Startup(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, e.do("GET", "/tables/Boot", ""), 200, `"at":"startup"`)

	writeFiles(t, e.dir, map[string]string{"extensions/startup.js": `exports.startup = function (context, done) { done(new Error('no database')); };`})
	if _, err := e.engine.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.engine.Startup(context.Background()); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("startup error: %v", err)
	}
}
