// Package certs gives the main listener its TLS configuration: a certificate pair from files
// (re-read when the files change) or certificates obtained and renewed automatically over ACME
// (golang.org/x/crypto/acme/autocert), plus the plain-HTTP listener's handler that answers ACME
// HTTP-01 challenges and redirects everything else to https.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Options selects the certificate source: CertFile/KeyFile, or Domains for ACME.
type Options struct {
	CertFile, KeyFile string

	Domains      []string
	Email        string
	DirectoryURL string
	CAFile       string // PEM roots for the ACME directory's HTTPS ("" = system roots)
	CacheDir     string

	Log *slog.Logger
	Now func() time.Time
}

// Source is a configured certificate source.
type Source struct {
	tls     *tls.Config
	manager *autocert.Manager // nil for certificate files
}

// New builds the source; certificate files are loaded now, so a bad pair stops start-up.
func New(o Options) (*Source, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	switch {
	case o.CertFile != "":
		f := &fileCert{cert: o.CertFile, key: o.KeyFile, log: o.Log, now: o.Now}
		if err := f.load(); err != nil {
			return nil, err
		}
		base.GetCertificate = f.get
		return &Source{tls: base}, nil
	case len(o.Domains) > 0:
		hc := &http.Client{Timeout: 30 * time.Second}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("certs: acme.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("certs: acme.ca_file %s holds no PEM certificate", o.CAFile)
			}
			hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: http.ProxyFromEnvironment}
		}
		if err := os.MkdirAll(o.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("certs: acme cache directory: %w", err)
		}
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(o.CacheDir),
			HostPolicy: autocert.HostWhitelist(o.Domains...),
			Email:      o.Email,
			Client:     &acme.Client{DirectoryURL: o.DirectoryURL, HTTPClient: hc},
		}
		base.GetCertificate = m.GetCertificate
		base.NextProtos = append(base.NextProtos, acme.ALPNProto) // TLS-ALPN-01 on the main listener
		return &Source{tls: base, manager: m}, nil
	}
	return nil, errors.New("certs: neither certificate files nor ACME domains configured")
}

// TLSConfig is the main listener's configuration.
func (s *Source) TLSConfig() *tls.Config { return s.tls }

// RedirectHandler serves the plain-HTTP listener: ACME HTTP-01 challenges (with ACME), and a 308 to
// https:// for everything else. The target is publicURL when it is https, otherwise the request's
// host (host names only, no port) with httpsPort unless it is 443.
func (s *Source) RedirectHandler(publicURL string, httpsPort int) http.Handler {
	var h http.Handler = Redirect(publicURL, httpsPort)
	if s == nil || s.manager == nil {
		return h
	}
	acmeHandler := s.manager.HTTPHandler(h)
	// autocert checks its host policy against the Host header verbatim, so "example.com:80" (or a
	// CA validating on another port) would be refused: challenges see the host without its port.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			if host, _, err := net.SplitHostPort(r.Host); err == nil {
				r = r.Clone(r.Context())
				r.Host = host
			}
		}
		acmeHandler.ServeHTTP(w, r)
	})
}

// Redirect answers every request with 308 Permanent Redirect to its https:// twin.
func Redirect(publicURL string, httpsPort int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var base string
		if strings.HasPrefix(publicURL, "https://") {
			base = strings.TrimSuffix(publicURL, "/")
		} else {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if !validHost(host) {
				http.Error(w, "bad host", http.StatusBadRequest)
				return
			}
			base = "https://" + host
			if httpsPort != 0 && httpsPort != 443 {
				base = "https://" + net.JoinHostPort(host, strconv.Itoa(httpsPort))
			}
		}
		uri := r.URL.RequestURI()
		if !strings.HasPrefix(uri, "/") || strings.HasPrefix(uri, "//") {
			uri = "/"
		}
		w.Header().Set("Location", base+uri)
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// fileCert serves a certificate pair from files, re-reading them when their modification time
// changes (checked at most once a second), so a renewal needs no restart. A pair that fails to load
// keeps the previous one in service (and is logged).
type fileCert struct {
	cert, key string
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	current *tls.Certificate
	mtime   time.Time
	checked time.Time
}

func (f *fileCert) stamp() time.Time {
	var latest time.Time
	for _, p := range []string{f.cert, f.key} {
		if st, err := os.Stat(p); err == nil && st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	return latest
}

func (f *fileCert) load() error {
	mt := f.stamp()
	c, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return fmt.Errorf("certs: load %s / %s: %w", filepath.Base(f.cert), filepath.Base(f.key), err)
	}
	f.current, f.mtime = &c, mt
	return nil
}

func (f *fileCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := f.now(); now.Sub(f.checked) >= time.Second {
		f.checked = now
		if mt := f.stamp(); !mt.Equal(f.mtime) {
			prev := f.current
			if err := f.load(); err != nil {
				f.current = prev
				f.mtime = mt // do not retry a broken pair on every handshake; wait for the next change
				if f.log != nil {
					f.log.Error("reloading the TLS certificate failed; keeping the previous one", "err", err)
				}
			} else if f.log != nil {
				f.log.Info("TLS certificate reloaded", "file", f.cert)
			}
		}
	}
	return f.current, nil
}
