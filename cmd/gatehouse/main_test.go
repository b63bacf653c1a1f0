package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// startServer runs `gatehouse serve` in-process and returns its base URL, its stderr and a stop func.
func startServer(t *testing.T, args []string, env map[string]string) (string, *lockedBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), pw, stderr, envOf(env))
		pw.Close()
	}()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := regexp.MustCompile(`listening on (https?://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
		close(urlc)
	}()
	var base string
	select {
	case u, ok := <-urlc:
		if !ok {
			t.Fatalf("server did not start: %s", stderr.String())
		}
		base = u
	case code := <-done:
		t.Fatalf("server exited with %d: %s", code, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not start in time: %s", stderr.String())
	}
	stopped := false
	var code int
	stop := func() int {
		if !stopped {
			stopped = true
			cancel()
			code = <-done
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return base, stderr, stop
}

func get(t *testing.T, url string, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func runCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, envOf(env))
	return code, out.String(), errb.String()
}

// TestWalkthrough checks the answers of the README's quick start in Go (TestDocs runs the README's
// commands as written).
func TestWalkthrough(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base, stderr, stop := startServer(t, []string{"--data", data}, nil)

	banner := stderr.String()
	m := regexp.MustCompile(`master key \(X-ZUMO-MASTER\):\s+(\S+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("no key banner on first start: %s", banner)
	}
	if st, err := os.Stat(filepath.Join(data, "keys.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keys file: %v %v", st, err)
	}

	if code, _ := get(t, base+"/status", nil); code != 200 {
		t.Fatalf("status %d", code)
	}
	code, body := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": "randomgoop"})
	if code != 401 || body != `{"code":401,"error":"Error: Invalid token format. Expected Envelope.Claims.Signature."}` {
		t.Fatalf("random token: %d %s", code, body)
	}
	rc, out, errs := runCmd(t, nil, "token", "mint", "--data", data, "--user", "custom:123", "--ttl", "24h")
	if rc != 0 {
		t.Fatalf("mint: %d %s", rc, errs)
	}
	tok := strings.TrimSpace(out)
	code, body = get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": tok})
	if code != 200 || !strings.Contains(body, `"user_id":"custom:123"`) {
		t.Fatalf("minted token: %d %s", code, body)
	}
	if strings.Contains(stderr.String(), tok) {
		t.Fatal("token appears in the server log")
	}

	// Rotate the master key while the server runs: the old token keeps working, a new one works too.
	rc, out, errs = runCmd(t, nil, "keys", "rotate", "--data", data)
	if rc != 0 || !strings.Contains(out, "new master key") {
		t.Fatalf("rotate: %d %s %s", rc, out, errs)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(stderr.String(), "keys reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not reload keys: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": tok}); code != 200 {
		t.Fatalf("token minted before rotation: %d %s", code, body)
	}
	_, out, _ = runCmd(t, nil, "token", "mint", "--data", data, "--user", "custom:124")
	if code, body := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": strings.TrimSpace(out)}); code != 200 {
		t.Fatalf("token minted after rotation: %d %s", code, body)
	}
	// The old master key is no longer admin.
	if code, _ := get(t, base+"/metrics", map[string]string{"X-ZUMO-MASTER": m[1]}); code != 401 {
		t.Fatalf("retired master key still opens /metrics: %d", code)
	}

	// A restart prints no banner and keeps the keys.
	if rc := stop(); rc != 0 {
		t.Fatalf("graceful stop exit %d: %s", rc, stderr.String())
	}
	_, stderr2, _ := startServer(t, []string{"--data", data}, nil)
	if strings.Contains(stderr2.String(), "generated new keys") {
		t.Fatal("banner printed again on restart")
	}
}

func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	badApp := filepath.Join(dir, "app")
	os.MkdirAll(filepath.Join(badApp, "table"), 0o755)
	os.WriteFile(filepath.Join(badApp, "table", "todo.json"), []byte(`{"routes":{"*":{"read":{"permission":"everyone"}}}}`), 0o644)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
		code int
	}{
		{"bad env", []string{"serve", "--data", dir}, map[string]string{"MS_MaxRequestBodySizeKB": "big"}, "MS_MaxRequestBodySizeKB", 1},
		{"bad flag value", []string{"serve", "--data", dir, "--listen", "nowhere"}, nil, "--listen", 1},
		{"unknown flag", []string{"serve", "--nope"}, nil, "nope", 2},
		{"bad app dir", []string{"serve", "--data", dir, "--app", badApp}, nil, "todo.json", 1},
		{"unknown command", []string{"frobnicate"}, nil, "unknown command", 2},
		{"mint without user", []string{"token", "mint", "--data", dir}, nil, "--user", 2},
		{"rotate unknown", []string{"keys", "rotate", "--data", dir, "--which", "nope"}, nil, "unknown key", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runCmd(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errs, tc.want)
			}
		})
	}
}

func TestKeysGenerateAndConfiguredMaster(t *testing.T) {
	data := t.TempDir()
	code, out, _ := runCmd(t, nil, "keys", "generate", "--data", data)
	if code != 0 || !strings.Contains(out, "master key") {
		t.Fatalf("generate: %d %s", code, out)
	}
	if code, _, errs := runCmd(t, nil, "keys", "generate", "--data", data); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("second generate: %d %s", code, errs)
	}
	env := map[string]string{"MS_MasterKey": "configured-master-key-0123456789"}
	if code, _, errs := runCmd(t, env, "keys", "rotate", "--data", data); code != 1 || !strings.Contains(errs, "MS_MasterKey") {
		t.Fatalf("rotate with configured master: %d %s", code, errs)
	}
	code, v, _ := runCmd(t, nil, "version")
	if code != 0 || !strings.HasPrefix(v, "gatehouse ") {
		t.Fatalf("version: %s", v)
	}
}

func TestTableCLI(t *testing.T) {
	data := t.TempDir()
	// Admin commands never migrate: a database without the schema is refused, naming migrate up.
	if code, _, errs := runCmd(t, nil, "table", "list", "--data", data); code != 1 || !strings.Contains(errs, "gatehouse migrate up") {
		t.Fatalf("table list on an empty data directory: %d %s", code, errs)
	}
	if code, out, errs := runCmd(t, nil, "migrate", "up", "--data", data); code != 0 || !strings.Contains(out, "migration(s) applied") {
		t.Fatalf("migrate up: %d %s %s", code, out, errs)
	}
	code, out, errs := runCmd(t, nil, "table", "create", "movies", "--data", data, "--integer-id", "--columns", "title=string,year=number", "--permissions", "read=public,*=user", "--soft-delete")
	if code != 0 || !strings.Contains(out, "read=public insert=user") || !strings.Contains(out, "title=string, year=number") || !strings.Contains(out, "soft delete:    true") {
		t.Fatalf("create: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCmd(t, nil, "table", "create", "movies", "--data", data); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("duplicate create: %d %s", code, errs)
	}
	code, out, _ = runCmd(t, nil, "table", "update", "movies", "--data", data, "--columns", "released=date", "--permissions", "delete=admin")
	if code != 0 || !strings.Contains(out, "released=date") || !strings.Contains(out, "delete=admin") {
		t.Fatalf("update: %d %s", code, out)
	}
	code, out, _ = runCmd(t, nil, "table", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "movies") {
		t.Fatalf("list: %d %s", code, out)
	}
	code, out, _ = runCmd(t, nil, "table", "show", "movies", "--json", "--data", data)
	if code != 0 || !strings.Contains(out, `"idType":"integer"`) {
		t.Fatalf("show: %d %s", code, out)
	}
	for _, bad := range [][]string{
		{"table", "create", "bad-name", "--data", data},
		{"table", "create", "x", "--columns", "a=blob", "--data", data},
		{"table", "create", "x", "--permissions", "read=everyone", "--data", data},
		{"table", "update", "nope", "--data", data},
	} {
		if code, _, errs := runCmd(t, nil, bad...); code == 0 {
			t.Errorf("%v accepted: %s", bad, errs)
		}
	}
	if code, _, errs := runCmd(t, nil, "table", "truncate", "movies", "--data", data); code != 2 || !strings.Contains(errs, "--yes") {
		t.Fatalf("truncate without --yes: %d %s", code, errs)
	}
	if code, out, errs := runCmd(t, nil, "table", "truncate", "movies", "--yes", "--data", data); code != 0 || !strings.Contains(out, "truncated: 0 rows deleted") {
		t.Fatalf("truncate: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCmd(t, nil, "table", "truncate", "nope", "--yes", "--data", data); code != 1 || !strings.Contains(errs, "nope") {
		t.Fatalf("truncate of a missing table: %d %s", code, errs)
	}
	if code, _, errs := runCmd(t, nil, "table", "delete", "movies", "--data", data); code != 2 || !strings.Contains(errs, "--yes") {
		t.Fatalf("delete without --yes: %d %s", code, errs)
	}
	if code, _, _ := runCmd(t, nil, "table", "delete", "movies", "--yes", "--data", data); code != 0 {
		t.Fatal("delete failed")
	}
	if code, _, _ := runCmd(t, nil, "table", "show", "movies", "--data", data); code != 1 {
		t.Fatal("deleted table still shown")
	}
}

func TestSeparateMetricsListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base, _, _ := startServer(t, []string{"--data", t.TempDir(), "--metrics-listen", addr}, nil)
	if code, _ := get(t, base+"/metrics", nil); code != 404 {
		t.Fatalf("/metrics on the main listener with a metrics listener configured: %d", code)
	}
	var code int
	var body string
	for i := 0; i < 50; i++ {
		req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			code, body = res.StatusCode, string(b)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 200 || !strings.Contains(body, "gatehouse_build_info") {
		t.Fatalf("metrics listener: %d %.200s", code, body)
	}
}

// TestServedAccountsAreUsers: an account registered over HTTP in a running server is a user of the
// users directory, gets a refresh token when they are on, and logout everywhere revokes its tokens.
func TestServedAccountsAreUsers(t *testing.T) {
	data := t.TempDir()
	env := map[string]string{"GATEHOUSE_ACCOUNTS_ENABLED": "true", "GATEHOUSE_LOGIN_REFRESH_TOKENS": "true", "GATEHOUSE_MASTER_KEY": importTestMaster}
	base, stderr, _ := startServer(t, []string{"--data", data}, env)
	post := func(path, token, body string) (int, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		switch {
		case token == importTestMaster:
			req.Header.Set("X-ZUMO-MASTER", token)
		case token != "":
			req.Header.Set("X-ZUMO-AUTH", token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := post("/login/custom/register", "", `{"email":"ann@example.com","password":"correct horse battery"}`); code != 202 {
		t.Fatalf("register: %d %s", code, body)
	}
	code, body := post("/.auth/login/custom", "", `{"email":"ann@example.com","password":"correct horse battery"}`)
	if code != 200 || !strings.Contains(body, `"refreshToken"`) {
		t.Fatalf("login: %d %s (%s)", code, body, stderr.String())
	}
	var login struct {
		User  struct{ UserID string }
		Token string `json:"authenticationToken"`
	}
	json.Unmarshal([]byte(body), &login)
	if code, _ := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": login.Token}); code != 200 {
		t.Fatalf("token from account login: %d", code)
	}
	rc, out, errs := runCmd(t, nil, "users", "list", "--data", data)
	if rc != 0 || !strings.Contains(out, login.User.UserID) {
		t.Fatalf("users list lacks %s: %d %s %s", login.User.UserID, rc, out, errs)
	}
	if code, body := post("/login/custom/logout", login.Token, `{"everywhere":true}`); code != 204 {
		t.Fatalf("logout everywhere: %d %s", code, body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": login.Token})
		if code == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("token still accepted after logout everywhere")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// /admin/users disables an account's user and the account together (account.SetUserDisabled, the
	// decision of the CLI and the console), and enables both again.
	if code, body := post("/admin/users/"+url.PathEscape(login.User.UserID)+"/disable", importTestMaster, ""); code != 200 || !strings.Contains(body, `"disabled":true`) {
		t.Fatalf("disable through /admin/users: %d %s", code, body)
	}
	if code, body := get(t, base+"/admin/accounts/ann@example.com", map[string]string{"X-ZUMO-MASTER": importTestMaster}); code != 200 || !strings.Contains(body, `"disabled":true`) {
		t.Fatalf("the account is not disabled with its user: %d %s", code, body)
	}
	if code, body := post("/.auth/login/custom", "", `{"email":"ann@example.com","password":"correct horse battery"}`); code == 200 {
		t.Fatalf("a disabled account logged in: %s", body)
	}
	if code, body := post("/admin/users/"+url.PathEscape(login.User.UserID)+"/enable", importTestMaster, ""); code != 200 {
		t.Fatalf("enable through /admin/users: %d %s", code, body)
	}
	if code, body := post("/.auth/login/custom", "", `{"email":"ann@example.com","password":"correct horse battery"}`); code != 200 {
		t.Fatalf("the re-enabled account: %d %s", code, body)
	}
	if code, _ := post("/admin/users/custom:nobody/disable", importTestMaster, ""); code != 404 {
		t.Fatalf("unknown user: %d", code)
	}
}
