// Package mail sends Gatehouse's transactional email (account verification, password reset, notices)
// through a Mailer. The SMTP implementation speaks STARTTLS or implicit TLS with AUTH PLAIN, under
// timeouts; messages are built here with strict header handling, so no caller-supplied text can inject
// a header.
package mail

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// Message is one email to one recipient. Text is the plain-text body (UTF-8); HTML, when set, is sent
// as a multipart/alternative second part.
type Message struct {
	To      string // an address, optionally with a display name: "Ann <ann@example.com>"
	Subject string
	Text    string
	HTML    string
}

// ErrHeader is returned for an address or subject that cannot go into a header safely (CR, LF or
// another control character, or not an address at all).
var ErrHeader = errors.New("mail: invalid header value")

// headerSafe rejects control characters (CR and LF above all: header injection), and over-long values.
func headerSafe(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrHeader, field, max)
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: %s contains a control character", ErrHeader, field)
	}
	return nil
}

// ParseAddress checks an address header value (no control characters, one RFC 5322 address) and
// returns it parsed.
func ParseAddress(field, v string) (*mail.Address, error) {
	if err := headerSafe(field, v, 998); err != nil {
		return nil, err
	}
	a, err := mail.ParseAddress(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not an email address", ErrHeader, field)
	}
	if err := headerSafe(field, a.Address, 254); err != nil {
		return nil, err
	}
	return a, nil
}

// Build renders msg as an RFC 5322 message from the given sender, with CRLF line ends; the sender's
// domain names the Message-ID. It returns the bare envelope addresses too.
func Build(from string, msg Message, now time.Time) (raw []byte, envFrom, envTo string, err error) {
	fa, err := ParseAddress("from", from)
	if err != nil {
		return nil, "", "", err
	}
	ta, err := ParseAddress("to", msg.To)
	if err != nil {
		return nil, "", "", err
	}
	if err := headerSafe("subject", msg.Subject, 500); err != nil {
		return nil, "", "", err
	}
	if msg.Text == "" {
		return nil, "", "", errors.New("mail: empty body")
	}
	domain := "localhost"
	if _, d, ok := strings.Cut(fa.Address, "@"); ok && d != "" {
		domain = d
	}
	id := make([]byte, 16)
	rand.Read(id) //nolint:errcheck // crypto/rand does not fail on supported platforms

	var b bytes.Buffer
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", fa.String())
	hdr("To", ta.String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	hdr("Date", now.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id)+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Auto-Submitted", "auto-generated")
	if msg.HTML == "" {
		hdr("Content-Type", "text/plain; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, msg.Text); err != nil {
			return nil, "", "", err
		}
		return b.Bytes(), fa.Address, ta.Address, nil
	}
	boundary := "gh-" + hex.EncodeToString(id[:8])
	hdr("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	for _, part := range []struct{ ct, body string }{{"text/plain", msg.Text}, {"text/html", msg.HTML}} {
		b.WriteString("--" + boundary + "\r\n")
		hdr("Content-Type", part.ct+"; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, part.body); err != nil {
			return nil, "", "", err
		}
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes(), fa.Address, ta.Address, nil
}

// writeQP writes body quoted-printable with CRLF line ends (lines stay under 76 characters, so a long
// link can never exceed SMTP's line limit, and a lone "." line is encoded by the writer's rules).
func writeQP(b *bytes.Buffer, body string) error {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	body = strings.ReplaceAll(body, "\n", "\r\n")
	w := quotedprintable.NewWriter(b)
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return nil
}
