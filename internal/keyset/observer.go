package keyset

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FetchKind says why a key set was fetched.
type FetchKind string

// Fetch kinds.
const (
	// FetchBackground is a scheduled refresh (Run, RefreshIfDue, Refresh), or a
	// refresh started by a lookup on a set that is past its announced lifetime.
	FetchBackground FetchKind = "background"
	// FetchForced is a refresh caused by an unknown key id; it is rate limited and
	// sent with Cache-Control: no-cache.
	FetchForced FetchKind = "forced"
)

// MissOutcome classifies a lookup that did not find its key in the cached set.
type MissOutcome string

// Miss outcomes.
const (
	// MissRefreshed: the key was found after a (possibly shared) refresh.
	MissRefreshed MissOutcome = "found_after_refresh"
	// MissUnknown: the key is not in the set, even after a refresh or when the
	// caller did not allow one.
	MissUnknown MissOutcome = "unknown"
	// MissNegative: the key was proven absent by a recent refresh (negative cache).
	MissNegative MissOutcome = "negative_cached"
	// MissRateLimited: a refresh was needed but the forced-refresh budget was spent.
	MissRateLimited MissOutcome = "rate_limited"
	// MissUnavailable: no usable set (never fetched, or older than MaxStale).
	MissUnavailable MissOutcome = "unavailable"
)

// FetchEvent describes one completed fetch attempt.
type FetchEvent struct {
	Issuer   string
	Kind     FetchKind
	At       time.Time     // Set clock time when the fetch finished
	Duration time.Duration // wall time of the HTTP exchange and parsing
	Keys     int           // usable keys installed (0 on error)
	Skipped  int           // keys skipped as unusable or unsupported
	Err      error         // nil on success
}

// Observer receives metrics events from a Set. Implementations must be safe for
// concurrent use and fast: they are called on the request path for misses.
type Observer interface {
	FetchDone(FetchEvent)
	ForcedRefreshRateLimited(issuer string)
	KeyMiss(issuer string, outcome MissOutcome)
	// StaleLimitExceeded is called when a lookup finds the last good set older than
	// MaxStale and fails closed.
	StaleLimitExceeded(issuer string)
}

// NopObserver discards all events.
type NopObserver struct{}

// FetchDone implements Observer.
func (NopObserver) FetchDone(FetchEvent) {}

// ForcedRefreshRateLimited implements Observer.
func (NopObserver) ForcedRefreshRateLimited(string) {}

// KeyMiss implements Observer.
func (NopObserver) KeyMiss(string, MissOutcome) {}

// StaleLimitExceeded implements Observer.
func (NopObserver) StaleLimitExceeded(string) {}

// PrometheusObserver exports Set events as Prometheus metrics. One instance can be
// shared by all Sets of a process; the issuer is a label (bounded: configured
// issuers only).
type PrometheusObserver struct {
	fetches     *prometheus.CounterVec
	fetchDur    *prometheus.HistogramVec
	keys        *prometheus.GaugeVec
	skipped     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	limited     *prometheus.CounterVec
	misses      *prometheus.CounterVec
	stale       *prometheus.CounterVec
}

// NewPrometheusObserver creates the metrics and registers them with reg.
func NewPrometheusObserver(reg prometheus.Registerer) (*PrometheusObserver, error) {
	o := &PrometheusObserver{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_keyset_fetches_total",
			Help: "Provider key set fetches by issuer, kind (background, forced) and result (ok, error).",
		}, []string{"issuer", "kind", "result"}),
		fetchDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_keyset_fetch_duration_seconds",
			Help:    "Duration of provider key set fetches.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"issuer", "kind"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_keyset_keys",
			Help: "Usable keys in the last successfully fetched set.",
		}, []string{"issuer"}),
		skipped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_keyset_skipped_keys",
			Help: "Keys skipped as unusable or unsupported in the last successfully fetched set.",
		}, []string{"issuer"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_keyset_last_success_timestamp_seconds",
			Help: "Unix time of the last successful key set fetch.",
		}, []string{"issuer"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_keyset_forced_refresh_rate_limited_total",
			Help: "Forced (unknown key id) refreshes refused by the per-issuer rate limit.",
		}, []string{"issuer"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_keyset_key_misses_total",
			Help: "Key lookups that missed the cached set, by outcome.",
		}, []string{"issuer", "outcome"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_keyset_stale_limit_exceeded_total",
			Help: "Lookups refused because the last good set is older than the hard stale limit.",
		}, []string{"issuer"}),
	}
	for _, c := range []prometheus.Collector{o.fetches, o.fetchDur, o.keys, o.skipped, o.lastSuccess, o.limited, o.misses, o.stale} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// FetchDone implements Observer.
func (o *PrometheusObserver) FetchDone(e FetchEvent) {
	result := "ok"
	if e.Err != nil {
		result = "error"
	}
	o.fetches.WithLabelValues(e.Issuer, string(e.Kind), result).Inc()
	o.fetchDur.WithLabelValues(e.Issuer, string(e.Kind)).Observe(e.Duration.Seconds())
	if e.Err == nil {
		o.keys.WithLabelValues(e.Issuer).Set(float64(e.Keys))
		o.skipped.WithLabelValues(e.Issuer).Set(float64(e.Skipped))
		o.lastSuccess.WithLabelValues(e.Issuer).Set(float64(e.At.UnixNano()) / 1e9)
	}
}

// ForcedRefreshRateLimited implements Observer.
func (o *PrometheusObserver) ForcedRefreshRateLimited(issuer string) {
	o.limited.WithLabelValues(issuer).Inc()
}

// KeyMiss implements Observer.
func (o *PrometheusObserver) KeyMiss(issuer string, outcome MissOutcome) {
	o.misses.WithLabelValues(issuer, string(outcome)).Inc()
}

// StaleLimitExceeded implements Observer.
func (o *PrometheusObserver) StaleLimitExceeded(issuer string) {
	o.stale.WithLabelValues(issuer).Inc()
}
