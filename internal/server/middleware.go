package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/outage"
	"github.com/gatehouse/gatehouse/internal/token"
)

// statusWriter records the status and applies the default headers of every Zumo response
// (Content-Type: application/json and Cache-Control: no-cache unless the handler set them).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	consts *constHeaders
}

// constHeaders are header values built once per server and shared by every response, under their
// canonical keys: net/http never modifies a value slice (Set replaces it; Add appends to a full
// slice, which copies it), so sharing them saves allocating and canonicalising them each time.
type constHeaders struct {
	json, noCache []string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	h := w.Header()
	if len(h["Content-Type"]) == 0 && code != http.StatusNoContent && code != http.StatusNotModified {
		h["Content-Type"] = w.consts.json
	}
	if len(h["Cache-Control"]) == 0 {
		h["Cache-Control"] = w.consts.noCache
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b) //nolint:errcheck // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b)
}

// observe is the outermost middleware: request id, panic recovery into a JSON 500, the access log and
// metrics. The log has the path but never the query string (it may carry codes or state) and never a
// header value.
func (s *Server) observe(next http.Handler) http.Handler {
	consts := &constHeaders{json: []string{"application/json"}, noCache: []string{"no-cache"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// The request's bookkeeping, its response writer and its X-Request-Id value in one allocation.
		st := &struct {
			info httpx.Info
			sw   statusWriter
			id   [1]string
		}{info: httpx.Info{RequestID: newRequestID(), Route: "not_found"}}
		info := &st.info
		if m, ok := s.lookup(r.URL.Path); ok {
			info.Route = m.route
			if st, ok := m.h.(Streamer); ok {
				info.Stream = st.Streams(r)
			}
		}
		client := s.proxies.Resolve(r)
		ctx, span := s.startSpan(r, info, client)
		info.SetClient(client)
		r = r.WithContext(httpx.WithInfo(ctx, info))
		st.sw = statusWriter{ResponseWriter: w, consts: consts}
		sw := &st.sw
		st.id[0] = info.RequestID
		sw.Header()["X-Request-Id"] = st.id[:]
		s.metrics.InFlight(1)
		defer func() {
			s.metrics.InFlight(-1)
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.metrics.Panic()
				s.log.Error("panic serving request", "request_id", info.RequestID, "route", info.Route,
					"method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if sw.status == 0 {
					sw.Header().Del("Content-Length")
					d := httpx.V1
					if httpx.APIVersion(r) != "" {
						d = httpx.V2
					}
					httpx.JSON(sw, http.StatusInternalServerError, internalError(d, info.RequestID))
				}
			}
			d := time.Since(start)
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			if !info.Stream { // a stream's duration is its viewer's patience, not latency
				s.metrics.Observe(info.Route, r.Method, status, d)
			}
			if status == http.StatusTooManyRequests && isLoginRoute(info.Route) {
				s.metrics.LoginThrottled(info.Route)
			}
			endSpan(span, r.Method, info.Route, status)
			level := slog.LevelInfo
			switch {
			case status == http.StatusServiceUnavailable:
				// Overload and database outages: the outage monitor logs the outage once.
				level = slog.LevelWarn
			case status >= 500:
				level = slog.LevelError
			}
			if s.act != nil && !info.Stream {
				s.act.Request(activity.Request{Time: start.Add(d), RequestID: info.RequestID, Method: r.Method, Route: info.Route,
					Path: r.URL.Path, Status: status, Duration: d, UserID: info.UserID, Bytes: sw.bytes})
			}
			s.log.LogAttrs(r.Context(), level, "request",
				slog.String("request_id", info.RequestID), slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.String("route", info.Route), slog.Int("status", status),
				slog.Int64("bytes", sw.bytes), slog.Duration("duration", d), slog.String("remote", addrString(client.IP)),
				slog.String("peer", r.RemoteAddr))
		}()
		next.ServeHTTP(sw, r)
	})
}

func internalError(d httpx.Dialect, id string) any {
	if d == httpx.V2 {
		return map[string]any{"error": httpx.MsgInternal, "id": id}
	}
	return map[string]any{"code": 500, "error": "Error: " + httpx.MsgInternal, "id": id}
}

// headers adds the version headers, removes nothing sensitive (Go sets no X-Powered-By) and handles
// CORS, answering preflight OPTIONS with 204 before anything else runs.
func (s *Server) headers(next http.Handler) http.Handler {
	// The constant headers' values are built once, under their canonical keys: net/http never
	// modifies a value slice (Set replaces it; Add appends to a full slice, which copies it), so
	// every response shares them instead of allocating and canonicalising them each time.
	zumoVersion := []string{"Gatehouse/" + s.version}
	serverVersion := []string{"gatehouse-" + s.version}
	nosniff := []string{"nosniff"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Zumo-Version"] = zumoVersion
		h["X-Zumo-Server-Version"] = serverVersion
		h["X-Content-Type-Options"] = nosniff
		if s.hsts != "" && httpx.ClientOf(r).HTTPS {
			h.Set("Strict-Transport-Security", s.hsts)
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			if s.cors.allowed(origin) {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
				h.Set("Access-Control-Expose-Headers", "ETag, Link, x-zumo-version, x-zumo-server-version")
				if reqHeaders := r.Header.Get("Access-Control-Request-Headers"); allowedRequestHeaders.MatchString(reqHeaders) {
					h.Set("Access-Control-Allow-Headers", reqHeaders)
				}
			}
		}
		if r.Method == http.MethodOptions {
			httpx.SetRoute(r, "OPTIONS")
			h.Set("Access-Control-Allow-Methods", "GET, PUT, PATCH, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Max-Age", "300")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var allowedRequestHeaders = regexp.MustCompile(`(?i)^[a-z0-9\-,\s]{1,500}$`)

// corsPolicy matches Origin headers against MS_CrossDomainWhitelist host patterns (spec §1.5), with
// one fix: every * is a wildcard, not only the first (spec §7.2 item 10).
type corsPolicy struct {
	patterns  []*regexp.Regexp
	allowNull bool
}

func newCORS(hosts []string) corsPolicy {
	var p corsPolicy
	for _, h := range hosts {
		if h == "null" {
			p.allowNull = true
			continue
		}
		parts := strings.Split(strings.ToLower(h), "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		p.patterns = append(p.patterns, regexp.MustCompile(`^`+strings.Join(parts, `[a-z0-9\-\.]*`)+`$`))
	}
	return p
}

func (p corsPolicy) allowed(origin string) bool {
	if origin == "null" {
		return p.allowNull
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https", "ms-appx-web":
	default:
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return false
	}
	for _, re := range p.patterns {
		if re.MatchString(host) {
			return true
		}
	}
	return false
}

// dialect picks v1 or v2 from ZUMO-API-VERSION and enforces the v2 value format on the routes where
// Mobile Apps did (spec §6.2), unless skip_version_check is set.
func (s *Server) dialect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := httpx.APIVersion(r)
		d := httpx.V1
		if v != "" {
			d = httpx.V2
		}
		r = httpx.SetDialect(r, d)
		if v != "" && !s.cfg.SkipVersionCheck && !validAPIVersion.MatchString(v) && versionChecked(r.URL.Path) {
			httpx.ErrorDialect(w, httpx.V2, http.StatusBadRequest, "An invalid API version was specified in the request, this request needs to specify a ZUMO-API-VERSION of 2.0.0.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

var validAPIVersion = regexp.MustCompile(`^2\.0\.\d+$`)

func versionChecked(path string) bool {
	seg := strings.ToLower(firstSegment(path))
	return seg == "tables" || seg == "api" || seg == "jobs"
}

// https refuses plain HTTP when require_https is set. TLS terminates at a proxy in most deployments;
// the scheme comes from the connection itself or from a trusted proxy's header (Proxies).
func (s *Server) https(next http.Handler) http.Handler {
	if !s.cfg.RequireHTTPS {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !httpx.ClientOf(r).HTTPS {
			httpx.Error(w, r, http.StatusForbidden, "HTTPS connections are required for this service. Please update your endpoint to use the https protocol.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// limitBody answers 413 for a declared length over the limit and caps the body of every request.
func (s *Server) limitBody(next http.Handler) http.Handler {
	limit := int64(s.cfg.MaxRequestBodyKB) * 1024
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			httpx.Error(w, r, http.StatusRequestEntityTooLarge, httpx.MsgBodyTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// timeout bounds a request's handling time: past it the client gets 503 and the handler's context is
// cancelled. The handler's output is buffered, so a timed-out request never half-writes.
//
// Unlike http.TimeoutHandler, the handler runs on the connection's own goroutine (whose stack has
// already grown on earlier requests of a keep-alive connection); only the timer runs elsewhere. That
// saves a goroutine start and a stack copy per request, a measurable share of a table read. The timer
// answers 503 at the deadline even if the handler ignores its context; the handler's later output is
// discarded.
//
// A Streamer's streamed requests pass through unbuffered and unbounded: the handler bounds them.
func (s *Server) timeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpx.InfoOf(r).Stream {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		tw := &timeoutWriter{w: w, h: make(http.Header), dialect: httpx.DialectOf(r), outage: s.outage, buf: s.body()}
		timer := time.AfterFunc(s.cfg.RequestTimeout, tw.timeout)
		defer func() {
			timer.Stop()
			if p := recover(); p != nil {
				// Drop the partial output; observe answers 500 (unless the timer answered already).
				tw.mu.Lock()
				tw.done = true
				tw.mu.Unlock()
				panic(p)
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				tw.timeout() // the handler gave up at the deadline before the timer fired
			}
			if tw.failed() && (s.outage.Down() || !s.outage.Check(r.Context())) {
				// The database is unreachable: 503 + Retry-After rather than 500, counted into the
				// outage instead of logged per request.
				s.outage.Count()
				s.metrics.DBUnavailable()
				tw.unavailable()
			}
			tw.finish()
			s.release(tw.detach())
		}()
		next.ServeHTTP(tw, r.WithContext(ctx))
	})
}

// Streamer is implemented by a mounted handler that serves some of its requests as long-lived
// streams (Server-Sent Events). For those the timeout middleware neither buffers nor bounds the
// response and the request stays out of the latency metrics and activity statistics; the handler
// bounds the stream itself (its own limits, the request context, http.ResponseController deadlines).
type Streamer interface {
	Streams(r *http.Request) bool
}

// chunkingSize is net/http's bufferBeforeChunkingSize: a response body that fits and is written
// before the handler returns gets its Content-Length from net/http.
const chunkingSize = 2048

// timeoutWriter buffers a response until the handler returns or the deadline passes, whichever is
// first; the loser's output is dropped.
type timeoutWriter struct {
	mu       sync.Mutex
	w        http.ResponseWriter
	h        http.Header
	buf      *bytes.Buffer // nil once detached: later writes fail
	code     int
	dialect  httpx.Dialect
	outage   *outage.Monitor
	timedOut bool
	done     bool
}

// failed reports whether the handler answered 500 (and the timer has not answered).
func (tw *timeoutWriter) failed() bool {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return !tw.timedOut && tw.code == http.StatusInternalServerError
}

// unavailable replaces the buffered response with 503 + Retry-After in the request's dialect.
func (tw *timeoutWriter) unavailable() {
	tw.mu.Lock()
	if tw.timedOut {
		tw.mu.Unlock()
		return
	}
	tw.h, tw.code = make(http.Header), 0
	tw.buf.Reset()
	tw.mu.Unlock()
	tw.h.Set("Retry-After", strconv.Itoa(tw.outage.RetryAfter()))
	httpx.ErrorDialect(tw, tw.dialect, http.StatusServiceUnavailable, MsgUnavailable)
}

// MsgUnavailable answers requests while the database is unreachable.
const MsgUnavailable = "The service is temporarily unavailable. Please retry later."

func (tw *timeoutWriter) Header() http.Header { return tw.h }

func (tw *timeoutWriter) WriteHeader(code int) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.code == 0 {
		tw.code = code
	}
}

func (tw *timeoutWriter) Write(b []byte) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.timedOut || tw.buf == nil {
		return 0, http.ErrHandlerTimeout
	}
	if tw.code == 0 {
		tw.code = http.StatusOK
	}
	return tw.buf.Write(b)
}

// timeout runs on the timer's goroutine.
func (tw *timeoutWriter) timeout() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.done || tw.timedOut {
		return
	}
	tw.timedOut = true
	if tw.outage.Down() {
		tw.w.Header().Set("Retry-After", strconv.Itoa(tw.outage.RetryAfter()))
	}
	httpx.ErrorDialect(tw.w, tw.dialect, http.StatusServiceUnavailable, httpx.MsgTimeout)
	if f, ok := tw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// detach takes the buffer back once the response is out; a write after it (by a goroutine the handler
// left running) fails instead of reaching the next request that uses the buffer.
func (tw *timeoutWriter) detach() *bytes.Buffer {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	b := tw.buf
	tw.buf = nil
	return b
}

// maxPooledBody is the largest response buffer kept for the next request; a larger one (a big page)
// is left to the garbage collector so that the pool does not pin the largest response ever sent.
const maxPooledBody = 64 << 10

// body is an empty response buffer.
func (s *Server) body() *bytes.Buffer {
	if b, ok := s.bodies.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

func (s *Server) release(b *bytes.Buffer) {
	if b != nil && b.Cap() <= maxPooledBody {
		b.Reset()
		s.bodies.Put(b)
	}
}

// finish copies the buffered response out, unless the timer already answered.
func (tw *timeoutWriter) finish() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.done = true
	if tw.timedOut {
		return
	}
	dst := tw.w.Header()
	for k, vv := range tw.h {
		dst[k] = vv
	}
	code := tw.code
	if code == 0 {
		code = http.StatusOK
	}
	if code != http.StatusNoContent && code != http.StatusNotModified && tw.buf.Len() >= chunkingSize {
		// A shorter body is written before the handler returns, and net/http then sets its
		// Content-Length itself (without allocating); a longer one would be sent chunked.
		dst.Set("Content-Length", strconv.Itoa(tw.buf.Len()))
	}
	tw.w.WriteHeader(code)
	tw.w.Write(tw.buf.Bytes()) //nolint:errcheck // the client went away
}

// authenticate identifies the caller from X-ZUMO-MASTER, X-ZUMO-APPLICATION and X-ZUMO-AUTH (or
// Authorization: Bearer). A present but invalid token is 401 with its message, whatever the route's
// permission, except on the routes where the original ignored the token.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seg := strings.ToLower(firstSegment(r.URL.Path))
		cr := auth.Credentials{
			MasterKey: r.Header.Get("X-Zumo-Master"), // canonical keys: Get does not allocate
			AppKey:    r.Header.Get("X-Zumo-Application"),
			System:    seg == "jobs",
		}
		if !tokenIgnored(seg, r.URL.Path) {
			if vs, ok := r.Header["X-Zumo-Auth"]; ok && len(vs) > 0 {
				cr.Token, cr.HasToken = vs[0], true
			} else if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
				cr.Token, cr.HasToken = strings.TrimSpace(a[7:]), true
			}
		}
		caller, err := s.auth.Identify(cr)
		if err != nil {
			reason := "invalid"
			var te *token.Error
			if errors.As(err, &te) {
				reason = string(te.Reason)
			}
			s.metrics.AuthFailure(reason)
			httpx.Error(w, r, http.StatusUnauthorized, err.Error())
			return
		}
		if cr.MasterKey != "" && !caller.IsAdmin() {
			s.metrics.AuthFailure("master_key")
		}
		if cr.AppKey != "" && !caller.AppKey {
			s.metrics.AuthFailure("application_key")
		}
		httpx.InfoOf(r).UserID = caller.UserID()
		next.ServeHTTP(w, r.WithContext(httpx.WithCaller(r.Context(), caller)))
	})
}

// tokenIgnored lists the routes where the original did not parse X-ZUMO-AUTH (spec §2.2), plus our
// probes: a stale token in a browser must not break login or health checks.
func tokenIgnored(seg, path string) bool {
	switch seg {
	case "login", "status", "diagnostics", "crossdomain", "healthz", "readyz":
		return true
	case ".auth":
		p := strings.ToLower(path)
		return strings.HasPrefix(p, "/.auth/login")
	}
	return false
}

func firstSegment(path string) string {
	path = strings.TrimPrefix(path, "/")
	seg, _, _ := strings.Cut(path, "/")
	return seg
}

// RequirePermission wraps a handler with a permission check: 401 in the dialect's shape when the
// caller does not satisfy p.
func RequirePermission(p auth.Permission, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := httpx.CallerOf(r); !c.Allows(p) {
			if c.NeedsMFA(p) {
				httpx.Error(w, r, http.StatusForbidden, auth.MsgMFARequired)
				return
			}
			Unauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Unauthorized answers 401 in the dialect's words.
func Unauthorized(w http.ResponseWriter, r *http.Request) {
	if httpx.DialectOf(r) == httpx.V2 {
		httpx.Error(w, r, http.StatusUnauthorized, "You must be logged in to use this application")
		return
	}
	httpx.Error(w, r, http.StatusUnauthorized, httpx.MsgUnauthorized)
}
