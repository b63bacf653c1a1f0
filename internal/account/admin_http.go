package account

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
)

// AdminPrefix is where AdminHandler is mounted (master key only).
const AdminPrefix = "/admin/accounts"

// AdminHandler is the admin HTTP API (master key):
//
//	GET  /admin/accounts?after=ID&limit=N     list (ordered by id; "next" continues)
//	POST /admin/accounts                      add {"email","password"?,"emailVerified"?} → 201
//	GET  /admin/accounts/{ref}                show (ref: id, email address or user id)
//	POST /admin/accounts/{ref}/disable        disable (revokes every token) / enable
//	POST /admin/accounts/{ref}/enable
//	POST /admin/accounts/{ref}/password       set the password {"password"} → 204
//	POST /admin/accounts/import[?format=csv]  import a CSV or JSON file (FORMATS.md) → per-row report
type AdminHandler struct {
	Service *Service
}

// View is an account as the admin API and CLI show it (never the hash).
type View struct {
	ID             string `json:"id"`
	Email          string `json:"email"`
	UserID         string `json:"userId"`
	LegacyUserID   string `json:"legacyUserId,omitempty"`
	EmailVerified  bool   `json:"emailVerified"`
	Disabled       bool   `json:"disabled"`
	PasswordScheme string `json:"passwordScheme"` // argon2id, bcrypt, pbkdf2-sha1, …, or none
	NeedsRehash    bool   `json:"needsRehash"`    // upgraded at the next successful login
	CreatedAt      string `json:"createdAt"`
	UpdatedAt      string `json:"updatedAt"`
	LastLoginAt    string `json:"lastLoginAt,omitempty"`
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ViewOf renders an account.
func (s *Service) ViewOf(a *Account) View {
	v := View{ID: a.ID, Email: a.Email, UserID: a.TokenUserID(), LegacyUserID: a.LegacyUserID, EmailVerified: a.EmailVerified,
		Disabled: a.Disabled, PasswordScheme: "none", CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt), LastLoginAt: ts(a.LastLoginAt)}
	if a.PasswordHash != "" {
		if info, err := s.o.Hasher.Inspect(a.PasswordHash); err == nil {
			v.PasswordScheme, v.NeedsRehash = string(info.Scheme), info.NeedsRehash
		} else {
			v.PasswordScheme = "unusable"
		}
	}
	return v
}

func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	server.RequirePermission(auth.Admin, http.HandlerFunc(h.serve)).ServeHTTP(w, r)
}

func (h *AdminHandler) serve(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(r.URL.EscapedPath()[min(len(AdminPrefix), len(r.URL.EscapedPath())):], "/")
	ctx := r.Context()
	if rest == "" {
		switch r.Method {
		case http.MethodGet:
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			list, err := h.Service.List(ctx, r.URL.Query().Get("after"), limit)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			out := struct {
				Accounts []View `json:"accounts"`
				Next     string `json:"next,omitempty"`
			}{Accounts: []View{}}
			for _, a := range list {
				out.Accounts = append(out.Accounts, h.Service.ViewOf(a))
			}
			if limit <= 0 || limit > 1000 {
				limit = 100
			}
			if len(list) == limit {
				out.Next = list[len(list)-1].ID
			}
			httpx.JSON(w, http.StatusOK, out)
		case http.MethodPost:
			var body struct {
				Email         string `json:"email"`
				Password      string `json:"password"`
				EmailVerified bool   `json:"emailVerified"`
			}
			if err := httpx.ReadJSON(r, &body); err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			a, err := h.Service.Add(ctx, body.Email, body.Password, body.EmailVerified)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			v := h.Service.ViewOf(a)
			audit.Annotate(ctx, func(e *audit.Entry) { e.Target, e.After = v.ID, audit.Snapshot(v) })
			httpx.JSON(w, http.StatusCreated, v)
		default:
			httpx.MethodNotAllowed(w, r, "GET", "POST")
		}
		return
	}
	if rest == "import" {
		if r.Method != http.MethodPost {
			httpx.MethodNotAllowed(w, r, "POST")
			return
		}
		format := r.URL.Query().Get("format")
		if format == "" {
			switch ct := r.Header.Get("Content-Type"); {
			case strings.HasPrefix(ct, "text/csv"):
				format = "csv"
			case strings.HasPrefix(ct, "application/json"), strings.HasPrefix(ct, "application/x-ndjson"):
				format = "json"
			}
		}
		rows, err := ParseImportFile(r.Body, format)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				httpx.Error(w, r, http.StatusRequestEntityTooLarge, httpx.MsgBodyTooLarge)
				return
			}
			httpx.Error(w, r, http.StatusBadRequest, errText(err))
			return
		}
		sum := h.Service.Import(ctx, rows)
		// The audit entry (account.import) carries the counts, never a row.
		audit.Annotate(ctx, func(e *audit.Entry) {
			e.After = audit.Snapshot(map[string]int{"rows": len(sum.Rows), "created": sum.Created, "exists": sum.Exists, "failed": sum.Errors})
		})
		httpx.JSON(w, http.StatusOK, sum)
		return
	}
	refEsc, action, _ := strings.Cut(rest, "/")
	ref, err := url.PathUnescape(refEsc)
	if err != nil {
		httpx.Error(w, r, http.StatusBadRequest, "The account reference is not valid.")
		return
	}
	a, err := h.Service.Find(ctx, ref)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch action {
	case "":
		if r.Method != http.MethodGet {
			httpx.MethodNotAllowed(w, r, "GET")
			return
		}
		httpx.JSON(w, http.StatusOK, h.Service.ViewOf(a))
	case "disable", "enable":
		if r.Method != http.MethodPost {
			httpx.MethodNotAllowed(w, r, "POST")
			return
		}
		// The account and its user in the directory change together (the decision of the CLI and the
		// console; the directory is the one the service links accounts into).
		if _, err := SetUserDisabled(ctx, h.Service, nil, a.ID, action == "disable"); err != nil {
			h.fail(w, r, err)
			return
		}
		a, err = h.Service.Find(ctx, a.ID)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, h.Service.ViewOf(a))
	case "password":
		if r.Method != http.MethodPost {
			httpx.MethodNotAllowed(w, r, "POST")
			return
		}
		var body struct {
			Password string `json:"password"`
		}
		if err := httpx.ReadJSON(r, &body); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if err := h.Service.SetPassword(ctx, a.ID, body.Password); err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "mfa":
		switch r.Method {
		case http.MethodGet:
			st, err := h.Service.AdminMFAStatus(ctx, a.ID)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			httpx.JSON(w, http.StatusOK, st)
		case http.MethodDelete:
			if err := h.Service.ResetMFA(ctx, a.ID); err != nil {
				h.fail(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			httpx.MethodNotAllowed(w, r, "GET", "DELETE")
		}
	default:
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
	}
}

func (h *AdminHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *password.PolicyError
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoUser):
		httpx.Error(w, r, http.StatusNotFound, "No such account.")
	case errors.Is(err, ErrDuplicate):
		httpx.Error(w, r, http.StatusConflict, "An account with this email address already exists.")
	case errors.As(err, &pe):
		httpx.Error(w, r, http.StatusBadRequest, policyMessage(pe))
	case errors.Is(err, ErrMissing):
		httpx.Error(w, r, http.StatusBadRequest, "The field '"+strings.TrimPrefix(err.Error(), ErrMissing.Error()+": ")+"' is required.")
	case errors.Is(err, password.ErrBusy):
		w.Header().Set("Retry-After", "1")
		httpx.Error(w, r, http.StatusServiceUnavailable, "The server is busy. Try again shortly.")
	default:
		(&Handler{Service: h.Service}).fail(w, r, err)
	}
}
