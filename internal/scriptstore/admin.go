package scriptstore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/script"
)

// AdminHandler serves the script edits under /admin/scripts (mount it behind the master key):
//
//	GET    /admin/scripts                  every script: deployed files and edits
//	GET    /admin/scripts/{path}           one script: the source that serves, the edit, the history
//	GET    /admin/scripts/{path}?revision=N a kept revision with its source
//	PUT    /admin/scripts/{path}           save: the body is the source (raw), or {"source": "..."} as JSON
//	POST   /admin/scripts/{path}           restore a kept revision: {"revision": N}
//	DELETE /admin/scripts/{path}           revert to the deployed file
//
// A syntax error answers 422 {"error", "file", "line", "column"} and stores nothing. Changes go
// through the Editor (the console's code path too), which records the audit entry in the change's
// transaction; the audit middleware is told not to record them again.
type AdminHandler struct {
	Editor *Editor
	Log    *slog.Logger
}

const adminRoute = "/admin/scripts"

// saved is the answer to a save, restore or revert.
type saved struct {
	Edit
	// Loaded is false when the change is stored but this instance could not load the app (LoadError
	// says why; the previous version keeps serving).
	Loaded    bool   `json:"loaded"`
	LoadError string `json:"loadError,omitempty"`
}

func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	p := r.URL.Path
	if len(p) < len(adminRoute) || !strings.EqualFold(p[:len(adminRoute)], adminRoute) {
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	rel := strings.TrimPrefix(p[len(adminRoute):], "/")
	ctx := r.Context()
	if rel == "" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			httpx.MethodNotAllowed(w, r, "GET")
			return
		}
		list, err := h.Editor.List(ctx)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		rev, err := h.Editor.EditsRevision(ctx)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, map[string]any{"revision": rev, "scripts": list})
		return
	}
	if _, ok := ValidPath(rel); !ok {
		h.fail(w, r, ErrInvalidPath)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if q := r.URL.Query().Get("revision"); q != "" {
			n, err := strconv.ParseInt(q, 10, 64)
			if err != nil || n < 1 {
				httpx.Error(w, r, http.StatusBadRequest, "revision must be a positive integer.")
				return
			}
			e, err := h.Editor.Revision(ctx, rel, n)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			httpx.JSON(w, http.StatusOK, e)
			return
		}
		s, err := h.Editor.Show(ctx, rel)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, s)
	case http.MethodPut:
		audit.NoChange(ctx) // the editor records the entry with the change
		src, err := readSource(r)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		e, err := h.Editor.Save(ctx, audit.EntryFor(r), rel, src)
		h.done(w, r, e, err)
	case http.MethodPost:
		audit.NoChange(ctx)
		var body struct {
			Revision int64 `json:"revision"`
		}
		if err := httpx.ReadJSON(r, &body); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if body.Revision < 1 {
			httpx.Error(w, r, http.StatusBadRequest, `The body must be {"revision": N}: the kept revision to restore.`)
			return
		}
		e, err := h.Editor.Restore(ctx, audit.EntryFor(r), rel, body.Revision)
		h.done(w, r, e, err)
	case http.MethodDelete:
		audit.NoChange(ctx)
		e, err := h.Editor.Revert(ctx, audit.EntryFor(r), rel)
		h.done(w, r, e, err)
	default:
		httpx.MethodNotAllowed(w, r, "GET", "PUT", "POST", "DELETE")
	}
}

// readSource reads a PUT body: JSON {"source": "..."} when the content type says JSON, else the raw
// text. More than MaxSource bytes of source is 413.
func readSource(r *http.Request) (string, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		var body struct {
			Source *string `json:"source"`
		}
		if err := httpx.ReadJSON(r, &body); err != nil {
			return "", err
		}
		if body.Source == nil {
			return "", httpx.Errorf(http.StatusBadRequest, `The body must be {"source": "..."}, or the script itself with a text content type.`)
		}
		if len(*body.Source) > MaxSource {
			return "", httpx.Errorf(http.StatusRequestEntityTooLarge, "A script is at most 1 MiB.")
		}
		return *body.Source, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxSource+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", &httpx.StatusError{Status: http.StatusRequestEntityTooLarge, Msg: httpx.MsgBodyTooLarge, Err: err}
		}
		return "", &httpx.StatusError{Status: http.StatusBadRequest, Msg: "The request body could not be read.", Err: err}
	}
	if len(b) > MaxSource {
		return "", httpx.Errorf(http.StatusRequestEntityTooLarge, "A script is at most 1 MiB.")
	}
	return string(b), nil
}

func (h *AdminHandler) done(w http.ResponseWriter, r *http.Request, e Edit, err error) {
	var le *LoadError
	if err != nil && !errors.As(err, &le) {
		h.fail(w, r, err)
		return
	}
	e.Source = ""
	out := saved{Edit: e, Loaded: le == nil}
	if le != nil {
		out.LoadError = le.Err.Error()
	}
	httpx.JSON(w, http.StatusOK, out)
}

// Status maps an editor error to its HTTP status and client message (the console uses it too).
func Status(err error) (int, string) {
	var se *script.SyntaxError
	var ie *InvalidSourceError
	switch {
	case errors.As(err, &se):
		return http.StatusUnprocessableEntity, "The script has a syntax error; nothing was saved."
	case errors.As(err, &ie):
		return http.StatusBadRequest, ie.Msg
	case errors.Is(err, ErrInvalidPath):
		return http.StatusBadRequest, "Not a script path: a .js file below table/, api/, scheduler/ or shared/ (API and job names: letters, digits and underscores)."
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoScript):
		return http.StatusNotFound, "There is no such script, edit or revision."
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "A script is at most 1 MiB."
	case errors.Is(err, ErrTooMany):
		return http.StatusConflict, fmt.Sprintf("At most %d scripts may be edited at once; revert some first.", MaxEdits)
	}
	return http.StatusServiceUnavailable, "The script edits could not be read or stored; try again."
}

func (h *AdminHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := Status(err)
	var se *script.SyntaxError
	if errors.As(err, &se) {
		httpx.JSON(w, status, map[string]any{"error": se.Msg, "file": se.File, "line": se.Line, "column": se.Column})
		return
	}
	if status == http.StatusServiceUnavailable {
		log := h.Log
		if log == nil {
			log = slog.Default()
		}
		log.Error("script edit request failed", "request_id", httpx.InfoOf(r).RequestID, "err", err)
		w.Header().Set("Retry-After", "5")
	}
	httpx.Error(w, r, status, msg)
}
