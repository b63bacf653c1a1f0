package config

import (
	"net/url"
	"os"
	"strings"
	"time"
)

// PushProviders holds the push services' credentials (package push/platform). Secrets may be given
// as values or as files; values are never printed (kCredential).
type PushProviders struct {
	// APNs: a token key (.p8, key id, team id) or a client certificate (.p12 or PEM).
	APNsKey, APNsKeyFile         string
	APNsKeyID, APNsTeamID        string
	APNsTopic                    string
	APNsCertFile, APNsCertKey    string
	APNsCertPassword             string
	APNsEnvironment              string // "production" or "sandbox" after validation
	FCMCredentials, FCMCredsFile string
	FCMProjectID                 string
	WNSPackageSID, WNSSecret     string
	VAPIDPrivateKey              string
	VAPIDPublicKey               string
	VAPIDSubscriber              string
	WebPushEndpointHosts         []string
	// Timeout bounds one call to a push service.
	Timeout time.Duration
}

// APNsConfigured reports whether any APNs credential is set.
func (p PushProviders) APNsConfigured() bool {
	return p.APNsKey != "" || p.APNsKeyFile != "" || p.APNsCertFile != ""
}

// FCMConfigured reports whether an FCM service account is set.
func (p PushProviders) FCMConfigured() bool { return p.FCMCredentials != "" || p.FCMCredsFile != "" }

// WNSConfigured reports whether WNS credentials are set (after the Microsoft account fallback).
func (p PushProviders) WNSConfigured() bool { return p.WNSPackageSID != "" && p.WNSSecret != "" }

// WebPushConfigured reports whether a VAPID key is set.
func (p PushProviders) WebPushConfigured() bool { return p.VAPIDPrivateKey != "" }

func pushProviderSettings() []setting {
	return []setting{
		{"push.apns.key_file", []string{"GATEHOUSE_APNS_KEY_FILE"}, "", "", kString, "APNs token authentication: the .p8 key file from the Apple developer account (with push.apns.key_id, push.apns.team_id, push.apns.topic)", func(c *Config) any { return &c.PushProviders.APNsKeyFile }},
		{"push.apns.key", []string{"GATEHOUSE_APNS_KEY"}, "", "", kCredential, "the .p8 key's PEM text, instead of push.apns.key_file", func(c *Config) any { return &c.PushProviders.APNsKey }},
		{"push.apns.key_id", []string{"GATEHOUSE_APNS_KEY_ID"}, "", "", kString, "the APNs key's 10-character id (the provider token's kid)", func(c *Config) any { return &c.PushProviders.APNsKeyID }},
		{"push.apns.team_id", []string{"GATEHOUSE_APNS_TEAM_ID"}, "", "", kString, "the Apple developer team id (the provider token's iss)", func(c *Config) any { return &c.PushProviders.APNsTeamID }},
		{"push.apns.topic", []string{"GATEHOUSE_APNS_TOPIC"}, "", "", kString, "the app's bundle id, sent as apns-topic (with .voip and the other push types' suffixes); required with a token key", func(c *Config) any { return &c.PushProviders.APNsTopic }},
		{"push.apns.certificate_file", []string{"GATEHOUSE_APNS_CERTIFICATE_FILE"}, "", "", kString, "APNs certificate authentication instead of a token key: the push certificate as .p12 (the original's apnscertificate.p12) or PEM with its key", func(c *Config) any { return &c.PushProviders.APNsCertFile }},
		{"push.apns.certificate_key_file", []string{"GATEHOUSE_APNS_CERTIFICATE_KEY_FILE"}, "", "", kString, "PEM private key of a PEM push.apns.certificate_file, when not in the same file", func(c *Config) any { return &c.PushProviders.APNsCertKey }},
		{"push.apns.certificate_password", []string{"GATEHOUSE_APNS_CERTIFICATE_PASSWORD", "MS_ApnsCertificatePassword"}, "", "", kCredential, "password of the .p12 certificate", func(c *Config) any { return &c.PushProviders.APNsCertPassword }},
		{"push.apns.environment", []string{"GATEHOUSE_APNS_ENVIRONMENT", "MS_ApnsCertificateMode"}, "", "", kString, "production (api.push.apple.com) or sandbox (api.sandbox.push.apple.com, development builds); required with APNs credentials; the original's Prod and Dev are accepted", func(c *Config) any { return &c.PushProviders.APNsEnvironment }},
		{"push.fcm.credentials_file", []string{"GATEHOUSE_FCM_CREDENTIALS_FILE"}, "", "", kString, "FCM HTTP v1: the Firebase project's service account key file (JSON)", func(c *Config) any { return &c.PushProviders.FCMCredsFile }},
		{"push.fcm.credentials", []string{"GATEHOUSE_FCM_CREDENTIALS"}, "", "", kCredential, "the service account key's JSON text, instead of push.fcm.credentials_file", func(c *Config) any { return &c.PushProviders.FCMCredentials }},
		{"push.fcm.project_id", []string{"GATEHOUSE_FCM_PROJECT_ID"}, "", "", kString, "Firebase project id (default: the key file's project_id)", func(c *Config) any { return &c.PushProviders.FCMProjectID }},
		{"push.wns.package_sid", []string{"GATEHOUSE_WNS_PACKAGE_SID"}, "", "", kString, "WNS: the app's package SID (ms-app://…); default providers.microsoft.package_sid, as the original", func(c *Config) any { return &c.PushProviders.WNSPackageSID }},
		{"push.wns.client_secret", []string{"GATEHOUSE_WNS_CLIENT_SECRET"}, "", "", kCredential, "WNS client secret; default providers.microsoft.client_secret, as the original", func(c *Config) any { return &c.PushProviders.WNSSecret }},
		{"push.webpush.vapid_private_key", []string{"GATEHOUSE_VAPID_PRIVATE_KEY"}, "", "", kCredential, "Web Push: the VAPID private key (base64url P-256 scalar)", func(c *Config) any { return &c.PushProviders.VAPIDPrivateKey }},
		{"push.webpush.vapid_public_key", []string{"GATEHOUSE_VAPID_PUBLIC_KEY"}, "", "", kString, "the VAPID public key (base64url; derived from the private key when empty, checked against it when set); browsers subscribe with it", func(c *Config) any { return &c.PushProviders.VAPIDPublicKey }},
		{"push.webpush.subscriber", []string{"GATEHOUSE_VAPID_SUBSCRIBER"}, "", "", kString, "contact in VAPID tokens: mailto:ops@example.com or an https URL; required with a VAPID key", func(c *Config) any { return &c.PushProviders.VAPIDSubscriber }},
		{"push.webpush.endpoint_hosts", []string{"GATEHOUSE_WEBPUSH_ENDPOINT_HOSTS"}, "", "", kCSV, "hosts subscription endpoints may point at: names, *.suffix patterns or host:port (empty: the browsers' push services fcm.googleapis.com, android.googleapis.com, *.push.services.mozilla.com, *.push.apple.com, *.notify.windows.com)", func(c *Config) any { return &c.PushProviders.WebPushEndpointHosts }},
		{"push.provider_timeout", []string{"GATEHOUSE_PUSH_PROVIDER_TIMEOUT"}, "", "30s", kDuration, "time limit of one call to a push service or its token endpoint", func(c *Config) any { return &c.PushProviders.Timeout }},
	}
}

func (c *Config) validatePushProviders() error {
	p := &c.PushProviders
	if p.Timeout < time.Second {
		return &Error{Setting: "push.provider_timeout", Value: p.Timeout.String(), Reason: "must be at least 1s"}
	}
	for _, f := range []struct{ name, path string }{{"push.apns.key_file", p.APNsKeyFile}, {"push.apns.certificate_file", p.APNsCertFile},
		{"push.apns.certificate_key_file", p.APNsCertKey}, {"push.fcm.credentials_file", p.FCMCredsFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return &Error{Setting: f.name, Value: f.path, Reason: "cannot be read: " + err.Error()}
		}
	}
	token := p.APNsKey != "" || p.APNsKeyFile != ""
	switch {
	case p.APNsKey != "" && p.APNsKeyFile != "":
		return &Error{Setting: "push.apns.key", Reason: "set either push.apns.key or push.apns.key_file, not both"}
	case token && p.APNsCertFile != "":
		return &Error{Setting: "push.apns.certificate_file", Reason: "use either a token key or a certificate for APNs, not both"}
	case token && (p.APNsKeyID == "" || p.APNsTeamID == "" || p.APNsTopic == ""):
		return &Error{Setting: "push.apns.key_id", Reason: "an APNs token key needs push.apns.key_id, push.apns.team_id and push.apns.topic"}
	case p.APNsCertKey != "" && p.APNsCertFile == "":
		return &Error{Setting: "push.apns.certificate_key_file", Reason: "goes with push.apns.certificate_file"}
	}
	if p.APNsConfigured() || p.APNsEnvironment != "" {
		switch strings.ToLower(p.APNsEnvironment) {
		case "production", "prod":
			p.APNsEnvironment = "production"
		case "sandbox", "development", "dev":
			p.APNsEnvironment = "sandbox"
		default:
			return &Error{Setting: "push.apns.environment", Value: p.APNsEnvironment, Reason: "must be production or sandbox (tokens of development builds are sandbox tokens)"}
		}
	}
	if p.FCMCredentials != "" && p.FCMCredsFile != "" {
		return &Error{Setting: "push.fcm.credentials", Reason: "set either push.fcm.credentials or push.fcm.credentials_file, not both"}
	}
	// WNS used the Microsoft account's package SID and secret in the original service.
	if p.WNSPackageSID == "" && p.WNSSecret == "" {
		p.WNSPackageSID, p.WNSSecret = c.Providers.MicrosoftPackageSID, c.Providers.MicrosoftClientSecret
		if p.WNSPackageSID == "" || p.WNSSecret == "" {
			p.WNSPackageSID, p.WNSSecret = "", ""
		}
	} else if p.WNSPackageSID == "" || p.WNSSecret == "" {
		return &Error{Setting: "push.wns.package_sid", Reason: "push.wns.package_sid and push.wns.client_secret go together"}
	}
	if p.WNSPackageSID != "" && !strings.HasPrefix(p.WNSPackageSID, "ms-app://") {
		return &Error{Setting: "push.wns.package_sid", Value: p.WNSPackageSID, Reason: "must start with ms-app://"}
	}
	if p.VAPIDPrivateKey != "" || p.VAPIDPublicKey != "" {
		if p.VAPIDPrivateKey == "" {
			return &Error{Setting: "push.webpush.vapid_private_key", Reason: "needed with push.webpush.vapid_public_key"}
		}
		sub := p.VAPIDSubscriber
		u, err := url.Parse(sub)
		if err != nil || !(u.Scheme == "mailto" && strings.Contains(sub, "@") || u.Scheme == "https" && u.Host != "") {
			return &Error{Setting: "push.webpush.subscriber", Value: sub, Reason: "must be mailto:address or an https URL (push services contact it)"}
		}
	}
	for _, h := range p.WebPushEndpointHosts {
		if strings.ContainsAny(h, "/@ ") || h == "*" || strings.HasPrefix(h, "*") && !strings.HasPrefix(h, "*.") {
			return &Error{Setting: "push.webpush.endpoint_hosts", Value: h, Reason: "entries must be host names, *.suffix patterns or host:port"}
		}
	}
	return nil
}
