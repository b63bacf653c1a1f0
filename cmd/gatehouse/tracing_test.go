package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP traces endpoint: it decodes the protobuf requests and keeps the
// spans and the raw bytes (to search them for secrets).
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	raw   bytes.Buffer
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.raw.Write(b)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out) //nolint:errcheck
}

func attr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			if v := a.Value.GetStringValue(); v != "" {
				return v
			}
			if v := a.Value.GetIntValue(); v != 0 {
				return fmtInt(v)
			}
		}
	}
	return ""
}

func fmtInt(v int64) string {
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

// TestTracingOTLP: with tracing.otlp_endpoint set, each request becomes a server span named by its
// route template with method and status, exported over OTLP/HTTP; no query string, path value, key
// or token reaches the collector. An untrusted client's traceparent is not adopted.
func TestTracingOTLP(t *testing.T) {
	recv := &otlpReceiver{}
	col := httptest.NewServer(recv)
	t.Cleanup(col.Close)
	dir := t.TempDir()
	env := map[string]string{
		"GATEHOUSE_MASTER_KEY": "tracing-master-key-0123456789abcdef", "GATEHOUSE_APPLICATION_KEY": "tracing-app-key-0123456789abcdef",
		"GATEHOUSE_OTLP_ENDPOINT": col.URL + "/v1/traces", "GATEHOUSE_TRUSTED_PROXIES": "none",
	}
	prepareData(t, env, filepath.Join(dir, "data"))
	if rc, _, errs := runCmd(t, env, "table", "create", "todo", "--data", filepath.Join(dir, "data"), "--columns", "title=string"); rc != 0 {
		t.Fatalf("table create: %s", errs)
	}
	base, stderr, stop := startServer(t, []string{"--data", filepath.Join(dir, "data")}, env)
	const secretValue = "query-secret-value"
	code, body := call(t, "GET", base+"/tables/todo/row-id-secret?$filter=title%20eq%20'"+secretValue+"'", map[string]string{
		"X-ZUMO-APPLICATION": env["GATEHOUSE_APPLICATION_KEY"],
		"traceparent":        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}, "")
	if code != 404 {
		t.Fatalf("table read: %d %s", code, body)
	}
	call(t, "GET", base+"/status", nil, "")
	if rc := stop(); rc != 0 { // shutdown flushes the batch
		t.Fatalf("stop: %d %s", rc, stderr.String())
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	var table *tracepb.Span
	names := []string{}
	for _, s := range recv.spans {
		names = append(names, s.Name)
		if s.Name == "GET /tables/{table}" {
			table = s
		}
	}
	if table == nil {
		t.Fatalf("no span for the table route; got %v (log: %s)", names, stderr.String())
	}
	if attr(table, "http.route") != "/tables/{table}" || attr(table, "http.request.method") != "GET" || attr(table, "http.response.status_code") != "404" {
		t.Fatalf("span attributes: %v", table.Attributes)
	}
	if table.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("kind %v", table.Kind)
	}
	if hex.EncodeToString(table.TraceId) == "4bf92f3577b34da6a3ce929d0e0e4736" || len(table.ParentSpanId) != 0 {
		t.Fatal("an untrusted client's traceparent was adopted")
	}
	raw := recv.raw.String()
	for _, leak := range []string{secretValue, "row-id-secret", "$filter", env["GATEHOUSE_APPLICATION_KEY"], env["GATEHOUSE_MASTER_KEY"]} {
		if strings.Contains(raw, leak) {
			t.Fatalf("exported spans contain %q", leak)
		}
	}
}
