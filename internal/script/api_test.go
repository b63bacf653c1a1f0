package script_test

import (
	"strings"
	"testing"
)

var apiApp = map[string]string{
	"api/items.json": `{"routes":{"*":{"get":{"permission":"public"},"post":{"permission":"user"}},"admin/stats":{"*":{"permission":"admin"}}}}`,
	"api/items.js": `exports.register = function (api) {
    api.get('/', function (req, res) { res.send(200, { root: true, q: req.query.x, level: req.user.level }); });
    api.get('/:id', function (req, res) { res.json({ id: req.params.id, viaParam: req.param('id') }); });
    api.post('/:id/notes', function (req, res) {
        res.set('X-Item', req.params.id).type('text/plain').status(201).send('note for ' + req.params.id + ' by ' + req.user.userId + ': ' + req.body.text);
    });
    api.get('/admin/stats', function (req, res) { res.send(200, { stats: 1 }); });
};`,
	"api/plain.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/plain.js": `exports.get = function (req, res) { res.send('hello'); };
exports.del = function (req, res) { res.send(204); };
exports.post = function (req, res) {
    res.send(200, { body: req.body, ct: req.headers['content-type'], form: typeof req.body });
};`,
	"api/nometa.js": `exports.get = function (req, res) { res.send(200, {}); };`,
}

func TestCustomAPIs(t *testing.T) {
	e := newEnv(t, nil, apiApp)
	expect(t, e.do("GET", "/api/items?x=1", ""), 200, `{"root":true,"q":"1","level":"anonymous"}`)
	expect(t, e.do("GET", "/api/items/a%20b", ""), 200, `{"id":"a b","viaParam":"a b"}`)
	expect(t, e.do("POST", "/api/items/7/notes", `{"text":"hi"}`), 401)
	r := e.do("POST", "/api/items/7/notes", `{"text":"hi"}`, "X-ZUMO-AUTH", e.token("Custom:ann"))
	expect(t, r, 201, "note for 7 by Custom:ann: hi")
	if r.header.Get("X-Item") != "7" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("headers %v", r.header)
	}
	expect(t, e.do("GET", "/api/items/admin/stats", ""), 401)
	expect(t, e.do("GET", "/api/items/admin/stats", "", "X-ZUMO-MASTER", masterKey), 200, `{"stats":1}`)

	r = e.do("GET", "/api/plain", "")
	expect(t, r, 200)
	if r.body != "hello" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("plain: %q %v", r.body, r.header.Get("Content-Type"))
	}
	expect(t, e.do("DELETE", "/api/plain", ""), 204)
	expect(t, e.do("PUT", "/api/plain", "{}"), 405)
	expect(t, e.do("POST", "/api/plain", `{"a":[1,2]}`), 200, `"body":{"a":[1,2]}`, `"form":"object"`)
	req := e.do("POST", "/api/plain", "a=1&b=2", "Content-Type", "application/x-www-form-urlencoded")
	expect(t, req, 200, `"body":{"a":"1","b":"2"}`)
	expect(t, e.do("POST", "/api/plain", "just text", "Content-Type", "text/plain"), 200, `"body":"just text"`, `"form":"string"`)

	// No metadata file: admin only. Unknown APIs are not disclosed.
	expect(t, e.do("GET", "/api/nometa", ""), 401)
	expect(t, e.do("GET", "/api/nometa", "", "X-ZUMO-MASTER", masterKey), 200)
	expect(t, e.do("GET", "/api/nothere", ""), 401)
	expect(t, e.do("GET", "/api/nothere", "", "X-ZUMO-MASTER", masterKey), 404)
}
