package pushfake

import (
	"crypto/subtle"
	"encoding/json"
	"encoding/xml"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/push/platform"
)

// WNSNotification is one notification the WNS fake accepted.
type WNSNotification struct {
	// Channel is the channel's token (the ?token= of its URI).
	Channel     string
	Type        string
	ContentType string
	// Headers are the X-WNS-* request headers.
	Headers http.Header
	Payload []byte
}

// WNS is a fake of the Windows Notification Service and its token endpoint
// (login.live.com/accesstoken.srf). The token endpoint checks the client-credentials grant
// (package SID, secret, scope notify.windows.com) and issues day-long tokens; channel URIs are
// <URL>/?token=<name>; a notification needs a valid bearer token (401 with WWW-Authenticate
// "Token has expired" otherwise), a valid X-WNS-Type with its Content-Type, an XML root matching
// the type, and at most 5000 bytes, and is answered like WNS (X-WNS-Status, X-WNS-Msg-ID,
// X-WNS-Error-Description).
type WNS struct {
	control[WNSNotification]
	srv *httptest.Server

	PackageSID   string
	ClientSecret string

	tokens     map[string]time.Time
	gone       map[string]int // channel → 404 or 410
	tokenCalls int
}

// NewWNS starts a fake WNS with fresh credentials.
func NewWNS(t testing.TB) *WNS {
	t.Helper()
	f := &WNS{control: newControl[WNSNotification](), PackageSID: "ms-app://s-1-15-2-1234567890-" + randomString(10),
		ClientSecret: randomString(32), tokens: map[string]time.Time{}, gone: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/accesstoken.srf", f.serveToken)
	mux.HandleFunc("/", f.serveNotify)
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// Config is a WNSConfig with the fake's credentials, allowing the fake's channel host.
func (f *WNS) Config() platform.WNSConfig {
	u, _ := url.Parse(f.srv.URL)
	return platform.WNSConfig{PackageSID: f.PackageSID, ClientSecret: f.ClientSecret, ChannelHosts: []string{u.Host}}
}

// Options points a platform at the fake's token endpoint and trusts its certificate.
func (f *WNS) Options() platform.Options {
	return platform.Options{TokenURL: f.srv.URL + "/accesstoken.srf", RootCAs: certPool(f.srv)}
}

// Channel is the channel URI of a device named name.
func (f *WNS) Channel(name string) string { return f.srv.URL + "/?token=" + url.QueryEscape(name) }

// TokenCalls is how many access tokens were issued.
func (f *WNS) TokenCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenCalls
}

// ExpireTokens makes every token issued so far expired.
func (f *WNS) ExpireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

// Expire makes the channel named name answer 410 Gone (expired); NotFound makes it answer 404.
func (f *WNS) Expire(name string) { f.setGone(name, http.StatusGone) }

// NotFound makes the channel named name answer 404 Not Found (not a valid channel).
func (f *WNS) NotFound(name string) { f.setGone(name, http.StatusNotFound) }

func (f *WNS) setGone(name string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone[name] = status
}

func (f *WNS) serveToken(w http.ResponseWriter, r *http.Request) {
	fail := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		fail("invalid_request", "Invalid request")
		return
	}
	form := r.PostForm
	if form.Get("grant_type") != "client_credentials" {
		fail("unsupported_grant_type", "The provided value for the input parameter 'grant_type' is not valid.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(form.Get("client_id")), []byte(f.PackageSID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(f.ClientSecret)) != 1 {
		fail("invalid_client", "Invalid client id")
		return
	}
	if form.Get("scope") != "notify.windows.com" {
		fail("invalid_scope", "The provided value for the input parameter 'scope' is not valid.")
		return
	}
	tok := "EgAaAQMAAAAEgAAACoAA" + randomString(40)
	f.mu.Lock()
	f.tokens[tok] = f.now().Add(24 * time.Hour)
	f.tokenCalls++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "bearer", "access_token": tok, "expires_in": 86400})
}

func wnsFail(w http.ResponseWriter, status int, desc string) {
	if desc != "" {
		w.Header().Set("X-WNS-Error-Description", desc)
	}
	w.Header().Set("X-WNS-Debug-Trace", "FAKE-"+randomString(8))
	w.Header().Set("X-WNS-Msg-ID", strings.ToUpper(randomString(16)))
	w.WriteHeader(status)
}

var wnsTypes = map[string]string{"wns/toast": "text/xml", "wns/tile": "text/xml", "wns/badge": "text/xml", "wns/raw": "application/octet-stream"}

func (f *WNS) serveNotify(w http.ResponseWriter, r *http.Request) {
	f.count()
	if r.Method != http.MethodPost {
		wnsFail(w, http.StatusMethodNotAllowed, "")
		return
	}
	name := r.URL.Query().Get("token")
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	exp, known := f.tokens[bearer]
	f.mu.Unlock()
	if !known || !f.clock().Before(exp) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token",error_description="Token has expired"`)
		wnsFail(w, http.StatusUnauthorized, "")
		return
	}
	typ := r.Header.Get("X-WNS-Type")
	ct, ok := wnsTypes[typ]
	if !ok || name == "" {
		wnsFail(w, http.StatusBadRequest, "Invalid X-WNS-Type header")
		return
	}
	if got := r.Header.Get("Content-Type"); got != ct {
		wnsFail(w, http.StatusBadRequest, "Invalid Content-Type for "+typ)
		return
	}
	if v := r.Header.Get("X-WNS-TTL"); v != "" {
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			wnsFail(w, http.StatusBadRequest, "Invalid X-WNS-TTL header")
			return
		}
	}
	for _, h := range []string{"X-WNS-Tag", "X-WNS-Group"} {
		if len(r.Header.Get(h)) > 16 {
			wnsFail(w, http.StatusBadRequest, "Invalid "+h+" header")
			return
		}
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, platform.WNSMaxPayload+1))
	if len(body) > platform.WNSMaxPayload {
		wnsFail(w, http.StatusRequestEntityTooLarge, "")
		return
	}
	if typ != "wns/raw" {
		var root struct{ XMLName xml.Name }
		if err := xml.Unmarshal(body, &root); err != nil || "wns/"+root.XMLName.Local != typ {
			wnsFail(w, http.StatusBadRequest, "The notification payload is not valid XML for "+typ)
			return
		}
	}
	if fail := f.scripted(); fail != nil {
		setRetryAfter(w, fail.RetryAfter)
		wnsFail(w, fail.Status, fail.Reason)
		return
	}
	f.mu.Lock()
	gone := f.gone[name]
	f.mu.Unlock()
	if gone != 0 {
		w.Header().Set("X-WNS-DeviceConnectionStatus", "disconnected")
		wnsFail(w, gone, "")
		return
	}
	hs := http.Header{}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-wns-") {
			hs[k] = v
		}
	}
	f.record(WNSNotification{Channel: name, Type: typ, ContentType: ct, Headers: hs, Payload: body})
	w.Header().Set("X-WNS-Status", "received")
	w.Header().Set("X-WNS-DeviceConnectionStatus", "connected")
	w.Header().Set("X-WNS-Msg-ID", strings.ToUpper(randomString(16)))
	w.WriteHeader(http.StatusOK)
}
