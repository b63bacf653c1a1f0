package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Push counts notifications through the outbox (it implements push.Observer): queued, sent with the
// latency from the send to the service's acceptance, failed by reason, retried by reason, and the
// registrations removed because the service said the device is gone.
type Push struct {
	queued  *prometheus.CounterVec
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	retried *prometheus.CounterVec
	removed *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// NewPush registers the push collectors on reg.
func NewPush(reg prometheus.Registerer) *Push {
	p := &Push{
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_push_queued_total", Help: "Notifications written to the outbox by this instance, by platform.",
		}, []string{"platform"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_push_sent_total", Help: "Notifications the push service accepted, by platform.",
		}, []string{"platform"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_push_failed_total", Help: "Notifications dropped, by platform and reason (the service's reason, unregistered, expired, attempts_exhausted).",
		}, []string{"platform", "reason"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_push_retried_total", Help: "Delivery attempts that failed and will be retried, by platform and reason.",
		}, []string{"platform", "reason"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_push_registrations_removed_total", Help: "Registrations removed because the push service reported the device gone, by platform.",
		}, []string{"platform"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_push_delivery_latency_seconds",
			Help:    "Time from the send to the push service's acceptance, retries included, by platform.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600},
		}, []string{"platform"}),
	}
	reg.MustRegister(p.queued, p.sent, p.failed, p.retried, p.removed, p.latency)
	return p
}

// Queued implements push.Observer.
func (p *Push) Queued(platform string, n int) { p.queued.WithLabelValues(platform).Add(float64(n)) }

// Sent implements push.Observer.
func (p *Push) Sent(platform string, latency time.Duration) {
	p.sent.WithLabelValues(platform).Inc()
	p.latency.WithLabelValues(platform).Observe(latency.Seconds())
}

// Failed implements push.Observer.
func (p *Push) Failed(platform, reason string) {
	p.failed.WithLabelValues(platform, label(reason)).Inc()
}

// Retried implements push.Observer.
func (p *Push) Retried(platform, reason string) {
	p.retried.WithLabelValues(platform, label(reason)).Inc()
}

// Removed implements push.Observer.
func (p *Push) Removed(platform string, n int) { p.removed.WithLabelValues(platform).Add(float64(n)) }

// label bounds a reason a remote service chose, so that it cannot grow the label space without end.
func label(reason string) string {
	if len(reason) > 40 {
		return reason[:40]
	}
	for i := 0; i < len(reason); i++ {
		c := reason[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "other"
		}
	}
	return reason
}
