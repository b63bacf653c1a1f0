// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp) on the loopback interface for
// tests: STARTTLS or implicit TLS with a throw-away certificate, AUTH PLAIN, and every accepted message
// delivered on a channel, parsed.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure the server.
type Options struct {
	// Implicit serves TLS from the first byte (SMTPS) instead of offering STARTTLS.
	Implicit bool
	// NoTLS offers neither (a plain relay).
	NoTLS bool
	// Username and Password, when set, are required (AUTH PLAIN) before MAIL.
	Username, Password string
	// Hang makes the server accept connections and never answer (timeout tests).
	Hang bool
}

// Received is one accepted message.
type Received struct {
	From    string
	To      []string
	Raw     []byte
	Header  mail.Header
	Text    string // decoded text/plain body
	HTML    string // decoded text/html part, if any
	Subject string // decoded subject
	TLS     bool   // the message came over TLS
	Authed  string // the authenticated username ("" without AUTH)
}

// Server is a running test SMTP server.
type Server struct {
	Host string
	Port int
	// RootCAs trusts the server's certificate (for the client's tls.Config).
	RootCAs  *x509.CertPool
	Messages chan Received

	mu    sync.Mutex
	fails int // remaining deliveries to refuse with 451
}

// FailNext makes the next n deliveries fail with a temporary error (451).
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	s.fails = n
	s.mu.Unlock()
}

// TLSConfig is a client configuration that trusts the server.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Start runs a server until the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	cert, pool := selfSigned(t)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	var ln net.Listener
	var err error
	if opt.Implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	s := &Server{Host: "127.0.0.1", Port: addr.Port, RootCAs: pool, Messages: make(chan Received, 100)}
	if opt.Hang {
		done := make(chan struct{})
		var conns []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			close(done)
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
		return s
	}
	srv := smtp.NewServer(&backend{s: s, opt: opt})
	srv.Domain = "127.0.0.1"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 10
	srv.EnableSMTPUTF8 = true
	if !opt.NoTLS && !opt.Implicit {
		srv.TLSConfig = tlsCfg
	}
	// The client refuses AUTH over plain text unless the host is loopback; the server mirrors the
	// production default and allows AUTH only after TLS, except in NoTLS mode.
	srv.AllowInsecureAuth = opt.NoTLS
	srv.ErrorLog = discardLogger{}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return s
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}

// Wait returns the next message, failing the test if none arrives within a minute (a hang guard, not a
// timing assertion).
func (s *Server) Wait(t testing.TB) Received {
	t.Helper()
	select {
	case m := <-s.Messages:
		return m
	case <-time.After(time.Minute):
		t.Fatal("mailtest: no message arrived within a minute")
		return Received{}
	}
}

type backend struct {
	s   *Server
	opt Options
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{b: b, conn: c, tls: isTLS || b.opt.Implicit}, nil
}

type session struct {
	b      *backend
	conn   *smtp.Conn
	tls    bool
	authed string
	from   string
	to     []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.b.opt.Username || password != s.b.opt.Password || s.b.opt.Username == "" {
			return smtp.ErrAuthFailed
		}
		s.authed = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.opt.Username != "" && s.authed == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	s.b.s.mu.Lock()
	if s.b.s.fails > 0 {
		s.b.s.fails--
		s.b.s.mu.Unlock()
		io.Copy(io.Discard, r) //nolint:errcheck
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.b.s.mu.Unlock()
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	rec := Received{From: s.from, To: append([]string(nil), s.to...), Raw: raw, TLS: isTLS || s.b.opt.Implicit, Authed: s.authed}
	if err := parse(&rec); err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unparsable message: " + err.Error()}
	}
	s.b.s.Messages <- rec
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// parse fills Header, Subject, Text and HTML from Raw.
func parse(rec *Received) error {
	m, err := mail.ReadMessage(strings.NewReader(string(rec.Raw)))
	if err != nil {
		return err
	}
	rec.Header = m.Header
	dec := new(mime.WordDecoder)
	if rec.Subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		return err
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(m.Body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			body, err := decodeBody(p.Header.Get("Content-Transfer-Encoding"), p)
			if err != nil {
				return err
			}
			pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			switch pt {
			case "text/plain":
				rec.Text = body
			case "text/html":
				rec.HTML = body
			}
		}
	}
	rec.Text, err = decodeBody(m.Header.Get("Content-Transfer-Encoding"), m.Body)
	return err
}

func decodeBody(cte string, r io.Reader) (string, error) {
	if strings.EqualFold(cte, "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	return strings.ReplaceAll(string(b), "\r\n", "\n"), err
}

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// Port as a string, for settings.
func (s *Server) PortString() string { return strconv.Itoa(s.Port) }
