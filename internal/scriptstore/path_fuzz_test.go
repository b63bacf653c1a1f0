package scriptstore_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/scriptstore"
)

// FuzzValidPath: an accepted path is the clean form of itself, below one of the script folders, a
// .js file with no hidden, parent or node_modules segment, and stays below the scripts folder when
// joined to it.
func FuzzValidPath(f *testing.F) {
	for _, s := range []string{"table/todo.insert.js", "api/x.js", "shared/lib/util.js", "../x.js", "table/../../x.js",
		"table/.hidden.js", "shared/node_modules/x.js", "api/a\\b.js", "/table/x.js", "table//x.js", "table/x.js\x00", "scheduler/ok.js"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		clean, ok := scriptstore.ValidPath(s)
		if !ok {
			return
		}
		if clean != s || !strings.HasSuffix(clean, ".js") || strings.ContainsAny(clean, "\\\x00") {
			t.Fatalf("ValidPath(%q) accepted %q", s, clean)
		}
		root := "/srv/app/service"
		full := filepath.Join(root, filepath.FromSlash(clean))
		if rel, err := filepath.Rel(root, full); err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("ValidPath(%q): %q escapes the scripts folder", s, full)
		}
		first, _, _ := strings.Cut(clean, "/")
		switch first {
		case "table", "api", "scheduler", "shared":
		default:
			t.Fatalf("ValidPath(%q): not below a script folder", s)
		}
		for _, seg := range strings.Split(clean, "/") {
			if seg == "" || seg == ".." || strings.HasPrefix(seg, ".") || seg == "node_modules" {
				t.Fatalf("ValidPath(%q): segment %q", s, seg)
			}
		}
	})
}
