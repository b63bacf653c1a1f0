package script

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
)

// fuzzRoutes is a custom API's registered routes (in registration order) with the permission each
// must get for GET and POST from fuzzMeta below, worked out by hand.
var fuzzRoutes = []struct {
	method, pattern string
	get, post       auth.Permission
}{
	{"get", "/secret", auth.Admin, auth.Admin},
	{"all", "/secret/:id", auth.Admin, auth.Admin},
	{"get", "/admin/users", auth.Admin, auth.Admin},
	{"post", "/items", auth.Public, auth.User},
	{"get", "/items/:id", auth.Application, auth.Admin},
	{"get", "/items/:id/notes", auth.Application, auth.Admin},
	{"all", "/files/*", auth.Public, auth.Admin},
	{"get", "/:name", auth.Public, auth.Admin},
}

const fuzzMeta = `{"routes":{
	"*": {"get": {"permission": "public"}},
	"/secret": {"*": {"permission": "admin"}},
	"admin/users": {"*": {"permission": "admin"}},
	"items": {"get": {"permission": "public"}, "post": {"permission": "user"}},
	"items/:x": {"get": {"permission": "application"}},
	"files/*": {"get": {"permission": "public"}}
}}`

// FuzzAPIRoutes: for every path, the permission checked is the permission of the route dispatch
// picks, and every spelling of the same path (case, percent-encoding, trailing slash) picks the same
// route with the same permission. Paths that match no route are admin-only under an admin prefix.
func FuzzAPIRoutes(f *testing.F) {
	dir := f.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "api"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api", "x.json"), []byte(fuzzMeta), 0o644); err != nil {
		f.Fatal(err)
	}
	app, err := appdir.Load(dir)
	if err != nil {
		f.Fatal(err)
	}
	meta, _ := app.API("x")
	routes := make([]apiRoute, len(fuzzRoutes))
	for i, r := range fuzzRoutes {
		routes[i] = apiRoute{method: r.method, pattern: appdir.ParsePattern(r.pattern)}
	}
	for _, s := range []string{"/secret", "/SECRET", "/%53ECRET", "/admin//users", "/admin/users/", "/secret/1", "/secret/1/x",
		"/items/%2F/notes", "/files/a/../b", "/%2e%2e/secret", "/ſecret", "/Items/7/NOTES/", "/", "", "//", "/a%2Fb"} {
		f.Add(s, false, []byte{1, 2, 3, 4})
		f.Add(s, true, []byte{0xff, 0x10})
	}
	f.Fuzz(func(t *testing.T, path string, post bool, seed []byte) {
		method := "get"
		if post {
			method = "post"
		}
		segs, err := appdir.SplitPath(path)
		if err != nil {
			return // refused before any lookup or dispatch
		}
		i, perm := decide(meta, routes, method, segs)
		if i >= 0 {
			want := fuzzRoutes[i].get
			if post {
				want = fuzzRoutes[i].post
			}
			if perm != want {
				t.Fatalf("%s %q dispatched to %s with permission %s, want %s", method, path, fuzzRoutes[i].pattern, perm, want)
			}
		} else if len(segs) > 0 && (appdir.FoldEqual(segs[0], "secret") || (len(segs) > 1 && appdir.FoldEqual(segs[0], "admin") && appdir.FoldEqual(segs[1], "users"))) && perm != auth.Admin {
			t.Fatalf("%s %q matches no route under an admin prefix but needs %s", method, path, perm)
		}
		variant := respell(segs, seed)
		vsegs, err := appdir.SplitPath(variant)
		if err != nil {
			t.Fatalf("respelling %q of %q refused: %v", variant, path, err)
		}
		if j, vperm := decide(meta, routes, method, vsegs); j != i || vperm != perm {
			t.Fatalf("%q → route %d (%s), its respelling %q → route %d (%s)", path, i, perm, variant, j, vperm)
		}
	})
}

// decide is the lookup and dispatch of APIHandler without the runtime: the route index (or -1) and
// the permission checked for it.
func decide(meta *appdir.API, routes []apiRoute, method string, segs []string) (int, auth.Permission) {
	i, _ := selectRoute(routes, method, segs)
	route := appdir.Literal(segs)
	if i >= 0 {
		route = routes[i].pattern
	}
	return i, meta.RoutePermission(route, method)
}

// respell writes segments again with ASCII case flipped and bytes percent-encoded as seed says, and
// maybe a trailing slash.
func respell(segs []string, seed []byte) string {
	next := func() byte {
		if len(seed) == 0 {
			return 0
		}
		b := seed[0]
		seed = seed[1:]
		return b
	}
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		for k := 0; k < len(s); k++ {
			c, r := s[k], next()
			if r&1 == 1 && c < 0x80 && ('a' <= c|0x20 && c|0x20 <= 'z') {
				// flipping case is only a respelling where the segment is compared as a literal, so
				// flip only the letters of literal segments (all literals here are lower case ASCII)
				if isLiteral(s) {
					c ^= 0x20
				}
			}
			if r&2 == 2 || c == '/' || c == '%' || c == '?' || c == '#' || c <= ' ' || c >= 0x7f {
				fmt.Fprintf(&b, "%%%02X", c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	if len(segs) > 0 && next()&4 == 4 {
		b.WriteByte('/')
	}
	return b.String()
}

func isLiteral(s string) bool {
	for _, l := range []string{"secret", "admin", "users", "items", "notes", "files"} {
		if appdir.FoldEqual(s, l) {
			return true
		}
	}
	return false
}
