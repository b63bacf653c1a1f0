package config

import (
	"errors"
	"strings"
	"testing"
)

func TestOpsSettings(t *testing.T) {
	load := func(env map[string]string) (*Config, error) {
		return Load(nil, func(k string) string { return env[k] })
	}
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Edge.Prefixes(); len(got) != 2 || got[0].String() != "127.0.0.0/8" || got[1].String() != "::1/128" {
		t.Fatalf("default trusted proxies: %v", got)
	}
	if c.DBPool.ReadPipelines != 4 {
		t.Fatalf("default read_pipelines: %d", c.DBPool.ReadPipelines)
	}
	if c.Edge.TLSEnabled() || c.Telemetry.OTLPEndpoint != "" || c.Telemetry.SampleRatio != 1 {
		t.Fatalf("defaults: %+v %+v", c.Edge, c.Telemetry)
	}
	c, err = load(map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "none"})
	if err != nil || len(c.Edge.Prefixes()) != 0 {
		t.Fatalf("none: %v %v", err, c.Edge.TrustedProxies)
	}
	c, err = load(map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "10.1.2.3/8, 192.0.2.7"})
	if err != nil || c.Edge.Prefixes()[0].String() != "10.0.0.0/8" || c.Edge.Prefixes()[1].String() != "192.0.2.7/32" {
		t.Fatalf("list: %v %v", err, c.Edge.Prefixes())
	}
	for env, name := range map[string]string{
		"GATEHOUSE_TRUSTED_PROXIES=10.0.0.0/33":                  "trusted_proxies",
		"GATEHOUSE_TRUSTED_PROXIES=proxy.example":                "trusted_proxies",
		"GATEHOUSE_PROXY_HEADER=both":                            "proxy_header",
		"GATEHOUSE_TLS_CERT_FILE=/x.pem":                         "tls_cert_file",
		"GATEHOUSE_ACME_DOMAINS=localhost":                       "acme.domains",
		"GATEHOUSE_ACME_DOMAINS=*.example.com":                   "acme.domains",
		"GATEHOUSE_TRACE_SAMPLE_RATIO=1.5":                       "tracing.sample_ratio",
		"GATEHOUSE_OTLP_ENDPOINT=collector:4318":                 "tracing.otlp_endpoint",
		"GATEHOUSE_DB_CONNECT_TIMEOUT=10ms":                      "database_pool.connect_timeout",
		"GATEHOUSE_DB_MAX_CONNS=5,GATEHOUSE_DB_MAX_IDLE_CONNS=6": "database_pool.max_idle_conns",
		"GATEHOUSE_DB_READ_PIPELINES=65":                         "database_pool.read_pipelines",
	} {
		m := map[string]string{}
		for _, kv := range strings.Split(env, ",") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		_, err := load(m)
		var ce *Error
		if !errors.As(err, &ce) || ce.Setting != name {
			t.Errorf("%s: got %v, want an error naming %s", env, err, name)
		}
	}
}
