package console

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// sse is an open live-tail stream.
type sse struct {
	t      testing.TB
	res    *http.Response
	cancel context.CancelFunc
	lines  chan string
}

// openStream opens the live tail with the browser's session; status is the answer's status.
func (b *browser) openStream(query string, hdr map[string]string) (*sse, int) {
	b.h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.h.ts.URL+"/console/logs/stream?"+query, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := b.hc.Do(req)
	if err != nil {
		cancel()
		b.h.t.Fatal(err)
	}
	s := &sse{t: b.h.t, res: res, cancel: cancel, lines: make(chan string, 1000)}
	b.h.t.Cleanup(s.close)
	if res.StatusCode != http.StatusOK {
		s.close()
		return nil, res.StatusCode
	}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	return s, res.StatusCode
}

func (s *sse) close() { s.cancel(); s.res.Body.Close() }

// next returns the next message's fields (id, event, data), skipping comments, within d; ok is false
// when the stream ended or d passed.
func (s *sse) next(d time.Duration) (msg map[string]string, ok bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	msg = map[string]string{}
	for {
		select {
		case l, open := <-s.lines:
			if !open {
				return msg, false
			}
			if l == "" {
				if len(msg) > 0 {
					return msg, true
				}
				continue
			}
			if strings.HasPrefix(l, ":") {
				continue
			}
			k, v, _ := strings.Cut(l, ": ")
			msg[k] = v
		case <-timer.C:
			return msg, false
		}
	}
}

// event waits for the next data message and decodes it.
func (s *sse) event(d time.Duration) (Event, bool) {
	s.t.Helper()
	for {
		m, ok := s.next(d)
		if !ok {
			return Event{}, false
		}
		if m["data"] == "" || m["event"] != "" {
			continue
		}
		var e Event
		if err := json.Unmarshal([]byte(m["data"]), &e); err != nil {
			s.t.Fatalf("event data %q: %v", m["data"], err)
		}
		if m["id"] == "" {
			s.t.Fatalf("event without id: %v", m)
		}
		return e, true
	}
}

// TestLiveTailAcrossInstances: an event recorded by another instance (its own recorder and pool on
// the same database) reaches an open stream within a second, woken by the new-events hint (the
// fallback poll is set to a minute); the filter applies; no query value reaches the stream; a
// reconnection with Last-Event-ID resumes after the last event seen.
func TestLiveTailAcrossInstances(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var dsn string
			var n1, n2 notify.Notifier
			if backend == "sqlite" {
				dsn = storetest.SQLiteURL(t)
				local := notify.NewLocal() // one node: one process
				n1, n2 = local, local
			} else {
				dsn = storetest.PostgresURL(t)
			}
			db1, db2 := storetest.Open(t, dsn), storetest.Open(t, dsn)
			if backend == "postgres" {
				for i, db := range []*store.DB{db1, db2} {
					p, err := notify.NewPostgres(ctx, db.DB, dsn, nil)
					if err != nil {
						t.Fatal(err)
					}
					go p.Run(ctx)
					if i == 0 {
						n1 = p
					} else {
						n2 = p
					}
				}
			}
			h := newHarness(t, db1)
			h.c.o.Activity, h.c.o.Notifier = NewActivity(activity.NewStore(db1)), n1
			h.c.o.Stream.Poll = time.Minute
			other := activity.NewRecorder(activity.NewStore(db2), activity.Options{Instance: "instance-2", Notify: n2, FlushInterval: 50 * time.Millisecond, Log: h.c.o.Log})
			done := make(chan struct{})
			go func() { defer close(done); other.Run(ctx) }()
			defer func() { cancel(); <-done }()

			b := h.signedIn()
			s, code := b.openStream("status=5xx", nil)
			if code != http.StatusOK || s.res.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
				t.Fatalf("stream: %d", code)
			}
			if m, ok := s.next(2 * time.Second); !ok || m["retry"] != "3000" {
				t.Fatalf("stream preamble: %v", m)
			}
			if backend == "postgres" {
				waitListening(t, n1.(*notify.Postgres))
			}
			for i, path := range []string{"/api/ok", "/api/boom?access_token=SECRETQUERY", "/api/boom2"} {
				status := 500
				if i == 0 {
					status = 200 // filtered out
				}
				start := time.Now()
				other.Request(activity.Request{RequestID: "r" + strconv.Itoa(i), Method: "POST", Route: "/api/{name}", Path: path, Status: status, Duration: time.Millisecond, UserID: "custom:u1"})
				if status != 500 {
					continue
				}
				e, ok := s.event(time.Second)
				if !ok {
					t.Fatalf("%s: no event within a second", path)
				}
				if e.Instance != "instance-2" || e.Status != 500 || strings.Contains(e.Path, "?") || e.UserID != "custom:u1" {
					t.Fatalf("event: %+v", e)
				}
				if i == 1 && e.Path != "/api/boom" {
					t.Fatalf("first 5xx: %+v", e)
				}
				if i == 2 && e.Path != "/api/boom2" {
					t.Fatalf("second 5xx (the 200 must be filtered out): %+v", e)
				}
				t.Logf("%s: event after %v", backend, time.Since(start).Round(time.Millisecond))
			}
			// Reconnect with Last-Event-ID before the last event: it comes again, nothing else.
			list, _ := h.c.o.Activity.Tail(ctx, EventFilter{Status: 5, Limit: 10})
			if len(list) != 2 {
				t.Fatalf("tail: %+v", list)
			}
			s.close()
			s2, code := b.openStream("status=5xx", map[string]string{"Last-Event-ID": strconv.FormatInt(list[1].ID, 10)})
			if code != http.StatusOK {
				t.Fatalf("reconnect: %d", code)
			}
			if e, ok := s2.event(2 * time.Second); !ok || e.ID != list[0].ID {
				t.Fatalf("after reconnection: %+v (want id %d)", e, list[0].ID)
			}
			if strings.Contains(strings.Join(drain(s2), "\n"), "SECRETQUERY") {
				t.Fatal("a query value reached the stream")
			}
		})
	}
}

func waitListening(t *testing.T, p *notify.Postgres) {
	deadline := time.Now().Add(5 * time.Second)
	for !p.Connected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The stream's subscription makes the listener LISTEN to the channel: give it a moment.
	time.Sleep(200 * time.Millisecond)
}

func drain(s *sse) []string {
	var out []string
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return out
			}
			out = append(out, l)
		case <-time.After(200 * time.Millisecond):
			return out
		}
	}
}

// TestLiveTailLimits: at most MaxPerSession streams per session (429 beyond) and MaxTotal on the
// instance (503 beyond); a closed stream frees its slot.
func TestLiveTailLimits(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	h.c.o.Stream.MaxPerSession, h.c.o.Stream.MaxTotal = 2, 3
	b1 := h.signedIn()
	b2 := h.browser()
	b2.get("/console/signin")
	if p := b2.post("/console/signin", url.Values{"email": {adminEmail}, "password": {adminPass}}); p.status != http.StatusSeeOther {
		t.Fatalf("second session: %d", p.status)
	}
	s1, _ := b1.openStream("", nil)
	if _, code := b1.openStream("", nil); code != http.StatusOK {
		t.Fatalf("second stream: %d", code)
	}
	if _, code := b1.openStream("", nil); code != http.StatusTooManyRequests {
		t.Fatalf("third stream of a session: %d", code)
	}
	if _, code := b2.openStream("", nil); code != http.StatusOK {
		t.Fatalf("another session's stream: %d", code)
	}
	if _, code := b2.openStream("", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("beyond the instance's bound: %d", code)
	}
	s1.close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, code := b2.openStream("", nil); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed stream's slot was not freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLiveTailEnds: a stream ends when its session is signed out (re-checked every SessionCheck)
// and when the server shuts down; without a session the answer is 401, not a redirect.
func TestLiveTailEnds(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	h.c.o.Stream.SessionCheck = 100 * time.Millisecond
	stop := make(chan struct{})
	h.c.o.Done = stop
	if _, code := h.browser().openStream("", nil); code != http.StatusUnauthorized {
		t.Fatalf("without a session: %d", code)
	}
	b := h.signedIn()
	s, _ := b.openStream("", nil)
	b2 := h.browser()
	b2.get("/console/signin")
	b2.post("/console/signin", url.Values{"email": {adminEmail}, "password": {adminPass}})
	s2, _ := b2.openStream("", nil)
	b.get("/console/account")
	if p := b.post("/console/signout", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	if ended(s, "session", 2*time.Second) != true {
		t.Fatal("the stream outlived its session")
	}
	// The other session's stream is alive until the server shuts down.
	if m, ok := s2.next(300 * time.Millisecond); ok && m["event"] == "end" {
		t.Fatalf("another session's stream ended: %v", m)
	}
	close(stop)
	if !ended(s2, "shutdown", 2*time.Second) {
		t.Fatal("the stream outlived the server")
	}
}

// ended reports whether the stream sends its end event with the reason and closes within d.
func ended(s *sse, reason string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	sawEnd := false
	for time.Now().Before(deadline) {
		m, ok := s.next(time.Until(deadline))
		if m["event"] == "end" && m["data"] == reason {
			sawEnd = true
		}
		if !ok {
			return sawEnd
		}
	}
	return false
}
