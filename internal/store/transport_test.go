package store

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgresTransport pins what start-up says of each way of reaching PostgreSQL, and that every
// way an attacker on the network path could read or change the traffic warns, while a Unix socket
// or loopback never does.
func TestPostgresTransport(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	ca := writeTestCA(t)
	cases := []struct {
		dsn, desc string
		warn      bool
	}{
		{"postgres://u@/db?host=/var/run/postgresql", "unix socket /var/run/postgresql", false},
		{"postgres://u@127.0.0.1:5432/db", "TCP to 127.0.0.1:5432, TLS if the server offers it, unverified, else without TLS (sslmode=prefer, the default)", false},
		{"postgres://u@localhost/db?sslmode=disable", "TCP to localhost:5432, without TLS (sslmode=disable)", false},
		{"postgres://u@[::1]:6432/db?sslmode=disable", "TCP to [::1]:6432, without TLS (sslmode=disable)", false},
		{"postgres://u@db.internal/db", "TCP to db.internal:5432, TLS if the server offers it, unverified, else without TLS (sslmode=prefer, the default)", true},
		{"postgres://u@db.internal/db?sslmode=disable", "TCP to db.internal:5432, without TLS (sslmode=disable)", true},
		{"postgres://u@db.internal/db?sslmode=allow", "TCP to db.internal:5432, without TLS, then TLS unverified if the server insists (sslmode=allow)", true},
		{"postgres://u@db.internal/db?sslmode=require", "TCP to db.internal:5432, TLS, unverified (sslmode=require)", true},
		{"postgres://u@10.0.0.5/db?sslmode=verify-ca&sslrootcert=" + ca, "TCP to 10.0.0.5:5432, TLS, certificate verified but not the host name (verify-ca)", true},
		{"postgres://u@db.internal/db?sslmode=require&sslrootcert=" + ca, "TCP to db.internal:5432, TLS, certificate verified but not the host name (verify-ca)", true},
		{"postgres://u@db.internal/db?sslmode=verify-full&sslrootcert=" + ca, "TCP to db.internal:5432, TLS, certificate and host name verified (verify-full)", false},
		{"postgres://u@db.internal/db?sslrootcert=system", "TCP to db.internal:5432, TLS, certificate and host name verified (verify-full)", false},
	}
	for _, c := range cases {
		cfg, err := pgx.ParseConfig(c.dsn)
		if err != nil {
			t.Fatalf("%s: %v", c.dsn, err)
		}
		tr := postgresTransport(cfg)
		if tr.Description != c.desc {
			t.Errorf("%s:\n got %q\nwant %q", c.dsn, tr.Description, c.desc)
		}
		if (tr.Warning != "") != c.warn {
			t.Errorf("%s: warning %q, want one: %v", c.dsn, tr.Warning, c.warn)
		}
		if c.warn && !strings.Contains(tr.Warning, "sslmode=verify-full") {
			t.Errorf("%s: the warning does not say what to set: %q", c.dsn, tr.Warning)
		}
	}

	// PGSSLMODE counts like the URL's sslmode.
	t.Setenv("PGSSLMODE", "disable")
	cfg, err := pgx.ParseConfig("postgres://u@db.internal/db")
	if err != nil {
		t.Fatal(err)
	}
	if tr := postgresTransport(cfg); tr.Warning == "" || !strings.Contains(tr.Description, "sslmode=disable") {
		t.Errorf("PGSSLMODE=disable: %+v", tr)
	}
}

func writeTestCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
