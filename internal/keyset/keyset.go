package keyset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults for Config.
const (
	DefaultFetchTimeout          = 10 * time.Second
	DefaultMinRefresh            = 5 * time.Minute
	DefaultMaxRefresh            = 24 * time.Hour
	DefaultRefresh               = time.Hour // when the provider sends no freshness information
	DefaultForcedRefreshInterval = 30 * time.Second
	DefaultNegativeTTL           = 15 * time.Second
	DefaultMaxStale              = 48 * time.Hour
	DefaultRetryMin              = 15 * time.Second
	DefaultRetryMax              = 5 * time.Minute
)

// negativeCap bounds the negative cache; ids longer than negativeMaxID are not cached.
const (
	negativeCap   = 1024
	negativeMaxID = 256
)

// Errors returned by lookups (wrapped; test with errors.Is).
var (
	// ErrUnknownKey: no key with this id in the current set.
	ErrUnknownKey = errors.New("keyset: unknown key id")
	// ErrUnavailable: there is no usable set — never fetched successfully, or the last
	// good set is older than MaxStale (fail closed).
	ErrUnavailable = errors.New("keyset: provider keys unavailable")
	// ErrRateLimited is the cause attached to ErrUnknownKey when a forced refresh
	// was needed but refused by the rate limit.
	ErrRateLimited = errors.New("keyset: forced refresh rate limited")
)

// Config configures a Set. Zero durations take the defaults above.
type Config struct {
	// Issuer names the provider in logs and metrics (e.g. "https://accounts.google.com").
	Issuer string
	// URL is the jwks_uri (or Google's v1 certs URL). http or https.
	URL string
	// Format of the document at URL; FormatAuto sniffs it.
	Format Format
	// Client performs fetches; default NewHTTPClient(DefaultConnectTimeout, DefaultReadTimeout).
	Client *http.Client
	// MaxBodyBytes caps the document size (default 1 MiB).
	MaxBodyBytes int64
	// FetchTimeout bounds one fetch, including the body (default 10 s). Fetches run
	// on a detached context so that one caller's cancellation does not fail the
	// fetch other callers are waiting on.
	FetchTimeout time.Duration
	// MinRefresh and MaxRefresh clamp the lifetime announced by the provider
	// (Cache-Control max-age / Expires / Age); defaults 5 min and 24 h.
	MinRefresh, MaxRefresh time.Duration
	// DefaultRefresh is the lifetime used when the provider announces none (1 h).
	DefaultRefresh time.Duration
	// ForcedRefreshInterval is the minimum time between two forced (unknown key)
	// fetches; default 30 s.
	ForcedRefreshInterval time.Duration
	// NegativeTTL is how long a key id proven absent by a refresh is answered
	// "unknown" without a new refresh; default 15 s.
	NegativeTTL time.Duration
	// MaxStale is how long after the last successful fetch the set may still be
	// used while the provider is failing; afterwards lookups fail closed (48 h).
	MaxStale time.Duration
	// RetryMin and RetryMax bound the exponential back-off of background fetches
	// after a failure (15 s, 5 min).
	RetryMin, RetryMax time.Duration
	// Clock defaults to SystemClock.
	Clock Clock
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Observer defaults to NopObserver.
	Observer Observer
}

func (c *Config) resolve() error {
	if c.Issuer == "" {
		return errors.New("keyset: Issuer is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("keyset: %s: URL must be an absolute http(s) URL", c.Issuer)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.FetchTimeout, DefaultFetchTimeout)
	def(&c.MinRefresh, DefaultMinRefresh)
	def(&c.MaxRefresh, DefaultMaxRefresh)
	def(&c.DefaultRefresh, DefaultRefresh)
	def(&c.ForcedRefreshInterval, DefaultForcedRefreshInterval)
	def(&c.NegativeTTL, DefaultNegativeTTL)
	def(&c.MaxStale, DefaultMaxStale)
	def(&c.RetryMin, DefaultRetryMin)
	def(&c.RetryMax, DefaultRetryMax)
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MinRefresh > c.MaxRefresh {
		return fmt.Errorf("keyset: %s: MinRefresh %v exceeds MaxRefresh %v", c.Issuer, c.MinRefresh, c.MaxRefresh)
	}
	if c.RetryMin > c.RetryMax {
		return fmt.Errorf("keyset: %s: RetryMin %v exceeds RetryMax %v", c.Issuer, c.RetryMin, c.RetryMax)
	}
	if c.Client == nil {
		c.Client = NewHTTPClient(DefaultConnectTimeout, DefaultReadTimeout)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	return nil
}

// KeyID identifies the key a token names: its "kid" header, or its "x5t" header
// (Entra) when kid is absent or not found.
type KeyID struct {
	Kid string
	X5t string
}

func (id KeyID) cacheKey() string {
	if id.Kid != "" {
		return "k:" + id.Kid
	}
	return "t:" + id.X5t
}

// snapshot is an immutable, complete key set; replaced as a whole.
type snapshot struct {
	byKid      map[string]*Key
	byThumb    map[string]*Key
	keys       []*Key
	fetchedAt  time.Time // Set clock at the end of the successful fetch
	refreshAt  time.Time // background refresh is due (ahead of freshUntil)
	freshUntil time.Time // end of the provider-announced lifetime (clamped)
}

func newSnapshot(keys []*Key, now time.Time, life time.Duration) *snapshot {
	s := &snapshot{
		byKid:      make(map[string]*Key, len(keys)),
		byThumb:    make(map[string]*Key, len(keys)),
		keys:       keys,
		fetchedAt:  now,
		refreshAt:  now.Add(life * 3 / 4),
		freshUntil: now.Add(life),
	}
	for _, k := range keys {
		if k.ID != "" {
			s.byKid[k.ID] = k
		}
		if k.Thumbprint != "" {
			s.byThumb[k.Thumbprint] = k
		}
	}
	return s
}

func (s *snapshot) find(id KeyID) *Key {
	if id.Kid != "" {
		if k, ok := s.byKid[id.Kid]; ok {
			return k
		}
	}
	if id.X5t != "" {
		if k, ok := s.byThumb[id.X5t]; ok {
			return k
		}
	}
	return nil
}

// Set is the key cache of one issuer. It is safe for concurrent use; create it
// with New, start Run in a goroutine, and look keys up with Get.
type Set struct {
	cfg   Config
	log   *slog.Logger
	obs   Observer
	clock Clock

	cur     atomic.Pointer[snapshot]
	flights singleflight.Group
	closed  atomic.Bool // logged "stale limit exceeded" for the current outage

	mu          sync.Mutex
	lastForced  time.Time // start of the last forced fetch (rate limit)
	nextAttempt time.Time // when a background fetch is next due
	failures    int       // consecutive failed fetches
	negative    map[string]time.Time
}

// New validates cfg and returns a Set. It does not fetch: call Run (or Refresh).
// An unreachable provider therefore never fails start-up.
func New(cfg Config) (*Set, error) {
	if err := cfg.resolve(); err != nil {
		return nil, err
	}
	return &Set{
		cfg:      cfg,
		log:      cfg.Logger.With("issuer", cfg.Issuer),
		obs:      cfg.Observer,
		clock:    cfg.Clock,
		negative: make(map[string]time.Time),
	}, nil
}

// Issuer returns the configured issuer label.
func (s *Set) Issuer() string { return s.cfg.Issuer }

// Get returns the key named by id. On a miss, if refresh is true (the caller has
// checked that the token is plausibly ours: configured issuer, our audience, not
// expired), it joins or starts one coalesced forced fetch — subject to the rate
// limit and the negative cache — and looks again. ctx bounds only this caller's
// wait, not the shared fetch.
func (s *Set) Get(ctx context.Context, id KeyID, refresh bool) (*Key, error) {
	now := s.clock.Now()
	snap := s.cur.Load()
	if snap != nil && s.fresh(snap, now) {
		if k := snap.find(id); k != nil {
			if !now.Before(snap.freshUntil) {
				s.kick(now)
			}
			return k, nil
		}
	}
	if id.Kid == "" && id.X5t == "" {
		return nil, s.miss(snap, now, MissUnknown, errors.New("token names no key"))
	}
	if !refresh {
		return nil, s.miss(snap, now, MissUnknown, nil)
	}
	if snap != nil && s.isNegative(id, now) {
		return nil, s.miss(snap, now, MissNegative, nil)
	}
	var cause error
	for attempt := 0; attempt < 2; attempt++ {
		// Another caller's fetch may have installed the key since we looked.
		if latest := s.cur.Load(); latest != snap {
			snap = latest
			if k := snap.find(id); k != nil && s.fresh(snap, s.clock.Now()) {
				s.obs.KeyMiss(s.cfg.Issuer, MissRefreshed)
				return k, nil
			}
		}
		kind, err := s.join(ctx, FetchForced)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("keyset: %s: waiting for key refresh: %w", s.cfg.Issuer, ctxErr)
		}
		cause = err
		now = s.clock.Now()
		snap = s.cur.Load()
		if snap != nil && s.fresh(snap, now) {
			if k := snap.find(id); k != nil {
				s.obs.KeyMiss(s.cfg.Issuer, MissRefreshed)
				return k, nil
			}
		}
		// Joined a background fetch that succeeded without the key: one more
		// (forced, no-cache) attempt. Otherwise stop.
		if err != nil || kind == FetchForced {
			break
		}
	}
	if cause == nil {
		s.addNegative(id, now)
	}
	outcome := MissUnknown
	if errors.Is(cause, ErrRateLimited) {
		outcome = MissRateLimited
	}
	return nil, s.miss(snap, now, outcome, cause)
}

// Keys returns the keys of the current set (for tokens that name no key). When
// there is no usable set and refresh is true, it joins or starts a forced fetch.
func (s *Set) Keys(ctx context.Context, refresh bool) ([]*Key, error) {
	now := s.clock.Now()
	snap := s.cur.Load()
	if (snap == nil || !s.fresh(snap, now)) && refresh {
		if _, err := s.join(ctx, FetchForced); err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("keyset: %s: waiting for key refresh: %w", s.cfg.Issuer, ctx.Err())
		}
		now, snap = s.clock.Now(), s.cur.Load()
	}
	if snap == nil || !s.fresh(snap, now) {
		return nil, s.miss(snap, now, MissUnavailable, nil)
	}
	if !now.Before(snap.freshUntil) {
		s.kick(now)
	}
	return slices.Clone(snap.keys), nil
}

// fresh reports whether snap is still within the hard stale limit.
func (s *Set) fresh(snap *snapshot, now time.Time) bool {
	return now.Sub(snap.fetchedAt) <= s.cfg.MaxStale
}

func (s *Set) miss(snap *snapshot, now time.Time, outcome MissOutcome, cause error) error {
	if snap == nil || !s.fresh(snap, now) {
		if snap != nil {
			s.obs.StaleLimitExceeded(s.cfg.Issuer)
			if s.closed.CompareAndSwap(false, true) {
				s.log.Error("provider keys are older than the hard stale limit; failing closed",
					"fetched_at", snap.fetchedAt, "max_stale", s.cfg.MaxStale)
			}
		}
		s.obs.KeyMiss(s.cfg.Issuer, MissUnavailable)
		if cause != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnavailable, s.cfg.Issuer, cause)
		}
		return fmt.Errorf("%w: %s", ErrUnavailable, s.cfg.Issuer)
	}
	s.obs.KeyMiss(s.cfg.Issuer, outcome)
	if cause != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnknownKey, s.cfg.Issuer, cause)
	}
	if outcome == MissNegative {
		return fmt.Errorf("%w: %s: absent from a set fetched moments ago", ErrUnknownKey, s.cfg.Issuer)
	}
	return fmt.Errorf("%w: %s", ErrUnknownKey, s.cfg.Issuer)
}

func (s *Set) isNegative(id KeyID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.negative[id.cacheKey()]
	return ok && now.Before(exp)
}

func (s *Set) addNegative(id KeyID, now time.Time) {
	key := id.cacheKey()
	if len(key) > negativeMaxID {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.negative) >= negativeCap {
		for k, exp := range s.negative {
			if !now.Before(exp) {
				delete(s.negative, k)
			}
		}
		if len(s.negative) >= negativeCap {
			return
		}
	}
	s.negative[key] = now.Add(s.cfg.NegativeTTL)
}

// Refresh fetches the set now (coalesced with any fetch in progress) and waits for
// the result or ctx.
func (s *Set) Refresh(ctx context.Context) error {
	_, err := s.join(ctx, FetchBackground)
	return err
}

// RefreshIfDue fetches the set if the background refresh is due (ahead of the
// announced lifetime, or per the back-off after a failure). It reports whether a
// fetch was due. Run calls it; tests call it directly with a fake clock.
func (s *Set) RefreshIfDue(ctx context.Context) (bool, error) {
	s.mu.Lock()
	due := !s.clock.Now().Before(s.nextAttempt)
	s.mu.Unlock()
	if !due {
		return false, nil
	}
	_, err := s.join(ctx, FetchBackground)
	return true, err
}

// NextRefresh returns when RefreshIfDue will next fetch.
func (s *Set) NextRefresh() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextAttempt
}

// Run keeps the set fresh until ctx is done: it fetches at once, then whenever
// RefreshIfDue says so, sleeping on the Set's Clock in between.
func (s *Set) Run(ctx context.Context) {
	for {
		_, _ = s.RefreshIfDue(ctx) // failures are logged and observed by the fetch
		wait := s.NextRefresh().Sub(s.clock.Now())
		if wait < time.Second {
			wait = time.Second // a forced fetch may hold the flight; never spin
		}
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(wait):
		}
	}
}

// kick starts a background fetch without waiting, when a lookup finds the set past
// its announced lifetime (Run not running, or the provider failing) and a fetch is
// due per the back-off.
func (s *Set) kick(now time.Time) {
	s.mu.Lock()
	due := !now.Before(s.nextAttempt)
	if due {
		s.nextAttempt = now.Add(s.cfg.RetryMin) // the fetch's outcome overwrites this
	}
	s.mu.Unlock()
	if due {
		s.flights.DoChan("fetch", func() (any, error) { return s.fetch(FetchBackground) })
	}
}

// join joins the fetch in progress, or starts one of the given kind, and waits for
// it or ctx. It returns the kind of the fetch that ran.
func (s *Set) join(ctx context.Context, kind FetchKind) (FetchKind, error) {
	ch := s.flights.DoChan("fetch", func() (any, error) { return s.fetch(kind) })
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-ch:
		k, _ := r.Val.(FetchKind)
		return k, r.Err
	}
}

// fetch runs inside the single flight: rate limit (forced only), download, parse,
// swap, schedule, log, observe.
func (s *Set) fetch(kind FetchKind) (FetchKind, error) {
	start := s.clock.Now()
	if kind == FetchForced {
		s.mu.Lock()
		limited := !s.lastForced.IsZero() && start.Sub(s.lastForced) < s.cfg.ForcedRefreshInterval
		if !limited {
			s.lastForced = start
		}
		s.mu.Unlock()
		if limited {
			s.obs.ForcedRefreshRateLimited(s.cfg.Issuer)
			return kind, ErrRateLimited
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.FetchTimeout)
	defer cancel()
	wall := time.Now()

	var (
		keys    []*Key
		skipped []Skipped
		life    time.Duration
	)
	body, hdr, err := s.download(ctx, kind == FetchForced)
	if err == nil {
		keys, skipped, err = ParseDocument(body, s.cfg.Format)
	}
	now := s.clock.Now()
	if err == nil {
		life = lifetime(hdr, now, s.cfg.DefaultRefresh, s.cfg.MinRefresh, s.cfg.MaxRefresh)
	}
	ev := FetchEvent{Issuer: s.cfg.Issuer, Kind: kind, At: now, Duration: time.Since(wall), Skipped: len(skipped), Err: err}
	for _, sk := range skipped {
		s.log.Warn("skipping unusable provider key", "kid", sk.ID, "reason", sk.Reason)
	}
	if err != nil {
		s.mu.Lock()
		s.failures++
		failures := s.failures
		s.nextAttempt = now.Add(s.backoff(failures))
		s.mu.Unlock()
		last := s.cur.Load()
		attrs := []any{"kind", kind, "error", err, "consecutive_failures", failures}
		if last != nil {
			attrs = append(attrs, "serving_set_fetched_at", last.fetchedAt, "fails_closed_at", last.fetchedAt.Add(s.cfg.MaxStale))
		}
		s.log.Warn("provider key set fetch failed", attrs...)
		s.obs.FetchDone(ev)
		return kind, fmt.Errorf("keyset: %s: fetch: %w", s.cfg.Issuer, err)
	}
	snap := newSnapshot(keys, now, life)
	old := s.cur.Swap(snap)
	s.closed.Store(false)
	s.mu.Lock()
	s.failures = 0
	s.nextAttempt = snap.refreshAt
	s.mu.Unlock()
	ev.Keys = len(keys)
	if added, removed := diff(old, snap); old == nil || len(added)+len(removed) > 0 {
		s.log.Info("provider key set updated", "kind", kind, "keys", len(keys), "added", added, "removed", removed, "lifetime", life)
	} else {
		s.log.Debug("provider key set refreshed", "kind", kind, "keys", len(keys), "lifetime", life)
	}
	s.obs.FetchDone(ev)
	return kind, nil
}

func (s *Set) backoff(failures int) time.Duration {
	d := s.cfg.RetryMin
	for i := 1; i < failures && d < s.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.RetryMax)
}

func diff(old, cur *snapshot) (added, removed []string) {
	ids := func(s *snapshot) map[string]bool {
		m := map[string]bool{}
		if s != nil {
			for _, k := range s.keys {
				m[k.ID+"|"+k.Thumbprint] = true
			}
		}
		return m
	}
	o, c := ids(old), ids(cur)
	for id := range c {
		if !o[id] {
			added = append(added, id)
		}
	}
	for id := range o {
		if !c[id] {
			removed = append(removed, id)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}
