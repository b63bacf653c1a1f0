// Package audit is the audit trail: who changed what, when, from where, through which surface (the
// console, the master-key admin API or the CLI), with the before and after of schema and permission
// changes. Entries are append-only: the package has no update or delete path other than the optional
// retention (Store.Prune), and the database refuses UPDATE on the table with a trigger. Secrets never
// reach an entry: fields whose names look secret are redacted from Before and After (Redact), and the
// HTTP recorder keeps no header, body or query value.
package audit

import (
	"context"
	"encoding/json"
	"time"
)

// Surfaces (Entry.Via).
const (
	ViaConsole  = "console"
	ViaAdminAPI = "admin-api"
	ViaCLI      = "cli"
)

// ActorMasterKey is the actor of a request authorised by the master key.
const ActorMasterKey = "master-key"

// Entry is one recorded change.
type Entry struct {
	// ID orders the trail (assigned by the store; increasing).
	ID int64 `json:"id"`
	// Time is when the change was recorded (the store's clock when zero).
	Time time.Time `json:"time"`
	// Actor is who: an admin account's email (console), "master-key" (admin API), "cli:<os user>".
	Actor string `json:"actor"`
	// Via is the surface: "console", "admin-api" or "cli".
	Via string `json:"via"`
	// Action is what, as "<resource>.<verb>": "table.create", "table.permissions", "row.update",
	// "user.disable", "keys.rotate", "job.run", "script.save", "token.mint", …
	Action string `json:"action"`
	// Target is what was changed: a table name, "table/id", a user id, a job name, a key kind.
	Target string `json:"target"`
	// Remote is the client address after trusted proxies ("" for the CLI).
	Remote string `json:"remote,omitempty"`
	// RequestID is the request's X-Request-Id ("" for the CLI).
	RequestID string `json:"requestId,omitempty"`
	// Before and After are the changed object's state (schema and permission changes), redacted.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// Recorder records entries. Store implements it; tests and the console may wrap it.
type Recorder interface {
	Record(ctx context.Context, e Entry) error
}

// Filter selects entries for List and Export. Zero fields match everything.
type Filter struct {
	// Since and Until bound Time (Since inclusive, Until exclusive).
	Since, Until time.Time
	// Actor, Action and Target match exactly; an Action ending in ".*" (e.g. "table.*") matches a
	// resource's every verb.
	Actor, Action, Target string
	// Limit caps List's result (default DefaultLimit, at most MaxLimit); Export ignores it unless set.
	Limit int
	// AfterID returns only entries with a larger ID (paging forward, the way Export and a live view
	// follow the trail).
	AfterID int64
	// BeforeID returns only entries with a smaller ID (paging backward from the newest).
	BeforeID int64
	// Ascending orders oldest first (the default is newest first).
	Ascending bool
}

// List limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Format is an export format.
type Format string

// Export formats.
const (
	JSONLines Format = "jsonl"
	CSV       Format = "csv"
)

// ParseFormat accepts "jsonl" (also "json", "ndjson") and "csv".
func ParseFormat(s string) (Format, bool) {
	switch s {
	case "jsonl", "json", "ndjson", "":
		return JSONLines, true
	case "csv":
		return CSV, true
	}
	return "", false
}

type ctxKey struct{}

// Principal is who acts through a surface: the console sets it on a request's context (WithPrincipal)
// before calling the admin handlers, so that their entries name the admin account, not the master key.
type Principal struct {
	Actor string
	Via   string
}

// WithPrincipal attaches the acting principal to a context.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// PrincipalOf returns the principal attached by WithPrincipal.
func PrincipalOf(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

type pendingKey struct{}

// pending is the entry of a request being served behind the HTTP recorder.
type pending struct {
	e    Entry
	skip bool
}

// Annotate lets a handler served behind the HTTP recorder (Middleware) refine its request's entry:
// set Target from the body, a more precise Action (e.g. "table.permissions" for an alter that only
// changed permissions), or Before and After. It does nothing outside the recorder.
func Annotate(ctx context.Context, fn func(e *Entry)) {
	if p, ok := ctx.Value(pendingKey{}).(*pending); ok {
		fn(&p.e)
	}
}

// NoChange tells the HTTP recorder that the request changed nothing (a dry run, an idempotent
// no-op), so no entry is written.
func NoChange(ctx context.Context) {
	if p, ok := ctx.Value(pendingKey{}).(*pending); ok {
		p.skip = true
	}
}

// Snapshot marshals a state for Entry.Before or Entry.After (nil for a nil value or on failure).
func Snapshot(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil
	}
	return b
}
