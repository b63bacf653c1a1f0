package platform_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/push"
	"github.com/gatehouse/gatehouse/internal/push/platform"
	"github.com/gatehouse/gatehouse/internal/push/pushfake"
)

const toast = `<toast><visual><binding template="ToastText01"><text id="1">hello</text></binding></visual></toast>`

func newWNS(t testing.TB) (*platform.WNS, *pushfake.WNS) {
	t.Helper()
	fake := pushfake.NewWNS(t)
	w, err := platform.NewWNS(fake.Config(), fake.Options())
	if err != nil {
		t.Fatal(err)
	}
	return w, fake
}

func TestWNSSend(t *testing.T) {
	w, fake := newWNS(t)
	ctx := context.Background()
	cases := []struct {
		payload, typ, ct string
		headers          map[string]string
	}{
		{toast, "wns/toast", "text/xml", nil},
		{`<?xml version="1.0" encoding="utf-8"?><tile><visual/></tile>`, "wns/tile", "text/xml", map[string]string{"X-WNS-Tag": "scores", "x-wns-cache-policy": "no-cache"}},
		{`<badge value="7"/>`, "wns/badge", "text/xml", map[string]string{"X-WNS-Type": "wns/badge"}},
		{"\x00raw bytes\xff", "wns/raw", "application/octet-stream", map[string]string{"X-WNS-Type": "wns/raw", "X-WNS-RequestForStatus": "true"}},
	}
	for i, c := range cases {
		if err := w.Send(ctx, push.Delivery{ID: "w", Channel: fake.Channel("dev1"), Payload: []byte(c.payload), Headers: c.headers,
			Expiry: time.Now().Add(time.Hour)}); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		n := fake.Received()[i]
		if n.Channel != "dev1" || n.Type != c.typ || n.ContentType != c.ct || string(n.Payload) != c.payload {
			t.Errorf("case %d: %+v", i, n)
		}
		if ttl := n.Headers.Get("X-WNS-TTL"); ttl != "3600" && ttl != "3599" {
			t.Errorf("case %d: X-WNS-TTL %q", i, ttl)
		}
		for k, v := range c.headers {
			if got := n.Headers.Get(k); !strings.EqualFold(got, v) {
				t.Errorf("case %d: %s = %q, want %q", i, k, got, v)
			}
		}
	}
}

func TestWNSTokenCachedAndRefreshed(t *testing.T) {
	w, fake := newWNS(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := w.Send(ctx, push.Delivery{ID: "w", Channel: fake.Channel("d"), Payload: []byte(toast)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := fake.TokenCalls(); n != 1 {
		t.Fatalf("%d tokens for 20 sends", n)
	}
	fake.ExpireTokens()
	if err := w.Send(ctx, push.Delivery{ID: "w", Channel: fake.Channel("d"), Payload: []byte(toast)}); err != nil {
		t.Fatal(err)
	}
	if n := fake.TokenCalls(); n != 2 {
		t.Errorf("%d tokens, want 2 (refreshed on 401)", n)
	}
	if fake.Requests() != 22 {
		t.Errorf("%d requests, want 22", fake.Requests())
	}
}

func TestWNSErrors(t *testing.T) {
	w, fake := newWNS(t)
	ctx := context.Background()
	d := push.Delivery{ID: "x", Channel: fake.Channel("d"), Payload: []byte(toast)}
	cases := []struct {
		fail         pushfake.Failure
		retryable    bool
		unregistered bool
	}{
		{pushfake.Failure{Status: 406, Reason: "Throttle limit exceeded"}, true, false},
		{pushfake.Failure{Status: 429, RetryAfter: 9 * time.Second}, true, false},
		{pushfake.Failure{Status: 500}, true, false},
		{pushfake.Failure{Status: 503, RetryAfter: time.Minute}, true, false},
		{pushfake.Failure{Status: 400, Reason: "Invalid header"}, false, false},
		{pushfake.Failure{Status: 403}, false, false},
		{pushfake.Failure{Status: 413}, false, false},
	}
	for _, c := range cases {
		fake.FailNext(1, c.fail)
		de := deliveryError(t, w.Send(ctx, d))
		wantReason := c.fail.Reason
		if wantReason == "" {
			wantReason = http.StatusText(c.fail.Status)
		}
		if de.Platform != push.WNS || de.Status != c.fail.Status || de.Reason != wantReason || de.Retryable != c.retryable ||
			de.Unregistered != c.unregistered || de.RetryAfter != c.fail.RetryAfter {
			t.Errorf("%+v: got %+v", c.fail, de)
		}
	}
	fake.Expire("old")
	fake.NotFound("bogus")
	for _, ch := range []string{"old", "bogus"} {
		de := deliveryError(t, w.Send(ctx, push.Delivery{ID: "x", Channel: fake.Channel(ch), Payload: []byte(toast)}))
		if !de.Unregistered || de.Retryable {
			t.Errorf("%s: %+v", ch, de)
		}
	}
	// Wrong credentials: the token endpoint refuses them; kept for the operator.
	cfg := fake.Config()
	cfg.ClientSecret = "wrong-secret"
	bad, err := platform.NewWNS(cfg, fake.Options())
	if err != nil {
		t.Fatal(err)
	}
	de := deliveryError(t, bad.Send(ctx, d))
	if !de.Retryable || !strings.Contains(de.Error(), "invalid_client") || strings.Contains(de.Error(), "wrong-secret") {
		t.Errorf("wrong secret: %v", de)
	}
	if len(fake.Received()) != 0 {
		t.Errorf("accepted %d", len(fake.Received()))
	}
}

func TestWNSValidation(t *testing.T) {
	w, fake := newWNS(t)
	big := `<toast>` + strings.Repeat("x", platform.WNSMaxPayload-len(`<toast></toast>`)) + `</toast>`
	if err := w.ValidatePayload([]byte(big), nil); err != nil {
		t.Errorf("5000 bytes: %v", err)
	}
	bad := []struct {
		payload string
		headers map[string]string
		want    string
	}{
		{strings.Replace(big, "x", "xx", 1), nil, "limit of 5000"},
		{`hello`, nil, "X-WNS-Type is missing"},
		{``, map[string]string{"X-WNS-Type": "wns/raw"}, "empty"},
		{toast, map[string]string{"X-WNS-Type": "wns/tile"}, "root element must be <tile>"},
		{`<toast>`, map[string]string{"X-WNS-Type": "wns/toast"}, "must be XML"},
		{`<!DOCTYPE toast [<!ENTITY x "y">]><toast/>`, map[string]string{"X-WNS-Type": "wns/toast"}, "directives"},
		{`<toast/><toast/>`, nil, "X-WNS-Type is missing"},
		{toast, map[string]string{"X-WNS-Type": "wns/notification"}, "X-WNS-Type must be"},
		{toast, map[string]string{"X-WNS-Cache-Policy": "sometimes"}, "cache"},
		{toast, map[string]string{"X-WNS-Tag": strings.Repeat("t", 17)}, "1 to 16"},
		{toast, map[string]string{"X-WNS-TTL": "-5"}, "whole seconds"},
		{toast, map[string]string{"apns-priority": "10"}, "unsupported header"},
	}
	for _, b := range bad {
		err := w.ValidatePayload([]byte(b.payload), b.headers)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%.40s %v: error %v, want %q", b.payload, b.headers, err, b.want)
		}
		de := deliveryError(t, w.Send(context.Background(), push.Delivery{ID: "v", Channel: fake.Channel("d"), Payload: []byte(b.payload), Headers: b.headers}))
		if de.Retryable || de.Status != 0 {
			t.Errorf("send %.40s: %+v", b.payload, de)
		}
	}
	for _, ch := range []string{
		"", "http://db5.notify.windows.com/?token=abc", "https://evil.example.com/?token=abc",
		"https://notify.windows.com.evil.com/?token=x", "https://user:pw@db5.notify.windows.com/?token=x",
		"https://db5.notify.windows.com:8443/?token=x", "https://db5.notify.windows.com/#frag", "https://127.0.0.1/?token=x",
		"https://.notify.windows.com/", "https://db5.notify.windows.com/" + strings.Repeat("a", 2048), "//db5.notify.windows.com/",
	} {
		if platform.ValidateWNSChannel(ch) == nil {
			t.Errorf("channel %q accepted", ch)
		}
	}
	for _, ch := range []string{"https://db5.notify.windows.com/?token=AwYAAAB%2bZ", "https://DB5.Notify.Windows.com:443/?token=x"} {
		if err := platform.ValidateWNSChannel(ch); err != nil {
			t.Errorf("channel %q: %v", ch, err)
		}
	}
	// The production allowlist refuses the fake's host; only the test option allows it.
	if err := platform.ValidateWNSChannel(fake.Channel("d")); err == nil {
		t.Error("the fake's channel passed the production allowlist")
	}
	if err := w.ValidateChannel(fake.Channel("d")); err != nil {
		t.Error(err)
	}
	de := deliveryError(t, w.Send(context.Background(), push.Delivery{ID: "v", Channel: "https://evil.example.com/x", Payload: []byte(toast)}))
	if de.Retryable || de.Reason != "InvalidChannel" {
		t.Errorf("send to a foreign host: %+v", de)
	}
	if fake.Requests() != 0 {
		t.Errorf("%d requests reached WNS", fake.Requests())
	}
	if _, err := platform.NewWNS(platform.WNSConfig{PackageSID: "s-1-15", ClientSecret: "x"}, platform.Options{}); err == nil {
		t.Error("a package SID without ms-app:// was accepted")
	}
}
