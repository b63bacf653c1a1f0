package script_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/token"
)

var jobsApp = map[string]string{
	"datamodel.json": `{"tables":[{"name":"Runs","permissions":{"*":"admin"}}],"jobs":[{"name":"cleanup"}]}`,
	"scheduler/cleanup.js": `function cleanup() {
    tables.getTable('Runs').insert({ job: 'cleanup' }, {
        success: function () { console.log('cleanup inserted a row'); }
    });
}`,
	// wait runs for a while, then ends by itself.
	"scheduler/wait.js": `function wait() {
    console.log('wait started');
    setTimeout(function () { console.log('wait done'); }, 1500);
}`,
	// slow keeps running (an interval that is never cleared) until its budget or context ends.
	"scheduler/slow.js": `function slow() {
    console.log('slow started');
    setInterval(function () {}, 5);
}`,
}

func cronToken(t *testing.T, appid, scope string) string {
	t.Helper()
	tok, err := token.Mint(systemKey, token.Claims{Exp: time.Now().Add(time.Hour).Unix(), UID: "cron",
		Extra: map[string]any{"urn:microsoft:appid": appid, "urn:microsoft:scope": scope}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestJobAuthorization(t *testing.T) {
	e := newEnv(t, nil, jobsApp)
	runs := func() int {
		e.sched.Wait()
		return len(e.do("GET", "/tables/Runs", "", "X-ZUMO-MASTER", masterKey).list(t))
	}
	expect(t, e.do("POST", "/jobs/cleanup", ""), 401)
	// A user token (signed with the master key) is not a job token.
	expect(t, e.do("POST", "/jobs/cleanup", "", "X-ZUMO-AUTH", e.token("Custom:ann")), 401)
	// The original's hole: a wrong master key plus a token scoped to another job ran any job.
	expect(t, e.do("POST", "/jobs/cleanup", "", "X-ZUMO-MASTER", "wrong", "X-ZUMO-AUTH", cronToken(t, "todolist", "slow")), 401)
	expect(t, e.do("POST", "/jobs/cleanup", "", "X-ZUMO-AUTH", cronToken(t, "otherservice", "cleanup")), 401)
	// Unknown jobs are not disclosed to callers without rights.
	expect(t, e.do("POST", "/jobs/nothere", ""), 401)
	expect(t, e.do("POST", "/jobs/nothere", "", "X-ZUMO-MASTER", masterKey), 404)
	expect(t, e.do("GET", "/jobs/cleanup", "", "X-ZUMO-MASTER", masterKey), 405)
	if n := runs(); n != 0 {
		t.Fatalf("%d runs before any authorized request", n)
	}

	r := e.do("POST", "/jobs/cleanup", "", "X-ZUMO-AUTH", cronToken(t, "todolist", "cleanup"))
	expect(t, r, 200)
	if r.body != "" {
		t.Fatalf("body %q", r.body)
	}
	if n := runs(); n != 1 {
		t.Fatalf("runs = %d", n)
	}
	expect(t, e.do("POST", "/jobs/CLEANUP", "", "X-ZUMO-MASTER", masterKey), 200)
	if n := runs(); n != 2 {
		t.Fatalf("runs = %d", n)
	}
}

func TestJobNeverTwiceAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, jobsApp)
		started := e.logs.when("slow started")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.sched.Run(ctx, "slow") }()
		<-started

		// Same instance: refused by the in-process guard (and the HTTP endpoint answers 409).
		if err := e.sched.Run(context.Background(), "slow"); !errors.Is(err, script.ErrJobRunning) {
			t.Fatalf("second run on the same instance: %v", err)
		}
		expect(t, e.do("POST", "/jobs/slow", "", "X-ZUMO-MASTER", masterKey), 409)

		// Another instance on the same database: refused by the lease.
		other := &script.Scheduler{Engine: e.engine, DB: db, Holder: "instance-b"}
		if err := other.Run(context.Background(), "slow"); !errors.Is(err, script.ErrJobRunning) {
			t.Fatalf("run on another instance: %v", err)
		}
		// An expired lease (its holder died) is taken over.
		late := &script.Scheduler{Engine: e.engine, DB: db, Holder: "instance-c", Clock: shiftedClock{24 * time.Hour}}
		lateStarted := e.logs.when("slow started")
		lateCtx, lateCancel := context.WithCancel(context.Background())
		lateDone := make(chan error, 1)
		go func() { lateDone <- late.Run(lateCtx, "slow") }()
		select {
		case <-lateStarted:
		case err := <-lateDone:
			t.Fatalf("instance c could not take the expired lease: %v", err)
		}
		lateCancel()
		<-lateDone

		cancel()
		<-done
		// Released: the other instance may run it now.
		otherCtx, otherCancel := context.WithCancel(context.Background())
		otherStarted := e.logs.when("slow started")
		otherDone := make(chan error, 1)
		go func() { otherDone <- other.Run(otherCtx, "slow") }()
		<-otherStarted
		otherCancel()
		<-otherDone
	})
}

func TestJobSchedule(t *testing.T) {
	e := newEnv(t, nil, jobsApp)
	finished := make(chan string, 10)
	s := &script.Scheduler{Engine: e.engine, DB: e.db, OnFinish: func(job string, err error) {
		if err == nil {
			select {
			case finished <- job:
			default: // the test has seen enough runs
			}
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.Schedule(ctx, map[string]time.Duration{"cleanup": time.Millisecond}); close(stopped) }()
	if job := <-finished; job != "cleanup" {
		t.Fatalf("finished %q", job)
	}
	<-finished
	cancel()
	<-stopped
	if n := len(e.do("GET", "/tables/Runs", "", "X-ZUMO-MASTER", masterKey).list(t)); n < 2 {
		t.Fatalf("runs = %d", n)
	}
}

// shiftedClock is the wall clock moved by an offset (an instance whose leases look expired).
type shiftedClock struct{ d time.Duration }

func (c shiftedClock) Now() time.Time                         { return time.Now().Add(c.d) }
func (c shiftedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
