package push

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const (
	testMaster = "push-test-master-key-0123456789"
	testApp    = "push-test-application-key-01234"
)

type httpEnv struct {
	t      *testing.T
	ts     *httptest.Server
	minter *auth.Minter
	svc    *Service
}

// newHTTPEnv serves /push and /admin/push through the real server (authentication, dialects).
func newHTTPEnv(t *testing.T, db *store.DB, files map[string]string, cfg Config, hook Hook) *httpEnv {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, []byte(body), 0o644)
	}
	app, err := appdir.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := auth.New(auth.Secrets{MasterKey: testMaster, ApplicationKey: testApp, SystemKey: "push-test-system-key-0123456789"}, auth.Options{MaxTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	minter := &auth.Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: time.Hour}
	srv := server.New(server.Deps{Config: conf, Auth: a, Minter: minter, App: app, DB: db, Metrics: metrics.New("test"), Logger: log, Version: "test"})
	svc, _ := newTestService(t, db, cfg, newTestPlatform(APNs), newTestPlatform(FCM), newTestPlatform(WNS))
	srv.Mount("push", "/push", svc.Handler(HandlerOptions{App: func() *appdir.App { return app }, Hook: func() Hook { return hook }, Log: log}))
	srv.Mount("/admin/push", "/admin/push", server.RequirePermission(auth.Admin, svc.AdminHandler()))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &httpEnv{t: t, ts: ts, minter: minter, svc: svc}
}

func (e *httpEnv) token(uid string) string {
	tok, _, err := e.minter.Mint(auth.MintRequest{UserID: uid})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request; hdr holds headers ("X-ZUMO-AUTH": token ...); the application key is sent
// unless hdr sets it to "".
func (e *httpEnv) do(method, path, body string, hdr map[string]string) (int, http.Header, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-ZUMO-APPLICATION", testApp)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestV1Registrations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newHTTPEnv(t, db, nil, Config{}, nil)
		st, h, _ := e.do("POST", "/push/registrationids", "", nil)
		loc := h.Get("Location")
		if st != 201 || !strings.HasPrefix(loc, e.ts.URL+"/push/registrations/") {
			t.Fatalf("POST registrationids: %d %q", st, loc)
		}
		id := loc[strings.LastIndex(loc, "/")+1:]
		// Without the application key: 401 (the default permission is application).
		if st, _, _ := e.do("POST", "/push/registrationids", "", map[string]string{"X-ZUMO-APPLICATION": ""}); st != 401 {
			t.Fatalf("without the key: %d", st)
		}
		body := `{"platform":"wns","deviceId":"dev-channel1","tags":["news"],"templateBody":"<toast><visual><binding template=\"ToastText01\"><text id=\"1\">$(msg)</text></binding></visual></toast>","templateName":"myToast","headers":{"X-WNS-Type":"wns/toast"}}`
		if st, _, b := e.do("PUT", "/push/registrations/"+id, body, map[string]string{"X-ZUMO-INSTALLATION-ID": "inst-7", "X-ZUMO-AUTH": e.token("Facebook:9")}); st != 204 {
			t.Fatalf("PUT: %d %s", st, b)
		}
		st, _, b := e.do("GET", "/push/registrations?platform=wns&deviceId=dev-channel1", "", nil)
		var list []map[string]any
		_ = json.Unmarshal([]byte(b), &list)
		if st != 200 || len(list) != 1 || list[0]["registrationId"] != id || list[0]["templateName"] != "myToast" ||
			list[0]["headers"].(map[string]any)["X-WNS-Type"] != "wns/toast" {
			t.Fatalf("GET: %d %s", st, b)
		}
		tags, _ := json.Marshal(list[0]["tags"])
		if string(tags) != `["news","inst-7","_UserId:Facebook:9"]` {
			t.Fatalf("tags %s", tags)
		}
		// Another user may not take it over or delete it; the owner may.
		if st, _, _ := e.do("PUT", "/push/registrations/"+id, `{"platform":"wns","deviceId":"dev-channel2"}`, map[string]string{"X-ZUMO-AUTH": e.token("Facebook:10")}); st != 403 {
			t.Fatalf("takeover: %d", st)
		}
		if st, _, _ := e.do("DELETE", "/push/registrations/"+id, "", nil); st != 403 {
			t.Fatalf("anonymous delete: %d", st)
		}
		if st, _, _ := e.do("DELETE", "/push/registrations/"+id, "", map[string]string{"X-ZUMO-AUTH": e.token("Facebook:9")}); st != 200 {
			t.Fatalf("owner delete: %d", st)
		}
		if st, _, _ := e.do("DELETE", "/push/registrations/"+id, "", nil); st != 404 {
			t.Fatalf("second delete: %d", st)
		}
		// Bad input: 400 with the reason.
		for _, c := range []struct{ body, msg string }{
			{`{"platform":"bb","deviceId":"dev-x1234"}`, "Unsupported push platform"},
			{`{"platform":"mpns","deviceId":"dev-x1234"}`, "MPNS was retired"},
			{`{"deviceId":"dev-x1234"}`, "requires a platform"},
			{`{"platform":"apns","deviceId":"nope"}`, "invalid apns device token"},
			{`{"platform":"apns","deviceId":"dev-x1234","tags":["a b"]}`, "contains"},
			{`{"platform":"apns","deviceId":"dev-x1234","tags":["_UserId:Facebook:1"]}`, "names another user"},
			{`{"platform":"apns","deviceId":"dev-x1234","templateBody":"{}"}`, "requires a templateName"},
			{`{"platform":"apns","deviceId":"dev-x1234","templateBody":"$(x","templateName":"t"}`, "closing parenthesis"},
			{`{"platform":"apns","deviceId":"dev-x1234","tags":"news"}`, "not valid JSON"},
			{`{"platform":"apns","deviceId":"dev-x1234","platform":"gcm"}`, "not valid JSON"},
		} {
			st, _, b := e.do("PUT", "/push/registrations/r-bad", c.body, nil)
			if st != 400 || !strings.Contains(b, c.msg) {
				t.Errorf("%s: %d %s", c.body, st, b)
			}
		}
		many := make([]string, 61)
		for i := range many {
			many[i] = "t" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		}
		mb, _ := json.Marshal(map[string]any{"platform": "apns", "deviceId": "dev-x1234", "tags": many})
		if st, _, b := e.do("PUT", "/push/registrations/r-many", string(mb), nil); st != 400 || !strings.Contains(b, "too many tags") {
			t.Errorf("61 tags: %d %s", st, b)
		}
		if st, _, _ := e.do("GET", "/push/registrations?platform=wns", "", nil); st != 400 {
			t.Errorf("GET without deviceId: %d", st)
		}
	})
}

func TestV1PermissionAndHook(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	var seen map[string]any
	hook := func(_ context.Context, reg map[string]any, c Caller) (map[string]any, error) {
		seen = reg
		tags, _ := reg["tags"].([]any)
		for _, tg := range tags {
			if tg == "vip" {
				return nil, &HookError{Msg: "vip is for admins"}
			}
		}
		reg["tags"] = append(tags, "hooked-"+strings.ReplaceAll(c.UserID, ":", "-"))
		return reg, nil
	}
	e := newHTTPEnv(t, db, map[string]string{
		"table/x.json":          `{}`,
		"extensions/push.json":  `{"routes":{"*":{"*":{"permission":"user"}}}}`,
		"extensions/unused.txt": ``,
	}, Config{}, hook)
	if st, _, _ := e.do("PUT", "/push/registrations/r1", `{"platform":"apns","deviceId":"dev-x1234"}`, nil); st != 401 {
		t.Fatalf("push.json user permission with only the app key: %d", st)
	}
	tok := map[string]string{"X-ZUMO-AUTH": e.token("Google:5")}
	if st, _, b := e.do("PUT", "/push/registrations/r1", `{"platform":"apns","deviceId":"dev-x1234","tags":["a"]}`, tok); st != 204 {
		t.Fatalf("PUT: %d %s", st, b)
	}
	if seen["registrationId"] != "r1" {
		t.Fatalf("the hook saw %v", seen)
	}
	r, err := e.svc.store.Registration(context.Background(), "r1")
	if err != nil || strings.Join(r.Tags, ",") != "a,hooked-Google-5,_UserId:Google:5" {
		t.Fatalf("stored %v %v", r.Tags, err)
	}
	if st, _, b := e.do("PUT", "/push/registrations/r2", `{"platform":"apns","deviceId":"dev-x1234","tags":["vip"]}`, tok); st != 400 || !strings.Contains(b, "vip is for admins") {
		t.Fatalf("refused by the hook: %d %s", st, b)
	}
	if _, err := e.svc.store.Registration(context.Background(), "r2"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a refused registration was stored")
	}
}

func TestV2Installations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newHTTPEnv(t, db, nil, Config{ClientTags: []string{"topic:*", "lang-??"}}, nil)
		v2 := func(tok string) map[string]string {
			h := map[string]string{"ZUMO-API-VERSION": "2.0.0"}
			if tok != "" {
				h["X-ZUMO-AUTH"] = tok
			}
			return h
		}
		alice := e.token("sid:alice")
		// The body the official client sends (installationId, templates with string bodies, secondaryTiles).
		body := `{"installationId":"5c1f2a9e-0000-4000-8000-000000000001","pushChannel":"dev-fcmtoken1","platform":"gcm",
			"templates":{"news":{"body":"{\"data\":{\"message\":\"$(msg)\"}}","tags":["topic:news"]}},"secondaryTiles":{}}`
		if st, _, b := e.do("PUT", "/push/installations/5c1f2a9e-0000-4000-8000-000000000001", body, v2(alice)); st != 204 {
			t.Fatalf("PUT: %d %s", st, b)
		}
		in, err := e.svc.GetInstallation(context.Background(), "5c1f2a9e-0000-4000-8000-000000000001")
		if err != nil || in.Platform != FCM || in.PushChannel != "dev-fcmtoken1" || strings.Join(in.Tags, ",") != "_UserId:sid:alice" ||
			strings.Join(in.Templates["news"].Tags, ",") != "_UserId:sid:alice,topic:news" {
			t.Fatalf("stored %+v %v", in, err)
		}
		// The admin API lists the user's devices.
		st, _, b := e.do("GET", "/admin/push/registrations?user=sid:alice", "", map[string]string{"X-ZUMO-MASTER": testMaster})
		if st != 200 || strings.Count(b, `"installationId":"5c1f2a9e-0000-4000-8000-000000000001"`) != 2 {
			t.Fatalf("admin list: %d %s", st, b)
		}
		if st, _, _ := e.do("GET", "/admin/push/registrations?user=sid:alice", "", nil); st != 401 {
			t.Fatalf("admin list with the app key: %d", st)
		}
		// Tags outside push.client_tags, another user's tag, a bad channel, an unknown platform: 400.
		for _, c := range []struct{ body, msg string }{
			{`{"platform":"apns","pushChannel":"dev-apns0001","tags":["sport"]}`, "not one a client may set"},
			{`{"platform":"apns","pushChannel":"dev-apns0001","tags":["_UserId:sid:bob"]}`, "names another user"},
			{`{"platform":"apns","pushChannel":"dev-apns0001","templates":{"t":{"body":"{}","tags":["lang-fr","x"]}}}`, "not one a client may set"},
			{`{"platform":"apns","pushChannel":"bad"}`, "invalid apns device token"},
			{`{"platform":"blackberry","pushChannel":"dev-apns0001"}`, "Unsupported push platform"},
			{`{"platform":"apns","pushChannel":"dev-apns0001","installationId":"other"}`, "differs"},
			{`{"platform":"apns","pushChannel":"dev-apns0001","templates":{"bad name":{"body":"{}"}}}`, "invalid template name"},
		} {
			st, _, b := e.do("PUT", "/push/installations/inst-2", c.body, v2(alice))
			if st != 400 || !strings.Contains(b, c.msg) {
				t.Errorf("%s: %d %s", c.body, st, b)
			}
		}
		if st, _, b := e.do("PUT", "/push/installations/inst-2", `{"platform":"apns","pushChannel":"dev-apns0001","tags":["lang-fr","topic:a"]}`, v2(alice)); st != 204 {
			t.Errorf("allowed tags: %d %s", st, b)
		}
		// Mobile Apps clients have no application key: without extensions/push.json a v2 request needs none.
		if st, _, b := e.do("PUT", "/push/installations/anon-1", `{"platform":"apns","pushChannel":"dev-apns0009"}`, map[string]string{"ZUMO-API-VERSION": "2.0.0", "X-ZUMO-APPLICATION": ""}); st != 204 {
			t.Errorf("anonymous v2 PUT: %d %s", st, b)
		}
		// Another user can neither replace nor delete alice's installation.
		bob := e.token("sid:bob")
		if st, _, _ := e.do("PUT", "/push/installations/inst-2", `{"platform":"apns","pushChannel":"dev-apns0002"}`, v2(bob)); st != 403 {
			t.Errorf("bob's PUT: %d", st)
		}
		if st, _, _ := e.do("DELETE", "/push/installations/inst-2", "", v2(bob)); st != 403 {
			t.Errorf("bob's DELETE: %d", st)
		}
		if st, _, _ := e.do("DELETE", "/push/installations/inst-2", "", v2(alice)); st != 204 {
			t.Errorf("alice's DELETE: %d", st)
		}
		if st, _, _ := e.do("DELETE", "/push/installations/inst-2", "", v2(alice)); st != 204 {
			t.Errorf("DELETE of nothing: %d", st)
		}
		// The admin API sends: a template send to alice's user tag queues her template.
		st, _, b = e.do("POST", "/admin/push/send", `{"tag":"_UserId:sid:alice && topic:news","properties":{"msg":"hi"}}`, map[string]string{"X-ZUMO-MASTER": testMaster})
		if st != 202 || b != `{"queued":1}` {
			t.Fatalf("admin send: %d %s", st, b)
		}
		st, _, b = e.do("POST", "/admin/push/send", `{"tag":"a &&","properties":{}}`, map[string]string{"X-ZUMO-MASTER": testMaster})
		if st != 400 || !strings.Contains(b, "at position 5") {
			t.Fatalf("admin send with a bad expression: %d %s", st, b)
		}
		st, _, b = e.do("GET", "/admin/push", "", map[string]string{"X-ZUMO-MASTER": testMaster})
		if st != 200 || b != `{"platforms":["apns","fcm","wns"],"pending":1}` {
			t.Fatalf("admin status: %d %s", st, b)
		}
	})
}
