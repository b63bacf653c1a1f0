package platform

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/gatehouse/gatehouse/internal/jsonx"
	"github.com/gatehouse/gatehouse/internal/push"
)

// APNs endpoints (HTTP/2, port 443).
const (
	APNsProduction = "https://api.push.apple.com"
	APNsSandbox    = "https://api.sandbox.push.apple.com"
)

// APNs payload limits: 4 KiB, 5 KiB for VoIP notifications.
const (
	APNsMaxPayload     = 4096
	APNsMaxVoIPPayload = 5120
)

// APNsTokenMaxAge is how long a provider token is reused. Apple refuses tokens older than an hour
// (403 ExpiredProviderToken) and refreshes more often than every 20 minutes (429
// TooManyProviderTokenUpdates).
const APNsTokenMaxAge = 50 * time.Minute

// APNsConfig holds APNs credentials: a token key (AuthKey, KeyID, TeamID) or a client certificate.
type APNsConfig struct {
	// AuthKey is the .p8 key (PEM, PKCS#8 ECDSA P-256) that signs ES256 provider tokens; KeyID is
	// its 10-character id and TeamID the developer team (the token's iss).
	AuthKey []byte
	KeyID   string
	TeamID  string
	// Certificate authenticates with TLS instead of a token (LoadAPNsCertificate reads .p12/PEM).
	Certificate *tls.Certificate
	// Topic is the app's bundle id, used as apns-topic (with the push type's suffix: .voip,
	// .complication, ...) when a delivery names no topic.
	Topic string
	// Production selects api.push.apple.com, otherwise api.sandbox.push.apple.com.
	Production bool
}

// APNs delivers to Apple Push Notification service over HTTP/2.
//
// Headers: apns-push-type (alert, background, location, voip, complication, fileprovider, mdm,
// liveactivity, pushtotalk, widgets, controls; default alert, or background for a payload whose aps
// only has content-available), apns-priority (10, 5 or 1; default 10, 5 for background),
// apns-expiration (UNIX seconds; default from Delivery.Expiry), apns-collapse-id (≤ 64 bytes),
// apns-topic. apns-id is derived from Delivery.ID.
type APNs struct {
	cfg    APNsConfig
	o      Options
	base   string
	client *http.Client
	key    *ecdsa.PrivateKey // nil with certificate authentication

	mu     sync.Mutex
	token  string
	issued time.Time
}

var _ push.Platform = (*APNs)(nil)

// NewAPNs checks the credentials and builds the platform.
func NewAPNs(cfg APNsConfig, o Options) (*APNs, error) {
	a := &APNs{cfg: cfg, o: o, base: APNsSandbox}
	if cfg.Production {
		a.base = APNsProduction
	}
	if o.Endpoint != "" {
		a.base = strings.TrimSuffix(o.Endpoint, "/")
	}
	switch {
	case len(cfg.AuthKey) > 0 && cfg.Certificate != nil:
		return nil, errors.New("apns: configure a token key or a certificate, not both")
	case len(cfg.AuthKey) > 0:
		key, err := ParseAPNsKey(cfg.AuthKey)
		if err != nil {
			return nil, err
		}
		if !apnsIDRE(cfg.KeyID) || !apnsIDRE(cfg.TeamID) {
			return nil, errors.New("apns: key id and team id must be 10 letters or digits")
		}
		if cfg.Topic == "" {
			return nil, errors.New("apns: token authentication needs the app's bundle id (topic)")
		}
		a.key = key
	case cfg.Certificate != nil:
	default:
		return nil, fmt.Errorf("apns: %w: neither a token key nor a certificate", errNotConfigured)
	}
	if cfg.Topic != "" && !validTopic(cfg.Topic) {
		return nil, fmt.Errorf("apns: invalid topic %q", cfg.Topic)
	}
	a.client = o.client(cfg.Certificate, true)
	return a, nil
}

// ParseAPNsKey reads a .p8 key: PEM "PRIVATE KEY" (PKCS#8) or "EC PRIVATE KEY", curve P-256.
func ParseAPNsKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("apns: the key is not PEM (expected the .p8 file's content)")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("apns: unexpected PEM block %q in the key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("apns: parse key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("apns: the key must be an ECDSA P-256 key")
	}
	return ec, nil
}

// LoadAPNsCertificate reads a client certificate: PKCS#12 (.p12, as exported from Keychain and as the
// original service stored it) with its password, or PEM holding the certificate and its key (keyPEM
// may carry the key separately).
func LoadAPNsCertificate(data, keyPEM []byte, password string) (*tls.Certificate, error) {
	if block, _ := pem.Decode(data); block != nil {
		if len(keyPEM) == 0 {
			keyPEM = data
		}
		c, err := tls.X509KeyPair(data, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("apns: certificate: %w", err)
		}
		return &c, nil
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, fmt.Errorf("apns: certificate (.p12): %w", err)
	}
	c := &tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, ca := range chain {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	return c, nil
}

func apnsIDRE(s string) bool {
	if len(s) != 10 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func validTopic(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Name is push.APNs.
func (a *APNs) Name() string { return push.APNs }

// ValidateChannel checks a device token: hexadecimal, 64 to 200 digits (32 bytes today; Apple
// warns they may grow).
func (a *APNs) ValidateChannel(channel string) error { return ValidateAPNsToken(channel) }

// ValidateAPNsToken is APNs' channel check, usable without credentials.
func ValidateAPNsToken(token string) error {
	if len(token) < 64 || len(token) > 200 || len(token)%2 != 0 {
		return errors.New("apns: a device token is 64 to 200 hexadecimal digits")
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return errors.New("apns: a device token is 64 to 200 hexadecimal digits")
		}
	}
	return nil
}

// apnsPushTypes maps each push type to its topic suffix.
var apnsPushTypes = map[string]string{
	"alert": "", "background": "", "location": ".location-query", "voip": ".voip",
	"complication": ".complication", "fileprovider": ".pushkit.fileprovider", "mdm": "",
	"liveactivity": ".push-type.liveactivity", "pushtotalk": ".voip-ptt", "widgets": ".push-type.widgets",
	"controls": ".push-type.controls",
}

// apnsRequest is a checked delivery's headers.
type apnsRequest struct {
	pushType, priority, expiration, collapseID, topic string
}

// ValidatePayload checks the payload (a JSON object within the limit) and the headers.
func (a *APNs) ValidatePayload(payload []byte, h map[string]string) error {
	_, err := a.prepare(payload, h, time.Time{})
	return err
}

func (a *APNs) prepare(payload []byte, h map[string]string, expiry time.Time) (apnsRequest, error) {
	var r apnsRequest
	hs, err := canonicalHeaders("apns", h, "apns-push-type", "apns-priority", "apns-expiration", "apns-collapse-id", "apns-topic")
	if err != nil {
		return r, err
	}
	v, err := jsonx.Parse(payload)
	if err != nil {
		return r, fmt.Errorf("apns: the payload is not valid JSON: %w", err)
	}
	if v.Kind != jsonx.KindObject {
		return r, errors.New("apns: the payload must be a JSON object")
	}
	r.pushType = hs["apns-push-type"]
	if r.pushType == "" {
		r.pushType = inferAPNsPushType(v)
	}
	suffix, ok := apnsPushTypes[r.pushType]
	if !ok {
		return r, fmt.Errorf("apns: unknown apns-push-type %q", r.pushType)
	}
	limit := APNsMaxPayload
	if r.pushType == "voip" {
		limit = APNsMaxVoIPPayload
	}
	if len(payload) > limit {
		return r, errTooLarge("apns", len(payload), limit)
	}
	r.priority = hs["apns-priority"]
	switch r.priority {
	case "":
		r.priority = "10"
		if r.pushType == "background" {
			r.priority = "5"
		}
	case "10", "5", "1":
		if r.pushType == "background" && r.priority == "10" {
			return r, errors.New("apns: background notifications must have apns-priority 5 or 1")
		}
	default:
		return r, fmt.Errorf("apns: apns-priority must be 10, 5 or 1, not %q", r.priority)
	}
	if e := hs["apns-expiration"]; e != "" {
		if n, err := strconv.ParseInt(e, 10, 64); err != nil || n < 0 {
			return r, fmt.Errorf("apns: apns-expiration must be UNIX seconds, not %q", e)
		}
		r.expiration = e
	} else if !expiry.IsZero() {
		r.expiration = strconv.FormatInt(max(expiry.Unix(), 1), 10)
	}
	r.collapseID = hs["apns-collapse-id"]
	if len(r.collapseID) > 64 {
		return r, errors.New("apns: apns-collapse-id is longer than 64 bytes")
	}
	r.topic = hs["apns-topic"]
	if r.topic == "" && a.cfg.Topic != "" {
		r.topic = a.cfg.Topic + suffix
	}
	if r.topic != "" && !validTopic(r.topic) {
		return r, fmt.Errorf("apns: invalid apns-topic %q", r.topic)
	}
	return r, nil
}

// inferAPNsPushType is background for a payload whose aps asks only for content-available, alert
// otherwise.
func inferAPNsPushType(v *jsonx.Value) string {
	aps := v.Get("aps")
	if aps == nil || aps.Kind != jsonx.KindObject {
		return "alert"
	}
	if ca := aps.Get("content-available"); ca != nil && ca.Kind == jsonx.KindNumber && ca.Num == "1" &&
		aps.Get("alert") == nil && aps.Get("sound") == nil && aps.Get("badge") == nil {
		return "background"
	}
	return "alert"
}

// APNsID is the apns-id of a delivery: the outbox id when it is a UUID, else a name-based UUID of it,
// so that a retried delivery carries the same apns-id.
func APNsID(id string) string {
	if u, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return u.String()
	}
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("gatehouse-push:"+id)).String()
}

// providerToken returns the cached ES256 provider token, signing a new one when it is older than
// APNsTokenMaxAge.
func (a *APNs) providerToken() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.o.now()
	if a.token != "" && now.Sub(a.issued) < APNsTokenMaxAge && !now.Before(a.issued) {
		return a.token, nil
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: a.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", a.cfg.KeyID))
	if err != nil {
		return "", fmt.Errorf("apns: signer: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(map[string]any{"iss": a.cfg.TeamID, "iat": now.Unix()}).Serialize()
	if err != nil {
		return "", fmt.Errorf("apns: sign provider token: %w", err)
	}
	a.token, a.issued = tok, now
	return tok, nil
}

// invalidate drops the cached token if it is still the one APNs refused.
func (a *APNs) invalidate(used string) {
	a.mu.Lock()
	if a.token == used {
		a.token = ""
	}
	a.mu.Unlock()
}

// apnsError is APNs' error body.
type apnsError struct {
	Reason    string `json:"reason"`
	Timestamp int64  `json:"timestamp"`
}

// Send delivers d. On 403 ExpiredProviderToken it signs a new token and tries once more.
func (a *APNs) Send(ctx context.Context, d push.Delivery) error {
	if err := ValidateAPNsToken(d.Channel); err != nil {
		return &push.DeliveryError{Platform: push.APNs, Reason: "BadDeviceToken", Err: err}
	}
	r, err := a.prepare(d.Payload, d.Headers, d.Expiry)
	if err != nil {
		return &push.DeliveryError{Platform: push.APNs, Reason: "InvalidPayload", Err: err}
	}
	url := a.base + "/3/device/" + d.Channel
	for attempt := 0; ; attempt++ {
		var tok string
		if a.key != nil {
			if tok, err = a.providerToken(); err != nil {
				return &push.DeliveryError{Platform: push.APNs, Retryable: true, Err: err}
			}
		}
		resp, err := post(ctx, a.client, url, d.Payload, func(h http.Header) {
			h.Set("Content-Type", "application/json")
			if tok != "" {
				h.Set("Authorization", "bearer "+tok)
			}
			h.Set("apns-id", APNsID(d.ID))
			h.Set("apns-push-type", r.pushType)
			h.Set("apns-priority", r.priority)
			if r.topic != "" {
				h.Set("apns-topic", r.topic)
			}
			if r.expiration != "" {
				h.Set("apns-expiration", r.expiration)
			}
			if r.collapseID != "" {
				h.Set("apns-collapse-id", r.collapseID)
			}
		})
		if err != nil {
			return transportError(push.APNs, err)
		}
		if resp.StatusCode == http.StatusOK {
			drain(resp.Body)
			return nil
		}
		body := readBody(resp.Body)
		_ = resp.Body.Close()
		de := a.classify(resp, body)
		if de.Reason == "ExpiredProviderToken" && tok != "" && attempt == 0 {
			a.invalidate(tok)
			continue
		}
		return de
	}
}

// classify maps an APNs error answer to a DeliveryError.
func (a *APNs) classify(resp *http.Response, body []byte) *push.DeliveryError {
	var e apnsError
	_ = json.Unmarshal(body, &e)
	de := &push.DeliveryError{Platform: push.APNs, Status: resp.StatusCode, Reason: e.Reason,
		RetryAfter: retryAfter(resp.Header, a.o.now()), Retryable: statusRetryable(resp.StatusCode)}
	switch resp.StatusCode {
	case http.StatusGone: // Unregistered, ExpiredToken
		de.Unregistered = true
		if e.Timestamp > 0 {
			de.Err = fmt.Errorf("the device token is inactive since %s", time.UnixMilli(e.Timestamp).UTC().Format(time.RFC3339))
		}
	case http.StatusForbidden:
		// Credential problems (ExpiredProviderToken after a fresh token, InvalidProviderToken,
		// MissingProviderToken, BadCertificate, BadCertificateEnvironment): keep the message for
		// when the operator has fixed the credentials.
		de.Retryable = true
		de.Err = errors.New("APNs refused the provider credentials")
	}
	return de
}
