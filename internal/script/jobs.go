package script

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Errors of job runs.
var (
	ErrNoJob      = errors.New("script: no such job")
	ErrJobRunning = errors.New("script: the job is already running")
	// ErrJobClaim: the database could not be asked who runs the job (an outage); the run did not start.
	ErrJobClaim = errors.New("script: the job could not be claimed: the database is unavailable")
)

// DefaultJobHistory is how long job run history is kept.
const DefaultJobHistory = 30 * 24 * time.Hour

// DefaultSchedulePoll is how often an instance re-reads the job schedules without a notify.Jobs hint.
const DefaultSchedulePoll = 5 * time.Second

// Scheduler runs scheduler/<job>.js (spec §5.4): on POST /jobs/<job> and on a schedule. With DB set,
// every instance sharing the database runs the same schedule and the database decides: each
// (job, schedule slot) is claimed by exactly one instance (package jobs), a lease keeps two runs of a
// job from overlapping anywhere in the cluster, and every run is recorded in the history. Without DB
// (one instance, tests) only the in-process guard applies and nothing is recorded.
type Scheduler struct {
	Engine *Engine
	// DB holds the slot claims, leases and history; nil runs without (one instance).
	DB *store.DB
	// Holder identifies this instance in the history (default: random).
	Holder string
	Log    *slog.Logger
	// Clock is the time source of the schedule, claims and leases (default the wall clock).
	Clock jobs.Clock
	// History is how long run history is kept (default DefaultJobHistory).
	History time.Duration
	// OnFinish, when set, is called after every run that executed the job (tests).
	OnFinish func(job string, err error)
	// OnRun, when set, is called with every run recorded: finished, skipped or missed (metrics).
	OnRun func(jobs.Run)
	// OnClaim, when set, reports each attempt at claiming a slot: won, lost to another instance, or
	// failed with err.
	OnClaim func(job string, slot time.Time, won bool, err error)
	// Schedules holds the schedules set at run time (console, admin API, CLI); nil runs the
	// configured schedule only.
	Schedules jobs.ScheduleStore
	// Notifier delivers notify.Jobs hints: a changed schedule reaches this instance at once.
	Notifier notify.Notifier
	// Poll is how often the schedules are re-read without a hint (default DefaultSchedulePoll). It
	// is wall-clock time: the fallback for lost hints, not part of the schedule.
	Poll time.Duration
	// OnSchedule, when set, is called whenever this instance (re)starts or stops a job's schedule:
	// with the schedule now in force (Active false: stopped).
	OnSchedule func(jobs.Schedule)

	mu      sync.Mutex
	running map[string]bool
	ledger  *jobs.Ledger
	bg      sync.WaitGroup
}

func (s *Scheduler) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[string]bool{}
	}
	if s.Holder == "" {
		b := make([]byte, 8)
		rand.Read(b) //nolint:errcheck // crypto/rand does not fail on supported platforms
		s.Holder = hex.EncodeToString(b)
	}
	if s.Clock == nil {
		s.Clock = jobs.SystemClock{}
	}
	if s.Log == nil {
		s.Log = s.Engine.opt.Log
	}
	if s.History <= 0 {
		s.History = DefaultJobHistory
	}
	if s.DB != nil && s.ledger == nil {
		s.ledger = jobs.NewLedger(s.DB)
	}
}

// Wait blocks until background runs started by the HTTP handler or the schedule have finished.
func (s *Scheduler) Wait() { s.bg.Wait() }

// claim is a run this instance may execute: the in-process guard is set, and with a database the
// lease is held and the run recorded.
type claim struct {
	name  string // the job's declared name
	v     *Version
	path  string
	run   jobs.Run
	guard bool // holds the in-process guard
	lease bool // holds the database lease (holder = run id)
	saved bool // the run row exists
}

func (s *Scheduler) resolve(name string) (*claim, error) {
	v := s.Engine.Current()
	job, ok := v.App.Job(name)
	if !ok {
		return nil, ErrNoJob
	}
	path, ok := v.ScriptPath("scheduler", job.Name+".js")
	if !ok {
		return nil, ErrNoJob
	}
	return &claim{name: job.Name, v: v, path: path}, nil
}

// leaseTTL bounds a run: the engine stops a job at JobTimeout, so a lease (or a run row still marked
// running) older than this belongs to an instance that died.
func (s *Scheduler) leaseTTL() time.Duration { return s.Engine.opt.JobTimeout + time.Minute }

func (s *Scheduler) takeGuard(c *claim) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := jobs.Key(c.name)
	if s.running[k] {
		return false
	}
	s.running[k] = true
	c.guard = true
	return true
}

// claimManual claims a manual run: one at a time in the whole cluster.
func (s *Scheduler) claimManual(ctx context.Context, name string) (*claim, error) {
	c, err := s.resolve(name)
	if err != nil {
		return nil, err
	}
	now := s.Clock.Now()
	c.run = jobs.Run{ID: jobs.NewID(), Job: jobs.Key(c.name), Kind: jobs.Manual, Instance: s.Holder, Started: now, Outcome: jobs.Running, Deadline: now.Add(s.leaseTTL())}
	if !s.takeGuard(c) {
		s.Log.Info("manual job run refused: the job is running on this instance", "job", c.name)
		return nil, ErrJobRunning
	}
	if s.ledger == nil {
		return c, nil
	}
	ok, err := s.ledger.AcquireLease(ctx, c.name, c.run.ID, now, c.run.Deadline)
	if err != nil {
		s.end(c)
		s.Log.Error("manual job run not started: claiming the job failed", "job", c.name, "err", err)
		return nil, fmt.Errorf("%w: %w", ErrJobClaim, err)
	}
	if !ok {
		s.end(c)
		s.Log.Info("manual job run refused: the job is running elsewhere in the cluster", "job", c.name)
		return nil, ErrJobRunning
	}
	c.lease = true
	if c.run, err = s.ledger.StartManual(ctx, c.run.ID, c.name, s.Holder, now, c.run.Deadline); err != nil {
		s.end(c)
		s.Log.Error("manual job run not started: recording it failed", "job", c.name, "err", err)
		return nil, fmt.Errorf("%w: %w", ErrJobClaim, err)
	}
	c.saved = true
	return c, nil
}

// Run runs a job now and waits for it: ErrNoJob, ErrJobRunning (here or elsewhere in the cluster),
// ErrJobClaim, or the job's own failure.
func (s *Scheduler) Run(ctx context.Context, name string) error {
	s.init()
	c, err := s.claimManual(ctx, name)
	if err != nil {
		return err
	}
	return s.execute(ctx, c)
}

// Start claims a manual run and runs it in the background: the claim's error (ErrNoJob,
// ErrJobRunning, ErrJobClaim) is returned before anything runs.
func (s *Scheduler) Start(ctx context.Context, name string) error {
	s.init()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := s.claimManual(cctx, name)
	if err != nil {
		return err
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.execute(ctx, c) //nolint:errcheck // logged and recorded by execute
	}()
	return nil
}

// execute runs a claimed job and records its end.
func (s *Scheduler) execute(ctx context.Context, c *claim) error {
	v, path := c.v, c.path
	err := s.Engine.runFor(ctx, s.Engine.opt.JobTimeout, v, v.rel(path), func(m *vm) error {
		fns, err := m.runScript(path)
		if err != nil {
			return err
		}
		f, ok := goja.AssertFunction(fns.Get("job"))
		if !ok {
			return fmt.Errorf("%s does not define function %s", m.inv.script, c.name)
		}
		_, err = f(goja.Undefined())
		return err
	}, func() bool { return false })
	outcome, msg := jobs.Succeeded, ""
	if err != nil {
		logFailure(s.Log, v.rel(path), nil, err, string(c.run.Kind)+" job run "+c.run.ID)
		outcome, msg = jobs.Failed, describe(err)
	}
	s.finish(c, outcome, msg)
	if err == nil {
		s.Log.Info("job finished", "job", c.name, "trigger", string(c.run.Kind), "run", c.run.ID, "duration", c.run.Duration().String())
	}
	if s.OnFinish != nil {
		s.OnFinish(c.name, err)
	}
	return err
}

func describe(err error) string {
	msg, where := Describe(err)
	if where != "" {
		msg += " (at " + where + ")"
	}
	return msg
}

// finish records a claimed run's end, then releases what the claim holds.
func (s *Scheduler) finish(c *claim, outcome jobs.Outcome, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at := s.Clock.Now()
	if c.saved {
		if err := s.ledger.Finish(ctx, &c.run, outcome, msg, at); err != nil {
			s.Log.Error("recording the end of a job run failed", "job", c.name, "run", c.run.ID, "outcome", string(outcome), "err", err)
		}
	} else {
		c.run.Outcome, c.run.Error, c.run.Finished = outcome, msg, &at
	}
	s.end(c)
	if s.OnRun != nil {
		s.OnRun(c.run)
	}
}

// end releases the lease and the in-process guard.
func (s *Scheduler) end(c *claim) {
	if c.lease {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.ledger.ReleaseLease(ctx, c.name, c.run.ID); err != nil {
			s.Log.Warn("releasing a job lease failed; it expires by itself", "job", c.name, "expires", c.run.Deadline, "err", err)
		}
		c.lease = false
	}
	if c.guard {
		s.mu.Lock()
		delete(s.running, jobs.Key(c.name))
		s.mu.Unlock()
		c.guard = false
	}
}

// runSlot claims one schedule slot of a job and, when this instance wins it, starts the run in the
// background. Every outcome short of a run is logged: a failed claim (database unreachable) as an
// error, a slot skipped because the job is still running as a warning, a slot another instance won at
// debug level.
func (s *Scheduler) runSlot(ctx context.Context, name string, every time.Duration, since, slot time.Time) {
	c, err := s.resolve(name)
	if err != nil {
		s.Log.Warn("scheduled job does not exist in the app directory", "job", name)
		return
	}
	now := s.Clock.Now()
	c.run = jobs.Run{ID: jobs.NewID(), Job: jobs.Key(c.name), Kind: jobs.Scheduled, Slot: &slot, Instance: s.Holder, Started: now, Outcome: jobs.Running, Deadline: now.Add(s.leaseTTL())}
	if s.ledger != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		run, won, err := s.ledger.ClaimSlot(cctx, c.name, slot, s.Holder, now, c.run.Deadline)
		if s.OnClaim != nil {
			s.OnClaim(c.name, slot, won, err)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.Log.Error("scheduled job slot not run: claiming it failed", "job", c.name, "slot", slot, "err", err)
			}
			return
		}
		if !won {
			s.Log.Debug("scheduled job slot claimed by another instance", "job", c.name, "slot", slot)
			return
		}
		c.run, c.saved = run, true
		s.housekeeping(cctx, c.name, every, since, slot, now)
	}
	if !s.takeGuard(c) {
		s.Log.Warn("scheduled job slot skipped: the previous run is still in progress on this instance", "job", c.name, "slot", slot)
		s.finish(c, jobs.Skipped, "the previous run was still in progress")
		return
	}
	if s.ledger != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ok, err := s.ledger.AcquireLease(cctx, c.name, c.run.ID, now, c.run.Deadline)
		if err != nil {
			s.Log.Error("scheduled job slot not run: taking the job's lease failed", "job", c.name, "slot", slot, "err", err)
			s.finish(c, jobs.Failed, "taking the job's lease failed: the database did not answer")
			return
		}
		if !ok {
			s.Log.Warn("scheduled job slot skipped: the job is still running elsewhere in the cluster", "job", c.name, "slot", slot)
			s.finish(c, jobs.Skipped, "the job was still running elsewhere in the cluster")
			return
		}
		c.lease = true
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.execute(ctx, c) //nolint:errcheck // logged and recorded by execute
	}()
}

// housekeeping runs on the instance that won a slot: it records (and logs, once for the cluster) the
// slots nobody ran since the previous claim, marks runs of dead instances abandoned and prunes old
// history. Its failures are logged and do not stop the run.
//
// The slots counted as missed are those of the schedule in force, between the previous claimed slot
// (of any earlier schedule) and this one, from the slot current when the schedule began (since; zero
// for the configured schedule): a job re-timed or re-enabled has missed nothing before that.
func (s *Scheduler) housekeeping(ctx context.Context, job string, every time.Duration, since, slot, now time.Time) {
	prev, ok, err := s.ledger.PreviousSlot(ctx, job, slot)
	if err != nil {
		s.Log.Warn("checking for missed job slots failed", "job", job, "err", err)
	} else if ok && every > 0 {
		first := jobs.SlotOf(prev, every).Add(every)
		if !since.IsZero() {
			if s0 := jobs.SlotOf(since, every); s0.After(first) {
				first = s0
			}
		}
		if n := int64(slot.Sub(first) / every); n > 0 {
			last := slot.Add(-every)
			recorded, err := s.ledger.RecordMissed(ctx, job, first, last, n, s.Holder, now)
			if err != nil {
				s.Log.Warn("recording missed job slots failed", "job", job, "missed", n, "err", err)
			}
			if recorded {
				s.Log.Warn("scheduled job missed slots: no instance ran them (were all instances down or the database unreachable?)",
					"job", job, "missed", n, "from", first, "to", last)
				if s.OnRun != nil {
					s.OnRun(jobs.Run{Job: jobs.Key(job), Kind: jobs.Scheduled, Slot: &first, Instance: s.Holder, Started: now, Finished: &now, Outcome: jobs.Missed})
				}
			}
		}
	}
	if n, err := s.ledger.AbandonExpired(ctx, job, now); err != nil {
		s.Log.Warn("marking abandoned job runs failed", "job", job, "err", err)
	} else if n > 0 {
		s.Log.Warn("job runs abandoned: their instance stopped before recording their end", "job", job, "runs", n)
	}
	if _, err := s.ledger.Prune(ctx, job, now.Add(-s.History)); err != nil {
		s.Log.Warn("pruning job history failed", "job", job, "err", err)
	}
}

// Schedule runs each scheduled job once per slot of its interval until ctx ends. Slots are aligned to
// the Unix epoch, so all instances agree on them; the slot current when a job's schedule starts is
// claimed at once (if no instance ran it yet, it runs now). Missed slots are recorded and logged, not
// caught up.
//
// configured is the scripts.jobs schedule. With Schedules set, the schedules set at run time take
// precedence, and they are re-read on every notify.Jobs hint and every Poll: a job whose interval
// changed is re-timed, a disabled one stopped, a re-enabled one started, without a restart. A change
// never runs a slot twice: a slot is still claimed once in the cluster, and a job re-timed after its
// previous schedule ran a later slot than the new schedule's current one waits for the next slot of
// the new interval. Until the schedules can be read, no job is scheduled (the slots could not be
// claimed either).
func (s *Scheduler) Schedule(ctx context.Context, configured map[string]time.Duration) {
	s.init()
	var hints <-chan string
	if s.Schedules != nil && s.Notifier != nil {
		c, stop := s.Notifier.Subscribe(notify.Jobs)
		defer stop()
		hints = c
	}
	loops := map[string]*jobLoop{}
	defer func() {
		for _, l := range loops {
			l.stop()
		}
	}()
	poll := s.Poll
	if poll <= 0 {
		poll = DefaultSchedulePoll
	}
	var tick <-chan time.Time
	if s.Schedules != nil {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	known := false
	for {
		if err := s.reconcile(ctx, configured, loops); err != nil {
			if ctx.Err() != nil {
				return
			}
			if known {
				s.Log.Warn("reading the job schedules failed; the schedules in force stay until the next try", "err", err)
			} else {
				s.Log.Error("reading the job schedules failed; no job is scheduled until they can be read", "err", err)
			}
		} else {
			known = true
		}
		select {
		case <-ctx.Done():
			return
		case <-hints:
		case <-tick:
		}
	}
}

// jobLoop is one job's running schedule on this instance.
type jobLoop struct {
	sched  jobs.Schedule
	since  time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the loop and waits for it (a run it started goes on).
func (l *jobLoop) stop() {
	l.cancel()
	<-l.done
}

// desired is the schedule each declared job should run now: the configured interval, overridden by
// the schedules set at run time.
func (s *Scheduler) desired(ctx context.Context, configured map[string]time.Duration) (map[string]jobs.Schedule, map[string]time.Time, error) {
	app := s.Engine.Current().App
	var defs []jobs.Def
	for _, j := range app.Jobs() {
		d := jobs.Def{Name: j.Name}
		for name, every := range configured {
			if jobs.Key(name) == jobs.Key(j.Name) {
				d.Every = every
			}
		}
		defs = append(defs, d)
	}
	var overrides map[string]jobs.Override
	if s.Schedules != nil {
		var err error
		if overrides, err = s.Schedules.Overrides(ctx); err != nil {
			return nil, nil, err
		}
	}
	out, since := map[string]jobs.Schedule{}, map[string]time.Time{}
	for _, sc := range jobs.Resolve(defs, overrides) {
		if sc.Active() {
			k := jobs.Key(sc.Job)
			out[k] = sc
			if o, ok := overrides[k]; ok {
				since[k] = o.UpdatedAt
			}
		}
	}
	return out, since, nil
}

// reconcile starts, re-times and stops the per-job loops to match the schedules in force.
func (s *Scheduler) reconcile(ctx context.Context, configured map[string]time.Duration, loops map[string]*jobLoop) error {
	want, since, err := s.desired(ctx, configured)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(loops)+len(want))
	for k := range loops {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := loops[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		l, running := loops[k]
		sc, wanted := want[k]
		if running && wanted && l.sched.Every == sc.Every && l.since.Equal(since[k]) {
			continue
		}
		if running {
			l.stop()
			delete(loops, k)
			if !wanted {
				s.Log.Info("job schedule stopped", "job", l.sched.Job)
				if s.OnSchedule != nil {
					stopped := l.sched
					stopped.Enabled = false
					s.OnSchedule(stopped)
				}
			}
		}
		if !wanted {
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		l = &jobLoop{sched: sc, since: since[k], cancel: cancel, done: make(chan struct{})}
		loops[k] = l
		if running {
			s.Log.Info("job schedule changed", "job", sc.Job, "every", sc.Every.String(), "source", sc.Source)
		}
		go func(l *jobLoop) {
			defer close(l.done)
			s.loop(ctx, lctx, l.sched.Job, l.sched.Every, l.since)
		}(l)
		if s.OnSchedule != nil {
			s.OnSchedule(sc)
		}
	}
	return nil
}

// loop claims job's slots until lctx ends; runs start under ctx (a re-timing does not cancel them).
func (s *Scheduler) loop(ctx, lctx context.Context, name string, every time.Duration, since time.Time) {
	var last time.Time
	if s.ledger != nil {
		// The previous schedule (before a re-timing, or before a restart with another interval) may
		// have run a slot that began after the current slot of this one: that slot is served.
		cur := jobs.SlotOf(s.Clock.Now(), every)
		if latest, ok, err := s.ledger.LatestSlot(lctx, name); err == nil && ok && latest.After(cur) {
			last = cur
		}
	}
	for {
		slot := jobs.SlotOf(s.Clock.Now(), every)
		if slot.After(last) {
			s.runSlot(ctx, name, every, since, slot)
			last = slot
		}
		select {
		case <-lctx.Done():
			return
		case <-s.Clock.After(last.Add(every).Sub(s.Clock.Now())):
		}
	}
}

// JobHandler serves POST /jobs/<job>: the master key, or a system-key token minted for this job
// (uid "cron", urn:microsoft:appid = the service name, urn:microsoft:scope = the job). Unlike the
// original, a merely present (wrong) master key grants nothing. The job starts in the background and
// the answer is 200 with an empty body, as in the original; 409 (JSON error) when it is already
// running anywhere in the cluster; 503 with Retry-After when the database cannot be asked.
type JobHandler struct {
	Scheduler *Scheduler
	// Context is the parent of background runs (server lifetime); default context.Background().
	Context context.Context
}

func (h *JobHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) != 2 || segs[1] == "" {
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	name := segs[1]
	s := h.Scheduler
	s.init()
	caller := httpx.CallerOf(r)
	if !jobAllowed(caller, s.Engine.opt.ServiceName, name) {
		unauthorized(w, r)
		return
	}
	if r.Method != http.MethodPost {
		httpx.MethodNotAllowed(w, r, "POST")
		return
	}
	v := s.Engine.Current()
	job, ok := v.App.Job(name)
	if !ok {
		httpx.Error(w, r, http.StatusNotFound, fmt.Sprintf("Job '%s' does not exist.", name))
		return
	}
	if _, ok := v.ScriptPath("scheduler", job.Name+".js"); !ok {
		httpx.Error(w, r, http.StatusNotFound, fmt.Sprintf("Job '%s' does not exist.", name))
		return
	}
	parent := h.Context
	if parent == nil {
		parent = context.Background()
	}
	// The claim is made before answering, so concurrent calls anywhere in the cluster get one 200 and
	// 409s while that run lasts.
	switch err := s.Start(parent, job.Name); {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, ErrJobRunning):
		httpx.Error(w, r, http.StatusConflict, "The job is already running.")
	case errors.Is(err, ErrNoJob):
		httpx.Error(w, r, http.StatusNotFound, fmt.Sprintf("Job '%s' does not exist.", name))
	default:
		w.Header().Set("Retry-After", "5")
		httpx.Error(w, r, http.StatusServiceUnavailable, "The job could not be started: the database is unavailable.")
	}
}

// jobAllowed is the original's job authorization without its hole: a valid master key, or a valid
// system-key token scoped to this service and job.
func jobAllowed(c *auth.Caller, service, job string) bool {
	if c.IsAdmin() {
		return true
	}
	if c.Claims == nil || c.Claims.UID != "cron" {
		return false
	}
	raw, err := c.Claims.Raw()
	if err != nil {
		return false
	}
	appid, _ := raw["urn:microsoft:appid"].(string)
	scope, _ := raw["urn:microsoft:scope"].(string)
	return appid == service && strings.EqualFold(scope, job)
}
