package push

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// testPlatform records deliveries and fails them as told: the push package's own stand-in for the
// real platforms (internal/push/platform), which are tested against their fakes there.
type testPlatform struct {
	name  string
	limit int // payload bytes

	mu       sync.Mutex
	got      []Delivery
	attempts map[string]int
	// fail, when set, decides the answer to each attempt (nil: accepted).
	fail func(d Delivery, attempt int) error
	// block, when set, holds Send until it is closed or the context ends.
	block chan struct{}
	sent  chan Delivery
}

func newTestPlatform(name string) *testPlatform {
	return &testPlatform{name: name, limit: 4096, attempts: map[string]int{}, sent: make(chan Delivery, 100000)}
}

func (p *testPlatform) Name() string { return p.name }

func (p *testPlatform) ValidateChannel(c string) error {
	if strings.HasPrefix(c, "dev-") && len(c) >= 8 {
		return nil
	}
	return errors.New("a test channel starts with dev- and has at least 8 characters")
}

func (p *testPlatform) ValidatePayload(b []byte, _ map[string]string) error {
	if len(b) > p.limit {
		return fmt.Errorf("payload of %d bytes exceeds %d", len(b), p.limit)
	}
	return nil
}

func (p *testPlatform) Send(ctx context.Context, d Delivery) error {
	p.mu.Lock()
	p.attempts[d.ID]++
	n := p.attempts[d.ID]
	fail, block := p.fail, p.block
	p.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return &DeliveryError{Platform: p.name, Retryable: true, Err: ctx.Err()}
		}
	}
	if fail != nil {
		if err := fail(d, n); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.got = append(p.got, d)
	p.mu.Unlock()
	p.sent <- d
	return nil
}

func (p *testPlatform) deliveries() []Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Delivery(nil), p.got...)
}

func (p *testPlatform) setFail(f func(d Delivery, attempt int) error) {
	p.mu.Lock()
	p.fail = f
	p.mu.Unlock()
}

// waitSent waits for n deliveries.
func (p *testPlatform) waitSent(n int, timeout time.Duration) ([]Delivery, error) {
	var out []Delivery
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case d := <-p.sent:
			out = append(out, d)
		case <-deadline:
			return out, fmt.Errorf("%d of %d deliveries after %s", len(out), n, timeout)
		}
	}
	return out, nil
}
