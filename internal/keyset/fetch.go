package keyset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults for NewHTTPClient and Config.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 10 * time.Second
	DefaultMaxBodyBytes   = 1 << 20
)

// NewHTTPClient returns a client suited to key set fetches: connectTimeout bounds
// TCP connect and the TLS handshake, readTimeout bounds the wait for response
// headers and, together with connectTimeout, the whole exchange. Redirects are
// followed at most 3 times and never from https to http.
func NewHTTPClient(connectTimeout, readTimeout time.Duration) *http.Client {
	if connectTimeout <= 0 {
		connectTimeout = DefaultConnectTimeout
	}
	if readTimeout <= 0 {
		readTimeout = DefaultReadTimeout
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   connectTimeout,
		ResponseHeaderTimeout: readTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   connectTimeout + 2*readTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("redirect from https to http refused")
			}
			return nil
		},
	}
}

// StatusError is returned when the provider answers with a non-200 status.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return fmt.Sprintf("unexpected HTTP status %d", e.Code) }

// ErrBodyTooLarge is returned when the document exceeds the body cap.
var ErrBodyTooLarge = errors.New("key set document exceeds the size limit")

// download performs one GET and returns the body and response headers.
func (s *Set) download(ctx context.Context, forced bool) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "gatehouse-keyset/1")
	if forced {
		// Ask intermediaries for a fresh copy (go-oidc#484).
		req.Header.Set("Cache-Control", "no-cache")
		req.Header.Set("Pragma", "no-cache")
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, nil, &StatusError{Code: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(len(body)) > s.cfg.MaxBodyBytes {
		return nil, nil, ErrBodyTooLarge
	}
	return body, resp.Header, nil
}

// lifetime returns how long a response may be considered fresh, clamped to
// [min, max]; def is used when the response carries no freshness information.
func lifetime(h http.Header, now time.Time, def, min, max time.Duration) time.Duration {
	d, ok := cacheLifetime(h, now)
	if !ok {
		d = def
	}
	return clamp(d, min, max)
}

func clamp(d, min, max time.Duration) time.Duration {
	if d < min {
		return min
	}
	if d > max {
		return max
	}
	return d
}

// cacheLifetime implements the freshness part of RFC 9111 §4.2 for a private
// cache: max-age (minus Age) wins over Expires (minus Date, or now); no-store and
// no-cache mean zero.
func cacheLifetime(h http.Header, now time.Time) (time.Duration, bool) {
	age := time.Duration(0)
	if v := strings.TrimSpace(h.Get("Age")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			age = secs(n)
		}
	}
	maxAge, haveMaxAge := time.Duration(0), false
	for _, line := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err == nil && n >= 0 {
					maxAge, haveMaxAge = secs(n), true
				}
			}
		}
	}
	if haveMaxAge {
		return max0(maxAge - age), true
	}
	if v := h.Get("Expires"); v != "" {
		exp, err := http.ParseTime(v)
		if err != nil {
			return 0, true // an invalid Expires means "already expired" (RFC 9111 §5.3)
		}
		base := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			base = d
		}
		return max0(exp.Sub(base) - age), true
	}
	return 0, false
}

func secs(n int64) time.Duration {
	const maxSecs = int64(1<<63-1) / int64(time.Second)
	if n > maxSecs {
		n = maxSecs
	}
	return time.Duration(n) * time.Second
}

func max0(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}
