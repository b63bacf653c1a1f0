package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestDatabaseOutage: PostgreSQL becomes unreachable under a running server. Tables, logins and the
// readiness probe answer 503 with Retry-After; the log has one ERROR line for the whole outage and
// one recovery line with the count; when the database is back, requests succeed again.
func TestDatabaseOutage(t *testing.T) {
	dsn, proxy := storetest.ProxiedPostgresURL(t)
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{
		"GATEHOUSE_MASTER_KEY": "outage-master-key-0123456789abcdef", "GATEHOUSE_APPLICATION_KEY": "outage-app-key-0123456789abcdef",
		"GATEHOUSE_ACCOUNTS_ENABLED": "true", "GATEHOUSE_DATABASE": dsn, "GATEHOUSE_DB_MAX_CONNS": "4",
		"GATEHOUSE_DB_STATEMENT_TIMEOUT": "20s",
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if rc, _, errs := runCmd(t, env, "migrate", "up", "--data", data); rc != 0 {
		t.Fatalf("migrate up: %s", errs)
	}
	if rc, _, errs := runCmd(t, env, "table", "create", "todo", "--data", data, "--columns", "title=string"); rc != 0 {
		t.Fatalf("table create: %s", errs)
	}
	// A custom API reading the table through the scripts' tables service.
	app := filepath.Join(t.TempDir(), "app")
	writeFiles(t, app, map[string]string{
		"datamodel.json": `{"tables":[]}`,
		"api/count.json": `{"routes":{"*":{"get":{"permission":"application"}}}}`,
		"api/count.js": `exports.get = function (req, res) {
    tables.getTable('todo').read({ success: function (rows) { res.send(200, {n: rows.length}); } });
};`,
	})
	base, stderr, _ := startServer(t, []string{"--data", data, "--app", app}, env)
	appKey := map[string]string{"X-ZUMO-APPLICATION": env["GATEHOUSE_APPLICATION_KEY"]}

	type call struct{ method, path, body string }
	calls := []call{
		{"GET", "/tables/todo", ""},
		{"POST", "/tables/todo", `{"title":"during the outage"}`},
		{"POST", "/login/custom", `{"email":"nobody@example.com","password":"some password"}`},
		{"GET", "/api/count", ""},
		{"GET", "/readyz", ""},
	}
	do := func(c call) (int, http.Header, string) {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		for k, v := range appKey {
			req.Header.Set(k, v)
		}
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	for _, c := range calls {
		if code, _, body := do(c); code >= 500 {
			t.Fatalf("before the outage: %s %s: %d %s", c.method, c.path, code, body)
		}
	}
	// The statement_timeout setting reaches the connections.
	if !strings.Contains(stderr.String(), "gatehouse listening") {
		t.Fatal("server not started")
	}
	// Start-up says how PostgreSQL is reached; a loopback connection without TLS is no warning.
	if log := stderr.String(); !strings.Contains(log, `without TLS (sslmode=disable)`) || strings.Contains(log, "not protected") {
		t.Errorf("start-up log does not describe the database transport as expected:\n%s", log)
	}

	proxy.Cut()
	logBefore := len(stderr.String())
	const rounds = 5
	for i := 0; i < rounds; i++ {
		for _, c := range calls {
			code, h, body := do(c)
			if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
				t.Fatalf("during the outage: %s %s: %d Retry-After=%q %s", c.method, c.path, code, h.Get("Retry-After"), body)
			}
			if strings.Contains(body, "pgconn") || strings.Contains(body, "dial") {
				t.Fatalf("error detail leaked to the client: %s", body)
			}
		}
	}
	outageLog := stderr.String()[logBefore:]
	if n := strings.Count(outageLog, `"level":"ERROR"`); n != 1 || !strings.Contains(outageLog, "database unreachable") {
		t.Fatalf("want exactly one ERROR line for the outage, got %d:\n%s", n, outageLog)
	}

	proxy.Restore()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, _ := do(call{"GET", "/readyz", ""})
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after the database came back: %s", stderr.String()[logBefore:])
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, c := range calls[:4] {
		if code, _, body := do(c); code >= 500 {
			t.Fatalf("after recovery: %s %s: %d %s", c.method, c.path, code, body)
		}
	}
	m := regexp.MustCompile(`"msg":"database reachable again".*"failed_requests":(\d+)`).FindStringSubmatch(stderr.String())
	if m == nil || m[1] == "0" {
		t.Fatalf("no recovery line with a count: %s", stderr.String()[logBefore:])
	}
	t.Logf("recovery: failed_requests=%s", m[1])
}
