package account_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/mail/mailtest"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/user"
)

const masterKey = "account-test-master-key-0123456"

// clock is a fake clock for throttling and link expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// revoked reads the users directory's revocations and refresh-token state from the database.
func (e *env) revokedUsers() map[string]bool {
	e.t.Helper()
	rows, err := user.NewSQL(e.db).RevocationsSince(context.Background(), time.Time{})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range rows {
		out[r.UserID] = true
	}
	return out
}

// tokenWorks reports whether an app token is still accepted, after the revocation list caught up.
func (e *env) tokenWorks(tok string) bool {
	e.t.Helper()
	if err := e.revs.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return e.do("GET", "/.auth/me", "", "X-ZUMO-AUTH", tok).status == 200
}

type env struct {
	t     testing.TB
	ts    *httptest.Server
	svc   *account.Service
	smtp  *mailtest.Server
	clock *clock
	dir   *user.Directory
	revs  *user.RevocationList
	auth  *auth.Authenticator
	db    *store.DB
}

type envOpt struct {
	params       password.Params
	requireVerif bool
	closed       bool
	limiter      *password.Limiter
	noUsers      bool
	keepHashes   bool
	env          map[string]string // configuration environment (e.g. GATEHOUSE_TRUSTED_PROXIES)
	publicURL    string            // passkeys' relying party
}

var cheap = password.Params{Memory: 64, Time: 1, Threads: 1}

func newEnv(t testing.TB, db *store.DB, o envOpt) *env {
	t.Helper()
	if o.params == (password.Params{}) {
		o.params = cheap
	}
	cfg, err := config.Load(nil, func(k string) string { return o.env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	a, err := auth.New(auth.Secrets{MasterKey: masterKey, ApplicationKey: "account-test-app-key-0123456789", SystemKey: "account-test-system-key-0123456"}, auth.Options{MaxTTL: 24 * time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	minter := &auth.Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}
	srv := server.New(server.Deps{Config: cfg, Auth: a, Minter: minter, App: appdir.Empty(), DB: db, Metrics: metrics.New("test"), Logger: log, Version: "test"})

	smtpSrv := mailtest.Start(t, mailtest.Options{Username: "mailer", Password: "mail-password"})
	mailer, err := mail.NewSMTP(mail.SMTPConfig{Host: smtpSrv.Host, Port: smtpSrv.Port, Username: "mailer", Password: "mail-password", From: "Gatehouse <no-reply@example.com>", TLSConfig: smtpSrv.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := password.NewHasher(password.Config{Params: o.params, Limiter: o.limiter})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, smtp: smtpSrv, clock: clk, auth: a, db: db}
	var users account.Users
	if !o.noUsers {
		e.dir, err = user.NewDirectory(user.NewSQL(db), user.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		e.revs = user.NewRevocationList(user.NewSQL(db), time.Second, log, clk.Now)
		a.SetRevocations(e.revs)
		users = account.UserDirectory{Dir: e.dir, Refresh: true}
	}
	var base string
	sealer, err := user.NewRotatingSealer("account second factors", a, user.SealerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var passkeys *account.PasskeyConfig
	if o.publicURL != "" {
		if passkeys, err = account.PasskeyConfigFor(o.publicURL, nil); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := account.NewService(account.Options{
		Sealer: sealer, Passkeys: passkeys,
		SignInLink: func(tok string) string { return base + "/login/custom/email/confirm?token=" + url.QueryEscape(tok) },
		Store:      account.NewSQL(db), Hasher: h, Mailer: mailer, Minter: minter, Users: users,
		ResetLink:   func(tok string) string { return base + "/login/custom/reset/confirm?token=" + url.QueryEscape(tok) },
		VerifyLink:  func(tok string) string { return base + "/.auth/login/custom/verify?token=" + url.QueryEscape(tok) },
		ServiceName: "TestApp", AllowRegistration: !o.closed, RequireVerifiedEmail: o.requireVerif, KeepLegacyHashes: o.keepHashes,
		Now: clk.Now, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	hd := &account.Handler{Service: svc, Auth: a, Log: log, PublicURL: o.publicURL}
	for _, p := range hd.Prefixes() {
		srv.Mount(p, p, hd)
	}
	srv.Mount(account.AdminPrefix, account.AdminPrefix, &account.AdminHandler{Service: svc})
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	base = e.ts.URL
	return e
}

type resp struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func (e *env) do(method, path, body string, hdr ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, body: string(b)}
	json.Unmarshal(b, &r.json) //nolint:errcheck // not every body is JSON
	return r
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var linkRe = regexp.MustCompile(`https?://\S+token=\S+`)

func link(t *testing.T, m mailtest.Received) string {
	t.Helper()
	l := linkRe.FindString(m.Text)
	if l == "" {
		t.Fatalf("no link in the email:\n%s", m.Text)
	}
	return l
}

func tokenOf(t *testing.T, l string) string {
	u, err := url.Parse(l)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

// prefixes are both route families with the dialect header that goes with them.
var families = []struct {
	name   string
	prefix string
	hdr    []string
}{
	{"v1", "/login/custom", nil},
	{"v2", "/.auth/login/custom", []string{"ZUMO-API-VERSION", "2.0.0"}},
}

func TestAccountLifecycleBothFamilies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{requireVerif: true})
		for _, f := range families {
			t.Run(f.name, func(t *testing.T) {
				email := "Ann." + f.name + "@Example.COM"
				pw := "correct horse battery"
				r := e.do("POST", f.prefix+"/register", js(map[string]string{"email": email, "password": pw}), f.hdr...)
				if r.status != http.StatusAccepted {
					t.Fatalf("register: %d %s", r.status, r.body)
				}
				// Not verified yet: the right password gets 403, the wrong one the generic 401.
				if r := e.do("POST", f.prefix, js(map[string]string{"email": email, "password": pw}), f.hdr...); r.status != http.StatusForbidden {
					t.Fatalf("unverified login: %d %s", r.status, r.body)
				}
				m := e.smtp.Wait(t)
				if m.To[0] != "Ann."+f.name+"@example.com" || !strings.Contains(m.Subject, "Verify") {
					t.Fatalf("verification mail to %v: %q", m.To, m.Subject)
				}
				// Follow the link as a browser would.
				res, err := http.Get(link(t, m))
				if err != nil {
					t.Fatal(err)
				}
				page, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || !strings.Contains(string(page), "verified") {
					t.Fatalf("verify link: %d %s", res.StatusCode, page)
				}
				// Reusing it fails.
				if res, _ := http.Get(link(t, m)); res.StatusCode != http.StatusBadRequest {
					t.Fatalf("reused verify link: %d", res.StatusCode)
				}

				r = e.do("POST", f.prefix, js(map[string]string{"email": strings.ToLower(email), "password": pw}), f.hdr...)
				if r.status != 200 {
					t.Fatalf("login: %d %s", r.status, r.body)
				}
				uid := r.json["user"].(map[string]any)["userId"].(string)
				if !strings.HasPrefix(uid, "custom:") || r.json["authenticationToken"] == "" || r.json["refreshToken"] == nil {
					t.Fatalf("login body %s", r.body)
				}
				if len(r.json) != 3 {
					t.Fatalf("login body has extra fields: %s", r.body)
				}
				tok := r.json["authenticationToken"].(string)
				c, err := e.auth.Identify(auth.Credentials{Token: tok, HasToken: true})
				if err != nil || c.UserID() != uid {
					t.Fatalf("token does not verify: %v %v", err, c)
				}
				// /.auth/me knows the user.
				if r := e.do("GET", "/.auth/me", "", "X-ZUMO-AUTH", tok); r.status != 200 || !strings.Contains(r.body, uid) {
					t.Fatalf("/.auth/me: %d %s", r.status, r.body)
				}

				// Change password: wrong current → 403; right → new session, other sessions revoked.
				auth := append([]string{"X-ZUMO-AUTH", tok}, f.hdr...)
				if r := e.do("POST", f.prefix+"/password", js(map[string]string{"currentPassword": "nope nope", "newPassword": "another good one"}), auth...); r.status != http.StatusForbidden {
					t.Fatalf("wrong current: %d %s", r.status, r.body)
				}
				if r := e.do("POST", f.prefix+"/password", js(map[string]string{"currentPassword": pw, "newPassword": "short"}), auth...); r.status != http.StatusBadRequest || !strings.Contains(r.body, "at least 8") {
					t.Fatalf("short new: %d %s", r.status, r.body)
				}
				if r := e.do("POST", f.prefix+"/password", js(map[string]string{"currentPassword": pw, "newPassword": "another good one"})); r.status != http.StatusUnauthorized {
					t.Fatalf("change without token: %d %s", r.status, r.body)
				}
				r = e.do("POST", f.prefix+"/password", js(map[string]string{"currentPassword": pw, "newPassword": "another good one"}), auth...)
				if r.status != 200 || r.json["authenticationToken"] == nil {
					t.Fatalf("change: %d %s", r.status, r.body)
				}
				if !e.revokedUsers()[uid] {
					t.Fatalf("sessions of %s not revoked", uid)
				}
				newTok := r.json["authenticationToken"].(string)
				if !e.tokenWorks(newTok) {
					t.Fatal("the token returned by the password change does not work")
				}
				if r := e.do("POST", f.prefix, js(map[string]string{"email": email, "password": pw}), f.hdr...); r.status != http.StatusUnauthorized {
					t.Fatalf("old password still works: %d", r.status)
				}
				pw = "another good one"

				// Reset: request, the emailed form, confirm, the link is single-use.
				if r := e.do("POST", f.prefix+"/reset", js(map[string]string{"email": email}), f.hdr...); r.status != http.StatusAccepted {
					t.Fatalf("reset: %d %s", r.status, r.body)
				}
				m = e.smtp.Wait(t)
				l := link(t, m)
				res, err = http.Get(l)
				if err != nil {
					t.Fatal(err)
				}
				page, _ = io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || !strings.Contains(string(page), `name="password"`) || res.Header.Get("Content-Security-Policy") == "" {
					t.Fatalf("reset form: %d %s", res.StatusCode, page)
				}
				form := url.Values{"token": {tokenOf(t, l)}, "password": {"brand new secret"}}
				res, err = http.PostForm(e.ts.URL+"/login/custom/reset/confirm", form)
				if err != nil {
					t.Fatal(err)
				}
				page, _ = io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || !strings.Contains(string(page), "Password changed") {
					t.Fatalf("reset confirm: %d %s", res.StatusCode, page)
				}
				if r := e.do("POST", f.prefix+"/reset/confirm", js(map[string]string{"token": tokenOf(t, l), "password": "yet another secret"}), f.hdr...); r.status != http.StatusBadRequest || !strings.Contains(r.body, "already used") {
					t.Fatalf("reused reset token: %d %s", r.status, r.body)
				}
				if r := e.do("POST", f.prefix, js(map[string]string{"email": email, "password": "brand new secret"}), f.hdr...); r.status != 200 {
					t.Fatalf("login after reset: %d %s", r.status, r.body)
				}

				// Logout revokes the refresh token's family, or everything.
				r = e.do("POST", f.prefix, js(map[string]string{"email": email, "password": "brand new secret"}), f.hdr...)
				tok, refresh := r.json["authenticationToken"].(string), r.json["refreshToken"].(string)
				auth = append([]string{"X-ZUMO-AUTH", tok}, f.hdr...)
				if _, err := e.dir.Refresh(context.Background(), refresh); err != nil {
					t.Fatalf("refresh token from login does not work: %v", err)
				}
				r = e.do("POST", f.prefix, js(map[string]string{"email": email, "password": "brand new secret"}), f.hdr...)
				refresh = r.json["refreshToken"].(string)
				if r := e.do("POST", f.prefix+"/logout", js(map[string]any{"refreshToken": refresh}), auth...); r.status != http.StatusNoContent {
					t.Fatalf("logout: %d %s", r.status, r.body)
				}
				if _, err := e.dir.Refresh(context.Background(), refresh); err == nil {
					t.Fatal("refresh token works after logout")
				}
				if r := e.do("POST", f.prefix+"/logout", "", auth...); r.status != http.StatusNoContent {
					t.Fatalf("logout without body: %d %s", r.status, r.body)
				}
				if !e.tokenWorks(tok) {
					t.Fatal("single-session logout revoked the app token")
				}
				// Logout everywhere: a token minted before this second stops working.
				e.clock.Advance(time.Second) // app tokens carry whole seconds
				if r := e.do("POST", f.prefix+"/logout", js(map[string]any{"everywhere": true}), auth...); r.status != http.StatusNoContent {
					t.Fatalf("logout everywhere: %d %s", r.status, r.body)
				}
				if e.tokenWorks(tok) {
					t.Fatal("app token still works after logout everywhere")
				}
			})
		}
	})
}

func TestResetLinkExpiresAndDiesWithPasswordChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{})
		ctx := context.Background()
		if _, err := e.svc.Add(ctx, "bob@example.com", "bobs password", true); err != nil {
			t.Fatal(err)
		}
		request := func() string {
			if r := e.do("POST", "/login/custom/reset", js(map[string]string{"email": "bob@example.com"})); r.status != 202 {
				t.Fatalf("reset: %d", r.status)
			}
			return tokenOf(t, link(t, e.smtp.Wait(t)))
		}
		confirm := func(tok string) resp {
			return e.do("POST", "/login/custom/reset/confirm", js(map[string]string{"token": tok, "password": "a fresh password"}))
		}
		// Expired after 30 minutes.
		tok := request()
		e.clock.Advance(30*time.Minute + time.Second)
		if r := confirm(tok); r.status != 400 {
			t.Fatalf("expired token: %d %s", r.status, r.body)
		}
		// Void once the password changed by another route (admin set-password here).
		tok = request()
		a, err := e.svc.Find(ctx, "bob@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SetPassword(ctx, a.ID, "admin set this one"); err != nil {
			t.Fatal(err)
		}
		if r := confirm(tok); r.status != 400 {
			t.Fatalf("token outlived a password change: %d %s", r.status, r.body)
		}
		// Two outstanding links: the first use voids the other (the stamp changed).
		t1, t2 := request(), request()
		if r := confirm(t1); r.status != 200 {
			t.Fatalf("first link: %d %s", r.status, r.body)
		}
		if r := confirm(t2); r.status != 400 {
			t.Fatalf("second link after the first: %d %s", r.status, r.body)
		}
		// Garbage, empty and overlong tokens.
		for _, bad := range []string{"nope", strings.Repeat("A", 43), strings.Repeat("A", 500)} {
			if r := confirm(bad); r.status != 400 {
				t.Fatalf("token %q: %d", bad, r.status)
			}
		}
	})
}

func TestDuplicateRegistrationLooksLikeSuccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{})
		body := js(map[string]string{"email": "cy@example.com", "password": "first password"})
		first := e.do("POST", "/login/custom/register", body)
		e.smtp.Wait(t) // verification
		second := e.do("POST", "/login/custom/register", js(map[string]string{"email": "CY@example.com", "password": "attacker password"}))
		if first.status != second.status || first.body != second.body {
			t.Fatalf("different answers: %d %s / %d %s", first.status, first.body, second.status, second.body)
		}
		m := e.smtp.Wait(t)
		if !strings.Contains(m.Subject, "Sign-up attempt") || m.To[0] != "cy@example.com" {
			t.Fatalf("owner notice: %q to %v", m.Subject, m.To)
		}
		// The original password still works; the attacker's does not.
		if r := e.do("POST", "/login/custom", js(map[string]string{"email": "cy@example.com", "password": "first password"})); r.status != 200 {
			t.Fatalf("owner login: %d", r.status)
		}
		if r := e.do("POST", "/login/custom", js(map[string]string{"email": "cy@example.com", "password": "attacker password"})); r.status != 401 {
			t.Fatalf("attacker login: %d", r.status)
		}
	})
}

func TestBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{})
		long := strings.Repeat("a", 1025)
		cases := []struct {
			name, path, body string
			status           int
			msg              string
		}{
			{"malformed JSON", "", `{"email":`, 400, "not valid JSON"},
			{"not an object", "", `[1,2]`, 400, "not valid JSON"},
			{"wrong type", "", `{"email":1,"password":"x"}`, 400, "not valid JSON"},
			{"empty body", "", ``, 400, "empty"},
			{"missing email", "", `{"password":"whatever1"}`, 400, "'email' is required"},
			{"missing password", "", `{"email":"a@example.com"}`, 400, "'password' is required"},
			{"invalid email", "", `{"email":"not-an-email","password":"whatever1"}`, 400, "email address is not valid"},
			{"display name email", "", `{"email":"Ann <a@example.com>","password":"whatever1"}`, 400, "not valid"},
			{"overlong email", "", js(map[string]string{"email": strings.Repeat("a", 250) + "@example.com", "password": "whatever1"}), 400, "too long"},
			{"overlong password", "", js(map[string]string{"email": "a@example.com", "password": long}), 400, "too long"},
			{"register short password", "/register", `{"email":"a@example.com","password":"1234567"}`, 400, "at least 8"},
			{"register overlong password", "/register", js(map[string]string{"email": "a@example.com", "password": long}), 400, "too long"},
			{"register invalid email", "/register", `{"email":"a@b","password":"12345678"}`, 400, "not valid"},
			{"register missing fields", "/register", `{}`, 400, "required"},
			{"reset invalid email", "/reset", `{"email":"x"}`, 400, "not valid"},
			{"reset missing email", "/reset", `{}`, 400, "required"},
			{"confirm missing token", "/reset/confirm", `{"password":"12345678"}`, 400, "'token' is required"},
			{"confirm bad token", "/reset/confirm", `{"token":"abc","password":"12345678"}`, 400, "invalid, expired"},
			{"confirm short password", "/reset/confirm", `{"token":"abc","password":"1"}`, 400, "at least 8"},
			{"verify bad token", "/verify", `{"token":"abc"}`, 400, "invalid, expired"},
			{"verify missing token", "/verify", `{}`, 400, "required"},
			{"unknown account", "", `{"email":"ghost@example.com","password":"whatever1"}`, 401, "Invalid email or password"},
			{"unknown subpath", "/nope", `{}`, 404, "Not Found"},
			{"logout without token", "/logout", `{}`, 401, ""},
			{"password with a bad token", "/password", `{}`, 401, ""},
		}
		for _, tc := range cases {
			for _, f := range families {
				r := e.do("POST", f.prefix+tc.path, tc.body, f.hdr...)
				if r.status != tc.status || !strings.Contains(r.body, tc.msg) {
					t.Errorf("%s (%s): %d %s, want %d containing %q", tc.name, f.name, r.status, r.body, tc.status, tc.msg)
				}
				// The error shape of the dialect.
				if f.name == "v1" && (r.json["code"] == nil || !strings.HasPrefix(fmt.Sprint(r.json["error"]), "Error: ")) {
					t.Errorf("%s: v1 shape: %s", tc.name, r.body)
				}
				if f.name == "v2" && (r.json["code"] != nil || r.json["error"] == nil) {
					t.Errorf("%s: v2 shape: %s", tc.name, r.body)
				}
			}
		}
		if r := e.do("GET", "/login/custom", ""); r.status != 405 || r.header.Get("Allow") != "POST" {
			t.Errorf("GET login: %d %v", r.status, r.header)
		}
		// A body over the server's limit: 413.
		big := `{"email":"a@example.com","password":"` + strings.Repeat("x", 2<<20) + `"}`
		if r := e.do("POST", "/login/custom", big); r.status != 413 {
			t.Errorf("huge body: %d", r.status)
		}
		// Nothing was half-written by any of this.
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM gatehouse_accounts`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("accounts after bad input: %d %v", n, err)
		}
	})
}

func TestRegistrationClosed(t *testing.T) {
	e := newEnv(t, storetest.Open(t, storetest.SQLiteURL(t)), envOpt{closed: true})
	if r := e.do("POST", "/login/custom/register", `{"email":"a@example.com","password":"12345678"}`); r.status != 403 {
		t.Fatalf("closed registration: %d %s", r.status, r.body)
	}
}

func TestDisabledAccount(t *testing.T) {
	e := newEnv(t, storetest.Open(t, storetest.SQLiteURL(t)), envOpt{})
	ctx := context.Background()
	a, err := e.svc.Add(ctx, "dee@example.com", "dees password", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetDisabled(ctx, a.ID, true); err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/login/custom", `{"email":"dee@example.com","password":"dees password"}`); r.status != 403 {
		t.Fatalf("disabled: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/login/custom", `{"email":"dee@example.com","password":"wrong password"}`); r.status != 401 {
		t.Fatalf("disabled, wrong password: %d %s", r.status, r.body)
	}
	if u, err := e.dir.Get(ctx, "custom:"+a.ID); err != nil || !u.Disabled {
		t.Fatalf("user not disabled in the directory: %+v %v", u, err)
	}
	if err := e.svc.SetDisabled(ctx, a.ID, false); err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/login/custom", `{"email":"dee@example.com","password":"dees password"}`); r.status != 200 {
		t.Fatalf("re-enabled: %d %s", r.status, r.body)
	}
}

func TestBusyHasherAnswers503(t *testing.T) {
	lim := password.NewLimiter(1, 0)
	e := newEnv(t, storetest.Open(t, storetest.SQLiteURL(t)), envOpt{limiter: lim})
	hold := make(chan struct{})
	started := make(chan struct{})
	go lim.Do(context.Background(), func() error { close(started); <-hold; return nil }) //nolint:errcheck
	<-started
	r := e.do("POST", "/login/custom", `{"email":"a@example.com","password":"12345678"}`)
	close(hold)
	if r.status != 503 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("busy: %d %v %s", r.status, r.header, r.body)
	}
}

func TestAdminAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOpt{})
		mk := []string{"X-ZUMO-MASTER", masterKey}
		if r := e.do("GET", "/admin/accounts", ""); r.status != 401 {
			t.Fatalf("without master key: %d", r.status)
		}
		if r := e.do("GET", "/admin/accounts", "", "X-ZUMO-APPLICATION", "account-test-app-key-0123456789"); r.status != 401 {
			t.Fatalf("with the application key: %d", r.status)
		}
		r := e.do("POST", "/admin/accounts", `{"email":"Zed@Example.com","password":"zeds password","emailVerified":true}`, mk...)
		if r.status != 201 || r.json["email"] != "Zed@example.com" || r.json["passwordScheme"] != "argon2id" || r.json["emailVerified"] != true {
			t.Fatalf("add: %d %s", r.status, r.body)
		}
		if strings.Contains(r.body, "$argon2id") {
			t.Fatal("the hash leaked")
		}
		id := r.json["id"].(string)
		if r := e.do("POST", "/admin/accounts", `{"email":"zed@example.com"}`, mk...); r.status != 409 {
			t.Fatalf("duplicate add: %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/admin/accounts", `{"email":"y@example.com","password":"short"}`, mk...); r.status != 400 {
			t.Fatalf("short password: %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/admin/accounts", `{"email":"nopw@example.com"}`, mk...); r.status != 201 || r.json["passwordScheme"] != "none" {
			t.Fatalf("add without password: %d %s", r.status, r.body)
		}
		for _, ref := range []string{id, "zed@example.com", url.PathEscape("custom:" + id)} {
			if r := e.do("GET", "/admin/accounts/"+ref, "", mk...); r.status != 200 || r.json["id"] != id {
				t.Fatalf("show %s: %d %s", ref, r.status, r.body)
			}
		}
		if r := e.do("GET", "/admin/accounts/nobody@example.com", "", mk...); r.status != 404 {
			t.Fatalf("show unknown: %d", r.status)
		}
		r = e.do("GET", "/admin/accounts?limit=1", "", mk...)
		if r.status != 200 || len(r.json["accounts"].([]any)) != 1 || r.json["next"] == nil {
			t.Fatalf("list page 1: %s", r.body)
		}
		r = e.do("GET", "/admin/accounts?limit=1&after="+r.json["next"].(string), "", mk...)
		if r.status != 200 || len(r.json["accounts"].([]any)) != 1 {
			t.Fatalf("list page 2: %s", r.body)
		}
		if r := e.do("POST", "/admin/accounts/"+id+"/disable", "", mk...); r.status != 200 || r.json["disabled"] != true {
			t.Fatalf("disable: %d %s", r.status, r.body)
		}
		if r := login(e, "zed@example.com", "zeds password", "10.9.9.9"); r.status != 403 {
			t.Fatalf("login while disabled: %d", r.status)
		}
		if r := e.do("POST", "/admin/accounts/"+id+"/enable", "", mk...); r.status != 200 || r.json["disabled"] != false {
			t.Fatalf("enable: %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/admin/accounts/"+id+"/password", `{"password":"set by the admin"}`, mk...); r.status != 204 {
			t.Fatalf("set password: %d %s", r.status, r.body)
		}
		if r := login(e, "zed@example.com", "set by the admin", "10.9.9.9"); r.status != 200 {
			t.Fatalf("login with the admin's password: %d %s", r.status, r.body)
		}
		csv := "email,user_id,hash_format,hash,salt\nann@example.com,Custom:1,zumo,lEgtee7nF9+YepTb9EairotYaysAL3EYKHVqYOW73FU=,d9Wgx1bBKiXtOdOW07lxnh+BwSrXOxaMshj/ls5Hsu8=\nbroken,,,,\n"
		r = e.do("POST", "/admin/accounts/import", csv, append(mk, "Content-Type", "text/csv")...)
		if r.status != 200 || r.json["created"] != float64(1) || r.json["errors"] != float64(1) {
			t.Fatalf("import: %d %s", r.status, r.body)
		}
		r = e.do("POST", "/admin/accounts/import", csv, append(mk, "Content-Type", "text/csv")...)
		if r.status != 200 || r.json["exists"] != float64(1) || r.json["created"] != float64(0) {
			t.Fatalf("re-import: %d %s", r.status, r.body)
		}
		if r := e.do("POST", "/admin/accounts/import?format=csv", "name,address\nx,y\n", mk...); r.status != 400 {
			t.Fatalf("bad file: %d %s", r.status, r.body)
		}
		if r := login(e, "ann@example.com", "Passw0rd!", "10.9.9.8"); r.status != 200 || r.json["user"].(map[string]any)["userId"] != "Custom:1" {
			t.Fatalf("imported login: %d %s", r.status, r.body)
		}
		if r := e.do("GET", "/admin/accounts/ann@example.com", "", mk...); r.json["passwordScheme"] != "argon2id" || r.json["userId"] != "Custom:1" {
			t.Fatalf("after upgrade: %s", r.body)
		}
		// The imported user is a user of the directory.
		if _, err := e.dir.Get(context.Background(), "Custom:1"); err != nil {
			t.Fatalf("imported user not in the directory: %v", err)
		}
	})
}
