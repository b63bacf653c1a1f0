package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/token"
)

const (
	masterKey = "test-master-key-0123456789abcdef"
	appKey    = "test-application-key-0123456789"
	systemKey = "test-system-key-0123456789abcdef"
	oldMaster = "retired-master-key-0123456789abc"
)

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

// syncBuffer collects logs from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	srv     *server.Server
	ts      *httptest.Server
	logs    *syncBuffer
	minter  *auth.Minter
	metrics *metrics.Metrics
}

func newEnv(t *testing.T, mutate func(*config.Config), db server.Pinger) *env {
	t.Helper()
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.RequestTimeout = 2 * time.Second
	if mutate != nil {
		mutate(cfg)
	}
	if db == nil {
		db = pinger{}
	}
	a, err := auth.New(auth.Secrets{MasterKey: masterKey, ApplicationKey: appKey, SystemKey: systemKey,
		Previous: []token.Key{{Secret: oldMaster, RetiredAt: time.Now().Add(-time.Hour)}}},
		auth.Options{ClockSkew: time.Minute, MaxTTL: cfg.TokenMaxTTL})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	m := metrics.New("test")
	minter := &auth.Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: cfg.TokenMaxTTL}
	s := server.New(server.Deps{Config: cfg, Auth: a, Minter: minter, DB: db, Metrics: m,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Version: "test"})
	// Test routes: one per permission, answering with who the caller is.
	for _, p := range []auth.Permission{auth.Public, auth.Application, auth.User, auth.Admin} {
		p := p
		s.MountPath("/test/"+p.String(), "/test/"+p.String(), server.RequirePermission(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := httpx.CallerOf(r)
			httpx.JSON(w, http.StatusOK, map[string]any{"level": c.Level.String(), "userId": c.UserID()})
		})))
	}
	s.MountPath("/test/panic", "/test/panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom " + masterKey) }))
	s.MountPath("/test/slow", "/test/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	s.MountPath("/test/stuck", "/test/stuck", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1500 * time.Millisecond) // ignores its context
		httpx.JSON(w, http.StatusOK, map[string]string{"late": "yes"})
	}))
	s.MountPath("/test/echo", "/test/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		if err := httpx.ReadJSON(r, &v); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, v)
	}))
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &env{srv: s, ts: ts, logs: logs, minter: minter, metrics: m}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(t *testing.T, method, path string, headers map[string]string, body string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

func mint(t *testing.T, secret string, exp time.Time, uid string) string {
	t.Helper()
	tok, err := token.Mint(secret, token.Claims{Exp: exp.Unix(), Iss: token.Issuer, Ver: 2, Aud: "Custom", UID: uid})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestPermissionMatrix covers permission × caller kind × token state.
func TestPermissionMatrix(t *testing.T) {
	e := newEnv(t, nil, nil)
	now := time.Now()
	valid := mint(t, masterKey, now.Add(time.Hour), "custom:alice")
	tokens := map[string]struct {
		tok  string
		ok   bool
		want string // expected 401 message when !ok
	}{
		"none":        {"", true, ""},
		"valid":       {valid, true, ""},
		"retired key": {mint(t, oldMaster, now.Add(time.Hour), "custom:alice"), true, ""},
		"expired":     {mint(t, masterKey, now.Add(-time.Hour), "custom:alice"), false, "Error: The authentication token has expired."},
		"forged":      {valid[:len(valid)-2] + "AA", false, "Error: The authentication token has an invalid signature."},
		"wrong key":   {mint(t, "some-other-master-key-entirely", now.Add(time.Hour), "custom:alice"), false, "Error: The authentication token has an invalid signature."},
		"garbage":     {"randomgoop", false, "Error: Invalid token format. Expected Envelope.Claims.Signature."},
		"alg none":    {"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjk5OTk5OTk5OTksInVpZCI6ImN1c3RvbTphbGljZSJ9.", false, "Error: Invalid token format. Signature must not be empty."},
	}
	callers := map[string]map[string]string{
		"anonymous":         {},
		"app key":           {"X-ZUMO-APPLICATION": appKey},
		"wrong app key":     {"X-ZUMO-APPLICATION": appKey + "x"},
		"master key":        {"X-ZUMO-MASTER": masterKey},
		"wrong master":      {"X-ZUMO-MASTER": masterKey[:len(masterKey)-1]},
		"app key as master": {"X-ZUMO-MASTER": appKey},
	}
	for _, perm := range []auth.Permission{auth.Public, auth.Application, auth.User, auth.Admin} {
		for cname, headers := range callers {
			for tname, tk := range tokens {
				t.Run(fmt.Sprintf("%s/%s/%s", perm, cname, tname), func(t *testing.T) {
					h := map[string]string{}
					for k, v := range headers {
						h[k] = v
					}
					if tk.tok != "" {
						h["X-ZUMO-AUTH"] = tk.tok
					}
					r := e.do(t, "GET", "/test/"+perm.String(), h, "")
					if !tk.ok {
						// A present but invalid token is 401 with its message, even on public routes and
						// even with the master key.
						if r.status != 401 || !strings.Contains(r.body, tk.want) {
							t.Fatalf("got %d %s, want 401 %q", r.status, r.body, tk.want)
						}
						return
					}
					isAdmin := cname == "master key"
					hasApp := cname == "app key"
					hasUser := tk.tok != ""
					allowed := isAdmin || perm == auth.Public || (perm == auth.Application && hasApp) || (perm == auth.User && hasUser)
					if allowed {
						if r.status != 200 {
							t.Fatalf("got %d %s, want 200", r.status, r.body)
						}
						var body map[string]string
						json.Unmarshal([]byte(r.body), &body)
						wantLevel := "anonymous"
						if hasUser {
							wantLevel = "authenticated"
						}
						if isAdmin {
							wantLevel = "admin"
						}
						if body["level"] != wantLevel {
							t.Fatalf("level %q, want %q", body["level"], wantLevel)
						}
						if hasUser && body["userId"] != "custom:alice" {
							t.Fatalf("userId %q", body["userId"])
						}
						return
					}
					if r.status != 401 || r.body != `{"code":401,"error":"Error: Unauthorized"}` {
						t.Fatalf("got %d %s, want 401 Unauthorized", r.status, r.body)
					}
				})
			}
		}
	}
}

func TestBearerAndV2Errors(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := mint(t, masterKey, time.Now().Add(time.Hour), "custom:bob")
	r := e.do(t, "GET", "/test/user", map[string]string{"Authorization": "Bearer " + tok, "ZUMO-API-VERSION": "2.0.0"}, "")
	if r.status != 200 || !strings.Contains(r.body, "custom:bob") {
		t.Fatalf("bearer: %d %s", r.status, r.body)
	}
	r = e.do(t, "GET", "/test/user", map[string]string{"ZUMO-API-VERSION": "2.0.0"}, "")
	if r.status != 401 || r.body != `{"error":"You must be logged in to use this application"}` {
		t.Fatalf("v2 401: %d %s", r.status, r.body)
	}
	r = e.do(t, "GET", "/test/user?zumo-api-version=2.0.0", map[string]string{"X-ZUMO-AUTH": "x.y.z"}, "")
	if r.status != 401 || !strings.HasPrefix(r.body, `{"error":"`) {
		t.Fatalf("v2 token error: %d %s", r.status, r.body)
	}
}

func TestAuthMe(t *testing.T) {
	e := newEnv(t, nil, nil)
	r := e.do(t, "GET", "/.auth/me", map[string]string{"X-ZUMO-AUTH": "randomgoop"}, "")
	if r.status != 401 || r.body != `{"code":401,"error":"Error: Invalid token format. Expected Envelope.Claims.Signature."}` {
		t.Fatalf("random token: %d %s", r.status, r.body)
	}
	r = e.do(t, "GET", "/.auth/me", nil, "")
	if r.status != 401 {
		t.Fatalf("anonymous: %d %s", r.status, r.body)
	}
	tok, _, err := e.minter.Mint(auth.MintRequest{UserID: "custom:123"})
	if err != nil {
		t.Fatal(err)
	}
	r = e.do(t, "GET", "/.auth/me", map[string]string{"X-ZUMO-AUTH": tok}, "")
	if r.status != 200 {
		t.Fatalf("me: %d %s", r.status, r.body)
	}
	var ids []struct {
		ProviderName string `json:"provider_name"`
		UserID       string `json:"user_id"`
		UserClaims   []struct{ Typ, Val string }
	}
	if err := json.Unmarshal([]byte(r.body), &ids); err != nil || len(ids) != 1 || ids[0].ProviderName != "custom" || ids[0].UserID != "custom:123" {
		t.Fatalf("me body %s (%v)", r.body, err)
	}
	// The original's encrypted credentials claim is never echoed.
	cred, _ := token.Mint(masterKey, token.Claims{Exp: time.Now().Add(time.Hour).Unix(), UID: "Facebook:1", Extra: map[string]any{"urn:microsoft:credentials": "secretblob"}})
	r = e.do(t, "GET", "/.auth/me?provider=facebook", map[string]string{"X-ZUMO-AUTH": cred}, "")
	if r.status != 200 || strings.Contains(r.body, "secretblob") || !strings.Contains(r.body, "Facebook:1") {
		t.Fatalf("credentials: %d %s", r.status, r.body)
	}
	r = e.do(t, "GET", "/.auth/me?provider=google", map[string]string{"X-ZUMO-AUTH": cred}, "")
	if r.status != 200 || r.body != "[]" {
		t.Fatalf("provider filter: %d %s", r.status, r.body)
	}
	r = e.do(t, "POST", "/.auth/me", map[string]string{"X-ZUMO-AUTH": cred}, "")
	if r.status != 405 || r.header.Get("Allow") != "GET" {
		t.Fatalf("POST me: %d %v", r.status, r.header)
	}
}

func TestAdminMint(t *testing.T) {
	e := newEnv(t, nil, nil)
	body := `{"userId":"custom:42","ttl":"1h"}`
	if r := e.do(t, "POST", "/admin/tokens", nil, body); r.status != 401 {
		t.Fatalf("anonymous mint: %d", r.status)
	}
	if r := e.do(t, "POST", "/admin/tokens", map[string]string{"X-ZUMO-APPLICATION": appKey}, body); r.status != 401 {
		t.Fatalf("app-key mint: %d", r.status)
	}
	r := e.do(t, "POST", "/admin/tokens", map[string]string{"X-ZUMO-MASTER": masterKey}, body)
	if r.status != 200 {
		t.Fatalf("mint: %d %s", r.status, r.body)
	}
	var out struct {
		User  struct{ UserID string }
		Token string `json:"authenticationToken"`
	}
	json.Unmarshal([]byte(r.body), &out)
	if out.User.UserID != "custom:42" {
		t.Fatalf("body %s", r.body)
	}
	if r := e.do(t, "GET", "/test/user", map[string]string{"X-ZUMO-AUTH": out.Token}, ""); r.status != 200 {
		t.Fatalf("minted token rejected: %d %s", r.status, r.body)
	}
	if strings.Contains(e.logs.String(), out.Token) {
		t.Fatal("minted token logged")
	}
	bad := []struct{ body, want string }{
		{`{"userId":""}`, "user id"},
		{`{"userId":"custom:1","ttl":"forever"}`, "ttl"},
		{`{"userId":"custom:1","ttl":"100000h"}`, "ttl"},
		{`{"userId":"a\u0000b"}`, "user id"},
		{`{"userId":`, "not valid JSON"},
		{``, "empty"},
		{`{"userId":"a"} {}`, "single JSON value"},
		{`{"userId":5}`, "must be string"},
	}
	for _, b := range bad {
		r := e.do(t, "POST", "/admin/tokens", map[string]string{"X-ZUMO-MASTER": masterKey}, b.body)
		if r.status != 400 || !strings.Contains(r.body, b.want) {
			t.Errorf("%s: %d %s, want 400 %q", b.body, r.status, r.body, b.want)
		}
	}
}

func TestServerBehaviour(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.MaxRequestBodyKB = 1
		c.CrossDomainWhitelist = []string{"localhost", "*.example.com", "null"}
	}, nil)
	cases := []struct {
		name           string
		method, path   string
		headers        map[string]string
		body           string
		status         int
		bodyWant       string
		headerKey, hdr string
	}{
		{name: "status v1", method: "GET", path: "/status", status: 200, bodyWant: ""},
		{name: "status v2", method: "GET", path: "/status", headers: map[string]string{"ZUMO-API-VERSION": "2.0.0"}, status: 200, bodyWant: `{"status":"Running"}`},
		{name: "status case-insensitive", method: "GET", path: "/STATUS", status: 200},
		{name: "status 405", method: "POST", path: "/status", status: 405, headerKey: "Allow", hdr: "GET"},
		{name: "healthz", method: "GET", path: "/healthz", status: 200, bodyWant: `{"status":"ok"}`},
		{name: "readyz", method: "GET", path: "/readyz", status: 200, bodyWant: `{"status":"ready"}`},
		{name: "unknown route v1", method: "GET", path: "/nope", status: 404, bodyWant: `{"code":404,"error":"Error: Not Found"}`},
		{name: "unknown route v2", method: "GET", path: "/nope", headers: map[string]string{"ZUMO-API-VERSION": "2.0.0"}, status: 404, bodyWant: `{"error":"Not Found"}`},
		{name: "token ignored on status", method: "GET", path: "/status", headers: map[string]string{"X-ZUMO-AUTH": "garbage"}, status: 200},
		{name: "bad api version on tables", method: "GET", path: "/tables/x", headers: map[string]string{"ZUMO-API-VERSION": "3.0.0"}, status: 400,
			bodyWant: `{"error":"An invalid API version was specified in the request, this request needs to specify a ZUMO-API-VERSION of 2.0.0."}`},
		{name: "body too large by length", method: "POST", path: "/test/echo", body: strings.Repeat(" ", 2048), status: 413,
			bodyWant: `{"code":413,"error":"Error: Request body maximum size limit was exceeded."}`},
		{name: "body ok", method: "POST", path: "/test/echo", body: `{"a":1}`, status: 200, bodyWant: `{"a":1}`},
		{name: "panic", method: "GET", path: "/test/panic", status: 500},
		{name: "preflight", method: "OPTIONS", path: "/tables/todo", headers: map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Headers": "x-zumo-auth, content-type"},
			status: 204, headerKey: "Access-Control-Allow-Origin", hdr: "https://app.example.com"},
		{name: "cors deep wildcard", method: "GET", path: "/status", headers: map[string]string{"Origin": "http://a.b.example.com:8443"}, status: 200, headerKey: "Access-Control-Allow-Origin", hdr: "http://a.b.example.com:8443"},
		{name: "cors localhost", method: "GET", path: "/status", headers: map[string]string{"Origin": "http://localhost:3000"}, status: 200, headerKey: "Access-Control-Allow-Origin", hdr: "http://localhost:3000"},
		{name: "cors null", method: "GET", path: "/status", headers: map[string]string{"Origin": "null"}, status: 200, headerKey: "Access-Control-Allow-Origin", hdr: "null"},
		{name: "cors rejected suffix trick", method: "GET", path: "/status", headers: map[string]string{"Origin": "https://example.com.evil.net"}, status: 200, headerKey: "Access-Control-Allow-Origin", hdr: ""},
		{name: "cors rejected scheme", method: "GET", path: "/status", headers: map[string]string{"Origin": "file://localhost"}, status: 200, headerKey: "Access-Control-Allow-Origin", hdr: ""},
		{name: "cors rejected path", method: "GET", path: "/status", headers: map[string]string{"Origin": "http://localhost/x"}, status: 200, headerKey: "Access-Control-Allow-Origin", hdr: ""},
		{name: "metrics need master key", method: "GET", path: "/metrics", status: 401},
		{name: "metrics with master key", method: "GET", path: "/metrics", headers: map[string]string{"X-ZUMO-MASTER": masterKey}, status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, tc.headers, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.bodyWant != "" && r.body != tc.bodyWant {
				t.Fatalf("body %q, want %q", r.body, tc.bodyWant)
			}
			if tc.headerKey != "" && r.header.Get(tc.headerKey) != tc.hdr {
				t.Fatalf("%s = %q, want %q", tc.headerKey, r.header.Get(tc.headerKey), tc.hdr)
			}
			if r.header.Get("x-zumo-server-version") == "" {
				t.Fatal("missing x-zumo-server-version")
			}
			if tc.status >= 400 {
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Fatalf("error content type %q", ct)
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(r.body), &m); err != nil || m["error"] == nil {
					t.Fatalf("error body is not JSON with error: %q", r.body)
				}
			}
		})
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"panic"`) || !strings.Contains(logs, "request_id") {
		t.Fatalf("panic not logged with request id: %s", logs)
	}
}

func TestBodyLimitStreaming(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.MaxRequestBodyKB = 1 }, nil)
	// Chunked body (no Content-Length) over the limit.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"a":"` + strings.Repeat("x", 4096) + `"}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", e.ts.URL+"/test/echo", pr)
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 413 || !strings.Contains(string(b), "maximum size") {
		t.Fatalf("chunked over limit: %d %s", res.StatusCode, b)
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.RequestTimeout = time.Second }, nil)
	r := e.do(t, "GET", "/test/slow", nil, "")
	if r.status != 503 || r.body != `{"code":503,"error":"Error: The request has timed out."}` {
		t.Fatalf("timeout: %d %s", r.status, r.body)
	}
	r = e.do(t, "GET", "/test/slow", map[string]string{"ZUMO-API-VERSION": "2.0.0"}, "")
	if r.status != 503 || r.body != `{"error":"The request has timed out."}` {
		t.Fatalf("timeout v2: %d %s", r.status, r.body)
	}
}

func TestTimeoutWithoutContext(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.RequestTimeout = time.Second }, nil)
	r := e.do(t, "GET", "/test/stuck", nil, "")
	if r.status != 503 || strings.Contains(r.body, "late") {
		t.Fatalf("a handler that ignores its context: %d %s", r.status, r.body)
	}
}

func TestReadyzDown(t *testing.T) {
	e := newEnv(t, nil, pinger{errors.New("connection refused")})
	r := e.do(t, "GET", "/readyz", nil, "")
	if r.status != 503 {
		t.Fatalf("readyz with db down: %d", r.status)
	}
}

func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := mint(t, masterKey, time.Now().Add(time.Hour), "custom:carol")
	e.do(t, "GET", "/test/user?code=secretcode&state=s", map[string]string{"X-ZUMO-AUTH": tok, "X-ZUMO-MASTER": masterKey, "X-ZUMO-APPLICATION": appKey}, "")
	e.do(t, "GET", "/test/user", map[string]string{"X-ZUMO-AUTH": tok + "x"}, "")
	e.do(t, "GET", "/test/panic", map[string]string{"X-ZUMO-MASTER": masterKey}, "")
	logs := e.logs.String()
	for _, secret := range []string{tok, strings.Split(tok, ".")[2], appKey, "secretcode"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("secret %q found in logs", secret)
		}
	}
}

func TestAuthFailureMetrics(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.do(t, "GET", "/test/public", map[string]string{"X-ZUMO-AUTH": mint(t, masterKey, time.Now().Add(-time.Hour), "a:b")}, "")
	e.do(t, "GET", "/test/public", map[string]string{"X-ZUMO-MASTER": "wrong"}, "")
	r := e.do(t, "GET", "/metrics", map[string]string{"X-ZUMO-MASTER": masterKey}, "")
	for _, want := range []string{`gatehouse_auth_failures_total{reason="expired"} 1`, `gatehouse_auth_failures_total{reason="master_key"} 1`, `gatehouse_http_requests_total{method="GET",route="/test/public",status="401"} 1`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestPrefixMounts(t *testing.T) {
	e := newEnv(t, nil, nil)
	hit := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { httpx.JSON(w, 200, map[string]string{"h": name}) })
	}
	e.srv.Mount("/admin/things", "/admin/things", hit("things"))
	e.srv.Mount("/admin/things/special", "/admin/things/special", hit("special"))
	e.srv.Mount("widgets", "/widgets", hit("widgets"))
	for path, want := range map[string]string{
		"/admin/things": `{"h":"things"}`, "/ADMIN/Things/x/y": `{"h":"things"}`, "/admin/things/special/1": `{"h":"special"}`,
		"/widgets/a": `{"h":"widgets"}`, "/widgetsx": `{"code":404,"error":"Error: Not Found"}`, "/admin/thingsx": `{"code":404,"error":"Error: Not Found"}`,
	} {
		if r := e.do(t, "GET", path, nil, ""); r.body != want {
			t.Errorf("%s: %s, want %s", path, r.body, want)
		}
	}
	if r := e.do(t, "POST", "/admin/tokens", map[string]string{"X-ZUMO-MASTER": masterKey}, `{"userId":"a:b"}`); r.status != 200 {
		t.Errorf("exact mount shadowed: %d", r.status)
	}
}

// streamer serves /test/stream as a stream: a line at once, another after 1.5 s (past the request
// timeout); everything else under it as an ordinary request.
type streamer struct{}

func (streamer) Streams(r *http.Request) bool { return r.URL.Path == "/test/stream" }

func (streamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for i := range 2 {
		if i > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(1500 * time.Millisecond):
			}
		}
		if _, err := io.WriteString(w, "data: "+strconv.Itoa(i)+"\n\n"); err != nil {
			return
		}
		if err := rc.Flush(); err != nil && (streamer{}).Streams(r) {
			panic(err) // every middleware writer of a stream must unwrap to the connection's flusher
		}
	}
}

// TestStreamBypassesTimeout: a Streamer's stream is neither buffered nor cut at the request
// timeout; the handler's other requests still are.
func TestStreamBypassesTimeout(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.RequestTimeout = time.Second }, nil)
	e.srv.Mount("/test/stream", "/test/stream", streamer{})
	start := time.Now()
	res, err := http.Get(e.ts.URL + "/test/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: 0\n" || time.Since(start) > time.Second {
		t.Fatalf("first event: %q %v after %v (buffered?)", line, err, time.Since(start))
	}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "data: 1") || res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("after the request timeout: %d %q %v", res.StatusCode, rest, err)
	}
	// Not a stream: buffered and cut at the timeout as before.
	if r := e.do(t, "GET", "/test/stream/other", nil, ""); r.status != 503 {
		t.Fatalf("an ordinary request of the streamer: %d %s", r.status, r.body)
	}
}

// TestLateWriteReachesNoOtherResponse checks the pooled response buffers: a goroutine that a handler
// left running and that writes after the response went out gets an error, and its bytes reach no
// later response (whose buffer may be the same one).
func TestLateWriteReachesNoOtherResponse(t *testing.T) {
	e := newEnv(t, nil, nil)
	late := make(chan error, 1)
	e.srv.MountPath("/test/late", "/test/late", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"first":true}`)) //nolint:errcheck
		go func() {
			time.Sleep(50 * time.Millisecond)
			_, err := w.Write([]byte("LEAK"))
			late <- err
		}()
	}))
	if r := e.do(t, "GET", "/test/late", nil, ""); r.status != 200 || r.body != `{"first":true}` {
		t.Fatalf("late: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		r := e.do(t, "POST", "/test/echo", map[string]string{"Content-Type": "application/json"}, `{"n":1}`)
		if r.status != 200 || strings.Contains(r.body, "LEAK") {
			t.Fatalf("a later response: %d %s", r.status, r.body)
		}
	}
	if err := <-late; err == nil {
		t.Fatal("a write after the response was accepted")
	}
}
