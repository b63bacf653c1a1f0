package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/push"
	"github.com/gatehouse/gatehouse/internal/push/platform"
	"github.com/gatehouse/gatehouse/internal/push/pushfake"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const fcmToken = "dGVzdC10b2tlbi0x:APA91bHPRgkF3JUikC4ENAHEeMrd41Zxv3hVZjC9KtT8OvPVGJ-hQMRKRrZuJAEcl7B338qju59zJMjw2DELjzEvxwYv7hH5Ynpc1ODQ0aT4U4OFEeco8ohsN5PjL1iC2dNtk2BAokeMCg2ZXKqpc8FXKmhX94kIxQ"

// TestEveryPlatformThroughTheOutbox registers a device on each platform, sends one template send to
// all of them through the outbox and the real platforms to their fakes (the APNs fake throttling
// once with Retry-After, FCM down twice), then lets the services report the devices gone.
func TestEveryPlatformThroughTheOutbox(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := context.Background()
	apnsFake := pushfake.NewAPNs(t, "com.example.app")
	apns, err := platform.NewAPNs(apnsFake.TokenConfig(), apnsFake.Options())
	if err != nil {
		t.Fatal(err)
	}
	fcmFake := pushfake.NewFCM(t, "gatehouse-test")
	fcm, err := platform.NewFCM(platform.FCMConfig{CredentialsJSON: fcmFake.ServiceAccountJSON()}, fcmFake.Options())
	if err != nil {
		t.Fatal(err)
	}
	wnsFake := pushfake.NewWNS(t)
	wns, err := platform.NewWNS(wnsFake.Config(), wnsFake.Options())
	if err != nil {
		t.Fatal(err)
	}
	webFake := pushfake.NewWebPush(t)
	pub, priv, err := platform.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	web, err := platform.NewWebPush(platform.WebPushConfig{VAPIDPrivateKey: priv, VAPIDPublicKey: pub, Subscriber: "mailto:ops@example.com",
		EndpointHosts: []string{webFake.Host()}}, webFake.Options())
	if err != nil {
		t.Fatal(err)
	}
	svc := push.New(push.Options{Store: push.NewStore(db), Platforms: []push.Platform{apns, fcm, wns, web},
		Config: push.Config{Poll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond}})

	apnsDev := apnsToken(7)
	installs := map[string]push.Installation{
		"i-apns": {Platform: "apns", PushChannel: apnsDev, Templates: map[string]push.InstallationTemplate{"t": {Body: `{"aps":{"alert":"$(msg)"}}`}}},
		"i-fcm":  {Platform: "fcm", PushChannel: fcmToken, Templates: map[string]push.InstallationTemplate{"t": {Body: `{"data":{"message":"$(msg)"}}`}}},
		"i-wns": {Platform: "wns", PushChannel: wnsFake.Channel("w1"), Templates: map[string]push.InstallationTemplate{"t": {
			Body:    `<toast><visual><binding template="ToastText01"><text id="1">$(msg)</text></binding></visual></toast>`,
			Headers: map[string]string{"X-WNS-Type": "wns/toast"}}}},
		"i-web": {Platform: "webpush", PushChannel: webFake.Subscribe("b1", pub), Templates: map[string]push.InstallationTemplate{"t": {Body: `{"title":"$(msg)"}`}}},
	}
	for id, in := range installs {
		in.Tags = []string{"all"}
		if err := svc.PutInstallation(ctx, push.Caller{}, id, in); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	// Channels each platform refuses: 400 at registration.
	for _, bad := range []push.Installation{
		{Platform: "apns", PushChannel: "not-hex"},
		{Platform: "fcm", PushChannel: "short"},
		{Platform: "wns", PushChannel: "https://evil.example.com/?token=x"},
		{Platform: "webpush", PushChannel: `{"endpoint":"https://evil.example.com/x","keys":{"p256dh":"AA","auth":"AA"}}`},
	} {
		var ie *push.InputError
		if err := svc.PutInstallation(ctx, push.Caller{}, "bad", bad); !errors.As(err, &ie) {
			t.Errorf("%s channel %q: %v", bad.Platform, bad.PushChannel, err)
		}
	}
	apnsFake.FailNext(1, pushfake.Failure{Status: 429, Reason: "TooManyRequests", RetryAfter: time.Second})
	fcmFake.FailNext(2, pushfake.Failure{Status: 503, Reason: "UNAVAILABLE"})
	start := time.Now()
	res, err := push.Scripts{S: svc}.SendTemplate(ctx, "all", map[string]string{"msg": `Tom & "Jerry"`})
	if err != nil || res != 4 {
		t.Fatalf("send: %d %v", res, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = svc.Run(rctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	a, err := apnsFake.Wait(wctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 900*time.Millisecond {
		t.Errorf("APNs delivered %s after a 429 with Retry-After: 1", time.Since(start))
	}
	if string(a[0].Payload) != `{"aps":{"alert":"Tom \u0026 \"Jerry\""}}` || a[0].Token != apnsDev {
		t.Errorf("apns got %s for %s", a[0].Payload, a[0].Token)
	}
	f, err := fcmFake.Wait(wctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f[0].Data["message"] != `Tom & "Jerry"` || f[0].Token != fcmToken {
		t.Errorf("fcm got %+v", f[0])
	}
	w, err := wnsFake.Wait(wctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(w[0].Payload), `<text id="1">Tom &amp; &quot;Jerry&quot;</text>`) || w[0].Type != "wns/toast" {
		t.Errorf("wns got %s (%s)", w[0].Payload, w[0].Type)
	}
	b, err := webFake.Wait(wctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	if json.Unmarshal(b[0].Plaintext, &body); body["title"] != `Tom & "Jerry"` {
		t.Errorf("webpush got %s", b[0].Plaintext)
	}

	// The services say the devices are gone: their installations are removed.
	apnsFake.Unregister(apnsDev, time.Now())
	fcmFake.Unregister(fcmToken)
	wnsFake.Expire("w1")
	webFake.Unsubscribe("b1")
	if res, err := (push.Scripts{S: svc}).SendTemplate(ctx, "all", map[string]string{"msg": "again"}); err != nil || res != 4 {
		t.Fatalf("second send: %d %v", res, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for id := range installs {
		for {
			_, err := svc.Store().Installation(ctx, id)
			if errors.Is(err, push.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is still registered after its service said it was gone (%v)", id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
