// Package pushfake has fakes of the push services for tests: APNs (HTTP/2 over TLS, provider-token
// or client-certificate authentication), FCM HTTP v1 with Google's OAuth2 token endpoint, WNS with
// its token endpoint, and a Web Push receiver that checks VAPID and decrypts RFC 8291 payloads. They
// check what the real services check, answer with their status codes and error bodies, record what
// they accepted, and can be scripted to fail (FailNext, SetDown) or to forget a device (Unregister).
package pushfake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Failure is a scripted answer: a status, the service's reason, and an optional Retry-After.
type Failure struct {
	Status     int
	Reason     string
	RetryAfter time.Duration
}

// control is what every fake shares: scripted failures, an outage switch, a clock, a log of what was
// accepted, and waiting for it.
type control[T any] struct {
	mu       sync.Mutex
	fails    []Failure
	down     *Failure
	now      func() time.Time
	received []T
	changed  chan struct{}
	requests int
}

func newControl[T any]() control[T] {
	return control[T]{now: time.Now, changed: make(chan struct{})}
}

// FailNext makes the next n requests fail with f (after authentication, like the real services'
// throttling and outages).
func (c *control[T]) FailNext(n int, f Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range n {
		c.fails = append(c.fails, f)
	}
}

// SetDown makes every request fail with f until SetDown(nil).
func (c *control[T]) SetDown(f *Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = f
}

// SetClock replaces the fake's clock (token ages, timestamps).
func (c *control[T]) SetClock(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

func (c *control[T]) clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now()
}

// Requests is how many requests reached the send endpoint (accepted or not).
func (c *control[T]) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// count counts a request that reached the send endpoint.
func (c *control[T]) count() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
}

// scripted returns the failure to answer with, if any.
func (c *control[T]) scripted() *Failure {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down != nil {
		f := *c.down
		return &f
	}
	if len(c.fails) > 0 {
		f := c.fails[0]
		c.fails = c.fails[1:]
		return &f
	}
	return nil
}

func (c *control[T]) record(v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.received = append(c.received, v)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Received returns a copy of what the fake accepted, in order.
func (c *control[T]) Received() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.received...)
}

// Wait returns once at least n notifications were accepted, or with ctx's error.
func (c *control[T]) Wait(ctx context.Context, n int) ([]T, error) {
	for {
		c.mu.Lock()
		if len(c.received) >= n {
			out := append([]T(nil), c.received...)
			c.mu.Unlock()
			return out, nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return c.Received(), ctx.Err()
		}
	}
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
}

// NewP256Key makes an ECDSA P-256 key and its PKCS#8 PEM (the form of an APNs .p8 file).
func NewP256Key() (*ecdsa.PrivateKey, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
