package keyring

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Agent keeps one instance's keys in step with the ring: it registers the instance, reloads the ring
// on every change notification (and every Poll, as the fallback), installs the keys, acknowledges the
// version it installed with a heartbeat, and promotes accepted keys once every live instance has
// acknowledged them. Any instance may promote; the ring's version makes it happen once.
type Agent struct {
	Store    *Store
	Notifier notify.Notifier
	Instance Instance // ID, Host, StartedAt, ConfigKeys
	// Install receives the keys whenever the ring changes (auth.Authenticator.SetSecrets).
	Install func(auth.Secrets) error
	// ExtraPrevious are retired master keys from the configuration.
	ExtraPrevious []token.Key
	Poll, Grace   time.Duration
	Keep          time.Duration // how long a retired key verifies (token_max_ttl + clock skew)
	Now           func() time.Time
	Log           *slog.Logger

	sub     <-chan string
	unsub   func()
	version int64
}

// Liveness is how recent a heartbeat must be for an instance to count as live: five polls.
func Liveness(poll time.Duration) time.Duration { return 5 * poll }

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Start loads the ring and registers the instance; it returns the keys to serve with. Registration
// comes before a second load: a rotation promoted before this instance was registered is then
// already visible to it, and any later one waits for its acknowledgement.
func (a *Agent) Start(ctx context.Context) (auth.Secrets, error) {
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	if a.Notifier != nil {
		a.sub, a.unsub = a.Notifier.Subscribe(notify.Keys)
	}
	var sec auth.Secrets
	for range 2 {
		r, err := a.Store.Load(ctx)
		if err != nil {
			return auth.Secrets{}, err
		}
		if sec, err = r.Secrets(a.ExtraPrevious); err != nil {
			return auth.Secrets{}, err
		}
		a.version = r.Version
		in := a.Instance
		in.RingVersion = r.Version
		if err := a.Store.Heartbeat(ctx, in, a.now()); err != nil {
			return auth.Secrets{}, err
		}
	}
	return sec, nil
}

// Version is the ring version this instance has installed.
func (a *Agent) Version() int64 { return a.version }

// Run follows the ring until ctx ends, then removes the instance from the registry.
func (a *Agent) Run(ctx context.Context) {
	if a.unsub != nil {
		defer a.unsub()
	}
	defer func() {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := a.Store.Leave(lctx, a.Instance.ID); err != nil {
			a.Log.Warn("leaving the instance registry failed", "err", err)
		}
	}()
	t := time.NewTicker(a.Poll)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.sub:
		}
		if err := a.Sync(ctx); err != nil && ctx.Err() == nil {
			fails++
			if fails == 1 || fails%60 == 0 {
				a.Log.Error("key ring: reload failed; keeping the keys in force", "err", err, "consecutive_failures", fails)
			}
			continue
		}
		fails = 0
	}
}

// Sync reloads the ring, installs and acknowledges a new version, heartbeats, and promotes what is
// ready.
func (a *Agent) Sync(ctx context.Context) error {
	r, err := a.Store.Load(ctx)
	if err != nil {
		return err
	}
	changed := r.Version != a.version
	if changed {
		sec, err := r.Secrets(a.ExtraPrevious)
		if err != nil {
			return err
		}
		if err := a.Install(sec); err != nil {
			return fmt.Errorf("keyring: install: %w", err)
		}
		a.Log.Info("key ring: keys installed", "version", r.Version, "keys", describe(r))
		a.version = r.Version
	}
	in := a.Instance
	in.RingVersion = a.version
	if err := a.Store.Heartbeat(ctx, in, a.now()); err != nil {
		return err
	}
	if changed && a.Notifier != nil && len(r.Pending()) > 0 {
		// The acknowledgement: whoever can promote now hears it at once.
		if err := a.Notifier.Publish(ctx, notify.Keys, "ack "+a.Instance.ID+" "+strconv.FormatInt(a.version, 10)); err != nil {
			a.Log.Warn("key ring: publishing the acknowledgement failed; promotion waits for the next poll", "err", err)
		}
	}
	if len(r.Pending()) == 0 {
		return nil
	}
	return a.promote(ctx)
}

func (a *Agent) promote(ctx context.Context) error {
	_, done, err := a.Store.Promote(ctx, a.now(), a.Grace, Liveness(a.Poll), a.Keep)
	if err != nil {
		return err
	}
	if len(done) == 0 {
		return nil
	}
	for _, k := range done {
		a.Log.Info("key ring: key promoted; it signs from now on", "kind", string(k.Kind), "fingerprint", k.Fingerprint,
			"accepted_for", a.now().Sub(k.CreatedAt).String())
	}
	if a.Notifier != nil {
		if err := a.Notifier.Publish(ctx, notify.Keys, "promoted"); err != nil {
			return err
		}
	}
	return a.Sync(ctx)
}

// describe lists a ring's keys by kind, state and fingerprint (for logs: never a secret).
func describe(r *Ring) []string {
	out := make([]string, 0, len(r.Keys))
	for _, k := range r.Keys {
		out = append(out, string(k.Kind)+"/"+string(k.State)+"/"+k.Fingerprint)
	}
	return out
}

// Describe is describe for callers outside the package (the CLI).
func Describe(r *Ring) []string { return describe(r) }

// WaitPromoted promotes (like an instance would) until the keys pending in r are current, or ctx
// ends. It is what `gatehouse keys rotate` runs after publishing a key.
func WaitPromoted(ctx context.Context, st *Store, n notify.Notifier, fingerprints []string, grace, poll, keep time.Duration, now func() time.Time) (*Ring, error) {
	var sub <-chan string
	if n != nil {
		var unsub func()
		sub, unsub = n.Subscribe(notify.Keys)
		defer unsub()
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		r, _, err := st.Promote(ctx, now(), grace, Liveness(poll), keep)
		if err != nil {
			return nil, err
		}
		pending := false
		for _, p := range r.Pending() {
			for _, fp := range fingerprints {
				if p.Fingerprint == fp {
					pending = true
				}
			}
		}
		if !pending {
			if n != nil {
				if err := n.Publish(ctx, notify.Keys, "promoted"); err != nil {
					return r, err
				}
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ErrNotPromoted
		case <-t.C:
		case <-sub:
		}
	}
}
