package main

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func newKEKString(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck
	return base64.StdEncoding.EncodeToString(b)
}

// Issue 11: with keys from the environment and an empty data directory, the first start printed the
// environment's keys in its banner and wrote a keys.json with different random keys; and `keys
// rotate` without the environment "rotated" a key the servers never use.
func TestEnvironmentKeysAreNeverShownOrWritten(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"MS_MasterKey": "env-master-" + keys.Generate(), "MS_ApplicationKey": "env-app-" + keys.Generate()}
	base, stderr, stop := startServer(t, []string{"--data", data}, env)
	if code, _ := get(t, base+"/metrics", map[string]string{"X-ZUMO-MASTER": env["MS_MasterKey"]}); code != 200 {
		t.Fatalf("environment master key refused: %d", code)
	}
	if rc := stop(); rc != 0 {
		t.Fatalf("exit %d", rc)
	}
	b, err := os.ReadFile(keys.Path(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range env {
		if strings.Contains(stderr.String(), v) || strings.Contains(string(b), v) {
			t.Fatalf("an environment key was printed or written:\nstderr: %s\nkeys.json: %s", stderr.String(), b)
		}
	}
	f, err := keys.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.MasterKey != "" || f.ApplicationKey != "" || f.SystemKey == "" {
		t.Fatal("keys.json must hold only the generated system key")
	}
	// Rotating what the servers take from the environment would change nothing: refused, even from a
	// shell without the environment.
	code, out, errs := runCmd(t, nil, "keys", "rotate", "--data", data, "--which", "master")
	if code != 1 || !strings.Contains(errs, "change nothing") || out != "" {
		t.Fatalf("rotate master: exit %d, %q %q", code, out, errs)
	}
	code, _, errs = runCmd(t, env, "keys", "rotate", "--data", data, "--which", "application")
	if code != 1 || !strings.Contains(errs, "MS_ApplicationKey") {
		t.Fatalf("rotate application with it set: exit %d, %q", code, errs)
	}
	if code, _, errs := runCmd(t, nil, "keys", "rotate", "--data", data, "--which", "system"); code != 0 {
		t.Fatalf("rotate system (from keys.json): exit %d %s", code, errs)
	}
	// Without a key ring the admin API says what to configure.
	base, _, stop = startServer(t, []string{"--data", data}, env)
	defer stop()
	if code, body := post(t, base+"/admin/keys/rotate", map[string]string{"X-ZUMO-MASTER": env["MS_MasterKey"]}, `{"which":"master"}`); code != 409 || !strings.Contains(body, "key_encryption_key") {
		t.Fatalf("admin rotate without a ring: %d %s", code, body)
	}
}

func post(t *testing.T, url string, headers map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
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

// The key ring on a single SQLite node with a key-encryption key: the CLI rotates it (two-phase, the
// running server acknowledges), a wrong key-encryption key and a mismatched configured key refuse to
// start with key ids and fingerprints, never keys.
func TestKeyRingSQLite(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	kek := newKEKString(t)
	env := map[string]string{"GATEHOUSE_KEY_ENCRYPTION_KEY": kek, "GATEHOUSE_KEY_RING_POLL_INTERVAL": "200ms"}
	base, stderr, stop := startServer(t, []string{"--data", data}, env)
	defer stop()
	if !strings.Contains(stderr.String(), "gatehouse keys show") {
		t.Fatalf("first start does not say how to read the new keys: %s", stderr.String())
	}
	if _, err := os.Stat(keys.Path(data)); !os.IsNotExist(err) {
		t.Fatal("keys.json written while the keys live in the database")
	}
	code, out, errs := runCmd(t, env, "keys", "show", "--master", "--data", data)
	if code != 0 {
		t.Fatalf("keys show: %d %s", code, errs)
	}
	master := regexp.MustCompile(`X-ZUMO-MASTER\):\s+(\S+)`).FindStringSubmatch(out)
	if master == nil || strings.Contains(stderr.String(), master[1]) {
		t.Fatalf("keys show: %q (and the server must never print it)", out)
	}
	if code, _ := get(t, base+"/metrics", map[string]string{"X-ZUMO-MASTER": master[1]}); code != 200 {
		t.Fatalf("ring master key refused: %d", code)
	}
	_, tokOut, _ := runCmd(t, env, "token", "mint", "--data", data, "--user", "custom:1")
	tok := strings.TrimSpace(tokOut)

	code, out, errs = runCmd(t, env, "keys", "rotate", "--data", data, "--which", "master")
	if code != 0 || !strings.Contains(out, "master key rotated") || !strings.Contains(out, "1 live instances") {
		t.Fatalf("rotate: %d %q %q", code, out, errs)
	}
	newMaster := regexp.MustCompile(`new master key: (\S+)`).FindStringSubmatch(out)
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, _ := get(t, base+"/metrics", map[string]string{"X-ZUMO-MASTER": newMaster[1]})
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not install the rotated key")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": tok}); code != 200 {
		t.Fatalf("a token of the retired key: %d %s", code, body)
	}
	_, tokOut, _ = runCmd(t, env, "token", "mint", "--data", data, "--user", "custom:2")
	if code, body := get(t, base+"/.auth/me", map[string]string{"X-ZUMO-AUTH": strings.TrimSpace(tokOut)}); code != 200 {
		t.Fatalf("a token of the new key: %d %s", code, body)
	}
	code, out, _ = runCmd(t, env, "keys", "status", "--data", data)
	if code != 0 || strings.Contains(out, newMaster[1]) || !strings.Contains(out, "retired") {
		t.Fatalf("keys status: %q", out)
	}

	// The admin API: status without secrets, strict bodies, a rotation.
	admin := map[string]string{"X-ZUMO-MASTER": newMaster[1]}
	if code, body := get(t, base+"/admin/keys", admin); code != 200 || !strings.Contains(body, `"state":"retired"`) || strings.Contains(body, newMaster[1]) {
		t.Fatalf("GET /admin/keys: %d %s", code, body)
	}
	if code, _ := get(t, base+"/admin/keys", nil); code != 401 {
		t.Fatalf("GET /admin/keys without the master key: %d", code)
	}
	for _, bad := range []string{`{"wich":"master"}`, `{"which":"nope"}`, `{"which":1}`, `[]`, `{"which":"master"} {}`} {
		if code, body := post(t, base+"/admin/keys/rotate", admin, bad); code != 400 {
			t.Fatalf("rotate %s: %d %s", bad, code, body)
		}
	}
	code, body := post(t, base+"/admin/keys/rotate", admin, `{"which":"application"}`)
	appKey := regexp.MustCompile(`"key":"([^"]+)"`).FindStringSubmatch(body)
	if code != 200 || appKey == nil {
		t.Fatalf("rotate application: %d %s", code, body)
	}
	if code, body := post(t, base+"/admin/keys/rotate", admin, `{"which":"system"}`); code != 200 || strings.Contains(body, `"key"`) {
		t.Fatalf("rotate system: %d %s", code, body)
	}

	// Refusals.
	wrong := map[string]string{"GATEHOUSE_KEY_ENCRYPTION_KEY": newKEKString(t)}
	code, _, errs = runCmd(t, wrong, "serve", "--data", data, "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "sealed under key-encryption key") {
		t.Fatalf("wrong KEK: %d %q", code, errs)
	}
	other := keys.Generate()
	mism := map[string]string{"GATEHOUSE_KEY_ENCRYPTION_KEY": kek, "MS_MasterKey": other}
	code, _, errs = runCmd(t, mism, "serve", "--data", data, "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "master key from env MS_MasterKey has fingerprint") || strings.Contains(errs, other) || strings.Contains(errs, newMaster[1]) {
		t.Fatalf("mismatched master key: %d %q", code, errs)
	}
	code, _, errs = runCmd(t, mism, "keys", "rotate", "--data", data, "--which", "master")
	if code != 1 || !strings.Contains(errs, "MS_MasterKey") {
		t.Fatalf("rotate with a configured master key: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, map[string]string{"GATEHOUSE_KEY_ENCRYPTION_KEY": "not a key at all, far too weak"}, "keys", "status", "--data", data); code != 1 || !strings.Contains(errs, "openssl rand") || strings.Contains(errs, "far too weak") {
		t.Fatalf("malformed KEK: %d %q", code, errs)
	}
}

// PostgreSQL without a key-encryption key: the first instance declares its keys' fingerprints; an
// instance with another system key (or any other) refuses to start; `keys rotate` refuses.
func TestDeclaredKeysOnPostgres(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	env := map[string]string{"MS_MasterKey": keys.Generate(), "MS_ApplicationKey": keys.Generate(), "MS_ApplicationSystemKey": keys.Generate()}
	_, _, stop := startServer(t, []string{"--data", filepath.Join(t.TempDir(), "a"), "--database", dsn}, env)
	defer stop()
	// Same keys, another data directory: starts.
	_, _, stop2 := startServer(t, []string{"--data", filepath.Join(t.TempDir(), "b"), "--database", dsn}, env)
	stop2()
	// The system key from a fresh keys.json: refused, naming where it came from.
	partial := map[string]string{"MS_MasterKey": env["MS_MasterKey"], "MS_ApplicationKey": env["MS_ApplicationKey"]}
	data := filepath.Join(t.TempDir(), "c")
	code, _, errs := runCmd(t, partial, "serve", "--data", data, "--database", dsn, "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "system key from "+keys.Path(data)+" has fingerprint") {
		t.Fatalf("other system key: exit %d %q", code, errs)
	}
	code, _, errs = runCmd(t, nil, "keys", "rotate", "--data", data, "--database", dsn)
	if code != 1 || !strings.Contains(errs, "key-encryption key") {
		t.Fatalf("rotate without a KEK on PostgreSQL: exit %d %q", code, errs)
	}
}
