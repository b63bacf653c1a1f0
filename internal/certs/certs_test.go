package certs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/certs"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func writePair(t *testing.T, dir, cn string, mtime time.Time) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)   //nolint:errcheck
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600) //nolint:errcheck
	os.Chtimes(cf, mtime, mtime)                                                               //nolint:errcheck
	os.Chtimes(kf, mtime, mtime)                                                               //nolint:errcheck
	return cf, kf
}

// TestCertificateFiles: the listener serves the files' certificate and picks up a renewed pair
// without a restart; a broken renewal keeps the previous certificate.
func TestCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	cf, kf := writePair(t, dir, "one.example", t0)
	clk := &clock{t: time.Now()}
	src, err := certs.New(certs.Options{CertFile: cf, KeyFile: kf, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ts.TLS = src.TLSConfig()
	ts.StartTLS()
	defer ts.Close()
	served := func() string {
		c, err := tls.Dial("tcp", ts.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "any.example"}) //nolint:gosec // inspecting the served certificate
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "one.example" {
		t.Fatalf("served %s", got)
	}
	writePair(t, dir, "two.example", t0.Add(10*time.Second))
	clk.t = clk.t.Add(2 * time.Second)
	if got := served(); got != "two.example" {
		t.Fatalf("after renewal served %s", got)
	}
	os.WriteFile(kf, []byte("garbage"), 0o600)                     //nolint:errcheck
	os.Chtimes(kf, t0.Add(20*time.Second), t0.Add(20*time.Second)) //nolint:errcheck
	clk.t = clk.t.Add(2 * time.Second)
	if got := served(); got != "two.example" {
		t.Fatalf("after a broken renewal served %s", got)
	}
	if _, err := certs.New(certs.Options{CertFile: cf, KeyFile: kf}); err == nil {
		t.Fatal("a broken pair must stop start-up")
	}
}

func TestRedirect(t *testing.T) {
	for _, c := range []struct{ public, host, uri, want string }{
		{"", "api.example.com", "/tables/x?a=1", "https://api.example.com:8443/tables/x?a=1"},
		{"", "api.example.com:80", "/", "https://api.example.com:8443/"},
		{"https://public.example.com", "evil.example", "/login", "https://public.example.com/login"},
		{"", "evil.example\"><x", "/", ""},
	} {
		r := httptest.NewRequest("GET", "http://x"+c.uri, nil)
		r.Host = c.host
		w := httptest.NewRecorder()
		certs.Redirect(c.public, 8443).ServeHTTP(w, r)
		if c.want == "" {
			if w.Code != http.StatusBadRequest {
				t.Errorf("%q: %d", c.host, w.Code)
			}
			continue
		}
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != c.want {
			t.Errorf("%+v: %d %q", c, w.Code, w.Header().Get("Location"))
		}
	}
	w := httptest.NewRecorder()
	certs.Redirect("", 443).ServeHTTP(w, httptest.NewRequest("GET", "http://api.example.com/x", nil))
	if w.Header().Get("Location") != "https://api.example.com/x" {
		t.Fatalf("port 443: %q", w.Header().Get("Location"))
	}
}
