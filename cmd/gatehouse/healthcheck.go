package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck probes this instance's own listener (the container HEALTHCHECK and systemd watchdogs
// use it, so the image needs no curl or wget): GET /healthz, or /readyz with --ready, on the
// configured listen address (0.0.0.0 and :: mean loopback). Exit status 0 only on 200.
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var ready bool
	var timeout time.Duration
	cfg, _, err := loadConfig("healthcheck", args, stderr, getenv, func(fs *flag.FlagSet) {
		fs.BoolVar(&ready, "ready", false, "probe /readyz (database reachable) instead of /healthz (process serving)")
		fs.DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	})
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	tr := &http.Transport{Proxy: nil}
	if cfg.Edge.TLSEnabled() {
		scheme = "https"
		// The probe sends no credentials and reads only the status, on this host's own listener
		// (whose certificate names the public host, not the loopback address): no verification.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // see above
		if len(cfg.Edge.ACMEDomains) > 0 {
			tr.TLSClientConfig.ServerName = cfg.Edge.ACMEDomains[0]
		}
	}
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := scheme + "://" + net.JoinHostPort(host, port) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 4096)) //nolint:errcheck
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, res.Status)
	}
	fmt.Fprintf(stdout, "%s: ok\n", url)
	return nil
}
