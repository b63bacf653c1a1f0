package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// callResult is one entry of js/scenarios/invoke.mjs's result.
type callResult struct {
	Name   string `json:"name"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error"`
	Type   string `json:"type"`
}

func byName(t *testing.T, results []callResult, want int) map[string]callResult {
	t.Helper()
	if len(results) != want {
		t.Fatalf("%d results, want %d: %+v", len(results), want, results)
	}
	m := make(map[string]callResult, len(results))
	for _, r := range results {
		m[r.Name] = r
	}
	return m
}

// TestBrowserSDKAgainstFoundation proves the harness end to end: the official JavaScript SDK, in
// headless Chromium, on a page of another origin that MS_CrossDomainWhitelist allows, calls Gatehouse
// with a token minted by `gatehouse token mint`, and the server answers as the original did.
func TestBrowserSDKAgainstFoundation(t *testing.T) {
	alone(t)
	needTools(t, true)
	app := writeApp(t, map[string]string{
		"datamodel.json": `{"tables":[{"name":"TodoItem","permissions":{"read":"public","insert":"user"}}]}`,
	})
	g := startGatehouse(t, GatehouseOptions{App: app, Env: map[string]string{
		"MS_CrossDomainWhitelist": `[{"host":"127.0.0.1"},{"host":"localhost"}]`,
	}})
	tok := g.MintToken(t, "custom:123")
	page := servePage(t, nil)

	var results []callResult
	run := runBrowser(t, "invoke", page.URL(), g.URL, map[string]any{"calls": []map[string]any{
		{"name": "me", "api": "/.auth/me", "token": tok, "userId": "custom:123"},
		{"name": "me-anonymous", "api": "/.auth/me"},
		{"name": "me-garbage-token", "api": "/.auth/me", "token": "randomgoop"},
		{"name": "missing-api", "api": "nonexistent", "token": tok},
	}}, &results)
	got := byName(t, results, 4)

	me := got["me"]
	if me.Status != 200 || me.Error != "" {
		t.Fatalf("/.auth/me with the minted token: %+v", me)
	}
	var ids []struct {
		ProviderName string `json:"provider_name"`
		UserID       string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(me.Body), &ids); err != nil || len(ids) != 1 || ids[0].UserID != "custom:123" || ids[0].ProviderName != "custom" {
		t.Fatalf("/.auth/me body %q (%v)", me.Body, err)
	}
	if r := got["me-anonymous"]; r.Status != 401 || r.Error == "" {
		t.Fatalf("/.auth/me without a token: %+v", r)
	}
	// invokeApi sends ZUMO-API-VERSION, so errors come in the v2 shape.
	if r := got["me-garbage-token"]; r.Status != 401 || r.Body != `{"error":"Invalid token format. Expected Envelope.Claims.Signature."}` {
		t.Fatalf("/.auth/me with a garbage token: %+v", r)
	}
	// Unknown APIs are not disclosed to callers without the master key: they answer like an API only
	// the master key may call.
	if r := got["missing-api"]; r.Status != 401 || r.Error == "" {
		t.Fatalf("/api/nonexistent: %+v", r)
	}

	// What Chromium really sent: the SDK's headers, the token where it was set, the page's origin.
	meReqs := run.requestsTo(g.URL + "/.auth/me")
	if len(meReqs) != 3 {
		t.Fatalf("%d requests to /.auth/me, want 3: %+v", len(meReqs), run.Requests)
	}
	origin := strings.TrimSuffix(page.URL(), "/")
	withToken := 0
	for _, q := range meReqs {
		if q.Headers["origin"] != origin {
			t.Errorf("request %s from origin %q, want %q", q.URL, q.Headers["origin"], origin)
		}
		if q.Headers["zumo-api-version"] == "" || q.Headers["x-zumo-installation-id"] == "" {
			t.Errorf("request %s lacks the SDK's headers: %v", q.URL, q.Headers)
		}
		if q.Headers["x-zumo-auth"] == tok {
			withToken++
			if q.Status != 200 {
				t.Errorf("request with the token got %d", q.Status)
			}
		}
	}
	if withToken != 1 {
		t.Errorf("%d requests to /.auth/me carried the minted token in X-ZUMO-AUTH, want 1", withToken)
	}
	if missing := run.requestsTo(g.URL + "/api/nonexistent"); len(missing) != 1 || missing[0].Headers["x-zumo-auth"] != tok {
		t.Errorf("request to /api/nonexistent: %+v", missing)
	}
	if strings.Contains(g.Stderr(), tok) {
		t.Error("the token appears in the server log")
	}
}

// TestBrowserCORSRejectsOtherOrigin: the same SDK call from an origin that is not in
// MS_CrossDomainWhitelist is blocked by the browser, though the server is reachable from there.
func TestBrowserCORSRejectsOtherOrigin(t *testing.T) {
	alone(t)
	needTools(t, true)
	g := startGatehouse(t, GatehouseOptions{Env: map[string]string{
		"MS_CrossDomainWhitelist": `[{"host":"app.gatehouse.test"}]`,
	}})
	tok := g.MintToken(t, "custom:123")
	page := servePage(t, nil)

	calls := map[string]any{"calls": []map[string]any{
		{"name": "me", "api": "/.auth/me", "token": tok},
		{"name": "status-no-cors", "fetch": "/status", "mode": "no-cors"},
	}}
	var allowed, rejected []callResult
	runBrowser(t, "invoke", page.URLAs("app"), g.URL, calls, &allowed)
	run := runBrowser(t, "invoke", page.URLAs("evil"), g.URL, calls, &rejected)

	if r := byName(t, allowed, 2)["me"]; r.Status != 200 || r.Error != "" {
		t.Fatalf("whitelisted origin app.gatehouse.test: %+v", r)
	}
	got := byName(t, rejected, 2)
	// The server is reachable from the page (an opaque no-cors response)...
	if r := got["status-no-cors"]; r.Type != "opaque" || r.Error != "" {
		t.Fatalf("no-cors fetch of /status from evil.gatehouse.test: %+v", r)
	}
	// ...but the SDK's CORS request fails: the SDK reports a connection failure with status 0.
	if r := got["me"]; r.Status != 0 || r.Error == "" || strings.Contains(r.Body, "custom:123") {
		t.Fatalf("SDK call from evil.gatehouse.test was not blocked: %+v", r)
	}
	reqs := run.requestsTo(g.URL + "/.auth/me")
	if len(reqs) != 1 || reqs[0].Failure == "" {
		t.Fatalf("Chromium did not report the cross-origin request as failed: %+v", reqs)
	}
}
