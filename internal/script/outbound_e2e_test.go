package script_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/script"
)

var callApp = map[string]string{
	"api/call.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/call.js": `var request = require('request');
exports.post = function (req, res) {
    request(req.body, function (err, response, body) {
        if (err) { res.send(200, { error: err.message }); return; }
        res.send(200, { status: response.statusCode, body: body });
    });
};`,
}

// TestOutboundChecksResolvedAddress (issue 10 finding 16): a name on the allowlist that resolves to a
// loopback address is refused at dial time, directly and through a redirect, unless the address
// itself is listed.
func TestOutboundChecksResolvedAddress(t *testing.T) {
	hit := make(chan string, 10)
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hit <- name
			if to := r.URL.Query().Get("to"); to != "" {
				http.Redirect(w, r, to, http.StatusFound)
				return
			}
			fmt.Fprintf(w, "reached %s", name)
		})
	}
	// "inner" listens on 127.0.0.2: the internal service a script must not reach by name.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skip("no 127.0.0.2:", err)
	}
	inner := httptest.NewUnstartedServer(handler("inner"))
	inner.Listener.Close()
	inner.Listener = ln
	inner.Start()
	defer inner.Close()
	front := httptest.NewServer(handler("front")) // on 127.0.0.1, which the allowlist lists
	defer front.Close()
	_, innerPort, _ := net.SplitHostPort(inner.Listener.Addr().String())
	_, frontPort, _ := net.SplitHostPort(front.Listener.Addr().String())

	resolver := map[string][]netip.Addr{
		"rebind.test": {netip.MustParseAddr("127.0.0.2")},
		"mapped.test": {netip.MustParseAddr("::ffff:127.0.0.2")},
		"named.test":  {netip.MustParseAddr("127.0.0.1")},
	}
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := resolver[host]; ok {
			return a, nil
		}
		return net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	}
	newCaller := func(allow ...string) func(url string) map[string]any {
		e := newEnv(t, nil, callApp, func(o *script.Options) { o.HTTPAllow = allow; o.LookupIP = lookup })
		return func(url string) map[string]any {
			t.Helper()
			b, _ := json.Marshal(map[string]any{"url": url})
			r := e.do("POST", "/api/call", string(b))
			expect(t, r, 200)
			return r.json(t)
		}
	}
	refused := func(got map[string]any, want string) {
		t.Helper()
		if msg, _ := got["error"].(string); !strings.Contains(msg, want) {
			t.Fatalf("got %v, want an error containing %q", got, want)
		}
	}
	drain := func() []string {
		var out []string
		for {
			select {
			case h := <-hit:
				out = append(out, h)
			default:
				return out
			}
		}
	}

	call := newCaller("127.0.0.1", "rebind.test", "mapped.test", "named.test", "localhost")
	refused(call("http://rebind.test:"+innerPort+"/"), "resolves to 127.0.0.2")
	refused(call("http://mapped.test:"+innerPort+"/"), "resolves to ::ffff:127.0.0.2")
	refused(call("http://front.invalid:"+frontPort+"/"), "not allowed to front.invalid")
	// Redirects: the name check and the address check apply to every hop.
	refused(call("http://127.0.0.1:"+frontPort+"/?to=http://rebind.test:"+innerPort+"/"), "resolves to 127.0.0.2")
	refused(call("http://127.0.0.1:"+frontPort+"/?to=http://127.0.0.2:"+innerPort+"/"), "not allowed to 127.0.0.2 (redirect)")
	refused(call("http://127.0.0.1:"+frontPort+"/?to=http://[::ffff:127.0.0.2]:"+innerPort+"/"), "not allowed to ::ffff:127.0.0.2 (redirect)")
	if hosts := drain(); strings.Contains(strings.Join(hosts, ","), "inner") {
		t.Fatalf("the internal server was reached: %v", hosts)
	}
	// A name whose address is listed passes; so does the listed address itself.
	if got := call("http://named.test:" + frontPort + "/"); got["body"] != "reached front" {
		t.Fatalf("listed address by name: %v", got)
	}
	if got := call("http://localhost:" + frontPort + "/"); got["body"] != "reached front" && !strings.Contains(fmt.Sprint(got["error"]), "::1") {
		t.Fatalf("localhost with 127.0.0.1 listed: %v", got)
	}

	// Without the address listed, localhost (a real system lookup) is refused.
	call = newCaller("localhost")
	refused(call("http://localhost:"+frontPort+"/"), "a loopback, private or reserved address")
	// A range lets the operator reach an internal network by name.
	call = newCaller("rebind.test", "127.0.0.0/30")
	if got := call("http://rebind.test:" + innerPort + "/"); got["body"] != "reached inner" {
		t.Fatalf("listed range: %v", got)
	}
	drain()
}
