package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mailer sends one message. Implementations are safe for concurrent use.
type Mailer interface {
	Send(ctx context.Context, msg Message) error
}

// ErrNotConfigured is returned by Disabled: no mail server is configured.
var ErrNotConfigured = errors.New("mail: no SMTP server configured (mail.smtp_host)")

// Disabled is the Mailer used when no SMTP server is configured: every Send fails with
// ErrNotConfigured (callers log it; the message is never logged, it may hold a link).
type Disabled struct{}

// Send implements Mailer.
func (Disabled) Send(context.Context, Message) error { return ErrNotConfigured }

// TLSMode is how the SMTP connection is secured.
type TLSMode string

// TLS modes.
const (
	// StartTLS connects in plain text and requires the STARTTLS upgrade before anything else (port 587).
	StartTLS TLSMode = "starttls"
	// ImplicitTLS connects with TLS from the first byte (SMTPS, port 465).
	ImplicitTLS TLSMode = "tls"
	// NoTLS never encrypts; allowed for a relay on the loopback interface (credentials are refused
	// elsewhere).
	NoTLS TLSMode = "none"
)

// ParseTLSMode reads a tls setting.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(s); m {
	case StartTLS, ImplicitTLS, NoTLS:
		return m, nil
	case "":
		return StartTLS, nil
	}
	return "", fmt.Errorf("mail: tls mode %q: must be starttls, tls or none", s)
}

// SMTPConfig configures the SMTP mailer.
type SMTPConfig struct {
	Host     string
	Port     int // default 587 (starttls, none) or 465 (tls)
	Username string
	Password string
	From     string // "Example <no-reply@example.com>"
	TLS      TLSMode
	// Timeout bounds one whole delivery: connect, TLS, auth, and data (default 30 s).
	Timeout time.Duration
	// HelloName is the name sent in EHLO (default "localhost").
	HelloName string
	// TLSConfig overrides the TLS settings (tests: a private root CA). ServerName defaults to Host.
	TLSConfig *tls.Config
	// Now is the clock for the Date header (default time.Now).
	Now func() time.Time
}

// SMTP delivers messages through one SMTP submission server, one connection per message.
type SMTP struct {
	cfg  SMTPConfig
	addr string
}

// NewSMTP validates cfg and returns the mailer.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, ErrNotConfigured
	}
	mode, err := ParseTLSMode(string(cfg.TLS))
	if err != nil {
		return nil, err
	}
	cfg.TLS = mode
	if cfg.Port == 0 {
		cfg.Port = 587
		if mode == ImplicitTLS {
			cfg.Port = 465
		}
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mail: port %d out of range", cfg.Port)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if _, err := ParseAddress("from", cfg.From); err != nil {
		return nil, fmt.Errorf("mail: from address: %w", err)
	}
	if mode == NoTLS && cfg.Username != "" && !isLoopback(cfg.Host) {
		return nil, errors.New("mail: refusing to send SMTP credentials without TLS to a host that is not loopback (set the tls mode to starttls or tls)")
	}
	return &SMTP{cfg: cfg, addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *SMTP) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		c = s.cfg.TLSConfig.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = s.cfg.Host
	}
	return c
}

// Send delivers msg. It returns when the server accepted the message (250 after DATA) or failed; the
// error never contains the message body.
func (s *SMTP) Send(ctx context.Context, msg Message) error {
	raw, from, to, err := Build(s.cfg.From, msg, s.cfg.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	d := net.Dialer{Timeout: s.cfg.Timeout}
	var conn net.Conn
	if s.cfg.TLS == ImplicitTLS {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: s.tlsConfig()}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("mail: connect to %s: %w", s.addr, err)
	}
	// The deadline bounds every read and write; cancelling ctx closes the connection at once.
	conn.SetDeadline(deadline) //nolint:errcheck // a fresh connection
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var c *smtp.Client
	if s.cfg.TLS == StartTLS {
		// STARTTLS is required, never optional: a server (or an attacker in the path) that does not
		// offer it gets nothing.
		if c, err = smtp.NewClientStartTLS(conn, s.tlsConfig()); err != nil {
			return s.wrap(ctx, "starttls", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout = s.cfg.Timeout
	c.SubmissionTimeout = s.cfg.Timeout
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return s.wrap(ctx, "hello", err)
	}
	if s.cfg.Username != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS && !isLoopback(s.cfg.Host) {
			return errors.New("mail: refusing to authenticate over an unencrypted connection")
		}
		if !c.SupportsAuth(sasl.Plain) {
			return fmt.Errorf("mail: %s does not offer AUTH PLAIN", s.addr)
		}
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)); err != nil {
			return s.wrap(ctx, "auth", err)
		}
	}
	if err := c.SendMail(from, []string{to}, bytes.NewReader(raw)); err != nil {
		return s.wrap(ctx, "send", err)
	}
	if err := c.Quit(); err != nil {
		// The message was accepted; a failed QUIT loses nothing.
		return nil
	}
	return nil
}

func (s *SMTP) wrap(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("mail: %s with %s: %w (%v)", step, s.addr, ctx.Err(), err)
	}
	return fmt.Errorf("mail: %s with %s: %w", step, s.addr, err)
}
