package script_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/keyset/keysettest"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// signalClock is one instance's view of a shared manual clock: every After (a schedule loop going to
// sleep) is signalled, so a test knows when the instance is idle.
type signalClock struct {
	*keysettest.Clock
	slept chan struct{}
}

func newSignalClock(c *keysettest.Clock) *signalClock {
	return &signalClock{Clock: c, slept: make(chan struct{}, 1000)}
}

func (c *signalClock) After(d time.Duration) <-chan time.Time {
	ch := c.Clock.After(d)
	c.slept <- struct{}{}
	return ch
}

// drain forgets the signals so far.
func (c *signalClock) drain() {
	for {
		select {
		case <-c.slept:
		default:
			return
		}
	}
}

// waitSleeps waits for n more loops going to sleep.
func (c *signalClock) waitSleeps(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-c.slept:
		case <-time.After(20 * time.Second):
			t.Fatalf("the schedule loop did not go back to sleep (%d of %d)", i, n)
		}
	}
}

// scheduleWatch collects a scheduler's callbacks for a test.
type scheduleWatch struct {
	scheds   chan jobs.Schedule
	finished chan string
	mu       sync.Mutex
	claims   []string
}

func newScheduleWatch() *scheduleWatch {
	return &scheduleWatch{scheds: make(chan jobs.Schedule, 100), finished: make(chan string, 100)}
}

func (w *scheduleWatch) attach(t *testing.T, s *script.Scheduler) {
	s.OnSchedule = func(sc jobs.Schedule) { w.scheds <- sc }
	s.OnFinish = func(job string, err error) {
		if err != nil {
			t.Errorf("run of %s failed: %v", job, err)
		}
		w.finished <- job
	}
	s.OnClaim = func(job string, slot time.Time, won bool, err error) {
		if err != nil {
			t.Errorf("claim of %s failed: %v", job, err)
		}
		w.mu.Lock()
		w.claims = append(w.claims, fmt.Sprintf("%s@%s:%v", job, slot.Format("15:04"), won))
		w.mu.Unlock()
	}
}

// waitSchedule waits until the scheduler reports it runs sc's interval (every 0: stopped).
func (w *scheduleWatch) waitSchedule(t *testing.T, every time.Duration) jobs.Schedule {
	t.Helper()
	for {
		select {
		case sc := <-w.scheds:
			if (every == 0 && !sc.Active()) || (sc.Active() && sc.Every == every) {
				return sc
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the scheduler did not take up the schedule every %v", every)
		}
	}
}

func (w *scheduleWatch) waitRun(t *testing.T) {
	t.Helper()
	select {
	case <-w.finished:
	case <-time.After(20 * time.Second):
		t.Fatal("no run finished")
	}
}

func dur(d time.Duration) *time.Duration { return &d }
func flag(b bool) *bool                  { return &b }

var testActor = audit.Entry{Actor: "tester", Via: audit.ViaCLI}

// history is the job's history, oldest first, as outcome@slot (manual runs: manual).
func history(t *testing.T, db *store.DB, job string, now time.Time) string {
	t.Helper()
	runs, err := jobs.NewLedger(db).Runs(context.Background(), job, 100, time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if r.Slot == nil {
			out = append(out, string(r.Kind)+":"+string(r.Outcome))
			continue
		}
		out = append(out, string(r.Outcome)+"@"+r.Slot.Format("15:04"))
	}
	return strings.Join(out, " ")
}

// TestJobScheduleRetimed drives one instance through schedule changes on a manual clock: a longer
// configured interval shortened (the current slot of the new interval runs at once, the slots of the
// new interval before the change are not "missed"), lengthened (a slot the old schedule already served
// is not run again), disabled (nothing runs, a manual run still does), re-enabled (the disabled time is
// not "missed", a real gap after it is), and returned to the configured default.
func TestJobScheduleRetimed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, jobsApp)
		base := keysettest.NewClock(slotStart.Add(10 * time.Second))
		clock := newSignalClock(base)
		n := notify.NewLocal()
		schedules := &jobs.Schedules{Store: jobs.NewScheduleStore(db), Audit: audit.NewStore(db), Notifier: n, Now: base.Now}
		w := newScheduleWatch()
		s := &script.Scheduler{Engine: e.engine, DB: db, Holder: "instance-a", Clock: clock, Schedules: schedules.Store, Notifier: n, Poll: time.Hour}
		w.attach(t, s)
		defs := []jobs.Def{{Name: "cleanup", Every: time.Hour}, {Name: "wait"}, {Name: "slow"}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Schedule(ctx, map[string]time.Duration{"cleanup": time.Hour}); close(done) }()

		w.waitSchedule(t, time.Hour)
		w.waitRun(t) // 12:00
		clock.waitSleeps(t, 1)

		change := func(at time.Duration, ch *jobs.Change, every time.Duration) {
			t.Helper()
			base.Advance(at)
			clock.drain()
			var err error
			if ch == nil {
				_, _, err = schedules.Reset(context.Background(), defs, "cleanup", testActor)
			} else {
				_, _, err = schedules.Set(context.Background(), defs, "cleanup", *ch, testActor)
			}
			if err != nil {
				t.Fatal(err)
			}
			w.waitSchedule(t, every)
		}
		advance := func(d time.Duration, runs int) {
			t.Helper()
			clock.drain()
			base.Advance(d)
			for i := 0; i < runs; i++ {
				w.waitRun(t)
			}
			clock.waitSleeps(t, 1)
		}

		// 12:37: every 10 minutes. The current slot (12:30) runs now; 12:10 and 12:20 were never slots.
		base.Advance(36*time.Minute + 50*time.Second)
		change(0, &jobs.Change{Every: dur(10 * time.Minute)}, 10*time.Minute)
		w.waitRun(t)
		clock.waitSleeps(t, 1)
		advance(3*time.Minute, 1)  // 12:40
		advance(10*time.Minute, 1) // 12:50

		// 12:51: every 15 minutes. Its current slot (12:45) was served by the 12:50 run: next is 13:00.
		change(time.Minute, &jobs.Change{Every: dur(15 * time.Minute)}, 15*time.Minute)
		clock.waitSleeps(t, 1)
		advance(9*time.Minute, 1) // 13:00

		// 13:01: disabled. Nothing runs for 44 minutes; a manual run does.
		change(time.Minute, &jobs.Change{Enabled: flag(false)}, 0)
		base.Advance(44 * time.Minute)
		if err := s.Run(context.Background(), "cleanup"); err != nil {
			t.Fatalf("manual run of a disabled job: %v", err)
		}
		w.waitRun(t)

		// 13:46: enabled again: the 13:45 slot runs; 13:15 and 13:30 are not missed (disabled).
		change(time.Minute, &jobs.Change{Enabled: flag(true)}, 15*time.Minute)
		w.waitRun(t)
		clock.waitSleeps(t, 1)
		// The instance sleeps through 14:00 (the clock jumps to 14:15): a real gap, recorded once.
		advance(29*time.Minute, 1)

		// 14:16: back to the configured hour. Its current slot (14:00) was served by the 14:15 run (and
		// recorded missed): the next run is 15:00.
		change(time.Minute, nil, time.Hour)
		clock.waitSleeps(t, 1)
		advance(44*time.Minute, 1)

		cancel()
		<-done
		s.Wait()
		want := "succeeded@12:00 succeeded@12:30 succeeded@12:40 succeeded@12:50 succeeded@13:00 manual:succeeded succeeded@13:45 missed@14:00 succeeded@14:15 succeeded@15:00"
		if got := history(t, db, "cleanup", base.Now()); got != want {
			t.Fatalf("history:\n got  %s\n want %s", got, want)
		}
		// Every change is in the audit trail with its before and after.
		list, err := audit.NewStore(db).List(context.Background(), audit.Filter{Action: "job.schedule", Ascending: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 5 {
			t.Fatalf("%d audit entries", len(list))
		}
		if !strings.Contains(string(list[0].Before), `"every":"1h"`) || !strings.Contains(string(list[0].After), `"every":"10m"`) ||
			!strings.Contains(string(list[2].After), `"enabled":false`) || !strings.Contains(string(list[4].After), `"source":"configuration"`) {
			t.Fatalf("audit: %s → %s; %s; %s", list[0].Before, list[0].After, list[2].After, list[4].After)
		}
	})
}

// TestJobScheduleClusterWide runs three instances, each with its own connection pool and LISTEN
// connection, on one PostgreSQL database and a shared manual clock. A schedule changed through one
// instance is in force on all three within a second (by the notification: their poll is an hour),
// and every slot of every schedule runs exactly once in the cluster.
func TestJobScheduleClusterWide(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	const instances = 3
	base := keysettest.NewClock(slotStart.Add(10 * time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type instance struct {
		db        *store.DB
		clock     *signalClock
		watch     *scheduleWatch
		sched     *script.Scheduler
		schedules *jobs.Schedules
	}
	var won atomic.Int64
	var all []*instance
	for i := 0; i < instances; i++ {
		db := storetest.Open(t, dsn)
		n, err := notify.NewPostgres(ctx, db.DB, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		go n.Run(ctx)
		e := newEnv(t, db, jobsApp)
		in := &instance{db: db, clock: newSignalClock(base), watch: newScheduleWatch(),
			schedules: &jobs.Schedules{Store: jobs.NewScheduleStore(db), Audit: audit.NewStore(db), Notifier: n, Now: base.Now}}
		in.sched = &script.Scheduler{Engine: e.engine, DB: db, Holder: fmt.Sprintf("instance-%d", i), Clock: in.clock,
			Schedules: in.schedules.Store, Notifier: n, Poll: time.Hour}
		in.watch.attach(t, in.sched)
		claim := in.sched.OnClaim
		in.sched.OnClaim = func(job string, slot time.Time, w bool, err error) {
			if w {
				won.Add(1)
			}
			claim(job, slot, w, err)
		}
		all = append(all, in)
	}
	// The listeners are connected before anything changes.
	deadline := time.Now().Add(10 * time.Second)
	for _, in := range all {
		for !in.schedules.Notifier.(*notify.Postgres).Connected() {
			if time.Now().After(deadline) {
				t.Fatal("a listener did not connect")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	for _, in := range all {
		wg.Add(1)
		go func(in *instance) {
			defer wg.Done()
			in.sched.Schedule(ctx, map[string]time.Duration{"cleanup": time.Minute})
		}(in)
	}
	runs := 0
	waitRuns := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			select {
			case <-all[0].watch.finished:
			case <-all[1].watch.finished:
			case <-all[2].watch.finished:
			case <-time.After(20 * time.Second):
				t.Fatal("no run finished")
			}
		}
		runs += n
	}
	allSleep := func() {
		t.Helper()
		for _, in := range all {
			in.clock.waitSleeps(t, 1)
		}
	}
	for _, in := range all {
		in.watch.waitSchedule(t, time.Minute)
	}
	waitRuns(1) // 12:00
	allSleep()
	advance := func(d time.Duration, n int) {
		t.Helper()
		for _, in := range all {
			in.clock.drain()
		}
		base.Advance(d)
		waitRuns(n)
		if n > 0 {
			allSleep()
		}
	}
	advance(time.Minute, 1) // 12:01
	defs := []jobs.Def{{Name: "cleanup", Every: time.Minute}}
	// change makes a change through instance via and measures how long until all three run it.
	change := func(via int, ch jobs.Change, every time.Duration) time.Duration {
		t.Helper()
		for _, in := range all {
			in.clock.drain()
		}
		start := time.Now()
		if _, _, err := all[via].schedules.Set(context.Background(), defs, "cleanup", ch, audit.Entry{Actor: fmt.Sprint("admin-", via), Via: audit.ViaAdminAPI}); err != nil {
			t.Fatal(err)
		}
		for _, in := range all {
			in.watch.waitSchedule(t, every)
		}
		took := time.Since(start)
		if took > time.Second {
			t.Fatalf("the change took %v to reach every instance", took)
		}
		return took
	}
	// 12:01:10 → every 5 minutes, through instance 0. Its current slot (12:00) has run: next 12:05.
	took := change(0, jobs.Change{Every: dur(5 * time.Minute)}, 5*time.Minute)
	t.Logf("every 5m in force cluster-wide after %v", took)
	allSleep()
	advance(2*time.Minute, 0) // 12:03:10: nothing (the 1-minute loops are gone)
	advance(2*time.Minute, 1) // 12:05:10
	advance(5*time.Minute, 1) // 12:10:10

	// Disabled through instance 1: nothing runs for 20 minutes.
	took = change(1, jobs.Change{Enabled: flag(false)}, 0)
	t.Logf("disabled cluster-wide after %v", took)
	advance(20*time.Minute, 0) // 12:30:10

	// Enabled again every 2 minutes through instance 2: the current slot (12:30) runs at once.
	took = change(2, jobs.Change{Every: dur(2 * time.Minute), Enabled: flag(true)}, 2*time.Minute)
	t.Logf("every 2m in force cluster-wide after %v", took)
	waitRuns(1)
	allSleep()
	advance(2*time.Minute, 1) // 12:32:10

	cancel()
	wg.Wait()
	for _, in := range all {
		in.sched.Wait()
	}
	want := "succeeded@12:00 succeeded@12:01 succeeded@12:05 succeeded@12:10 succeeded@12:30 succeeded@12:32"
	if got := history(t, all[0].db, "cleanup", base.Now()); got != want {
		t.Fatalf("history:\n got  %s\n want %s", got, want)
	}
	if won.Load() != int64(runs) || runs != 6 {
		t.Fatalf("%d claims won for %d runs", won.Load(), runs)
	}
	for _, in := range all {
		select {
		case <-in.watch.finished:
			t.Fatal("an extra run")
		default:
		}
	}
}

// TestJobSchedulePollFallback: without notifications (a change made while the hint was lost), an
// instance takes up a changed schedule at its next poll.
func TestJobSchedulePollFallback(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, jobsApp)
	base := keysettest.NewClock(slotStart.Add(10 * time.Second))
	schedules := &jobs.Schedules{Store: jobs.NewScheduleStore(db), Audit: audit.NewStore(db), Now: base.Now}
	w := newScheduleWatch()
	s := &script.Scheduler{Engine: e.engine, DB: db, Holder: "instance-a", Clock: newSignalClock(base), Schedules: schedules.Store, Poll: 50 * time.Millisecond}
	w.attach(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Schedule(ctx, nil); close(done) }()
	defer func() { cancel(); <-done; s.Wait() }()
	// Nothing configured: no schedule until one is set.
	start := time.Now()
	if _, _, err := schedules.Set(context.Background(), []jobs.Def{{Name: "cleanup"}}, "cleanup", jobs.Change{Every: dur(time.Hour)}, testActor); err != nil {
		t.Fatal(err)
	}
	w.waitSchedule(t, time.Hour)
	w.waitRun(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the poll took %v", took)
	}
}
