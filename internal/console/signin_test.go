package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/token"
)

func TestStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := NewSQL(db)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		tok, err := IssueSetupLink(ctx, st, now, time.Hour)
		if err != nil || tok == "" {
			t.Fatalf("setup link: %q %v", tok, err)
		}
		if ok, _ := st.SetupTokenValid(ctx, hashToken(tok), now.Add(time.Hour)); ok {
			t.Fatal("an expired setup token is valid")
		}
		a := &Admin{ID: "a1", Email: "A@example.com", EmailKey: "a@example.com", PasswordHash: "h", CreatedAt: now, UpdatedAt: now}
		if err := st.SetupAdmin(ctx, hashToken("wrong"), a, now); !errors.Is(err, ErrSetupUsed) {
			t.Fatalf("unknown token: %v", err)
		}
		if err := st.SetupAdmin(ctx, hashToken(tok), a, now); err != nil {
			t.Fatal(err)
		}
		if err := st.SetupAdmin(ctx, hashToken(tok), &Admin{ID: "a2", EmailKey: "b@example.com", CreatedAt: now}, now); !errors.Is(err, ErrSetupUsed) {
			t.Fatalf("second use: %v", err)
		}
		// A fresh token cannot create a second administrator through setup either.
		tok2 := randomToken(32)
		if err := st.PutSetupToken(ctx, hashToken(tok2), now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := st.SetupAdmin(ctx, hashToken(tok2), &Admin{ID: "a3", EmailKey: "c@example.com", CreatedAt: now}, now); !errors.Is(err, ErrSetupUsed) {
			t.Fatalf("setup with an admin present: %v", err)
		}
		if tok, err := IssueSetupLink(ctx, st, now, time.Hour); err != nil || tok != "" {
			t.Fatalf("setup link with an admin: %q %v", tok, err)
		}
		if err := st.CreateAdmin(ctx, &Admin{ID: "a4", EmailKey: "a@example.com", CreatedAt: now}); !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate email: %v", err)
		}
		got, err := st.AdminByEmailKey(ctx, "a@example.com")
		if err != nil || got.ID != "a1" || got.Email != "A@example.com" || !got.CreatedAt.Equal(now) {
			t.Fatalf("admin: %+v %v", got, err)
		}
		s1 := &Session{IDHash: "h1", AdminID: "a1", CreatedAt: now, SeenAt: now, ExpiresAt: now.Add(12 * time.Hour), Remote: "127.0.0.1", Agent: "test"}
		s2 := &Session{IDHash: "h2", AdminID: "a1", CreatedAt: now, SeenAt: now.Add(time.Hour), ExpiresAt: now.Add(12 * time.Hour)}
		for _, s := range []*Session{s1, s2} {
			if err := st.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.TouchSession(ctx, "h1", now.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if s, err := st.Session(ctx, "h1"); err != nil || !s.SeenAt.Equal(now.Add(2*time.Hour)) {
			t.Fatalf("touched session: %+v %v", s, err)
		}
		list, err := st.AdminSessions(ctx, "a1")
		if err != nil || len(list) != 2 || list[0].IDHash != "h1" {
			t.Fatalf("sessions: %v %v", list, err)
		}
		// Idle for 30 minutes at now+2h29: h2 (seen at +1h) goes, h1 (seen at +2h) stays.
		if n, err := st.DeleteExpired(ctx, now.Add(149*time.Minute), 30*time.Minute); err != nil || n != 1 {
			t.Fatalf("expired: %d %v", n, err)
		}
		if n, err := st.DeleteAdminSessions(ctx, "a1"); err != nil || n != 1 {
			t.Fatalf("sign out everywhere: %d %v", n, err)
		}
		if _, err := st.Session(ctx, "h1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("session after sign-out: %v", err)
		}
	})
}

func TestSetupLinkSingleUse(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	b := h.signedIn()
	// The link is spent: a second browser cannot use it, not even to see the form.
	o := h.browser()
	if p := o.get("/console/setup?token=" + url.QueryEscape(h.setup)); p.status != http.StatusNotFound {
		t.Fatalf("used link: %d", p.status)
	}
	if p := b.get("/console/account"); p.status != http.StatusOK || !strings.Contains(p.body, adminEmail) {
		t.Fatalf("account page: %d", p.status)
	}
	acts := h.auditActions(t)
	if len(acts) == 0 || !strings.HasPrefix(acts[0], "console.admin.create "+adminEmail) {
		t.Fatalf("audit: %v", acts)
	}
}

func TestSignInAndThrottle(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	h.signedIn()
	b := h.browser()
	if p := b.get("/console/data"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/console/signin?next=") {
		t.Fatalf("anonymous: %d %s", p.status, p.header.Get("Location"))
	}
	b.get("/console/signin")
	// Without the form's token (login CSRF): refused.
	if p := b.post("/console/signin", url.Values{"_csrf": {"x"}, "email": {adminEmail}, "password": {adminPass}}); p.status != http.StatusForbidden {
		t.Fatalf("sign-in without token: %d", p.status)
	}
	for i := 0; i < 3; i++ {
		if p := b.post("/console/signin", url.Values{"email": {adminEmail}, "password": {"wrong"}}); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, p.status)
		}
	}
	// The fourth failure blocks the address pair; then even the right password waits.
	b.post("/console/signin", url.Values{"email": {adminEmail}, "password": {"wrong"}})
	p := b.post("/console/signin", url.Values{"email": {adminEmail}, "password": {adminPass}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many attempts") {
		t.Fatalf("throttled: %d %q", p.status, p.header.Get("Retry-After"))
	}
	h.clock.Add(2 * time.Hour)
	p = b.post("/console/signin", url.Values{"email": {adminEmail}, "password": {adminPass}, "next": {"/console/audit"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/audit" {
		t.Fatalf("sign-in: %d %s %s", p.status, p.header.Get("Location"), p.body)
	}
	ck := p.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("plain HTTP on loopback got a Secure cookie: %q", ck)
	}
	// An open redirect is not followed.
	b2 := h.browser()
	b2.get("/console/signin")
	p = b2.post("/console/signin", url.Values{"email": {adminEmail}, "password": {adminPass}, "next": {"//evil.example/x"}})
	if p.header.Get("Location") != "/console/data" {
		t.Fatalf("next: %s", p.header.Get("Location"))
	}
}

func TestSecureCookieOffLoopback(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	h.c.o.InsecureLoopback = false
	b := h.browser()
	p := b.get("/console/signin")
	if ck := p.header.Get("Set-Cookie"); !strings.Contains(ck, "Secure") {
		t.Fatalf("cookie without Secure: %q", ck)
	}
}

func TestCSRF(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	b := h.signedIn()
	form := url.Values{"name": {"Stolen"}, "idType": {"string"}}
	for name, tok := range map[string]string{"missing": "", "wrong": "AAAA"} {
		p := b.post("/console/schema", url.Values{"_csrf": {tok}, "name": form["name"]})
		if p.status != http.StatusForbidden {
			t.Errorf("%s token: %d", name, p.status)
		}
	}
	// A cross-site post with the right token is refused too (Origin and Sec-Fetch-Site).
	b.get("/console/schema")
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/console/schema", strings.NewReader(url.Values{"_csrf": {b.csrf}, "name": {"Stolen"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if p := b.do(req); p.status != http.StatusForbidden {
		t.Errorf("cross-origin: %d", p.status)
	}
	req, _ = http.NewRequest(http.MethodPost, h.ts.URL+"/console/schema", strings.NewReader(url.Values{"_csrf": {b.csrf}, "name": {"Stolen"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.do(req); p.status != http.StatusForbidden {
		t.Errorf("cross-site: %d", p.status)
	}
	if _, err := h.tables.Lookup(context.Background(), "Stolen"); err == nil {
		t.Fatal("a refused form created the table")
	}
	// The token of one session does not work for another.
	other := h.browser()
	other.get("/console/signin")
	other.post("/console/signin", url.Values{"email": {adminEmail}, "password": {adminPass}})
	other.get("/console/schema")
	if other.csrf == b.csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	if p := b.post("/console/schema", url.Values{"_csrf": {other.csrf}, "name": {"Stolen"}}); p.status != http.StatusForbidden {
		t.Fatalf("another session's token: %d", p.status)
	}
}

func TestCookieFromAnotherCluster(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	b := h.signedIn()
	u, _ := url.Parse(h.ts.URL + "/console/")
	var val string
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			val = c.Value
		}
	}
	parts := strings.Split(val, ".")
	if len(parts) != 3 {
		t.Fatalf("cookie %q", val)
	}
	// The same session id, signed under another cluster's master key: refused although the session
	// exists in this database.
	forged := sealCookie(macKey("another-clusters-master-key-000000"), parts[1])
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+"/console/data", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: forged})
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/signin") {
		t.Fatalf("foreign cookie: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// The genuine cookie still works, and keeps working after a rotation (the previous key verifies).
	if p := b.get("/console/data"); p.status != http.StatusOK {
		t.Fatalf("own cookie: %d", p.status)
	}
	s := h.authn.Secrets()
	s.Previous = append(s.Previous, tokenKey(s.MasterKey))
	s.MasterKey = "rotated-master-key-0123456789abcdef"
	if err := h.authn.SetSecrets(s); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/console/data"); p.status != http.StatusOK {
		t.Fatalf("after rotation: %d", p.status)
	}
}

func TestTimeoutsAndSignOutEverywhere(t *testing.T) {
	h := newHarness(t, storetest.Open(t, storetest.SQLiteURL(t)))
	b := h.signedIn()
	// Active every 20 minutes: the idle timeout (30m) never fires, the absolute one (12h) does.
	for i := 0; i < 35; i++ {
		h.clock.Add(20 * time.Minute)
		if p := b.get("/console/data"); p.status != http.StatusOK {
			t.Fatalf("after %d×20m: %d", i+1, p.status)
		}
	}
	h.clock.Add(20 * time.Minute) // 12h40m after sign-in
	if p := b.get("/console/data"); p.status != http.StatusSeeOther {
		t.Fatalf("past the absolute timeout: %d", p.status)
	}
	b2, b3 := h.browser(), h.browser()
	for _, x := range []*browser{b2, b3} {
		x.get("/console/signin")
		if p := x.post("/console/signin", url.Values{"email": {adminEmail}, "password": {adminPass}}); p.status != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", p.status)
		}
	}
	h.clock.Add(31 * time.Minute)
	if p := b2.get("/console/data"); p.status != http.StatusSeeOther {
		t.Fatalf("past the idle timeout: %d", p.status)
	}
	b3.get("/console/signin")
	b3.post("/console/signin", url.Values{"email": {adminEmail}, "password": {adminPass}})
	b4 := h.browser()
	b4.get("/console/signin")
	b4.post("/console/signin", url.Values{"email": {adminEmail}, "password": {adminPass}})
	b3.get("/console/account")
	if p := b3.post("/console/signout", url.Values{"everywhere": {"1"}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", p.status)
	}
	for i, x := range []*browser{b3, b4} {
		if p := x.get("/console/data"); p.status != http.StatusSeeOther {
			t.Fatalf("session %d after sign-out everywhere: %d", i, p.status)
		}
	}
}

func tokenKey(secret string) token.Key { return token.Key{Secret: secret} }
