package login_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/login"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/provider"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/user"
)

// formPostProvider behaves like Sign in with Apple at the HTTP level: its callback is a cross-site
// form POST carrying code and state.
type formPostProvider struct{ lastRedirect string }

func (p *formPostProvider) Name() string        { return "apple" }
func (p *formPostProvider) DisplayName() string { return "Apple" }
func (p *formPostProvider) ServerFlow() bool    { return true }
func (p *formPostProvider) FormPost() bool      { return true }
func (p *formPostProvider) IsCallback(v url.Values) bool {
	return v.Has("code") || v.Has("error")
}
func (p *formPostProvider) AuthCodeURL(_ context.Context, r provider.AuthRequest) (*provider.Redirect, error) {
	p.lastRedirect = r.RedirectURI
	return &provider.Redirect{URL: "https://appleid.example/auth/authorize?response_mode=form_post&state=" + url.QueryEscape(r.State)}, nil
}
func (p *formPostProvider) Exchange(_ context.Context, c provider.Callback) (*provider.Identity, error) {
	if c.Params.Get("code") != "apple-code" {
		return nil, &provider.Error{Kind: provider.KindRejected, Msg: "bad code"}
	}
	return &provider.Identity{Provider: "Apple", Issuer: "https://appleid.apple.com", Subject: "001234.abcd", Claims: map[string]any{}}, nil
}
func (p *formPostProvider) ClientLogin(context.Context, map[string]any) (*provider.Identity, error) {
	return nil, &provider.Error{Kind: provider.KindInvalid, Msg: "no"}
}

func TestFormPostCallback(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	cfg, err := config.Load(nil, func(k string) string { return map[string]string{"GATEHOUSE_PUBLIC_URL": publicURL}[k] })
	if err != nil {
		t.Fatal(err)
	}
	authn, _ := auth.New(auth.Secrets{MasterKey: masterKey, ApplicationKey: "app-key-0123456789abcdef", SystemKey: "sys-key-0123456789abcdef"}, auth.Options{})
	minter := &auth.Minter{Auth: authn, DefaultTTL: time.Hour, MaxTTL: cfg.TokenMaxTTL}
	srv := server.New(server.Deps{Config: cfg, Auth: authn, Minter: minter, App: appdir.Empty(), DB: db, Metrics: metrics.New("test"),
		Logger: slog.New(slog.DiscardHandler), Version: "test"})
	fp := &formPostProvider{}
	reg, _ := provider.NewRegistry(fp)
	dir, _ := user.NewDirectory(user.NewSQL(db), user.Options{})
	sealer, _ := user.NewSealer("login flow", masterKey)
	h, err := login.New(login.Options{Providers: reg, Users: dir, Minter: minter, Sealer: sealer, PublicURL: cfg.PublicURL})
	if err != nil {
		t.Fatal(err)
	}
	h.MountOn(srv)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	e := &env{t: t, ts: ts}

	for _, fam := range []struct{ start, callback, done string }{
		{"/login/apple", "/login/apple", publicURL + "/login/done"},
		{"/.auth/login/apple", "/.auth/login/apple/callback", publicURL + "/.auth/login/done"},
	} {
		r := e.do("GET", fam.start, nil, "")
		c := stateCookie(t, r)
		if c.SameSite != http.SameSiteNoneMode || !c.Secure || !c.HttpOnly {
			t.Fatalf("form_post cookie %+v", c)
		}
		if fp.lastRedirect != publicURL+fam.callback {
			t.Fatalf("redirect URI %s", fp.lastRedirect)
		}
		u, _ := url.Parse(r.header.Get("Location"))
		form := url.Values{"code": {"apple-code"}, "state": {u.Query().Get("state")}, "user": {`{"name":{"firstName":"A"}}`}}
		res := e.do("POST", fam.callback, map[string]string{"Cookie": "wams_state=" + c.Value, "Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
		kind, val := fragment(t, res.header.Get("Location"), fam.done)
		if kind != "token" || !strings.Contains(val, `"userId":"Apple:001234.abcd"`) {
			t.Fatalf("%s: %d %s=%s", fam.callback, res.status, kind, val)
		}
	}
	// A JSON POST is still the client flow.
	if r := e.do("POST", "/login/apple", nil, `{"id_token":"x"}`); r.status != 401 || r.json(t)["error"] != "Error: no" {
		t.Fatalf("client flow %d %s", r.status, r.body)
	}
}
