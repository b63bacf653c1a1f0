// Package activity is what the console's Logs & health page and operators' /admin/activity show,
// cluster-wide: recent request events and script events (console output and failures) kept in the
// database in a bounded ring, and per-minute, per-instance request counts with latency histograms
// from which requests per second, error rates and p99 over the last hour are computed.
//
// Recording is off the request path: Recorder.Request appends to an in-memory batch under a mutex
// (no I/O, no allocation in the steady state) and a background loop writes the batch every second
// in one transaction. When the database is down the batch is bounded (MaxPending): further events
// are dropped and counted, never queued without limit.
//
// Nothing secret is kept: the path without its query string, the route pattern, status, duration,
// size, the user id and request id; no header value, no body, no token. Script lines are the
// scripts' own output, cut to MaxMessage bytes.
package activity

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/notify"
)

// Kind of an event.
type Kind string

// Kinds.
const (
	KindRequest Kind = "request"
	KindScript  Kind = "script"
)

// Bounds on stored text.
const (
	MaxPath    = 512
	MaxMessage = 2048
	maxShort   = 128
)

// Event is one request or script event.
type Event struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Instance  string    `json:"instance"`
	Kind      Kind      `json:"kind"`
	RequestID string    `json:"requestId,omitempty"`
	// Request events.
	Method   string        `json:"method,omitempty"`
	Route    string        `json:"route,omitempty"`
	Path     string        `json:"path,omitempty"` // never the query string
	Status   int           `json:"status,omitempty"`
	Duration time.Duration `json:"durationNs,omitempty"`
	UserID   string        `json:"userId,omitempty"`
	Bytes    int64         `json:"bytes,omitempty"`
	// Script events: level (debug, info, warn, error), the script ("table/todoitem.insert",
	// "api/hello", "scheduler/cleanup") and the line.
	Level   string `json:"level,omitempty"`
	Source  string `json:"source,omitempty"`
	Message string `json:"message,omitempty"`
}

// Request is what the server reports for a finished request (Recorder.Request).
type Request struct {
	Time      time.Time // when it finished
	RequestID string
	Method    string
	Route     string
	Path      string // the URL path; anything after '?' is dropped
	Status    int
	Duration  time.Duration
	UserID    string
	Bytes     int64
}

// Options tune a Recorder.
type Options struct {
	// Instance names this server in events and statistics (the key ring agent's instance id when
	// there is one).
	Instance string
	// FlushInterval is how often the batch is written (default 1 s).
	FlushInterval time.Duration
	// MaxPending bounds the events waiting for a flush (default 10,000); more are dropped.
	MaxPending int
	// Window and MaxEvents bound the ring: events older than Window (default 1 h) or beyond the newest
	// MaxEvents (default 10,000) are pruned, every PruneInterval (default 1 min).
	Window        time.Duration
	MaxEvents     int
	PruneInterval time.Duration
	// MinuteRetention is how long per-minute statistics are kept (default 24 h).
	MinuteRetention time.Duration
	// SkipRoutes are routes counted in the statistics but kept out of the event ring (probes, and the
	// activity endpoints themselves, which a live tail polls).
	SkipRoutes []string
	// Notify, when set, receives a hint on notify.Activity after every flush that wrote events (the
	// payload is the highest event id): live tails on every instance wake and read the new events.
	Notify notify.Notifier
	Log    *slog.Logger
	Now    func() time.Time
}

// DefaultSkipRoutes are the routes Options.SkipRoutes defaults to.
var DefaultSkipRoutes = []string{"/healthz", "/readyz", "/metrics", "/admin/activity"}

func (o *Options) defaults() {
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 10000
	}
	if o.Window <= 0 {
		o.Window = time.Hour
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 10000
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = time.Minute
	}
	if o.MinuteRetention <= 0 {
		o.MinuteRetention = 24 * time.Hour
	}
	if o.MinuteRetention < o.Window {
		o.MinuteRetention = o.Window
	}
	if o.SkipRoutes == nil {
		o.SkipRoutes = DefaultSkipRoutes
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// minute accumulates one minute of this instance's requests.
type minute struct {
	requests, err4, err5 int64
	buckets              [maxBucket + 1]int64
	dirty                bool
}

// Recorder buffers this instance's events and statistics and writes them to the Store.
type Recorder struct {
	st   *Store
	opt  Options
	skip map[string]bool

	mu      sync.Mutex
	pending []Event
	spare   []Event
	minutes map[int64]*minute // by minute start, Unix ms
	dropped int64
	lastLog time.Time
}

// NewRecorder returns a recorder writing to st; run it with Run.
func NewRecorder(st *Store, o Options) *Recorder {
	o.defaults()
	r := &Recorder{st: st, opt: o, skip: map[string]bool{}, minutes: map[int64]*minute{}}
	for _, s := range o.SkipRoutes {
		r.skip[s] = true
	}
	r.pending = make([]Event, 0, 256)
	return r
}

// Instance is the recorder's instance id.
func (r *Recorder) Instance() string { return r.opt.Instance }

// Request records a finished request. It does no I/O and, once the batch has grown to its working
// size, no allocation.
func (r *Recorder) Request(q Request) {
	if q.Time.IsZero() {
		q.Time = r.opt.Now()
	}
	m := q.Time.UnixMilli() / 60000 * 60000
	r.mu.Lock()
	mn := r.minutes[m]
	if mn == nil {
		mn = &minute{}
		r.minutes[m] = mn
	}
	mn.requests++
	switch {
	case q.Status >= 500:
		mn.err5++
	case q.Status >= 400:
		mn.err4++
	}
	mn.buckets[bucketOf(q.Duration)]++
	mn.dirty = true
	if !r.skip[q.Route] {
		r.add(Event{Time: q.Time, Kind: KindRequest, RequestID: q.RequestID, Method: q.Method, Route: q.Route, Path: q.Path,
			Status: q.Status, Duration: q.Duration, UserID: q.UserID, Bytes: q.Bytes})
	}
	r.mu.Unlock()
}

// Script records a script's console line or failure.
func (r *Recorder) Script(t time.Time, level, source, requestID, message string) {
	if t.IsZero() {
		t = r.opt.Now()
	}
	r.mu.Lock()
	r.add(Event{Time: t, Kind: KindScript, RequestID: requestID, Level: level, Source: source, Message: message})
	r.mu.Unlock()
}

// add appends under r.mu.
func (r *Recorder) add(e Event) {
	if len(r.pending) >= r.opt.MaxPending {
		r.dropped++
		return
	}
	r.pending = append(r.pending, e)
}

// Run flushes every FlushInterval and prunes every PruneInterval until ctx ends, then flushes once
// more (with a short deadline of its own).
func (r *Recorder) Run(ctx context.Context) {
	flush := time.NewTicker(r.opt.FlushInterval)
	defer flush.Stop()
	prune := time.NewTicker(r.opt.PruneInterval)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.opt.Log.Warn("activity: final flush failed", "err", err)
			}
			cancel()
			return
		case <-flush.C:
			if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
				r.logThrottled("activity: writing events failed; they are kept in memory up to the pending limit", err)
			}
		case <-prune.C:
			if err := r.st.Prune(ctx, r.opt.Now().Add(-r.opt.Window), r.opt.MaxEvents, r.opt.Now().Add(-r.opt.MinuteRetention)); err != nil && ctx.Err() == nil {
				r.logThrottled("activity: pruning failed", err)
			}
		}
	}
}

func (r *Recorder) logThrottled(msg string, err error) {
	now := r.opt.Now()
	if now.Sub(r.lastLog) < time.Minute {
		return
	}
	r.lastLog = now
	r.opt.Log.Warn(msg, "err", err)
}

// Flush writes the pending events and the changed minutes (in transactions of at most flushTx
// events, the minutes in the last). On failure the events not yet stored and the minutes stay
// pending (bounded by MaxPending) and are retried at the next flush.
func (r *Recorder) Flush(ctx context.Context) error {
	now := r.opt.Now()
	cur := now.UnixMilli() / 60000 * 60000
	r.mu.Lock()
	events := r.pending
	r.pending = r.spare[:0]
	dropped := r.dropped
	r.dropped = 0
	var mins []MinuteRow
	for m, mn := range r.minutes {
		if mn.dirty {
			row := MinuteRow{Minute: m, Instance: r.opt.Instance, Requests: mn.requests, Errors4xx: mn.err4, Errors5xx: mn.err5, Latency: Histogram{}}
			for b, n := range mn.buckets {
				if n > 0 {
					row.Latency[b] = n
				}
			}
			mins = append(mins, row)
			mn.dirty = false
		}
	}
	r.mu.Unlock()

	for i := range events {
		e := &events[i]
		e.Instance = r.opt.Instance
		e.Path = clip(stripQuery(e.Path), MaxPath)
		e.Message = clip(e.Message, MaxMessage)
		e.Source, e.Route, e.Method = clip(e.Source, MaxPath), clip(e.Route, maxShort), clip(e.Method, maxShort)
		e.UserID, e.RequestID, e.Level = clip(e.UserID, MaxPath), clip(e.RequestID, maxShort), clip(e.Level, maxShort)
	}
	written, last, err := r.st.write(ctx, events, mins)
	if written > 0 && r.opt.Notify != nil {
		r.publish(ctx, last) // outside r.mu: Request never waits for the database
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		// Put the events not stored back in front (bounded), and mark the minutes dirty again.
		keep := events[written:]
		if room := r.opt.MaxPending - len(r.pending); len(keep) > room {
			if room < 0 {
				room = 0
			}
			r.dropped += int64(len(keep) - room)
			keep = keep[len(keep)-room:]
		}
		r.pending = append(keep, r.pending...)
		r.dropped += dropped
		for _, row := range mins {
			if mn := r.minutes[row.Minute]; mn != nil {
				mn.dirty = true
			}
		}
		return err
	}
	if dropped > 0 {
		r.opt.Log.Warn("activity: events dropped (the database was slow or down and the pending batch was full)", "dropped", dropped)
	}
	r.spare = events[:0]
	for m, mn := range r.minutes {
		if m < cur-60000 && !mn.dirty {
			delete(r.minutes, m)
		}
	}
	return nil
}

// publish sends the new-events hint (on PostgreSQL one pg_notify on the pool, bounded to 2 s). A lost
// hint delays live tails until their next poll.
func (r *Recorder) publish(ctx context.Context, last int64) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := r.opt.Notify.Publish(pctx, notify.Activity, strconv.FormatInt(last, 10)); err != nil {
		r.logThrottled("activity: publishing the new-events hint failed; live tails fall back to polling", err)
	}
}

// stripQuery drops anything from the first '?' (a raw request URI given by mistake).
func stripQuery(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}

// clip makes s valid UTF-8 and cuts it to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
