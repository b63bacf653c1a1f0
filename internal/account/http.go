package account

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
)

// Route prefixes of the two route families. The handler serves everything below either.
const (
	V1Prefix = "/login/custom"
	V2Prefix = "/.auth/login/custom"
)

// Handler serves the accounts endpoints under V1Prefix and V2Prefix (see README, accounts section):
//
//	POST {prefix}                  login            {"email","password"}
//	POST {prefix}/register         register         {"email","password"}            → 202
//	POST {prefix}/logout           logout (token)   {"refreshToken"?,"everywhere"?}  → 204
//	POST {prefix}/password         change (token)   {"currentPassword","newPassword"}
//	POST {prefix}/reset            reset request    {"email"}                       → 202
//	GET  {prefix}/reset/confirm    the emailed link: a small HTML form
//	POST {prefix}/reset/confirm    reset confirm    {"token","password"} (or the form)
//	GET  {prefix}/verify           the emailed link: verifies, small HTML page
//	POST {prefix}/verify           verify           {"token"}
//	POST {prefix}/verify/resend    resend link      {"email"}                       → 202
type Handler struct {
	Service *Service
	// Auth verifies the app token of logout and password change: the server ignores tokens under
	// /login and /.auth/login (a stale token must not break a login), so these routes check their own.
	Auth *auth.Authenticator
	Log  *slog.Logger
	// PublicURL is the configured public_url: where the emailed sign-in page hands over the session
	// (…/login/done#token=), and whether cookies are Secure.
	PublicURL string
}

// Prefixes are the two mount points: srv.Mount(p, p, h) for each.
func (h *Handler) Prefixes() []string { return []string{V1Prefix, V2Prefix, PagePrefix} }

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// ServeHTTP dispatches by the path below the prefix.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.ToLower(r.URL.Path)
	orig := r.URL.Path
	switch {
	case strings.HasPrefix(p, PagePrefix):
		h.servePage(w, r, strings.TrimPrefix(p, PagePrefix))
		return
	case strings.HasPrefix(p, V2Prefix):
		p, orig = p[len(V2Prefix):], orig[len(V2Prefix):]
	case strings.HasPrefix(p, V1Prefix):
		p, orig = p[len(V1Prefix):], orig[len(V1Prefix):]
	default:
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	p = strings.TrimSuffix(p, "/")
	post := func(fn http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				httpx.MethodNotAllowed(w, r, "POST")
				return
			}
			fn(w, r)
		})
	}
	var next http.Handler
	switch p {
	case "":
		next = post(h.login)
	case "/register":
		next = post(h.register)
	case "/logout":
		next = h.signedIn(post(h.logout))
	case "/password":
		next = h.signedIn(post(h.changePassword))
	case "/reset":
		next = post(h.reset)
	case "/reset/confirm":
		next = http.HandlerFunc(h.resetConfirm)
	case "/verify":
		next = http.HandlerFunc(h.verify)
	case "/verify/resend":
		next = post(h.resend)
	case "/mfa":
		if r.Method == http.MethodGet {
			next = h.signedIn(http.HandlerFunc(h.mfaStatus))
		} else {
			next = post(h.mfaVerify)
		}
	case "/mfa/totp":
		next = h.signedIn(http.HandlerFunc(h.totp))
	case "/mfa/totp/confirm":
		next = h.signedIn(post(h.totpConfirm))
	case "/mfa/recovery":
		next = h.signedIn(post(h.recoveryCodes))
	case "/email":
		next = post(h.emailStart)
	case "/email/confirm":
		next = http.HandlerFunc(h.emailConfirm)
	case "/passkeys/register":
		next = h.signedIn(post(h.passkeyRegister))
	case "/passkeys/register/finish":
		next = h.signedIn(post(h.passkeyRegisterFinish))
	case "/passkeys/login":
		next = post(h.passkeyLogin)
	case "/passkeys/login/finish":
		next = post(h.passkeyLoginFinish)
	default:
		id, ok := strings.CutPrefix(strings.TrimSuffix(orig, "/"), "/passkeys/")
		if !ok || id == "" || strings.Contains(id, "/") || len(id) > 1400 {
			httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
			return
		}
		httpx.SetRoute(r, "/login/custom/passkeys/{id}")
		h.signedIn(h.passkeyDelete(id)).ServeHTTP(w, r)
		return
	}
	httpx.SetRoute(r, "/login/custom"+p)
	next.ServeHTTP(w, r)
}

// signedIn verifies the request's app token (X-ZUMO-AUTH or Authorization: Bearer) and records the
// caller; 401 without a valid one.
func (h *Handler) signedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cr := auth.Credentials{}
		if vs, ok := r.Header["X-Zumo-Auth"]; ok && len(vs) > 0 {
			cr.Token, cr.HasToken = vs[0], true
		} else if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			cr.Token, cr.HasToken = strings.TrimSpace(a[7:]), true
		}
		if !cr.HasToken || h.Auth == nil {
			server.Unauthorized(w, r)
			return
		}
		c, err := h.Auth.Identify(cr)
		if err != nil {
			httpx.Error(w, r, http.StatusUnauthorized, err.Error())
			return
		}
		if c.UserID() == "" {
			server.Unauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(httpx.WithCaller(r.Context(), c)))
	})
}

// clientIP is the client's address as the server resolved it: the TCP peer, or behind trusted proxies
// (trusted_proxies) the first untrusted address of the forwarding header, walked right to left.
func clientIP(r *http.Request) string { return httpx.ClientIP(r) }

func client(r *http.Request) Client { return Client{IP: clientIP(r)} }

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// loginBody is the provider-login body, plus the refresh token when sessions issue one.
type loginBody struct {
	User struct {
		UserID string `json:"userId"`
	} `json:"user"`
	AuthenticationToken string `json:"authenticationToken"`
	RefreshToken        string `json:"refreshToken,omitempty"`
}

func writeSession(w http.ResponseWriter, s *Session) {
	var b loginBody
	b.User.UserID = s.UserID
	b.AuthenticationToken = s.Token
	b.RefreshToken = s.RefreshToken
	httpx.JSON(w, http.StatusOK, b)
}

// accepted is the one answer of register, reset and resend, whatever the address.
var accepted = map[string]string{"status": "accepted", "message": "If the address can be used, an email is on its way."}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if err := httpx.ReadJSON(r, &c); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	s, err := h.Service.Login(r.Context(), client(r), c.Email, c.Password)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeSignIn(w, s)
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if err := httpx.ReadJSON(r, &c); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if err := h.Service.Register(r.Context(), client(r), c.Email, c.Password); err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusAccepted, accepted)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RefreshToken string `json:"refreshToken"`
		Everywhere   bool   `json:"everywhere"`
	}
	if r.ContentLength != 0 {
		if err := httpx.ReadJSON(r, &body); err != nil {
			var se *httpx.StatusError
			// An empty body is fine here.
			if !(errors.As(err, &se) && strings.Contains(se.Msg, "empty")) {
				httpx.WriteError(w, r, err)
				return
			}
		}
	}
	if err := h.Service.Logout(r.Context(), httpx.CallerOf(r).UserID(), body.RefreshToken, body.Everywhere); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Current string `json:"currentPassword"`
		New     string `json:"newPassword"`
	}
	if err := httpx.ReadJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	s, err := h.Service.ChangePassword(r.Context(), client(r), httpx.CallerOf(r).UserID(), body.Current, body.New)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeSession(w, s)
}

func (h *Handler) reset(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email string `json:"email"`
	}
	if err := httpx.ReadJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if err := h.Service.RequestReset(r.Context(), client(r), body.Email); err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusAccepted, accepted)
}

func (h *Handler) resend(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email string `json:"email"`
	}
	if err := httpx.ReadJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if err := h.Service.ResendVerification(r.Context(), client(r), body.Email); err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusAccepted, accepted)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="referrer" content="no-referrer"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1>{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .SignIn}}<form method="post" action="{{.Action}}">
<input type="hidden" name="token" value="{{.Token}}">
<button type="submit">Sign in</button></form>{{else if .Token}}<form method="post" action="{{.Action}}">
<input type="hidden" name="token" value="{{.Token}}">
<label>New password <input type="password" name="password" autocomplete="new-password" required minlength="{{.MinLength}}" maxlength="1024"></label>
<button type="submit">Set password</button></form>{{end}}
</body></html>`))

type page struct {
	Title, Message, Token, Action string
	MinLength                     int
	SignIn                        bool // the emailed sign-in link's form
}

func writePage(w http.ResponseWriter, status int, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	pageTmpl.Execute(w, p) //nolint:errcheck // the client went away
}

// resetConfirm: GET shows the form for the emailed link (it spends nothing, so mail scanners that
// prefetch links cannot burn it); POST (JSON from apps, or the form) sets the password.
func (h *Handler) resetConfirm(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		tok := r.URL.Query().Get("token")
		if tok == "" || len(tok) > 128 {
			writePage(w, http.StatusBadRequest, page{Title: "Invalid link", Message: "This password-reset link is incomplete."})
			return
		}
		minLen := h.Service.Policy().MinLength
		if minLen == 0 {
			minLen = password.DefaultPolicy().MinLength
		}
		writePage(w, http.StatusOK, page{Title: "Choose a new password", Token: tok, Action: r.URL.Path, MinLength: minLen})
	case http.MethodPost:
		form := strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
		var body struct {
			Token    string `json:"token"`
			Password string `json:"password"`
		}
		if form {
			if err := r.ParseForm(); err != nil {
				writePage(w, http.StatusBadRequest, page{Title: "Password not changed", Message: "The form could not be read."})
				return
			}
			body.Token, body.Password = r.PostForm.Get("token"), r.PostForm.Get("password")
		} else if err := httpx.ReadJSON(r, &body); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		err := h.Service.ConfirmReset(r.Context(), client(r), body.Token, body.Password)
		if form {
			if err != nil {
				status, msg := h.status(r, err)
				writePage(w, status, page{Title: "Password not changed", Message: msg})
				return
			}
			writePage(w, http.StatusOK, page{Title: "Password changed", Message: "Your password was changed. You can sign in with it now."})
			return
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "ok", "message": "Password changed; sign in with the new password."})
	default:
		httpx.MethodNotAllowed(w, r, "GET", "POST")
	}
}

// verify: GET is the emailed link (verifying is idempotent in effect, so a prefetch does no harm);
// POST {"token"} is for apps that open the link themselves.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		err := h.Service.Verify(r.Context(), r.URL.Query().Get("token"))
		if err != nil {
			status, msg := h.status(r, err)
			writePage(w, status, page{Title: "Email address not verified", Message: msg})
			return
		}
		writePage(w, http.StatusOK, page{Title: "Email address verified", Message: "Thank you. You can close this page."})
	case http.MethodPost:
		var body struct {
			Token string `json:"token"`
		}
		if err := httpx.ReadJSON(r, &body); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		if err := h.Service.Verify(r.Context(), body.Token); err != nil {
			h.fail(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "verified"})
	default:
		httpx.MethodNotAllowed(w, r, "GET", "POST")
	}
}

// status maps a service error to an HTTP status and a client message.
func (h *Handler) status(r *http.Request, err error) (int, string) {
	var te *ThrottledError
	var pe *password.PolicyError
	switch {
	case errors.As(err, &te):
		return http.StatusTooManyRequests, "Too many attempts. Try again later."
	case errors.Is(err, password.ErrBusy):
		return http.StatusServiceUnavailable, "The server is busy. Try again shortly."
	case errors.Is(err, ErrMissing):
		field := strings.TrimPrefix(err.Error(), ErrMissing.Error()+": ")
		return http.StatusBadRequest, "The field '" + field + "' is required."
	case errors.As(err, &pe):
		return http.StatusBadRequest, policyMessage(pe)
	case errors.Is(err, ErrInvalidCredentials):
		return http.StatusUnauthorized, "Invalid email or password."
	case errors.Is(err, ErrWrongPassword):
		return http.StatusForbidden, "The current password is incorrect."
	case errors.Is(err, ErrDisabled):
		return http.StatusForbidden, "This account is disabled."
	case errors.Is(err, ErrUnverified):
		return http.StatusForbidden, "The email address of this account is not verified yet. Open the link we emailed you."
	case errors.Is(err, ErrRegistrationClosed):
		return http.StatusForbidden, "Registration is closed."
	case errors.Is(err, ErrNotAccount):
		return http.StatusForbidden, "Only email/password accounts have a password to change."
	case errors.Is(err, ErrInvalidLink):
		return http.StatusBadRequest, "The link is invalid, expired or already used."
	case errors.Is(err, ErrInvalidCode), errors.Is(err, ErrCodeReused), errors.Is(err, ErrRecoveryCodeUsed),
		errors.Is(err, ErrInvalidChallenge), errors.Is(err, ErrSignInFailed), errors.Is(err, ErrCeremony),
		errors.Is(err, ErrPasskeyInvalid), errors.Is(err, ErrPasskeyCounter):
		return http.StatusUnauthorized, sentence(err)
	case errors.Is(err, ErrStepUpRequired):
		return http.StatusForbidden, sentence(err)
	case errors.Is(err, ErrMFAEnrolled), errors.Is(err, ErrMFANotEnrolled), errors.Is(err, ErrPasskeyLimit):
		return http.StatusConflict, sentence(err)
	case errors.Is(err, ErrPasskeyNotFound):
		return http.StatusNotFound, sentence(err)
	case errors.Is(err, ErrInvalidField), errors.Is(err, ErrUnsupportedMethod):
		return http.StatusBadRequest, sentence(err)
	case errors.Is(err, ErrMFAUnavailable), errors.Is(err, ErrPasskeysOff):
		return http.StatusNotImplemented, sentence(err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, httpx.MsgTimeout
	}
	h.log().Error("account request failed", "request_id", httpx.InfoOf(r).RequestID, "err", err)
	return http.StatusInternalServerError, httpx.MsgInternal
}

// sentence turns a service error into the client's message: without the package prefix, capitalised,
// ending with a full stop.
func sentence(err error) string {
	msg := strings.ReplaceAll(err.Error(), "account: ", "")
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

func policyMessage(pe *password.PolicyError) string {
	field := "password"
	if strings.HasPrefix(pe.Field, "email") {
		field = "email"
	}
	switch {
	case errors.Is(pe, password.ErrPasswordTooShort):
		return "The password is too short (at least " + strconv.Itoa(pe.Limit) + " characters)."
	case errors.Is(pe, password.ErrPasswordTooLong):
		return "The password is too long (at most " + strconv.Itoa(pe.Limit) + " bytes)."
	case errors.Is(pe, password.ErrPasswordEncoding):
		return "The password is not valid UTF-8."
	case errors.Is(pe, password.ErrEmailTooLong):
		return "The email address is too long."
	case errors.Is(pe, password.ErrEmailInvalid):
		if pe.Reason != "" {
			return "The email address is not valid: " + pe.Reason + "."
		}
		return "The email address is not valid."
	}
	return "The " + field + " is not valid."
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := h.status(r, err)
	var te *ThrottledError
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
	case errors.Is(err, password.ErrBusy):
		w.Header().Set("Retry-After", "1")
	}
	httpx.Error(w, r, status, msg)
}
