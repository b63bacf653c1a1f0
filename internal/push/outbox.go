package push

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// claimBatch is the most messages one claim takes.
const claimBatch = 64

// shutdownGrace is how long deliveries in flight may finish once Run's context ends.
const shutdownGrace = 5 * time.Second

// Run delivers the outbox until ctx ends: one claimer per configured platform, each with at most
// Config.Concurrency deliveries in flight, all under the instance's rate limit. When ctx ends no more
// messages are claimed and the deliveries in flight get shutdownGrace to finish (a send cut short
// might have reached the service); those still running then are abandoned to their leases (another
// instance, or this one after a restart, delivers them when the lease runs out).
func (s *Service) Run(ctx context.Context) error {
	if len(s.platforms) == 0 {
		<-ctx.Done()
		return nil
	}
	var limiter *rate.Limiter
	if s.cfg.RateLimit > 0 {
		limiter = rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst)
	}
	var hints <-chan string
	if s.notifier != nil {
		ch, cancel := s.notifier.Subscribe(NotifyChannel)
		defer cancel()
		hints = ch
	}
	// Sends run on their own context: cut shutdownGrace after ctx ends, not at once.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelSends()
		case <-sendCtx.Done():
		}
	}()
	done := make(chan settled, 4*claimBatch)
	settler := make(chan struct{})
	go func() { defer close(settler); s.settleLoop(done) }()
	wakes := make([]chan struct{}, 0, len(s.platforms))
	var wg sync.WaitGroup
	for _, p := range s.platforms {
		w := make(chan struct{}, 1)
		wakes = append(wakes, w)
		wg.Add(1)
		go func(p Platform) {
			defer wg.Done()
			s.claimLoop(ctx, sendCtx, p, w, limiter, done)
		}(p)
	}
	fan := func() {
		for _, w := range wakes {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			close(done)
			<-settler
			return nil
		case <-s.wake:
			fan()
		case _, ok := <-hints:
			if !ok {
				hints = nil
				continue
			}
			fan()
		}
	}
}

// settled is a delivered message whose removal from the outbox is batched.
type settled struct {
	id, lease string
}

// settleMax is how many delivered messages one DELETE removes; settleWait how long a delivered
// message waits for others to share it (one transaction, one fsync on SQLite, instead of one each).
const (
	settleMax  = 128
	settleWait = 2 * time.Millisecond
)

// settleLoop removes delivered messages in batches until done is closed and drained. A crash
// before a batch is written leaves its messages to be delivered again when their leases end.
func (s *Service) settleLoop(done <-chan settled) {
	ids := make([]string, 0, settleMax)
	leases := make([]string, 0, settleMax)
	flush := func() {
		if len(ids) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SendTimeout)
		err := s.store.CompleteMany(ctx, ids, leases)
		cancel()
		if err != nil {
			s.log.Warn("push: removing delivered notifications failed; they may be delivered again", "count", len(ids), "error", err)
		}
		ids, leases = ids[:0], leases[:0]
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case m, ok := <-done:
			if !ok {
				flush()
				return
			}
			if len(ids) == 0 {
				timer.Reset(settleWait)
			}
			ids, leases = append(ids, m.id), append(leases, m.lease)
			if len(ids) >= settleMax {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

func (s *Service) claimLoop(ctx, sendCtx context.Context, p Platform, wake <-chan struct{}, limiter *rate.Limiter, done chan<- settled) {
	sem := make(chan struct{}, s.cfg.Concurrency)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	freed := make(chan struct{}, 1)
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	failures := 0
	for {
		free := cap(sem) - len(sem)
		got := 0
		if free > 0 {
			msgs, err := s.store.Claim(ctx, p.Name(), s.now(), s.cfg.Lease, min(free, claimBatch))
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				failures++
				if failures == 1 || failures%60 == 0 {
					s.log.Warn("push: claim failed", "platform", p.Name(), "error", err)
				}
			} else {
				failures = 0
			}
			got = len(msgs)
			for i := range msgs {
				if limiter != nil {
					if err := limiter.Wait(ctx); err != nil {
						return // the rest come back when their leases end
					}
				}
				sem <- struct{}{}
				inflight.Add(1)
				go func(m Message) {
					defer func() {
						<-sem
						inflight.Done()
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					s.deliver(sendCtx, p, m, done)
				}(msgs[i])
			}
		}
		if got > 0 && got == min(free, claimBatch) {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-freed:
		case <-t.C:
		}
	}
}

// deliver sends one claimed message and settles it: delivered and given-up messages leave the
// outbox, retryable failures come back after a backoff, gone devices lose their registrations.
func (s *Service) deliver(ctx context.Context, p Platform, m Message, done chan<- settled) {
	name := p.Name()
	now := s.now()
	if (!m.Expires.IsZero() && now.After(m.Expires)) || now.Sub(m.CreatedAt) > s.cfg.MessageTTL {
		s.settle(ctx, m, "expired")
		return
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	err := p.Send(sctx, Delivery{ID: m.ID, Channel: m.Channel, Payload: m.Payload, Headers: m.Headers, Expiry: m.Expires})
	cancel()
	if err == nil {
		// Counted before it is settled: the provider has it whatever becomes of the outbox row.
		s.obs.Sent(name, s.now().Sub(m.CreatedAt))
		done <- settled{id: m.ID, lease: m.Lease}
		return
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // shutting down: the lease brings it back
	}
	de := AsDeliveryError(name, err)
	reason := de.Reason
	if reason == "" {
		reason = "status_" + strconv.Itoa(de.Status)
		if de.Status == 0 {
			reason = "transport"
		}
	}
	switch {
	case de.Unregistered:
		// The registrations go before the message does: once the outbox no longer holds it, the
		// device is gone too, and a crash in between only repeats the removal when the lease
		// brings the message back.
		n, rerr := s.store.RemoveChannel(context.WithoutCancel(ctx), name, m.Channel)
		if rerr != nil {
			s.log.Warn("push: removing a gone device failed", "platform", name, "error", rerr)
		} else if n > 0 {
			s.obs.Removed(name, n)
			s.log.Info("push: removed the registrations of a device the service reported gone", "platform", name, "registrations", n, "reason", de.Reason)
		}
		s.settle(ctx, m, "unregistered")
	case de.Retryable && m.Attempts < s.cfg.MaxAttempts:
		wait := s.backoff(m.Attempts)
		if de.RetryAfter > wait {
			wait = de.RetryAfter
		}
		if _, rerr := s.store.Retry(context.WithoutCancel(ctx), m.ID, m.Lease, s.now().Add(wait), de.Error()); rerr != nil {
			s.log.Warn("push: rescheduling failed; the lease brings the message back", "platform", name, "error", rerr)
		}
		s.obs.Retried(name, reason)
	default:
		if de.Retryable {
			reason = "attempts_exhausted"
		}
		s.log.Warn("push: notification dropped", "platform", name, "reason", reason, "status", de.Status, "attempts", m.Attempts)
		s.settle(ctx, m, reason)
	}
}

// settle removes a message that will not be delivered and counts why.
func (s *Service) settle(ctx context.Context, m Message, reason string) {
	if _, err := s.store.Complete(context.WithoutCancel(ctx), m.ID, m.Lease); err != nil {
		s.log.Warn("push: removing a failed message failed", "platform", m.Platform, "error", err)
	}
	s.obs.Failed(m.Platform, reason)
}

// backoff is RetryBase·2^(attempts-1), capped at RetryMax.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.cfg.RetryBase
	for i := 1; i < attempts && d < s.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.RetryMax)
}
