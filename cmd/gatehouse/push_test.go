package main

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestPushCommands: a served Web Push installation, then push list, push send (template and native,
// with bad input) and push status from the CLI on the same data directory.
func TestPushCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{}
	for k, v := range opsKeys {
		env[k] = v
	}
	// Without credentials: push is not configured, and says so.
	_, _, stop := startServer(t, []string{"--data", data}, env)
	stop()
	if code, out, errs := runCmd(t, env, "push", "status", "--data", data); code != 0 || !strings.Contains(out, "none (push is not configured)") {
		t.Fatalf("status without credentials: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCmd(t, env, "push", "send", "--platform", "apns", "--payload", `{"aps":{}}`, "--data", data); code != 1 || !strings.Contains(errs, "push is not configured") {
		t.Fatalf("send without credentials: %d %q", code, errs)
	}

	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	env["GATEHOUSE_VAPID_PRIVATE_KEY"] = base64.RawURLEncoding.EncodeToString(priv.Bytes())
	env["GATEHOUSE_VAPID_SUBSCRIBER"] = "mailto:ops@example.com"
	env["GATEHOUSE_WEBPUSH_ENDPOINT_HOSTS"] = "push.example.com"
	env["GATEHOUSE_PUSH_DELIVER"] = "false" // this server only registers: the queue stays put
	base, _, _ := startServer(t, []string{"--data", data}, env)
	peer, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := json.Marshal(map[string]any{"endpoint": "https://push.example.com/wpush/abc",
		"keys": map[string]string{"p256dh": base64.RawURLEncoding.EncodeToString(peer.PublicKey().Bytes()), "auth": base64.RawURLEncoding.EncodeToString(make([]byte, 16))}})
	inst, _ := json.Marshal(map[string]any{"platform": "webpush", "pushChannel": string(sub), "tags": []string{"news"},
		"templates": map[string]any{"alert": map[string]any{"body": `{"title":"$(title)"}`}}})
	if code, body := do(t, "PUT", base+"/push/installations/browser-1", string(inst), map[string]string{"ZUMO-API-VERSION": "2.0.0"}); code != 204 {
		t.Fatalf("register: %d %s", code, body)
	}
	code, out, errs := runCmd(t, env, "push", "list", "--tag", "news", "--data", data)
	if code != 0 || strings.Count(out, "browser-1") != 2 || !strings.Contains(out, "webpush") || strings.Contains(out, "wpush/abc") {
		t.Fatalf("list: %d %q %q", code, out, errs)
	}
	if code, out, errs := runCmd(t, env, "push", "send", "--tag", "news", "--props", `{"title":"Hi"}`, "--data", data); code != 0 || out != "queued 1 notification(s)\n" {
		t.Fatalf("template send: %d %q %q", code, out, errs)
	}
	if code, out, errs := runCmd(t, env, "push", "send", "--platform", "webpush", "--tag", "news && !sport", "--payload", `{"title":"native"}`, "--header", "Urgency=high", "--data", data); code != 0 || out != "queued 1 notification(s)\n" {
		t.Fatalf("native send: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCmd(t, env, "push", "send", "--platform", "webpush", "--tag", "news &&", "--payload", `{}`, "--data", data); code != 1 || !strings.Contains(errs, "at position 8") {
		t.Fatalf("bad expression: %d %q", code, errs)
	}
	if code, _, errs := runCmd(t, env, "push", "send", "--platform", "webpush", "--payload", strings.Repeat("x", 5000), "--data", data); code != 1 || !strings.Contains(errs, "webpush") {
		t.Fatalf("oversized payload: %d %q", code, errs)
	}
	if code, out, errs := runCmd(t, env, "push", "status", "--json", "--data", data); code != 0 || strings.TrimSpace(out) != `{"platforms":["webpush"],"pending":2}` {
		t.Fatalf("status: %d %q %q", code, out, errs)
	}
	if code, _, _ := runCmd(t, env, "push", "frobnicate", "--data", data); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
}
