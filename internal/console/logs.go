package console

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Event is one recent request or script log line of any instance (no secret, token or query value:
// package activity records only these fields).
type Event struct {
	ID        int64         `json:"id"`
	Time      time.Time     `json:"time"`
	Instance  string        `json:"instance"`
	Kind      string        `json:"kind"` // "request" or "script"
	RequestID string        `json:"requestId"`
	Method    string        `json:"method"`
	Route     string        `json:"route"`
	Path      string        `json:"path"`
	Status    int           `json:"status"`
	Duration  time.Duration `json:"duration"`
	UserID    string        `json:"userId"`
	Level     string        `json:"level"`
	Source    string        `json:"source"` // the script's file for script events
	Message   string        `json:"message"`
}

// EventFilter selects events for the live tail. Zero fields match everything.
type EventFilter struct {
	AfterID   int64
	Status    int // an exact status, or 4/5 for every 4xx/5xx
	Route     string
	UserID    string
	RequestID string
	Source    string
	Kind      string
	Limit     int
}

// Stats are the cluster's figures over a window.
type Stats struct {
	Window       time.Duration
	Requests     int64
	PerSecond    float64
	ErrorRate    float64 // 5xx share of requests
	ClientErrors float64 // 4xx share
	P99          time.Duration
	Instances    []Instance
	Minutes      []Minute
}

// Minute is one minute of the cluster's traffic.
type Minute struct {
	Start    time.Time
	Requests int64
	Errors   int64
	P99      time.Duration
}

// Instance is an instance seen in the window.
type Instance struct {
	ID       string
	LastSeen time.Time
	Requests int64
}

// Activity reads package activity's cluster-wide events and aggregates (adapted by the wiring).
type Activity interface {
	Tail(ctx context.Context, f EventFilter) ([]Event, error)
	Stats(ctx context.Context, window time.Duration) (Stats, error)
	// Follower starts a live tail after the event id after (0: after the newest event).
	Follower(f EventFilter, after int64) Follower
}

// event is what the templates show.
type event = Event

type logsData struct {
	Enabled bool
	Filter  EventFilter
	Events  []Event
	Stats   Stats
	Last    int64
	Bars    []bar
}

type bar struct {
	Label  string
	Height int // percentage of the busiest minute, in steps of 5 (CSS classes h0…h100)
	Title  string
}

func readEventFilter(q map[string][]string) EventFilter {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return clip(strings.TrimSpace(v[0]))
		}
		return ""
	}
	f := EventFilter{Route: get("route"), UserID: get("user"), RequestID: get("request"), Kind: get("kind"), Source: get("source"), Limit: 200}
	if f.Kind != "request" && f.Kind != "script" {
		f.Kind = ""
	}
	if s := get("status"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSuffix(strings.ToLower(s), "xx")); err == nil {
			f.Status = n
		}
	}
	if n, err := strconv.ParseInt(get("after"), 10, 64); err == nil {
		f.AfterID = n
	}
	return f
}

// logs is the live tail (filtered; the script follows /logs/stream, Server-Sent Events, or polls
// /logs/tail for newer events where EventSource is missing) and the health figures of the last hour.
func (c *Console) logs(w http.ResponseWriter, r *http.Request, rest []string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.notFound(w, r)
		return
	}
	if len(rest) == 1 && rest[0] == "stream" {
		c.stream(w, r)
		return
	}
	d := logsData{Enabled: c.o.Activity != nil, Filter: readEventFilter(r.URL.Query())}
	if c.o.Activity == nil {
		c.render(w, r, http.StatusOK, "logs", view{Title: "Logs and health", Nav: "logs", Data: d})
		return
	}
	ctx := r.Context()
	events, err := c.o.Activity.Tail(ctx, d.Filter)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	if len(rest) == 1 && rest[0] == "tail" {
		// JSON for the live tail: the script renders it with textContent (never as HTML).
		w.Header().Set("Content-Type", "application/json")
		if events == nil {
			events = []Event{}
		}
		_ = json.NewEncoder(w).Encode(events)
		return
	}
	if len(rest) > 0 && rest[0] != "" {
		c.notFound(w, r)
		return
	}
	d.Events = events
	for _, e := range events {
		d.Last = max(d.Last, e.ID)
	}
	if d.Stats, err = c.o.Activity.Stats(ctx, time.Hour); err != nil {
		c.unavailable(w, r, err)
		return
	}
	var peak int64
	for _, m := range d.Stats.Minutes {
		peak = max(peak, m.Requests)
	}
	for _, m := range d.Stats.Minutes {
		h := 0
		if peak > 0 {
			h = int(m.Requests*20/peak) * 5
		}
		d.Bars = append(d.Bars, bar{Label: m.Start.UTC().Format("15:04"), Height: h,
			Title: m.Start.UTC().Format("15:04") + ": " + strconv.FormatInt(m.Requests, 10) + " requests, " + strconv.FormatInt(m.Errors, 10) + " errors, p99 " + m.P99.String()})
	}
	c.render(w, r, http.StatusOK, "logs", view{Title: "Logs and health", Nav: "logs", Data: d})
}

// scriptEvents are the recent console output and failures of one script.
func (c *Console) scriptEvents(r *http.Request, rel string) []Event {
	if c.o.Activity == nil {
		return nil
	}
	ev, err := c.o.Activity.Tail(r.Context(), EventFilter{Kind: "script", Source: rel, Limit: 50})
	if err != nil {
		c.o.Log.Warn("console: reading script events failed", "err", err)
		return nil
	}
	return ev
}
