package script_test

import (
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/script"
)

var hostileApp = map[string]string{
	"datamodel.json": `{"tables":[{"name":"Items","permissions":{"*":"public"}}]}`,
	"api/ok.json":    `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/ok.js":      `exports.get = function (req, res) { res.send(200, { ok: true }); };`,
	"api/loop.json":  `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/loop.js":    `exports.get = function (req, res) { while (true) {} };`,
	"api/alloc.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/alloc.js": `exports.get = function (req, res) {
    console.log('alloc started');
    var keep = [], s = new Array(1 << 20).join('x');
    for (;;) { keep.push(s + keep.length); }
};`,
	"api/buffer.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/buffer.js": `exports.get = function (req, res) {
    try { new Buffer(1024 * 1024 * 1024); } catch (e) { res.send(200, { error: e.name + ': ' + e.message }); }
};`,
	"api/throw.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/throw.js": `exports.get = function (req, res) {
    setTimeout(function () {
        throw new Error('boom in a callback');
    }, 1);
};`,
	"api/escape.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/escape.js": `exports.get = function (req, res) {
    var out = {};
    ['../../../../etc/passwd', '/etc/passwd', 'fs', 'child_process'].forEach(function (p) {
        try { require(p); out[p] = 'loaded'; } catch (e) { out[p] = e.message; }
    });
    out.env = Object.keys(process.env).sort();
    res.send(200, out);
};`,
	"api/uncaught.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/uncaught.js":   `exports.get = function (req, res) { require('../../outside.js'); };`,
	"api/twice.json":    `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/twice.js":      `exports.get = function (req, res) { res.send(200, { first: true }); res.send(200, { second: true }); };`,
	"api/silent.json":   `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/silent.js":     `exports.get = function (req, res) { };`,
	"api/recurse.json":  `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/recurse.js":    `function f(n) { return f(n + 1) + 1; } exports.get = function (req, res) { f(0); };`,
	"table/Items.insert.js": `function insert(item, user, request) {
    request.execute({ success: function () {
        request.respond();
        request.respond(statusCodes.OK, { again: true });
    } });
}`,
}

func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestMisbehavingScripts(t *testing.T) {
	e := newEnv(t, nil, hostileApp, func(o *script.Options) {
		o.Timeout = time.Second
		o.AllocLimit = 16 << 20
	})

	// Each failure is a JSON 500 for its own request, logged with the script, while requests that
	// run at the same time keep succeeding.
	cases := []struct {
		path, log string
	}{
		{"/api/loop", "time limit exceeded"},
		{"/api/throw", "boom in a callback"},
		{"/api/uncaught", "outside the app directory"},
		{"/api/silent", "without responding"},
		{"/api/recurse", "Maximum call stack size exceeded"},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.path, "/api/"), func(t *testing.T) {
			var wg sync.WaitGroup
			wg.Add(1)
			var bad resp
			go func() {
				defer wg.Done()
				bad = e.do("GET", c.path, "")
			}()
			for i := 0; i < 3; i++ {
				expect(t, e.do("GET", "/api/ok", ""), 200, `{"ok":true}`)
			}
			wg.Wait()
			expect(t, bad, 500, `"error":"Error: Internal Server Error"`)
			if !strings.Contains(e.logs.String(), c.log) {
				t.Fatalf("log lacks %q:\n%s", c.log, e.logs.String())
			}
			expect(t, e.do("GET", "/api/ok", ""), 200, `{"ok":true}`)
		})
	}

	t.Run("alloc", func(t *testing.T) {
		// A generous time budget: the memory watchdog, not the clock, stops this one.
		runtime.GC()
		limit := heapNow() + 96<<20
		e := newEnv(t, nil, hostileApp, func(o *script.Options) { o.Timeout = time.Minute; o.MemoryLimit = limit })
		var wg sync.WaitGroup
		wg.Add(1)
		var bad resp
		started := e.logs.when("alloc started")
		go func() {
			defer wg.Done()
			bad = e.do("GET", "/api/alloc", "")
		}()
		<-started // the allocating invocation is the oldest one from here on
		expect(t, e.do("GET", "/api/ok", ""), 200, `{"ok":true}`)
		wg.Wait()
		expect(t, bad, 500, `"error":"Error: Internal Server Error"`)
		if !strings.Contains(e.logs.String(), "memory limit") {
			t.Fatalf("log lacks the memory limit:\n%s", e.logs.String())
		}
		expect(t, e.do("GET", "/api/ok", ""), 200, `{"ok":true}`)
	})

	t.Run("throw is logged with file and line", func(t *testing.T) {
		if !strings.Contains(e.logs.String(), `"at":"api/throw.js:3:`) {
			t.Fatalf("no file:line in logs:\n%s", e.logs.String())
		}
	})

	t.Run("buffer allocation limit", func(t *testing.T) {
		expect(t, e.do("GET", "/api/buffer", ""), 200, "RangeError", "allocation limit")
	})

	t.Run("require outside the app and process access", func(t *testing.T) {
		r := e.do("GET", "/api/escape", "")
		expect(t, r, 200)
		m := r.json(t)
		for _, p := range []string{"../../../../etc/passwd", "/etc/passwd", "fs", "child_process"} {
			if s, _ := m[p].(string); !strings.Contains(s, "Cannot find module") {
				t.Errorf("require(%q) = %v", p, m[p])
			}
		}
		env := strings.Join(toStrings(m["env"]), ",")
		if env != "GREETING,MS_ApplicationKey,MS_MasterKey,MS_MobileServiceName" {
			t.Errorf("process.env keys: %s", env)
		}
	})

	t.Run("respond twice", func(t *testing.T) {
		expect(t, e.do("GET", "/api/twice", ""), 200, `{"first":true}`)
		if !strings.Contains(e.logs.String(), "after they are sent") {
			t.Fatal("second send not logged")
		}
		r := e.do("POST", "/tables/Items", `{"n":1}`)
		expect(t, r, 201, `"n":1`)
		if strings.Contains(r.body, "again") {
			t.Fatalf("second respond won: %s", r.body)
		}
		if !strings.Contains(e.logs.String(), "Respond cannot be called more than once.") {
			t.Fatal("second respond not logged")
		}
	})
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}
