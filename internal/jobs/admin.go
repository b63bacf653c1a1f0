package jobs

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Def is a job the app declares, with its schedule (0: manual runs only).
type Def struct {
	Name  string
	Every time.Duration
}

// Summary is a job as the admin API and CLI list it.
type Summary struct {
	Name string `json:"name"`
	// Schedule is the interval ("15m0s"), empty for a job that only runs when called.
	Schedule string `json:"schedule,omitempty"`
	// Declared is false for a job that has history but is no longer in the app directory.
	Declared bool `json:"declared"`
	Running  bool `json:"running"`
	LastRun  *Run `json:"lastRun"`
}

// Summaries lists the declared jobs and every job with history, sorted by name.
func (l *Ledger) Summaries(ctx context.Context, defs []Def, now time.Time) ([]Summary, error) {
	latest, err := l.Latest(ctx, now)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*Summary{}
	var out []*Summary
	for _, d := range defs {
		s := &Summary{Name: d.Name, Declared: true}
		if d.Every > 0 {
			s.Schedule = d.Every.String()
		}
		byKey[Key(d.Name)] = s
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

// AdminHandler serves GET /admin/jobs (the jobs with their schedule and last run) and
// GET /admin/jobs/{name}/runs?limit=N&before=RFC3339 (the history, newest first). Mount it behind the
// master key.
type AdminHandler struct {
	Ledger *Ledger
	// Defs lists the declared jobs (the app directory's, with the configured schedule).
	Defs func() []Def
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET")
		return
	}
	now := time.Now()
	if h.Now != nil {
		now = h.Now()
	}
	var defs []Def
	if h.Defs != nil {
		defs = h.Defs()
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // admin, jobs, {name}, runs
	switch {
	case len(segs) == 2:
		list, err := h.Ledger.Summaries(r.Context(), defs, now)
		if err != nil {
			httpx.Error(w, r, http.StatusServiceUnavailable, "The job history is unavailable: the database did not answer.")
			return
		}
		httpx.JSON(w, http.StatusOK, list)
	case len(segs) == 4 && strings.EqualFold(segs[3], "runs") && segs[2] != "":
		name := segs[2]
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
		declared := false
		for _, d := range defs {
			declared = declared || Key(d.Name) == Key(name)
		}
		if !declared && len(runs) == 0 && before.IsZero() {
			httpx.Error(w, r, http.StatusNotFound, "Job '"+name+"' does not exist.")
			return
		}
		httpx.JSON(w, http.StatusOK, runs)
	default:
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
	}
}
