package store

import (
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Transport says how an instance's connections reach PostgreSQL, read off the parsed connection
// settings (so sslmode from the URL, PGSSLMODE and sslrootcert=system all count). serve logs it at
// start-up; Warning is set when the traffic crosses a network unprotected.
type Transport struct {
	// Description is one line for the log: "unix socket /var/run/postgresql", "TCP to db:5432, TLS
	// verified (verify-full)", …
	Description string
	// Warning, when not empty, says why the connection can be read or changed by someone on the path
	// and what to set instead. Loopback and Unix sockets never warn: their traffic stays in the host.
	Warning string
}

// postgresTransport describes cfg's first (primary) connection attempt and its fallbacks.
func postgresTransport(cfg *pgx.ConnConfig) Transport {
	if network, _ := pgconn.NetworkAddress(cfg.Host, cfg.Port); network == "unix" {
		// The same decision pgconn makes when it dials: a directory (or an abstract socket name).
		return Transport{Description: "unix socket " + cfg.Host}
	}
	addr := net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
	plainFallback, tlsFallback := false, false
	for _, f := range cfg.Fallbacks {
		if f.TLSConfig == nil {
			plainFallback = true
		} else {
			tlsFallback = true
		}
	}
	var desc string
	verified := false
	switch t := cfg.TLSConfig; {
	case t == nil && tlsFallback:
		desc = "without TLS, then TLS unverified if the server insists (sslmode=allow)"
	case t == nil:
		desc = "without TLS (sslmode=disable)"
	case !t.InsecureSkipVerify:
		desc, verified = "TLS, certificate and host name verified (verify-full)", true
	case t.VerifyPeerCertificate != nil:
		desc = "TLS, certificate verified but not the host name (verify-ca)"
	case plainFallback:
		desc = "TLS if the server offers it, unverified, else without TLS (sslmode=prefer, the default)"
	default:
		desc = "TLS, unverified (sslmode=require)"
	}
	tr := Transport{Description: "TCP to " + addr + ", " + desc}
	if !verified && !loopbackHost(cfg.Host) {
		tr.Warning = "the connection to PostgreSQL at " + addr + " can be read or changed by anyone on the network path " +
			"(" + desc + "); add sslmode=verify-full and sslrootcert=<the server's CA file> (or sslrootcert=system) to the database URL"
	}
	return tr
}

// loopbackHost reports whether host is this machine: localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
