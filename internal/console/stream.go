package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/notify"
)

// Follower reads the events a live tail has not shown yet, of every instance, each once.
type Follower interface {
	// Next returns the new events the tail's filter selects, oldest first; more is true when it
	// stopped at its bound (call again at once).
	Next(ctx context.Context) (events []Event, more bool, err error)
}

// Stream bounds and timings (Options.Stream; zero fields take these defaults).
type StreamOptions struct {
	// MaxTotal and MaxPerSession bound the open live-tail streams of this instance: beyond them a
	// new stream is refused with 503 and 429.
	MaxTotal      int
	MaxPerSession int
	// Poll is the fallback read interval when no new-events hint arrives (default 5 s).
	Poll time.Duration
	// Heartbeat is how often an idle stream sends a comment so proxies keep it open (default 15 s).
	Heartbeat time.Duration
	// SessionCheck is how often the stream re-checks its session (signed out, revoked, expired,
	// administrator disabled) and ends when it is gone (default 30 s).
	SessionCheck time.Duration
	// WriteTimeout bounds one write to a slow client (default 10 s).
	WriteTimeout time.Duration
	// MinInterval is the shortest time between two reads of a stream: hints from many instances
	// arriving close together make one read (default 250 ms).
	MinInterval time.Duration
}

func (o *StreamOptions) defaults() {
	if o.MaxTotal <= 0 {
		o.MaxTotal = 64
	}
	if o.MaxPerSession <= 0 {
		o.MaxPerSession = 4
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.SessionCheck <= 0 {
		o.SessionCheck = 30 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MinInterval <= 0 {
		o.MinInterval = 250 * time.Millisecond
	}
}

// streams counts this instance's open live-tail streams.
type streams struct {
	mu        sync.Mutex
	total     int
	bySession map[string]int
}

// acquire takes a stream slot for a session: 0 and a release function, or the refusal's status.
func (s *streams) acquire(session string, o StreamOptions) (int, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySession[session] >= o.MaxPerSession {
		return http.StatusTooManyRequests, nil
	}
	if s.total >= o.MaxTotal {
		return http.StatusServiceUnavailable, nil
	}
	if s.bySession == nil {
		s.bySession = map[string]int{}
	}
	s.total++
	s.bySession[session]++
	var once sync.Once
	return 0, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.bySession[session]--; s.bySession[session] <= 0 {
				delete(s.bySession, session)
			}
		})
	}
}

// streamPath reports whether r asks for the live-tail stream (GET {Path}/logs/stream).
func (c *Console) streamPath(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(strings.TrimSuffix(r.URL.Path, "/"), c.o.Path+"/logs/stream")
}

// Streams implements server.Streamer: the live tail is a stream (the timeout middleware must neither
// buffer nor cut it).
func (c *Console) Streams(r *http.Request) bool { return c.streamPath(r) }

// stream serves the live tail as Server-Sent Events: the events of every instance that the filter
// selects, read from the database when an instance reports new events (notify.Activity) and every
// Stream.Poll otherwise, with the event id for the browser's Last-Event-ID on reconnection. It ends
// with the request (the client left, the server shuts down) and when the session ends.
func (c *Console) stream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if c.o.Activity == nil {
		http.Error(w, "Activity recording is not enabled on this server.", http.StatusNotFound)
		return
	}
	s := sessionOf(r.Context())
	o := c.o.Stream
	status, release := c.streams.acquire(s.idHash, o)
	if status != 0 {
		w.Header().Set("Retry-After", "10")
		msg := "Too many live tails are open in this session."
		if status == http.StatusServiceUnavailable {
			msg = "Too many live tails are open on this server."
		}
		http.Error(w, msg, status)
		return
	}
	defer release()
	f := readEventFilter(r.URL.Query())
	after := f.AfterID
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			after = n
		}
	}
	fl := c.o.Activity.Follower(f, after)
	var hints <-chan string
	if c.o.Notifier != nil {
		ch, stop := c.o.Notifier.Subscribe(notify.Activity)
		defer stop()
		hints = ch
	}

	ctx := r.Context()
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // the server's read timeout would end the stream
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(o.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	var buf bytes.Buffer
	var lastRead time.Time
	send := func() bool {
		lastRead = time.Now()
		for {
			events, more, err := fl.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					c.o.Log.Warn("console: reading the live tail failed; retrying at the next poll", "err", err)
				}
				return true
			}
			buf.Reset()
			for _, e := range events {
				b, err := json.Marshal(e)
				if err != nil {
					continue
				}
				buf.WriteString("id: ")
				buf.WriteString(strconv.FormatInt(e.ID, 10))
				buf.WriteString("\ndata: ")
				buf.Write(b) // JSON has no raw newline
				buf.WriteString("\n\n")
			}
			if buf.Len() > 0 && !write(buf.Bytes()) {
				return false
			}
			if !more {
				return true
			}
		}
	}
	if !write([]byte("retry: 3000\n\n")) || !send() {
		return
	}
	poll := time.NewTicker(o.Poll)
	defer poll.Stop()
	beat := time.NewTicker(o.Heartbeat)
	defer beat.Stop()
	check := time.NewTicker(o.SessionCheck)
	defer check.Stop()
	var due <-chan time.Time // a read postponed to MinInterval after the last one
	for {
		select {
		case <-due:
			due = nil
			if !send() {
				return
			}
		case <-ctx.Done():
			return
		case <-c.o.Done:
			write([]byte("event: end\ndata: shutdown\n\n"))
			return
		case _, ok := <-hints:
			if !ok {
				hints = nil
				continue
			}
			if wait := o.MinInterval - time.Since(lastRead); wait > 0 {
				if due == nil {
					due = time.After(wait)
				}
				continue
			}
			if !send() {
				return
			}
		case <-poll.C:
			if !send() {
				return
			}
		case <-beat.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case <-check.C:
			if !c.sessionLive(ctx, s) {
				write([]byte("event: end\ndata: session\n\n"))
				return
			}
		}
	}
}

// sessionLive re-checks a stream's session without extending it (an open tail is not activity):
// false when it was signed out or revoked, timed out, or its administrator is gone or disabled. A
// database error keeps the stream (the next check decides).
func (c *Console) sessionLive(ctx context.Context, s *sessionCtx) bool {
	sess, err := c.o.Store.Session(ctx, s.idHash)
	if errors.Is(err, ErrNotFound) {
		return false
	}
	if err != nil {
		return true
	}
	now := c.now()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.SeenAt) >= c.o.IdleTimeout {
		return false
	}
	a, err := c.o.Store.AdminByID(ctx, sess.AdminID)
	if errors.Is(err, ErrNotFound) || (err == nil && a.Disabled) {
		return false
	}
	return true
}
