package audit

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Middleware is the admin HTTP surfaces' one choke point: every change made through /admin/…, and
// through /tables and /jobs with the master key (or by the console on an admin's behalf), is
// recorded after its handler answered with a success status. The entry's action and target come
// from the method and path (Classify); handlers refine them with Annotate (a target from the body,
// before and after of schema and permission changes). Nothing of the request's headers, query or
// body is recorded unless a handler puts it there.
//
// The entry is written before the response leaves the server (the handlers run behind
// http.TimeoutHandler, which buffers), with a context that the client's going away does not cancel.
// The change itself has already committed in its own transaction: if the write fails the change
// stands and the failure is logged at error level with the whole entry ("audit entry lost"), so an
// operator can re-enter it; see docs/operations.md.
type Middleware struct {
	Recorder Recorder
	Log      *slog.Logger
	// Timeout bounds the write (default 5 s).
	Timeout time.Duration
}

// Wrap returns next behind the recorder.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !mutating(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		action, target, ok := Classify(r.Method, r.URL.EscapedPath())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		p, console := PrincipalOf(r.Context())
		c := httpx.CallerOf(r)
		if !console {
			if !c.IsAdmin() {
				// Only the master key changes anything through these routes; anything else is refused
				// by the handler (or, on /tables and /jobs, is an app client, not an administrator).
				next.ServeHTTP(w, r)
				return
			}
			p = Principal{Actor: ActorMasterKey, Via: ViaAdminAPI}
		}
		pe := &pending{e: Entry{Actor: p.Actor, Via: p.Via, Action: action, Target: target, RequestID: httpx.InfoOf(r).RequestID}}
		if ip := httpx.ClientOf(r).IP; ip.IsValid() {
			pe.e.Remote = ip.String()
		}
		sw := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), pendingKey{}, pe)))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		if sw.status >= 400 || pe.skip {
			return
		}
		m.record(r.Context(), pe.e)
	})
}

func (m *Middleware) record(ctx context.Context, e Entry) {
	d := m.Timeout
	if d <= 0 {
		d = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	if err := m.Recorder.Record(ctx, e); err != nil {
		LogLost(m.Log, e, err)
	}
}

// EntryFor is the entry of a change a request makes through the admin HTTP surfaces, for handlers
// that record their own (in the change's transaction): who (the console's administrator when the
// console acts for one, else the master key), from where, and the request id.
func EntryFor(r *http.Request) Entry {
	p, ok := PrincipalOf(r.Context())
	if !ok {
		p = Principal{Actor: ActorMasterKey, Via: ViaAdminAPI}
	}
	e := Entry{Actor: p.Actor, Via: p.Via, RequestID: httpx.InfoOf(r).RequestID}
	if ip := httpx.ClientOf(r).IP; ip.IsValid() {
		e.Remote = ip.String()
	}
	return e
}

// LogLost logs an entry that could not be written, with every field but before and after, at error
// level: the change it describes has committed.
func LogLost(log *slog.Logger, e Entry, err error) {
	if log == nil {
		log = slog.Default()
	}
	log.Error("audit entry lost: the change was made but its audit record could not be written",
		"actor", e.Actor, "via", e.Via, "action", e.Action, "target", e.Target, "remote", e.Remote,
		"request_id", e.RequestID, "err", err)
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// Classify names the action and target of a change request on the admin surfaces from its method
// and (escaped) path; ok is false for paths that are not audited (app APIs, logins, unknown routes).
//
//	POST   /admin/tokens                     token.mint
//	POST   /admin/tables                     table.create
//	PATCH  /admin/tables/{t}                 table.alter         (table.permissions, table.columns, table.indexes: Annotate)
//	DELETE /admin/tables/{t}                 table.drop
//	POST   /admin/keys/rotate                keys.rotate
//	POST   /admin/users/{id}/{verb}          user.{verb}         (disable, enable, revoke)
//	POST   /admin/accounts                   account.create
//	POST   /admin/accounts/import            account.import
//	POST   /admin/accounts/{ref}/{verb}      account.{verb}      (disable, enable, password)
//	POST   /admin/{x}[/{target}][/{verb}]    {x}.{verb|create|update|delete}
//	POST   /tables/{t}                       row.insert          (master key only)
//	PATCH  /tables/{t}/{id}                  row.update
//	DELETE /tables/{t}/{id}                  row.delete
//	POST   /tables/{t}/{id}                  row.undelete
//	POST   /jobs/{job}                       job.run
func Classify(method, escapedPath string) (action, target string, ok bool) {
	segs := splitPath(escapedPath)
	if len(segs) < 2 && !(len(segs) == 1 && segs[0] == "admin") {
		return "", "", false
	}
	first := strings.ToLower(segs[0])
	switch first {
	case "tables":
		t := segs[1]
		switch {
		case len(segs) == 2 && method == http.MethodPost:
			return "row.insert", t, true
		case len(segs) == 3:
			verb := map[string]string{http.MethodPatch: "row.update", http.MethodDelete: "row.delete", http.MethodPost: "row.undelete", http.MethodPut: "row.update"}[method]
			if verb == "" {
				return "", "", false
			}
			return verb, t + "/" + segs[2], true
		}
		return "", "", false
	case "jobs":
		if len(segs) == 2 && method == http.MethodPost {
			return "job.run", segs[1], true
		}
		return "", "", false
	case "admin":
	default:
		return "", "", false
	}
	if len(segs) < 2 {
		return "", "", false
	}
	res := strings.ToLower(segs[1])
	rest := segs[2:]
	noun := map[string]string{"tokens": "token", "tables": "table", "keys": "keys", "users": "user", "accounts": "account", "jobs": "job", "scripts": "script"}[res]
	if noun == "" {
		noun = res
	}
	switch {
	case res == "tokens" && len(rest) == 0 && method == http.MethodPost:
		return "token.mint", "", true
	case res == "tables" && len(rest) == 1 && method == http.MethodPatch:
		return "table.alter", rest[0], true
	case res == "tables" && len(rest) == 1 && method == http.MethodDelete:
		return "table.drop", rest[0], true
	case res == "keys" && len(rest) == 1 && strings.EqualFold(rest[0], "rotate"):
		return "keys.rotate", "", true
	case len(rest) == 0:
		return noun + "." + methodVerb(method), "", true
	case len(rest) == 1 && method == http.MethodPost && isVerb(rest[0]):
		// /admin/accounts/import, /admin/keys/rotate: a collection action.
		return noun + "." + strings.ToLower(rest[0]), "", true
	case len(rest) == 1:
		return noun + "." + methodVerb(method), rest[0], true
	case method == http.MethodPost && wordOnly(rest[len(rest)-1]):
		// /admin/users/{id}/disable: an action on a target.
		last := rest[len(rest)-1]
		return noun + "." + strings.ToLower(last), strings.Join(rest[:len(rest)-1], "/"), true
	default:
		return noun + "." + methodVerb(method), strings.Join(rest, "/"), true
	}
}

// collection verbs that a single trailing segment names (anything else is a target).
func isVerb(s string) bool {
	switch strings.ToLower(s) {
	case "import", "rotate", "run", "export", "purge", "reload":
		return true
	}
	return false
}

// wordOnly reports whether s is a short lower-case word (a verb such as "disable", not an id).
func wordOnly(s string) bool {
	if s == "" || len(s) > 24 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '-' {
			return false
		}
	}
	return true
}

func methodVerb(m string) string {
	switch m {
	case http.MethodPost:
		return "create"
	case http.MethodDelete:
		return "delete"
	default:
		return "update"
	}
}

// splitPath splits an escaped path into unescaped, non-empty segments (an undecodable segment is
// kept escaped). At most 8 segments are kept; the rest is joined into the last.
func splitPath(p string) []string {
	raw := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	if len(raw) > 8 {
		raw = append(raw[:7], strings.Join(raw[7:], "/"))
	}
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		out = append(out, s)
	}
	return out
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
