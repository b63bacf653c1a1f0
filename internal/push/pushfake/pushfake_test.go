package pushfake

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse/gatehouse/internal/push"
	"github.com/gatehouse/gatehouse/internal/push/platform"
)

// The fakes refuse what the real services refuse. These requests are built by hand, since the
// platforms never send them.

const token64 = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

func client(o platform.Options, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: o.RootCAs}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr}
}

func do(t *testing.T, c *http.Client, method, u string, body string, h map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func signES256(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAPNsFakeRefuses(t *testing.T) {
	f := NewAPNs(t, "com.example.app")
	key, err := platform.ParseAPNsKey(f.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewP256Key()
	now := time.Now().Unix()
	good := signES256(t, key, f.KeyID, map[string]any{"iss": f.TeamID, "iat": now})
	h2 := client(f.Options(), true)
	u := f.URL() + "/3/device/" + token64
	hdr := func(extra map[string]string) map[string]string {
		m := map[string]string{"authorization": "bearer " + good, "apns-topic": "com.example.app"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		c      *http.Client
		method string
		url    string
		body   string
		h      map[string]string
		status int
		reason string
	}{
		{"HTTP/1.1", client(f.Options(), false), "POST", u, "{}", hdr(nil), http.StatusHTTPVersionNotSupported, ""},
		{"GET", h2, "GET", u, "", hdr(nil), 405, "MethodNotAllowed"},
		{"path", h2, "POST", f.URL() + "/2/device/" + token64, "{}", hdr(nil), 404, "BadPath"},
		{"no credentials", h2, "POST", u, "{}", map[string]string{"apns-topic": "com.example.app"}, 403, "MissingProviderToken"},
		{"other key", h2, "POST", u, "{}", hdr(map[string]string{"authorization": "bearer " + signES256(t, other, f.KeyID, map[string]any{"iss": f.TeamID, "iat": now})}), 403, "InvalidProviderToken"},
		{"other kid", h2, "POST", u, "{}", hdr(map[string]string{"authorization": "bearer " + signES256(t, key, "KEY0000000", map[string]any{"iss": f.TeamID, "iat": now})}), 403, "InvalidProviderToken"},
		{"other team", h2, "POST", u, "{}", hdr(map[string]string{"authorization": "bearer " + signES256(t, key, f.KeyID, map[string]any{"iss": "TEAM000000", "iat": now})}), 403, "InvalidProviderToken"},
		{"old token", h2, "POST", u, "{}", hdr(map[string]string{"authorization": "bearer " + signES256(t, key, f.KeyID, map[string]any{"iss": f.TeamID, "iat": now - 3700})}), 403, "ExpiredProviderToken"},
		{"no topic", h2, "POST", u, "{}", map[string]string{"authorization": "bearer " + good}, 400, "MissingTopic"},
		{"foreign topic", h2, "POST", u, "{}", hdr(map[string]string{"apns-topic": "com.other"}), 400, "TopicDisallowed"},
		{"voip topic for alert", h2, "POST", u, "{}", hdr(map[string]string{"apns-topic": "com.example.app.voip", "apns-push-type": "alert"}), 400, "DeviceTokenNotForTopic"},
		{"short token", h2, "POST", f.URL() + "/3/device/abcd", "{}", hdr(nil), 400, "BadDeviceToken"},
		{"apns-id", h2, "POST", u, "{}", hdr(map[string]string{"apns-id": "42"}), 400, "BadMessageId"},
		{"priority", h2, "POST", u, "{}", hdr(map[string]string{"apns-priority": "7"}), 400, "BadPriority"},
		{"push type", h2, "POST", u, "{}", hdr(map[string]string{"apns-push-type": "banner"}), 400, "InvalidPushType"},
		{"expiration", h2, "POST", u, "{}", hdr(map[string]string{"apns-expiration": "tomorrow"}), 400, "BadExpirationDate"},
		{"collapse id", h2, "POST", u, "{}", hdr(map[string]string{"apns-collapse-id": strings.Repeat("c", 65)}), 400, "BadCollapseId"},
		{"empty", h2, "POST", u, "", hdr(nil), 400, "PayloadEmpty"},
		{"large", h2, "POST", u, strings.Repeat(" ", 4097), hdr(nil), 413, "PayloadTooLarge"},
	}
	for _, c := range cases {
		resp, body := do(t, c.c, c.method, c.url, c.body, c.h)
		var e struct{ Reason string }
		_ = json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != c.status || e.Reason != c.reason {
			t.Errorf("%s: %d %s, want %d %s", c.name, resp.StatusCode, body, c.status, c.reason)
		}
	}
	// A fresh token less than 20 minutes after the last one on the same connection.
	resp, _ := do(t, h2, "POST", u, "{}", hdr(nil))
	if resp.StatusCode != 200 {
		t.Fatalf("good request: %d", resp.StatusCode)
	}
	newer := signES256(t, key, f.KeyID, map[string]any{"iss": f.TeamID, "iat": now + 60})
	resp, body := do(t, h2, "POST", u, "{}", hdr(map[string]string{"authorization": "bearer " + newer}))
	if resp.StatusCode != 429 || !strings.Contains(body, "TooManyProviderTokenUpdates") {
		t.Errorf("token churn: %d %s", resp.StatusCode, body)
	}
	if len(f.Received()) != 1 {
		t.Errorf("accepted %d", len(f.Received()))
	}
}

func TestFCMFakeRefuses(t *testing.T) {
	f := NewFCM(t, "gatehouse-test")
	c := client(f.Options(), true)
	form := func(v url.Values) string { return v.Encode() }
	ct := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	resp, body := do(t, c, "POST", f.Options().TokenURL, form(url.Values{"grant_type": {"client_credentials"}}), ct)
	if resp.StatusCode != 400 || !strings.Contains(body, "unsupported_grant_type") {
		t.Errorf("grant type: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, c, "POST", f.Options().TokenURL, form(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"x.y.z"}}), ct)
	if resp.StatusCode != 400 || !strings.Contains(body, "invalid_grant") {
		t.Errorf("assertion: %d %s", resp.StatusCode, body)
	}
	// Without a token, with an unknown one.
	send := f.srv.URL + "/v1/projects/gatehouse-test/messages:send"
	for _, auth := range []string{"", "Bearer ya29.unknown"} {
		resp, body = do(t, c, "POST", send, `{"message":{"token":"`+token64+`"}}`, map[string]string{"Authorization": auth})
		if resp.StatusCode != 401 || !strings.Contains(body, "UNAUTHENTICATED") {
			t.Errorf("auth %q: %d %s", auth, resp.StatusCode, body)
		}
	}
	// With a real token from the platform's path: messages the v1 API refuses.
	p, err := platform.NewFCM(platform.FCMConfig{CredentialsJSON: f.ServiceAccountJSON()}, f.Options())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(context.Background(), push.Delivery{ID: "1", Channel: token64, Payload: []byte(`{"data":{"a":"b"}}`)}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	var access string
	for k := range f.tokens {
		access = k
	}
	f.mu.Unlock()
	for _, m := range []string{
		`{"message":{"token":"` + token64 + `","colour":"red"}}`,
		`{"message":{"token":"` + token64 + `","topic":"news"}}`,
		`{"message":{}}`,
		`{"message":{"token":"` + token64 + `","data":{"n":1}}}`,
		`{"message":{"token":"` + token64 + `","data":{"from":"x"}}}`,
		`{"message":{"token":"` + token64 + `","android":{"ttl":"10"}}}`,
		`{"message":{"token":"` + token64 + `","android":{"priority":"URGENT"}}}`,
		`{"message":{"token":"bad token"}}`,
		`{"message":{"token":"` + token64 + `","data":{"k":"` + strings.Repeat("x", 4096) + `"}}}`,
	} {
		resp, body = do(t, c, "POST", send, m, map[string]string{"Authorization": "Bearer " + access})
		if resp.StatusCode != 400 || !strings.Contains(body, "INVALID_ARGUMENT") {
			t.Errorf("%.70s: %d %s", m, resp.StatusCode, body)
		}
	}
	if len(f.Received()) != 1 {
		t.Errorf("accepted %d", len(f.Received()))
	}
}

func TestWNSFakeRefuses(t *testing.T) {
	f := NewWNS(t)
	c := client(f.Options(), false)
	resp, body := do(t, c, "POST", f.Options().TokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.PackageSID},
		"client_secret": {"wrong"}, "scope": {"notify.windows.com"}}.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != 400 || !strings.Contains(body, "invalid_client") {
		t.Errorf("secret: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, c, "POST", f.Channel("d"), "<toast/>", map[string]string{"X-WNS-Type": "wns/toast", "Content-Type": "text/xml"})
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	resp, body = do(t, c, "POST", f.Options().TokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {f.PackageSID},
		"client_secret": {f.ClientSecret}, "scope": {"notify.windows.com"}}.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &tok) != nil {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	auth := "Bearer " + tok.AccessToken
	for _, c2 := range []struct {
		body, typ, ct string
		status        int
	}{
		{"<toast/>", "wns/notification", "text/xml", 400},
		{"<toast/>", "wns/toast", "application/octet-stream", 400},
		{"<tile/>", "wns/toast", "text/xml", 400},
		{"raw", "wns/raw", "text/xml", 400},
		{"<toast>" + strings.Repeat("x", 5000) + "</toast>", "wns/toast", "text/xml", 413},
	} {
		resp, _ = do(t, c, "POST", f.Channel("d"), c2.body, map[string]string{"Authorization": auth, "X-WNS-Type": c2.typ, "Content-Type": c2.ct})
		if resp.StatusCode != c2.status || resp.Header.Get("X-WNS-Error-Description") == "" && c2.status == 400 {
			t.Errorf("%s %s: %d", c2.typ, c2.ct, resp.StatusCode)
		}
	}
	resp, _ = do(t, c, "POST", f.Channel("d"), "<toast/>", map[string]string{"Authorization": auth, "X-WNS-Type": "wns/toast", "Content-Type": "text/xml"})
	if resp.StatusCode != 200 || resp.Header.Get("X-WNS-Status") != "received" {
		t.Errorf("good: %d", resp.StatusCode)
	}
}

func TestWebPushFakeRefuses(t *testing.T) {
	f := NewWebPush(t)
	pub, priv, err := platform.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Endpoint string }
	sub := f.Subscribe("s", pub)
	_ = json.Unmarshal([]byte(sub), &s)
	c := client(f.Options(), true)
	resp, _ := do(t, c, "POST", f.srv.URL+"/wpush/v2/unknown", "x", nil)
	if resp.StatusCode != 404 {
		t.Errorf("unknown subscription: %d", resp.StatusCode)
	}
	resp, _ = do(t, c, "POST", s.Endpoint, "x", map[string]string{"TTL": "60", "Content-Encoding": "aes128gcm"})
	if resp.StatusCode != 401 {
		t.Errorf("no VAPID: %d", resp.StatusCode)
	}
	// Replay what the platform sent, altered.
	w, err := platform.NewWebPush(platform.WebPushConfig{VAPIDPrivateKey: priv, Subscriber: "mailto:a@b.c", EndpointHosts: []string{f.Host()}}, f.Options())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(context.Background(), push.Delivery{ID: "1", Channel: sub, Payload: []byte("secret text")}); err != nil {
		t.Fatal(err)
	}
	captured, capturedBody := f.Received()[0].Header, f.Received()[0].Body
	h := map[string]string{"Authorization": captured.Get("Authorization"), "TTL": captured.Get("TTL"), "Content-Encoding": "aes128gcm"}
	tampered := append([]byte(nil), capturedBody...)
	tampered[len(tampered)-1] ^= 1
	for _, c2 := range []struct {
		name   string
		body   string
		h      map[string]string
		status int
	}{
		{"tampered", string(tampered), h, 400},
		{"no TTL", string(capturedBody), map[string]string{"Authorization": h["Authorization"], "Content-Encoding": "aes128gcm"}, 400},
		{"aesgcm", string(capturedBody), map[string]string{"Authorization": h["Authorization"], "TTL": "1", "Content-Encoding": "aesgcm"}, 415},
		{"urgency", string(capturedBody), map[string]string{"Authorization": h["Authorization"], "TTL": "1", "Content-Encoding": "aes128gcm", "Urgency": "now"}, 400},
		{"bad signature", string(capturedBody), map[string]string{"Authorization": strings.Replace(h["Authorization"], "t=ey", "t=eX", 1), "TTL": "1", "Content-Encoding": "aes128gcm"}, 401},
		{"large", strings.Repeat("x", 4097), h, 413},
		{"replayed", string(capturedBody), h, 201},
	} {
		resp, body := do(t, c, "POST", s.Endpoint, c2.body, c2.h)
		if resp.StatusCode != c2.status {
			t.Errorf("%s: %d %s", c2.name, resp.StatusCode, body)
		}
	}
	if got := f.Received(); len(got) != 2 || string(got[0].Plaintext) != "secret text" || string(got[1].Plaintext) != "secret text" {
		t.Errorf("received %+v", got)
	}
}
