package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func call(t *testing.T, method, url string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestOperationalMetrics drives scripts (one fine, one past its time budget), a job and throttled
// logins through a served instance and reads the series an operator alerts on from /metrics.
func TestOperationalMetrics(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	writeFiles(t, app, map[string]string{
		"datamodel.json":    `{"tables":[],"jobs":[{"name":"tick"}]}`,
		"api/fine.js":       `exports.get = function (req, res) { res.send(200, {ok: true}); };`,
		"api/spin.js":       `exports.get = function (req, res) { while (true) {} };`,
		"scheduler/tick.js": `function tick() { console.log('tick'); }`,
	})
	env := map[string]string{
		"GATEHOUSE_MASTER_KEY": "metrics-master-key-0123456789abcdef", "GATEHOUSE_APPLICATION_KEY": "metrics-app-key-0123456789abcdef",
		"GATEHOUSE_SCRIPT_TIMEOUT": "200ms", "GATEHOUSE_ACCOUNTS_ENABLED": "true",
	}
	base, stderr, _ := startServer(t, []string{"--data", filepath.Join(dir, "data"), "--app", app}, env)
	master := map[string]string{"X-ZUMO-MASTER": env["GATEHOUSE_MASTER_KEY"]}

	if code, body := call(t, "GET", base+"/api/fine", master, ""); code != 200 {
		t.Fatalf("fine: %d %s", code, body)
	}
	if code, _ := call(t, "GET", base+"/api/spin", master, ""); code < 500 {
		t.Fatalf("spin answered %d", code)
	}
	if code, body := call(t, "POST", base+"/jobs/tick", master, ""); code >= 300 {
		t.Fatalf("job: %d %s", code, body)
	}
	throttled := 0
	for i := 0; i < 12; i++ {
		code, _ := call(t, "POST", base+"/login/custom", nil, `{"email":"nobody@example.com","password":"wrong password"}`)
		if code == http.StatusTooManyRequests {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("no login was throttled")
	}

	want := []string{
		`gatehouse_db_up 1`,
		`gatehouse_db_max_open_connections 8`,
		`gatehouse_db_open_connections \d+`,
		`gatehouse_db_wait_count_total \d+`,
		`gatehouse_script_invocations_total\{kind="api",outcome="ok"\} 1`,
		`gatehouse_script_invocations_total\{kind="api",outcome="timeout"\} 1`,
		`gatehouse_script_interrupts_total\{reason="timeout"\} 1`,
		`gatehouse_script_duration_seconds_count\{kind="api"\} 2`,
		`gatehouse_job_runs_total\{job="tick",outcome="ok"\} 1`,
		`gatehouse_job_duration_seconds_count\{job="tick"\} 1`,
		`gatehouse_login_throttled_total\{route="/login/custom"\} ` + strconv.Itoa(throttled),
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := call(t, "GET", base+"/metrics", master, "")
		var missing []string
		for _, w := range want {
			if !regexp.MustCompile(`(?m)^` + w + `$`).MatchString(body) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("missing series %q in:\n%s\nlog:\n%s", missing, grepLines(body, "gatehouse_"), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
