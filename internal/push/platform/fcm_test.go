package platform_test

import (
	"context"
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

const fcmToken = "dGVzdC10b2tlbi0x:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeco8ohsN5PjL1iC2dNtk2BAokeMCg2ZXKqpc8FXKmhX94kIxQ"

func newFCM(t testing.TB) (*platform.FCM, *pushfake.FCM) {
	t.Helper()
	fake := pushfake.NewFCM(t, "gatehouse-test")
	f, err := platform.NewFCM(platform.FCMConfig{CredentialsJSON: fake.ServiceAccountJSON()}, fake.Options())
	if err != nil {
		t.Fatal(err)
	}
	return f, fake
}

func TestFCMLegacyPayloadMapped(t *testing.T) {
	f, fake := newFCM(t)
	payload := `{"data":{"message":"hello","count":3,"nested":{"a":[1,2]}},
		"notification":{"title":"T","body":"B","icon":"ic","sound":"ding","badge":"2","body_loc_args":"[\"x\"]","click_action":"OPEN"},
		"collapse_key":"news","time_to_live":3600,"priority":"high","delay_while_idle":true,"restricted_package_name":"com.example",
		"content_available":true}`
	if err := f.ValidatePayload([]byte(payload), nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Send(context.Background(), push.Delivery{ID: "m1", Channel: fcmToken, Payload: []byte(payload)}); err != nil {
		t.Fatal(err)
	}
	got := fake.Received()
	if len(got) != 1 {
		t.Fatalf("received %d", len(got))
	}
	m := got[0]
	if m.Token != fcmToken || m.ValidateOnly {
		t.Errorf("token %q validate_only %v", m.Token, m.ValidateOnly)
	}
	wantData := map[string]string{"message": "hello", "count": "3", "nested": `{"a":[1,2]}`}
	if len(m.Data) != len(wantData) {
		t.Errorf("data %v", m.Data)
	}
	for k, v := range wantData {
		if m.Data[k] != v {
			t.Errorf("data[%s] = %q, want %q", k, m.Data[k], v)
		}
	}
	if m.Notification == nil || m.Notification.Title != "T" || m.Notification.Body != "B" {
		t.Errorf("notification %+v", m.Notification)
	}
	a := m.Android
	if a == nil || a.CollapseKey != "news" || a.TTL != "3600s" || a.Priority != "HIGH" || a.RestrictedPackageName != "com.example" {
		t.Fatalf("android %+v", a)
	}
	if a.Notification["icon"] != "ic" || a.Notification["sound"] != "ding" || a.Notification["click_action"] != "OPEN" {
		t.Errorf("android.notification %v", a.Notification)
	}
	if args, _ := a.Notification["body_loc_args"].([]any); len(args) != 1 || args[0] != "x" {
		t.Errorf("body_loc_args %v", a.Notification["body_loc_args"])
	}
	aps, _ := m.APNs["payload"].(map[string]any)["aps"].(map[string]any)
	if aps["badge"] != float64(2) || aps["sound"] != "ding" || aps["content-available"] != float64(1) {
		t.Errorf("apns %v", m.APNs)
	}
	// dry_run is v1's validate_only.
	if err := f.Send(context.Background(), push.Delivery{ID: "m2", Channel: fcmToken, Payload: []byte(`{"data":{"a":"b"},"dry_run":true}`)}); err != nil {
		t.Fatal(err)
	}
	if got := fake.Received(); !got[1].ValidateOnly {
		t.Error("dry_run not mapped to validate_only")
	}
}

func TestFCMV1PayloadAndExpiry(t *testing.T) {
	f, fake := newFCM(t)
	payload := `{"message":{"data":{"k":"v"},"android":{"priority":"NORMAL"},"apns":{"headers":{"apns-priority":"5"}}}}`
	expiry := time.Now().Add(90 * time.Minute)
	if err := f.Send(context.Background(), push.Delivery{ID: "m1", Channel: fcmToken, Payload: []byte(payload), Expiry: expiry}); err != nil {
		t.Fatal(err)
	}
	m := fake.Received()[0]
	if m.Data["k"] != "v" || m.Android.Priority != "NORMAL" || m.APNs["headers"] == nil {
		t.Errorf("message %s", m.Raw)
	}
	if m.Android.TTL != "5400s" && m.Android.TTL != "5399s" {
		t.Errorf("ttl %q, want about 5400s from the expiry", m.Android.TTL)
	}
}

func TestFCMTokenCachedAndRefreshedOn401(t *testing.T) {
	f, fake := newFCM(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := f.Send(ctx, push.Delivery{ID: "c", Channel: fcmToken, Payload: []byte(`{"data":{"a":"b"}}`)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := fake.TokenCalls(); n != 1 {
		t.Fatalf("%d access tokens fetched for 20 sends, want 1", n)
	}
	// A revoked token: FCM answers 401, the platform fetches a new one and sends again.
	fake.RevokeTokens()
	if err := f.Send(ctx, push.Delivery{ID: "c", Channel: fcmToken, Payload: []byte(`{"data":{"a":"b"}}`)}); err != nil {
		t.Fatal(err)
	}
	if n := fake.TokenCalls(); n != 2 {
		t.Errorf("%d access tokens, want 2", n)
	}
	if n := len(fake.Received()); n != 21 {
		t.Errorf("received %d, want 21", n)
	}
}

func TestFCMErrors(t *testing.T) {
	f, fake := newFCM(t)
	ctx := context.Background()
	d := push.Delivery{ID: "x", Channel: fcmToken, Payload: []byte(`{"data":{"a":"b"}}`)}
	cases := []struct {
		fail         pushfake.Failure
		reason       string
		retryable    bool
		unregistered bool
	}{
		{pushfake.Failure{Status: 429, Reason: "QUOTA_EXCEEDED", RetryAfter: 30 * time.Second}, "QUOTA_EXCEEDED", true, false},
		{pushfake.Failure{Status: 503, Reason: "UNAVAILABLE", RetryAfter: 5 * time.Second}, "UNAVAILABLE", true, false},
		{pushfake.Failure{Status: 500, Reason: "INTERNAL"}, "INTERNAL", true, false},
		{pushfake.Failure{Status: 400, Reason: "INVALID_ARGUMENT"}, "INVALID_ARGUMENT", false, false},
		{pushfake.Failure{Status: 403, Reason: "SENDER_ID_MISMATCH"}, "SENDER_ID_MISMATCH", false, false},
		{pushfake.Failure{Status: 404, Reason: ""}, "NOT_FOUND", false, true},
	}
	for _, c := range cases {
		fake.FailNext(1, c.fail)
		de := deliveryError(t, f.Send(ctx, d))
		if de.Platform != push.FCM || de.Status != c.fail.Status || de.Reason != c.reason || de.Retryable != c.retryable ||
			de.Unregistered != c.unregistered || de.RetryAfter != c.fail.RetryAfter {
			t.Errorf("%+v: got %+v", c.fail, de)
		}
	}
	fake.Unregister(fcmToken)
	de := deliveryError(t, f.Send(ctx, d))
	if de.Status != http.StatusNotFound || de.Reason != "UNREGISTERED" || !de.Unregistered || de.Retryable {
		t.Errorf("unregistered: %+v", de)
	}
	if len(fake.Received()) != 0 {
		t.Errorf("accepted %d", len(fake.Received()))
	}
}

func TestFCMCredentials(t *testing.T) {
	fake := pushfake.NewFCM(t, "gatehouse-test")
	ctx := context.Background()
	d := push.Delivery{ID: "x", Channel: fcmToken, Payload: []byte(`{"data":{"a":"b"}}`)}
	// Another service account's key: the token endpoint refuses the assertion; nothing is sent and
	// the message is kept (retryable).
	other := pushfake.NewFCM(t, "gatehouse-test")
	f, err := platform.NewFCM(platform.FCMConfig{CredentialsJSON: other.ServiceAccountJSON()}, fake.Options())
	if err != nil {
		t.Fatal(err)
	}
	de := deliveryError(t, f.Send(ctx, d))
	if !de.Retryable || de.Reason != "token" || !strings.Contains(de.Error(), "invalid_grant") {
		t.Errorf("foreign key: %+v", de)
	}
	if strings.Contains(de.Error(), "PRIVATE KEY") {
		t.Error("error shows the key")
	}
	// The right key for another project: 403 PERMISSION_DENIED, kept for the operator.
	f, err = platform.NewFCM(platform.FCMConfig{CredentialsJSON: fake.ServiceAccountJSON(), ProjectID: "other-project"}, fake.Options())
	if err != nil {
		t.Fatal(err)
	}
	de = deliveryError(t, f.Send(ctx, d))
	if de.Status != http.StatusForbidden || de.Reason != "PERMISSION_DENIED" || !de.Retryable {
		t.Errorf("other project: %+v", de)
	}
	for _, bad := range []string{``, `{}`, `{"type":"authorized_user"}`, `not json`, `{"type":"service_account","project_id":"p"}`} {
		if _, err := platform.NewFCM(platform.FCMConfig{CredentialsJSON: []byte(bad)}, fake.Options()); err == nil {
			t.Errorf("credentials %q accepted", bad)
		}
	}
	if len(fake.Received()) != 0 {
		t.Error("a message was accepted")
	}
}

func TestFCMValidation(t *testing.T) {
	f, fake := newFCM(t)
	big := `{"data":{"k":"` + strings.Repeat("x", platform.FCMMaxPayload-len(`{"data":{"k":""}}`)) + `"}}`
	if err := f.ValidatePayload([]byte(big), nil); err != nil {
		t.Errorf("4096 bytes: %v", err)
	}
	bad := []struct{ payload, want string }{
		{strings.Replace(big, "x", "xx", 1), "limit of 4096"},
		{`[]`, "JSON object"},
		{`{"data":{"a":"1"},"data":{}}`, "not valid JSON"},
		{`{"data":"x"}`, "data must be an object"},
		{`{"data":{"from":"x"}}`, "reserved"},
		{`{"data":{"google.x":"x"}}`, "reserved"},
		{`{"to":"/topics/all","data":{}}`, "target"},
		{`{"registration_ids":["a"]}`, "target"},
		{`{"time_to_live":-1}`, "time_to_live"},
		{`{"time_to_live":2419201}`, "time_to_live"},
		{`{"time_to_live":1.5}`, "time_to_live"},
		{`{"priority":"urgent"}`, "priority"},
		{`{"notification":{"title":1}}`, "title"},
		{`{"notification":{"unknown":"x"}}`, "unknown notification field"},
		{`{"colapse_key":"x"}`, "unknown field"},
		{`{"message":{"token":"x"}}`, "must not name a token"},
		{`{"message":{"topic":"news"}}`, "must not name a topic"},
		{`{"message":{"data":{"n":1}}}`, "must be a string"},
		{`{"message":{},"extra":1}`, "unknown request field"},
	}
	for _, b := range bad {
		err := f.ValidatePayload([]byte(b.payload), nil)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%.60s: error %v, want %q", b.payload, err, b.want)
		}
		de := deliveryError(t, f.Send(context.Background(), push.Delivery{ID: "v", Channel: fcmToken, Payload: []byte(b.payload)}))
		if de.Retryable || de.Status != 0 {
			t.Errorf("send %.40s: %+v", b.payload, de)
		}
	}
	if err := f.ValidatePayload([]byte(`{}`), map[string]string{"TTL": "10"}); err == nil {
		t.Error("a header was accepted")
	}
	for _, tok := range []string{"", "short", strings.Repeat("a", 31), fcmToken + " ", fcmToken + "/", strings.Repeat("a", 4097)} {
		if f.ValidateChannel(tok) == nil {
			t.Errorf("token %q accepted", tok)
		}
	}
	if err := f.ValidateChannel(fcmToken); err != nil {
		t.Error(err)
	}
	if fake.Requests() != 0 {
		t.Errorf("%d requests reached FCM", fake.Requests())
	}
	// What the platform builds is what FCM accepts: the legacy forms above that are valid pass the
	// fake's own checks.
	for _, p := range []string{big, `{"notification":{"title":"t","title_loc_args":["a","b"]}}`, `{"time_to_live":0}`, `{"priority":10}`} {
		if err := f.Send(context.Background(), push.Delivery{ID: "ok", Channel: fcmToken, Payload: []byte(p)}); err != nil {
			t.Errorf("%.40s: %v", p, err)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(fake.Received()[0].Raw, &body); err != nil || body["message"] == nil {
		t.Errorf("request body %s", fake.Received()[0].Raw)
	}
}
