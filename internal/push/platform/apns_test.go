package platform_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/gatehouse/gatehouse/internal/push"
	"github.com/gatehouse/gatehouse/internal/push/platform"
	"github.com/gatehouse/gatehouse/internal/push/pushfake"
)

// clock is a settable clock shared by a platform and its fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const apnsToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

func deliveryError(t *testing.T, err error) *push.DeliveryError {
	t.Helper()
	var de *push.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *push.DeliveryError", err, err)
	}
	return de
}

func newAPNs(t testing.TB) (*platform.APNs, *pushfake.APNs, *clock) {
	t.Helper()
	fake := pushfake.NewAPNs(t, "com.example.app")
	clk := newClock()
	fake.SetClock(clk.Now)
	o := fake.Options()
	o.Now = clk.Now
	a, err := platform.NewAPNs(fake.TokenConfig(), o)
	if err != nil {
		t.Fatal(err)
	}
	return a, fake, clk
}

func TestAPNsTokenSend(t *testing.T) {
	a, fake, _ := newAPNs(t)
	ctx := context.Background()
	expiry := time.Now().Add(time.Hour).Truncate(time.Second)
	payload := []byte(`{"aps":{"alert":"hello","badge":1}}`)
	if err := a.Send(ctx, push.Delivery{ID: "msg-1", Channel: apnsToken, Payload: payload, Expiry: expiry,
		Headers: map[string]string{"APNS-Collapse-Id": "news"}}); err != nil {
		t.Fatal(err)
	}
	got := fake.Received()
	if len(got) != 1 {
		t.Fatalf("received %d notifications", len(got))
	}
	n := got[0]
	if n.Token != apnsToken || string(n.Payload) != string(payload) || n.Auth != "token" || n.KeyID != fake.KeyID {
		t.Errorf("notification %+v", n)
	}
	if n.PushType != "alert" || n.Priority != "10" || n.Topic != "com.example.app" || n.CollapseID != "news" {
		t.Errorf("headers %+v", n)
	}
	if n.Expiration != strconv.FormatInt(expiry.Unix(), 10) {
		t.Errorf("apns-expiration %q, want %d", n.Expiration, expiry.Unix())
	}
	if n.ID != platform.APNsID("msg-1") {
		t.Errorf("apns-id %q, want %q", n.ID, platform.APNsID("msg-1"))
	}
	// The same outbox id always gives the same apns-id; a UUID id is used as it is.
	if again := platform.APNsID("msg-1"); again != n.ID || platform.APNsID("msg-2") == again {
		t.Error("apns-id is not a function of the outbox id")
	}
	if id := "0f8fad5b-d9cb-469f-a165-70867728950e"; platform.APNsID(id) != id {
		t.Errorf("APNsID(%s) = %s", id, platform.APNsID(id))
	}
}

func TestAPNsPushTypesAndTopics(t *testing.T) {
	a, fake, _ := newAPNs(t)
	ctx := context.Background()
	cases := []struct {
		payload  string
		headers  map[string]string
		pushType string
		priority string
		topic    string
	}{
		{`{"aps":{"content-available":1},"k":"v"}`, nil, "background", "5", "com.example.app"},
		{`{"aps":{}}`, map[string]string{"apns-push-type": "voip"}, "voip", "10", "com.example.app.voip"},
		{`{"aps":{"alert":"x"}}`, map[string]string{"apns-priority": "5"}, "alert", "5", "com.example.app"},
		{`{"aps":{"alert":"x"}}`, map[string]string{"apns-push-type": "liveactivity"}, "liveactivity", "10", "com.example.app.push-type.liveactivity"},
	}
	for i, c := range cases {
		if err := a.Send(ctx, push.Delivery{ID: "t", Channel: apnsToken, Payload: []byte(c.payload), Headers: c.headers}); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		n := fake.Received()[i]
		if n.PushType != c.pushType || n.Priority != c.priority || n.Topic != c.topic {
			t.Errorf("case %d: got type %s priority %s topic %s", i, n.PushType, n.Priority, n.Topic)
		}
	}
	// A topic the fake does not serve is refused as APNs refuses it, permanently.
	err := a.Send(ctx, push.Delivery{ID: "t", Channel: apnsToken, Payload: []byte(`{}`), Headers: map[string]string{"apns-topic": "com.other.app"}})
	if de := deliveryError(t, err); de.Status != http.StatusBadRequest || de.Reason != "TopicDisallowed" || de.Retryable || de.Unregistered {
		t.Errorf("foreign topic: %+v", de)
	}
}

func TestAPNsTokenCachedAndRefreshed(t *testing.T) {
	a, fake, clk := newAPNs(t)
	ctx := context.Background()
	send := func() {
		t.Helper()
		if err := a.Send(ctx, push.Delivery{ID: "x", Channel: apnsToken, Payload: []byte(`{"aps":{"alert":"a"}}`)}); err != nil {
			t.Fatal(err)
		}
	}
	send()
	clk.Advance(30 * time.Minute)
	send()
	got := fake.Received()
	if got[0].IssuedAt != got[1].IssuedAt {
		t.Fatalf("token re-signed after 30 minutes: iat %d then %d", got[0].IssuedAt, got[1].IssuedAt)
	}
	// Past 50 minutes the platform signs a new token before APNs would refuse the old one.
	clk.Advance(21 * time.Minute)
	send()
	got = fake.Received()
	if got[2].IssuedAt != clk.Now().Unix() {
		t.Fatalf("token not refreshed after 51 minutes: iat %d, now %d", got[2].IssuedAt, clk.Now().Unix())
	}
	if fake.Requests() != 3 {
		t.Errorf("%d requests, want 3", fake.Requests())
	}
}

func TestAPNsExpiredProviderTokenRetried(t *testing.T) {
	a, fake, clk := newAPNs(t)
	ctx := context.Background()
	d := push.Delivery{ID: "x", Channel: apnsToken, Payload: []byte(`{"aps":{"alert":"a"}}`)}
	if err := a.Send(ctx, d); err != nil {
		t.Fatal(err)
	}
	// APNs' clock runs ahead: it finds the cached 40-minute-old token expired.
	clk.Advance(40 * time.Minute)
	fake.SetClock(func() time.Time { return clk.Now().Add(21 * time.Minute) })
	if err := a.Send(ctx, d); err != nil {
		t.Fatalf("not recovered from ExpiredProviderToken: %v", err)
	}
	if fake.Requests() != 3 {
		t.Errorf("%d requests, want 3 (one refused with ExpiredProviderToken, then accepted)", fake.Requests())
	}
	got := fake.Received()
	if len(got) != 2 || got[1].IssuedAt != clk.Now().Unix() {
		t.Errorf("received %+v", got)
	}
}

func TestAPNsErrors(t *testing.T) {
	a, fake, _ := newAPNs(t)
	ctx := context.Background()
	d := push.Delivery{ID: "x", Channel: apnsToken, Payload: []byte(`{"aps":{"alert":"a"}}`)}
	cases := []struct {
		fail         pushfake.Failure
		retryable    bool
		unregistered bool
	}{
		{pushfake.Failure{Status: 503, Reason: "ServiceUnavailable", RetryAfter: 7 * time.Second}, true, false},
		{pushfake.Failure{Status: 429, Reason: "TooManyRequests"}, true, false},
		{pushfake.Failure{Status: 500, Reason: "InternalServerError"}, true, false},
		{pushfake.Failure{Status: 400, Reason: "BadDeviceToken"}, false, false},
		{pushfake.Failure{Status: 413, Reason: "PayloadTooLarge"}, false, false},
		{pushfake.Failure{Status: 403, Reason: "InvalidProviderToken"}, true, false},
	}
	for _, c := range cases {
		fake.FailNext(1, c.fail)
		de := deliveryError(t, a.Send(ctx, d))
		if de.Platform != push.APNs || de.Status != c.fail.Status || de.Reason != c.fail.Reason || de.Retryable != c.retryable ||
			de.Unregistered != c.unregistered || de.RetryAfter != c.fail.RetryAfter {
			t.Errorf("%+v: got %+v", c.fail, de)
		}
	}
	inactive := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	fake.Unregister(apnsToken, inactive)
	de := deliveryError(t, a.Send(ctx, d))
	if de.Status != http.StatusGone || de.Reason != "Unregistered" || !de.Unregistered || de.Retryable {
		t.Errorf("unregistered: %+v", de)
	}
	if !strings.Contains(de.Error(), "2026-11-03T10:00:00Z") {
		t.Errorf("error %q does not say since when", de.Error())
	}
	if len(fake.Received()) != 0 {
		t.Errorf("the fake accepted %d notifications", len(fake.Received()))
	}
}

func TestAPNsWrongKeyRefused(t *testing.T) {
	fake := pushfake.NewAPNs(t, "com.example.app")
	_, otherKey := pushfake.NewP256Key()
	cfg := fake.TokenConfig()
	cfg.AuthKey = otherKey
	a, err := platform.NewAPNs(cfg, fake.Options())
	if err != nil {
		t.Fatal(err)
	}
	de := deliveryError(t, a.Send(context.Background(), push.Delivery{ID: "x", Channel: apnsToken, Payload: []byte(`{}`)}))
	if de.Status != http.StatusForbidden || de.Reason != "InvalidProviderToken" {
		t.Errorf("got %+v", de)
	}
}

func TestAPNsCertificate(t *testing.T) {
	fake := pushfake.NewAPNs(t, "com.example.app")
	cert := fake.ClientCertificate()
	// The certificate as a .p12 (as exported from Keychain) and as PEM.
	p12, err := pkcs12.Modern.Encode(cert.PrivateKey, cert.Leaf, nil, "secret")
	if err != nil {
		t.Fatal(err)
	}
	fromP12, err := platform.LoadAPNsCertificate(p12, nil, "secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := platform.LoadAPNsCertificate(p12, nil, "wrong"); err == nil {
		t.Error("a wrong .p12 password was accepted")
	}
	certPEM, keyPEM := pemPair(t, cert)
	fromPEM, err := platform.LoadAPNsCertificate(append(certPEM, keyPEM...), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []platform.APNsConfig{{Certificate: fromP12}, {Certificate: fromPEM, Topic: "com.example.app"}} {
		a, err := platform.NewAPNs(c, fake.Options())
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Send(context.Background(), push.Delivery{ID: "c", Channel: apnsToken, Payload: []byte(`{"aps":{"alert":"c"}}`)}); err != nil {
			t.Fatalf("config %d: %v", i, err)
		}
	}
	got := fake.Received()
	if len(got) != 2 || got[0].Auth != "certificate" || got[1].Auth != "certificate" || got[1].Topic != "com.example.app" {
		t.Errorf("received %+v", got)
	}
	// A certificate Apple did not issue fails the TLS handshake: retryable, nothing delivered.
	stranger := pushfake.NewAPNs(t, "com.example.app").ClientCertificate()
	a, err := platform.NewAPNs(platform.APNsConfig{Certificate: stranger}, fake.Options())
	if err != nil {
		t.Fatal(err)
	}
	de := deliveryError(t, a.Send(context.Background(), push.Delivery{ID: "c", Channel: apnsToken, Payload: []byte(`{}`)}))
	if !de.Retryable || de.Status != 0 || strings.Contains(de.Error(), apnsToken) {
		t.Errorf("foreign certificate: %v", de)
	}
	if n := len(fake.Received()); n != 2 {
		t.Errorf("received %d", n)
	}
	// Without token or certificate APNs answers 403 MissingProviderToken; the constructor refuses
	// such a configuration before that.
	if _, err := platform.NewAPNs(platform.APNsConfig{Topic: "com.example.app"}, fake.Options()); err == nil {
		t.Error("APNs without credentials was built")
	}
}

func pemPair(t *testing.T, cert *tls.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func TestAPNsValidation(t *testing.T) {
	a, fake, _ := newAPNs(t)
	big := `{"aps":{"alert":"` + strings.Repeat("x", platform.APNsMaxPayload-len(`{"aps":{"alert":""}}`)) + `"}}`
	if len(big) != platform.APNsMaxPayload {
		t.Fatalf("test payload is %d bytes", len(big))
	}
	bigVoIP := `{"aps":{"alert":"` + strings.Repeat("x", platform.APNsMaxVoIPPayload-len(`{"aps":{"alert":""}}`)) + `"}}`
	good := []struct {
		payload string
		headers map[string]string
	}{
		{big, nil},
		{bigVoIP, map[string]string{"apns-push-type": "voip"}},
		{`{"custom":1}`, map[string]string{"apns-expiration": "0", "apns-priority": "1"}},
	}
	for _, g := range good {
		if err := a.ValidatePayload([]byte(g.payload), g.headers); err != nil {
			t.Errorf("%d bytes %v: %v", len(g.payload), g.headers, err)
		}
		if err := a.Send(context.Background(), push.Delivery{ID: "v", Channel: apnsToken, Payload: []byte(g.payload), Headers: g.headers}); err != nil {
			t.Errorf("send %d bytes: %v", len(g.payload), err)
		}
	}
	bad := []struct {
		payload string
		headers map[string]string
		want    string
	}{
		{strings.Replace(big, "x", "xx", 1), nil, "limit of 4096"},
		{strings.Replace(bigVoIP, "x", "xx", 1), map[string]string{"apns-push-type": "voip"}, "limit of 5120"},
		{`[1]`, nil, "JSON object"},
		{`{"a":1,"a":2}`, nil, "not valid JSON"},
		{`{}`, map[string]string{"apns-push-type": "banner"}, "apns-push-type"},
		{`{}`, map[string]string{"apns-priority": "7"}, "apns-priority"},
		{`{"aps":{"content-available":1}}`, map[string]string{"apns-priority": "10"}, "background"},
		{`{}`, map[string]string{"apns-expiration": "soon"}, "apns-expiration"},
		{`{}`, map[string]string{"apns-collapse-id": strings.Repeat("c", 65)}, "apns-collapse-id"},
		{`{}`, map[string]string{"apns-topic": "bad topic"}, "apns-topic"},
		{`{}`, map[string]string{"X-WNS-Type": "wns/toast"}, "unsupported header"},
		{`{}`, map[string]string{"apns-priority": "10", "APNS-PRIORITY": "5"}, "twice"},
		{`{}`, map[string]string{"apns-collapse-id": "a\r\nb"}, "control character"},
	}
	for _, b := range bad {
		err := a.ValidatePayload([]byte(b.payload), b.headers)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%.40s %v: error %v, want %q", b.payload, b.headers, err, b.want)
		}
		de := deliveryError(t, a.Send(context.Background(), push.Delivery{ID: "v", Channel: apnsToken, Payload: []byte(b.payload), Headers: b.headers}))
		if de.Retryable || de.Status != 0 {
			t.Errorf("send of an invalid payload: %+v", de)
		}
	}
	for _, tok := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 63), strings.Repeat("a", 202), apnsToken + " ", "<" + apnsToken + ">"} {
		if a.ValidateChannel(tok) == nil {
			t.Errorf("token %q accepted", tok)
		}
		de := deliveryError(t, a.Send(context.Background(), push.Delivery{ID: "v", Channel: tok, Payload: []byte(`{}`)}))
		if de.Retryable || de.Reason != "BadDeviceToken" {
			t.Errorf("send to %q: %+v", tok, de)
		}
	}
	for _, tok := range []string{apnsToken, strings.ToUpper(apnsToken), strings.Repeat("ab", 100)} {
		if err := a.ValidateChannel(tok); err != nil {
			t.Errorf("token %q: %v", tok, err)
		}
	}
	if n := fake.Requests(); n != len(good) {
		t.Errorf("%d requests reached APNs, want %d (invalid ones must fail before sending)", n, len(good))
	}
}

func TestAPNsConcurrent(t *testing.T) {
	a, fake, _ := newAPNs(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			errs <- a.Send(context.Background(), push.Delivery{ID: strconv.Itoa(i), Channel: apnsToken, Payload: []byte(`{"aps":{"alert":"c"}}`)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := fake.Received()
	if len(got) != 40 {
		t.Fatalf("received %d", len(got))
	}
	for _, n := range got {
		if n.IssuedAt != got[0].IssuedAt {
			t.Fatal("concurrent sends signed more than one provider token")
		}
	}
}

func TestAPNsTransportErrorRetryable(t *testing.T) {
	fake := pushfake.NewAPNs(t, "com.example.app")
	o := fake.Options()
	o.Endpoint = "https://127.0.0.1:1"
	a, err := platform.NewAPNs(fake.TokenConfig(), o)
	if err != nil {
		t.Fatal(err)
	}
	de := deliveryError(t, a.Send(context.Background(), push.Delivery{ID: "x", Channel: apnsToken, Payload: []byte(`{}`)}))
	if !de.Retryable || de.Status != 0 || de.Err == nil {
		t.Errorf("got %+v", de)
	}
}
