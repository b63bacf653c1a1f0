package platform

import (
	"fmt"
	"io"
	"os"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/push"
)

// Overrides point the platforms FromConfig builds somewhere else than the real services: one
// Options per platform (endpoint, token URL, trust, clock). For tests only.
type Overrides struct {
	APNs, FCM, WNS, WebPush Options
	// WNSChannelHosts replaces WNSChannelHosts.
	WNSChannelHosts []string
}

// FromConfig builds the platforms whose credentials are configured, keyed by name (push.APNs, …).
// Key files are read here; an unreadable or invalid credential is an error naming its setting, and
// never shows the credential.
func FromConfig(c config.PushProviders, ov Overrides) (map[string]push.Platform, error) {
	out := map[string]push.Platform{}
	opts := func(o Options) Options {
		if o.Timeout == 0 {
			o.Timeout = c.Timeout
		}
		return o
	}
	if c.APNsConfigured() {
		cfg := APNsConfig{KeyID: c.APNsKeyID, TeamID: c.APNsTeamID, Topic: c.APNsTopic, Production: c.APNsEnvironment == "production"}
		if c.APNsKey != "" || c.APNsKeyFile != "" {
			key, err := valueOrFile([]byte(c.APNsKey), c.APNsKeyFile, "push.apns.key_file")
			if err != nil {
				return nil, err
			}
			cfg.AuthKey = key
		} else {
			data, err := valueOrFile(nil, c.APNsCertFile, "push.apns.certificate_file")
			if err != nil {
				return nil, err
			}
			var keyPEM []byte
			if c.APNsCertKey != "" {
				if keyPEM, err = valueOrFile(nil, c.APNsCertKey, "push.apns.certificate_key_file"); err != nil {
					return nil, err
				}
			}
			if cfg.Certificate, err = LoadAPNsCertificate(data, keyPEM, c.APNsCertPassword); err != nil {
				return nil, fmt.Errorf("push.apns.certificate_file: %w", err)
			}
		}
		a, err := NewAPNs(cfg, opts(ov.APNs))
		if err != nil {
			return nil, fmt.Errorf("push.apns: %w", err)
		}
		out[push.APNs] = a
	}
	if c.FCMConfigured() {
		creds, err := valueOrFile([]byte(c.FCMCredentials), c.FCMCredsFile, "push.fcm.credentials_file")
		if err != nil {
			return nil, err
		}
		f, err := NewFCM(FCMConfig{CredentialsJSON: creds, ProjectID: c.FCMProjectID}, opts(ov.FCM))
		if err != nil {
			return nil, fmt.Errorf("push.fcm: %w", err)
		}
		out[push.FCM] = f
	}
	if c.WNSConfigured() {
		w, err := NewWNS(WNSConfig{PackageSID: c.WNSPackageSID, ClientSecret: c.WNSSecret, ChannelHosts: ov.WNSChannelHosts}, opts(ov.WNS))
		if err != nil {
			return nil, fmt.Errorf("push.wns: %w", err)
		}
		out[push.WNS] = w
	}
	if c.WebPushConfigured() {
		w, err := NewWebPush(WebPushConfig{VAPIDPrivateKey: c.VAPIDPrivateKey, VAPIDPublicKey: c.VAPIDPublicKey,
			Subscriber: c.VAPIDSubscriber, EndpointHosts: c.WebPushEndpointHosts}, opts(ov.WebPush))
		if err != nil {
			return nil, fmt.Errorf("push.webpush: %w", err)
		}
		out[push.WebPush] = w
	}
	return out, nil
}

// maxCredentialFile bounds a key, certificate or service-account file.
const maxCredentialFile = 1 << 20

func valueOrFile(value []byte, path, setting string) ([]byte, error) {
	if len(value) > 0 {
		return value, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	if len(data) > maxCredentialFile {
		return nil, fmt.Errorf("%s: %s is larger than 1 MiB", setting, path)
	}
	return data, nil
}
