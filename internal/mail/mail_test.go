package mail_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/mail/mailtest"
)

func fixedNow() time.Time { return time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC) }

func TestSendThroughRealSMTP(t *testing.T) {
	cases := []struct {
		name string
		opt  mailtest.Options
		mode mail.TLSMode
		user string
		pass string
		tls  bool
	}{
		{"starttls+auth", mailtest.Options{Username: "mailer", Password: "s3cret pass"}, mail.StartTLS, "mailer", "s3cret pass", true},
		{"implicit tls+auth", mailtest.Options{Implicit: true, Username: "mailer", Password: "pw"}, mail.ImplicitTLS, "mailer", "pw", true},
		{"starttls no auth", mailtest.Options{}, mail.StartTLS, "", "", true},
		{"plain loopback relay with auth", mailtest.Options{NoTLS: true, Username: "u", Password: "p"}, mail.NoTLS, "u", "p", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.Start(t, tc.opt)
			m, err := mail.NewSMTP(mail.SMTPConfig{
				Host: srv.Host, Port: srv.Port, Username: tc.user, Password: tc.pass, TLS: tc.mode,
				From: "Gatehouse <no-reply@example.com>", TLSConfig: srv.TLSConfig(), Now: fixedNow,
			})
			if err != nil {
				t.Fatal(err)
			}
			link := "https://api.example.com/login/custom/reset/confirm?token=" + strings.Repeat("A", 43)
			err = m.Send(context.Background(), mail.Message{
				To: "Ann Über <ann@example.org>", Subject: "Réinitialiser le mot de passe",
				Text: "Hello,\n\nOpen " + link + "\n.\nBye",
			})
			if err != nil {
				t.Fatal(err)
			}
			got := srv.Wait(t)
			if got.From != "no-reply@example.com" || len(got.To) != 1 || got.To[0] != "ann@example.org" {
				t.Fatalf("envelope: from %q to %q", got.From, got.To)
			}
			if got.TLS != tc.tls {
				t.Fatalf("tls = %v, want %v", got.TLS, tc.tls)
			}
			if got.Authed != tc.user {
				t.Fatalf("authenticated as %q, want %q", got.Authed, tc.user)
			}
			if got.Subject != "Réinitialiser le mot de passe" {
				t.Fatalf("subject %q", got.Subject)
			}
			if !strings.Contains(got.Text, link) || !strings.Contains(got.Text, "\n.\nBye") {
				t.Fatalf("body lost the link or the dot line:\n%s", got.Text)
			}
			for _, h := range []string{"Date", "Message-Id", "Mime-Version", "From", "To"} {
				if got.Header.Get(h) == "" {
					t.Errorf("header %s missing", h)
				}
			}
			if got.Header.Get("Date") != "Tue, 24 Nov 2026 00:00:00 +0000" {
				t.Errorf("Date %q", got.Header.Get("Date"))
			}
			for _, line := range strings.Split(string(got.Raw), "\r\n") {
				if len(line) > 78 {
					t.Errorf("line longer than 78: %q", line)
				}
			}
		})
	}
}

func TestSendHTMLAlternative(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "no-reply@example.com", TLSConfig: srv.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), mail.Message{To: "bob@example.org", Subject: "Hi", Text: "plain", HTML: "<p>html &amp; more</p>"}); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(t)
	if strings.TrimSpace(got.Text) != "plain" || strings.TrimSpace(got.HTML) != "<p>html &amp; more</p>" {
		t.Fatalf("parts: %q %q", got.Text, got.HTML)
	}
}

func TestSendFailures(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{Username: "u", Password: "right"})
		m, _ := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, Username: "u", Password: "wrong", From: "a@example.com", TLSConfig: srv.TLSConfig()})
		err := m.Send(context.Background(), mail.Message{To: "b@example.com", Subject: "s", Text: "t"})
		if err == nil || !strings.Contains(err.Error(), "auth") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Fatalf("error leaks the password: %v", err)
		}
	})
	t.Run("starttls required but not offered", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{NoTLS: true})
		m, _ := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "a@example.com", TLSConfig: srv.TLSConfig()})
		err := m.Send(context.Background(), mail.Message{To: "b@example.com", Subject: "s", Text: "t"})
		if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("err = %v", err)
		}
		select {
		case <-srv.Messages:
			t.Fatal("a message was delivered without TLS")
		default:
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{})
		m, _ := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "a@example.com"})
		err := m.Send(context.Background(), mail.Message{To: "b@example.com", Subject: "s", Text: "t"})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("temporary failure", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{})
		srv.FailNext(1)
		m, _ := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "a@example.com", TLSConfig: srv.TLSConfig()})
		err := m.Send(context.Background(), mail.Message{To: "b@example.com", Subject: "s", Text: "t"})
		if err == nil || !strings.Contains(err.Error(), "451") {
			t.Fatalf("err = %v", err)
		}
		if err := m.Send(context.Background(), mail.Message{To: "b@example.com", Subject: "s", Text: "t"}); err != nil {
			t.Fatal(err)
		}
		srv.Wait(t)
	})
	t.Run("server hangs: timeout", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{Hang: true})
		m, _ := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "a@example.com", Timeout: 200 * time.Millisecond})
		err := m.Send(context.Background(), mail.Message{To: "b@example.com", Subject: "s", Text: "t"})
		if err == nil {
			t.Fatal("no error from a hanging server")
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.Options{Hang: true})
		m, _ := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "a@example.com", Timeout: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- m.Send(ctx, mail.Message{To: "b@example.com", Subject: "s", Text: "t"}) }()
		cancel()
		if err := <-errc; err == nil {
			t.Fatal("no error after cancel")
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		m, _ := mail.NewSMTP(mail.SMTPConfig{Host: "127.0.0.1", Port: 1, From: "a@example.com"})
		if err := m.Send(context.Background(), mail.Message{To: "b@example.com", Subject: "s", Text: "t"}); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestHeaderInjectionRefused(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "a@example.com", TLSConfig: srv.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	bad := []mail.Message{
		{To: "victim@example.com\r\nBcc: all@example.com", Subject: "s", Text: "t"},
		{To: "victim@example.com\nBcc: all@example.com", Subject: "s", Text: "t"},
		{To: "victim@example.com", Subject: "hi\r\nBcc: all@example.com", Text: "t"},
		{To: "victim@example.com", Subject: "hi\nX: y", Text: "t"},
		{To: "victim@example.com", Subject: "hi\rX: y", Text: "t"},
		{To: "victim@example.com", Subject: "nul\x00", Text: "t"},
		{To: "not an address", Subject: "s", Text: "t"},
		{To: "a@example.com, b@example.com", Subject: "s", Text: "t"},
		{To: "", Subject: "s", Text: "t"},
		{To: "a@example.com", Subject: strings.Repeat("x", 501), Text: "t"},
		{To: "a@example.com", Subject: "s", Text: ""},
	}
	for i, msg := range bad {
		err := m.Send(context.Background(), msg)
		if err == nil {
			t.Errorf("case %d: accepted %q / %q", i, msg.To, msg.Subject)
		}
		if i < 10 && !errors.Is(err, mail.ErrHeader) {
			t.Errorf("case %d: err = %v, want ErrHeader", i, err)
		}
	}
	select {
	case got := <-srv.Messages:
		t.Fatalf("a message was sent: %q", got.Raw)
	default:
	}
}

func TestBuildHeaders(t *testing.T) {
	raw, from, to, err := mail.Build(`"Gate, House" <no-reply@example.com>`, mail.Message{To: "x@example.org", Subject: "Ünïcode subject", Text: "a\nb"}, fixedNow())
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if from != "no-reply@example.com" || to != "x@example.org" {
		t.Fatalf("envelope %q %q", from, to)
	}
	for _, want := range []string{"From: \"Gate, House\" <no-reply@example.com>\r\n", "To: <x@example.org>\r\n", "Subject: =?utf-8?q?", "Content-Type: text/plain; charset=utf-8\r\n", "\r\n\r\na\r\nb\r\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	if strings.Contains(s, "\n\n") || strings.Count(s, "\n") != strings.Count(s, "\r\n") {
		t.Error("bare LF in message")
	}
}

func TestNewSMTPConfig(t *testing.T) {
	bad := []mail.SMTPConfig{
		{},
		{Host: "smtp.example.com", From: "nope"},
		{Host: "smtp.example.com", From: "a@example.com", TLS: "ssl"},
		{Host: "smtp.example.com", From: "a@example.com", Port: 70000},
		{Host: "smtp.example.com", From: "a@example.com", TLS: mail.NoTLS, Username: "u", Password: "p"},
		{Host: "smtp.example.com", From: "a@example.com\r\nBcc: x@example.com"},
	}
	for i, c := range bad {
		if _, err := mail.NewSMTP(c); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	if _, err := mail.NewSMTP(mail.SMTPConfig{Host: "smtp.example.com", From: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := (mail.Disabled{}).Send(context.Background(), mail.Message{}); !errors.Is(err, mail.ErrNotConfigured) {
		t.Fatal(err)
	}
}
