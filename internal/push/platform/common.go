// Package platform delivers notifications to the push services: APNs (apns.go), FCM HTTP v1
// (fcm.go), WNS (wns.go) and Web Push (webpush.go). Each type implements push.Platform, holds its
// credentials and cached provider tokens, is safe for concurrent use and never logs a credential or
// a device token. FromConfig (config.go) builds the configured ones from the settings.
//
// Headers a delivery carries are matched case-insensitively; each platform accepts its own set (see
// its type) and refuses any other with an error, at ValidatePayload time, so that a script learns of
// a misspelt header before anything is queued.
//
// Endpoints are overridable through Options for tests (package pushfake), never through end-user
// settings.
package platform

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/push"
)

// Options are what every platform shares: the HTTP transport's trust, time limits and the clock, and
// the endpoint overrides that point a platform at a fake.
type Options struct {
	// Endpoint overrides the service's base URL (scheme and host, e.g. https://127.0.0.1:4431).
	// For tests only.
	Endpoint string
	// TokenURL overrides the OAuth2 token endpoint (FCM, WNS). For tests only.
	TokenURL string
	// RootCAs replaces the system roots when set (tests: the fakes' certificates).
	RootCAs *x509.CertPool
	// Timeout bounds one call to the service (token requests included); default 30s.
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 30 * time.Second
}

// transport is an HTTP transport for one platform: TLS 1.2 or later, HTTP/2 when the server offers it
// (only HTTP/2 when http2Only), pings on idle HTTP/2 connections so that a dead one is noticed.
func (o Options) transport(cert *tls.Certificate, http2Only bool) *http.Transport {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: o.timeout(),
		HTTP2:                 &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	if http2Only {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetHTTP2(true)
	}
	return t
}

func (o Options) client(cert *tls.Certificate, http2Only bool) *http.Client {
	return &http.Client{Transport: o.transport(cert, http2Only), Timeout: o.timeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// headers looks delivery headers up case-insensitively and refuses names outside a platform's set.
type headers map[string]string

func canonicalHeaders(platform string, h map[string]string, allowed ...string) (headers, error) {
	out := headers{}
	for k, v := range h {
		name := strings.ToLower(strings.TrimSpace(k))
		ok := false
		for _, a := range allowed {
			if name == a {
				ok = true
				break
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s: unsupported header %q (allowed: %s)", platform, k, strings.Join(allowed, ", "))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s: header %q given twice", platform, k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("%s: header %q has a control character", platform, k)
		}
		out[name] = strings.TrimSpace(v)
	}
	return out, nil
}

// retryAfter reads Retry-After (seconds or an HTTP date), bounded to a day.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, 24*time.Hour)
}

// maxErrorBody bounds what is read of a service's error answer.
const maxErrorBody = 64 << 10

func readBody(r io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBody))
	return b
}

// drain reads what is left of a body (bounded) so that the connection can be reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}

// transportError is a failure to reach the service: always retryable. The URL in it loses its
// path and query (device tokens, channel capabilities).
func transportError(platform string, err error) *push.DeliveryError {
	return &push.DeliveryError{Platform: platform, Retryable: true, Err: redactURL(err)}
}

// statusRetryable is the default classification of an HTTP status: 429 and 5xx are retryable.
func statusRetryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// errTooLarge is a payload over a platform's limit.
func errTooLarge(platform string, n, limit int) error {
	return fmt.Errorf("%s: payload is %d bytes, more than the limit of %d", platform, n, limit)
}

// errNotConfigured is returned by constructors missing a required credential.
var errNotConfigured = errors.New("not configured")

// post sends body to url with the given headers and returns the response (the caller closes it).
func post(ctx context.Context, c *http.Client, url string, body []byte, set func(http.Header)) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	set(req.Header)
	return c.Do(req)
}
