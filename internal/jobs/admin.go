package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Def is a job the app declares, with its configured schedule (0: manual runs only).
type Def struct {
	Name  string
	Every time.Duration
}

// Summary is a job as the admin API and CLI list it: its schedule in force (ScheduleState, without
// the job's name), history state and last run.
type Summary struct {
	Name string `json:"name"`
	// Schedule is the interval in force ("15m0s"), empty for a job that only runs when called.
	Schedule string `json:"schedule,omitempty"`
	ScheduleState
	// Declared is false for a job that has history but is no longer in the app directory.
	Declared bool `json:"declared"`
	Running  bool `json:"running"`
	LastRun  *Run `json:"lastRun"`
}

// Summaries lists the declared jobs (with their schedules in force) and every job with history,
// sorted by name.
func (l *Ledger) Summaries(ctx context.Context, scheds []Schedule, now time.Time) ([]Summary, error) {
	latest, err := l.Latest(ctx, now)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*Summary{}
	var out []*Summary
	for _, sc := range scheds {
		s := &Summary{Name: sc.Job, Declared: true, ScheduleState: sc.State(now)}
		s.Job = ""
		if sc.Every > 0 {
			s.Schedule = sc.Every.String()
		}
		byKey[Key(sc.Job)] = s
		out = append(out, s)
	}
	for k, r := range latest {
		s, ok := byKey[k]
		if !ok {
			s = &Summary{Name: k}
			byKey[k] = s
			out = append(out, s)
		}
		r := r
		s.LastRun = &r
		s.Running = r.Outcome == Running
	}
	sort.Slice(out, func(i, j int) bool { return Key(out[i].Name) < Key(out[j].Name) })
	res := make([]Summary, len(out))
	for i, s := range out {
		res[i] = *s
	}
	return res, nil
}

// AdminHandler serves, behind the master key:
//
//	GET    /admin/jobs                    the jobs with their schedule in force and last run
//	GET    /admin/jobs/{name}/runs        the history, newest first (?limit=N&before=RFC3339)
//	GET    /admin/jobs/{name}/schedule    the schedule in force and where it comes from
//	PUT    /admin/jobs/{name}/schedule    {"every":"15m","enabled":true}: either or both; "every":null
//	                                      returns to the configured interval
//	DELETE /admin/jobs/{name}/schedule    back to the configured schedule
//
// Changes go through Schedules (validated, audited in their transaction, announced to every instance).
type AdminHandler struct {
	Ledger *Ledger
	// Schedules holds the schedules set at run time (nil: the configured ones, read-only).
	Schedules *Schedules
	// Defs lists the declared jobs (the app directory's, with the configured schedule).
	Defs func() []Def
	// Now is the clock (default time.Now).
	Now func() time.Time
}

const msgUnavailable = "The job schedules are unavailable: the database did not answer."

func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpx.SetRoute(r, "/admin/jobs")
	w.Header().Set("Cache-Control", "no-store")
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	var defs []Def
	if h.Defs != nil {
		defs = h.Defs()
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // admin, jobs, {name}, runs|schedule
	schedule := len(segs) == 4 && strings.EqualFold(segs[3], "schedule") && segs[2] != ""
	if schedule && h.Schedules != nil {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPut && r.Method != http.MethodDelete {
			httpx.MethodNotAllowed(w, r, "GET", "PUT", "DELETE")
			return
		}
	} else if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET")
		return
	}
	switch {
	case len(segs) == 2:
		scheds, err := h.effective(r.Context(), defs)
		if err != nil {
			httpx.Error(w, r, http.StatusServiceUnavailable, msgUnavailable)
			return
		}
		list, err := h.Ledger.Summaries(r.Context(), scheds, now)
		if err != nil {
			httpx.Error(w, r, http.StatusServiceUnavailable, "The job history is unavailable: the database did not answer.")
			return
		}
		httpx.JSON(w, http.StatusOK, list)
	case schedule:
		h.schedule(w, r, defs, segs[2], now)
	case len(segs) == 4 && strings.EqualFold(segs[3], "runs") && segs[2] != "":
		h.runs(w, r, defs, segs[2], now)
	default:
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
	}
}

func (h *AdminHandler) effective(ctx context.Context, defs []Def) ([]Schedule, error) {
	if h.Schedules == nil {
		return Resolve(defs, nil), nil
	}
	return h.Schedules.Effective(ctx, defs)
}

func (h *AdminHandler) runs(w http.ResponseWriter, r *http.Request, defs []Def, name string, now time.Time) {
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxRuns {
			httpx.Error(w, r, http.StatusBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(MaxRuns))
			return
		}
		limit = n
	}
	var before time.Time
	if v := q.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			httpx.Error(w, r, http.StatusBadRequest, "before must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
			return
		}
		before = t
	}
	runs, err := h.Ledger.Runs(r.Context(), name, limit, before, now)
	if err != nil {
		httpx.Error(w, r, http.StatusServiceUnavailable, "The job history is unavailable: the database did not answer.")
		return
	}
	if _, declared := findDef(defs, name); !declared && len(runs) == 0 && before.IsZero() {
		httpx.Error(w, r, http.StatusNotFound, "Job '"+name+"' does not exist.")
		return
	}
	httpx.JSON(w, http.StatusOK, runs)
}

func (h *AdminHandler) schedule(w http.ResponseWriter, r *http.Request, defs []Def, name string, now time.Time) {
	if _, ok := findDef(defs, name); !ok {
		audit.NoChange(r.Context())
		httpx.Error(w, r, http.StatusNotFound, "Job '"+clipName(name)+"' does not exist.")
		return
	}
	// The change and its audit entry commit together (Schedules); the HTTP recorder writes none.
	audit.NoChange(r.Context())
	var sc Schedule
	var err error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		sc, err = h.Schedules.Get(r.Context(), defs, name)
	case http.MethodPut:
		var body map[string]any
		if err := httpx.ReadJSON(r, &body); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		ch, perr := ParseChange(body)
		if perr != nil {
			httpx.Error(w, r, http.StatusBadRequest, Message(perr))
			return
		}
		sc, _, err = h.Schedules.Set(r.Context(), defs, name, ch, audit.EntryFor(r))
	case http.MethodDelete:
		sc, _, err = h.Schedules.Reset(r.Context(), defs, name, audit.EntryFor(r))
	}
	switch {
	case err == nil:
		httpx.JSON(w, http.StatusOK, sc.State(now))
	case errors.Is(err, ErrUnknownJob):
		httpx.Error(w, r, http.StatusNotFound, "Job '"+clipName(name)+"' does not exist.")
	case errors.Is(err, ErrInvalidSchedule):
		httpx.Error(w, r, http.StatusBadRequest, Message(err))
	default:
		w.Header().Set("Retry-After", "5")
		httpx.Error(w, r, http.StatusServiceUnavailable, msgUnavailable)
	}
}

// ParseChange reads the body of PUT /admin/jobs/{name}/schedule: "every" (an interval string, or
// null for the configured one) and "enabled" (a boolean), at least one; any other member is refused.
func ParseChange(body map[string]any) (Change, error) {
	var ch Change
	if body == nil {
		return ch, fmt.Errorf("%w: the body must be a JSON object such as {\"every\":\"15m\",\"enabled\":true}", ErrInvalidSchedule)
	}
	for k, v := range body {
		switch k {
		case "every":
			switch v := v.(type) {
			case nil:
				var zero time.Duration
				ch.Every = &zero
			case string:
				d, err := ParseEvery(v)
				if err != nil {
					return ch, err
				}
				ch.Every = &d
			default:
				return ch, fmt.Errorf("%w: \"every\" must be a string such as \"15m\", \"2h\" or \"7d\" (or null for the configured interval)", ErrInvalidSchedule)
			}
		case "enabled":
			b, ok := v.(bool)
			if !ok {
				return ch, fmt.Errorf("%w: \"enabled\" must be true or false", ErrInvalidSchedule)
			}
			ch.Enabled = &b
		default:
			return ch, fmt.Errorf("%w: unknown member %q (every, enabled)", ErrInvalidSchedule, clipName(k))
		}
	}
	return ch, ch.Validate()
}

// Message is a schedule error as a sentence for a client (without the package prefix).
func Message(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ErrInvalidSchedule.Error()+": "); i >= 0 {
		msg = msg[i+len(ErrInvalidSchedule.Error())+2:]
	}
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
