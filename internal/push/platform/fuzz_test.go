package platform

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzChannel runs every platform's channel check on the same input: none panics, and what each
// accepts has the shape it promises.
func FuzzChannel(f *testing.F) {
	p256 := "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
	for _, s := range []string{
		"a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
		"dGVzdC10b2tlbi0x:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ",
		"https://db5.notify.windows.com/?token=AwYAAAB%2bZ",
		"https://db5.notify.windows.com.evil.com/?token=x",
		"https://user@db5.notify.windows.com/",
		`{"endpoint":"https://fcm.googleapis.com/fcm/send/abc","keys":{"p256dh":"` + p256 + `","auth":"tBHItJI5svbpez7KI4CCXg"}}`,
		`{"endpoint":"https://updates.push.services.mozilla.com/wpush/v2/x","expirationTime":null,"keys":{"p256dh":"","auth":""}}`,
		`{"endpoint":"https://127.0.0.1/x","keys":{}}`,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateAPNsToken(s) == nil {
			if len(s)%2 != 0 || len(s) < 64 || strings.Trim(s, "0123456789abcdefABCDEF") != "" {
				t.Fatalf("APNs accepted %q", s)
			}
		}
		if ValidateFCMToken(s) == nil {
			if len(s) < 32 || strings.ContainsAny(s, " /\"{}\n") {
				t.Fatalf("FCM accepted %q", s)
			}
		}
		if ValidateWNSChannel(s) == nil {
			u, err := url.Parse(s)
			if err != nil || u.Scheme != "https" || u.User != nil || !strings.HasSuffix(strings.ToLower(u.Hostname()), ".notify.windows.com") ||
				(u.Port() != "" && u.Port() != "443") {
				t.Fatalf("WNS accepted %q", s)
			}
		}
		if sub, err := ParseSubscription(s, WebPushEndpointHosts); err == nil {
			u, err := url.Parse(sub.Endpoint)
			if err != nil || u.Scheme != "https" || u.User != nil || u.Hostname() == "" {
				t.Fatalf("Web Push accepted endpoint %q", sub.Endpoint)
			}
			k, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(sub.Keys.P256dh, "="))
			a, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(sub.Keys.Auth, "="))
			if len(k) != 65 || len(a) != 16 {
				t.Fatalf("Web Push accepted keys %q %q", sub.Keys.P256dh, sub.Keys.Auth)
			}
		}
	})
}

// FuzzPayload runs every platform's payload check: none panics, nothing over a limit passes, and
// an accepted FCM payload becomes a v1 request for the device.
func FuzzPayload(f *testing.F) {
	for _, s := range []string{
		`{"aps":{"alert":"hi","badge":1}}`,
		`{"aps":{"content-available":1}}`,
		`{"data":{"message":"hello","n":1},"notification":{"title":"t","body_loc_args":"[\"a\"]","badge":"3"},"time_to_live":60,"priority":"high","dry_run":true}`,
		`{"message":{"data":{"k":"v"},"android":{"ttl":"10s"}}}`,
		`{"message":{"token":"x"}}`,
		`<toast><visual><binding template="ToastText01"><text id="1">x</text></binding></visual></toast>`,
		`<badge value="1"/>`,
		`<!DOCTYPE x><tile/>`,
		`{"data":{"from":"x"}}`,
		`[]`, ``,
	} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "voip")
	}
	apns := &APNs{cfg: APNsConfig{Topic: "com.example.app"}}
	f.Fuzz(func(t *testing.T, payload []byte, header string) {
		h := func(name string) map[string]string {
			if header == "" {
				return nil
			}
			return map[string]string{name: header}
		}
		if _, err := apns.prepare(payload, h("apns-push-type"), time.Time{}); err == nil && len(payload) > APNsMaxVoIPPayload {
			t.Fatalf("APNs accepted %d bytes", len(payload))
		}
		body, err := fcmRequest(payload, nil, "device-token", time.Now().Add(time.Minute), time.Now())
		if err == nil {
			if len(payload) > FCMMaxPayload {
				t.Fatalf("FCM accepted %d bytes", len(payload))
			}
			var req struct {
				Message map[string]any `json:"message"`
			}
			if err := json.Unmarshal(body, &req); err != nil || req.Message["token"] != "device-token" {
				t.Fatalf("FCM built %s from %q", body, payload)
			}
			if data, ok := req.Message["data"].(map[string]any); ok {
				for k, v := range data {
					if _, ok := v.(string); !ok {
						t.Fatalf("FCM data %q is %T", k, v)
					}
				}
			}
		}
		if _, err := wnsPrepare(payload, h("X-WNS-Type")); err == nil && (len(payload) > WNSMaxPayload || len(payload) == 0) {
			t.Fatalf("WNS accepted %d bytes", len(payload))
		}
		if _, err := webPushPrepare(payload, h("Topic")); err == nil && len(payload) > WebPushMaxPayload {
			t.Fatalf("Web Push accepted %d bytes", len(payload))
		}
	})
}
