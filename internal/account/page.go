package account

import (
	_ "embed"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// PagePrefix serves Gatehouse's own passkeys page: WebAuthn runs only in a page of the relying
// party's origin, so a minimal page (HTML and one script, no inline code) lives there for people and
// apps without one of their own; apps on the same site can call the JSON routes directly.
const PagePrefix = "/.auth/passkeys"

//go:embed static/passkeys.html
var passkeysHTML []byte

//go:embed static/passkeys.js
var passkeysJS []byte

// pageCSP allows the page's own script and same-origin requests only.
const pageCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpx.MethodNotAllowed(w, r, "GET")
		return
	}
	var body []byte
	hd := w.Header()
	switch rest {
	case "", "/":
		httpx.SetRoute(r, PagePrefix)
		body = passkeysHTML
		hd.Set("Content-Type", "text/html; charset=utf-8")
	case "/app.js":
		httpx.SetRoute(r, PagePrefix+"/app.js")
		body = passkeysJS
		hd.Set("Content-Type", "text/javascript; charset=utf-8")
	default:
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(body) //nolint:errcheck // the client went away
}
