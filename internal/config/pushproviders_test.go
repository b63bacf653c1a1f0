package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPushProviderSettings(t *testing.T) {
	load := func(env map[string]string) (*Config, error) {
		return Load(nil, func(k string) string { return env[k] })
	}
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := c.PushProviders
	if p.APNsConfigured() || p.FCMConfigured() || p.WNSConfigured() || p.WebPushConfigured() || p.Timeout.String() != "30s" {
		t.Fatalf("defaults: %+v", p)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "AuthKey_ABC1234567.p8")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = load(map[string]string{"GATEHOUSE_APNS_KEY_FILE": keyFile, "GATEHOUSE_APNS_KEY_ID": "ABC1234567", "GATEHOUSE_APNS_TEAM_ID": "TEAM123456",
		"GATEHOUSE_APNS_TOPIC": "com.example.app", "MS_ApnsCertificateMode": "Prod",
		"MS_MicrosoftPackageSID": "ms-app://s-1-15-2-1", "MS_MicrosoftClientSecret": "wns-secret-from-login",
		"GATEHOUSE_VAPID_PRIVATE_KEY": "k", "GATEHOUSE_VAPID_SUBSCRIBER": "mailto:ops@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	p = c.PushProviders
	if !p.APNsConfigured() || p.APNsEnvironment != "production" || p.APNsTopic != "com.example.app" {
		t.Errorf("apns: %+v", p)
	}
	if !p.WNSConfigured() || p.WNSPackageSID != "ms-app://s-1-15-2-1" || p.WNSSecret != "wns-secret-from-login" {
		t.Errorf("wns falls back to the Microsoft account settings: %+v", p)
	}
	if !p.WebPushConfigured() {
		t.Error("web push not configured")
	}
	if c, err = load(map[string]string{"GATEHOUSE_APNS_ENVIRONMENT": "Dev"}); err != nil || c.PushProviders.APNsEnvironment != "sandbox" {
		t.Errorf("Dev: %v %q", err, c.PushProviders.APNsEnvironment)
	}
	for env, name := range map[string]string{
		"GATEHOUSE_APNS_KEY=k": "push.apns.key_id",
		"GATEHOUSE_APNS_KEY=k,GATEHOUSE_APNS_KEY_FILE=" + keyFile:                "push.apns.key",
		"GATEHOUSE_APNS_KEY_FILE=/no/such/AuthKey.p8":                            "push.apns.key_file",
		"GATEHOUSE_APNS_CERTIFICATE_FILE=" + keyFile:                             "push.apns.environment",
		"GATEHOUSE_APNS_ENVIRONMENT=staging":                                     "push.apns.environment",
		"GATEHOUSE_APNS_CERTIFICATE_KEY_FILE=" + keyFile:                         "push.apns.certificate_key_file",
		"GATEHOUSE_FCM_CREDENTIALS={},GATEHOUSE_FCM_CREDENTIALS_FILE=" + keyFile: "push.fcm.credentials",
		"GATEHOUSE_WNS_PACKAGE_SID=ms-app://s-1":                                 "push.wns.package_sid",
		"GATEHOUSE_WNS_PACKAGE_SID=s-1,GATEHOUSE_WNS_CLIENT_SECRET=x":            "push.wns.package_sid",
		"GATEHOUSE_VAPID_PRIVATE_KEY=secretkeyvalue":                             "push.webpush.subscriber",
		"GATEHOUSE_VAPID_PUBLIC_KEY=pub":                                         "push.webpush.vapid_private_key",
		"GATEHOUSE_VAPID_PRIVATE_KEY=k,GATEHOUSE_VAPID_SUBSCRIBER=http://x":      "push.webpush.subscriber",
		"GATEHOUSE_WEBPUSH_ENDPOINT_HOSTS=*":                                     "push.webpush.endpoint_hosts",
		"GATEHOUSE_PUSH_PROVIDER_TIMEOUT=10ms":                                   "push.provider_timeout",
	} {
		m := map[string]string{}
		for _, kv := range strings.Split(env, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		_, err := load(m)
		var ce *Error
		if !errors.As(err, &ce) || ce.Setting != name {
			t.Errorf("%s: got %v, want an error naming %s", env, err, name)
			continue
		}
		if strings.Contains(err.Error(), "secretkeyvalue") {
			t.Errorf("%s: the error shows the secret: %v", env, err)
		}
	}
}
