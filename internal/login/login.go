// Package login serves provider login on both route families: Mobile Services v1 (/login/{provider},
// completion at /login/done) and Mobile Apps / App Service v2 (/.auth/login/{provider}, completion at
// /.auth/login/done, plus /.auth/refresh and /.auth/logout), in the server flow (browser redirect to
// the provider and back) and the client flow (an app posts the provider's token).
//
// Wire format kept from the originals: the success body {"user":{"userId":"<Provider>:<id>"},
// "authenticationToken":"…"}, 302 to …/done#token=<JSON> or #error=<message>, the LoginCompleted
// envelope posted by the browser completion page, the wams_* cookie name and the original messages.
//
// Behaviour fixed (spec §7.1 items 1–4 and 7–10): the flow's state, nonce, PKCE verifier and
// completion target live in one AEAD-sealed, short-lived, single-use cookie (HttpOnly, Secure,
// SameSite=Lax, Path=/login or /.auth) that cannot be forged, read or replayed; a malformed cookie is
// an error message, never a crash; the callback and completion URLs come from the configured public
// URL, never the Host header; completion origins and redirect targets must be on an allowlist; every
// value on the completion page is escaped for its context by html/template; provider calls are
// bounded in time.
package login

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/provider"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/user"
)

// Minter issues app tokens (auth.Minter).
type Minter interface {
	Mint(r auth.MintRequest) (string, time.Time, error)
}

// Options configure the login handlers.
type Options struct {
	Providers *provider.Registry
	Users     *user.Directory
	// SetDisabled, when set, is what POST /admin/users/{id}/disable|enable runs (the wiring passes
	// account.SetUserDisabled, which changes a built-in account with its user; an unknown id is an
	// error matching user.ErrNotFound). Nil: the directory's Disable and Enable.
	SetDisabled func(ctx context.Context, id string, disabled bool) error
	Minter      Minter
	// Sealer seals the flow cookie (purpose "login flow").
	Sealer *user.Sealer
	// PublicURL is the external base URL (config public_url); the server flow is refused without it.
	PublicURL string
	// AllowOrigin is the cross-domain whitelist (completion_origin must pass it).
	AllowOrigin func(origin string) bool
	// AllowedRedirects are further post-login targets: exact URLs or prefixes ending in "/".
	AllowedRedirects []string
	// PackageSID is the Windows Store package SID for Windows 8 single sign-on (sso_end_uri).
	PackageSID    string
	StateTTL      time.Duration
	RefreshTokens bool
	Now           func() time.Time
	Log           *slog.Logger
}

// Handler serves the login routes.
type Handler struct {
	o Options
}

// New checks the options and builds the handler.
func New(o Options) (*Handler, error) {
	if o.Users == nil || o.Minter == nil || o.Sealer == nil {
		return nil, errors.New("login: Users, Minter and Sealer are required")
	}
	if o.Providers == nil {
		o.Providers, _ = provider.NewRegistry()
	}
	if o.AllowOrigin == nil {
		o.AllowOrigin = func(string) bool { return false }
	}
	if o.StateTTL <= 0 {
		o.StateTTL = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.PublicURL = strings.TrimSuffix(o.PublicURL, "/")
	return &Handler{o: o}, nil
}

// family is a route family.
type family int

const (
	v1 family = iota
	v2
)

func (f family) loginPrefix() string {
	if f == v2 {
		return "/.auth/login"
	}
	return "/login"
}

func (f family) cookiePath() string {
	if f == v2 {
		return "/.auth"
	}
	return "/login"
}

// fail writes a JSON error in the family's shape: v1 {"code":N,"error":"Error: msg"}, v2 {"error":"msg"}.
func (f family) fail(w http.ResponseWriter, status int, msg string) {
	d := httpx.V1
	if f == v2 {
		d = httpx.V2
	}
	httpx.ErrorDialect(w, d, status, msg)
}

// V1 serves /login, /login/done and /login/{provider} (mount on the "login" prefix).
func (h *Handler) V1() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.Trim(strings.TrimPrefix(strings.ToLower(r.URL.Path), "/login"), "/")
		if rest == "" {
			// POST /login is the legacy Live SDK login (microsoftaccount).
			if r.Method != http.MethodPost {
				httpx.MethodNotAllowed(w, r, "POST")
				return
			}
			h.clientFlow(w, r, v1, "microsoftaccount")
			return
		}
		if rest == "done" {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				httpx.MethodNotAllowed(w, r, "GET")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			return
		}
		if strings.Contains(rest, "/") {
			v1.fail(w, http.StatusNotFound, httpx.MsgNotFound)
			return
		}
		h.route(w, r, v1, rest, false)
	})
}

// V2 serves /.auth/login/done, /.auth/login/{provider} and /.auth/login/{provider}/callback (mount
// on the "/.auth/login" prefix).
func (h *Handler) V2() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.Trim(strings.TrimPrefix(strings.ToLower(r.URL.Path), "/.auth/login"), "/")
		switch {
		case rest == "":
			if r.Method != http.MethodPost {
				httpx.MethodNotAllowed(w, r, "POST")
				return
			}
			h.clientFlow(w, r, v2, "microsoftaccount")
			return
		case rest == "done":
			h.donePage(w, r)
			return
		case rest == "iframereceiver":
			h.iframeReceiver(w, r)
			return
		}
		name, sub, _ := strings.Cut(rest, "/")
		if sub != "" && sub != "callback" {
			v2.fail(w, http.StatusNotFound, httpx.MsgNotFound)
			return
		}
		if name == "windowsazureactivedirectory" {
			name = "aad"
		}
		h.route(w, r, v2, name, sub == "callback")
	})
}

// route dispatches a provider route: POST is the client flow (or a form_post callback), GET the
// server flow's start or its callback.
func (h *Handler) route(w http.ResponseWriter, r *http.Request, f family, name string, callbackPath bool) {
	httpx.SetRoute(r, f.loginPrefix()+"/{provider}")
	p, ok := h.o.Providers.Get(name)
	if !ok {
		f.fail(w, http.StatusUnauthorized, fmt.Sprintf("Authentication with '%s' is not supported.", clipName(name)))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		params := r.URL.Query()
		if callbackPath || p.IsCallback(params) {
			h.callback(w, r, f, p, params)
			return
		}
		h.start(w, r, f, p)
	case http.MethodPost:
		if isForm(r) {
			// Sign in with Apple's response_mode=form_post callback.
			if err := r.ParseForm(); err != nil {
				f.fail(w, http.StatusBadRequest, "The request body could not be read.")
				return
			}
			if callbackPath || p.IsCallback(r.PostForm) {
				h.callback(w, r, f, p, r.PostForm)
				return
			}
		}
		h.clientFlow(w, r, f, p.Name())
	default:
		httpx.MethodNotAllowed(w, r, "GET", "POST")
	}
}

func isForm(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded")
}

func clipName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\'' || r == '"' || r == '<' || r == '>' {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// Success is the login response body (and the #token= payload).
type Success struct {
	User struct {
		UserID string `json:"userId"`
	} `json:"user"`
	AuthenticationToken string `json:"authenticationToken"`
	RefreshToken        string `json:"refreshToken,omitempty"`
}

// errDisabled is shown to a disabled user.
const msgDisabled = "The user account is disabled."

// complete links the identity, mints the app token (and a refresh token when enabled). On failure it
// returns the status and the message for the client.
func (h *Handler) complete(ctx context.Context, id *provider.Identity) (*Success, int, string) {
	in := user.LinkInput{Provider: id.Provider, Issuer: id.Issuer, Subject: id.Subject, Claims: id.Claims}
	if id.AccessToken != "" || id.RefreshToken != "" || id.AccessTokenSecret != "" {
		in.Tokens = &user.ProviderTokens{AccessToken: id.AccessToken, AccessTokenSecret: id.AccessTokenSecret,
			RefreshToken: id.RefreshToken, IDToken: id.IDToken, ExpiresAt: id.ExpiresAt}
	}
	u, err := h.o.Users.Login(ctx, in)
	if errors.Is(err, user.ErrDisabled) {
		return nil, http.StatusForbidden, msgDisabled
	}
	if errors.Is(err, user.ErrBadInput) {
		// An identity we cannot store (a subject over 255 bytes, ...) is the token's fault: 401.
		h.o.Log.Info("login: identity refused", "provider", id.Provider, "reason", err.Error())
		return nil, http.StatusUnauthorized, fmt.Sprintf("The %s identity cannot be used: %s.", id.Provider, strings.TrimPrefix(err.Error(), user.ErrBadInput.Error()+": "))
	}
	if err != nil {
		h.o.Log.Error("login: linking the identity failed", "provider", id.Provider, "err", err)
		return nil, http.StatusInternalServerError, httpx.MsgInternal
	}
	s, err := h.mint(ctx, u.ID, id.Provider, true)
	if err != nil {
		h.o.Log.Error("login: minting failed", "provider", id.Provider, "err", err)
		return nil, http.StatusInternalServerError, httpx.MsgInternal
	}
	return s, http.StatusOK, ""
}

func (h *Handler) mint(ctx context.Context, uid, aud string, withRefresh bool) (*Success, error) {
	tok, _, err := h.o.Minter.Mint(auth.MintRequest{UserID: uid, Audience: aud})
	if err != nil {
		return nil, err
	}
	s := &Success{AuthenticationToken: tok}
	s.User.UserID = uid
	if withRefresh && h.o.RefreshTokens {
		if s.RefreshToken, err = h.o.Users.IssueRefresh(ctx, uid, aud); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// providerStatus maps a provider failure to the HTTP status of a client-flow answer.
func providerStatus(err error) int {
	switch provider.KindOf(err) {
	case provider.KindUnavailable:
		return http.StatusBadGateway
	case provider.KindUnsupported:
		return http.StatusMethodNotAllowed
	default:
		return http.StatusUnauthorized
	}
}

// clientFlow is POST /login/{p} and POST /.auth/login/{p}: the app posts the provider's token.
func (h *Handler) clientFlow(w http.ResponseWriter, r *http.Request, f family, name string) {
	httpx.SetRoute(r, f.loginPrefix()+"/{provider}")
	p, ok := h.o.Providers.Get(name)
	if !ok {
		f.fail(w, http.StatusUnauthorized, fmt.Sprintf("Authentication with '%s' is not supported.", clipName(name)))
		return
	}
	var body map[string]any
	if err := httpx.ReadJSON(r, &body); err != nil {
		var se *httpx.StatusError
		if errors.As(err, &se) {
			f.fail(w, se.Status, se.Msg)
			return
		}
		f.fail(w, http.StatusBadRequest, "The request body is not valid JSON.")
		return
	}
	if body == nil {
		f.fail(w, http.StatusBadRequest, "The request body must be a JSON object.")
		return
	}
	id, err := p.ClientLogin(r.Context(), body)
	if err != nil {
		h.logProviderError(r, p, "client flow", err)
		f.fail(w, providerStatus(err), err.Error())
		return
	}
	s, status, msg := h.complete(r.Context(), id)
	if s == nil {
		f.fail(w, status, msg)
		return
	}
	h.o.Log.Info("login", "flow", "client", "provider", p.Name(), "user_id", s.User.UserID, "request_id", httpx.InfoOf(r).RequestID)
	httpx.JSON(w, http.StatusOK, s)
}

func (h *Handler) logProviderError(r *http.Request, p provider.Provider, flow string, err error) {
	level := slog.LevelInfo
	if provider.KindOf(err) == provider.KindUnavailable {
		level = slog.LevelWarn
	}
	cause := err
	if u := errors.Unwrap(err); u != nil {
		cause = u
	}
	h.o.Log.Log(r.Context(), level, "login refused", "flow", flow, "provider", p.Name(), "reason", err.Error(),
		"cause", fmt.Sprint(cause), "request_id", httpx.InfoOf(r).RequestID)
}

// stateID is the single-use key of a flow: a hash, so the table never holds the state itself.
func stateID(state string) string {
	sum := sha256.Sum256([]byte("login-state\x00" + state))
	return hex.EncodeToString(sum[:])
}

func constantEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// encodeURIComponent escapes like JavaScript's function of that name, which is what clients undo with
// decodeURIComponent (url.QueryEscape's "+" for space would survive decoding).
func encodeURIComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func marshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// allowedRedirect reports whether a post-login redirect target is allowed: our own public URL, an
// exact configured URL, or below a configured prefix ending in "/".
func (h *Handler) allowedRedirect(target string) bool {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(target, "\\\r\n\t ") {
		return false
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		return false
	}
	if h.o.PublicURL != "" && (target == h.o.PublicURL || strings.HasPrefix(target, h.o.PublicURL+"/")) {
		return true
	}
	for _, a := range h.o.AllowedRedirects {
		if target == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(target, a)) {
			return true
		}
	}
	return false
}

// MountOn mounts every login route on the server: /login (v1), /.auth/login, /.auth/refresh,
// /.auth/logout (v2) and /admin/users (master key).
func (h *Handler) MountOn(s *server.Server) {
	s.Mount("login", "/login/{provider}", h.V1())
	s.Mount("/.auth/login", "/.auth/login/{provider}", h.V2())
	s.MountPath("/.auth/refresh", "/.auth/refresh", h.Refresh())
	s.MountPath("/.auth/logout", "/.auth/logout", h.Logout())
	s.Mount("/admin/users", "/admin/users", server.RequirePermission(auth.Admin, h.Admin()))
}
