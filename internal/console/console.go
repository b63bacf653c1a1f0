// Package console is Gatehouse's admin console: server-rendered pages (html/template, one small
// embedded script, no inline script or style) under /console/ for data, schema and permissions,
// scripts, jobs, users, keys, logs and the audit trail, and the console's own sign-in
// (administrators, argon2id, throttling, database sessions in cookies bound to the cluster's keys,
// CSRF tokens, idle and absolute timeouts).
//
// Every action runs through the code the admin API runs: row operations through the /tables handler
// with an administrator caller, schema changes through table.SpecRequest and table.Service, users
// through the user directory and accounts service, keys through the key ring; and every change is
// recorded by the audit Recorder.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/table"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Throttle is the brute-force state store shared with the accounts (account.SQL implements it).
type Throttle interface {
	Throttle(ctx context.Context, keys []string, fn func(rows []account.ThrottleRow) []*account.ThrottleRow) error
}

// AuditLog reads the audit trail (audit.Store implements it). The console has no way to change it.
type AuditLog interface {
	List(ctx context.Context, f audit.Filter) ([]audit.Entry, error)
	Export(ctx context.Context, w io.Writer, f audit.Filter, format audit.Format) (int, error)
}

// Options configure the console. Store, Keys, Hasher, Throttle, Tables, Rows and Audit are
// required; the rest enable their pages.
type Options struct {
	// Path is where the console is served, e.g. "/console" (no trailing slash).
	Path  string
	Store Store
	// Keys returns the cluster's keys in force (sessions are signed under the master key).
	Keys     func() auth.Secrets
	Hasher   *password.Hasher
	Policy   password.Policy
	Throttle Throttle
	Rules    account.Rules
	// Tables is the catalogue; Rows is the /tables handler (row operations run through it).
	Tables *table.Service
	Rows   http.Handler
	Audit  audit.Recorder
	// Optional pages.
	AuditLog AuditLog
	Scripts  Scripts
	Jobs     *Jobs
	Users    *Users
	KeyRing  *KeyRing
	Activity Activity

	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// InsecureLoopback lets plain-HTTP requests from a loopback client get cookies without Secure.
	InsecureLoopback bool
	// MaxUpload bounds an import file (bytes).
	MaxUpload int64
	// Notifier, when set, wakes live tails when an instance wrote events (notify.Activity); without
	// it they poll every Stream.Poll.
	Notifier notify.Notifier
	// Stream bounds the live-tail streams.
	Stream StreamOptions
	// Done ends every live-tail stream when closed (the server is shutting down: http.Server.Shutdown
	// waits for open requests, and a stream never ends on its own).
	Done <-chan struct{}
	Now  func() time.Time
	Log  *slog.Logger
}

// Console serves the console.
type Console struct {
	o       Options
	pages   map[string]*template.Template
	static  http.Handler
	streams streams
}

// New builds the console.
func New(o Options) (*Console, error) {
	if o.Store == nil || o.Keys == nil || o.Hasher == nil || o.Throttle == nil || o.Tables == nil || o.Rows == nil || o.Audit == nil {
		return nil, errors.New("console: Store, Keys, Hasher, Throttle, Tables, Rows and Audit are required")
	}
	o.Path = "/" + strings.Trim(o.Path, "/")
	if o.Path == "/" {
		return nil, errors.New("console: the path must not be the root")
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.AbsoluteTimeout <= 0 {
		o.AbsoluteTimeout = 12 * time.Hour
	}
	if o.MaxUpload <= 0 {
		o.MaxUpload = 4 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Stream.defaults()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Rules == (account.Rules{}) {
		o.Rules = account.DefaultRules()
	}
	c := &Console{o: o, pages: map[string]*template.Template{}}
	if err := c.parse(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix(o.Path+"/static/", http.FileServerFS(sub))
	return c, nil
}

func (c *Console) now() time.Time { return c.o.Now().UTC() }

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return time.Since(t).Round(time.Second).String()
	},
	"add": func(a, b int) int { return a + b },
}

func (c *Console) parse() error {
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("console: template %s: %w", n, err)
		}
		c.pages[base] = t
	}
	return nil
}

// view is what every page template receives.
type view struct {
	Title string
	Nav   string
	Base  string
	Admin *Admin
	CSRF  string
	// Notice and Problem are the outcome of the last action (shown in a status region).
	Notice  string
	Problem string
	Data    any
}

// nav lists the sections (also the keyboard shortcuts' targets: g then the key).
type navItem struct{ ID, Label, Key string }

var navItems = []navItem{
	{"data", "Data", "d"}, {"schema", "Schema", "s"}, {"scripts", "Scripts", "c"}, {"jobs", "Jobs", "j"},
	{"users", "Users", "u"}, {"keys", "Keys", "k"}, {"logs", "Logs", "l"}, {"audit", "Audit", "a"}, {"account", "Account", "m"},
}

// NavItems are the sections for the layout.
func (v view) NavItems() []navItem { return navItems }

// render writes a page. Errors after the header are logged only.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	t, ok := c.pages[page]
	if !ok {
		c.o.Log.Error("console: no such template", "page", page)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	v.Base = c.o.Path
	if s := sessionOf(r.Context()); s != nil {
		v.Admin, v.CSRF = s.admin, s.csrf
	}
	if v.Notice == "" {
		v.Notice = r.URL.Query().Get("notice")
		if len(v.Notice) > 200 {
			v.Notice = ""
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.Execute(w, v); err != nil {
		c.o.Log.Warn("console: rendering a page failed", "page", page, "err", err)
	}
}

// securityHeaders are set on every console response.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

// ServeHTTP routes the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	p := r.URL.Path
	if len(p) < len(c.o.Path) || !strings.EqualFold(p[:len(c.o.Path)], c.o.Path) {
		http.NotFound(w, r)
		return
	}
	rest := p[len(c.o.Path):]
	if rest == "" {
		http.Redirect(w, r, c.o.Path+"/", http.StatusFound)
		return
	}
	if strings.HasPrefix(rest, "/static/") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		c.static.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.Method == http.MethodPost && !sameOrigin(r) {
		c.forbidden(w, r, "This form was posted from another site.")
		return
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	switch segs[0] {
	case "signin":
		c.signin(w, r)
		return
	case "setup":
		c.setup(w, r)
		return
	}
	s, err := c.authenticate(r)
	if errors.Is(err, errNoSession) && c.streamPath(r) {
		// The browser's EventSource stops on an error status (a redirect to the sign-in page would
		// make it retry forever).
		http.Error(w, "Your session has ended. Sign in again.", http.StatusUnauthorized)
		return
	}
	if errors.Is(err, errNoSession) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			target := c.o.Path + "/signin"
			if p := r.URL.Path; p != c.o.Path+"/" {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		c.render(w, r, http.StatusUnauthorized, "signin", view{Title: "Sign in", Problem: "Your session has ended. Sign in again."})
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	r = r.WithContext(withSession(r.Context(), s))
	if r.Method == http.MethodPost {
		if err := r.ParseMultipartForm(c.o.MaxUpload); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			c.render(w, r, http.StatusRequestEntityTooLarge, "error", view{Title: "Too large", Problem: "The form or file is too large."})
			return
		}
		if !equalString(r.PostFormValue("_csrf"), s.csrf) {
			c.forbidden(w, r, "The form's security token is missing or out of date. Reload the page and try again.")
			return
		}
	}
	c.dispatch(w, r, segs)
}

func (c *Console) dispatch(w http.ResponseWriter, r *http.Request, segs []string) {
	switch segs[0] {
	case "":
		http.Redirect(w, r, c.o.Path+"/data", http.StatusFound)
	case "signout":
		c.signout(w, r)
	case "account":
		c.account(w, r, segs[1:])
	case "data":
		c.data(w, r, segs[1:])
	case "schema":
		c.schema(w, r, segs[1:])
	case "scripts":
		c.scripts(w, r, segs[1:])
	case "jobs":
		c.jobs(w, r, segs[1:])
	case "users":
		c.users(w, r, segs[1:])
	case "keys":
		c.keys(w, r, segs[1:])
	case "logs":
		c.logs(w, r, segs[1:])
	case "audit":
		c.audit(w, r, segs[1:])
	default:
		c.notFound(w, r)
	}
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusNotFound, "error", view{Title: "Not found", Problem: "There is no such page."})
}

func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, msg string) {
	c.render(w, r, http.StatusForbidden, "error", view{Title: "Refused", Problem: msg})
}

func (c *Console) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	c.o.Log.Warn("console: a dependency failed", "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "5")
	c.render(w, r, http.StatusServiceUnavailable, "error", view{Title: "Unavailable",
		Problem: "The database did not answer. Try again in a few seconds."})
}

// redirect answers a successful form post: back to a console page with a notice (POST/redirect/GET).
func (c *Console) redirect(w http.ResponseWriter, r *http.Request, path, notice string) {
	u := c.o.Path + path
	if notice != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "notice=" + url.QueryEscape(notice)
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// actor is the signed-in administrator as the author of a change recorded by a domain package in the
// change's own transaction (Action, Target, Before and After are the package's).
func (c *Console) actor(r *http.Request) audit.Entry {
	e := audit.Entry{Time: c.now(), Via: audit.ViaConsole, Remote: clientIP(r), RequestID: httpx.InfoOf(r).RequestID}
	if s := sessionOf(r.Context()); s != nil {
		e.Actor = s.admin.Email
	}
	return e
}

// record writes one audit entry for the signed-in administrator. A failure to record is logged and
// reported: the change itself has happened.
func (c *Console) record(r *http.Request, action, target string, before, after any) {
	s := sessionOf(r.Context())
	e := audit.Entry{Time: c.now(), Via: audit.ViaConsole, Action: action, Target: target, Remote: clientIP(r),
		RequestID: httpx.InfoOf(r).RequestID, Before: audit.Snapshot(before), After: audit.Snapshot(after)}
	if s != nil {
		e.Actor = s.admin.Email
	}
	if err := c.o.Audit.Record(r.Context(), e); err != nil {
		c.o.Log.Error("console: recording an audit entry failed", "action", action, "target", target, "err", err)
	}
}
