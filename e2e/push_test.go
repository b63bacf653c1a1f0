package e2e

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/push/pushfake"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// pushEnv is a Web Push service fake the gatehouse binary trusts (SSL_CERT_FILE names the fake's
// certificate, push.webpush.endpoint_hosts its address) and a VAPID key pair.
type pushEnv struct {
	fake      *pushfake.WebPush
	env       map[string]string
	publicKey string // base64url, the applicationServerKey subscriptions are bound to
}

func newPushEnv(t *testing.T) *pushEnv {
	t.Helper()
	fake := pushfake.NewWebPush(t)
	// The fake's certificate, as any TLS client sees it.
	conn, err := tls.Dial("tcp", fake.Host(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the test server's own certificate
	if err != nil {
		t.Fatal(err)
	}
	cert := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	certFile := filepath.Join(t.TempDir(), "fake-ca.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes())
	return &pushEnv{fake: fake, publicKey: pub, env: map[string]string{
		"SSL_CERT_FILE":                    certFile,
		"GATEHOUSE_WEBPUSH_ENDPOINT_HOSTS": fake.Host(),
		"GATEHOUSE_VAPID_PRIVATE_KEY":      base64.RawURLEncoding.EncodeToString(priv.Bytes()),
		"GATEHOUSE_VAPID_SUBSCRIBER":       "mailto:ops@example.com",
		"GATEHOUSE_PUSH_POLL_INTERVAL":     "200ms",
		"MS_CrossDomainWhitelist":          `[{"host":"127.0.0.1"}]`,
	}}
}

// pushApp's insert script sends the new row's text to its author's devices through their
// "alert" template.
var pushApp = map[string]string{
	"datamodel.json": `{"tables":[{"name":"Message","permissions":{"*":"user"}}]}`,
	"table/Message.insert.js": `function insert(item, user, request) {
  request.execute({ success: function () {
    push.send('_UserId:' + user.userId, { text: item.text, from: user.userId }, {
      success: function () { request.respond(); },
      error: function (err) { request.respond(500, { error: err.message }); }
    });
  } });
}`,
}

// TestBrowserSDKPush: the official JavaScript client registers an installation in Chromium (a Web
// Push subscription with a template); a table insert script calls push.send; the Web Push fake
// receives the expanded template, decrypted with the subscription's key and signed with VAPID.
func TestBrowserSDKPush(t *testing.T) {
	alone(t)
	needTools(t, true)
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			var args []string
			if db == "postgres" {
				args = []string{"--database", storetest.PostgresURL(t)}
			}
			pe := newPushEnv(t)
			g := startGatehouse(t, GatehouseOptions{App: writeApp(t, pushApp), Args: args, Env: pe.env})
			alice := g.MintToken(t, "custom:alice")
			sub := pe.fake.Subscribe("alice-browser", pe.publicKey)
			page := servePage(t, nil)
			var res struct {
				InstallationID string   `json:"installationId"`
				Inserted       []string `json:"inserted"`
			}
			runBrowser(t, "push", page.URL(), g.URL, map[string]any{
				"token": alice, "userId": "custom:alice", "platform": "webpush", "pushChannel": sub,
				"templates": map[string]any{"alert": map[string]any{"body": map[string]any{"title": "From $(from)", "body": "$(text)"}}},
				"table":     "message", "items": []map[string]any{{"text": `Hello "world" <3`}},
			}, &res)
			if res.InstallationID == "" || len(res.Inserted) != 1 {
				t.Fatalf("browser result %+v", res)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got, err := pe.fake.Wait(ctx, 1)
			if err != nil {
				t.Fatalf("the fake received nothing: %v\n%s", err, g.Stderr())
			}
			var body map[string]string
			if err := json.Unmarshal(got[0].Plaintext, &body); err != nil {
				t.Fatalf("payload %q: %v", got[0].Plaintext, err)
			}
			if body["title"] != "From custom:alice" || body["body"] != `Hello "world" <3` || got[0].Subscription != "alice-browser" {
				t.Fatalf("received %q on %s", got[0].Plaintext, got[0].Subscription)
			}
			if got[0].Subject != "mailto:ops@example.com" {
				t.Fatalf("VAPID subject %q", got[0].Subject)
			}
			// The server recorded the installation with the user's tag, visible to operators.
			code, out := g.get(t, "/admin/push/registrations?user=custom:alice", map[string]string{"X-ZUMO-MASTER": g.MasterKey})
			if code != http.StatusOK || !strings.Contains(out, `"installationId":"`+res.InstallationID+`"`) || !strings.Contains(out, `"templateName":"alert"`) {
				t.Fatalf("admin list: %d %s", code, out)
			}
		})
	}
}
