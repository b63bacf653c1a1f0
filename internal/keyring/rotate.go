package keyring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/signing"
)

// RotateOptions tune RotateAndWait.
type RotateOptions struct {
	Grace, Poll time.Duration // key_ring.grace and key_ring.poll_interval
	Keep        time.Duration // how long retired keys verify
	Notifier    notify.Notifier
	Now         func() time.Time
	// SigningAlg and SigningLead are tokens.algorithm and tokens.jwks_max_age: a rotated signing key
	// is published that long before it signs.
	SigningAlg  string
	SigningLead time.Duration
}

// RotateResult describes a finished rotation. Secret is the new key for the master and application
// keys (the operator needs them), empty for the system key.
type RotateResult struct {
	Kind        Kind
	Previous    string // fingerprint of the key replaced
	New         Key
	Ring        *Ring
	Live        int // live instances when the rotation started
	Took        time.Duration
	Secret      string
	WaitedForIt bool // the key was published as accepted and promoted after the acknowledgements
}

// ConfiguredKeyError refuses a rotation that a running instance would not follow: it was started with
// that key in its configuration, which it checks against the ring at every start.
type ConfiguredKeyError struct {
	Instance Instance
	Kind     Kind
}

func (e *ConfiguredKeyError) Error() string {
	return fmt.Sprintf("instance %s (%s) was started with the %s key from its configuration, which would make it refuse to restart after this rotation: remove it from that instance's configuration (the ring keeps the key), restart it, and rotate again",
		e.Instance.ID, e.Instance.Host, e.Kind)
}

// ErrNotPromoted reports a rotation whose new key is published but not yet signing when ctx ended.
var ErrNotPromoted = errors.New("keyring: the new key is published (every instance accepts it) but not yet signing; an instance promotes it within the grace period")

// rotateSigning publishes a new signing key and returns without waiting for it to sign: that happens
// after o.SigningLead (the JWKS cache lifetime), when an instance promotes it.
func (s *Store) rotateSigning(ctx context.Context, live []Instance, o RotateOptions, start time.Time) (*RotateResult, error) {
	before, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	prev, _ := before.Current(keys.Signing)
	alg := o.SigningAlg
	if alg == "" {
		alg = prev.Alg
	}
	if alg == "" {
		alg = signing.ES256
	}
	r, added, err := s.RotateSigning(ctx, alg, o.SigningLead, start, o.Keep)
	if err != nil {
		return nil, err
	}
	if o.Notifier != nil {
		_ = o.Notifier.Publish(ctx, notify.Keys, "rotated")
	}
	return &RotateResult{Kind: keys.Signing, Previous: prev.Fingerprint, New: added, Live: len(live), Ring: r, Took: o.Now().Sub(start)}, nil
}

// RotateAndWait rotates a key of the ring from one place (the CLI or the admin API): it refuses when a
// live instance has that key in its configuration, publishes the new key, notifies every instance,
// and for master and system keys waits until it is promoted (every live instance acknowledged it, or
// the grace period passed). ctx bounds the wait.
func (s *Store) RotateAndWait(ctx context.Context, k Kind, revokePrevious bool, o RotateOptions) (*RotateResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	start := o.Now()
	live, err := s.Live(ctx, start, Liveness(o.Poll))
	if err != nil {
		return nil, err
	}
	if k == keys.Signing {
		return s.rotateSigning(ctx, live, o, start)
	}
	for _, in := range live {
		for _, ck := range in.ConfigKeys {
			if ck == k {
				return nil, &ConfiguredKeyError{Instance: in, Kind: k}
			}
		}
	}
	before, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	prev, _ := before.Current(k)
	r, added, err := s.Rotate(ctx, k, revokePrevious, start, o.Keep)
	if err != nil {
		return nil, err
	}
	res := &RotateResult{Kind: k, Previous: prev.Fingerprint, New: added, Live: len(live)}
	if o.Notifier != nil {
		// A lost notification only delays the instances to their next poll.
		_ = o.Notifier.Publish(ctx, notify.Keys, "rotated")
	}
	if added.State == Accepted {
		res.WaitedForIt = true
		if r, err = WaitPromoted(ctx, s, o.Notifier, []string{added.Fingerprint}, o.Grace, o.Poll, o.Keep, o.Now); err != nil {
			if ctx.Err() != nil {
				return nil, ErrNotPromoted
			}
			return nil, err
		}
	}
	res.Ring, res.Took = r, o.Now().Sub(start)
	if k != keys.System {
		for _, x := range r.Keys {
			if x.Kind == k && x.Fingerprint == added.Fingerprint {
				res.Secret = r.secret(x)
			}
		}
	}
	return res, nil
}
