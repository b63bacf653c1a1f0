package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/gatehouse/gatehouse/internal/jsonx"
	"github.com/gatehouse/gatehouse/internal/push"
)

// FCMEndpoint is FCM HTTP v1's base URL.
const FCMEndpoint = "https://fcm.googleapis.com"

// FCMScope is the OAuth2 scope of FCM HTTP v1.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMMaxPayload bounds a delivery's payload, as FCM bounds a message's content.
const FCMMaxPayload = 4096

// fcmMaxTTL is FCM's longest time to live: 28 days.
const fcmMaxTTL = 28 * 24 * time.Hour

// FCMConfig holds FCM credentials.
type FCMConfig struct {
	// CredentialsJSON is the service account's key file (JSON, "type": "service_account").
	CredentialsJSON []byte
	// ProjectID overrides the key file's project_id.
	ProjectID string
}

// FCM delivers through Firebase Cloud Messaging's HTTP v1 API with a service account's OAuth2 token.
//
// A payload is a JSON object, either an FCM v1 request ({"message": {…}}, without token, topic or
// condition: the target is the channel; "validate_only" allowed) or a legacy GCM payload as the
// original's scripts sent it ({"data", "notification", "collapse_key", "time_to_live", "priority",
// "restricted_package_name", "dry_run", "content_available", "mutable_content",
// "delay_while_idle"}), which is mapped to the v1 message. No headers are accepted.
type FCM struct {
	o       Options
	base    string
	project string
	client  *http.Client
	conf    interface {
		TokenSource(context.Context) oauth2.TokenSource
	}

	mu sync.Mutex
	ts oauth2.TokenSource
}

var _ push.Platform = (*FCM)(nil)

// NewFCM reads the service account and builds the platform. No token is fetched yet.
func NewFCM(cfg FCMConfig, o Options) (*FCM, error) {
	if len(cfg.CredentialsJSON) == 0 {
		return nil, fmt.Errorf("fcm: %w: no service account key", errNotConfigured)
	}
	var sa struct {
		Type      string `json:"type"`
		ProjectID string `json:"project_id"`
	}
	v, err := jsonx.Parse(cfg.CredentialsJSON)
	if err != nil || v.Kind != jsonx.KindObject {
		return nil, errors.New("fcm: the service account key is not a JSON object")
	}
	if t := v.Get("type"); t != nil && t.Kind == jsonx.KindString {
		sa.Type = t.Str
	}
	if p := v.Get("project_id"); p != nil && p.Kind == jsonx.KindString {
		sa.ProjectID = p.Str
	}
	if sa.Type != "service_account" {
		return nil, fmt.Errorf("fcm: the key file's type is %q, not service_account", sa.Type)
	}
	conf, err := google.JWTConfigFromJSON(cfg.CredentialsJSON, FCMScope)
	if err != nil {
		// The library's message does not quote the key.
		return nil, fmt.Errorf("fcm: service account key: %w", err)
	}
	if o.TokenURL != "" {
		conf.TokenURL = o.TokenURL
	}
	f := &FCM{o: o, base: FCMEndpoint, project: sa.ProjectID, conf: conf}
	if cfg.ProjectID != "" {
		f.project = cfg.ProjectID
	}
	if !regexp.MustCompile(`^[a-z][a-z0-9-]{4,61}[a-z0-9]$`).MatchString(f.project) {
		return nil, fmt.Errorf("fcm: invalid project id %q", f.project)
	}
	if o.Endpoint != "" {
		f.base = strings.TrimSuffix(o.Endpoint, "/")
	}
	f.client = o.client(nil, false)
	f.ts = f.newTokenSource()
	return f, nil
}

func (f *FCM) newTokenSource() oauth2.TokenSource {
	// The token source keeps this context for its HTTP client: no deadline, the client's timeout.
	return f.conf.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, f.client))
}

// token returns the cached access token (refreshed by the token source before it expires).
func (f *FCM) token() (*oauth2.Token, error) {
	f.mu.Lock()
	ts := f.ts
	f.mu.Unlock()
	return ts.Token()
}

// invalidate replaces the token source when the refused token is still the current one.
func (f *FCM) invalidate(used string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, err := f.ts.Token(); err == nil && t.AccessToken == used {
		f.ts = f.newTokenSource()
	}
}

// Name is push.FCM.
func (f *FCM) Name() string { return push.FCM }

// ValidateChannel checks an FCM registration token (or a legacy GCM registration id).
func (f *FCM) ValidateChannel(channel string) error { return ValidateFCMToken(channel) }

// ValidateFCMToken is FCM's channel check, usable without credentials.
func ValidateFCMToken(token string) error {
	if len(token) < 32 || len(token) > 4096 || strings.IndexFunc(token, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == ':' || r == '.' || r == '-')
	}) >= 0 {
		return errors.New("fcm: a registration token is 32 to 4096 characters of letters, digits, '_', '-', ':' and '.'")
	}
	return nil
}

// ValidatePayload checks that the payload maps to an FCM v1 message within the limit.
func (f *FCM) ValidatePayload(payload []byte, h map[string]string) error {
	_, err := fcmRequest(payload, h, "validate-only-token", time.Time{}, f.o.now())
	return err
}

// fcmReservedData are data keys FCM refuses.
var fcmReservedData = map[string]bool{"from": true, "notification": true, "message_type": true}

// fcmRequest builds the v1 request body for token.
func fcmRequest(payload []byte, h map[string]string, token string, expiry, now time.Time) ([]byte, error) {
	if _, err := canonicalHeaders("fcm", h); err != nil {
		return nil, err
	}
	if len(payload) > FCMMaxPayload {
		return nil, errTooLarge("fcm", len(payload), FCMMaxPayload)
	}
	v, err := jsonx.Parse(payload)
	if err != nil {
		return nil, fmt.Errorf("fcm: the payload is not valid JSON: %w", err)
	}
	if v.Kind != jsonx.KindObject {
		return nil, errors.New("fcm: the payload must be a JSON object")
	}
	var req map[string]any
	if m := v.Get("message"); m != nil && m.Kind == jsonx.KindObject {
		req, err = fcmV1(v)
	} else {
		req, err = fcmLegacy(v)
	}
	if err != nil {
		return nil, err
	}
	msg := req["message"].(map[string]any)
	msg["token"] = token
	if !expiry.IsZero() {
		android, _ := msg["android"].(map[string]any)
		if android == nil {
			android = map[string]any{}
			msg["android"] = android
		}
		if _, set := android["ttl"]; !set {
			ttl := min(max(expiry.Sub(now), 0), fcmMaxTTL)
			android["ttl"] = strconv.FormatInt(int64(math.Ceil(ttl.Seconds())), 10) + "s"
		}
	}
	if data, ok := msg["data"].(map[string]any); ok {
		for k, val := range data {
			if _, ok := val.(string); !ok {
				return nil, fmt.Errorf("fcm: data value %q must be a string", k)
			}
			if fcmReservedData[k] || strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.") {
				return nil, fmt.Errorf("fcm: data key %q is reserved by FCM", k)
			}
		}
	}
	return json.Marshal(req)
}

// fcmV1 checks a v1 request: the message has no target of its own.
func fcmV1(v *jsonx.Value) (map[string]any, error) {
	var req map[string]any
	if err := jsonx.Unmarshal(mustEncode(v), &req); err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	for k := range req {
		if k != "message" && k != "validate_only" {
			return nil, fmt.Errorf("fcm: unknown request field %q (a v1 request has message and validate_only)", k)
		}
	}
	msg := req["message"].(map[string]any)
	for _, k := range []string{"token", "topic", "condition"} {
		if _, ok := msg[k]; ok {
			return nil, fmt.Errorf("fcm: the message must not name a %s: the registration is its target", k)
		}
	}
	return req, nil
}

// fcmLegacy maps a legacy GCM payload to a v1 request.
func fcmLegacy(v *jsonx.Value) (map[string]any, error) {
	msg := map[string]any{}
	req := map[string]any{"message": msg}
	android := map[string]any{}
	androidNote := map[string]any{}
	aps := map[string]any{}
	for _, m := range v.Members {
		val := m.Value
		switch m.Name {
		case "data":
			if val.Kind != jsonx.KindObject {
				return nil, errors.New("fcm: data must be an object")
			}
			data := map[string]any{}
			for _, d := range val.Members {
				// GCM delivered every value as a string; non-strings arrive as their JSON text.
				if d.Value.Kind == jsonx.KindString {
					data[d.Name] = d.Value.Str
				} else {
					data[d.Name] = string(mustEncode(d.Value))
				}
			}
			msg["data"] = data
		case "notification":
			if val.Kind != jsonx.KindObject {
				return nil, errors.New("fcm: notification must be an object")
			}
			note := map[string]any{}
			for _, n := range val.Members {
				if err := legacyNotification(n, note, androidNote, aps); err != nil {
					return nil, err
				}
			}
			if len(note) > 0 {
				msg["notification"] = note
			}
		case "collapse_key", "restricted_package_name":
			if val.Kind != jsonx.KindString {
				return nil, fmt.Errorf("fcm: %s must be a string", m.Name)
			}
			android[m.Name] = val.Str
		case "time_to_live":
			n, err := strconv.ParseInt(val.Num, 10, 64)
			if val.Kind != jsonx.KindNumber || err != nil || n < 0 || time.Duration(n)*time.Second > fcmMaxTTL {
				return nil, errors.New("fcm: time_to_live must be whole seconds from 0 to 2419200")
			}
			android["ttl"] = strconv.FormatInt(n, 10) + "s"
		case "priority":
			switch {
			case val.Kind == jsonx.KindString && (val.Str == "high" || val.Str == "normal"):
				android["priority"] = strings.ToUpper(val.Str)
			case val.Kind == jsonx.KindNumber && (val.Num == "10" || val.Num == "5"):
				android["priority"] = map[string]string{"10": "HIGH", "5": "NORMAL"}[val.Num]
			default:
				return nil, errors.New(`fcm: priority must be "high" or "normal"`)
			}
		case "dry_run":
			if val.Kind != jsonx.KindBool {
				return nil, errors.New("fcm: dry_run must be true or false")
			}
			if val.Bool {
				req["validate_only"] = true
			}
		case "content_available", "mutable_content":
			if val.Kind != jsonx.KindBool {
				return nil, fmt.Errorf("fcm: %s must be true or false", m.Name)
			}
			if val.Bool {
				aps[strings.ReplaceAll(m.Name, "_", "-")] = 1
			}
		case "delay_while_idle":
			// Without effect since 2016; accepted so that old scripts keep working.
		case "to", "registration_ids", "condition":
			return nil, fmt.Errorf("fcm: %s is not allowed: the registration is the target", m.Name)
		default:
			return nil, fmt.Errorf("fcm: unknown field %q in a GCM payload (or send an FCM v1 {\"message\": …})", m.Name)
		}
	}
	if len(androidNote) > 0 {
		android["notification"] = androidNote
	}
	if len(android) > 0 {
		msg["android"] = android
	}
	if len(aps) > 0 {
		msg["apns"] = map[string]any{"payload": map[string]any{"aps": aps}}
	}
	return req, nil
}

// legacyNotification maps one field of a legacy notification object.
func legacyNotification(n jsonx.Member, note, android, aps map[string]any) error {
	str := func() (string, error) {
		if n.Value.Kind != jsonx.KindString {
			return "", fmt.Errorf("fcm: notification.%s must be a string", n.Name)
		}
		return n.Value.Str, nil
	}
	switch n.Name {
	case "title", "body", "image":
		s, err := str()
		note[n.Name] = s
		return err
	case "icon", "tag", "color", "click_action", "body_loc_key", "title_loc_key":
		s, err := str()
		android[n.Name] = s
		return err
	case "android_channel_id":
		s, err := str()
		android["channel_id"] = s
		return err
	case "sound":
		s, err := str()
		android["sound"], aps["sound"] = s, s
		return err
	case "badge":
		// iOS only: the badge number (GCM took a string).
		b, err := strconv.Atoi(n.Value.Str + n.Value.Num)
		if err != nil || b < 0 {
			return errors.New("fcm: notification.badge must be a number")
		}
		aps["badge"] = b
		return nil
	case "body_loc_args", "title_loc_args":
		var args []string
		if n.Value.Kind == jsonx.KindString { // GCM accepted a JSON array in a string
			if err := jsonx.Unmarshal([]byte(n.Value.Str), &args); err != nil {
				return fmt.Errorf("fcm: notification.%s must be an array of strings", n.Name)
			}
		} else if err := jsonx.Unmarshal(mustEncode(n.Value), &args); err != nil {
			return fmt.Errorf("fcm: notification.%s must be an array of strings", n.Name)
		}
		android[n.Name] = args
		return nil
	default:
		return fmt.Errorf("fcm: unknown notification field %q", n.Name)
	}
}

func mustEncode(v *jsonx.Value) []byte {
	var b strings.Builder
	encodeValue(&b, v)
	return []byte(b.String())
}

func encodeValue(b *strings.Builder, v *jsonx.Value) {
	switch v.Kind {
	case jsonx.KindNull:
		b.WriteString("null")
	case jsonx.KindBool:
		b.WriteString(strconv.FormatBool(v.Bool))
	case jsonx.KindNumber:
		b.WriteString(v.Num)
	case jsonx.KindString:
		s, _ := json.Marshal(v.Str)
		b.Write(s)
	case jsonx.KindArray:
		b.WriteByte('[')
		for i, it := range v.Items {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeValue(b, it)
		}
		b.WriteByte(']')
	case jsonx.KindObject:
		b.WriteByte('{')
		for i, m := range v.Members {
			if i > 0 {
				b.WriteByte(',')
			}
			s, _ := json.Marshal(m.Name)
			b.Write(s)
			b.WriteByte(':')
			encodeValue(b, m.Value)
		}
		b.WriteByte('}')
	}
}

// fcmError is the v1 API's error body.
type fcmError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type      string `json:"@type"`
			ErrorCode string `json:"errorCode"`
		} `json:"details"`
	} `json:"error"`
}

// Send delivers d. A 401 (token revoked or expired early) fetches a new token and tries once more.
func (f *FCM) Send(ctx context.Context, d push.Delivery) error {
	if err := ValidateFCMToken(d.Channel); err != nil {
		return &push.DeliveryError{Platform: push.FCM, Reason: "INVALID_ARGUMENT", Err: err}
	}
	body, err := fcmRequest(d.Payload, d.Headers, d.Channel, d.Expiry, f.o.now())
	if err != nil {
		return &push.DeliveryError{Platform: push.FCM, Reason: "INVALID_ARGUMENT", Err: err}
	}
	endpoint := f.base + "/v1/projects/" + url.PathEscape(f.project) + "/messages:send"
	for attempt := 0; ; attempt++ {
		tok, err := f.token()
		if err != nil {
			return &push.DeliveryError{Platform: push.FCM, Retryable: true, Reason: "token", Err: fmt.Errorf("service account token: %w", redactTokenError(err))}
		}
		resp, err := post(ctx, f.client, endpoint, body, func(h http.Header) {
			h.Set("Content-Type", "application/json; charset=utf-8")
			h.Set("Authorization", "Bearer "+tok.AccessToken)
		})
		if err != nil {
			return transportError(push.FCM, err)
		}
		if resp.StatusCode == http.StatusOK {
			drain(resp.Body)
			return nil
		}
		raw := readBody(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			f.invalidate(tok.AccessToken)
			continue
		}
		return f.classify(resp, raw)
	}
}

func (f *FCM) classify(resp *http.Response, raw []byte) *push.DeliveryError {
	var e fcmError
	_ = json.Unmarshal(raw, &e)
	reason := e.Error.Status
	for _, d := range e.Error.Details {
		if strings.HasSuffix(d.Type, "google.firebase.fcm.v1.FcmError") && d.ErrorCode != "" {
			reason = d.ErrorCode
		}
	}
	de := &push.DeliveryError{Platform: push.FCM, Status: resp.StatusCode, Reason: reason,
		RetryAfter: retryAfter(resp.Header, f.o.now()), Retryable: statusRetryable(resp.StatusCode)}
	if e.Error.Message != "" {
		de.Err = errors.New(e.Error.Message)
	}
	switch {
	case reason == "UNREGISTERED" || reason == "NOT_FOUND" || resp.StatusCode == http.StatusNotFound:
		de.Unregistered, de.Retryable = true, false
	case reason == "QUOTA_EXCEEDED" || reason == "UNAVAILABLE" || reason == "INTERNAL":
		de.Retryable = true
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden && reason != "SENDER_ID_MISMATCH":
		// Credentials (UNAUTHENTICATED after a fresh token, PERMISSION_DENIED,
		// THIRD_PARTY_AUTH_ERROR): kept for when the operator has fixed them.
		de.Retryable = true
	}
	return de
}

// redactTokenError keeps the token endpoint's OAuth error code and drops its body.
func redactTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" { // x/oauth2/jwt leaves the body unparsed
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(re.Body, &e) == nil && len(e.Error) < 64 {
				code = e.Error
			}
		}
		if code == "" && re.Response != nil {
			code = "status " + strconv.Itoa(re.Response.StatusCode)
		}
		return fmt.Errorf("token endpoint refused: %s", code)
	}
	return err
}
