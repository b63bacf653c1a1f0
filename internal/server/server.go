// Package server is Gatehouse's HTTP front: the middleware every request passes (observability, CORS,
// dialect, limits, authentication), the routing of the Zumo URL space, and the built-in endpoints
// (status and health probes, metrics, /.auth/me, the admin token API). Feature packages mount their
// handlers on it with Mount.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/outage"
	"github.com/gatehouse/gatehouse/internal/signing"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Pinger reports whether the database is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are the server's collaborators.
type Deps struct {
	Config  *config.Config
	Auth    *auth.Authenticator
	Minter  *auth.Minter
	App     *appdir.App
	DB      Pinger
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Version string
	// Outage tracks database availability (503 + Retry-After during an outage); nil: a monitor on
	// DB without a background probe.
	Outage *outage.Monitor
	// Tracer traces requests (nil: no tracing).
	Tracer trace.TracerProvider
	// Activity receives every finished request (nil: activity recording off).
	Activity *activity.Recorder
	// Audit records the changes made through the admin routes (nil: none).
	Audit *audit.Middleware
}

// Server routes requests.
type Server struct {
	cfg     *config.Config
	auth    *auth.Authenticator
	minter  *auth.Minter
	app     *appdir.App
	db      Pinger
	metrics *metrics.Metrics
	log     *slog.Logger
	version string
	cors    corsPolicy
	outage  *outage.Monitor
	proxies Proxies
	tracer  trace.Tracer
	tracing bool // false: the tracer provider is the no-op one, requests get no span
	act     *activity.Recorder
	audit   *audit.Middleware
	hsts    string // Strict-Transport-Security value, "" for none
	exact   map[string]mount
	prefix  []mount // longest first
	// bodies holds the timeout middleware's response buffers (*bytes.Buffer) between requests.
	bodies sync.Pool
}

type mount struct {
	path  string // lower-cased, for prefix mounts: "/tables", "/admin/users"
	route string
	h     http.Handler
}

// New builds a server with the built-in endpoints mounted.
func New(d Deps) *Server {
	s := &Server{
		cfg: d.Config, auth: d.Auth, minter: d.Minter, app: d.App, db: d.DB, metrics: d.Metrics, log: d.Logger,
		version: d.Version, cors: newCORS(d.Config.CrossDomainWhitelist), act: d.Activity, audit: d.Audit,
		exact:   map[string]mount{},
		proxies: Proxies{Trusted: d.Config.Edge.Prefixes(), Forwarded: d.Config.Edge.ProxyHeader == "forwarded"},
	}
	tp := d.Tracer
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	s.tracer = tp.Tracer("github.com/gatehouse/gatehouse/internal/server")
	_, off := tp.(noop.TracerProvider)
	s.tracing = !off
	if s.outage = d.Outage; s.outage == nil {
		s.outage = outage.New(d.DB, d.Logger, outage.Options{})
	}
	if age := d.Config.Edge.HSTSMaxAge; age > 0 {
		s.hsts = "max-age=" + strconv.FormatInt(int64(age/time.Second), 10)
	}
	s.MountPath("/status", "/status", http.HandlerFunc(s.status))
	s.MountPath("/healthz", "/healthz", http.HandlerFunc(s.healthz))
	s.MountPath("/readyz", "/readyz", http.HandlerFunc(s.readyz))
	if d.Config.MetricsListen == "" {
		s.MountPath("/metrics", "/metrics", RequirePermission(auth.Admin, onlyGET(d.Metrics.Handler())))
	}
	s.MountPath("/.auth/me", "/.auth/me", http.HandlerFunc(s.authMe))
	s.MountPath(signing.JWKSPath, signing.JWKSPath, http.HandlerFunc(s.wellKnown))
	s.MountPath(signing.DiscoveryPath, signing.DiscoveryPath, http.HandlerFunc(s.wellKnown))
	s.MountPath("/admin/tokens", "/admin/tokens", RequirePermission(auth.Admin, http.HandlerFunc(s.adminMintToken)))
	return s
}

// MountPath serves one exact path (matched case-insensitively, trailing slash ignored).
func (s *Server) MountPath(path, route string, h http.Handler) {
	s.exact[strings.ToLower(strings.TrimSuffix(path, "/"))] = mount{route: route, h: h}
}

// Mount serves a path prefix and everything below it, e.g. "tables" or "/admin/users" (matched
// case-insensitively at segment boundaries; the longest prefix wins).
func (s *Server) Mount(prefix, route string, h http.Handler) {
	p := "/" + strings.Trim(strings.ToLower(prefix), "/")
	s.prefix = append(s.prefix, mount{path: p, route: route, h: h})
	sort.SliceStable(s.prefix, func(i, j int) bool { return len(s.prefix[i].path) > len(s.prefix[j].path) })
}

// OriginAllowed reports whether an origin (scheme://host[:port]) passes the cross-domain whitelist, the
// same matching CORS uses (login completion pages post only to such origins).
func (s *Server) OriginAllowed(origin string) bool { return s.cors.allowed(origin) }

// App is the loaded app directory (permissions and scripts) for the feature handlers.
func (s *Server) App() *appdir.App { return s.app }

// Handler is the main listener's handler: middleware in order, then routing.
func (s *Server) Handler() http.Handler {
	var h http.Handler = http.HandlerFunc(s.route)
	if s.audit != nil {
		h = s.audit.Wrap(h)
	}
	h = s.authenticate(h)
	h = s.timeout(h)
	h = s.limitBody(h)
	h = s.https(h)
	h = s.dialect(h)
	h = s.headers(h)
	return s.observe(h)
}

// MetricsHandler serves /metrics for the separate metrics listener (no authentication: bind it to a
// private address).
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	return mux
}

// lookup finds the handler of a path: exact paths first (case-insensitive, trailing slash ignored),
// then the longest mounted prefix.
func (s *Server) lookup(path string) (mount, bool) {
	p := strings.ToLower(path)
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if m, ok := s.exact[p]; ok {
		return m, true
	}
	for _, m := range s.prefix {
		if p == m.path || strings.HasPrefix(p, m.path+"/") {
			return m, true
		}
	}
	return mount{}, false
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if m, ok := s.lookup(r.URL.Path); ok {
		m.h.ServeHTTP(w, r)
		return
	}
	httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
}

func onlyGET(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			httpx.MethodNotAllowed(w, r, "GET")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// status is the original's GET /status: 200 with an empty body for v1, {"status":"Running"} for v2.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET")
		return
	}
	if httpx.DialectOf(r) == httpx.V2 {
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "Running"})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// healthz is liveness: the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is readiness: the database answers within two seconds (pinged at most once a second; during
// an outage the monitor's probe decides).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET")
		return
	}
	if !s.outage.Check(r.Context()) {
		w.Header().Set("Retry-After", strconv.Itoa(s.outage.RetryAfter()))
		httpx.JSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database unreachable"})
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type claimEntry struct {
	Typ string `json:"typ"`
	Val string `json:"val"`
}

type identity struct {
	ProviderName string       `json:"provider_name"`
	UserID       string       `json:"user_id"`
	UserClaims   []claimEntry `json:"user_claims"`
	ExpiresOn    string       `json:"expires_on"`
}

// hiddenClaims are never echoed by /.auth/me: the original's encrypted provider credentials.
var hiddenClaims = map[string]bool{"urn:microsoft:credentials": true}

// authMe returns the caller's identity in the App Service shape (an array of identities).
func (s *Server) authMe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET")
		return
	}
	c := httpx.CallerOf(r)
	if c.Claims == nil || c.UserID() == "" {
		Unauthorized(w, r)
		return
	}
	raw, err := c.Claims.Raw()
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sortStrings(keys)
	claims := make([]claimEntry, 0, len(keys))
	for _, k := range keys {
		if hiddenClaims[k] {
			continue
		}
		claims = append(claims, claimEntry{Typ: k, Val: claimString(raw[k])})
	}
	provider := strings.ToLower(c.Claims.Provider())
	if want := r.URL.Query().Get("provider"); want != "" && !strings.EqualFold(want, provider) {
		httpx.JSON(w, http.StatusOK, []identity{})
		return
	}
	httpx.JSON(w, http.StatusOK, []identity{{
		ProviderName: provider,
		UserID:       c.UserID(),
		UserClaims:   claims,
		ExpiresOn:    time.Unix(c.Claims.Exp, 0).UTC().Format(time.RFC3339),
	}})
}

type mintRequest struct {
	UserID   string `json:"userId"`
	TTL      string `json:"ttl"`
	Audience string `json:"aud"`
}

// adminMintToken is POST /admin/tokens (master key): mint an app token for a user id, the HTTP twin
// of `gatehouse token mint`.
func (s *Server) adminMintToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		httpx.MethodNotAllowed(w, r, "POST")
		return
	}
	var req mintRequest
	if err := httpx.ReadJSON(r, &req); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			httpx.Error(w, r, http.StatusBadRequest, "ttl must be a duration such as 30m or 24h")
			return
		}
		ttl = d
	}
	tok, exp, err := s.minter.Mint(auth.MintRequest{UserID: req.UserID, Audience: req.Audience, TTL: ttl})
	if err != nil {
		httpx.Error(w, r, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("token minted by admin API", "request_id", httpx.InfoOf(r).RequestID, "user_id", req.UserID, "expires", exp)
	audit.Annotate(r.Context(), func(e *audit.Entry) {
		e.Target = req.UserID
		e.After = audit.Snapshot(map[string]string{"userId": req.UserID, "aud": req.Audience, "expiresAt": exp.UTC().Format(time.RFC3339)})
	})
	httpx.JSON(w, http.StatusOK, map[string]any{
		"user":                map[string]string{"userId": req.UserID},
		"authenticationToken": tok,
		"expiresAt":           exp.UTC().Format(time.RFC3339),
	})
}
