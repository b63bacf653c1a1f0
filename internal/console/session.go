package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Cookie names. The session cookie carries the session id and an HMAC of it under a key derived from
// the cluster's master key, so a cookie minted under another cluster's keys (or forged) is refused
// before any database lookup; the database holds only the id's SHA-256.
const (
	sessionCookie = "gatehouse_console"
	loginCookie   = "gatehouse_console_login" // pre-session anti-CSRF nonce of the sign-in and setup forms
	cookieVersion = "v1"
)

// macKey derives the console's HMAC key from a master key (domain-separated from every other use).
func macKey(master string) []byte {
	m := hmac.New(sha256.New, []byte(master))
	m.Write([]byte("gatehouse/console/session/v1"))
	return m.Sum(nil)
}

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand does not fail on supported platforms
	return b64.EncodeToString(b)
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// keyset is the master keys a cookie may be signed with: the current one first (used to sign), then
// the previous ones still in force (a rotation does not sign everybody out at once).
func keyset(s auth.Secrets) [][]byte {
	out := [][]byte{macKey(s.MasterKey)}
	for _, p := range s.Previous {
		if p.Secret != "" {
			out = append(out, macKey(p.Secret))
		}
	}
	return out
}

// sealCookie builds a session cookie value for id under key.
func sealCookie(key []byte, id string) string {
	return cookieVersion + "." + id + "." + b64.EncodeToString(mac(key, "session", id))
}

// openCookie checks a session cookie value against the keys and returns the id and the key that
// verified it.
func openCookie(keys [][]byte, v string) (string, []byte, bool) {
	if len(v) > 200 {
		return "", nil, false
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] != cookieVersion || parts[1] == "" {
		return "", nil, false
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return "", nil, false
	}
	for _, k := range keys {
		if hmac.Equal(sig, mac(k, "session", parts[1])) {
			return parts[1], k, true
		}
	}
	return "", nil, false
}

// csrfToken is the synchronizer token of a session: derived from its id under the key that signed
// it, so nothing more is stored and it changes with every session.
func csrfToken(key []byte, id string) string { return b64.EncodeToString(mac(key, "csrf", id)) }

// loginToken is the token the sign-in and setup forms carry: bound to the pre-session nonce cookie.
func loginToken(key []byte, nonce string) string { return b64.EncodeToString(mac(key, "login", nonce)) }

func equalString(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secureCookies decides the Secure attribute: always, except for plain HTTP from a loopback client
// (a developer's `go run ./cmd/gatehouse` on http://127.0.0.1), where a browser would drop a Secure
// cookie set over http. console.insecure_loopback = false removes that exception.
func (c *Console) secureCookies(r *http.Request) bool {
	cl := httpx.ClientOf(r)
	if cl.HTTPS || r.TLS != nil {
		return true
	}
	if c.o.InsecureLoopback && cl.IP.IsValid() && cl.IP.IsLoopback() {
		return false
	}
	return true
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: c.o.Path + "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secureCookies(r), SameSite: http.SameSiteStrictMode})
}

// sessionCtx is the signed-in administrator of a request.
type sessionCtx struct {
	admin  *Admin
	sess   *Session
	idHash string
	csrf   string
}

type sessionKey struct{}

func withSession(ctx context.Context, s *sessionCtx) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionOf(ctx context.Context) *sessionCtx {
	s, _ := ctx.Value(sessionKey{}).(*sessionCtx)
	return s
}

// errNoSession is a request without a valid session (no cookie, a bad signature, unknown, timed out).
var errNoSession = errors.New("console: not signed in")

// authenticate resolves the session cookie: signature under the cluster's keys, the stored session,
// the idle and absolute timeouts, the administrator still enabled. Activity is recorded at most once
// a minute per session.
func (c *Console) authenticate(r *http.Request) (*sessionCtx, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	id, key, ok := openCookie(keyset(c.o.Keys()), ck.Value)
	if !ok {
		return nil, errNoSession
	}
	ctx := r.Context()
	h := hashToken(id)
	s, err := c.o.Store.Session(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	now := c.now()
	if !now.Before(s.ExpiresAt) || now.Sub(s.SeenAt) >= c.o.IdleTimeout {
		_ = c.o.Store.DeleteSession(ctx, h)
		return nil, errNoSession
	}
	a, err := c.o.Store.AdminByID(ctx, s.AdminID)
	if errors.Is(err, ErrNotFound) || (err == nil && a.Disabled) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	if now.Sub(s.SeenAt) >= time.Minute {
		if err := c.o.Store.TouchSession(ctx, h, now); err != nil {
			return nil, err
		}
		s.SeenAt = now
	}
	return &sessionCtx{admin: a, sess: s, idHash: h, csrf: csrfToken(key, id)}, nil
}

// startSession creates a session for a and sets its cookie.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, a *Admin) error {
	id := randomToken(32)
	now := c.now()
	s := &Session{IDHash: hashToken(id), AdminID: a.ID, CreatedAt: now, SeenAt: now, ExpiresAt: now.Add(c.o.AbsoluteTimeout),
		Remote: clientIP(r), Agent: truncate(r.UserAgent(), 200)}
	if err := c.o.Store.CreateSession(r.Context(), s); err != nil {
		return err
	}
	c.setCookie(w, r, sessionCookie, sealCookie(keyset(c.o.Keys())[0], id), int(c.o.AbsoluteTimeout/time.Second))
	c.setCookie(w, r, loginCookie, "", -1)
	return nil
}

func clientIP(r *http.Request) string {
	if ip := httpx.ClientOf(r).IP; ip.IsValid() {
		return ip.String()
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// sameOrigin refuses cross-site form posts before the token check (defence in depth beside
// SameSite=Strict and the synchronizer token): Sec-Fetch-Site, when the browser sends it, must be
// same-origin (or none: typed by the user); an Origin header must name this host ("null" only with
// Sec-Fetch-Site: same-origin).
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	switch site {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if o == "null" {
		// Referrer-Policy: no-referrer makes Chromium send "Origin: null" on the console's own form
		// posts; then the browser's Sec-Fetch-Site decides.
		return site == "same-origin"
	}
	host := r.Host
	if h := httpx.ClientOf(r).Host; h != "" {
		host = h
	}
	i := strings.Index(o, "://")
	return i > 0 && strings.EqualFold(o[i+3:], host)
}
