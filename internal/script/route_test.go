package script_test

import (
	"strings"
	"testing"
)

// adminAPIApp is issue 10 finding 4's app: "/secret" and "/admin/users" are admin-only, the rest of
// the API is public.
var adminAPIApp = map[string]string{
	"api/adminapi.json": `{"routes":{"*":{"*":{"permission":"public"}},"/secret":{"*":{"permission":"admin"}},"admin/users":{"*":{"permission":"admin"}}}}`,
	"api/adminapi.js": `exports.register = function (api) {
    api.get('/secret', function (req, res) { res.send(200, { secret: true }); });
    api.get('/secret/:id', function (req, res) { res.send(200, { secret: req.params.id }); });
    api.get('/admin/users', function (req, res) { res.send(200, { users: true }); });
    api.get('/files/*', function (req, res) { res.send(200, { file: req.params[0] }); });
    api.get('/:name', function (req, res) { res.send(200, { name: req.params.name }); });
};`,
	"api/plainadmin.json": `{"routes":{"*":{"get":{"permission":"public"}},"/":{"post":{"permission":"public"}}}}`,
	"api/plainadmin.js": `exports.get = function (req, res) { res.send(200, { get: true }); };
exports.post = function (req, res) { res.send(200, { post: true }); };
exports.del = function (req, res) { res.send(200, { del: true }); };`,
}

func TestAPIRoutePermissionsFollowDispatch(t *testing.T) {
	e := newEnv(t, nil, adminAPIApp)
	admin := []string{"X-ZUMO-MASTER", masterKey}

	// Every spelling that reaches an admin-only handler is refused to anonymous callers and served
	// to the admin.
	for _, p := range []string{
		"/api/adminapi/secret", "/api/adminapi/SECRET", "/api/adminapi/Secret/", "/api/adminapi/%53ECRET", "/api/adminapi/%73ecret",
		"/api/ADMINAPI/secret", "/api/%61dminapi/secret", "/API/adminapi/secret",
		"/api/adminapi/secret/1", "/api/adminapi/SECRET/a%20b/",
		"/api/adminapi/admin/users", "/api/adminapi/ADMIN/Users/",
	} {
		expect(t, e.do("GET", p, ""), 401)
		if r := e.do("GET", p, "", admin...); r.status != 200 {
			t.Errorf("admin GET %s = %d %s", p, r.status, r.body)
		}
	}

	// Paths that no route can match are 404 for everyone: they never reach a handler under a
	// different route's permission.
	for _, p := range []string{
		"/api/adminapi/admin//users", "/api/adminapi//secret", "/api/adminapi/./secret", "/api/adminapi/x/../secret",
		"/api/adminapi/%2e%2e/secret", "/api/adminapi/%2E/secret", "/api/adminapi/secret//", "/api/adminapi/a%00b", "/api/adminapi/secret/%2e%2e",
	} {
		expect(t, e.do("GET", p, ""), 404)
		expect(t, e.do("GET", p, "", admin...), 404)
	}

	// Public routes keep working, and an encoded slash stays inside its segment.
	expect(t, e.do("GET", "/api/adminapi/hello", ""), 200, `{"name":"hello"}`)
	expect(t, e.do("GET", "/api/adminapi/admin%2Fusers", ""), 200, `{"name":"admin/users"}`)
	expect(t, e.do("GET", "/api/adminapi/%25", ""), 200, `{"name":"%"}`) // decoded once, not twice
	expect(t, e.do("GET", "/api/adminapi/files/a/b", ""), 200, `{"file":"a/b"}`)
	// "ſecret" is not "secret" to JavaScript's /i: it is a name, and public.
	expect(t, e.do("GET", "/api/adminapi/%C5%BFecret", ""), 200, `{"name":"ſecret"}`)
	// An unmatched route under an admin-only prefix does not tell anonymous callers it is missing.
	expect(t, e.do("GET", "/api/adminapi/secret/1/more", ""), 401)
	expect(t, e.do("GET", "/api/adminapi/secret/1/more", "", admin...), 404)
	// The API name is matched by the same rules; the Kelvin sign does not reach "k"-named APIs.
	expect(t, e.do("GET", "/api/adminap%C4%B1/secret", ""), 401) // dotless ı: no such API
	expect(t, e.do("GET", "/api/adminap%C4%B1/secret", "", admin...), 404)

	// Exported-method APIs: the root route's own rule replaces "*" (as in the original), and the
	// methods it does not name are admin-only.
	expect(t, e.do("GET", "/api/plainadmin", ""), 401)
	expect(t, e.do("GET", "/api/plainadmin", "", admin...), 200, `{"get":true}`)
	expect(t, e.do("POST", "/api/plainadmin/", "{}"), 200, `{"post":true}`)
	expect(t, e.do("DELETE", "/api/plainadmin", ""), 401)
	expect(t, e.do("DELETE", "/api/plainadmin", "", admin...), 200, `{"del":true}`)
	expect(t, e.do("PUT", "/api/plainadmin", "{}"), 401)
	expect(t, e.do("PUT", "/api/plainadmin", "{}", admin...), 405)
}

// TestRouteSpellingsElsewhere: the same class on the other route families. Every spelling of an
// admin-only table, job or admin endpoint is refused to an anonymous caller (401), matches nothing
// (404) or is invalid (400); none reaches the resource under another resource's permission.
func TestRouteSpellingsElsewhere(t *testing.T) {
	app := map[string]string{
		"datamodel.json":    `{"tables":[{"name":"Secret","permissions":{"*":"admin"}},{"name":"Open","permissions":{"*":"public"}}]}`,
		"scheduler/kick.js": `function kick() {}`,
	}
	e := newEnv(t, nil, app)
	expect(t, e.do("POST", "/tables/Secret", `{"id":"s1","v":1}`, "X-ZUMO-MASTER", masterKey), 201)
	expect(t, e.do("POST", "/tables/Open", `{"id":"o1","v":1}`), 201)
	for _, c := range []struct{ method, path string }{
		{"GET", "/tables/Secret"}, {"GET", "/tables/SECRET"}, {"GET", "/tables/%53ecret"}, {"GET", "/TABLES/secret/"},
		{"GET", "/tables/secret/s1"}, {"GET", "/tables//secret"}, {"GET", "/tables/./secret"}, {"GET", "/tables/open/../secret"},
		{"GET", "/tables/open/..%2Fsecret"}, {"GET", "/tables/open%2F..%2Fsecret"}, {"GET", "/tables/%C5%BFecret"},
		{"GET", "/tables/Open/%2e%2e/Secret/s1"}, {"DELETE", "/tables/open/..%2Fsecret%2Fs1"},
		{"POST", "/jobs/kick"}, {"POST", "/JOBS/KICK"}, {"POST", "/jobs/kick/"}, {"POST", "/jobs//kick"}, {"POST", "/jobs/%6Bick"},
		{"POST", "/jobs/\u212Aick"}, {"POST", "/jobs/x/../kick"},
		{"POST", "/admin/tokens"}, {"POST", "/ADMIN/Tokens/"}, {"POST", "/admin//tokens"}, {"POST", "/admin/./tokens"},
		{"POST", "/admin%2Ftokens"}, {"POST", "/admin/x/../tokens"}, {"GET", "/admin/tables"}, {"GET", "/admin/tables/../tokens"},
	} {
		r := e.do(c.method, c.path, "")
		if r.status < 400 || r.status >= 500 {
			t.Errorf("anonymous %s %s = %d %s", c.method, c.path, r.status, r.body)
		}
		if strings.Contains(r.body, `"s1"`) {
			t.Errorf("anonymous %s %s leaked a row: %s", c.method, c.path, r.body)
		}
	}
	expect(t, e.do("GET", "/tables/Secret/s1", "", "X-ZUMO-MASTER", masterKey), 200, `"s1"`)
}
