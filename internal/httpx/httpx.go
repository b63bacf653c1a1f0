// Package httpx holds what every Gatehouse handler shares: the protocol dialect of a request (Zumo v1
// or Mobile Apps v2), the caller, JSON responses and errors in the dialect's shape, and bounded body
// reading.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/jsonx"
)

// Dialect is the protocol generation a request speaks.
type Dialect int

// Dialects: V1 (Azure Mobile Services) unless the request carries ZUMO-API-VERSION (Mobile Apps).
const (
	V1 Dialect = iota
	V2
)

// APIVersion returns the ZUMO-API-VERSION of a request from its header or query (query name in any case).
func APIVersion(r *http.Request) string {
	if v := r.Header.Get("Zumo-Api-Version"); v != "" { // the canonical key: Get does not allocate
		return v
	}
	// Most requests carry the version in the header or not at all: parse the query only when its
	// raw text can hold the parameter (names may be percent-encoded, hence the '%').
	if raw := r.URL.RawQuery; !strings.Contains(raw, "%") && !containsFold(raw, "zumo-api-version") {
		return ""
	}
	for k, vs := range r.URL.Query() {
		if strings.EqualFold(k, "zumo-api-version") && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

type ctxKey int

const (
	dialectKey ctxKey = iota
	callerKey
	infoKey
)

// Info is per-request bookkeeping shared between middleware and handlers.
type Info struct {
	RequestID string
	Route     string // low-cardinality route name for metrics and logs
	UserID    string // the authenticated user's id ("" without a valid token), for the activity log
	// Stream marks a long-lived streamed response (Server-Sent Events): not buffered by the timeout
	// middleware, left out of latency metrics and activity statistics.
	Stream bool

	// The request's client and dialect, set once by the server's middleware (SetClient, SetDialect):
	// kept here rather than in context values of their own, which would cost a context and a copy
	// of the request each. WithClient and WithDialect on a derived context take precedence.
	client     Client
	hasClient  bool
	dialect    Dialect
	hasDialect bool
}

// SetClient records the request's resolved client (see ClientOf).
func (i *Info) SetClient(c Client) { i.client, i.hasClient = c, true }

// SetDialect records the request's dialect in its bookkeeping (see DialectOf); a request without
// bookkeeping gets a context carrying the dialect instead.
func SetDialect(r *http.Request, d Dialect) *http.Request {
	if i, ok := r.Context().Value(infoKey).(*Info); ok {
		i.dialect, i.hasDialect = d, true
		return r
	}
	return r.WithContext(WithDialect(r.Context(), d))
}

// WithInfo attaches request bookkeeping.
func WithInfo(ctx context.Context, i *Info) context.Context {
	return context.WithValue(ctx, infoKey, i)
}

// InfoOf returns the request's bookkeeping (never nil).
func InfoOf(r *http.Request) *Info { return InfoFrom(r.Context()) }

// InfoFrom returns the bookkeeping of the request a context belongs to (never nil; empty outside a
// request).
func InfoFrom(ctx context.Context) *Info {
	if i, ok := ctx.Value(infoKey).(*Info); ok {
		return i
	}
	return &Info{}
}

// SetRoute names the matched route for metrics and logs.
func SetRoute(r *http.Request, route string) { InfoOf(r).Route = route }

// WithDialect records the dialect.
func WithDialect(ctx context.Context, d Dialect) context.Context {
	return context.WithValue(ctx, dialectKey, d)
}

// DialectOf returns the request's dialect.
func DialectOf(r *http.Request) Dialect {
	ctx := r.Context()
	if d, ok := ctx.Value(dialectKey).(Dialect); ok {
		return d
	}
	if i, ok := ctx.Value(infoKey).(*Info); ok && i.hasDialect {
		return i.dialect
	}
	return V1
}

// WithCaller records the authenticated caller.
func WithCaller(ctx context.Context, c *auth.Caller) context.Context {
	return context.WithValue(ctx, callerKey, c)
}

// CallerOf returns the caller (an anonymous caller when authentication did not run).
func CallerOf(r *http.Request) *auth.Caller {
	if c, ok := r.Context().Value(callerKey).(*auth.Caller); ok {
		return c
	}
	return &auth.Caller{}
}

// JSON writes v as compact JSON with the status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // the client went away; nothing to do
}

// Error writes an error in the request's dialect: v1 {"code":N,"error":"Error: msg"}, v2 {"error":"msg"}.
func Error(w http.ResponseWriter, r *http.Request, status int, msg string) {
	ErrorDialect(w, DialectOf(r), status, msg)
}

// ErrorDialect writes an error in the given dialect.
func ErrorDialect(w http.ResponseWriter, d Dialect, status int, msg string) {
	if d == V2 {
		JSON(w, status, struct {
			Error string `json:"error"`
		}{msg})
		return
	}
	// v1 messages carry the JavaScript error prefix; keep one already present (TypeError: ...).
	if !hasErrorPrefix(msg) {
		msg = "Error: " + msg
	}
	JSON(w, status, struct {
		Code  int    `json:"code"`
		Error string `json:"error"`
	}{status, msg})
}

func hasErrorPrefix(msg string) bool {
	name, _, ok := strings.Cut(msg, ": ")
	return ok && strings.HasSuffix(name, "Error") && !strings.ContainsAny(name, " \t")
}

// StatusError is an error with an HTTP status, for handlers that return errors.
type StatusError struct {
	Status int
	Msg    string
	Err    error
}

func (e *StatusError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Msg, e.Err)
	}
	return e.Msg
}

func (e *StatusError) Unwrap() error { return e.Err }

// Errorf builds a StatusError.
func Errorf(status int, format string, args ...any) *StatusError {
	return &StatusError{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Messages used in several places.
const (
	MsgBodyTooLarge = "Request body maximum size limit was exceeded."
	MsgTimeout      = "The request has timed out."
	MsgUnauthorized = "Unauthorized"
	MsgNotFound     = "Not Found"
	MsgInternal     = "Internal Server Error"
)

// ReadJSON decodes a JSON request body into dst. The body was already bounded by the server's limit;
// errors come back as *StatusError (400 for malformed JSON, 413 past the limit).
func ReadJSON(r *http.Request, dst any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &StatusError{Status: http.StatusRequestEntityTooLarge, Msg: MsgBodyTooLarge, Err: err}
		}
		return &StatusError{Status: http.StatusBadRequest, Msg: "The request body could not be read.", Err: err}
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return &StatusError{Status: http.StatusBadRequest, Msg: "The request body is empty; expected a JSON object."}
	}
	// JSON.parse semantics (package jsonx): exact member names, one value, no duplicate names.
	if err := jsonx.UnmarshalUseNumber(b, dst); err != nil {
		return &StatusError{Status: http.StatusBadRequest, Msg: "The request body is not valid JSON: " + jsonErrMsg(err), Err: err}
	}
	return nil
}

func jsonErrMsg(err error) string {
	switch {
	case errors.Is(err, jsonx.ErrTrailing):
		return "the body must hold a single JSON value"
	case errors.Is(err, jsonx.ErrDuplicate), errors.Is(err, jsonx.ErrEncoding), errors.Is(err, jsonx.ErrDepth), errors.Is(err, jsonx.ErrSyntax):
		return strings.TrimPrefix(err.Error(), "jsonx: ")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at offset %d", se.Error(), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
		}
		return fmt.Sprintf("expected %s", te.Type)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return "malformed"
}

// WriteError writes any error: a *StatusError with its status and message, anything else as 500 (the
// detail is the caller's to log, never the client's to see).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var se *StatusError
	if errors.As(err, &se) {
		Error(w, r, se.Status, se.Msg)
		return
	}
	Error(w, r, http.StatusInternalServerError, MsgInternal)
}

// MethodNotAllowed answers 405 with the Allow header.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request, allow ...string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	Error(w, r, http.StatusMethodNotAllowed, "Method Not Allowed")
}

// containsFold reports whether substr (lower-case ASCII) is in s, ASCII case-insensitively.
func containsFold(s, substr string) bool {
	for i := 0; i+len(substr) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(substr)], substr) {
			return true
		}
	}
	return false
}

// ReadOnly starts a read-only admin endpoint mounted at route (e.g. "/admin/audit"): it labels the
// request's route, forbids caching, answers 405 to anything but GET and HEAD, and returns the
// lower-cased path below route without slashes. ok is false when the response has been written.
func ReadOnly(w http.ResponseWriter, r *http.Request, route string) (rest string, ok bool) {
	SetRoute(r, route)
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		MethodNotAllowed(w, r, "GET")
		return "", false
	}
	rest = strings.Trim(strings.ToLower(r.URL.Path), "/")
	return strings.TrimPrefix(strings.TrimPrefix(rest, strings.Trim(route, "/")), "/"), true
}
