package login

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/user"
)

// UserView is a user as the admin API and CLI show it.
type UserView struct {
	ID          string         `json:"id"`
	Provider    string         `json:"provider"`
	Disabled    bool           `json:"disabled"`
	CreatedAt   time.Time      `json:"createdAt"`
	LastLoginAt time.Time      `json:"lastLoginAt,omitzero"`
	Identities  []IdentityView `json:"identities,omitempty"`
}

// IdentityView is a linked identity (provider tokens are never shown; hasProviderTokens says whether
// some are kept).
type IdentityView struct {
	Provider          string         `json:"provider"`
	Issuer            string         `json:"issuer"`
	Subject           string         `json:"subject"`
	Claims            map[string]any `json:"claims"`
	HasProviderTokens bool           `json:"hasProviderTokens"`
	CreatedAt         time.Time      `json:"createdAt"`
	UpdatedAt         time.Time      `json:"updatedAt"`
}

// ViewOf renders a user and its identities.
func ViewOf(u *user.User, ids []user.Identity) UserView {
	v := UserView{ID: u.ID, Provider: u.Provider, Disabled: u.Disabled, CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt}
	for _, id := range ids {
		v.Identities = append(v.Identities, IdentityView{Provider: id.Provider, Issuer: id.Issuer, Subject: id.Subject, Claims: id.Claims,
			HasProviderTokens: id.HasTokens, CreatedAt: id.CreatedAt, UpdatedAt: id.UpdatedAt})
	}
	return v
}

// Admin serves /admin/users (mount behind the admin permission):
//
//	GET  /admin/users?after=<id>&limit=<n>   {"users":[...],"next":"<id>"}
//	GET  /admin/users/<id>                   the user with its identities
//	POST /admin/users/<id>/disable|enable|revoke
func (h *Handler) Admin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.SetRoute(r, "/admin/users")
		// The server matched the prefix case-insensitively; the id keeps its case.
		rest := ""
		if prefix := "/admin/users"; len(r.URL.Path) > len(prefix) {
			rest = strings.TrimPrefix(r.URL.Path[len(prefix):], "/")
		}
		ctx := r.Context()
		if rest == "" {
			if r.Method != http.MethodGet {
				httpx.MethodNotAllowed(w, r, "GET")
				return
			}
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			if limit <= 0 || limit > 1000 {
				limit = 100
			}
			us, err := h.o.Users.List(ctx, r.URL.Query().Get("after"), limit)
			if err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			out := struct {
				Users []UserView `json:"users"`
				Next  string     `json:"next,omitempty"`
			}{Users: []UserView{}}
			for i := range us {
				out.Users = append(out.Users, ViewOf(&us[i], nil))
			}
			if len(us) == limit {
				out.Next = us[len(us)-1].ID
			}
			httpx.JSON(w, http.StatusOK, out)
			return
		}
		id, action := rest, ""
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			switch a := rest[i+1:]; a {
			case "disable", "enable", "revoke":
				id, action = rest[:i], a
			}
		}
		if action == "" {
			if r.Method != http.MethodGet {
				httpx.MethodNotAllowed(w, r, "GET")
				return
			}
			u, err := h.o.Users.Get(ctx, id)
			if errors.Is(err, user.ErrNotFound) {
				httpx.Error(w, r, http.StatusNotFound, "No user with that id.")
				return
			}
			if err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			ids, err := h.o.Users.Identities(ctx, id)
			if err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			httpx.JSON(w, http.StatusOK, ViewOf(u, ids))
			return
		}
		if r.Method != http.MethodPost {
			httpx.MethodNotAllowed(w, r, "POST")
			return
		}
		var err error
		switch action {
		case "disable", "enable":
			if h.o.SetDisabled != nil {
				err = h.o.SetDisabled(ctx, id, action == "disable")
			} else if action == "disable" {
				err = h.o.Users.Disable(ctx, id)
			} else {
				err = h.o.Users.Enable(ctx, id)
			}
		case "revoke":
			if _, err = h.o.Users.Get(ctx, id); err == nil {
				err = h.o.Users.RevokeAll(ctx, id)
			}
		}
		if errors.Is(err, user.ErrNotFound) {
			httpx.Error(w, r, http.StatusNotFound, "No user with that id.")
			return
		}
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		h.o.Log.Info("admin: user "+action, "user_id", id, "request_id", httpx.InfoOf(r).RequestID)
		u, err := h.o.Users.Get(ctx, id)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, ViewOf(u, nil))
	})
}
