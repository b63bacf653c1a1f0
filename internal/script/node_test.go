package script

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/odata"
)

func testEngine(t *testing.T, files map[string]string) *Engine {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, err := New(dir, Options{
		ServiceName: "svc",
		AppSettings: map[string]string{"A": "1"},
		Keys:        func() Keys { return Keys{MasterKey: "mk", ApplicationKey: "ak"} },
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// evalJS runs src (which calls done(value) when finished) and returns String(value).
func evalJS(t *testing.T, e *Engine, src string) string {
	t.Helper()
	var out string
	finished := false
	v := e.Current()
	err := e.run(context.Background(), v, "test.js", func(m *vm) error {
		_ = m.rt.Set("done", func(c goja.FunctionCall) goja.Value {
			out = c.Argument(0).String()
			finished = true
			return goja.Undefined()
		})
		_, err := m.rt.RunScript("test.js", src)
		return err
	}, func() bool { return finished })
	if err != nil {
		msg, where := Describe(err)
		t.Fatalf("%s: %s at %s", src, msg, where)
	}
	if !finished {
		t.Fatalf("%s: done was not called", src)
	}
	return out
}

func TestNodeSubset(t *testing.T) {
	e := testEngine(t, map[string]string{
		"shared/util.js":                      "var pad = require('leftpad'); exports.pad = function (s) { return pad(s, 5, '0'); };",
		"node_modules/leftpad/package.json":   `{"name":"leftpad","main":"./lib/main"}`,
		"node_modules/leftpad/lib/main.js":    "module.exports = function (s, n, c) { s = String(s); while (s.length < n) s = c + s; return s; };",
		"node_modules/withindex/index.js":     "exports.x = require('./data.json').x;",
		"node_modules/withindex/data.json":    `{"x": 42}`,
		"api/dummy.js":                        "exports.get = function () {};",
		"node_modules/leftpad/lib/unused.txt": "",
	})
	cases := []struct{ name, src, want string }{
		{"base64", `done(new Buffer('aGVsbG8=', 'base64').toString())`, "hello"},
		{"base64 url-safe, no padding", `done(Buffer.from('-_8', 'base64').toString('hex'))`, "fbff"},
		{"hex", `done(new Buffer([1, 2, 255]).toString('hex'))`, "0102ff"},
		{"utf8 length", `done(Buffer.byteLength('é') + ',' + new Buffer('é').length + ',' + 'é'.length)`, "2,2,1"},
		{"binary round trip", `var s = ''; for (var i = 0; i < 256; i++) s += String.fromCharCode(i);
			var b = new Buffer(s, 'binary'); done(b.length + ',' + (b.toString('binary') === s) + ',' + b[255])`, "256,true,255"},
		{"latin1 truncates", `done(new Buffer('\u0141', 'binary')[0])`, "65"},
		{"slice shares", `var b = new Buffer('abc'); var s = b.slice(1); s[0] = 120; done(b.toString() + ',' + Buffer.isBuffer(s))`, "axc,true"},
		{"concat", `done(Buffer.concat([new Buffer('ab'), new Buffer('cd')]).toString())`, "abcd"},
		{"equals", `done(new Buffer('ab').equals(new Buffer('ab')) + ',' + new Buffer('ab').equals(new Buffer('ac')))`, "true,false"},
		{"readUInt32BE", `done(new Buffer([0, 0, 1, 2]).readUInt32BE(0))`, "258"},
		{"json", `done(JSON.stringify(new Buffer('hi')))`, `{"type":"Buffer","data":[104,105]}`},
		{"sha1", `done(require('crypto').createHash('sha1').update('abc').digest('hex'))`, "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"sha256 base64", `done(require('crypto').createHash('sha256').update('').digest('base64'))`, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
		{"hmac", `done(require('crypto').createHmac('sha256', 'key').update('The quick brown fox jumps over the lazy dog').digest('hex'))`,
			"f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"},
		{"hmac with binary-string key = raw bytes", `var c = require('crypto');
			var k = c.createHash('sha256').update('secret').digest('binary');
			var kb = c.createHash('sha256').update('secret').digest();
			done(c.createHmac('sha256', k).update('x').digest('hex') === c.createHmac('sha256', kb).update('x').digest('hex'))`, "true"},
		{"pbkdf2Sync sha1 default (RFC 6070)", `done(require('crypto').pbkdf2Sync('password', 'salt', 2, 20).toString('hex'))`, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
		{"pbkdf2 callback", `require('crypto').pbkdf2('password', 'salt', 1, 20, function (err, key) { done(err + ':' + key.toString('hex')); })`,
			"null:0c60c80f961f0e71f3a9b524af6012062fe037a6"},
		{"pbkdf2 digest", `done(require('crypto').pbkdf2Sync('password', 'salt', 1, 32, 'sha256').toString('hex'))`,
			"120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"},
		{"randomBytes", `var c = require('crypto'); c.randomBytes(16, function (e, b) { done(b.length + ',' + c.randomBytes(8).length); })`, "16,8"},
		{"timingSafeEqual", `var c = require('crypto'); var r; try { c.timingSafeEqual(new Buffer('a'), new Buffer('ab')); } catch (e) { r = e.name; }
			done(c.timingSafeEqual(new Buffer('ab'), new Buffer('ab')) + ',' + r)`, "true,RangeError"},
		{"createCipher (spec §2.5 vector)", `var c = require('crypto').createCipher('aes-256-cbc', 'ZumoTestMasterKey0123456789');
			done(c.update('{"accessToken":"provider-access-token"}', 'utf8', 'base64') + c.final('base64'))`,
			"KNtCXi+yO38jVguyRDYVeyeYniex0KRNBG/S0eGSiGPC66lEgUVhK7xAyFwWIOaC"},
		{"createDecipher round trip", `var cr = require('crypto'); var d = cr.createDecipher('aes256', 'ZumoTestMasterKey0123456789');
			var s = d.update('KNtCXi+yO38jVguyRDYVeyeYniex0KRNBG/S0eGSiGPC66lEgUVhK7xAyFwWIOaC', 'base64', 'utf8'); done(s + d.final('utf8'))`,
			`{"accessToken":"provider-access-token"}`},
		{"createCipheriv", `var cr = require('crypto'); var k = new Buffer('000102030405060708090a0b0c0d0e0f', 'hex');
			var c = cr.createCipheriv('aes-128-cbc', k, k); var x = Buffer.concat([c.update('hello'), c.final()]);
			var d = cr.createDecipheriv('aes-128-cbc', k, k); done(Buffer.concat([d.update(x), d.final()]).toString())`, "hello"},
		{"bad decrypt", `var d = require('crypto').createDecipher('aes256', 'k'); d.update(new Buffer(16));
			try { d.final(); done('no error'); } catch (e) { done(e.message); }`, "bad decrypt"},
		{"util.format", `done(require('util').format('%s=%d %j', 'a', 1, {b: 2}, 'extra'))`, `a=1 {"b":2} extra`},
		{"util.inherits", `var u = require('util'), E = require('events'); function F() { E.call(this); } u.inherits(F, E);
			var f = new F(); f.on('x', function (v) { done('got ' + v); }); f.emit('x', 3)`, "got 3"},
		{"querystring", `var q = require('querystring'); var o = q.parse('a=1&b=x%20y&a=3');
			done(JSON.stringify(o) + ' ' + q.stringify({k: 'v w', n: [1, 2]}))`, `{"a":["1","3"],"b":"x y"} k=v%20w&n=1&n=2`},
		{"url.parse", `var u = require('url').parse('https://user:pw@Host.com:8080/p/a?x=1#h', true);
			done([u.protocol, u.auth, u.hostname, u.port, u.pathname, u.search, u.query.x, u.hash].join('|'))`,
			"https:|user:pw|host.com|8080|/p/a|?x=1|1|#h"},
		{"url.format", `done(require('url').format({protocol: 'https', hostname: 'a.com', pathname: '/x', query: {q: 1}}))`, "https://a.com/x?q=1"},
		{"timers order", `var o = []; setTimeout(function () { o.push('timeout'); done(o.join(',')); }, 0);
			setImmediate(function () { o.push('immediate'); }); process.nextTick(function () { o.push('tick'); }); o.push('sync');`,
			"sync,tick,immediate,timeout"},
		{"clearTimeout", `var t = setTimeout(function () { done('fired'); }, 1); clearTimeout(t); setTimeout(function () { done('cleared'); }, 5)`, "cleared"},
		{"setInterval", `var n = 0; var i = setInterval(function () { if (++n === 3) { clearInterval(i); done(n); } }, 1)`, "3"},
		{"process", `done([process.version, process.env.A, process.env.MS_MasterKey, process.env.MS_MobileServiceName, typeof process.env.PATH].join('|'))`,
			"v0.10.48|1|mk|svc|undefined"},
		{"process.exit refused", `try { process.exit(1); } catch (e) { done(e.message); }`, "process.exit is not available to scripts"},
		{"mobileservice-config", `var c = require('mobileservice-config'); done([c.masterKey, c.applicationKey, c.mobileServiceName, c.appSettings.A].join('|'))`, "mk|ak|svc|1"},
		{"statusCodes", `done(statusCodes.BAD_REQUEST + ',' + statusCodes.MOVED_PERMANANTLY)`, "400,301"},
		{"node_modules resolution", `done(require('./shared/util.js').pad(7) + ',' + require('withindex').x)`, "00007,42"},
		{"push not configured", `try { push.apns.send('t', {}); } catch (e) { done(e.message); }`, "push is not configured"},
		{"push error callback", `push.wns.sendToastText01('c', {text1: 'x'}, {error: function (e) { done('cb: ' + e.message); }})`, "cb: push is not configured"},
		{"fs refused", `try { require('fs'); } catch (e) { done(e.message); }`, "Cannot find module 'fs' (not available to scripts in Gatehouse)"},
		{"tables without service", `tables.getTable('x').read({error: function (e) { done(e.message); }})`, "tables are not configured"},
		{"callback options validated", `try { tables.getTable('x').read(function () {}); } catch (e) { done(e.message.split('.')[0]); }`, "Invalid callback options passed to 'read'"},
		{"mssql without service", `mssql.query('select 1', [], {error: function (e) { done(e.message); }})`, "mssql is not configured"},
		{"console", `console.log('hi %s', 'there'); console.error(new Error('x')); done('ok')`, "ok"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := evalJS(t, e, c.src); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestTranslatePredicate(t *testing.T) {
	cases := []struct {
		src  string
		args []any
		want string
	}{
		{`function () { return this.complete == false; }`, nil, "complete eq false"},
		{`function (u) { return this.userId === u && this.n > 3; }`, []any{"Custom:1"}, "(userId eq 'Custom:1') and (n gt 3)"},
		{`function (o) { return this.a != o.x || !(this.b <= -2); }`, []any{map[string]any{"x": "y"}}, "(a ne 'y') or (not (b le (-2)))"},
		{`function () { return this.text.toLowerCase().indexOf('milk') >= 0; }`, nil, "indexof(tolower(text),'milk') ge 0"},
		{`function () { return this.name.substring(1, 3) == 'bc'; }`, nil, "substring(name,1,3 sub 1) eq 'bc'"},
		{`function () { return this.when.getFullYear() == 2024 && Math.floor(this.price) == 3; }`, nil, "(year(when) eq 2024) and (floor(price) eq 3)"},
		{`function () { return this.first + ' ' + this.last == 'a b'; }`, nil, "concat(concat(first,' '),last) eq 'a b'"},
		{`function () { return this.title.length > 2; }`, nil, "length(title) gt 2"},
	}
	for _, c := range cases {
		e, err := translatePredicate(c.src, c.args)
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		if got := odata.Format(e); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.src, got, c.want)
		}
	}
	for _, bad := range []string{
		`function () { var x = 1; return this.a == x; }`,
		`function () { return this.a == secret; }`,
		`function () { return this.a ? 1 : 2; }`,
		`function () { return this.a.foo(); }`,
		`() => true`,
		`function () { return this.a == require('fs'); }`,
	} {
		if _, err := translatePredicate(bad, nil); err == nil || !strings.Contains(err.Error(), "where:") {
			t.Errorf("%s: err %v", bad, err)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	o, err := newOutbound([]string{"api.example.com", "*.example.net", " "}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"api.example.com": true, "API.example.com.": true, "example.com": false, "x.api.example.com": false,
		"a.example.net": true, "a.b.example.net": true, "example.net": false, "badexample.net": false, "": false,
	} {
		if got := o.hostAllowed(host); got != want {
			t.Errorf("%q: %v, want %v", host, got, want)
		}
	}
}
