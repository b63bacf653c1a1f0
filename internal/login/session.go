package login

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/user"
)

func timeUnix(s int64) time.Time { return time.Unix(s, 0) }

const msgBadRefresh = "The refresh token is invalid, expired or revoked."

// Refresh serves /.auth/refresh. POST {"refresh_token": "..."} rotates a refresh token and returns a
// new app token with the new refresh token (reuse of a spent one revokes its family). With no refresh
// token, a still-valid app token (X-ZUMO-AUTH or Authorization: Bearer) is exchanged for a fresh one,
// as App Service's GET /.auth/refresh did; revoked tokens and disabled users were refused already by
// authentication.
func (h *Handler) Refresh() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			httpx.MethodNotAllowed(w, r, "GET", "POST")
			return
		}
		var rt string
		if r.Method == http.MethodPost && r.ContentLength != 0 {
			var body map[string]any
			if err := httpx.ReadJSON(r, &body); err != nil {
				var se *httpx.StatusError
				if errors.As(err, &se) {
					v2.fail(w, se.Status, se.Msg)
					return
				}
				v2.fail(w, http.StatusBadRequest, "The request body is not valid JSON.")
				return
			}
			rt, _ = body["refresh_token"].(string)
			if rt == "" {
				rt, _ = body["refreshToken"].(string)
			}
		}
		if rt != "" {
			res, err := h.o.Users.Refresh(r.Context(), rt)
			if err != nil {
				if errors.Is(err, user.ErrRefreshReused) {
					h.o.Log.Warn("refresh token reused: family revoked", "request_id", httpx.InfoOf(r).RequestID)
				}
				if !isRefreshRefusal(err) {
					h.o.Log.Error("refresh failed", "err", err)
					v2.fail(w, http.StatusInternalServerError, httpx.MsgInternal)
					return
				}
				v2.fail(w, http.StatusUnauthorized, msgBadRefresh)
				return
			}
			s, err := h.mint(r.Context(), res.UserID, res.Audience, false)
			if err != nil {
				v2.fail(w, http.StatusInternalServerError, httpx.MsgInternal)
				return
			}
			s.RefreshToken = res.RefreshToken
			httpx.JSON(w, http.StatusOK, s)
			return
		}
		c := httpx.CallerOf(r)
		if c.Claims == nil || c.UserID() == "" {
			v2.fail(w, http.StatusUnauthorized, "You must be logged in to use this application")
			return
		}
		if u, err := h.o.Users.Get(r.Context(), c.UserID()); err == nil && u.Disabled {
			v2.fail(w, http.StatusForbidden, msgDisabled)
			return
		}
		s, err := h.mint(r.Context(), c.UserID(), c.Claims.Aud, false)
		if err != nil {
			v2.fail(w, http.StatusInternalServerError, httpx.MsgInternal)
			return
		}
		httpx.JSON(w, http.StatusOK, s)
	})
}

func isRefreshRefusal(err error) bool {
	return errors.Is(err, user.ErrInvalidRefresh) || errors.Is(err, user.ErrRefreshReused) ||
		errors.Is(err, user.ErrRefreshExpired) || errors.Is(err, user.ErrDisabled)
}

// Logout serves /.auth/logout. App tokens carry no session id, so logging out with one ends every
// session of the user (all app tokens issued until now and all refresh tokens; every instance
// enforces it within the revocation poll interval). A refresh token given alone (POST
// {"refresh_token"}) ends just that session. GET with post_logout_redirect_uri (an allowed URL)
// redirects there afterwards.
func (h *Handler) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			httpx.MethodNotAllowed(w, r, "GET", "POST")
			return
		}
		redirect := r.URL.Query().Get("post_logout_redirect_uri")
		if redirect != "" {
			if strings.HasPrefix(redirect, "/") && !strings.HasPrefix(redirect, "//") {
				redirect = h.o.PublicURL + redirect
			}
			if !h.allowedRedirect(redirect) {
				v2.fail(w, http.StatusBadRequest, "The post_logout_redirect_uri is not an allowed redirect URL.")
				return
			}
		}
		var rt string
		if r.Method == http.MethodPost && r.ContentLength != 0 {
			var body map[string]any
			if err := httpx.ReadJSON(r, &body); err == nil {
				rt, _ = body["refresh_token"].(string)
			}
		}
		c := httpx.CallerOf(r)
		scope := "none"
		switch {
		case c.Claims != nil && c.UserID() != "":
			if err := h.o.Users.RevokeAll(r.Context(), c.UserID()); err != nil {
				h.o.Log.Error("logout failed", "err", err)
				v2.fail(w, http.StatusInternalServerError, httpx.MsgInternal)
				return
			}
			scope = "all"
		case rt != "":
			if err := h.o.Users.RevokeRefresh(r.Context(), rt); err != nil {
				h.o.Log.Error("logout failed", "err", err)
				v2.fail(w, http.StatusInternalServerError, httpx.MsgInternal)
				return
			}
			scope = "session"
		}
		h.o.Log.Info("logout", "scope", scope, "user_id", c.UserID(), "request_id", httpx.InfoOf(r).RequestID)
		if redirect != "" && r.Method == http.MethodGet {
			http.Redirect(w, r, redirect, http.StatusFound)
			return
		}
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "logged out", "scope": scope})
	})
}
