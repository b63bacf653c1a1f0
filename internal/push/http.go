package push

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/outage"
)

// HandlerOptions configure the /push endpoints.
type HandlerOptions struct {
	// App returns the current app directory (extensions/push.json permissions).
	App func() *appdir.App
	// Hook returns extensions/push.js's register hook (nil: none).
	Hook func() Hook
	// PublicURL is the external base URL for the Location header ("": from the request).
	PublicURL string
	Log       *slog.Logger
}

// Handler serves /push: v1 registrationids and registrations, v2 installations.
func (s *Service) Handler(o HandlerOptions) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &handler{s: s, o: o}
}

type handler struct {
	s *Service
	o HandlerOptions
}

func callerOf(r *http.Request) Caller {
	c := httpx.CallerOf(r)
	return Caller{UserID: c.UserID(), Admin: c.IsAdmin(), Auth: c}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/")
	if len(rest) >= 4 && strings.EqualFold(rest[:4], "push") {
		rest = strings.TrimPrefix(rest[4:], "/")
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	var app *appdir.App
	if h.o.App != nil {
		app = h.o.App()
	}
	perm := app.PushPermission(rest, r.Method)
	if !app.PushDeclared() && httpx.DialectOf(r) == httpx.V2 {
		// Mobile Apps has no application key and its server let any client register an
		// installation; extensions/push.json can require more.
		perm = auth.Public
	}
	if !httpx.CallerOf(r).Allows(perm) {
		if httpx.DialectOf(r) == httpx.V2 {
			httpx.Error(w, r, http.StatusUnauthorized, "You must be logged in to use this application")
		} else {
			httpx.Error(w, r, http.StatusUnauthorized, httpx.MsgUnauthorized)
		}
		return
	}
	switch {
	case len(segs) == 1 && strings.EqualFold(segs[0], "registrationids"):
		httpx.SetRoute(r, "push/registrationids")
		if r.Method != http.MethodPost {
			httpx.MethodNotAllowed(w, r, http.MethodPost)
			return
		}
		w.Header().Set("Location", h.base(r)+"/push/registrations/"+h.s.NewRegistrationID())
		w.WriteHeader(http.StatusCreated)
	case len(segs) == 1 && strings.EqualFold(segs[0], "registrations"):
		httpx.SetRoute(r, "push/registrations")
		if r.Method != http.MethodGet {
			httpx.MethodNotAllowed(w, r, http.MethodGet)
			return
		}
		q := r.URL.Query()
		list, err := h.s.ListV1(r.Context(), q.Get("platform"), q.Get("deviceId"))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, list)
	case len(segs) == 2 && strings.EqualFold(segs[0], "registrations"):
		httpx.SetRoute(r, "push/registrations/{id}")
		h.registration(w, r, segs[1])
	case len(segs) == 2 && strings.EqualFold(segs[0], "installations"):
		httpx.SetRoute(r, "push/installations/{id}")
		h.installation(w, r, segs[1])
	default:
		httpx.SetRoute(r, "push")
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
	}
}

func (h *handler) base(r *http.Request) string {
	if h.o.PublicURL != "" {
		return strings.TrimSuffix(h.o.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (h *handler) registration(w http.ResponseWriter, r *http.Request, id string) {
	c := callerOf(r)
	switch r.Method {
	case http.MethodPut:
		var in V1Registration
		if err := httpx.ReadJSON(r, &in); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		var hook Hook
		if h.o.Hook != nil {
			hook = h.o.Hook()
		}
		if err := h.s.PutV1(r.Context(), c, id, in, r.Header.Get("X-ZUMO-INSTALLATION-ID"), hook); err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		if err := h.s.DeleteV1(r.Context(), c, id); err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		httpx.MethodNotAllowed(w, r, http.MethodPut, http.MethodDelete)
	}
}

func (h *handler) installation(w http.ResponseWriter, r *http.Request, id string) {
	c := callerOf(r)
	switch r.Method {
	case http.MethodPut:
		var in Installation
		if err := httpx.ReadJSON(r, &in); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if err := h.s.PutInstallation(r.Context(), c, id, in); err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		if err := h.s.DeleteInstallation(r.Context(), c, id); err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		httpx.MethodNotAllowed(w, r, http.MethodPut, http.MethodDelete)
	}
}

// fail answers an error: 400 for bad input, 403 for another user's registration, 404, 503 when the
// database is unreachable, 500 otherwise (logged, not shown).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var in *InputError
	var fb *ForbiddenError
	var hk *HookError
	var ee *ExprError
	switch {
	case errors.As(err, &in):
		httpx.Error(w, r, http.StatusBadRequest, in.Msg)
	case errors.As(err, &ee):
		httpx.Error(w, r, http.StatusBadRequest, ee.Error())
	case errors.As(err, &hk):
		httpx.Error(w, r, http.StatusBadRequest, hk.Msg)
	case errors.As(err, &fb):
		httpx.Error(w, r, http.StatusForbidden, fb.Msg)
	case errors.Is(err, ErrNotFound):
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
	case outage.Unavailable(err), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "5")
		httpx.Error(w, r, http.StatusServiceUnavailable, "The service is temporarily unavailable.")
	default:
		h.o.Log.Error("push: request failed", "route", httpx.InfoOf(r).Route, "error", err)
		httpx.Error(w, r, http.StatusInternalServerError, httpx.MsgInternal)
	}
}
