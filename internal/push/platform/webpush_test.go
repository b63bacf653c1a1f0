package platform_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/push"
	"github.com/gatehouse/gatehouse/internal/push/platform"
	"github.com/gatehouse/gatehouse/internal/push/pushfake"
)

func newWebPush(t testing.TB) (*platform.WebPush, *pushfake.WebPush) {
	t.Helper()
	fake := pushfake.NewWebPush(t)
	pub, priv, err := platform.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	w, err := platform.NewWebPush(platform.WebPushConfig{VAPIDPrivateKey: priv, VAPIDPublicKey: pub, Subscriber: "mailto:ops@example.com",
		EndpointHosts: []string{fake.Host()}}, fake.Options())
	if err != nil {
		t.Fatal(err)
	}
	if w.PublicKey() != pub {
		t.Fatalf("public key %q, want %q", w.PublicKey(), pub)
	}
	return w, fake
}

func TestWebPushSendDecrypted(t *testing.T) {
	w, fake := newWebPush(t)
	sub := fake.Subscribe("browser1", w.PublicKey())
	if err := w.ValidateChannel(sub); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"title":"Hi","body":"from Gatehouse ✓"}`)
	start := time.Now()
	if err := w.Send(context.Background(), push.Delivery{ID: "wp1", Channel: sub, Payload: payload,
		Headers: map[string]string{"Urgency": "high", "topic": "scores"}, Expiry: time.Now().Add(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got := fake.Received()
	if len(got) != 1 {
		t.Fatalf("received %d", len(got))
	}
	m := got[0]
	if string(m.Plaintext) != string(payload) {
		t.Errorf("decrypted %q, want %q", m.Plaintext, payload)
	}
	if m.Urgency != "high" || m.Topic != "scores" || (m.TTL != 600 && m.TTL != 599) {
		t.Errorf("headers: urgency %q topic %q ttl %d", m.Urgency, m.Topic, m.TTL)
	}
	if m.Subject != "mailto:ops@example.com" || m.Audience != "https://"+fake.Host() || m.Key != w.PublicKey() {
		t.Errorf("vapid: %+v", m)
	}
	if m.Expiry.Before(start) || m.Expiry.After(start.Add(24*time.Hour)) {
		t.Errorf("vapid exp %v", m.Expiry)
	}
	// An empty payload (a tickle) and the largest one both arrive intact; the default TTL is 4 weeks.
	big := []byte(strings.Repeat("y", platform.WebPushMaxPayload))
	for _, p := range [][]byte{nil, big} {
		if err := w.Send(context.Background(), push.Delivery{ID: "wp", Channel: sub, Payload: p}); err != nil {
			t.Fatalf("%d bytes: %v", len(p), err)
		}
	}
	got = fake.Received()
	if len(got[1].Plaintext) != 0 || string(got[2].Plaintext) != string(big) || got[2].TTL != 2419200 || got[2].RecordSize != 4096 {
		t.Errorf("received %d and %d bytes, ttl %d, rs %d", len(got[1].Plaintext), len(got[2].Plaintext), got[2].TTL, got[2].RecordSize)
	}
}

func TestWebPushVAPIDChecked(t *testing.T) {
	w, fake := newWebPush(t)
	// A subscription made with another application server key refuses our VAPID key (403).
	otherPub, _, _ := platform.GenerateVAPIDKeys()
	sub := fake.Subscribe("bound-elsewhere", otherPub)
	de := deliveryError(t, w.Send(context.Background(), push.Delivery{ID: "x", Channel: sub, Payload: []byte("x")}))
	if de.Status != http.StatusForbidden || !de.Retryable || de.Unregistered {
		t.Errorf("foreign key: %+v", de)
	}
	// The receiver's clock is two days ahead: the token (12 hours) has expired.
	fake.SetClock(func() time.Time { return time.Now().Add(48 * time.Hour) })
	sub = fake.Subscribe("b", w.PublicKey())
	de = deliveryError(t, w.Send(context.Background(), push.Delivery{ID: "x", Channel: sub, Payload: []byte("x")}))
	if de.Status != http.StatusUnauthorized || !strings.Contains(de.Error(), "expired") {
		t.Errorf("expired token: %+v", de)
	}
	// Two days behind: exp is more than 24 hours away.
	fake.SetClock(func() time.Time { return time.Now().Add(-48 * time.Hour) })
	de = deliveryError(t, w.Send(context.Background(), push.Delivery{ID: "x", Channel: sub, Payload: []byte("x")}))
	if de.Status != http.StatusUnauthorized || !strings.Contains(de.Error(), "24 hours") {
		t.Errorf("far exp: %+v", de)
	}
	if len(fake.Received()) != 0 {
		t.Error("accepted")
	}
}

func TestWebPushErrors(t *testing.T) {
	w, fake := newWebPush(t)
	sub := fake.Subscribe("b", w.PublicKey())
	d := push.Delivery{ID: "x", Channel: sub, Payload: []byte("hello")}
	cases := []struct {
		fail      pushfake.Failure
		retryable bool
		unreg     bool
	}{
		{pushfake.Failure{Status: 429, RetryAfter: 20 * time.Second}, true, false},
		{pushfake.Failure{Status: 503, RetryAfter: time.Second}, true, false},
		{pushfake.Failure{Status: 500}, true, false},
		{pushfake.Failure{Status: 400}, false, false},
		{pushfake.Failure{Status: 413}, false, false},
		{pushfake.Failure{Status: 404}, false, true},
	}
	for _, c := range cases {
		fake.FailNext(1, c.fail)
		de := deliveryError(t, w.Send(context.Background(), d))
		if de.Platform != push.WebPush || de.Status != c.fail.Status || de.Reason != http.StatusText(c.fail.Status) ||
			de.Retryable != c.retryable || de.Unregistered != c.unreg || de.RetryAfter != c.fail.RetryAfter {
			t.Errorf("%+v: got %+v", c.fail, de)
		}
	}
	fake.Unsubscribe("b")
	de := deliveryError(t, w.Send(context.Background(), d))
	if de.Status != http.StatusGone || !de.Unregistered || de.Retryable {
		t.Errorf("unsubscribed: %+v", de)
	}
	// A transport error does not show the endpoint's capability path.
	gone := strings.Replace(sub, fake.Host(), "127.0.0.1:1", 1)
	w2, _ := platform.NewWebPush(platform.WebPushConfig{VAPIDPrivateKey: mustPriv(t), Subscriber: "https://example.com/contact",
		EndpointHosts: []string{"127.0.0.1:1"}}, fake.Options())
	de = deliveryError(t, w2.Send(context.Background(), push.Delivery{ID: "x", Channel: gone, Payload: []byte("x")}))
	if !de.Retryable || de.Status != 0 || strings.Contains(de.Error(), "wpush") {
		t.Errorf("transport error: %v", de)
	}
}

func mustPriv(t *testing.T) string {
	t.Helper()
	_, priv, err := platform.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestWebPushConcurrent(t *testing.T) {
	w, fake := newWebPush(t)
	subs := []string{fake.Subscribe("a", w.PublicKey()), fake.Subscribe("b", "")}
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if err := w.Send(context.Background(), push.Delivery{ID: "c", Channel: subs[i%2], Payload: []byte("n")}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(fake.Received()); n != 30 {
		t.Errorf("received %d", n)
	}
}

func TestWebPushValidation(t *testing.T) {
	w, fake := newWebPush(t)
	good := fake.Subscribe("g", w.PublicKey())
	var s map[string]any
	if err := json.Unmarshal([]byte(good), &s); err != nil {
		t.Fatal(err)
	}
	keys := s["keys"].(map[string]any)
	p256, auth := keys["p256dh"].(string), keys["auth"].(string)
	endpoint := s["endpoint"].(string)
	mk := func(endpoint, p256, auth string) string {
		b, _ := json.Marshal(map[string]any{"endpoint": endpoint, "keys": map[string]string{"p256dh": p256, "auth": auth}})
		return string(b)
	}
	notOnCurve := base64.RawURLEncoding.EncodeToString(append([]byte{4}, make([]byte, 64)...))
	bad := []struct{ sub, want string }{
		{``, "not JSON"},
		{`[]`, "not JSON"},
		{`{"endpoint":"x","endpoint":"y"}`, "not JSON"},
		{mk("http://"+fake.Host()+"/x", p256, auth), "https"},
		{mk("https://evil.example.com/x", p256, auth), "not a push service host"},
		{mk(endpoint, "", auth), "p256dh"},
		{mk(endpoint, p256[:40], auth), "p256dh"},
		{mk(endpoint, notOnCurve, auth), "not a point"},
		{mk(endpoint, p256, ""), "auth"},
		{mk(endpoint, p256, auth+"AAAA"), "auth"},
		{mk(endpoint, p256, "!!!!"), "auth"},
		{mk(endpoint+"#f", p256, auth), "https"},
		{mk(endpoint, p256, auth) + strings.Repeat(" ", 4096), "longer"},
	}
	for _, b := range bad {
		err := w.ValidateChannel(b.sub)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%.80s: error %v, want %q", b.sub, err, b.want)
		}
		de := deliveryError(t, w.Send(context.Background(), push.Delivery{ID: "x", Channel: b.sub, Payload: []byte("x")}))
		if de.Retryable || de.Reason != "InvalidSubscription" {
			t.Errorf("send: %+v", de)
		}
	}
	// Padded base64url, as some libraries emit, is accepted.
	if err := w.ValidateChannel(mk(endpoint, p256+"=", auth+"==")); err != nil {
		t.Errorf("padded keys: %v", err)
	}
	// Browsers' real push services pass the default allowlist.
	for _, host := range []string{"fcm.googleapis.com", "updates.push.services.mozilla.com", "web.push.apple.com", "wns2-by3p.notify.windows.com"} {
		if err := platform.ValidateWebPushSubscription(mk("https://"+host+"/fcm/send/abc", p256, auth)); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if platform.ValidateWebPushSubscription(good) == nil {
		t.Error("the fake's endpoint passed the default allowlist")
	}
	payloadBad := []struct {
		payload string
		headers map[string]string
		want    string
	}{
		{strings.Repeat("z", platform.WebPushMaxPayload+1), nil, "limit of 3993"},
		{"x", map[string]string{"TTL": "-1"}, "TTL"},
		{"x", map[string]string{"TTL": "2419201"}, "TTL"},
		{"x", map[string]string{"Urgency": "urgent"}, "Urgency"},
		{"x", map[string]string{"Topic": strings.Repeat("t", 33)}, "Topic"},
		{"x", map[string]string{"Topic": "a b"}, "Topic"},
		{"x", map[string]string{"apns-priority": "10"}, "unsupported header"},
	}
	for _, b := range payloadBad {
		err := w.ValidatePayload([]byte(b.payload), b.headers)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%.20s %v: %v, want %q", b.payload, b.headers, err, b.want)
		}
		de := deliveryError(t, w.Send(context.Background(), push.Delivery{ID: "x", Channel: good, Payload: []byte(b.payload), Headers: b.headers}))
		if de.Retryable || de.Reason != "InvalidPayload" {
			t.Errorf("send: %+v", de)
		}
	}
	if fake.Requests() != 0 {
		t.Errorf("%d requests reached the push service", fake.Requests())
	}
	// Configuration.
	pub, priv, _ := platform.GenerateVAPIDKeys()
	otherPub, _, _ := platform.GenerateVAPIDKeys()
	for _, c := range []platform.WebPushConfig{
		{VAPIDPrivateKey: "", Subscriber: "mailto:a@b.c"},
		{VAPIDPrivateKey: priv[:20], Subscriber: "mailto:a@b.c"},
		{VAPIDPrivateKey: priv, VAPIDPublicKey: otherPub, Subscriber: "mailto:a@b.c"},
		{VAPIDPrivateKey: priv, Subscriber: "ops@example.com"},
		{VAPIDPrivateKey: priv, Subscriber: "http://example.com"},
	} {
		if _, err := platform.NewWebPush(c, platform.Options{}); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	derived, err := platform.NewWebPush(platform.WebPushConfig{VAPIDPrivateKey: priv, Subscriber: "mailto:a@b.c"}, platform.Options{})
	if err != nil || derived.PublicKey() != pub {
		t.Errorf("derived public key %v %v", derived, err)
	}
}
