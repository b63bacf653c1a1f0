package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startDNS answers every A question with 127.0.0.1 (and AAAA with nothing), over TCP as Pebble's VA
// asks: the test's domain resolves to the loopback interface for the CA only.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		w.WriteMsg(m) //nolint:errcheck
	})}
	go srv.ActivateAndServe()            //nolint:errcheck
	t.Cleanup(func() { srv.Shutdown() }) //nolint:errcheck
	return ln.Addr().String()
}

// TestACMEWithPebble obtains a certificate from a real ACME server (Let's Encrypt's Pebble, run
// in-process on loopback) on the first TLS handshake, serves the API over it with HSTS, and
// redirects plain HTTP to https.
func TestACMEWithPebble(t *testing.T) {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	// autocert answers TLS-ALPN-01 on the main listener first; when the CA cannot reach that (its
	// validation port is closed here), HTTP-01 on the redirect listener.
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) { testACME(t, challenge) })
	}
}

func testACME(t *testing.T, challenge string) {
	const domain = "gatehouse.test"
	tlsPort, httpPort := freePort(t), freePort(t)
	vaTLSPort := tlsPort
	if challenge == "http-01" {
		vaTLSPort = freePort(t) // nothing listens: TLS-ALPN-01 fails
	}

	plog := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		plog = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}
	store := pebbledb.NewMemoryStore()
	authority := ca.New(plog, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(plog, httpPort, vaTLSPort, false, startDNS(t), store)
	front := wfe.New(plog, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 1, 1)
	acmeSrv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(acmeSrv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "acme-directory-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: acmeSrv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	data := filepath.Join(dir, "data")
	env := map[string]string{
		"GATEHOUSE_ACME_DOMAINS": domain, "GATEHOUSE_ACME_EMAIL": "ops@example.com",
		"GATEHOUSE_ACME_DIRECTORY_URL": acmeSrv.URL + "/dir", "GATEHOUSE_ACME_CA_FILE": caFile,
		"GATEHOUSE_REDIRECT_LISTEN": "127.0.0.1:" + strconv.Itoa(httpPort),
	}
	base, stderr, _ := startServer(t, []string{"--data", data, "--listen", "127.0.0.1:" + strconv.Itoa(tlsPort)}, env)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("listener is not TLS: %s", base)
	}

	// The client trusts only Pebble's root: the certificate must chain to it and name the domain.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(authority.GetRootCert(0).PEM())
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: domain},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(tlsPort))
		},
	}}
	start := time.Now()
	res, err := client.Get("https://" + domain + ":" + strconv.Itoa(tlsPort) + "/status")
	if err != nil {
		t.Fatalf("HTTPS request (certificate issuance) failed: %v\n%s", err, stderr.String())
	}
	res.Body.Close()
	t.Logf("certificate issued and first request served in %s", time.Since(start).Round(time.Millisecond))
	if res.StatusCode != 200 || res.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Fatalf("status %d, HSTS %q", res.StatusCode, res.Header.Get("Strict-Transport-Security"))
	}
	leaf := res.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname(domain); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(filepath.Join(data, "acme")); err != nil || len(entries) < 2 {
		t.Fatalf("ACME cache (account key and certificate) not written: %v %v", entries, err)
	}

	// Plain HTTP: 308 to the https:// twin, path and query kept.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/tables/todo?$top=1", nil)
	req.Host = domain
	res, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want := "https://" + domain + ":" + strconv.Itoa(tlsPort) + "/tables/todo?$top=1"
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
		t.Fatalf("redirect: %d %q, want 308 %q", res.StatusCode, res.Header.Get("Location"), want)
	}
}
