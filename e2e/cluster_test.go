package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// cluster is three `gatehouse serve` processes on one PostgreSQL schema, with the keys in the
// database sealed under one key-encryption key, and no keys in their environment.
type cluster struct {
	dsn   string
	env   map[string]string
	nodes []*Gatehouse
	bin   string
}

func startCluster(t *testing.T, n int) *cluster { t.Helper(); return startClusterWith(t, n, nil) }

// startClusterWith is startCluster with further settings in every instance's environment.
func startClusterWith(t *testing.T, n int, extra map[string]string) *cluster {
	t.Helper()
	kek := make([]byte, 32)
	rand.Read(kek) //nolint:errcheck
	c := &cluster{dsn: storetest.PostgresURL(t), bin: gatehouseBinary(t), env: map[string]string{
		"MS_MasterKey": "", "MS_ApplicationKey": "", "MS_ApplicationSystemKey": "", // the ring holds them
		"GATEHOUSE_KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(kek),
		"GATEHOUSE_LOG_LEVEL":          "info",
	}}
	for k, v := range extra {
		c.env[k] = v
	}
	for range n {
		c.nodes = append(c.nodes, startGatehouse(t, GatehouseOptions{Env: c.env, Args: []string{"--database", c.dsn}}))
	}
	return c
}

// cli runs a gatehouse command against the cluster's database; it returns exit code, stdout, stderr.
func (c *cluster) cli(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	e := map[string]string{}
	for k, v := range c.env {
		e[k] = v
	}
	for k, v := range env {
		e[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(args, "--database", c.dsn, "--data", filepath.Join(t.TempDir(), "cli"))...)
	cmd.Env = cleanEnv(e)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

var client = &http.Client{Timeout: 10 * time.Second}

func call(method, url string, headers map[string]string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

func mint(base, master, user string) (string, int, error) {
	code, b, err := call("POST", base+"/admin/tokens", map[string]string{"X-ZUMO-MASTER": master}, map[string]string{"userId": user})
	if err != nil || code != 200 {
		return "", code, err
	}
	var r struct {
		Token string `json:"authenticationToken"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", code, err
	}
	return r.Token, code, nil
}

// waitAll polls check on every node until it is true there, and returns how long each took from start.
func waitAll(t *testing.T, nodes []*Gatehouse, start time.Time, limit time.Duration, check func(g *Gatehouse) bool) []time.Duration {
	t.Helper()
	out := make([]time.Duration, len(nodes))
	var wg sync.WaitGroup
	for i, g := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < limit+time.Second {
				if check(g) {
					out[i] = time.Since(start)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			out[i] = -1
		}()
	}
	wg.Wait()
	for i, d := range out {
		if d < 0 || d > limit {
			t.Errorf("node %d: change not observed within %s (%s)", i, limit, d)
		}
	}
	return out
}

var masterLine = regexp.MustCompile(`X-ZUMO-MASTER\):\s+(\S+)`)

// TestClusterKeyRotation: three instances on one database; tokens minted by all three are verified
// by all three, continuously, while a master-key rotation is started from the CLI. Not one is
// rejected; the new key reaches every instance; an instance with other keys refuses to start.
func TestClusterKeyRotation(t *testing.T) {
	alone(t)
	c := startCluster(t, 3)
	code, out, errs := c.cli(t, nil, "keys", "show", "--master")
	m := masterLine.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("keys show: %d %s %s", code, out, errs)
	}
	var master atomic.Value
	master.Store(m[1])
	for _, g := range c.nodes {
		if strings.Contains(g.Stderr(), m[1]) {
			t.Fatal("a server logged the master key")
		}
	}

	// Traffic: each worker mints at one instance and verifies at all three, again and again; tokens
	// from before the rotation are re-verified throughout.
	ctx, stop := context.WithCancel(context.Background())
	var verified, rejected, minted, mintRefused atomic.Int64
	var rejections sync.Map
	var wg sync.WaitGroup
	var old []string
	for i, g := range c.nodes {
		tok, code, err := mint(g.URL, m[1], "custom:before")
		if err != nil || code != 200 {
			t.Fatalf("mint at node %d: %d %v", i, code, err)
		}
		old = append(old, tok)
	}
	for w, g := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				tok, code, err := mint(g.URL, master.Load().(string), "custom:load")
				if err != nil {
					t.Errorf("mint: %v", err)
					return
				}
				if code == 401 {
					// The master key (admin access) changed and the test has not read the new one yet:
					// not a token rejection.
					mintRefused.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if code != 200 {
					t.Errorf("mint at node %d: %d", w, code)
					return
				}
				minted.Add(1)
				for j, h := range c.nodes {
					for _, tk := range []string{tok, old[(n+j)%len(old)]} {
						code, body, err := call("GET", h.URL+"/.auth/me", map[string]string{"X-ZUMO-AUTH": tk}, nil)
						if err != nil {
							t.Errorf("verify: %v", err)
							return
						}
						if code == 200 {
							verified.Add(1)
						} else {
							rejected.Add(1)
							rejections.Store(string(body), true)
						}
					}
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	code, out, errs = c.cli(t, nil, "keys", "rotate", "--which", "master")
	cliTime := time.Since(start)
	nm := regexp.MustCompile(`new master key: (\S+)`).FindStringSubmatch(out)
	if code != 0 || nm == nil || !strings.Contains(out, "3 live instances") {
		stop()
		wg.Wait()
		t.Fatalf("keys rotate: %d %q %q", code, out, errs)
	}
	master.Store(nm[1])
	// Every instance signs with the new key and takes it as the master key.
	reach := waitAll(t, c.nodes, start, 3*time.Second, func(g *Gatehouse) bool {
		code, _, _ := call("GET", g.URL+"/metrics", map[string]string{"X-ZUMO-MASTER": nm[1]}, nil)
		return code == 200
	})
	t.Logf("rotation 1 (CLI): %s in total (%s); new key in force on the instances after %v (from the CLI's start, process start included)",
		cliTime.Round(time.Millisecond), strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), reach)
	time.Sleep(time.Second)

	// Rotation 2, from the admin API of the third instance, under the same traffic.
	start = time.Now()
	code, body, err := call("POST", c.nodes[2].URL+"/admin/keys/rotate", map[string]string{"X-ZUMO-MASTER": nm[1]}, map[string]any{"which": "master"})
	apiTime := time.Since(start)
	var rot struct {
		Key         string `json:"key"`
		Fingerprint string `json:"fingerprint"`
		Live        int    `json:"liveInstances"`
		TookMs      int64  `json:"tookMs"`
	}
	if err != nil || code != 200 || json.Unmarshal(body, &rot) != nil || rot.Key == "" || rot.Live != 3 {
		stop()
		wg.Wait()
		t.Fatalf("admin rotate: %d %s %v", code, body, err)
	}
	master.Store(rot.Key)
	reach2 := waitAll(t, c.nodes, start, 3*time.Second, func(g *Gatehouse) bool {
		code, _, _ := call("GET", g.URL+"/metrics", map[string]string{"X-ZUMO-MASTER": rot.Key}, nil)
		return code == 200
	})
	t.Logf("rotation 2 (admin API on node 3): response after %s (promoted after %d ms); new key in force on every instance after %v",
		apiTime.Round(time.Millisecond), rot.TookMs, reach2)
	nm[1] = rot.Key
	time.Sleep(1500 * time.Millisecond)
	stop()
	wg.Wait()
	t.Logf("traffic across both rotations: tokens minted %d, verifications %d, rejected %d, admin mints refused while the test held the old master key %d",
		minted.Load(), verified.Load(), rejected.Load(), mintRefused.Load())
	if rejected.Load() != 0 {
		var msgs []string
		rejections.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return true })
		t.Fatalf("%d token verifications rejected during the rotation: %v", rejected.Load(), msgs)
	}
	if minted.Load() < 30 || verified.Load() < 100 {
		t.Fatalf("too little traffic to mean anything: %d minted, %d verified", minted.Load(), verified.Load())
	}
	// The new tokens are signed with the new key: a fresh instance-independent check.
	for _, g := range c.nodes {
		tok, code, err := mint(g.URL, nm[1], "custom:after")
		if err != nil || code != 200 {
			t.Fatalf("mint after: %d %v", code, err)
		}
		for _, h := range c.nodes {
			if code, body, _ := call("GET", h.URL+"/.auth/me", map[string]string{"X-ZUMO-AUTH": tok}, nil); code != 200 {
				t.Fatalf("token after rotation refused: %d %s", code, body)
			}
		}
	}

	// An instance with other keys refuses to start, naming fingerprints and never keys.
	other := randomKey(t)
	code, _, errs = c.cli(t, map[string]string{"MS_MasterKey": other}, "serve", "--listen", "127.0.0.1:0")
	if code != 1 || !regexp.MustCompile(`master key from env MS_MasterKey has fingerprint [0-9a-f]{16}, the cluster's is [0-9a-f]{16} \(current\)`).MatchString(errs) ||
		strings.Contains(errs, other) || strings.Contains(errs, nm[1]) {
		t.Fatalf("mismatched instance: exit %d, %q", code, errs)
	}
	// So does one with another key-encryption key, or none.
	wrong := make([]byte, 32)
	rand.Read(wrong) //nolint:errcheck
	code, _, errs = c.cli(t, map[string]string{"GATEHOUSE_KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(wrong)}, "serve", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "sealed under key-encryption key") {
		t.Fatalf("wrong KEK: exit %d, %q", code, errs)
	}
	code, _, errs = c.cli(t, map[string]string{"GATEHOUSE_KEY_ENCRYPTION_KEY": "", "MS_MasterKey": nm[1]}, "serve", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "no key-encryption key is configured") {
		t.Fatalf("no KEK: exit %d, %q", code, errs)
	}
	// A rotation from a shell that sets the master key is refused (instances with it would refuse to restart).
	code, _, errs = c.cli(t, map[string]string{"MS_MasterKey": nm[1]}, "keys", "rotate", "--which", "master")
	if code != 1 || !strings.Contains(errs, "MS_MasterKey") {
		t.Fatalf("rotate with a configured key: exit %d %q", code, errs)
	}
}

// TestClusterPropagation: a permission tightened and a logout-everywhere done on one instance are in
// force on the other two within one second.
func TestClusterPropagation(t *testing.T) {
	alone(t)
	c := startCluster(t, 3)
	_, out, _ := c.cli(t, nil, "keys", "show", "--master")
	m := masterLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keys show: %q", out)
	}
	admin := map[string]string{"X-ZUMO-MASTER": m[1]}
	g1 := c.nodes[0]

	code, b, err := call("POST", g1.URL+"/admin/tables", admin, map[string]any{"name": "notes", "permissions": map[string]string{"read": "public"}})
	if err != nil || code != 201 && code != 200 {
		t.Fatalf("create table: %d %s %v", code, b, err)
	}
	for _, g := range c.nodes {
		if code, b, _ := call("GET", g.URL+"/tables/notes", nil, nil); code != 200 {
			t.Fatalf("public read: %d %s", code, b)
		}
	}
	start := time.Now()
	if code, b, err := call("PATCH", g1.URL+"/admin/tables/notes", admin, map[string]any{"permissions": map[string]string{"read": "admin"}}); err != nil || code != 200 {
		t.Fatalf("tighten: %d %s %v", code, b, err)
	}
	perm := waitAll(t, c.nodes, start, time.Second, func(g *Gatehouse) bool {
		code, _, _ := call("GET", g.URL+"/tables/notes", nil, nil)
		return code == 401
	})
	t.Logf("permission change observed after %v (nodes 1..3; the change was made on node 1)", perm)

	// Logout everywhere: a user with a token minted on each instance.
	db, err := sql.Open("pgx", c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO gatehouse_users (id, provider, created_at, updated_at) VALUES ('custom:carol', 'custom', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	var toks []string
	for _, g := range c.nodes {
		tok, code, err := mint(g.URL, m[1], "custom:carol")
		if err != nil || code != 200 {
			t.Fatalf("mint: %d %v", code, err)
		}
		toks = append(toks, tok)
	}
	time.Sleep(20 * time.Millisecond) // cut-offs have millisecond resolution
	start = time.Now()
	if code, b, err := call("POST", g1.URL+"/admin/users/custom:carol/revoke", admin, map[string]any{}); err != nil || code != 200 {
		t.Fatalf("revoke: %d %s %v", code, b, err)
	}
	rev := waitAll(t, c.nodes, start, time.Second, func(g *Gatehouse) bool {
		for _, tok := range toks {
			if code, _, _ := call("GET", g.URL+"/.auth/me", map[string]string{"X-ZUMO-AUTH": tok}, nil); code != 401 {
				return false
			}
		}
		return true
	})
	t.Logf("logout-everywhere observed after %v", rev)
}
