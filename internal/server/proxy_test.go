package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/server"
)

func prefixes(t testing.TB, cidrs ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, c := range cidrs {
		out = append(out, netip.MustParsePrefix(c))
	}
	return out
}

func TestProxiesResolve(t *testing.T) {
	lb := prefixes(t, "10.0.0.0/8", "2001:db8:ffff::/48")
	cases := []struct {
		name      string
		forwarded bool
		peer      string
		hdr       map[string][]string
		tls       bool
		wantIP    string
		wantHTTPS bool
		wantHost  string
	}{
		{name: "untrusted peer, forged XFF ignored", peer: "198.51.100.9:5000",
			hdr:    map[string][]string{"X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}},
			wantIP: "198.51.100.9", wantHost: "api.example.com"},
		{name: "untrusted peer, forged Forwarded ignored", forwarded: true, peer: "198.51.100.9:5000",
			hdr: map[string][]string{"Forwarded": {"for=1.2.3.4;proto=https"}}, wantIP: "198.51.100.9", wantHost: "api.example.com"},
		{name: "trusted peer, one hop", peer: "10.0.0.2:5000",
			hdr:    map[string][]string{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"API.example.com:443"}},
			wantIP: "203.0.113.5", wantHTTPS: true, wantHost: "api.example.com:443"},
		{name: "client prepends a forged entry: rightmost untrusted wins", peer: "10.0.0.2:5000",
			hdr:    map[string][]string{"X-Forwarded-For": {"6.6.6.6, 203.0.113.5"}},
			wantIP: "203.0.113.5", wantHost: "api.example.com"},
		{name: "two trusted hops, several header lines", peer: "10.0.0.2:5000",
			hdr:    map[string][]string{"X-Forwarded-For": {"6.6.6.6, 203.0.113.5", "10.1.2.3"}},
			wantIP: "203.0.113.5", wantHost: "api.example.com"},
		{name: "only trusted entries: leftmost", peer: "10.0.0.2:5000",
			hdr: map[string][]string{"X-Forwarded-For": {"10.9.9.9, 10.1.1.1"}}, wantIP: "10.9.9.9", wantHost: "api.example.com"},
		{name: "garbage entry stops the walk at the last trusted hop", peer: "10.0.0.2:5000",
			hdr: map[string][]string{"X-Forwarded-For": {"203.0.113.5, not-an-ip, 10.1.1.1"}}, wantIP: "10.1.1.1", wantHost: "api.example.com"},
		{name: "ports and brackets", peer: "10.0.0.2:5000",
			hdr: map[string][]string{"X-Forwarded-For": {"[2001:db8::7]:443"}}, wantIP: "2001:db8::7", wantHost: "api.example.com"},
		{name: "IPv4 with port (Azure style)", peer: "10.0.0.2:5000",
			hdr: map[string][]string{"X-Forwarded-For": {"203.0.113.5:51234"}}, wantIP: "203.0.113.5", wantHost: "api.example.com"},
		{name: "mapped IPv4 unmapped", peer: "[::ffff:10.0.0.2]:5000",
			hdr: map[string][]string{"X-Forwarded-For": {"::ffff:203.0.113.5"}}, wantIP: "203.0.113.5", wantHost: "api.example.com"},
		{name: "aligned X-Forwarded-Proto", peer: "10.0.0.2:5000",
			hdr:    map[string][]string{"X-Forwarded-For": {"203.0.113.5, 10.1.1.1"}, "X-Forwarded-Proto": {"https, http"}},
			wantIP: "203.0.113.5", wantHTTPS: true, wantHost: "api.example.com"},
		{name: "x-forwarded mode ignores Forwarded", peer: "10.0.0.2:5000",
			hdr: map[string][]string{"Forwarded": {"for=6.6.6.6;proto=https"}}, wantIP: "10.0.0.2", wantHost: "api.example.com"},
		{name: "forwarded mode ignores X-Forwarded-For", forwarded: true, peer: "10.0.0.2:5000",
			hdr: map[string][]string{"X-Forwarded-For": {"6.6.6.6"}}, wantIP: "10.0.0.2", wantHost: "api.example.com"},
		{name: "RFC 7239 chain", forwarded: true, peer: "10.0.0.2:5000",
			hdr:    map[string][]string{"Forwarded": {`for=6.6.6.6;proto=http, for="[2001:db8:cafe::17]:4711";proto=https;host=api.example.com`, `for=10.0.0.9;proto=http`}},
			wantIP: "2001:db8:cafe::17", wantHTTPS: true, wantHost: "api.example.com"},
		{name: "RFC 7239 quoted separators", forwarded: true, peer: "10.0.0.2:5000",
			hdr:    map[string][]string{"Forwarded": {`for="203.0.113.5";host="a,b;c", for=10.0.0.3`}},
			wantIP: "203.0.113.5", wantHost: "api.example.com"},
		{name: "RFC 7239 obfuscated identifier", forwarded: true, peer: "10.0.0.2:5000",
			hdr: map[string][]string{"Forwarded": {`for=_hidden, for=10.0.0.3`}}, wantIP: "10.0.0.3", wantHost: "api.example.com"},
		{name: "own TLS", peer: "198.51.100.9:5000", tls: true, wantIP: "198.51.100.9", wantHTTPS: true, wantHost: "api.example.com"},
		{name: "trusted proxy says http over own TLS", peer: "10.0.0.2:5000", tls: true,
			hdr: map[string][]string{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"http"}}, wantIP: "203.0.113.5", wantHost: "api.example.com"},
		{name: "x-arr-ssl from trusted peer", peer: "10.0.0.2:5000",
			hdr: map[string][]string{"x-arr-ssl": {"2048|256|..."}}, wantIP: "10.0.0.2", wantHTTPS: true, wantHost: "api.example.com"},
		{name: "x-arr-ssl from untrusted peer", peer: "198.51.100.9:5000",
			hdr: map[string][]string{"x-arr-ssl": {"2048|256|..."}}, wantIP: "198.51.100.9", wantHost: "api.example.com"},
		{name: "bad host dropped", peer: "10.0.0.2:5000",
			hdr:    map[string][]string{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Host": {"evil.example/\r\nx"}},
			wantIP: "203.0.113.5", wantHost: "api.example.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := "http://api.example.com/tables/x"
			if c.tls {
				u = "https://api.example.com/tables/x"
			}
			r := httptest.NewRequest("GET", u, nil)
			r.RemoteAddr = c.peer
			for k, vs := range c.hdr {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			p := server.Proxies{Trusted: lb, Forwarded: c.forwarded}
			got := p.Resolve(r)
			if got.IP.String() != c.wantIP || got.HTTPS != c.wantHTTPS || got.Host != c.wantHost {
				t.Fatalf("got ip=%s https=%v host=%q, want ip=%s https=%v host=%q", got.IP, got.HTTPS, got.Host, c.wantIP, c.wantHTTPS, c.wantHost)
			}
		})
	}
}

// TestForwardedHeadersOverHTTP runs the whole middleware chain: the access log, require_https and
// HSTS all follow the resolved client, and a peer outside trusted_proxies cannot forge any of it.
func TestForwardedHeadersOverHTTP(t *testing.T) {
	probe := func(e *env) {
		e.srv.MountPath("/test/client", "/test/client", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpx.JSON(w, 200, map[string]any{"ip": httpx.ClientIP(r), "https": httpx.ClientOf(r).HTTPS})
		}))
	}
	forged := map[string]string{"X-Forwarded-For": "203.0.113.77", "X-Forwarded-Proto": "https"}

	t.Run("untrusted peer", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.RequireHTTPS = true; c.Edge.TrustedProxies = []string{"10.0.0.0/8"} }, nil)
		probe(e)
		r := e.do(t, "GET", "/test/client", forged, "")
		if r.status != http.StatusForbidden {
			t.Fatalf("forged X-Forwarded-Proto from an untrusted peer passed require_https: %d %s", r.status, r.body)
		}
		if r.header.Get("Strict-Transport-Security") != "" {
			t.Fatal("HSTS on a plain-HTTP response")
		}
		if strings.Contains(e.logs.String(), "203.0.113.77") || !strings.Contains(e.logs.String(), `"remote":"127.0.0.1"`) {
			t.Fatalf("access log should name the peer, not the forged address: %s", e.logs.String())
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		e := newEnv(t, func(c *config.Config) { c.RequireHTTPS = true; c.Edge.TrustedProxies = []string{"127.0.0.1"} }, nil)
		probe(e)
		r := e.do(t, "GET", "/test/client", forged, "")
		if r.status != 200 || !strings.Contains(r.body, `"ip":"203.0.113.77"`) || !strings.Contains(r.body, `"https":true`) {
			t.Fatalf("trusted proxy's headers not honoured: %d %s", r.status, r.body)
		}
		if got := r.header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Fatalf("HSTS = %q", got)
		}
		if !strings.Contains(e.logs.String(), `"remote":"203.0.113.77"`) {
			t.Fatalf("access log lacks the client address: %s", e.logs.String())
		}
		if r := e.do(t, "GET", "/test/client", map[string]string{"X-Forwarded-For": "203.0.113.77"}, ""); r.status != http.StatusForbidden {
			t.Fatalf("plain HTTP through the proxy passed require_https: %d", r.status)
		}
	})
}

// FuzzProxies feeds arbitrary forwarding headers: no panic, always a valid client address, a host
// safe to log, and nothing believed when no proxy is trusted.
func FuzzProxies(f *testing.F) {
	f.Add("203.0.113.5, 10.0.0.1", "https", "api.example.com", `for=203.0.113.5;proto=https, for="[2001:db8::1]:80"`)
	f.Add("[::1]:80,unknown,,", "http,https", "a:1", `for="\"";host=";,"`)
	f.Add(strings.Repeat("10.0.0.1,", 100), "", "", strings.Repeat("for=10.0.0.1,", 100))
	trusted := prefixes(f, "10.0.0.0/8", "::1/128")
	f.Fuzz(func(t *testing.T, xff, xfp, xfh, fwd string) {
		for _, forwarded := range []bool{false, true} {
			r := httptest.NewRequest("GET", "http://h/", nil)
			r.RemoteAddr = "10.0.0.2:1234"
			r.Header["X-Forwarded-For"] = []string{xff}
			r.Header["X-Forwarded-Proto"] = []string{xfp}
			r.Header["X-Forwarded-Host"] = []string{xfh}
			r.Header["Forwarded"] = []string{fwd}
			c := server.Proxies{Trusted: trusted, Forwarded: forwarded}.Resolve(r)
			if !c.IP.IsValid() {
				t.Fatalf("invalid client address from %q / %q", xff, fwd)
			}
			if c.Peer.String() != "10.0.0.2" {
				t.Fatalf("peer changed: %s", c.Peer)
			}
			// A client address other than the peer must come from an entry the walk reached, and the
			// walk only passes trusted addresses: re-resolving with nothing trusted gives the peer.
			if again := (server.Proxies{Forwarded: forwarded}).Resolve(r); again.IP != c.Peer || again.HTTPS || again.Host != "h" {
				t.Fatalf("untrusted resolution believed a header: %+v", again)
			}
			for _, ch := range c.Host {
				if ch < 0x21 || ch > 0x7e || ch == '/' {
					t.Fatalf("unsafe host %q", c.Host)
				}
			}
		}
	})
}
