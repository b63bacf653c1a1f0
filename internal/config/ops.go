package config

import (
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Edge configures how Gatehouse meets the network: the proxies it believes, its own TLS listener
// (certificate files or ACME), the HTTP→HTTPS redirect listener and HSTS.
type Edge struct {
	// TrustedProxies are the peers whose forwarding headers are believed (CIDRs; a bare address is a
	// /32 or /128). ProxyHeader picks the header family: "x-forwarded" or "forwarded" (RFC 7239).
	TrustedProxies []string
	ProxyHeader    string

	TLSCertFile, TLSKeyFile string
	ACMEDomains             []string
	ACMEEmail               string
	ACMEDirectoryURL        string
	ACMECAFile              string // PEM roots for a private ACME server's HTTPS (step-ca, Pebble)
	ACMECacheDir            string // "" = <data>/acme
	RedirectListen          string
	HSTSMaxAge              time.Duration
}

// TLSEnabled reports whether the main listener serves TLS itself.
func (e Edge) TLSEnabled() bool { return e.TLSCertFile != "" || len(e.ACMEDomains) > 0 }

// Prefixes parses TrustedProxies (validated at load).
func (e Edge) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(e.TrustedProxies))
	for _, s := range e.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// DBPool configures the database connection pool.
type DBPool struct {
	MaxConns         int // 0: automatic (PostgreSQL 10, SQLite 8)
	MaxIdleConns     int // 0: automatic (half of MaxConns)
	ConnMaxLifetime  time.Duration
	ConnMaxIdleTime  time.Duration
	StatementTimeout time.Duration // PostgreSQL only; 0: none
	ConnectTimeout   time.Duration // PostgreSQL only
	ReadPipelines    int           // PostgreSQL only: connections carrying pipelined reads at once; 0: off
}

// Telemetry configures OpenTelemetry tracing.
type Telemetry struct {
	OTLPEndpoint string  // "" = tracing off
	SampleRatio  float64 // parsed from SampleRatioText
	ServiceName  string
	sampleText   string
}

func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func opsSettings() []setting {
	return []setting{
		{"trusted_proxies", []string{"GATEHOUSE_TRUSTED_PROXIES"}, "trusted-proxies", "127.0.0.0/8,::1/128", kCSV, "peers (CIDRs, comma separated) whose forwarding headers (see proxy_header) give the client address, scheme and host; right-to-left, skipping only trusted hops; none: trust no proxy", func(c *Config) any { return &c.Edge.TrustedProxies }},
		{"proxy_header", []string{"GATEHOUSE_PROXY_HEADER"}, "", "x-forwarded", kString, "which headers trusted proxies set: x-forwarded (X-Forwarded-For/-Proto/-Host) or forwarded (RFC 7239); the other family is ignored, so a client cannot inject it through a proxy that passes it along", func(c *Config) any { return &c.Edge.ProxyHeader }},
		{"tls_cert_file", []string{"GATEHOUSE_TLS_CERT_FILE"}, "tls-cert-file", "", kString, "PEM certificate chain: the main listener serves HTTPS (reloaded when the file changes)", func(c *Config) any { return &c.Edge.TLSCertFile }},
		{"tls_key_file", []string{"GATEHOUSE_TLS_KEY_FILE"}, "tls-key-file", "", kString, "PEM private key of tls_cert_file", func(c *Config) any { return &c.Edge.TLSKeyFile }},
		{"acme.domains", []string{"GATEHOUSE_ACME_DOMAINS"}, "", "", kCSV, "domains to obtain certificates for automatically with ACME (the main listener serves HTTPS; needs redirect_listen on port 80 or the main listener on 443 reachable by the CA)", func(c *Config) any { return &c.Edge.ACMEDomains }},
		{"acme.email", []string{"GATEHOUSE_ACME_EMAIL"}, "", "", kString, "contact address given to the ACME CA", func(c *Config) any { return &c.Edge.ACMEEmail }},
		{"acme.directory_url", []string{"GATEHOUSE_ACME_DIRECTORY_URL"}, "", "https://acme-v02.api.letsencrypt.org/directory", kString, "ACME directory (Let's Encrypt staging: https://acme-staging-v02.api.letsencrypt.org/directory)", func(c *Config) any { return &c.Edge.ACMEDirectoryURL }},
		{"acme.ca_file", []string{"GATEHOUSE_ACME_CA_FILE"}, "", "", kString, "PEM roots trusted for the ACME directory's HTTPS, for a private CA (empty: system roots)", func(c *Config) any { return &c.Edge.ACMECAFile }},
		{"acme.cache_dir", []string{"GATEHOUSE_ACME_CACHE_DIR"}, "", "", kString, "where the ACME account key and certificates are kept (empty: acme/ in the data directory; share it between instances or give each its own)", func(c *Config) any { return &c.Edge.ACMECacheDir }},
		{"redirect_listen", []string{"GATEHOUSE_REDIRECT_LISTEN"}, "redirect-listen", "", kListenAddr, "plain-HTTP listener that redirects to https:// (and answers ACME HTTP-01 challenges), e.g. :80", func(c *Config) any { return &c.Edge.RedirectListen }},
		{"hsts_max_age", []string{"GATEHOUSE_HSTS_MAX_AGE"}, "", "8760h", kDuration, "Strict-Transport-Security max-age on HTTPS responses (own TLS or https from a trusted proxy); 0s: no header", func(c *Config) any { return &c.Edge.HSTSMaxAge }},

		{"database_pool.max_conns", []string{"GATEHOUSE_DB_MAX_CONNS"}, "", "0", kCount, "largest number of open database connections per instance (0: 10 on PostgreSQL, 8 on SQLite); instances × max_conns must stay below PostgreSQL's max_connections", func(c *Config) any { return &c.DBPool.MaxConns }},
		{"database_pool.max_idle_conns", []string{"GATEHOUSE_DB_MAX_IDLE_CONNS"}, "", "0", kCount, "idle connections kept open (0: max_conns, so bursts do not reopen connections)", func(c *Config) any { return &c.DBPool.MaxIdleConns }},
		{"database_pool.conn_max_lifetime", []string{"GATEHOUSE_DB_CONN_MAX_LIFETIME"}, "", "30m", kDuration, "a connection is closed and replaced after this long (0s: never), so fail-overs and pgbouncer restarts are picked up", func(c *Config) any { return &c.DBPool.ConnMaxLifetime }},
		{"database_pool.conn_max_idle_time", []string{"GATEHOUSE_DB_CONN_MAX_IDLE_TIME"}, "", "5m", kDuration, "an idle connection is closed after this long (0s: never)", func(c *Config) any { return &c.DBPool.ConnMaxIdleTime }},
		{"database_pool.statement_timeout", []string{"GATEHOUSE_DB_STATEMENT_TIMEOUT"}, "", "0s", kDuration, "PostgreSQL statement_timeout of every connection (0s: the server's default)", func(c *Config) any { return &c.DBPool.StatementTimeout }},
		{"database_pool.read_pipelines", []string{"GATEHOUSE_DB_READ_PIPELINES"}, "", "4", kCount, "PostgreSQL: client reads that arrive while the connections are busy go out together, pipelined on at most this many connections at once, one round trip for many reads (0: off, every read on its own connection)", func(c *Config) any { return &c.DBPool.ReadPipelines }},
		{"database_pool.connect_timeout", []string{"GATEHOUSE_DB_CONNECT_TIMEOUT"}, "", "5s", kDuration, "PostgreSQL connection attempt limit, so an unreachable server answers 503 quickly (unless the URL sets connect_timeout)", func(c *Config) any { return &c.DBPool.ConnectTimeout }},

		{"tracing.otlp_endpoint", []string{"GATEHOUSE_OTLP_ENDPOINT"}, "", "", kString, "OpenTelemetry OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces (empty: tracing off)", func(c *Config) any { return &c.Telemetry.OTLPEndpoint }},
		{"tracing.sample_ratio", []string{"GATEHOUSE_TRACE_SAMPLE_RATIO"}, "", "1", kString, "share of requests traced (0 to 1), parent-based: an incoming sampled traceparent is honoured", func(c *Config) any { return &c.Telemetry.sampleText }},
	}
}

func (c *Config) validateOps() error {
	e := &c.Edge
	if len(e.TrustedProxies) == 1 && e.TrustedProxies[0] == "none" {
		e.TrustedProxies = nil
	}
	for _, s := range e.TrustedProxies {
		if _, err := parsePrefix(s); err != nil {
			return &Error{Setting: "trusted_proxies", Value: s, Reason: "must be a CIDR such as 10.0.0.0/8 or an IP address"}
		}
	}
	switch e.ProxyHeader {
	case "x-forwarded", "forwarded":
	default:
		return &Error{Setting: "proxy_header", Value: e.ProxyHeader, Reason: "must be x-forwarded or forwarded"}
	}
	if (e.TLSCertFile == "") != (e.TLSKeyFile == "") {
		return &Error{Setting: "tls_cert_file", Reason: "tls_cert_file and tls_key_file go together"}
	}
	if e.TLSCertFile != "" && len(e.ACMEDomains) > 0 {
		return &Error{Setting: "acme.domains", Reason: "use either certificate files or ACME, not both"}
	}
	for _, d := range e.ACMEDomains {
		if !strings.Contains(strings.Trim(d, "."), ".") || strings.ContainsAny(d, "/:*@ ") {
			return &Error{Setting: "acme.domains", Value: d, Reason: "entries must be fully qualified host names (no wildcards, ports or schemes)"}
		}
	}
	if len(e.ACMEDomains) > 0 {
		u, err := url.Parse(e.ACMEDirectoryURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return &Error{Setting: "acme.directory_url", Value: e.ACMEDirectoryURL, Reason: "must be an https:// URL"}
		}
	}
	if e.ACMECAFile != "" {
		if _, err := os.Stat(e.ACMECAFile); err != nil {
			return &Error{Setting: "acme.ca_file", Value: e.ACMECAFile, Reason: err.Error()}
		}
	}
	if e.RedirectListen != "" && e.RedirectListen == c.Listen {
		return &Error{Setting: "redirect_listen", Value: e.RedirectListen, Reason: "must differ from listen"}
	}
	p := c.DBPool
	if p.MaxConns > 1000 {
		return &Error{Setting: "database_pool.max_conns", Value: strconv.Itoa(p.MaxConns), Reason: "must be at most 1000"}
	}
	if p.MaxConns > 0 && p.MaxIdleConns > p.MaxConns {
		return &Error{Setting: "database_pool.max_idle_conns", Value: strconv.Itoa(p.MaxIdleConns), Reason: "must not exceed database_pool.max_conns"}
	}
	if p.ReadPipelines > 64 {
		return &Error{Setting: "database_pool.read_pipelines", Value: strconv.Itoa(p.ReadPipelines), Reason: "must be at most 64"}
	}
	if p.ConnectTimeout < time.Second {
		return &Error{Setting: "database_pool.connect_timeout", Value: p.ConnectTimeout.String(), Reason: "must be at least 1s"}
	}
	t := &c.Telemetry
	r, err := strconv.ParseFloat(strings.TrimSpace(t.sampleText), 64)
	if err != nil || r < 0 || r > 1 {
		return &Error{Setting: "tracing.sample_ratio", Value: t.sampleText, Reason: "must be a number from 0 to 1"}
	}
	t.SampleRatio = r
	t.ServiceName = c.ServiceName
	if t.OTLPEndpoint != "" {
		u, err := url.Parse(t.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{Setting: "tracing.otlp_endpoint", Value: t.OTLPEndpoint, Reason: "must be an http(s) URL such as http://collector:4318/v1/traces"}
		}
	}
	return nil
}
