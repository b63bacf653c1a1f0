package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// opsApp is the app of the cluster operations tests: a scheduled job that records each run in a
// table, a slow job (3 s) for manual runs, and a table the write traffic goes to.
var opsApp = map[string]string{
	"datamodel.json": `{"tables":[{"name":"ticks","permissions":{"*":"application"}},{"name":"writes","permissions":{"*":"application"},"columns":{"n":"number","node":"number"}}],
"jobs":[{"name":"tick"},{"name":"slow"}]}`,
	"scheduler/tick.js": `function tick() {
    tables.getTable('ticks').insert({ kind: 'tick', at: new Date().toISOString() }, { success: function () {} });
}`,
	"scheduler/slow.js": `function slow() {
    setTimeout(function () {
        tables.getTable('ticks').insert({ kind: 'slow', at: new Date().toISOString() }, { success: function () {} });
    }, 3000);
}`,
}

// startOpsCluster is startCluster with the ops app and extra settings; dsn is the database URL the
// instances use (a proxy's, for outage tests).
func startOpsCluster(t *testing.T, n int, dsn string, env map[string]string) *cluster {
	t.Helper()
	kek := make([]byte, 32)
	rand.Read(kek) //nolint:errcheck
	c := &cluster{dsn: dsn, bin: gatehouseBinary(t), env: map[string]string{
		"MS_MasterKey": "", "MS_ApplicationKey": "", "MS_ApplicationSystemKey": "",
		"GATEHOUSE_KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(kek),
		"GATEHOUSE_LOG_LEVEL":          "info",
	}}
	for k, v := range env {
		c.env[k] = v
	}
	app := writeApp(t, opsApp)
	for range n {
		c.nodes = append(c.nodes, startGatehouse(t, GatehouseOptions{App: app, Env: c.env, Args: []string{"--database", c.dsn}}))
	}
	return c
}

var appKeyLine = regexp.MustCompile(`X-ZUMO-APPLICATION\):\s+(\S+)`)

// keys reads the cluster's master and application keys.
func (c *cluster) keys(t *testing.T) (master, app string) {
	t.Helper()
	code, out, errs := c.cli(t, nil, "keys", "show", "--master")
	m := masterLine.FindStringSubmatch(out)
	a := appKeyLine.FindStringSubmatch(out)
	if code != 0 || m == nil || a == nil {
		t.Fatalf("keys show: %d %s %s", code, out, errs)
	}
	return m[1], a[1]
}

// kill9 ends an instance with SIGKILL (no shutdown, nothing flushed or released) and waits for it.
func (g *Gatehouse) kill9(t *testing.T) {
	t.Helper()
	g.stopped = true
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	<-g.exited
}

// writer inserts rows into "writes" through one instance until ctx ends, and keeps the ids of the
// inserts the server acknowledged (201). Other answers are counted by status (0: no answer).
type writer struct {
	node  int
	mu    sync.Mutex
	acked []string
	codes map[int]int
}

func (w *writer) run(ctx context.Context, base, appKey string) {
	h := map[string]string{"X-ZUMO-APPLICATION": appKey}
	for i := 0; ctx.Err() == nil; i++ {
		code, body, err := call("POST", base+"/tables/writes", h, map[string]any{"n": i, "node": w.node})
		if err != nil {
			code = 0
		}
		w.mu.Lock()
		w.codes[code]++
		if code == 201 {
			var r struct{ ID string }
			if json.Unmarshal(body, &r) == nil && r.ID != "" {
				w.acked = append(w.acked, r.ID)
			}
		}
		w.mu.Unlock()
		if code != 201 {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func startWriters(ctx context.Context, wg *sync.WaitGroup, nodes []*Gatehouse, appKey string) []*writer {
	var ws []*writer
	for i, g := range nodes {
		w := &writer{node: i, codes: map[int]int{}}
		ws = append(ws, w)
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, g.URL, appKey) }()
	}
	return ws
}

// checkAcked fails the test unless every acknowledged write can be read back through g.
func checkAcked(t *testing.T, g *Gatehouse, appKey string, ws []*writer) int {
	t.Helper()
	n := 0
	for _, w := range ws {
		for _, id := range w.acked {
			code, body, err := call("GET", g.URL+"/tables/writes/"+url.PathEscape(id), map[string]string{"X-ZUMO-APPLICATION": appKey}, nil)
			if err != nil || code != 200 {
				t.Errorf("acknowledged write %s (through node %d) not found: %d %s %v", id, w.node, code, body, err)
			}
			n++
		}
	}
	return n
}

type runRecord struct {
	Trigger  string     `json:"trigger"`
	Slot     *time.Time `json:"slot"`
	Instance string     `json:"instance"`
	Outcome  string     `json:"outcome"`
}

func jobRuns(t *testing.T, g *Gatehouse, master, job string) []runRecord {
	t.Helper()
	code, body, err := call("GET", g.URL+"/admin/jobs/"+job+"/runs?limit=100", map[string]string{"X-ZUMO-MASTER": master}, nil)
	var runs []runRecord
	if err != nil || code != 200 || json.Unmarshal(body, &runs) != nil {
		t.Fatalf("runs of %s: %d %s %v", job, code, body, err)
	}
	return runs
}

// TestClusterJobsAndKill: three instances on one PostgreSQL database.
//   - A job scheduled every minute runs exactly once per slot across the cluster, over three slots
//     (the one current at start and the next two), each run recorded once in the history and once in
//     the table the job writes.
//   - Nine concurrent manual runs of one job, three per instance, give one run and eight 409s.
//   - The instance running that manual job is killed with SIGKILL in the middle of write traffic to
//     all three: the other two keep answering (no 5xx), every write acknowledged by any instance
//     (the killed one included) is stored, the killed run's claim blocks new runs (409) until its
//     lease expires, then a run starts elsewhere and the killed run reads as abandoned.
func TestClusterJobsAndKill(t *testing.T) {
	beside(t)
	needTools(t, false)
	const jobTimeout = 5 * time.Second // the lease of a run is this plus one minute
	start := time.Now()
	c := startOpsCluster(t, 3, storetest.PostgresURL(t), map[string]string{
		"GATEHOUSE_JOBS": "tick=1m", "GATEHOUSE_SCRIPT_JOB_TIMEOUT": jobTimeout.String(),
	})
	up := time.Now() // every instance is up: the slot current now has been claimed (or is being)
	master, appKey := c.keys(t)
	adm := map[string]string{"X-ZUMO-MASTER": master}

	// Concurrent manual runs: one 200, the rest 409.
	type answer struct{ node, code int }
	answers := make(chan answer, 9)
	var burst sync.WaitGroup
	ready := make(chan struct{})
	for i := range 9 {
		g := c.nodes[i%3]
		burst.Add(1)
		go func() {
			defer burst.Done()
			<-ready
			code, _, err := call("POST", g.URL+"/jobs/slow", adm, nil)
			if err != nil {
				code = 0
			}
			answers <- answer{i % 3, code}
		}()
	}
	close(ready)
	burst.Wait()
	close(answers)
	winner, counts := -1, map[int]int{}
	for a := range answers {
		counts[a.code]++
		if a.code == 200 {
			winner = a.node
		}
	}
	if counts[200] != 1 || counts[409] != 8 {
		t.Fatalf("nine concurrent manual runs: %v, want one 200 and eight 409", counts)
	}
	t.Logf("manual runs: one started (on node %d), eight refused with 409", winner)

	// Write traffic to all three, then SIGKILL the instance running the slow job.
	ctx, stopWriters := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ws := startWriters(ctx, &wg, c.nodes, appKey)
	time.Sleep(time.Second)
	victim := c.nodes[winner]
	killedAt := time.Now()
	victim.kill9(t)
	var survivors []*Gatehouse
	for i, g := range c.nodes {
		if i != winner {
			survivors = append(survivors, g)
		}
	}
	time.Sleep(3 * time.Second)
	stopWriters()
	wg.Wait()
	for _, w := range ws {
		t.Logf("writer through node %d: answers by status %v", w.node, w.codes)
		if w.node != winner {
			for code, n := range w.codes {
				if code != 201 {
					t.Errorf("node %d answered %d to %d writes while node %d was killed", w.node, code, n, winner)
				}
			}
			if w.codes[201] < 10 {
				t.Errorf("node %d: only %d writes acknowledged", w.node, w.codes[201])
			}
		}
	}
	acked := checkAcked(t, survivors[0], appKey, ws)
	t.Logf("%d acknowledged writes (across the kill) all read back through a surviving instance", acked)

	// The killed run holds the job until its lease expires; then another instance runs it.
	var resumed time.Duration
	for {
		code, body, err := call("POST", survivors[int(time.Since(killedAt)/time.Second)%2].URL+"/jobs/slow", adm, nil)
		if err == nil && code == 200 {
			resumed = time.Since(killedAt)
			break
		}
		if err != nil || code != 409 {
			t.Fatalf("manual run while the killed instance's claim holds: %d %s %v", code, body, err)
		}
		if time.Since(killedAt) > jobTimeout+time.Minute+20*time.Second {
			t.Fatalf("the killed instance's claim on the job never expired")
		}
		time.Sleep(time.Second)
	}
	if resumed < jobTimeout+time.Minute-5*time.Second {
		t.Fatalf("a new run started %s after the kill, before the killed run's lease (%s) ran out", resumed, jobTimeout+time.Minute)
	}
	t.Logf("manual job runnable again %s after the kill (lease: job timeout %s + 1m)", resumed.Round(time.Second), jobTimeout)
	var slow []runRecord
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		slow = jobRuns(t, survivors[0], master, "slow")
		if len(slow) == 2 && slow[0].Outcome == "succeeded" || time.Now().After(deadline) {
			break
		}
	}
	if len(slow) != 2 || slow[0].Outcome != "succeeded" || slow[1].Outcome != "abandoned" {
		t.Fatalf("slow job history: %+v; want the new run succeeded and the killed one abandoned", slow)
	}

	// Scheduled slots: wait until two slot boundaries have passed since the cluster was up.
	until := up.Truncate(time.Minute).Add(2*time.Minute + 10*time.Second)
	if d := time.Until(until); d > 0 {
		t.Logf("waiting %s for the third schedule slot", d.Round(time.Second))
		time.Sleep(d)
	}
	runs := jobRuns(t, survivors[0], master, "tick")
	bySlot := map[time.Time][]runRecord{}
	instances := map[string]bool{}
	for _, r := range runs {
		if r.Trigger != "scheduled" || r.Slot == nil {
			t.Fatalf("tick run %+v", r)
		}
		bySlot[r.Slot.UTC()] = append(bySlot[r.Slot.UTC()], r)
		instances[r.Instance] = true
	}
	var slots []string
	for s, rs := range bySlot {
		slots = append(slots, s.Format("15:04:05"))
		if len(rs) != 1 || rs[0].Outcome != "succeeded" {
			t.Errorf("slot %s: runs %+v, want exactly one that succeeded", s, rs)
		}
	}
	sort.Strings(slots)
	if len(bySlot) < 3 {
		t.Fatalf("tick ran in %d slots (%v) over %s, want at least 3", len(bySlot), slots, time.Since(start).Round(time.Second))
	}
	// The job's own effect: one row per run.
	code, body, err := call("GET", survivors[1].URL+"/tables/ticks?$filter=kind%20eq%20'tick'&$top=1000", map[string]string{"X-ZUMO-APPLICATION": appKey}, nil)
	var ticks []map[string]any
	if err != nil || code != 200 || json.Unmarshal(body, &ticks) != nil || len(ticks) != len(runs) {
		t.Fatalf("rows written by tick: %d %s %v; want %d", code, body, err, len(runs))
	}
	t.Logf("tick: %d slots %v, one run each, on %d distinct instance(s); %d rows written", len(bySlot), slots, len(instances), len(ticks))
}

// TestClusterDatabaseOutage: three instances reach PostgreSQL through a TCP proxy the test controls;
// the proxy is cut for a few seconds under write traffic to all three (the shared server itself is
// never stopped). During the outage every instance answers 503 with Retry-After (tables and /readyz),
// never 500, and none crashes; when the database is back, all three are ready again and serve; no
// write any of them acknowledged is lost.
func TestClusterDatabaseOutage(t *testing.T) {
	alone(t)
	needTools(t, false)
	dsn, proxy := storetest.ProxiedPostgresURL(t)
	c := startOpsCluster(t, 3, dsn, map[string]string{"GATEHOUSE_DB_CONNECT_TIMEOUT": "2s"})
	_, appKey := c.keys(t)

	ctx, stopWriters := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ws := startWriters(ctx, &wg, c.nodes, appKey)
	time.Sleep(time.Second)
	proxy.Cut()
	cutAt := time.Now()
	// Each instance notices within a few requests; then both the API and readiness say 503.
	for i, g := range c.nodes {
		for {
			req, _ := http.NewRequest("POST", g.URL+"/tables/writes", strings.NewReader(`{"n":-1}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-ZUMO-APPLICATION", appKey)
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("node %d during the outage: %v", i, err)
			}
			res.Body.Close()
			if res.StatusCode == 503 && res.Header.Get("Retry-After") != "" {
				break
			}
			if res.StatusCode != 201 || time.Since(cutAt) > 15*time.Second {
				t.Fatalf("node %d during the outage: %d (Retry-After %q)", i, res.StatusCode, res.Header.Get("Retry-After"))
			}
		}
		if code, body, err := call("GET", g.URL+"/readyz", nil, nil); err != nil || code != 503 {
			t.Fatalf("node %d /readyz during the outage: %d %s %v", i, code, body, err)
		}
	}
	time.Sleep(3 * time.Second)
	proxy.Restore()
	restoredAt := time.Now()
	for i, g := range c.nodes {
		for {
			if code, _, _ := call("GET", g.URL+"/readyz", nil, nil); code == 200 {
				break
			}
			if time.Since(restoredAt) > 20*time.Second {
				t.Fatalf("node %d not ready 20s after the database came back", i)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	recovered := time.Since(restoredAt)
	before := make([]int, len(ws))
	for i, w := range ws {
		w.mu.Lock()
		before[i] = w.codes[201]
		w.mu.Unlock()
	}
	time.Sleep(2 * time.Second)
	stopWriters()
	wg.Wait()
	for i, w := range ws {
		t.Logf("writer through node %d: answers by status %v", w.node, w.codes)
		for code := range w.codes {
			if code != 201 && code != 503 {
				t.Errorf("node %d answered %d (only 201 and 503 are expected)", w.node, code)
			}
		}
		if w.codes[201] <= before[i] {
			t.Errorf("node %d acknowledged no write after the recovery", w.node)
		}
	}
	acked := checkAcked(t, c.nodes[2], appKey, ws)
	t.Logf("outage of %s; all three ready again %s after the database came back; %d acknowledged writes all stored",
		restoredAt.Sub(cutAt).Round(time.Millisecond), recovered.Round(time.Millisecond), acked)
	for i, g := range c.nodes {
		if n := strings.Count(g.Stderr(), `"msg":"database unreachable`); n != 1 {
			t.Errorf("node %d logged %d outage lines, want 1", i, n)
		}
	}
}
