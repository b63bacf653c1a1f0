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
	"github.com/gatehouse/gatehouse/internal/store"
)

// Errors of job runs.
var (
	ErrNoJob      = errors.New("script: no such job")
	ErrJobRunning = errors.New("script: the job is already running")
)

// Scheduler runs scheduler/<job>.js (spec §5.4): on POST /jobs/<job> and on an in-process schedule.
// A job never runs twice at once on one instance; with DB set, a lease row makes sure only one
// instance sharing the database runs it.
type Scheduler struct {
	Engine *Engine
	// DB holds the leases; nil runs without (one instance).
	DB *store.DB
	// Holder identifies this instance in lease rows (default: random).
	Holder string
	Log    *slog.Logger
	// Now is the clock for leases (default time.Now).
	Now func() time.Time
	// OnFinish, when set, is called after every run (tests, metrics).
	OnFinish func(job string, err error)

	mu      sync.Mutex
	running map[string]bool
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
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Log == nil {
		s.Log = s.Engine.opt.Log
	}
}

// Wait blocks until background runs started by the HTTP handler or the schedule have finished.
func (s *Scheduler) Wait() { s.bg.Wait() }

// Run runs a job now and waits for it: ErrNoJob, ErrJobRunning (here or, with a lease, on another
// instance), or the job's own failure.
func (s *Scheduler) Run(ctx context.Context, name string) error {
	s.init()
	v := s.Engine.Current()
	job, ok := v.App.Job(name)
	if !ok {
		return ErrNoJob
	}
	path, ok := v.ScriptPath("scheduler", job.Name+".js")
	if !ok {
		return ErrNoJob
	}
	key := strings.ToLower(job.Name)
	s.mu.Lock()
	if s.running[key] {
		s.mu.Unlock()
		return ErrJobRunning
	}
	s.running[key] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, key)
		s.mu.Unlock()
	}()
	if s.DB != nil {
		ok, err := s.acquire(ctx, key)
		if err != nil {
			return err
		}
		if !ok {
			return ErrJobRunning
		}
		defer s.release(key)
	}
	err := s.Engine.runFor(ctx, s.Engine.opt.JobTimeout, v, v.rel(path), func(m *vm) error {
		fns, err := m.runScript(path)
		if err != nil {
			return err
		}
		f, ok := goja.AssertFunction(fns.Get("job"))
		if !ok {
			return fmt.Errorf("%s does not define function %s", m.inv.script, job.Name)
		}
		_, err = f(goja.Undefined())
		return err
	}, func() bool { return false })
	if err != nil {
		logFailure(s.Log, v.rel(path), nil, err, "scheduled job")
	} else {
		s.Log.Info("job finished", "job", job.Name)
	}
	if s.OnFinish != nil {
		s.OnFinish(job.Name, err)
	}
	return err
}

// acquire takes the job's lease (or renews our own); false when another instance holds it.
func (s *Scheduler) acquire(ctx context.Context, job string) (bool, error) {
	now := s.Now().UnixMilli()
	exp := s.Now().Add(s.Engine.opt.JobTimeout + time.Minute).UnixMilli()
	res, err := s.DB.ExecContext(ctx, s.DB.Rebind(`INSERT INTO gatehouse_job_leases (job, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE gatehouse_job_leases.expires_at < ? OR gatehouse_job_leases.holder = ?`), job, s.Holder, exp, now, s.Holder)
	if err != nil {
		return false, fmt.Errorf("script: job lease: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *Scheduler) release(job string) {
	_, err := s.DB.ExecContext(context.Background(), s.DB.Rebind(`DELETE FROM gatehouse_job_leases WHERE job = ? AND holder = ?`), job, s.Holder)
	if err != nil {
		s.Log.Warn("releasing a job lease failed; it expires by itself", "job", job, "err", err)
	}
}

// Schedule runs each job every interval until ctx ends (a run still in progress, here or on another
// instance, skips that tick).
func (s *Scheduler) Schedule(ctx context.Context, every map[string]time.Duration) {
	s.init()
	names := make([]string, 0, len(every))
	for n := range every {
		names = append(names, n)
	}
	sort.Strings(names)
	var wg sync.WaitGroup
	for _, n := range names {
		d := every[n]
		if d <= 0 {
			continue
		}
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				err := s.Run(ctx, name)
				if errors.Is(err, ErrJobRunning) {
					s.Log.Info("scheduled job skipped: already running", "job", name)
				} else if errors.Is(err, ErrNoJob) {
					s.Log.Warn("scheduled job does not exist", "job", name)
				}
			}
		}(n)
	}
	wg.Wait()
}

// JobHandler serves POST /jobs/<job>: the master key, or a system-key token minted for this job
// (uid "cron", urn:microsoft:appid = the service name, urn:microsoft:scope = the job). Unlike the
// original, a merely present (wrong) master key grants nothing. The job starts in the background and
// the answer is 200 with an empty body, as in the original; 409 when it is already running.
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
	s.mu.Lock()
	busy := s.running[strings.ToLower(job.Name)]
	s.mu.Unlock()
	if busy {
		httpx.Error(w, r, http.StatusConflict, "The job is already running.")
		return
	}
	parent := h.Context
	if parent == nil {
		parent = context.Background()
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.Run(parent, job.Name) //nolint:errcheck // logged by Run
	}()
	w.WriteHeader(http.StatusOK)
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
