// Package metrics defines Gatehouse's Prometheus metrics on a registry of its own (no global state):
// requests by route, method and status, their latency, requests in flight, and authentication
// failures by reason. Other packages register their collectors on Registry.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors.
type Metrics struct {
	Registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	inFlight     prometheus.Gauge
	authFailures *prometheus.CounterVec
	panics       prometheus.Counter
	ops          *ops // ops.go
}

// New creates the collectors on a new registry, with Go runtime and process collectors.
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_auth_failures_total", Help: "Rejected credentials by reason.",
		}, []string{"reason"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_http_panics_total", Help: "Handler panics recovered into a 500.",
		}),
		ops: newOps(),
	}
	reg.MustRegister(m.ops.collectors()...)
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_build_info", Help: "Gatehouse build.", ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	reg.MustRegister(m.requests, m.latency, m.inFlight, m.authFailures, m.panics, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Observe records a finished request.
func (m *Metrics) Observe(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, normMethod(method), strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// InFlight tracks requests being served.
func (m *Metrics) InFlight(delta float64) { m.inFlight.Add(delta) }

// AuthFailure counts a rejected credential.
func (m *Metrics) AuthFailure(reason string) { m.authFailures.WithLabelValues(reason).Inc() }

// Panic counts a recovered panic.
func (m *Metrics) Panic() { m.panics.Inc() }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// normMethod keeps the label set bounded whatever methods clients invent.
func normMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "OTHER"
}
