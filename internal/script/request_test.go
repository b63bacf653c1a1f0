package script_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/script"
)

func TestOutboundHTTP(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "http://forbidden.example/", http.StatusFound)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "q": r.URL.Query().Get("q"), "body": string(b), "auth": r.Header.Get("Authorization")})
	}))
	defer upstream.Close()
	app := map[string]string{
		"api/call.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
		"api/call.js": `var request = require('request');
exports.post = function (req, res) {
    var opts = req.body;
    request(opts, function (err, response, body) {
        if (err) { res.send(200, { error: err.message }); return; }
        res.send(200, { status: response.statusCode, body: body });
    });
};`,
	}
	e := newEnv(t, nil, app, func(o *script.Options) {
		o.HTTPAllow = []string{"127.0.0.1"}
		o.HTTPClient = upstream.Client()
	})
	call := func(opts map[string]any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(opts)
		r := e.do("POST", "/api/call", string(b))
		expect(t, r, 200)
		return r.json(t)
	}
	got := call(map[string]any{"url": upstream.URL + "/x", "method": "POST", "json": map[string]any{"a": 1}, "qs": map[string]any{"q": "v"}, "headers": map[string]any{"Authorization": "Bearer t"}})
	body, _ := got["body"].(map[string]any)
	if got["status"] != 200.0 || body["method"] != "POST" || body["q"] != "v" || body["body"] != `{"a":1}` || body["auth"] != "Bearer t" {
		t.Fatalf("allowed call: %v", got)
	}
	for opts, want := range map[string]string{
		"http://example.com/":      "not allowed to example.com",
		upstream.URL + "/redirect": "not allowed to forbidden.example (redirect)",
		"file:///etc/passwd":       "Invalid URI",
	} {
		if got := call(map[string]any{"url": opts}); !strings.Contains(got["error"].(string), want) {
			t.Errorf("%s: %v, want %q", opts, got, want)
		}
	}
}
