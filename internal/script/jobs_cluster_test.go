package script_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/keyset/keysettest"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// slotStart is a minute boundary, so that the first slot of a one-minute schedule starts there.
var slotStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestJobSlotsExactlyOnceAcrossInstances runs three schedulers, each on its own engine and HTTP server
// (three instances) on one database, through several slots of a manual clock: every slot runs exactly
// once in the cluster, and the other two instances' claims lose.
func TestJobSlotsExactlyOnceAcrossInstances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const instances, slots = 3, 5
		clock := keysettest.NewClock(slotStart.Add(10 * time.Second))
		var claims, won, lost atomic.Int64
		finished := make(chan string, slots*instances)
		var envs []*env
		var scheds []*script.Scheduler
		for i := 0; i < instances; i++ {
			e := newEnv(t, db, jobsApp)
			envs = append(envs, e)
			s := &script.Scheduler{Engine: e.engine, DB: db, Holder: fmt.Sprintf("instance-%d", i), Clock: clock,
				OnClaim: func(job string, slot time.Time, w bool, err error) {
					if err != nil {
						t.Errorf("claim failed: %v", err)
					}
					if w {
						won.Add(1)
					} else {
						lost.Add(1)
					}
					claims.Add(1)
				},
				OnFinish: func(job string, err error) {
					if err != nil {
						t.Errorf("run failed: %v", err)
					}
					finished <- job
				}}
			scheds = append(scheds, s)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, s := range scheds {
			wg.Add(1)
			go func(s *script.Scheduler) {
				defer wg.Done()
				s.Schedule(ctx, map[string]time.Duration{"cleanup": time.Minute})
			}(s)
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer wcancel()
		for slot := 0; slot < slots; slot++ {
			if slot > 0 {
				clock.Advance(time.Minute)
			}
			select {
			case <-finished:
			case <-wctx.Done():
				t.Fatalf("slot %d: no run finished", slot)
			}
			// Every instance has claimed (or lost) this slot and gone back to sleep.
			if err := clock.WaitForWaiters(wctx, instances); err != nil {
				t.Fatalf("slot %d: schedulers did not wait for the next slot: %v", slot, err)
			}
			if got := claims.Load(); got != int64(instances*(slot+1)) {
				t.Fatalf("slot %d: %d claims, want %d", slot, got, instances*(slot+1))
			}
		}
		cancel()
		wg.Wait()
		for _, s := range scheds {
			s.Wait()
		}
		select {
		case job := <-finished:
			t.Fatalf("an extra run of %s", job)
		default:
		}
		if won.Load() != slots || lost.Load() != slots*(instances-1) {
			t.Fatalf("claims won %d lost %d", won.Load(), lost.Load())
		}
		// The job's effect: one row per slot.
		if n := len(envs[0].do("GET", "/tables/Runs", "", "X-ZUMO-MASTER", masterKey).list(t)); n != slots {
			t.Fatalf("the job ran %d times over %d slots", n, slots)
		}
		// The history: one succeeded scheduled run per slot, slots one minute apart.
		runs, err := jobs.NewLedger(db).Runs(context.Background(), "cleanup", 100, time.Time{}, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != slots {
			t.Fatalf("history has %d runs: %+v", len(runs), runs)
		}
		seen := map[time.Time]bool{}
		for i, r := range runs {
			if r.Kind != jobs.Scheduled || r.Outcome != jobs.Succeeded || r.Slot == nil || r.Finished == nil || !strings.HasPrefix(r.Instance, "instance-") {
				t.Fatalf("run %+v", r)
			}
			want := slotStart.Add(time.Duration(slots-1-i) * time.Minute)
			if !r.Slot.Equal(want) || seen[*r.Slot] {
				t.Fatalf("run %d slot %v, want %v", i, r.Slot, want)
			}
			seen[*r.Slot] = true
		}
	})
}

// TestJobManualOneAtATimeAcrossInstances sends POST /jobs/wait to three instances at once: one run,
// two 409s with a JSON error, and one manual run in the history.
func TestJobManualOneAtATimeAcrossInstances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var envs []*env
		for i := 0; i < 3; i++ {
			e := newEnv(t, db, jobsApp)
			e.sched.Holder = fmt.Sprintf("instance-%d", i)
			envs = append(envs, e)
		}
		var wg sync.WaitGroup
		res := make([]resp, len(envs))
		begin := make(chan struct{})
		for i, e := range envs {
			wg.Add(1)
			go func(i int, e *env) {
				defer wg.Done()
				<-begin
				res[i] = e.do("POST", "/jobs/wait", "", "X-ZUMO-MASTER", masterKey, "ZUMO-API-VERSION", "2.0.0")
			}(i, e)
		}
		close(begin)
		wg.Wait()
		ok, conflict, winner := 0, 0, -1
		for i, r := range res {
			switch r.status {
			case http.StatusOK:
				ok++
				winner = i
			case http.StatusConflict:
				conflict++
				var body map[string]any
				if err := json.Unmarshal([]byte(r.body), &body); err != nil || body["error"] != "The job is already running." {
					t.Fatalf("409 body %q", r.body)
				}
			default:
				t.Fatalf("status %d: %s", r.status, r.body)
			}
		}
		if ok != 1 || conflict != 2 {
			t.Fatalf("%d runs started, %d refused", ok, conflict)
		}
		for _, e := range envs {
			e.sched.Wait()
		}
		if !strings.Contains(envs[winner].logs.String(), "wait done") {
			t.Fatal("the run did not finish on the instance that answered 200")
		}
		runs, err := jobs.NewLedger(db).Runs(context.Background(), "wait", 10, time.Time{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || runs[0].Kind != jobs.Manual || runs[0].Outcome != jobs.Succeeded || runs[0].Instance != fmt.Sprintf("instance-%d", winner) {
			t.Fatalf("history %+v", runs)
		}
		if d := runs[0].Duration(); d < time.Second {
			t.Fatalf("run lasted %v", d)
		}
		// Finished: the next call runs again.
		expect(t, envs[1].do("POST", "/jobs/wait", "", "X-ZUMO-MASTER", masterKey), 200)
		envs[1].sched.Wait()
	})
}

// TestJobMissedSlotsLoggedOnce: after every instance was down for several slots, the instance that
// claims the next slot records the gap once, and the log says so.
func TestJobMissedSlotsLoggedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, jobsApp)
		clock := keysettest.NewClock(slotStart)
		var recorded []jobs.Run
		var mu sync.Mutex
		mk := func(holder string) *script.Scheduler {
			return &script.Scheduler{Engine: e.engine, DB: db, Holder: holder, Clock: clock, OnRun: func(r jobs.Run) {
				mu.Lock()
				recorded = append(recorded, r)
				mu.Unlock()
			}}
		}
		runOnce := func(holders ...string) {
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var scheds []*script.Scheduler
			for _, h := range holders {
				s := mk(h)
				scheds = append(scheds, s)
				wg.Add(1)
				go func() { defer wg.Done(); s.Schedule(ctx, map[string]time.Duration{"cleanup": time.Minute}) }()
			}
			wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer wcancel()
			if err := clock.WaitForWaiters(wctx, len(holders)); err != nil {
				t.Fatal(err)
			}
			for _, s := range scheds {
				s.Wait()
			}
			cancel()
			wg.Wait()
		}
		runOnce("instance-a")
		// The whole cluster is down for five minutes: slots 12:01 to 12:04 are never claimed.
		clock.Advance(5 * time.Minute)
		missedLog := e.logs.when("scheduled job missed slots")
		runOnce("instance-b", "instance-c")
		select {
		case <-missedLog:
		default:
			t.Fatal("no log line for the missed slots")
		}
		if n := strings.Count(e.logs.String(), "scheduled job missed slots"); n != 1 {
			t.Fatalf("the missed slots were logged %d times", n)
		}
		runs, err := jobs.NewLedger(db).Runs(context.Background(), "cleanup", 10, time.Time{}, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		var outcomes []string
		for _, r := range runs {
			outcomes = append(outcomes, string(r.Outcome)+"@"+r.Slot.Format("15:04"))
		}
		if got := strings.Join(outcomes, " "); got != "succeeded@12:05 missed@12:01 succeeded@12:00" {
			t.Fatalf("history: %s", got)
		}
		if !strings.Contains(runs[1].Error, "4 slot(s)") {
			t.Fatalf("missed row error %q", runs[1].Error)
		}
		mu.Lock()
		defer mu.Unlock()
		missed := 0
		for _, r := range recorded {
			if r.Outcome == jobs.Missed {
				missed++
			}
		}
		if missed != 1 {
			t.Fatalf("OnRun saw %d missed records", missed)
		}
	})
}

// TestJobClaimFailureLogged: with the database unreachable, a scheduled slot and a manual run are not
// run, each failure is logged, and POST /jobs answers 503 with Retry-After.
func TestJobClaimFailureLogged(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, jobsApp)
		// The scheduler's own connection pool, closed: every statement fails like during an outage.
		down := closedDB(t, db.Dialect)
		var claimErr atomic.Value
		s := &script.Scheduler{Engine: e.engine, DB: down, Holder: "instance-x", Clock: keysettest.NewClock(slotStart),
			OnClaim: func(job string, slot time.Time, won bool, err error) { claimErr.Store(fmt.Sprint(err)) }}
		logged := e.logs.when("scheduled job slot not run: claiming it failed")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Schedule(ctx, map[string]time.Duration{"cleanup": time.Minute}); close(done) }()
		select {
		case <-logged:
		case <-time.After(20 * time.Second):
			t.Fatal("no log line for the failed claim")
		}
		cancel()
		<-done
		if v, _ := claimErr.Load().(string); !strings.Contains(v, "closed") {
			t.Fatalf("claim error %q", v)
		}
		manualLogged := e.logs.when("manual job run not started: claiming the job failed")
		if err := s.Run(context.Background(), "cleanup"); !errors.Is(err, script.ErrJobClaim) {
			t.Fatalf("manual run during the outage: %v", err)
		}
		select {
		case <-manualLogged:
		default:
			t.Fatal("no log line for the failed manual claim")
		}
		h := &script.JobHandler{Scheduler: s}
		r := e.serveWith(h, "POST", "/jobs/cleanup", "X-ZUMO-MASTER", masterKey)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "database is unavailable") {
			t.Fatalf("POST /jobs during the outage: %d %v %s", r.status, r.header, r.body)
		}
		// Nothing ran and the in-process guard was released.
		if n := len(e.do("GET", "/tables/Runs", "", "X-ZUMO-MASTER", masterKey).list(t)); n != 0 {
			t.Fatalf("%d runs during the outage", n)
		}
		if err := e.sched.Run(context.Background(), "cleanup"); err != nil {
			t.Fatalf("after the outage: %v", err)
		}
	})
}

// closedDB is a migrated database whose pool is closed: every statement fails, as during an outage.
func closedDB(t *testing.T, d store.Dialect) *store.DB {
	t.Helper()
	dsn := storetest.SQLiteURL(t)
	if d == store.Postgres {
		dsn = storetest.PostgresURL(t)
	}
	db := storetest.Open(t, dsn)
	db.Close()
	return db
}

// serveWith serves one request through the server's middleware with h mounted on /jobs.
func (e *env) serveWith(h http.Handler, method, path string, headers ...string) resp {
	e.t.Helper()
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		e.t.Fatal(err)
	}
	srv := server.New(server.Deps{Config: cfg, Auth: e.auth, Minter: e.minter, App: e.engine.App(), DB: e.db,
		Metrics: metrics.New("test"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
	srv.Mount("jobs", "/jobs/{job}", h)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	srv.Handler().ServeHTTP(rec, req)
	return resp{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}
