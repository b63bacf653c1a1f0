package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/signing"
)

func jwtServer(t testing.TB) http.Handler {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string {
		return map[string]string{"GATEHOUSE_PUBLIC_URL": "https://api.example.com", "GATEHOUSE_TOKENS_FORMAT": "jwt", "GATEHOUSE_TOKENS_JWKS_MAX_AGE": "2m"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	var entries []signing.Entry
	for _, alg := range signing.Algorithms() {
		k, err := signing.Generate(alg)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, signing.Entry{Secret: k})
	}
	a, err := auth.New(auth.Secrets{MasterKey: masterKey, ApplicationKey: appKey, SystemKey: systemKey, Signing: entries},
		auth.Options{ClockSkew: time.Minute, MaxTTL: cfg.TokenMaxTTL, Issuer: cfg.Issuer()})
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Deps{Config: cfg, Auth: a, Minter: &auth.Minter{Auth: a, DefaultTTL: time.Hour, MaxTTL: cfg.TokenMaxTTL, Format: auth.FormatJWT},
		DB: pinger{}, Metrics: metrics.New("test"), Logger: slog.New(slog.DiscardHandler), Version: "test"})
	return s.Handler()
}

func TestWellKnown(t *testing.T) {
	off := newEnv(t, nil, nil)
	if r := off.do(t, "GET", "/.well-known/jwks.json", nil, ""); r.status != 404 {
		t.Fatalf("jwks without signing keys: %d", r.status)
	}
	ts := httptest.NewServer(jwtServer(t))
	defer ts.Close()
	get := func(method, path string, h map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := get("GET", "/.well-known/jwks.json", nil)
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "public, max-age=120" || res.Header.Get("Content-Type") != "application/jwk-set+json" ||
		strings.Count(body, `"kid"`) != 2 || strings.Contains(body, `"d"`) {
		t.Fatalf("jwks: %d %v %s", res.StatusCode, res.Header, body)
	}
	if r, b := get("GET", "/.well-known/jwks.json", map[string]string{"If-None-Match": res.Header.Get("ETag")}); r.StatusCode != 304 || b != "" {
		t.Fatalf("conditional GET: %d %q", r.StatusCode, b)
	}
	if r, b := get("HEAD", "/.well-known/jwks.json", nil); r.StatusCode != 200 || b != "" {
		t.Fatalf("HEAD: %d %q", r.StatusCode, b)
	}
	if r, _ := get("POST", "/.well-known/jwks.json", nil); r.StatusCode != 405 {
		t.Fatalf("POST: %d", r.StatusCode)
	}
	res, body = get("GET", "/.well-known/openid-configuration", nil)
	if res.StatusCode != 200 || !strings.Contains(body, `"issuer":"https://api.example.com"`) ||
		!strings.Contains(body, `"jwks_uri":"https://api.example.com/.well-known/jwks.json"`) || !strings.Contains(body, `"ES256","EdDSA"`) {
		t.Fatalf("discovery: %d %s", res.StatusCode, body)
	}
}

// BenchmarkJWKS is what one instance serves of /.well-known/jwks.json through its whole middleware
// chain (no network): see the req/s metric.
func BenchmarkJWKS(b *testing.B) {
	h := jwtServer(b)
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
