package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Jobs counts scheduled-job runs by job and outcome (succeeded, failed, skipped, missed) and observes
// the duration of the runs that executed.
type Jobs struct {
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewJobs registers the job collectors on reg.
func NewJobs(reg prometheus.Registerer) *Jobs {
	j := &Jobs{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_job_ledger_runs_total", Help: "Job runs recorded in the job ledger by this instance, by job and outcome (succeeded, failed, skipped, missed).",
		}, []string{"job", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_job_run_duration_seconds",
			Help:    "Duration of job runs that executed on this instance, by job.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 600},
		}, []string{"job"}),
	}
	reg.MustRegister(j.runs, j.duration)
	return j
}

// Run records one run. d is zero for runs that did not execute (skipped, missed).
func (j *Jobs) Run(job, outcome string, d time.Duration) {
	j.runs.WithLabelValues(job, outcome).Inc()
	if d > 0 {
		j.duration.WithLabelValues(job).Observe(d.Seconds())
	}
}
