// Package push stores device registrations (v1 registrations, v2 installations), resolves tag
// expressions and templates, and delivers notifications through an outbox in the database to the
// push platforms. Each platform (APNs, FCM, WNS, Web Push) implements Platform in a file of its own
// under internal/push/platform.
package push

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Platform names as stored with registrations and outbox messages.
const (
	APNs    = "apns"
	FCM     = "fcm" // v2 "fcm" and "gcm", v1 "gcm": legacy GCM payloads are mapped to FCM HTTP v1
	WNS     = "wns"
	WebPush = "webpush"
)

// Delivery is one notification to one device, as the outbox hands it to a platform.
type Delivery struct {
	// ID is the outbox message id; platforms that support it pass it on for deduplication
	// (apns-id is a UUID derived from it, FCM message names it).
	ID string
	// Channel is the device token (APNs hex token, FCM registration token), the WNS channel URI or
	// the Web Push subscription JSON ({"endpoint":…,"keys":{"p256dh":…,"auth":…}}).
	Channel string
	// Payload is the platform's body, already expanded from a template where one applied.
	Payload []byte
	// Headers are platform headers from the script or the template (apns-push-type,
	// apns-priority, X-WNS-Type, TTL, Urgency, …), checked by the platform.
	Headers map[string]string
	// Expiry is when the notification stops being worth delivering (zero: the platform's default).
	Expiry time.Time
}

// Platform delivers to one push service. Implementations are safe for concurrent use, hold their
// credentials and cached OAuth2/provider tokens, and never log a credential or a device token.
type Platform interface {
	// Name is one of the platform constants.
	Name() string
	// ValidateChannel checks a device token, channel URI or subscription at registration time.
	ValidateChannel(channel string) error
	// ValidatePayload checks a payload (and its headers) before it is queued, including the
	// platform's size limit, so that an oversized notification fails in the caller's script.
	ValidatePayload(payload []byte, headers map[string]string) error
	// Send delivers one notification. A nil error means the service accepted it. Any failure is a
	// *DeliveryError (wrapped or not) saying whether to retry, when, and whether the device is gone.
	Send(ctx context.Context, d Delivery) error
}

// DeliveryError is a platform's answer that was not success.
type DeliveryError struct {
	Platform string
	Status   int    // HTTP status from the service (0 when it was not reached)
	Reason   string // the service's reason ("Unregistered", "UNREGISTERED", "BadDeviceToken", …)
	// Retryable: 429, 5xx, timeouts and transport errors. Not retryable: the message is dropped.
	Retryable bool
	// RetryAfter is the service's Retry-After, zero when it gave none.
	RetryAfter time.Duration
	// Unregistered: the device is gone (APNs 410, FCM UNREGISTERED/404, WNS 404/410, Web Push
	// 404/410); the registration is removed.
	Unregistered bool
	Err          error
}

func (e *DeliveryError) Error() string {
	msg := fmt.Sprintf("%s: status %d", e.Platform, e.Status)
	if e.Reason != "" {
		msg += " " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// AsDeliveryError returns the *DeliveryError in err's chain, or a retryable one wrapping err.
func AsDeliveryError(platform string, err error) *DeliveryError {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de
	}
	return &DeliveryError{Platform: platform, Retryable: true, Err: err}
}
