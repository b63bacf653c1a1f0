package appdir

import (
	"errors"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse/internal/auth"
)

func TestSplitPath(t *testing.T) {
	ok := map[string][]string{
		"":              nil,
		"/":             nil,
		"secret":        {"secret"},
		"/secret/":      {"secret"},
		"%53ECRET":      {"SECRET"},
		"a%2Fb/c":       {"a/b", "c"},
		"a%20b":         {"a b"},
		"%C3%A9t%C3%A9": {"été"},
		"...":           {"..."},
	}
	for in, want := range ok {
		got, err := SplitPath(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("SplitPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"admin//users", "//", "a/./b", "./a", "a/..", "x/../secret", "%2e%2e/secret", "%2E/x",
		"a/%2e%2E", "%zz", "a%", "a%00b", "%ff", "a///"} {
		if got, err := SplitPath(in); !errors.Is(err, ErrBadPath) {
			t.Errorf("SplitPath(%q) = %q, %v; want ErrBadPath", in, got, err)
		}
	}
}

func TestFoldEqual(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"secret", "SECRET", true}, {"secret", "SeCrEt", true}, {"été", "ÉTÉ", true},
		{"secret", "ſecret", false}, // U+017F upper-cases to "S" but JavaScript does not fold it onto ASCII
		{"kelvin", "\u212Aelvin", false},
		{"straße", "STRASSE", false}, {"secret", "secret ", false}, {"", "", true}, {"a", "", false},
		{"\xff", "\xff", false},
	} {
		if got := FoldEqual(c.a, c.b); got != c.want {
			t.Errorf("FoldEqual(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          map[string]string // nil: no match
	}{
		{"/secret", "SECRET", map[string]string{}},
		{"/secret", "secret/x", nil},
		{"/secret/:id", "Secret/a b", map[string]string{"id": "a b"}},
		{"/secret/:id", "secret", nil},
		{"/items/:id?", "items", map[string]string{}},
		{"/files/*", "files/a/b", map[string]string{"0": "a/b"}},
		{"/files/*", "files", map[string]string{"0": ""}},
		{"/", "", map[string]string{}},
		{"/", "x", nil},
	} {
		segs, err := SplitPath(c.path)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := ParsePattern(c.pattern).Match(segs)
		if ok != (c.want != nil) || (ok && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("%s ~ %s = %v %v, want %v", c.pattern, c.path, got, ok, c.want)
		}
	}
}

func apiWith(t *testing.T, routes string) *API {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, map[string]string{"api/x.json": `{"routes":` + routes + `}`, "api/x.js": ""})
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := a.API("x")
	return api
}

func TestRoutePermission(t *testing.T) {
	const (
		A = auth.Admin
		U = auth.User
		K = auth.Application
		P = auth.Public
	)
	api := apiWith(t, `{
		"*": {"*": {"permission": "public"}},
		"/secret": {"*": {"permission": "admin"}},
		"secret/:key/open": {"get": {"permission": "public"}},
		"items": {"get": {"permission": "public"}, "post": {"permission": "user"}},
		"items/:id": {"get": {"permission": "application"}},
		"/": {"get": {"permission": "application"}},
		"Admin/Users/": {"*": {"permission": "admin"}},
		"GET-only": {"GET": {"permission": "public"}, "get": {"permission": "user"}}
	}`)
	for _, c := range []struct {
		route, method string
		want          auth.Permission
	}{
		{"/secret", "GET", A},
		{"/SECRET", "get", A},          // literals compare case-insensitively
		{"/secret/:id", "GET", A},      // a parent rule covers sub-routes
		{"/secret/:id/open", "GET", A}, // an explicit looser rule cannot open a route below a stricter one
		{"/secret/:other/open", "GET", A},
		{"/secret/*", "GET", A},
		{"/secretive", "GET", P}, // prefixes are whole segments
		{"/items", "GET", P},
		{"/items", "POST", U},
		{"/items", "DELETE", A},  // the rule names the route but not the method
		{"/items/:id", "GET", K}, // parameters compare by position, whatever their names
		{"/items/:other", "GET", K},
		{"/items/:id", "POST", A},      // the parent rule does not name POST on this route: admin
		{"/items/:id/notes", "GET", K}, // most restrictive of "items" (public) and "items/:id" (application)
		{"/items/list", "GET", P},      // a literal is not a parameter: "*" and the "items" prefix apply
		{"/admin/users", "GET", A},
		{"/admin/users/:id", "PATCH", A},
		{"/", "GET", K},
		{"", "POST", A},         // the root rule names only GET
		{"/other", "GET", P},    // nothing names it: "*"
		{"/get-only", "GET", U}, // "GET" and "get" in one route: the stricter
	} {
		if got := api.RoutePermission(ParsePattern(c.route), c.method); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.method, c.route, got, c.want)
		}
	}
	if got := api.Loosest(); got != P {
		t.Errorf("Loosest = %s", got)
	}

	strict := apiWith(t, `{"*": {"*": {"permission": "admin"}}, "items": {"*": {"permission": "public"}}}`)
	for _, c := range []struct {
		route string
		want  auth.Permission
	}{
		{"/items", P},
		{"/items/:id", A}, // not named: "*" still applies, as in the original, and is stricter
		{"/other", A},
	} {
		if got := strict.RoutePermission(ParsePattern(c.route), "GET"); got != c.want {
			t.Errorf("strict GET %s = %s, want %s", c.route, got, c.want)
		}
	}
	none := apiWith(t, `{"items": {"get": {"permission": "public"}}}`)
	if got := none.RoutePermission(ParsePattern("/other"), "GET"); got != A {
		t.Errorf("no \"*\" and no rule: %s, want admin", got)
	}
	if got := none.RoutePermission(ParsePattern("/items/:id"), "GET"); got != A {
		t.Errorf("no \"*\" under a public prefix: %s, want admin", got)
	}
}

func TestTableRoutesBothRootAndStar(t *testing.T) {
	for i := 0; i < 20; i++ { // map order must not matter
		dir := t.TempDir()
		write(t, dir, map[string]string{"table/t.json": `{"routes":{"*":{"read":{"permission":"public"},"*":{"permission":"user"}},"/":{"read":{"permission":"admin"}}}}`})
		a, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		tb, _ := a.Table("t")
		if tb.Permission(Read) != auth.Admin || tb.Permission(Insert) != auth.User {
			t.Fatalf("read %s insert %s", tb.Permission(Read), tb.Permission(Insert))
		}
	}
}

func TestLookupsAreASCII(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"api/key.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`, "table/kit.json": `{}`, "scheduler/kick.js": ""})
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// strings.ToLower maps the Kelvin sign to "k"; names are ASCII, so it must find nothing.
	if _, ok := a.API("\u212Aey"); ok {
		t.Error("API found through the Kelvin sign")
	}
	if _, ok := a.Table("\u212Ait"); ok {
		t.Error("table found through the Kelvin sign")
	}
	if _, ok := a.Job("\u212Aick"); ok {
		t.Error("job found through the Kelvin sign")
	}
	if _, ok := a.API("KEY"); !ok {
		t.Error("ASCII case-insensitive lookup broken")
	}
}
