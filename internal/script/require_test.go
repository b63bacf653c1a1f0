package script

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckModuleName(t *testing.T) {
	for _, ok := range []string{"pkg", "pkg/lib/main", "@scope/pkg", "./x", ".", "..", "../shared/x", "../../shared/x.js", "./a/b.json", "a.b", "...x"} {
		if err := checkModuleName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "x/../../../pkg", "x/..", "x/.", "/etc/passwd", "//etc", "pkg\\..\\..\\x", "..\\x", "a\x00b", "a\nb",
		"pkg//lib", "pkg/", "./", "./a/../../x", "./a/./b", "../a/..", "%2e%2e/x", "pkg%2f..", "\xff", strings.Repeat("a", 2000)} {
		if err := checkModuleName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRequireStaysInside (issue 10 finding 14): nothing outside the app directory is read or loaded,
// by name tricks or symbolic links, and relative requires keep working inside it.
func TestRequireStaysInside(t *testing.T) {
	base := t.TempDir()
	app, outside := filepath.Join(base, "app"), filepath.Join(base, "outside")
	files := map[string]string{
		"outside/package.json":                  `{"main": "lib.js"}`,
		"outside/index.js":                      `exports.where = 'outside';`,
		"outside/lib.js":                        `exports.where = 'outside lib';`,
		"outside/secret.js":                     `exports.where = 'outside secret';`,
		"app/shared/ok.js":                      `exports.where = 'shared';`,
		"app/api/x.js":                          `exports.get = function () {};`,
		"app/node_modules/pkg/package.json":     `{"main": "./lib/main"}`,
		"app/node_modules/pkg/lib/main.js":      `exports.where = 'pkg';`,
		"app/node_modules/evil/package.json":    `{"main": "../../../outside/secret.js"}`,
		"app/node_modules/evil/index.js":        `exports.where = 'evil index';`,
		"app/node_modules/pj/lib.js":            `exports.where = 'pj lib';`,
		"app/node_modules/pj/index.js":          `exports.where = 'pj index';`,
		"app/node_modules/absmain/package.json": `{"main": "` + filepath.ToSlash(filepath.Join(outside, "secret.js")) + `"}`,
	}
	for name, body := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"app/node_modules/linked":          outside,                                // a package that is a link outside
		"app/node_modules/pj/package.json": filepath.Join(outside, "package.json"), // a package.json that is
		"app/shared/out.js":                filepath.Join(outside, "secret.js"),    // a module that is
		"app/shared/dir":                   outside,                                // a folder that is
	} {
		if err := os.Symlink(target, filepath.Join(base, filepath.FromSlash(link))); err != nil {
			t.Skip("symbolic links not available:", err)
		}
	}
	e, err := New(app, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := e.Current()
	from := filepath.Join(v.scripts, "api", "x.js")
	for name, want := range map[string]string{
		"../shared/ok": "shared/ok.js", "pkg": "node_modules/pkg/lib/main.js", "pkg/lib/main": "node_modules/pkg/lib/main.js",
		"ok": "shared/ok.js", "evil": "node_modules/evil/index.js", "pj": "node_modules/pj/index.js", "absmain": "",
	} {
		got, err := v.resolve(from, name)
		if want == "" {
			if err == nil {
				t.Errorf("require(%q) = %s", name, got)
			}
			continue
		}
		if err != nil || v.rel(got) != want {
			t.Errorf("require(%q) = %s, %v; want %s", name, v.rel(got), err, want)
		}
	}
	for _, name := range []string{
		"x/../../../outside", "pkg/../../../outside/secret", "../../outside/secret", "../../../outside", "/" + filepath.ToSlash(outside),
		"linked", "linked/secret", "../shared/out", "../shared/dir/secret", "out", "dir/secret", "..\\..\\outside\\secret", "%2e%2e/outside",
	} {
		got, err := v.resolve(from, name)
		if err == nil {
			t.Errorf("require(%q) resolved to %s", name, got)
			continue
		}
		var me msgError
		var oe *outsideError
		if !errors.As(err, &me) && !errors.As(err, &oe) || !strings.Contains(err.Error(), "Cannot find module") {
			t.Errorf("require(%q): %v", name, err)
		}
	}
}
