package store

import (
	"net/url"
	"strconv"
	"time"
)

// Pool sizes and bounds the connection pool (settings database_pool.*).
type Pool struct {
	MaxConns         int // 0: 10 on PostgreSQL, 8 on SQLite
	MaxIdleConns     int // 0: half of MaxConns
	ConnMaxLifetime  time.Duration
	ConnMaxIdleTime  time.Duration
	StatementTimeout time.Duration // PostgreSQL; 0: server default
	ConnectTimeout   time.Duration // PostgreSQL; applied unless the URL sets connect_timeout
	// ReadPipelines is how many PostgreSQL connections at most carry pipelined reads at once
	// (SetReadPipelines); 0: DefaultReadPipelines; negative: off.
	ReadPipelines int
}

// WithPool adds the pool's per-connection settings to a PostgreSQL URL: statement_timeout (a run-time
// parameter pgx sends at connect) and connect_timeout, each unless the URL already has it. Other URLs
// are returned unchanged.
func WithPool(dsn string, p Pool) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn
	}
	q := u.Query()
	if p.StatementTimeout > 0 && q.Get("statement_timeout") == "" {
		q.Set("statement_timeout", strconv.FormatInt(p.StatementTimeout.Milliseconds(), 10))
	}
	if p.ConnectTimeout > 0 && q.Get("connect_timeout") == "" {
		secs := int64((p.ConnectTimeout + time.Second - 1) / time.Second)
		q.Set("connect_timeout", strconv.FormatInt(secs, 10))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Configure applies the pool's limits.
func (db *DB) Configure(p Pool) {
	maxConns := p.MaxConns
	if maxConns == 0 {
		maxConns = 10
		if db.Dialect == SQLite {
			maxConns = sqliteMaxConns
		}
	}
	if db.readers != nil {
		db.readers.resize(maxConns)
	}
	idle := p.MaxIdleConns
	if idle == 0 {
		// Every open connection may stay idle: with fewer idle slots than open ones, a burst above the
		// idle limit closes connections that the next burst must reopen (a PostgreSQL backend fork,
		// login and statement re-preparation each; measured in docs/performance.md). Idle ones are
		// still closed after conn_max_idle_time.
		idle = maxConns
	}
	switch {
	case db.Dialect != Postgres:
	case p.ReadPipelines < 0:
		db.SetReadPipelines(0)
	case p.ReadPipelines > 0:
		db.SetReadPipelines(p.ReadPipelines)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(idle)
	db.SetConnMaxLifetime(p.ConnMaxLifetime)
	db.SetConnMaxIdleTime(p.ConnMaxIdleTime)
}
