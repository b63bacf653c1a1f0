package platform_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/push"
	"github.com/gatehouse/gatehouse/internal/push/platform"
	"github.com/gatehouse/gatehouse/internal/push/pushfake"
)

func loadConfig(t *testing.T, env map[string]string) config.PushProviders {
	t.Helper()
	c, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return c.PushProviders
}

// TestFromConfig builds all four platforms from settings (key files and values) and delivers
// through each to its fake.
func TestFromConfig(t *testing.T) {
	apns := pushfake.NewAPNs(t, "com.example.app")
	fcm := pushfake.NewFCM(t, "gatehouse-test")
	wns := pushfake.NewWNS(t)
	wp := pushfake.NewWebPush(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub, priv, err := platform.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	c := loadConfig(t, map[string]string{
		"GATEHOUSE_APNS_KEY_FILE": write("AuthKey.p8", apns.KeyPEM), "GATEHOUSE_APNS_KEY_ID": apns.KeyID, "GATEHOUSE_APNS_TEAM_ID": apns.TeamID,
		"GATEHOUSE_APNS_TOPIC": apns.Topic, "GATEHOUSE_APNS_ENVIRONMENT": "sandbox",
		"GATEHOUSE_FCM_CREDENTIALS_FILE": write("sa.json", fcm.ServiceAccountJSON()),
		"MS_MicrosoftPackageSID":         wns.PackageSID, "MS_MicrosoftClientSecret": wns.ClientSecret,
		"GATEHOUSE_VAPID_PRIVATE_KEY": priv, "GATEHOUSE_VAPID_SUBSCRIBER": "https://example.com/push-contact",
		"GATEHOUSE_WEBPUSH_ENDPOINT_HOSTS": wp.Host(),
	})
	ps, err := platform.FromConfig(c, platform.Overrides{APNs: apns.Options(), FCM: fcm.Options(), WNS: wns.Options(), WebPush: wp.Options(),
		WNSChannelHosts: wns.Config().ChannelHosts})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 4 {
		t.Fatalf("built %d platforms", len(ps))
	}
	if got := ps[push.WebPush].(*platform.WebPush).PublicKey(); got != pub {
		t.Errorf("VAPID public key %q, want %q", got, pub)
	}
	ctx := context.Background()
	sends := map[string]push.Delivery{
		push.APNs:    {ID: "1", Channel: apnsToken, Payload: []byte(`{"aps":{"alert":"a"}}`)},
		push.FCM:     {ID: "2", Channel: fcmToken, Payload: []byte(`{"data":{"m":"f"}}`)},
		push.WNS:     {ID: "3", Channel: wns.Channel("w"), Payload: []byte(toast)},
		push.WebPush: {ID: "4", Channel: wp.Subscribe("s", pub), Payload: []byte("wp")},
	}
	for name, d := range sends {
		p := ps[name]
		if p.Name() != name {
			t.Errorf("%s is named %s", name, p.Name())
		}
		if err := p.ValidateChannel(d.Channel); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := p.ValidatePayload(d.Payload, d.Headers); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := p.Send(ctx, d); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(apns.Received()) != 1 || len(fcm.Received()) != 1 || len(wns.Received()) != 1 || len(wp.Received()) != 1 {
		t.Errorf("received %d %d %d %d", len(apns.Received()), len(fcm.Received()), len(wns.Received()), len(wp.Received()))
	}
	if string(wp.Received()[0].Plaintext) != "wp" || fcm.Received()[0].Data["m"] != "f" {
		t.Error("payloads changed on the way")
	}

	// The certificate form from a .p12-less PEM file, the key in a file of its own.
	cert := apns.ClientCertificate()
	certPEM, keyPEM := pemPair(t, cert)
	c = loadConfig(t, map[string]string{"GATEHOUSE_APNS_CERTIFICATE_FILE": write("push.pem", certPEM),
		"GATEHOUSE_APNS_CERTIFICATE_KEY_FILE": write("push.key", keyPEM), "MS_ApnsCertificateMode": "Dev"})
	ps, err = platform.FromConfig(c, platform.Overrides{APNs: apns.Options()})
	if err != nil {
		t.Fatal(err)
	}
	if err := ps[push.APNs].Send(ctx, sends[push.APNs]); err != nil {
		t.Fatal(err)
	}
	if got := apns.Received(); got[1].Auth != "certificate" {
		t.Errorf("auth %q", got[1].Auth)
	}
}

func TestFromConfigErrors(t *testing.T) {
	ps, err := platform.FromConfig(loadConfig(t, nil), platform.Overrides{})
	if err != nil || len(ps) != 0 {
		t.Fatalf("nothing configured: %v %v", ps, err)
	}
	dir := t.TempDir()
	secret := "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
	bad := filepath.Join(dir, "bad.p8")
	if err := os.WriteFile(bad, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]map[string]string{
		"push.apns": {"GATEHOUSE_APNS_KEY_FILE": bad, "GATEHOUSE_APNS_KEY_ID": "ABC1234567", "GATEHOUSE_APNS_TEAM_ID": "TEAM123456",
			"GATEHOUSE_APNS_TOPIC": "com.example.app", "GATEHOUSE_APNS_ENVIRONMENT": "production"},
		"push.apns.certificate_file": {"GATEHOUSE_APNS_CERTIFICATE_FILE": bad, "GATEHOUSE_APNS_CERTIFICATE_PASSWORD": "pw", "GATEHOUSE_APNS_ENVIRONMENT": "production"},
		"push.fcm":                   {"GATEHOUSE_FCM_CREDENTIALS": `{"type":"service_account","project_id":"p","private_key":"` + strings.ReplaceAll(secret, "\n", `\n`) + `"}`},
		"push.webpush":               {"GATEHOUSE_VAPID_PRIVATE_KEY": "c2VjcmV0LWtleS1tYXRlcmlhbA", "GATEHOUSE_VAPID_SUBSCRIBER": "mailto:a@b.c"},
	} {
		_, err := platform.FromConfig(loadConfig(t, env), platform.Overrides{})
		if err == nil || !strings.HasPrefix(err.Error(), name) {
			t.Errorf("%s: error %v", name, err)
			continue
		}
		if strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("%s: the error shows the credential: %v", name, err)
		}
	}
}
