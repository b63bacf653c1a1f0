// Package notify carries "something changed, reload it" hints between the instances that share a
// database: catalogue and permission changes, user revocations, key-ring changes. On PostgreSQL it is
// LISTEN/NOTIFY on a dedicated connection; on SQLite (one node) it is in-process fan-out.
//
// A notification is a hint, never the data: subscribers reload from the database, and keep their
// polling as the fallback. A subscriber that is behind may see several notifications coalesced into
// fewer, and receives Resync whenever notifications may have been lost (the PostgreSQL listener
// reconnected): it must then reload everything it caches.
package notify

import (
	"context"
	"sync"
	"time"
)

// Channels used by Gatehouse's subsystems.
const (
	Tables      = "tables"      // the table catalogue (permissions, columns, options)
	Revocations = "revocations" // per-user token revocation cut-offs
	Keys        = "keys"        // the cluster key ring (and instance acknowledgements)
	Scripts     = "scripts"     // script edits laid over the app folder (package scriptstore)
	Jobs        = "jobs"        // job schedules set through the console, the admin API or the CLI
	Activity    = "activity"    // an instance wrote a batch of activity events (payload: the highest id)
)

// Resync is the payload delivered to every subscriber when notifications may have been missed.
const Resync = "\x00resync"

// Notifier publishes and delivers change hints.
type Notifier interface {
	// Publish sends payload (at most a few hundred bytes, no secrets) to every subscriber of channel
	// on every instance, including this one.
	Publish(ctx context.Context, channel, payload string) error
	// Subscribe returns a channel of payloads and a function that ends the subscription.
	Subscribe(channel string) (<-chan string, func())
}

// queue is how many undelivered payloads a subscriber may have before further ones are dropped
// (a dropped hint is harmless: a queued one makes the subscriber reload a newer state anyway).
const queue = 16

// Local is in-process fan-out: the notifier of a single node, and the delivery half of Postgres.
type Local struct {
	mu   sync.Mutex
	subs map[string]map[chan string]struct{}
}

// NewLocal returns an in-process notifier.
func NewLocal() *Local { return &Local{subs: map[string]map[chan string]struct{}{}} }

// Publish delivers payload to this process's subscribers.
func (l *Local) Publish(_ context.Context, channel, payload string) error {
	l.deliver(channel, payload)
	return nil
}

// Subscribe implements Notifier.
func (l *Local) Subscribe(channel string) (<-chan string, func()) {
	c := make(chan string, queue)
	l.mu.Lock()
	if l.subs[channel] == nil {
		l.subs[channel] = map[chan string]struct{}{}
	}
	l.subs[channel][c] = struct{}{}
	l.mu.Unlock()
	var once sync.Once
	return c, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs[channel], c)
			l.mu.Unlock()
		})
	}
}

func (l *Local) channels() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.subs))
	for ch := range l.subs {
		out = append(out, ch)
	}
	return out
}

func (l *Local) deliver(channel, payload string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.subs[channel] {
		select {
		case c <- payload:
		default: // the subscriber is behind: it will reload for a queued hint anyway
		}
	}
}

func (l *Local) deliverAll(payload string) {
	for _, ch := range l.channels() {
		l.deliver(ch, payload)
	}
}

// Follow calls reload whenever channel carries a hint (any payload, Resync included) and every
// interval as the fallback for lost hints, until ctx ends. n may be nil: polling only.
func Follow(ctx context.Context, n Notifier, channel string, interval time.Duration, reload func(context.Context)) {
	var hints <-chan string
	if n != nil {
		c, stop := n.Subscribe(channel)
		defer stop()
		hints = c
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-hints:
		}
		reload(ctx)
	}
}
