package login

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/jsonx"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/provider"

	"golang.org/x/oauth2"
)

// cookieName is the flow cookie (the original's name; its content is ours: sealed JSON).
const cookieName = "wams_state"

// maxCookieBytes bounds the flow cookie we are willing to open.
const maxCookieBytes = 3072

// flowState is what the flow cookie carries, sealed with AES-GCM (bound to the provider's name).
type flowState struct {
	Provider    string            `json:"p"`
	State       string            `json:"s"`
	Nonce       string            `json:"n"`
	Verifier    string            `json:"v"`
	RedirectURI string            `json:"ru"`
	CompType    string            `json:"ct,omitempty"`
	CompOrigin  string            `json:"co,omitempty"`
	Final       string            `json:"r,omitempty"` // sso_end_uri / post_login_redirect_url
	Keep        map[string]string `json:"k,omitempty"`
	Expires     int64             `json:"e"`
}

func cookieAD(f family, provider string) []byte {
	return []byte(fmt.Sprintf("login-flow\x00%d\x00%s", f, provider))
}

// formPoster is implemented by providers whose callback is a cross-site form POST (Apple): their
// flow cookie must be SameSite=None (still HttpOnly, Secure, sealed, single-use and state-bound), or
// the browser would not send it with the callback.
type formPoster interface{ FormPost() bool }

func (h *Handler) setCookie(w http.ResponseWriter, f family, p provider.Provider, value string, maxAge int) {
	secure := strings.HasPrefix(h.o.PublicURL, "https://")
	same := http.SameSiteLaxMode
	if fp, ok := p.(formPoster); ok && fp.FormPost() && secure {
		same = http.SameSiteNoneMode
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: f.cookiePath(), MaxAge: maxAge,
		HttpOnly: true, Secure: secure, SameSite: same})
}

// loginOptions are the per-login parameters a client may pass to the provider (each provider keeps
// the ones it supports); values are bounded and free of control characters.
var loginOptions = []string{"scope", "display", "access_type", "prompt", "login_hint", "domain_hint", "hd", "auth_type"}

func filterOptions(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range loginOptions {
		v := q.Get(k)
		if v == "" || len(v) > 256 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			continue
		}
		out.Set(k, v)
	}
	return out
}

func (h *Handler) callbackURL(f family, p provider.Provider) string {
	if f == v2 {
		return h.o.PublicURL + "/.auth/login/" + p.Name() + "/callback"
	}
	return h.o.PublicURL + "/login/" + p.Name()
}

// start is step 1 of the server flow: check the completion target, create the flow, redirect.
func (h *Handler) start(w http.ResponseWriter, r *http.Request, f family, p provider.Provider) {
	if !p.ServerFlow() {
		f.fail(w, http.StatusUnauthorized, fmt.Sprintf("Logging in with %s is not enabled. %s", p.Name(), serverFlowHint(p.Name())))
		return
	}
	if h.o.PublicURL == "" {
		h.o.Log.Error("server-flow login refused: public_url is not configured")
		f.fail(w, http.StatusInternalServerError, "Server-flow login needs the service's public URL: set public_url (GATEHOUSE_PUBLIC_URL). Callback URLs are never built from the Host header.")
		return
	}
	q := r.URL.Query()
	st := &flowState{Provider: p.Name()}
	if ct := q.Get("completion_type"); ct != "" {
		if ct != "postMessage" && ct != "iframe" {
			f.fail(w, http.StatusBadRequest, "completion_type must be postMessage or iframe.")
			return
		}
		co := q.Get("completion_origin")
		if co == "" || len(co) > 512 || !h.o.AllowOrigin(co) {
			f.fail(w, http.StatusUnauthorized, "Not a whitelisted origin: "+clipName(co))
			return
		}
		st.CompType, st.CompOrigin = ct, co
	}
	if f == v1 {
		if sso := q.Get("sso_end_uri"); sso != "" {
			if h.o.PackageSID == "" {
				f.fail(w, http.StatusUnauthorized, "Logging in with Windows 8 single sign-on is not enabled. Ensure that the Package SID has been correctly configured in the Windows Azure Mobile Service.")
				return
			}
			if sso != h.o.PackageSID+"/" {
				f.fail(w, http.StatusUnauthorized, "The redirect URI for Windows 8 single sign-on does not match the registered Package SID. Ensure that the Package SID has been correctly configured in the Windows Azure Mobile Service.")
				return
			}
			st.Final = sso
		}
	} else if prl := q.Get("post_login_redirect_url"); prl != "" {
		if strings.HasPrefix(prl, "/") && !strings.HasPrefix(prl, "//") {
			prl = h.o.PublicURL + prl
		}
		if len(prl) > 2048 || !h.allowedRedirect(prl) {
			f.fail(w, http.StatusBadRequest, "The post_login_redirect_url is not an allowed redirect URL.")
			return
		}
		st.Final = prl
	}
	st.State = provider.RandomString(32)
	st.Nonce = provider.RandomString(32)
	st.Verifier = oauth2.GenerateVerifier()
	st.RedirectURI = h.callbackURL(f, p)
	st.Expires = h.o.Now().Add(h.o.StateTTL).Unix()
	red, err := p.AuthCodeURL(r.Context(), provider.AuthRequest{State: st.State, Nonce: st.Nonce, CodeChallenge: oauth2.S256ChallengeFromVerifier(st.Verifier),
		RedirectURI: st.RedirectURI, Options: filterOptions(q)})
	if err != nil {
		h.logProviderError(r, p, "server flow start", err)
		h.finish(w, r, f, st, nil, err.Error())
		return
	}
	st.Keep = red.Keep
	b, _ := json.Marshal(st)
	sealed, err := h.o.Sealer.Seal(b, cookieAD(f, p.Name()))
	if err != nil || len(sealed) > maxCookieBytes {
		h.o.Log.Error("login: sealing the flow cookie failed", "err", err, "bytes", len(sealed))
		f.fail(w, http.StatusInternalServerError, httpx.MsgInternal)
		return
	}
	h.setCookie(w, f, p, sealed, int(h.o.StateTTL.Seconds()))
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, red.URL, http.StatusFound)
}

// openState reads the flow cookie; any problem is an error message for the client.
func (h *Handler) openState(r *http.Request, f family, p provider.Provider) (*flowState, string) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil, fmt.Sprintf("Redirect from %s does not contain the required %s cookie.", p.Name(), cookieName)
	}
	invalid := fmt.Sprintf("Redirect from %s does not contain a valid %s cookie.", p.Name(), cookieName)
	if len(c.Value) > maxCookieBytes {
		return nil, invalid
	}
	b, err := h.o.Sealer.Open(c.Value, cookieAD(f, p.Name()))
	if err != nil {
		return nil, invalid
	}
	var st flowState
	if err := jsonx.Unmarshal(b, &st); err != nil || st.Provider != p.Name() || st.State == "" {
		return nil, invalid
	}
	if h.o.Now().Unix() > st.Expires {
		return nil, fmt.Sprintf("The login with %s took too long. Please start again.", p.Name())
	}
	return &st, ""
}

// callback is step 2 of the server flow.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request, f family, p provider.Provider, params url.Values) {
	h.setCookie(w, f, p, "", -1) // the flow cookie is spent whatever happens
	st, bad := h.openState(r, f, p)
	if st == nil {
		h.finish(w, r, f, nil, nil, bad)
		return
	}
	if !h.finalAllowed(f, st) {
		// Checked again at completion, not only at start: the allowlist may have changed since, and a
		// cookie sealed under a key that leaked must never send a token to a target of its choosing.
		h.o.Log.Warn("login: flow cookie's redirect target is not allowed", "provider", p.Name(), "request_id", httpx.InfoOf(r).RequestID)
		h.finish(w, r, f, nil, nil, msgRedirectNotAllowed)
		return
	}
	state := params.Get("state")
	if state == "" {
		h.finish(w, r, f, nil, nil, fmt.Sprintf("Redirect from %s does not contain the required state parameter.", p.Name()))
		return
	}
	if !constantEqual(state, st.State) {
		h.finish(w, r, f, nil, nil, fmt.Sprintf("Redirect from %s does not contain a valid state parameter.", p.Name()))
		return
	}
	fresh, err := h.o.Users.Store().ConsumeOnce(r.Context(), stateID(st.State), timeUnix(st.Expires+60), h.o.Now())
	if err != nil {
		h.o.Log.Error("login: recording the spent state failed", "err", err)
		h.finish(w, r, f, st, nil, httpx.MsgInternal)
		return
	}
	if !fresh {
		h.finish(w, r, f, nil, nil, fmt.Sprintf("This login with %s has already been completed. Please start again.", p.Name()))
		return
	}
	id, err := p.Exchange(r.Context(), provider.Callback{Params: params, Verifier: st.Verifier, Nonce: st.Nonce, RedirectURI: st.RedirectURI, Kept: st.Keep})
	if err != nil {
		h.logProviderError(r, p, "server flow", err)
		h.finish(w, r, f, st, nil, err.Error())
		return
	}
	s, _, msg := h.complete(r.Context(), id)
	if s == nil {
		h.finish(w, r, f, st, nil, msg)
		return
	}
	h.o.Log.Info("login", "flow", "server", "provider", p.Name(), "user_id", s.User.UserID, "request_id", httpx.InfoOf(r).RequestID)
	h.finish(w, r, f, st, s, "")
}

// finish completes a server flow: the LoginCompleted page for browser popups (only to an origin that
// is still on the whitelist), else a 302 to the final redirect or the done URL with #token= or #error=.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, f family, st *flowState, s *Success, errMsg string) {
	errText := errMsg
	if f == v1 && errMsg != "" {
		errText = "Error: " + errMsg
	}
	if st != nil && st.CompType != "" && h.o.AllowOrigin(st.CompOrigin) {
		h.completionPage(w, st, s, errText)
		return
	}
	target := h.o.PublicURL + f.loginPrefix() + "/done"
	if st != nil && st.Final != "" {
		if h.finalAllowed(f, st) {
			target = st.Final
		} else {
			s, errText = nil, msgRedirectNotAllowed
			if f == v1 {
				errText = "Error: " + msgRedirectNotAllowed
			}
		}
	}
	if s != nil {
		target += "#token=" + encodeURIComponent(marshal(s))
	} else {
		target += "#error=" + encodeURIComponent(errText)
	}
	w.Header().Set("Location", target)
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

const msgRedirectNotAllowed = "The post-login redirect URL is not an allowed redirect URL."

// finalAllowed re-checks a flow's final redirect target against the allowlist in force now.
func (h *Handler) finalAllowed(f family, st *flowState) bool {
	if st.Final == "" {
		return true
	}
	if f == v1 {
		return h.o.PackageSID != "" && st.Final == h.o.PackageSID+"/"
	}
	return len(st.Final) <= 2048 && h.allowedRedirect(st.Final)
}

// completionPage is the browser popup's last page: it hands the LoginCompleted envelope to the
// opener, by postMessage to the completion origin only, or (iframe mode, old IE) to the receiver
// frame on our own origin. Every value is escaped for its context by html/template, and the page
// runs only its own script (CSP nonce).
var completionPage = template.Must(template.New("done").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Login completed</title></head>
<body>
<script nonce="{{.Nonce}}">
(function () {
  var envelope = {{.Envelope}};
  var origin = {{.Origin}};
  if ({{.Mode}} === "postMessage") {
    if (window.opener) { window.opener.postMessage(envelope, origin); }
    return;
  }
  var tries = 0;
  (function poll() {
    try {
      var rcv = window.opener && window.opener.frames["zumo-login-receiver"];
      if (rcv && rcv.location.origin === window.location.origin && rcv.transferLoginResult) {
        rcv.transferLoginResult(envelope);
        return;
      }
    } catch (e) {}
    if (++tries < 200) { setTimeout(poll, 50); }
  })();
})();
</script>
</body></html>
`))

type envelope struct {
	Type  string   `json:"type"`
	OAuth *Success `json:"oauth"`
	Error *string  `json:"error"`
}

func (h *Handler) completionPage(w http.ResponseWriter, st *flowState, s *Success, errText string) {
	env := envelope{Type: "LoginCompleted", OAuth: s}
	if s == nil {
		env.Error = &errText
	}
	nonce := provider.RandomString(16)
	var buf bytes.Buffer
	err := completionPage.Execute(&buf, map[string]string{"Nonce": nonce, "Envelope": marshal(env), "Origin": st.CompOrigin, "Mode": st.CompType})
	if err != nil {
		h.o.Log.Error("login: completion page", "err", err)
		httpx.ErrorDialect(w, httpx.V1, http.StatusInternalServerError, httpx.MsgInternal)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes()) //nolint:errcheck
}

// donePage is GET /.auth/login/done: clients read the fragment from the URL; the page itself does
// nothing (no script).
func (h *Handler) donePage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Login</title></head><body><p>Login complete. You can close this window.</p></body></html>\n")
}

// receiverPage is the old-IE receiver (/.auth/login/iframereceiver?completion_origin=…): the SDK
// frames it (named zumo-login-receiver) in the app's page; the completion page on our origin calls its
// transferLoginResult, which posts the envelope to the framing page, to the whitelisted origin only.
var receiverPage = template.Must(template.New("receiver").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Login receiver</title></head>
<body>
<script nonce="{{.Nonce}}">
window.transferLoginResult = function (envelope) {
  window.parent.postMessage(envelope, {{.Origin}});
};
</script>
</body></html>
`))

func (h *Handler) iframeReceiver(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET")
		return
	}
	origin := r.URL.Query().Get("completion_origin")
	if origin == "" || len(origin) > 512 || strings.ContainsAny(origin, " ;,'\"") || !h.o.AllowOrigin(origin) {
		v2.fail(w, http.StatusUnauthorized, "Not a whitelisted origin: "+clipName(origin))
		return
	}
	nonce := provider.RandomString(16)
	var buf bytes.Buffer
	if err := receiverPage.Execute(&buf, map[string]string{"Nonce": nonce, "Origin": origin}); err != nil {
		v2.fail(w, http.StatusInternalServerError, httpx.MsgInternal)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; base-uri 'none'; frame-ancestors "+origin)
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes()) //nolint:errcheck
}

// serverFlowHint names the settings a provider's server flow needs when only its client id is set
// (the original's "not enabled" message kept as the first sentence, for clients that match on it).
func serverFlowHint(name string) string {
	setting := map[string]string{
		"google":           "providers.google.client_secret (GATEHOUSE_GOOGLE_CLIENT_SECRET or MS_GoogleClientSecret)",
		"facebook":         "providers.facebook.app_secret (GATEHOUSE_FACEBOOK_APP_SECRET or MS_FacebookAppSecret)",
		"microsoftaccount": "providers.microsoft.client_secret (GATEHOUSE_MICROSOFT_CLIENT_SECRET or MS_MicrosoftClientSecret)",
		"aad":              "providers.aad.client_secret (GATEHOUSE_AAD_CLIENT_SECRET)",
		"apple":            "providers.apple.team_id, providers.apple.key_id and providers.apple.private_key",
	}[name]
	if setting == "" {
		setting = "oidc." + name + ".client_secret (GATEHOUSE_OIDC_" + strings.ToUpper(name) + "_CLIENT_SECRET)"
	}
	return "The server flow needs " + setting + "; the client flow works without it."
}
