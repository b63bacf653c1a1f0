package login_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/login"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/provider"
	"github.com/gatehouse/gatehouse/internal/provider/providertest"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/user"
)

const (
	masterKey = "test-master-key-0123456789abcdef"
	publicURL = "https://gh.example"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	ts    *httptest.Server
	op    *providertest.OP
	fb    *providertest.Facebook
	tw    *providertest.Twitter
	dir   *user.Directory
	revs  *user.RevocationList
	clock *clock
	authn *auth.Authenticator
}

type setup struct {
	publicURL string
	refresh   bool
	timeout   time.Duration
}

func newEnv(t testing.TB, db *store.DB, s setup) *env {
	t.Helper()
	if s.publicURL == "" {
		s.publicURL = publicURL
	}
	if s.publicURL == "-" {
		s.publicURL = ""
	}
	e := &env{t: t, clock: &clock{t: time.Now()}}
	cfg, err := config.Load(nil, func(k string) string {
		return map[string]string{"GATEHOUSE_PUBLIC_URL": s.publicURL, "GATEHOUSE_CROSS_DOMAIN_WHITELIST": "localhost,*.example.org"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Secrets{MasterKey: masterKey, ApplicationKey: "app-key-0123456789abcdef", SystemKey: "sys-key-0123456789abcdef"},
		auth.Options{MaxTTL: cfg.TokenMaxTTL, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	minter := &auth.Minter{Auth: authn, DefaultTTL: time.Hour, MaxTTL: cfg.TokenMaxTTL}
	srv := server.New(server.Deps{Config: cfg, Auth: authn, Minter: minter, App: appdir.Empty(), DB: db, Metrics: metrics.New("test"),
		Logger: slog.New(slog.DiscardHandler), Version: "test"})

	e.op = providertest.NewOP(t, "acme-client", "acme-secret")
	e.op.Set(func(o *providertest.OP) { o.RequirePKCE = true; o.Claims = map[string]any{"email": "u@example.com"} })
	e.fb = providertest.NewFacebook(t, "fb-app", "fb-secret-0123456789")
	e.fb.Set(func(f *providertest.Facebook) {
		f.Tokens["fb-good"] = providertest.FBUser{UserID: "10001", AppID: "fb-app", Name: "Ann", Valid: true}
	})
	e.tw = providertest.NewTwitter(t, "ck", "cs")
	timeout := s.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	d := provider.Deps{Run: t.Context(), HTTP: provider.HTTP{Client: e.op.Client(), Timeout: timeout}}
	acme, err := provider.NewOIDC(provider.OIDCConfig{Name: "acme", Issuer: e.op.Issuer, ClientID: "acme-client", ClientSecret: "acme-secret"}, d)
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := provider.NewFacebook(provider.FacebookConfig{AppID: "fb-app", AppSecret: "fb-secret-0123456789", AuthURL: e.fb.AuthURL(), GraphURL: e.fb.GraphURL()}, d)
	tw, _ := provider.NewTwitter(provider.TwitterConfig{ConsumerKey: "ck", ConsumerSecret: "cs", APIURL: e.tw.URL()}, d)
	clientOnly, _ := provider.NewOIDC(provider.OIDCConfig{Name: "mobileonly", Issuer: e.op.Issuer, ClientID: "acme-client"}, d)
	reg, err := provider.NewRegistry(acme, fb, tw, clientOnly)
	if err != nil {
		t.Fatal(err)
	}
	st := user.NewSQL(db)
	e.dir, err = user.NewDirectory(st, user.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.revs = user.NewRevocationList(st, time.Second, nil, nil)
	if err := e.revs.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	authn.SetRevocations(e.revs)
	e.authn = authn
	sealer, err := user.NewRotatingSealer("login flow", authn, user.SealerOptions{MaxAge: 11 * time.Minute, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h, err := login.New(login.Options{Providers: reg, Users: e.dir, Minter: minter, Sealer: sealer, PublicURL: cfg.PublicURL,
		AllowOrigin: srv.OriginAllowed, AllowedRedirects: []string{"myapp://easyauth.callback"}, RefreshTokens: s.refresh, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.MountOn(srv)
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (e *env) do(method, path string, header map[string]string, body string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

// stateCookie returns the flow cookie a response set.
func stateCookie(t testing.TB, r resp) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "wams_state" {
			return c
		}
	}
	t.Fatalf("no wams_state cookie in %v", r.header)
	return nil
}

// pathOf returns the path and query of an absolute URL under the public URL.
func pathOf(t testing.TB, u string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(u, publicURL)
	if !ok {
		t.Fatalf("%q is not under the public URL", u)
	}
	return rest
}

// fragment decodes the #token= or #error= of a completion redirect.
func fragment(t *testing.T, loc, prefix string) (string, string) {
	t.Helper()
	base, frag, ok := strings.Cut(loc, "#")
	if !ok {
		t.Fatalf("no fragment in %q", loc)
	}
	kind, val, _ := strings.Cut(frag, "=")
	if strings.Contains(val, "+") && kind == "error" {
		t.Fatalf("fragment uses + for spaces: %q", val)
	}
	dec, err := url.PathUnescape(val)
	if err != nil {
		t.Fatal(err)
	}
	if base != prefix {
		t.Fatalf("completion at %q, want %q", base, prefix)
	}
	return kind, dec
}

type flow struct {
	start    resp
	cookie   *http.Cookie
	callback string // path + query of our callback
}

// begin runs step 1 and the provider's consent; it returns our callback request to make.
func (e *env) begin(prefix, query string) flow {
	e.t.Helper()
	r := e.do("GET", prefix+"/acme"+query, nil, "")
	if r.status != http.StatusFound {
		e.t.Fatalf("start: %d %s", r.status, r.body)
	}
	cb, redirect, err := e.op.Authorize(r.header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return flow{start: r, cookie: stateCookie(e.t, r), callback: pathOf(e.t, redirect) + "?" + cb.Encode()}
}

func cookieHeader(c *http.Cookie) map[string]string {
	return map[string]string{"Cookie": c.Name + "=" + c.Value}
}

func TestServerFlowBothFamilies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, setup{})
		for _, fam := range []struct{ prefix, cbPath, cookiePath, done, errPrefix string }{
			{"/login", "/login/acme", "/login", publicURL + "/login/done", "Error: "},
			{"/.auth/login", "/.auth/login/acme/callback", "/.auth", publicURL + "/.auth/login/done", ""},
		} {
			f := e.begin(fam.prefix, "?session_mode=token")
			c := f.cookie
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != fam.cookiePath || c.MaxAge != 600 {
				t.Fatalf("cookie attributes %+v", c)
			}
			q := e.op.LastAuthorize
			if q.Get("code_challenge_method") != "S256" || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("redirect_uri") != publicURL+fam.cbPath {
				t.Fatalf("authorize %v", q)
			}
			if strings.Contains(c.Value, q.Get("state")) || strings.Contains(c.Value, q.Get("nonce")) {
				t.Fatal("cookie is not encrypted")
			}
			r := e.do("GET", f.callback, cookieHeader(c), "")
			if r.status != http.StatusFound {
				t.Fatalf("callback %d %s", r.status, r.body)
			}
			kind, val := fragment(t, r.header.Get("Location"), fam.done)
			if kind != "token" {
				t.Fatalf("%s=%s", kind, val)
			}
			var s login.Success
			if err := json.Unmarshal([]byte(val), &s); err != nil || s.User.UserID != "acme:op-user-1" || s.AuthenticationToken == "" {
				t.Fatalf("success %q %v", val, err)
			}
			if !strings.HasPrefix(val, `{"user":{"userId":"acme:op-user-1"},"authenticationToken":"`) {
				t.Fatalf("body order %s", val)
			}
			if sc := stateCookie(t, r); sc.MaxAge >= 0 || sc.Path != fam.cookiePath {
				t.Fatalf("flow cookie not cleared: %+v", sc)
			}
			// The token reads the caller's identity.
			me := e.do("GET", "/.auth/me", map[string]string{"X-ZUMO-AUTH": s.AuthenticationToken}, "")
			if me.status != 200 || !strings.Contains(me.body, `"user_id":"acme:op-user-1"`) {
				t.Fatalf("me %d %s", me.status, me.body)
			}
			// Replay of the same callback (cookie and state) is refused.
			r = e.do("GET", f.callback, cookieHeader(c), "")
			if kind, val := fragment(t, r.header.Get("Location"), fam.done); kind != "error" || val != fam.errPrefix+"This login with acme has already been completed. Please start again." {
				t.Fatalf("replay: %s=%s", kind, val)
			}
		}
		if done := e.do("GET", "/login/done", nil, ""); done.status != 200 || done.body != "" {
			t.Fatalf("/login/done %d %q", done.status, done.body)
		}
		if done := e.do("GET", "/.auth/login/done", nil, ""); done.status != 200 || strings.Contains(done.body, "<script") {
			t.Fatalf("/.auth/login/done %d %q", done.status, done.body)
		}
	})
}

func TestServerFlowBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, setup{})
		done := publicURL + "/login/done"
		expectError := func(name string, r resp, want string) {
			t.Helper()
			if r.status != http.StatusFound {
				t.Fatalf("%s: %d %s", name, r.status, r.body)
			}
			kind, val := fragment(t, r.header.Get("Location"), done)
			if kind != "error" || !strings.Contains(val, want) {
				t.Fatalf("%s: %s=%q, want %q", name, kind, val, want)
			}
		}
		f := e.begin("/login", "")
		u, _ := url.Parse(f.callback)
		q := u.Query()
		cb := func(mut func(url.Values)) string {
			q2 := url.Values{}
			for k, v := range q {
				q2[k] = v
			}
			mut(q2)
			return u.Path + "?" + q2.Encode()
		}
		expectError("no cookie", e.do("GET", f.callback, nil, ""), "Error: Redirect from acme does not contain the required wams_state cookie.")
		expectError("forged cookie", e.do("GET", f.callback, map[string]string{"Cookie": "wams_state=v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, ""), "does not contain a valid wams_state cookie")
		expectError("garbage cookie", e.do("GET", f.callback, map[string]string{"Cookie": "wams_state=notjson"}, ""), "does not contain a valid wams_state cookie")
		expectError("oversized cookie", e.do("GET", f.callback, map[string]string{"Cookie": "wams_state=v1." + strings.Repeat("A", 5000)}, ""), "does not contain a valid wams_state cookie")
		expectError("missing state", e.do("GET", cb(func(v url.Values) { v.Del("state") }), cookieHeader(f.cookie), ""), "does not contain the required state parameter")
		expectError("wrong state", e.do("GET", cb(func(v url.Values) { v.Set("state", "x") }), cookieHeader(f.cookie), ""), "does not contain a valid state parameter")
		// A cookie from another provider's flow (or the v2 family) does not open here.
		f2 := e.begin("/.auth/login", "")
		expectError("other family's cookie", e.do("GET", f.callback, cookieHeader(f2.cookie), ""), "does not contain a valid wams_state cookie")
		// Provider error parameters, escaped for the URL fragment.
		r := e.do("GET", "/login/acme?error=access_denied&error_description=%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&state="+url.QueryEscape(q.Get("state")), cookieHeader(f.cookie), "")
		expectError("provider error", r, "Error: access_denied: </script><script>alert(1)</script>")
		if loc := r.header.Get("Location"); strings.ContainsAny(loc[strings.Index(loc, "#"):], "<> ") {
			t.Fatalf("unescaped fragment %q", loc)
		}
		// The state was consumed by the error callback: a later correct callback is a replay.
		expectError("after error", e.do("GET", f.callback, cookieHeader(f.cookie), ""), "already been completed")
		// Expired flow.
		f = e.begin("/login", "")
		e.clock.Add(11 * time.Minute)
		expectError("expired", e.do("GET", f.callback, cookieHeader(f.cookie), ""), "took too long")
		// Missing code.
		e.clock.Add(-11 * time.Minute)
		f = e.begin("/login", "")
		u, _ = url.Parse(f.callback)
		r = e.do("GET", "/login/acme?error=server_error&state="+url.QueryEscape(u.Query().Get("state")), cookieHeader(f.cookie), "")
		expectError("provider error without description", r, "Error: server_error")

		// Step 1 refusals.
		for name, tc := range map[string]struct {
			path   string
			status int
			msg    string
		}{
			"unknown provider":    {"/login/nope", 401, "Error: Authentication with 'nope' is not supported."},
			"unknown provider v2": {"/.auth/login/nope", 401, "Authentication with 'nope' is not supported."},
			"client-flow only":    {"/login/mobileonly", 401, "Error: Logging in with mobileonly is not enabled. The server flow needs oidc.mobileonly.client_secret (GATEHOUSE_OIDC_MOBILEONLY_CLIENT_SECRET); the client flow works without it."},
			"origin not allowed":  {"/login/acme?completion_type=postMessage&completion_origin=https://evil.example.com", 401, "Error: Not a whitelisted origin: https://evil.example.com"},
			"bad completion type": {"/login/acme?completion_type=popup&completion_origin=http://localhost", 400, "Error: completion_type must be postMessage or iframe."},
			"open redirect":       {"/.auth/login/acme?post_login_redirect_url=https://evil.example.com/", 400, "The post_login_redirect_url is not an allowed redirect URL."},
			"scheme-relative":     {"/.auth/login/acme?post_login_redirect_url=//evil.example.com/", 400, "The post_login_redirect_url is not an allowed redirect URL."},
			"sso without SID":     {"/login/acme?sso_end_uri=ms-app://s-1-15-2-1/", 401, "Error: Logging in with Windows 8 single sign-on is not enabled. Ensure that the Package SID has been correctly configured in the Windows Azure Mobile Service."},
		} {
			r := e.do("GET", tc.path, nil, "")
			if r.status != tc.status || r.json(t)["error"] != tc.msg {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
	})
}

func TestPublicURLRequired(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, setup{publicURL: "-"})
	r := e.do("GET", "/login/acme", map[string]string{"Host": "evil.example.com"}, "")
	if r.status != 500 || !strings.Contains(r.body, "public_url") || r.header.Get("Location") != "" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

func TestBrowserCompletionPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, setup{})
		f := e.begin("/login", "?completion_type=postMessage&completion_origin="+url.QueryEscape("http://localhost:4200"))
		r := e.do("GET", f.callback, cookieHeader(f.cookie), "")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Fatalf("%d %s", r.status, r.body)
		}
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'nonce-") {
			t.Fatalf("csp %q", csp)
		}
		if !strings.Contains(r.body, `window.opener.postMessage(envelope, origin)`) || !strings.Contains(r.body, `"http://localhost:4200"`) ||
			!strings.Contains(r.body, `\"type\":\"LoginCompleted\"`) || !strings.Contains(r.body, `acme:op-user-1`) {
			t.Fatalf("page %s", r.body)
		}
		// An error with markup from the provider: escaped for the script context.
		f = e.begin("/login", "?completion_type=postMessage&completion_origin="+url.QueryEscape("https://app.example.org"))
		u, _ := url.Parse(f.callback)
		r = e.do("GET", "/login/acme?error="+url.QueryEscape(`</script><script>alert("x")</script>`)+"&state="+url.QueryEscape(u.Query().Get("state")), cookieHeader(f.cookie), "")
		if r.status != 200 || strings.Contains(r.body, "<script>alert") || strings.Count(r.body, "</script>") != 1 || !strings.Contains(r.body, `"https://app.example.org"`) {
			t.Fatalf("escaping: %s", r.body)
		}
	})
}

func TestPostLoginRedirect(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, setup{})
	f := e.begin("/.auth/login", "?post_login_redirect_url="+url.QueryEscape("myapp://easyauth.callback"))
	r := e.do("GET", f.callback, cookieHeader(f.cookie), "")
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, "myapp://easyauth.callback#token=") {
		t.Fatalf("%d %q", r.status, loc)
	}
	f = e.begin("/.auth/login", "?post_login_redirect_url=/app/home")
	r = e.do("GET", f.callback, cookieHeader(f.cookie), "")
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, publicURL+"/app/home#token=") {
		t.Fatalf("%d %q", r.status, loc)
	}
}

func TestClientFlow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, setup{})
		for _, prefix := range []string{"/login", "/.auth/login"} {
			r := e.do("POST", prefix+"/acme", nil, `{"id_token":"`+e.op.IDToken("acme-client", "", nil)+`"}`)
			if r.status != 200 || !strings.HasPrefix(r.body, `{"user":{"userId":"acme:op-user-1"},"authenticationToken":"`) {
				t.Fatalf("%s: %d %s", prefix, r.status, r.body)
			}
			r = e.do("POST", prefix+"/mobileonly", nil, `{"id_token":"`+e.op.IDToken("acme-client", "", nil)+`"}`)
			if r.status != 200 {
				t.Fatalf("client-only provider: %d %s", r.status, r.body)
			}
		}
		r := e.do("POST", "/login/facebook", nil, `{"access_token":"fb-good"}`)
		if r.status != 200 || !strings.Contains(r.body, `"userId":"Facebook:10001"`) {
			t.Fatalf("facebook %d %s", r.status, r.body)
		}
		e.tw.AddAccessToken("tw-at", "tw-ats", providertest.TwUser{ID: "42", ScreenName: "x"})
		r = e.do("POST", "/.auth/login/twitter", nil, `{"access_token":"tw-at","access_token_secret":"tw-ats"}`)
		if r.status != 200 || !strings.Contains(r.body, `"userId":"Twitter:42"`) {
			t.Fatalf("twitter %d %s", r.status, r.body)
		}
		for name, tc := range map[string]struct {
			path, body string
			status     int
			msg        string
		}{
			"other client id": {"/login/acme", `{"id_token":"` + e.op.IDToken("someone-else", "", nil) + `"}`, 401, "Error: The acme id_token was rejected (wrong audience)."},
			"no token":        {"/login/acme", `{}`, 401, "Error: The POST acme login request must contain an id_token in the body of the request."},
			"no token v2":     {"/.auth/login/acme", `{}`, 401, "The POST acme login request must contain an id_token in the body of the request."},
			"malformed json":  {"/login/acme", `{"id_token":`, 400, ""},
			"json array":      {"/login/acme", `[1]`, 400, ""},
			"unknown":         {"/login/nope", `{}`, 401, "Error: Authentication with 'nope' is not supported."},
			"custom":          {"/login/custom", `{}`, 401, "Error: Authentication with 'custom' is not supported."},
			"facebook forged": {"/login/facebook", `{"access_token":"nope"}`, 401, "Error: The Facebook access token was rejected."},
		} {
			r := e.do("POST", tc.path, nil, tc.body)
			if r.status != tc.status || (tc.msg != "" && r.json(t)["error"] != tc.msg) {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		// Provider down: 502 with a clear message.
		e.fb.Set(func(f *providertest.Facebook) { f.Down = true })
		r = e.do("POST", "/login/facebook", nil, `{"access_token":"fb-good"}`)
		if r.status != http.StatusBadGateway || !strings.Contains(r.body, "Facebook") {
			t.Fatalf("down: %d %s", r.status, r.body)
		}
	})
}

func TestTwitterServerFlow(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, setup{})
	r := e.do("GET", "/login/twitter", nil, "")
	if r.status != http.StatusFound {
		t.Fatalf("%d %s", r.status, r.body)
	}
	cbURL, err := e.tw.Authorize(r.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	res := e.do("GET", pathOf(t, cbURL), cookieHeader(stateCookie(t, r)), "")
	kind, val := fragment(t, res.header.Get("Location"), publicURL+"/login/done")
	if kind != "token" || !strings.Contains(val, `"userId":"Twitter:12345"`) {
		t.Fatalf("%s=%s", kind, val)
	}
}

func TestSlowProvider(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, setup{timeout: 100 * time.Millisecond})
	f := e.begin("/login", "")
	e.op.Set(func(o *providertest.OP) { o.Hang = true })
	r := e.do("GET", f.callback, cookieHeader(f.cookie), "")
	if kind, val := fragment(t, r.header.Get("Location"), publicURL+"/login/done"); kind != "error" || !strings.Contains(val, "token endpoint could not be reached") {
		t.Fatalf("%s=%s", kind, val)
	}
}

func loginToken(t *testing.T, e *env) login.Success {
	t.Helper()
	r := e.do("POST", "/.auth/login/acme", nil, `{"id_token":"`+e.op.IDToken("acme-client", "", nil)+`"}`)
	if r.status != 200 {
		t.Fatalf("login %d %s", r.status, r.body)
	}
	var s login.Success
	json.Unmarshal([]byte(r.body), &s) //nolint:errcheck
	return s
}

func TestRefreshAndLogout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, setup{refresh: true})
		s := loginToken(t, e)
		if !strings.HasPrefix(s.RefreshToken, "ghr_") {
			t.Fatalf("no refresh token: %+v", s)
		}
		r := e.do("POST", "/.auth/refresh", nil, `{"refresh_token":"`+s.RefreshToken+`"}`)
		if r.status != 200 {
			t.Fatalf("refresh %d %s", r.status, r.body)
		}
		var s2 login.Success
		json.Unmarshal([]byte(r.body), &s2) //nolint:errcheck
		if s2.User.UserID != "acme:op-user-1" || s2.RefreshToken == "" || s2.RefreshToken == s.RefreshToken {
			t.Fatalf("%+v", s2)
		}
		// Reuse of the spent token: refused, and the family (s2's token too) is revoked.
		if r := e.do("POST", "/.auth/refresh", nil, `{"refresh_token":"`+s.RefreshToken+`"}`); r.status != 401 || r.json(t)["error"] != "The refresh token is invalid, expired or revoked." {
			t.Fatalf("reuse %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/.auth/refresh", nil, `{"refresh_token":"`+s2.RefreshToken+`"}`); r.status != 401 {
			t.Fatalf("family %d %s", r.status, r.body)
		}
		// GET with a valid app token: a fresh one.
		r = e.do("GET", "/.auth/refresh", map[string]string{"X-ZUMO-AUTH": s2.AuthenticationToken}, "")
		if r.status != 200 || !strings.Contains(r.body, `"authenticationToken"`) {
			t.Fatalf("token refresh %d %s", r.status, r.body)
		}
		if r := e.do("GET", "/.auth/refresh", nil, ""); r.status != 401 {
			t.Fatalf("anonymous refresh %d", r.status)
		}

		// Logout everywhere: every token issued so far stops working once the instance polled.
		e.clock.Add(2 * time.Second)
		if r := e.do("POST", "/.auth/logout", map[string]string{"X-ZUMO-AUTH": s2.AuthenticationToken}, ""); r.status != 200 || r.json(t)["scope"] != "all" {
			t.Fatalf("logout %d %s", r.status, r.body)
		}
		if err := e.revs.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		me := e.do("GET", "/.auth/me", map[string]string{"X-ZUMO-AUTH": s2.AuthenticationToken}, "")
		if me.status != 401 || !strings.Contains(me.body, "revoked") {
			t.Fatalf("after logout %d %s", me.status, me.body)
		}
		if r := e.do("GET", "/.auth/logout?post_logout_redirect_uri=https://evil.example.com/", nil, ""); r.status != 400 {
			t.Fatalf("logout open redirect %d", r.status)
		}
		if r := e.do("GET", "/.auth/logout?post_logout_redirect_uri=/bye", nil, ""); r.status != 302 || r.header.Get("Location") != publicURL+"/bye" {
			t.Fatalf("logout redirect %d %v", r.status, r.header)
		}
	})
}

func TestAdminUsers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, setup{})
		s := loginToken(t, e)
		admin := map[string]string{"X-ZUMO-MASTER": masterKey}
		if r := e.do("GET", "/admin/users", nil, ""); r.status != 401 {
			t.Fatalf("without master key: %d", r.status)
		}
		r := e.do("GET", "/admin/users", admin, "")
		if r.status != 200 || !strings.Contains(r.body, `"id":"acme:op-user-1"`) {
			t.Fatalf("list %d %s", r.status, r.body)
		}
		r = e.do("GET", "/admin/users/acme:op-user-1", admin, "")
		if r.status != 200 || !strings.Contains(r.body, `"subject":"op-user-1"`) || !strings.Contains(r.body, `"email":"u@example.com"`) {
			t.Fatalf("show %d %s", r.status, r.body)
		}
		if r := e.do("GET", "/admin/users/nobody:1", admin, ""); r.status != 404 {
			t.Fatalf("unknown %d", r.status)
		}
		e.clock.Add(2 * time.Second)
		r = e.do("POST", "/admin/users/acme:op-user-1/disable", admin, "")
		if r.status != 200 || !strings.Contains(r.body, `"disabled":true`) {
			t.Fatalf("disable %d %s", r.status, r.body)
		}
		e.revs.Sync(context.Background()) //nolint:errcheck
		if me := e.do("GET", "/.auth/me", map[string]string{"X-ZUMO-AUTH": s.AuthenticationToken}, ""); me.status != 401 {
			t.Fatalf("disabled user's token %d", me.status)
		}
		r = e.do("POST", "/login/acme", nil, `{"id_token":"`+e.op.IDToken("acme-client", "", nil)+`"}`)
		if r.status != 403 || r.json(t)["error"] != "Error: The user account is disabled." {
			t.Fatalf("login of disabled user %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/admin/users/acme:op-user-1/enable", admin, ""); r.status != 200 {
			t.Fatalf("enable %d", r.status)
		}
		if r := e.do("POST", "/login/acme", nil, `{"id_token":"`+e.op.IDToken("acme-client", "", nil)+`"}`); r.status != 200 {
			t.Fatalf("login after enable %d %s", r.status, r.body)
		}
	})
}

func TestIframeReceiver(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, db, setup{})
	r := e.do("GET", "/.auth/login/iframereceiver?completion_origin="+url.QueryEscape("https://app.example.org"), nil, "")
	if r.status != 200 || !strings.Contains(r.body, `window.parent.postMessage(envelope, "https://app.example.org")`) ||
		!strings.HasSuffix(r.header.Get("Content-Security-Policy"), "frame-ancestors https://app.example.org") {
		t.Fatalf("%d %v %s", r.status, r.header, r.body)
	}
	for _, bad := range []string{"", "https://evil.example.com", "https://app.example.org; script-src *"} {
		if r := e.do("GET", "/.auth/login/iframereceiver?completion_origin="+url.QueryEscape(bad), nil, ""); r.status != 401 {
			t.Errorf("%q: %d", bad, r.status)
		}
	}
}
