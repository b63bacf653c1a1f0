package metrics

import (
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operational collectors: the database pool and availability, scheduled jobs, server scripts and
// login throttling.

// dbCollector reads sql.DBStats at scrape time.
type dbCollector struct {
	stats func() sql.DBStats
	up    func() bool
	descs map[string]*prometheus.Desc
}

func newDBCollector(stats func() sql.DBStats, up func() bool) *dbCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &dbCollector{stats: stats, up: up, descs: map[string]*prometheus.Desc{
		"max":       d("gatehouse_db_max_open_connections", "Largest number of open database connections (database_pool.max_conns)."),
		"open":      d("gatehouse_db_open_connections", "Open database connections, in use and idle."),
		"in_use":    d("gatehouse_db_in_use_connections", "Database connections in use."),
		"idle":      d("gatehouse_db_idle_connections", "Idle database connections."),
		"waits":     d("gatehouse_db_wait_count_total", "Times a request waited for a free connection (the pool was exhausted)."),
		"wait_time": d("gatehouse_db_wait_duration_seconds_total", "Total time spent waiting for a free connection."),
		"idle_cl":   d("gatehouse_db_max_idle_closed_total", "Connections closed because of max_idle_conns."),
		"idle_t":    d("gatehouse_db_max_idle_time_closed_total", "Connections closed because of conn_max_idle_time."),
		"life":      d("gatehouse_db_max_lifetime_closed_total", "Connections closed because of conn_max_lifetime."),
		"up":        d("gatehouse_db_up", "1 while the database is reachable, 0 during an outage (503s)."),
	}}
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	g := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.GaugeValue, v) }
	n := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.CounterValue, v) }
	g("max", float64(s.MaxOpenConnections))
	g("open", float64(s.OpenConnections))
	g("in_use", float64(s.InUse))
	g("idle", float64(s.Idle))
	n("waits", float64(s.WaitCount))
	n("wait_time", s.WaitDuration.Seconds())
	n("idle_cl", float64(s.MaxIdleClosed))
	n("idle_t", float64(s.MaxIdleTimeClosed))
	n("life", float64(s.MaxLifetimeClosed))
	up := 1.0
	if c.up != nil && !c.up() {
		up = 0
	}
	g("up", up)
}

// Database registers the pool's statistics (read at scrape time) and its availability (up reports
// false during an outage; nil: always up).
func (m *Metrics) Database(stats func() sql.DBStats, up func() bool) {
	m.Registry.MustRegister(newDBCollector(stats, up))
}

// ReadPipelines registers the counters of pipelined PostgreSQL reads (store.DB.ReadPipelineStats,
// read at scrape time): their ratio is the mean number of reads per round trip.
func (m *Metrics) ReadPipelines(stats func() (pipelines, reads int64)) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_db_read_pipelines_total",
		Help: "Pipelines of client reads sent to PostgreSQL (database_pool.read_pipelines)."},
		func() float64 { p, _ := stats(); return float64(p) }))
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_db_pipelined_reads_total",
		Help: "Client reads sent to PostgreSQL in those pipelines."},
		func() float64 { _, r := stats(); return float64(r) }))
}

// ops holds the job, script and throttling collectors.
type ops struct {
	jobRuns       *prometheus.CounterVec
	jobDuration   *prometheus.HistogramVec
	scriptRuns    *prometheus.CounterVec
	scriptTime    *prometheus.HistogramVec
	interrupts    *prometheus.CounterVec
	throttled     *prometheus.CounterVec
	dbUnavailable prometheus.Counter
}

func newOps() *ops {
	return &ops{
		jobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_job_runs_total", Help: "Scheduled job runs by job and outcome (ok, failed, timeout, skipped).",
		}, []string{"job", "outcome"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_job_duration_seconds", Help: "Duration of job runs that ran.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 600},
		}, []string{"job"}),
		scriptRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_script_invocations_total", Help: "Server-script invocations by kind (table, api, job, other) and outcome (ok, error, timeout, memory).",
		}, []string{"kind", "outcome"}),
		scriptTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_script_duration_seconds", Help: "Server-script invocation time by kind.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		interrupts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_script_interrupts_total", Help: "Script invocations stopped by the time budget or the memory watchdog.",
		}, []string{"reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_login_throttled_total", Help: "Login and account requests refused by brute-force throttling (429), by route.",
		}, []string{"route"}),
		dbUnavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_db_unavailable_requests_total", Help: "Requests answered 503 because the database was unreachable.",
		}),
	}
}

func (o *ops) collectors() []prometheus.Collector {
	return []prometheus.Collector{o.jobRuns, o.jobDuration, o.scriptRuns, o.scriptTime, o.interrupts, o.throttled, o.dbUnavailable}
}

// JobHook is what the job scheduler reports to: one call per run or skipped claim. outcome is ok,
// failed, timeout or skipped (d is 0 for skipped).
type JobHook interface {
	JobRun(job string, d time.Duration, outcome string)
}

// JobRun records a job run (Metrics implements JobHook).
func (m *Metrics) JobRun(job string, d time.Duration, outcome string) {
	m.ops.jobRuns.WithLabelValues(job, outcome).Inc()
	if outcome != "skipped" {
		m.ops.jobDuration.WithLabelValues(job).Observe(d.Seconds())
	}
}

// ScriptRun records one script invocation. kind is table, api, job or other; outcome ok, error,
// timeout or memory (the last two also count as interrupts).
func (m *Metrics) ScriptRun(kind string, d time.Duration, outcome string) {
	m.ops.scriptRuns.WithLabelValues(kind, outcome).Inc()
	m.ops.scriptTime.WithLabelValues(kind).Observe(d.Seconds())
	if outcome == "timeout" || outcome == "memory" {
		m.ops.interrupts.WithLabelValues(outcome).Inc()
	}
}

// LoginThrottled counts a request refused by login throttling.
func (m *Metrics) LoginThrottled(route string) { m.ops.throttled.WithLabelValues(route).Inc() }

// DBUnavailable counts a request answered 503 during a database outage.
func (m *Metrics) DBUnavailable() { m.ops.dbUnavailable.Inc() }
