package platform

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/gatehouse/gatehouse/internal/jsonx"
	"github.com/gatehouse/gatehouse/internal/push"
)

// WebPushMaxPayload is the largest plaintext one aes128gcm record of 4096 bytes carries (RFC 8291):
// 4096 minus the 86-byte header (salt, record size, sender key), the 16-byte tag and the padding
// delimiter. Push services refuse bodies over 4096 bytes.
const WebPushMaxPayload = 4096 - 86 - 16 - 1

// webPushDefaultTTL is the TTL of a notification with neither a TTL header nor an expiry: 4 weeks.
const webPushDefaultTTL = 2419200

// WebPushEndpointHosts are the browsers' push services a subscription endpoint may point at.
var WebPushEndpointHosts = []string{
	"fcm.googleapis.com", "android.googleapis.com", // Chrome, Edge (Chromium), Opera, Samsung
	"*.push.services.mozilla.com", // Firefox
	"*.push.apple.com",            // Safari
	"*.notify.windows.com",        // Edge (legacy)
}

// WebPushConfig holds the VAPID key pair (RFC 8292) and the contact put in its tokens.
type WebPushConfig struct {
	// VAPIDPrivateKey is the P-256 private scalar, base64url (as GenerateVAPIDKeys makes it).
	VAPIDPrivateKey string
	// VAPIDPublicKey is the uncompressed public point, base64url; derived from the private key when
	// empty, and checked against it when given. Browsers subscribe with it (applicationServerKey).
	VAPIDPublicKey string
	// Subscriber is the VAPID "sub": mailto:ops@example.com or an https URL.
	Subscriber string
	// EndpointHosts replaces WebPushEndpointHosts: host patterns ("*.example.com", "host:port").
	EndpointHosts []string
}

// WebPush delivers to browsers' push services (RFC 8030) with VAPID authentication (RFC 8292) and
// aes128gcm payload encryption (RFC 8291), through github.com/SherClockHolmes/webpush-go.
//
// A channel is the subscription's JSON ({"endpoint": …, "keys": {"p256dh": …, "auth": …}}, as
// PushSubscription.toJSON() gives it). Headers: TTL (seconds; default from Delivery.Expiry, else
// four weeks), Urgency (very-low, low, normal, high), Topic (≤ 32 URL-safe base64 characters).
type WebPush struct {
	o          Options
	cfg        WebPushConfig
	hosts      []string
	subscriber string
	client     *http.Client
}

var _ push.Platform = (*WebPush)(nil)

// GenerateVAPIDKeys makes a VAPID key pair, both base64url without padding.
func GenerateVAPIDKeys() (publicKey, privateKey string, err error) {
	privateKey, publicKey, err = webpush.GenerateVAPIDKeys()
	return publicKey, privateKey, err
}

// NewWebPush checks the VAPID keys and the subscriber and builds the platform.
func NewWebPush(cfg WebPushConfig, o Options) (*WebPush, error) {
	if cfg.VAPIDPrivateKey == "" {
		return nil, fmt.Errorf("webpush: %w: no VAPID private key", errNotConfigured)
	}
	raw, err := decodeB64URL(cfg.VAPIDPrivateKey)
	if err != nil || len(raw) != 32 {
		return nil, errors.New("webpush: the VAPID private key must be 32 bytes, base64url")
	}
	priv, err := ecdh.P256().NewPrivateKey(raw)
	if err != nil {
		return nil, errors.New("webpush: the VAPID private key is not a P-256 scalar")
	}
	pub := priv.PublicKey().Bytes()
	if cfg.VAPIDPublicKey != "" {
		given, err := decodeB64URL(cfg.VAPIDPublicKey)
		if err != nil || !bytes.Equal(given, pub) {
			return nil, errors.New("webpush: the VAPID public key does not belong to the private key")
		}
	}
	// Canonical forms for the library: unpadded base64url.
	cfg.VAPIDPublicKey = base64.RawURLEncoding.EncodeToString(pub)
	cfg.VAPIDPrivateKey = base64.RawURLEncoding.EncodeToString(raw)
	w := &WebPush{o: o, cfg: cfg, hosts: WebPushEndpointHosts, client: o.client(nil, false)}
	if len(cfg.EndpointHosts) > 0 {
		w.hosts = cfg.EndpointHosts
	}
	switch {
	case strings.HasPrefix(cfg.Subscriber, "mailto:") && strings.Contains(cfg.Subscriber, "@"):
		// The library adds "mailto:" to whatever is not an https URL.
		w.subscriber = strings.TrimPrefix(cfg.Subscriber, "mailto:")
	case strings.HasPrefix(cfg.Subscriber, "https://"):
		w.subscriber = cfg.Subscriber
	default:
		return nil, errors.New("webpush: the VAPID subscriber must be mailto:address or an https URL")
	}
	return w, nil
}

// PublicKey is the VAPID public key (base64url): browsers subscribe with it as applicationServerKey.
func (w *WebPush) PublicKey() string { return w.cfg.VAPIDPublicKey }

// Name is push.WebPush.
func (w *WebPush) Name() string { return push.WebPush }

// Subscription is a browser's PushSubscription as JSON.
type Subscription struct {
	Endpoint       string   `json:"endpoint"`
	ExpirationTime *float64 `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// maxSubscription bounds a subscription's JSON.
const maxSubscription = 4096

// ParseSubscription reads and checks a subscription: an https endpoint on one of hosts, p256dh an
// uncompressed P-256 point (65 bytes) and auth 16 bytes, both base64url.
func ParseSubscription(channel string, hosts []string) (*Subscription, error) {
	if len(channel) > maxSubscription {
		return nil, fmt.Errorf("webpush: the subscription is longer than %d bytes", maxSubscription)
	}
	var s Subscription
	if err := jsonx.Unmarshal([]byte(channel), &s); err != nil {
		return nil, fmt.Errorf("webpush: the subscription is not JSON of a PushSubscription: %w", err)
	}
	if err := validateChannelURI("webpush", s.Endpoint, hosts); err != nil {
		return nil, err
	}
	p, err := decodeB64URL(s.Keys.P256dh)
	if err != nil || len(p) != 65 {
		return nil, errors.New("webpush: keys.p256dh must be a 65-byte P-256 public key, base64url")
	}
	if _, err := ecdh.P256().NewPublicKey(p); err != nil {
		return nil, errors.New("webpush: keys.p256dh is not a point on P-256")
	}
	if a, err := decodeB64URL(s.Keys.Auth); err != nil || len(a) != 16 {
		return nil, errors.New("webpush: keys.auth must be 16 bytes, base64url")
	}
	return &s, nil
}

// decodeB64URL decodes base64url with or without padding (what browsers and key tools emit).
func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// ValidateChannel checks a subscription's JSON.
func (w *WebPush) ValidateChannel(channel string) error {
	_, err := ParseSubscription(channel, w.hosts)
	return err
}

// ValidateWebPushSubscription is Web Push's channel check with the default hosts, usable without
// keys.
func ValidateWebPushSubscription(channel string) error {
	_, err := ParseSubscription(channel, WebPushEndpointHosts)
	return err
}

type webPushRequest struct {
	ttl     int
	urgency webpush.Urgency
	topic   string
}

// ValidatePayload checks the size and the headers.
func (w *WebPush) ValidatePayload(payload []byte, h map[string]string) error {
	_, err := webPushPrepare(payload, h)
	return err
}

func webPushPrepare(payload []byte, h map[string]string) (webPushRequest, error) {
	r := webPushRequest{ttl: -1}
	hs, err := canonicalHeaders("webpush", h, "ttl", "urgency", "topic")
	if err != nil {
		return r, err
	}
	if len(payload) > WebPushMaxPayload {
		return r, errTooLarge("webpush", len(payload), WebPushMaxPayload)
	}
	if v, ok := hs["ttl"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > webPushDefaultTTL {
			return r, fmt.Errorf("webpush: TTL must be whole seconds from 0 to %d", webPushDefaultTTL)
		}
		r.ttl = n
	}
	if v, ok := hs["urgency"]; ok {
		switch u := webpush.Urgency(v); u {
		case webpush.UrgencyVeryLow, webpush.UrgencyLow, webpush.UrgencyNormal, webpush.UrgencyHigh:
			r.urgency = u
		default:
			return r, errors.New("webpush: Urgency must be very-low, low, normal or high")
		}
	}
	if v, ok := hs["topic"]; ok {
		if v == "" || len(v) > 32 || strings.IndexFunc(v, func(c rune) bool {
			return c > unicode.MaxASCII || !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_')
		}) >= 0 {
			return r, errors.New("webpush: Topic must be 1 to 32 URL-safe base64 characters")
		}
		r.topic = v
	}
	return r, nil
}

// Send encrypts and delivers d.
func (w *WebPush) Send(ctx context.Context, d push.Delivery) error {
	sub, err := ParseSubscription(d.Channel, w.hosts)
	if err != nil {
		return &push.DeliveryError{Platform: push.WebPush, Reason: "InvalidSubscription", Err: err}
	}
	r, err := webPushPrepare(d.Payload, d.Headers)
	if err != nil {
		return &push.DeliveryError{Platform: push.WebPush, Reason: "InvalidPayload", Err: err}
	}
	if r.ttl < 0 {
		r.ttl = webPushDefaultTTL
		if !d.Expiry.IsZero() {
			r.ttl = int(min(max(math.Ceil(d.Expiry.Sub(w.o.now()).Seconds()), 0), webPushDefaultTTL))
		}
	}
	resp, err := webpush.SendNotificationWithContext(ctx, d.Payload, &webpush.Subscription{Endpoint: sub.Endpoint,
		Keys: webpush.Keys{P256dh: sub.Keys.P256dh, Auth: sub.Keys.Auth}}, &webpush.Options{
		HTTPClient: w.client, Subscriber: w.subscriber, TTL: r.ttl, Urgency: r.urgency, Topic: r.topic,
		VAPIDPublicKey: w.cfg.VAPIDPublicKey, VAPIDPrivateKey: w.cfg.VAPIDPrivateKey,
	})
	if err != nil {
		return transportError(push.WebPush, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		drain(resp.Body)
		return nil
	}
	body := readBody(resp.Body)
	_ = resp.Body.Close()
	de := &push.DeliveryError{Platform: push.WebPush, Status: resp.StatusCode, Reason: http.StatusText(resp.StatusCode),
		RetryAfter: retryAfter(resp.Header, w.o.now()), Retryable: statusRetryable(resp.StatusCode)}
	if text := printable(body, 200); text != "" {
		de.Err = errors.New(text)
	}
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone: // the subscription expired or was unsubscribed
		de.Unregistered = true
	case http.StatusUnauthorized, http.StatusForbidden:
		de.Retryable = true // VAPID credentials: kept for when the operator has fixed them
	}
	return de
}

// printable is the start of a service's answer with control characters dropped.
func printable(b []byte, n int) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, string(b))
	if len(s) > n {
		s = s[:n]
	}
	return strings.TrimSpace(s)
}

// redactURL removes the path and query of the URL in a transport error: WNS channels, APNs device
// paths and Web Push endpoints carry the device's capability.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return &url.Error{Op: ue.Op, URL: u.Scheme + "://" + u.Host + "/…", Err: ue.Err}
		}
		return &url.Error{Op: ue.Op, URL: "…", Err: ue.Err}
	}
	return err
}
