package account

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Multi-factor routes (below V1Prefix and V2Prefix; see docs/auth.md, "Multi-factor sign-in"):
//
//	POST   {prefix}/mfa                       second factor   {"mfaToken","method":"totp"|"recovery","code"}
//	GET    {prefix}/mfa             (token)   the account's second factors
//	POST   {prefix}/mfa/totp        (token)   enrol an authenticator app → {secret, uri, qrCode}
//	POST   {prefix}/mfa/totp/confirm (token)  {"code"} → {"recoveryCodes"}
//	DELETE {prefix}/mfa/totp        (token, mfa)
//	POST   {prefix}/mfa/recovery    (token, mfa) new recovery codes
//	POST   {prefix}/email                     email sign-in     {"email"} → 202 {"requestId"} + cookie
//	GET    {prefix}/email/confirm             the emailed link: a small form
//	POST   {prefix}/email/confirm             {"token"} or {"code"}, with the cookie or "requestId"
//	POST   {prefix}/passkeys/register         (token) → {"challengeId","publicKey"} + cookie
//	POST   {prefix}/passkeys/register/finish  (token) {"challengeId","name","credential"}
//	POST   {prefix}/passkeys/login            {"mfaToken"?} → {"challengeId","publicKey"} + cookie
//	POST   {prefix}/passkeys/login/finish     {"challengeId","mfaToken"?,"credential"}
//	DELETE {prefix}/passkeys/{id}   (token, mfa)

// nonceCookie binds email sign-in and passkey ceremonies to the browser that began them.
const nonceCookie = "gatehouse_nonce"

// browserNonce returns the request's nonce cookie, or a new one set on the response. Reusing an
// existing one lets several ceremonies run side by side in one browser.
func (h *Handler) browserNonce(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(nonceCookie); err == nil && validNonce(c.Value) {
		return c.Value
	}
	n := NewNonce()
	http.SetCookie(w, &http.Cookie{Name: nonceCookie, Value: n, Path: "/", HttpOnly: true, Secure: r.TLS != nil || strings.HasPrefix(h.PublicURL, "https:"),
		SameSite: http.SameSiteStrictMode, MaxAge: int((30 * time.Minute).Seconds())})
	return n
}

func validNonce(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

func requestNonce(r *http.Request) string {
	if c, err := r.Cookie(nonceCookie); err == nil {
		return c.Value
	}
	return ""
}

func principal(r *http.Request) Principal {
	c := httpx.CallerOf(r)
	return Principal{UserID: c.UserID(), MFA: c.MultiFactor()}
}

// mfaBody is the answer of a correct first factor on an account with a second factor.
type mfaBody struct {
	MFARequired bool     `json:"mfaRequired"`
	MFAToken    string   `json:"mfaToken"`
	Methods     []string `json:"methods"`
	ExpiresIn   int      `json:"expiresIn"`
}

func (h *Handler) writeSignIn(w http.ResponseWriter, s *Session) {
	if s.MFA != nil {
		httpx.JSON(w, http.StatusOK, mfaBody{MFARequired: true, MFAToken: s.MFA.Token, Methods: s.MFA.Methods,
			ExpiresIn: int(time.Until(s.MFA.ExpiresAt).Round(time.Second).Seconds())})
		return
	}
	writeSession(w, s)
}

func (h *Handler) mfaVerify(w http.ResponseWriter, r *http.Request) {
	var body struct {
		MFAToken string `json:"mfaToken"`
		Method   string `json:"method"`
		Code     string `json:"code"`
	}
	if err := httpx.ReadJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	s, err := h.Service.VerifyMFA(r.Context(), client(r), body.MFAToken, body.Method, body.Code)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeSession(w, s)
}

func (h *Handler) mfaStatus(w http.ResponseWriter, r *http.Request) {
	st, err := h.Service.MFAStatus(r.Context(), principal(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusOK, st)
}

func (h *Handler) totpEnroll(w http.ResponseWriter, r *http.Request) {
	e, err := h.Service.EnrollTOTP(r.Context(), principal(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, map[string]string{"secret": e.Secret, "uri": e.URI,
		"qrCode": "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRPNG)})
}

func (h *Handler) totpConfirm(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Code string `json:"code"`
	}
	if err := httpx.ReadJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	codes, err := h.Service.ConfirmTOTP(r.Context(), client(r), principal(r), body.Code)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, map[string]any{"status": "enrolled", "recoveryCodes": codes})
}

func (h *Handler) totp(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		h.totpEnroll(w, r)
	case http.MethodDelete:
		if err := h.Service.DisableTOTP(r.Context(), principal(r)); err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		httpx.MethodNotAllowed(w, r, "POST", "DELETE")
	}
}

func (h *Handler) recoveryCodes(w http.ResponseWriter, r *http.Request) {
	codes, err := h.Service.RegenerateRecoveryCodes(r.Context(), principal(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, map[string]any{"recoveryCodes": codes})
}

func (h *Handler) emailStart(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email string `json:"email"`
	}
	if err := httpx.ReadJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	n := h.browserNonce(w, r)
	if err := h.Service.StartEmailSignIn(r.Context(), client(r), body.Email, n); err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "requestId": n,
		"message": "If the address has an account, an email with a sign-in code and link is on its way."})
}

// emailConfirm: GET is the emailed link (a form: GET spends nothing, so mail scanners cannot burn
// it); POST (JSON from apps, or the form) signs in. The nonce comes from the cookie the asking
// browser got, or from "requestId" in the JSON body (apps that keep it themselves).
func (h *Handler) emailConfirm(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		tok := r.URL.Query().Get("token")
		if tok == "" || len(tok) > 128 {
			writePage(w, http.StatusBadRequest, page{Title: "Invalid link", Message: "This sign-in link is incomplete."})
			return
		}
		writePage(w, http.StatusOK, page{Title: "Sign in", Message: "Sign in to continue.", Token: tok, Action: r.URL.Path, SignIn: true})
	case http.MethodPost:
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			h.emailConfirmForm(w, r)
			return
		}
		var body struct {
			Token     string `json:"token"`
			Code      string `json:"code"`
			RequestID string `json:"requestId"`
		}
		if err := httpx.ReadJSON(r, &body); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		n := body.RequestID
		if n == "" {
			n = requestNonce(r)
		}
		s, err := h.Service.ConfirmEmailSignIn(r.Context(), client(r), n, body.Token, body.Code)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.writeSignIn(w, s)
	default:
		httpx.MethodNotAllowed(w, r, "GET", "POST")
	}
}

func (h *Handler) emailConfirmForm(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writePage(w, http.StatusBadRequest, page{Title: "Not signed in", Message: "The form could not be read."})
		return
	}
	s, err := h.Service.ConfirmEmailSignIn(r.Context(), client(r), requestNonce(r), r.PostForm.Get("token"), "")
	if err != nil {
		status, msg := h.status(r, err)
		writePage(w, status, page{Title: "Not signed in", Message: msg})
		return
	}
	if s.MFA != nil {
		writePage(w, http.StatusOK, page{Title: "Second factor required", Message: "This account has a second factor: finish signing in from the app."})
		return
	}
	// Hand the session to the page that asked, as the provider logins do: the done page's fragment.
	var b loginBody
	b.User.UserID, b.AuthenticationToken = s.UserID, s.Token
	raw, _ := json.Marshal(b)
	done := strings.TrimSuffix(h.PublicURL, "/") + "/login/done#token=" + urlFragmentEscape(string(raw))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, done, http.StatusSeeOther)
}

func urlFragmentEscape(s string) string {
	return strings.NewReplacer("%", "%25", "#", "%23", " ", "%20", "\"", "%22", "<", "%3C", ">", "%3E", "`", "%60").Replace(s)
}

// passkeyFinish is the body that answers a passkey challenge. The credential is the
// PublicKeyCredential as JSON (the browser's toJSON()), parsed by go-webauthn.
type passkeyFinish struct {
	ChallengeID string          `json:"challengeId"`
	Name        string          `json:"name"`
	MFAToken    string          `json:"mfaToken"`
	Credential  json.RawMessage `json:"credential"`
}

// maxCredentialJSON bounds the credential a client may send (attestations are a few KiB).
const maxCredentialJSON = 64 << 10

func readPasskeyFinish(r *http.Request) (*passkeyFinish, error) {
	var body passkeyFinish
	if err := httpx.ReadJSON(r, &body); err != nil {
		return nil, err
	}
	if err := body.check(); err != nil {
		return nil, err
	}
	return &body, nil
}

func (b *passkeyFinish) check() error {
	switch {
	case b.ChallengeID == "":
		return &httpx.StatusError{Status: http.StatusBadRequest, Msg: "The field 'challengeId' is required."}
	case len(b.Credential) == 0 || string(b.Credential) == "null":
		return &httpx.StatusError{Status: http.StatusBadRequest, Msg: "The field 'credential' is required."}
	case len(b.Credential) > maxCredentialJSON:
		return &httpx.StatusError{Status: http.StatusRequestEntityTooLarge, Msg: "The credential is too large."}
	case b.Credential[0] != '{':
		return &httpx.StatusError{Status: http.StatusBadRequest, Msg: "The field 'credential' must be an object."}
	}
	return nil
}

func (h *Handler) passkeyRegister(w http.ResponseWriter, r *http.Request) {
	st, err := h.Service.BeginPasskeyRegistration(r.Context(), principal(r), h.browserNonce(w, r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, map[string]any{"challengeId": st.ID, "publicKey": st.Options})
}

func (h *Handler) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request) {
	body, err := readPasskeyFinish(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	v, err := h.Service.FinishPasskeyRegistration(r.Context(), client(r), principal(r), body.ChallengeID, requestNonce(r), body.Name, body.Credential)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.JSON(w, http.StatusCreated, v)
}

func (h *Handler) passkeyLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		MFAToken string `json:"mfaToken"`
	}
	if r.ContentLength != 0 {
		if err := httpx.ReadJSON(r, &body); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
	}
	st, err := h.Service.BeginPasskeyLogin(r.Context(), client(r), h.browserNonce(w, r), body.MFAToken)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, map[string]any{"challengeId": st.ID, "publicKey": st.Options})
}

func (h *Handler) passkeyLoginFinish(w http.ResponseWriter, r *http.Request) {
	body, err := readPasskeyFinish(r)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	s, err := h.Service.FinishPasskeyLogin(r.Context(), client(r), body.ChallengeID, requestNonce(r), body.MFAToken, body.Credential)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeSession(w, s)
}

func (h *Handler) passkeyDelete(id string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete {
			httpx.MethodNotAllowed(w, r, "DELETE")
			return
		}
		if err := h.Service.RemovePasskey(r.Context(), principal(r), id); err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
