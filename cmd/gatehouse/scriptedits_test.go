package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestScriptsCLIAndAdminAPI: `gatehouse scripts` and /admin/scripts change the same edits, which a
// running server serves without a restart; a syntax error changes nothing; every change is audited
// with its surface. On PostgreSQL the CLI's notification makes the server reload at once; on SQLite
// the server's poll finds the change.
func TestScriptsCLIAndAdminAPI(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": func(testing.TB) string { return "" }, "postgres": storetest.PostgresURL} {
		t.Run(name, func(t *testing.T) {
			app := t.TempDir()
			os.MkdirAll(filepath.Join(app, "api"), 0o755)
			os.WriteFile(filepath.Join(app, "api", "hello.json"), []byte(`{"routes":{"*":{"get":{"permission":"public"}}}}`), 0o644)
			os.WriteFile(filepath.Join(app, "api", "hello.js"), []byte("exports.get = function (req, res) { res.send(200, { v: 'deployed' }); };\n"), 0o644)
			data := filepath.Join(t.TempDir(), "data")
			env := map[string]string{}
			for k, v := range opsKeys {
				env[k] = v
			}
			args := []string{"--data", data, "--app", app}
			if d := dsn(t); d != "" {
				args = append(args, "--database", d)
			}
			base, _, stop := startServer(t, args, env)
			defer stop()
			cli := func(sub ...string) (int, string, string) {
				t.Helper()
				return runCmd(t, env, append(append([]string{"scripts"}, sub...), args...)...)
			}
			serves := func(want string) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for {
					_, body := get(t, base+"/api/hello", nil)
					if strings.Contains(body, want) {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("the server answers %s, want %s", body, want)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			file := filepath.Join(t.TempDir(), "hello.js")
			os.WriteFile(file, []byte("exports.get = function (req, res) { res.send(200, { v: 'from the cli' }); };\n"), 0o644)
			if code, out, errs := cli("save", "api/hello.js", "--file", file); code != 0 || !strings.Contains(out, "api/hello.js saved: revision 1") {
				t.Fatalf("save: %d %s %s", code, out, errs)
			}
			serves(`"from the cli"`)

			// A syntax error: exit 1 with the position; nothing stored.
			os.WriteFile(file, []byte("exports.get = function (req, res) {\n  res.send(200, { v: 1 );\n};\n"), 0o644)
			if code, _, errs := cli("save", "api/hello.js", "--file", file); code != 1 || !strings.Contains(errs, "api/hello.js:2:") || !strings.Contains(errs, "nothing changed") {
				t.Fatalf("syntax error: %d %s", code, errs)
			}
			if code, out, _ := cli("list"); code != 0 || !strings.Contains(out, "api/hello.js") || !strings.Contains(out, "edited") || !strings.Contains(out, "1 ") {
				t.Fatalf("list: %d %s", code, out)
			}
			if code, out, _ := cli("show", "api/hello.js"); code != 0 || !strings.Contains(out, "from the cli") {
				t.Fatalf("show: %d %s", code, out)
			}

			// The admin API saves the next revision (raw body); the CLI's history has both.
			master := map[string]string{"X-ZUMO-MASTER": opsKeys["GATEHOUSE_MASTER_KEY"], "Content-Type": "application/javascript"}
			if code, _ := do(t, "PUT", base+"/admin/scripts/api/hello.js", "exports.get = function (req, res) { res.send(200, { v: 'from the api' }); };\n", nil); code != 401 {
				t.Fatalf("PUT without the master key: %d", code)
			}
			if code, body := do(t, "PUT", base+"/admin/scripts/api/hello.js", "exports.get = function (req, res) { res.send(200, { v: 'from the api' }); };\n", master); code != 200 {
				t.Fatalf("PUT: %d %s", code, body)
			}
			serves(`"from the api"`)
			code, out, _ := cli("history", "api/hello.js", "--json")
			var hist []struct {
				Revision int64  `json:"revision"`
				SavedBy  string `json:"savedBy"`
			}
			if json.Unmarshal([]byte(out), &hist); code != 0 || len(hist) != 2 || hist[0].SavedBy != "master-key" || !strings.HasPrefix(hist[1].SavedBy, "cli:") {
				t.Fatalf("history: %d %s", code, out)
			}
			if code, out, errs := cli("restore", "api/hello.js", "--revision", "1"); code != 0 || !strings.Contains(out, "restored as revision 3") {
				t.Fatalf("restore: %d %s %s", code, out, errs)
			}
			serves(`"from the cli"`)
			if code, out, errs := cli("revert", "api/hello.js"); code != 0 || !strings.Contains(out, "reverted") {
				t.Fatalf("revert: %d %s %s", code, out, errs)
			}
			serves(`"deployed"`)
			if code, _, _ := cli("revert", "api/hello.js"); code != 1 {
				t.Fatalf("second revert: %d", code)
			}

			// The trail: every change once, with its surface.
			code, out, _ = runCmd(t, env, append([]string{"audit", "list", "--action", "script.*", "--json"}, args...)...)
			var entries []struct{ Action, Via, Actor string }
			if json.Unmarshal([]byte(out), &entries); code != 0 || len(entries) != 4 {
				t.Fatalf("audit: %d %s", code, out)
			}
			got := []string{}
			for _, e := range entries {
				got = append(got, e.Action+"/"+e.Via)
			}
			if strings.Join(got, " ") != "script.revert/cli script.restore/cli script.save/admin-api script.save/cli" {
				t.Fatalf("audit: %v", got)
			}

			// Misuse.
			if code, _, _ := runCmd(t, env, "scripts", "list", "--data", data); code != 2 {
				t.Fatalf("without --app: %d", code)
			}
			for _, bad := range [][]string{{"show", "../x.js"}, {"save"}, {"restore", "api/hello.js"}, {"nope"}} {
				if code, _, _ := cli(bad...); code != 2 {
					t.Fatalf("%v: %d", bad, code)
				}
			}
		})
	}
}
