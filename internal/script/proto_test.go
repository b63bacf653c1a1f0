package script_test

import (
	"testing"
)

// protoApp reports what a script sees of client JSON carrying "__proto__" members (issue 10 finding
// 12): JSON.parse semantics make "__proto__" an own data property and never the prototype.
var protoApp = map[string]string{
	"datamodel.json": `{"tables":[{"name":"Items","permissions":{"*":"public"}}]}`,
	"shared/probe.js": `exports.probe = function (o) {
    return {
        isAdmin: o.isAdmin === undefined ? 'undefined' : o.isAdmin,
        own: Object.prototype.hasOwnProperty.call(o, '__proto__'),
        plain: Object.getPrototypeOf(o) === Object.prototype,
        keys: Object.keys(o).sort().join(',')
    };
};`,
	"api/echo.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/echo.js": `var probe = require('../shared/probe').probe;
exports.post = function (req, res) {
    var b = req.body;
    res.send(200, {
        body: probe(b), a: b.a,
        nested: b.nested ? probe(b.nested) : null,
        inList: b.list ? probe(b.list[0]) : null,
        query: probe(req.query),
        headers: probe(req.headers).own
    });
};
exports.get = function (req, res) {
    var qs = require('querystring').parse('__proto__=x&a=1');
    var u = require('url').parse('http://h/p?__proto__=y', true).query;
    res.send(200, { qs: probe(qs), qsValue: qs['__proto__'], url: probe(u), query: probe(req.query) });
};`,
	// The table script reports what it received and what insert's success handed back.
	"table/Items.insert.js": `function insert(item, user, request) {
    var before = require('../shared/probe').probe(item);
    request.execute({ success: function () {
        request.respond(200, { before: before, after: require('../shared/probe').probe(item) });
    } });
}`,
}

func TestProtoMembersAreOwnProperties(t *testing.T) {
	e := newEnv(t, nil, protoApp)
	body := `{"__proto__":{"isAdmin":true},"a":1,"a":2,"nested":{"__proto__":{"isAdmin":true}},"list":[{"__proto__":{"isAdmin":true}}]}`
	r := e.do("POST", "/api/echo?__proto__=1", body, "__proto__", "x")
	expect(t, r, 200,
		`"body":{"isAdmin":"undefined","own":true,"plain":true,"keys":"__proto__,a,list,nested"}`,
		`"a":2`, // duplicate members: the last wins, as in JSON.parse
		`"nested":{"isAdmin":"undefined","own":true,"plain":true,"keys":"__proto__"}`,
		`"inList":{"isAdmin":"undefined","own":true,"plain":true,"keys":"__proto__"}`,
		`"query":{"isAdmin":"undefined","own":true,"plain":true,"keys":"__proto__"}`,
		`"headers":true`)

	r = e.do("POST", "/api/echo", "__proto__=1&a=3", "Content-Type", "application/x-www-form-urlencoded")
	expect(t, r, 200, `"body":{"isAdmin":"undefined","own":true,"plain":true,"keys":"__proto__,a"}`)

	r = e.do("GET", "/api/echo?__proto__=1", "")
	expect(t, r, 200,
		`"qs":{"isAdmin":"undefined","own":true,"plain":true,"keys":"__proto__,a"}`, `"qsValue":"x"`,
		`"url":{"isAdmin":"undefined","own":true,"plain":true,"keys":"__proto__"}`)

	// Table script: the item of an insert.
	r = e.do("POST", "/tables/Items", `{"__proto__":{"isAdmin":true},"text":"t"}`)
	if r.status == 200 {
		expect(t, r, 200, `"before":{"isAdmin":"undefined","own":true,"plain":true,"keys":"__proto__,text"}`, `"after":{"isAdmin":"undefined","own":true,"plain":true,`)
	} else if r.status != 400 {
		t.Fatalf("insert with a __proto__ member: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/tables/Items", `{"text":"t","isAdmin":false,"nested":"n"}`)
	expect(t, r, 200, `"before":{"isAdmin":false,"own":false,"plain":true,"keys":"isAdmin,nested,text"}`)
}
