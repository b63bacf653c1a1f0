package script_test

import (
	"time"

	"github.com/gatehouse/gatehouse/internal/script"
	"strings"
	"testing"
)

// Idioms of the original runtime (azure-mobile-services 1.0.0 on Node 0.10 and Express 3) that real
// apps rely on; each case is the original's answer.
var compatApp = map[string]string{
	"api/compat.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/legacy.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/legacy.js":   "exports.get = function (req, res) { res.send(200, { t: Date.UTC(2012, 08, 1), n: 09.5 + 010, s: '08' }); };",
	"api/compat.js": `exports.get = function (req, res) {
    if (req.query.mode === 'status') { res.send(req.query.status, { via: 'string status' }); return; }
    if (req.query.mode === 'bodyfirst') { res.send('500', 201); return; }
    if (req.query.mode === 'one') { res.send('500'); return; }
    if (req.query.mode === 'end') { res.send(200, { ok: true }); var r = res.end(); console.log('end after send returned ' + r); return; }
    res.send(200, {});
};`,
}

func TestCompatResponseSend(t *testing.T) {
	e := newEnv(t, nil, compatApp)
	// Express 3: send(status, body) accepted a numeric string as the status.
	expect(t, e.do("GET", "/api/compat?mode=status&status=500", ""), 500, `{"via":"string status"}`)
	expect(t, e.do("GET", "/api/compat?mode=status&status=404", ""), 404, `{"via":"string status"}`)
	// A non-numeric string is no status (Express handed it to Node, which threw); the default stays.
	expect(t, e.do("GET", "/api/compat?mode=status&status=abc", ""), 200)
	// send(body, number): the number is the status, the string the body.
	r := e.do("GET", "/api/compat?mode=bodyfirst", "")
	expect(t, r, 201)
	if r.body != "500" {
		t.Fatalf("send('500', 201) body %q", r.body)
	}
	// One string argument is a body, never a status.
	r = e.do("GET", "/api/compat?mode=one", "")
	expect(t, r, 200)
	if r.body != "500" {
		t.Fatalf("send('500') body %q", r.body)
	}
	// Node 0.10: end() after send() returned false silently; no error is logged.
	expect(t, e.do("GET", "/api/compat?mode=end", ""), 200, `{"ok":true}`)
	if !strings.Contains(e.logs.String(), "end after send returned false") {
		t.Fatalf("end() after send() must return false:\n%s", e.logs.String())
	}
	if strings.Contains(e.logs.String(), "Can't set headers") {
		t.Fatalf("end() after send() threw:\n%s", e.logs.String())
	}
}

// Sloppy-mode decimals with a leading zero load as in Node; real syntax errors still stop loading.
func TestCompatLegacyDecimals(t *testing.T) {
	e := newEnv(t, nil, compatApp)
	expect(t, e.do("GET", "/api/legacy", ""), 200, `{"t":1346457600000,"n":17.5,"s":"08"}`)
}

func TestCompatLegacyDecimalsKeepSyntaxErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"api/bad.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
		"api/bad.js":   "exports.get = function (req, res) {\n  var x = 08;\n  res.send(200 x);\n};",
	})
	_, err := script.New(dir, script.Options{Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "bad.js") || !strings.Contains(err.Error(), "3:") {
		t.Fatalf("a real syntax error must still stop loading, naming file and line: %v", err)
	}
}
