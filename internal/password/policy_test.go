package password

import (
	"errors"
	"net/mail"
	"strings"
	"testing"
)

func TestNormalizePassword(t *testing.T) {
	p := DefaultPolicy()
	cases := []struct {
		name, in, want string
		err            error
	}{
		{"ascii", "password", "password", nil},
		{"spaces kept", "  two  spaces  ", "  two  spaces  ", nil},
		{"no composition rules", "aaaaaaaa", "aaaaaaaa", nil},
		{"too short", "abc1234", "", ErrPasswordTooShort},
		{"empty", "", "", ErrPasswordTooShort},
		{"code points not bytes", "ääääääa", "", ErrPasswordTooShort}, // 7 runes, 13 bytes
		{"emoji counts once", "😀😀😀😀😀😀😀😀", "😀😀😀😀😀😀😀😀", nil},
		{"NFKC ligature", "ﬁﬁﬁﬁ1234", "fifififi1234", nil},
		{"NFKC fullwidth", "ｐａｓｓｗｏｒｄ", "password", nil},
		{"NFKC composes", "cafe\u0301-latte", "caf\u00e9-latte", nil},
		{"max bytes", strings.Repeat("a", 1024), strings.Repeat("a", 1024), nil},
		{"over max bytes", strings.Repeat("a", 1025), "", ErrPasswordTooLong},
		{"raw over max", strings.Repeat("a", 1000) + strings.Repeat("ﬃ", 10), "", ErrPasswordTooLong}, // 1030 bytes
		{"expands past max", strings.Repeat("a", 1010) + "\uFDFA", "", ErrPasswordTooLong},            // 1013 bytes → 1043
		{"invalid utf8", "abcdefgh\xff", "", ErrPasswordEncoding},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := p.NormalizePassword(c.in)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if err != nil {
				var pe *PolicyError
				if !errors.As(err, &pe) || pe.Field != "password" || strings.Contains(pe.Error(), c.in) && c.in != "" {
					t.Fatalf("error %v is not a clean *PolicyError", err)
				}
			}
		})
	}
}

func TestPolicyConfigurable(t *testing.T) {
	p := Policy{MinLength: 7, MaxBytes: 16}
	if _, err := p.NormalizePassword("abc1234"); err != nil {
		t.Fatalf("7 chars with MinLength 7: %v", err)
	}
	_, err := p.NormalizePassword(strings.Repeat("a", 17))
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Limit != 16 || !errors.Is(err, ErrPasswordTooLong) {
		t.Fatalf("err = %v", err)
	}
	_, err = Policy{}.NormalizePassword("short")
	if !errors.As(err, &pe) || pe.Limit != 8 || pe.Error() != "password too short: at least 8 characters are required" {
		t.Fatalf("zero Policy: %v", err)
	}
}

func TestNormalizeLoginPassword(t *testing.T) {
	p := DefaultPolicy()
	if got, err := p.NormalizeLoginPassword("ｓｈｏｒｔ"); err != nil || got != "short" {
		t.Fatalf("got %q, %v (no minimum at login)", got, err)
	}
	if _, err := p.NormalizeLoginPassword(strings.Repeat("a", 1025)); !errors.Is(err, ErrPasswordTooLong) {
		t.Fatalf("err = %v", err)
	}
	if _, err := p.NormalizeLoginPassword("\xff"); !errors.Is(err, ErrPasswordEncoding) {
		t.Fatalf("err = %v", err)
	}
}

func TestNormalizeEmail(t *testing.T) {
	p := DefaultPolicy()
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"user@example.com", "user@example.com", true},
		{"  User.Name+tag@Example.COM \n", "User.Name+tag@example.com", true},
		{"o'brien@example.co.uk", "o'brien@example.co.uk", true},
		{"!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com", true},
		{"jörg@bücher.de", "jörg@bücher.de", true},
		{"JÖRG@BÜCHER.DE", "JÖRG@bücher.de", true},
		{"jo\u0308rg@example.com", "jörg@example.com", true}, // NFC
		// The ACE and Unicode forms of a domain are one domain (issue 10 finding 17): stored in its
		// Unicode form. (This case used to expect the ACE form kept as typed.)
		{"a@xn--bcher-kva.example", "a@bücher.example", true},
		{"a@Bücher.example", "a@bücher.example", true},
		// Invisible and formatting characters are refused, not removed.
		{"us\u200Ber@example.com", "", false},
		{"user@exam\u200Bple.com", "", false},
		{"us\u00ADer@example.com", "", false},
		{"user@exa\u00ADmple.com", "", false},
		{"\u202Euser@example.com", "", false},
		{"user\u2066@example.com", "", false},
		{"user@example.com\u200D", "", false},
		{"\uFEFFuser@example.com", "", false},
		{"us\uFE0Fer@example.com", "", false},
		{"us\u3164er@example.com", "", false},
		{"us\u034Fer@example.com", "", false},
		{"us\u00A0er@example.com", "", false},
		{"us\uE000er@example.com", "", false},
		// Fullwidth forms are the ordinary characters.
		{"ｕｓｅｒ＠ｅｘａｍｐｌｅ．ｃｏｍ", "user@example.com", true},
		{"ＵＳＥＲ@example.com", "USER@example.com", true},
		{"User@EXAMPLE.com", "User@example.com", true},
		// Symbols outside ASCII are not address characters (PRECIS IdentifierClass).
		{"user\u2605@example.com", "", false},
		{"a@b.c", "a@b.c", true},
		{"", "", false},
		{"   ", "", false},
		{"plainaddress", "", false},
		{"@example.com", "", false},
		{"user@", "", false},
		{"a@b@example.com", "", false},
		{"John <john@example.com>", "", false},
		{"<john@example.com>", "", false},
		{"john@example.com (John)", "", false},
		{`"john doe"@example.com`, "", false},
		{"john doe@example.com", "", false},
		{".john@example.com", "", false},
		{"john.@example.com", "", false},
		{"jo..hn@example.com", "", false},
		{"john@localhost", "", false},
		{"john@example..com", "", false},
		{"john@.example.com", "", false},
		{"john@example.com.", "", false},
		{"john@-example.com", "", false},
		{"john@example-.com", "", false},
		{"john@exa_mple.com", "", false},
		{"john@[127.0.0.1]", "", false},
		{"john@127.0.0.1", "", false},
		{"jo\x00hn@example.com", "", false},
		{"jo\thn@example.com", "", false},
		{"john@example.com\xff", "", false},
		{strings.Repeat("a", 65) + "@example.com", "", false},
		{"a@" + strings.Repeat("b", 64) + ".com", "", false},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b.", 95) + "com", "", false}, // 257 bytes
	}
	for _, c := range cases {
		got, err := p.NormalizeEmail(c.in)
		if (err == nil) != c.ok {
			t.Errorf("NormalizeEmail(%q) err = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Field != "email" || !(errors.Is(err, ErrEmailInvalid) || errors.Is(err, ErrEmailTooLong)) {
				t.Errorf("NormalizeEmail(%q): error %v is not an email *PolicyError", c.in, err)
			}
			continue
		}
		if got != c.want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", c.in, got, c.want)
		}
	}

	if _, err := (Policy{AllowDotlessDomain: true}).NormalizeEmail("admin@intranet"); err != nil {
		t.Errorf("AllowDotlessDomain: %v", err)
	}
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b.", 95) + "com"
	if _, err := p.NormalizeEmail(long); !errors.Is(err, ErrEmailTooLong) {
		t.Errorf("long: %v", err)
	}
}

func TestEmailKey(t *testing.T) {
	p := DefaultPolicy()
	a, _ := p.NormalizeEmail("John.Smith@Example.com")
	b, _ := p.NormalizeEmail("john.smith@EXAMPLE.COM")
	c, _ := p.NormalizeEmail("JÖRG@example.com")
	d, _ := p.NormalizeEmail("jo\u0308rg@example.com")
	if a == b {
		t.Fatal("NormalizeEmail must keep the local part as typed")
	}
	if EmailKey(a) != EmailKey(b) || EmailKey(a) != "john.smith@example.com" {
		t.Fatalf("keys %q %q", EmailKey(a), EmailKey(b))
	}
	if EmailKey(c) != EmailKey(d) {
		t.Fatalf("keys %q %q", EmailKey(c), EmailKey(d))
	}
}

// TestNormalizeEmailAgreesWithNetMail: everything accepted is also a valid
// RFC 5322 addr-spec to net/mail, which yields the same address back.
func TestNormalizeEmailAgreesWithNetMail(t *testing.T) {
	for _, in := range []string{"user@example.com", "a.b+c@d-e.example", "!#$%&'*+-/=?^_`{|}~@example.com", "jörg@bücher.de"} {
		checkAgainstNetMail(t, DefaultPolicy(), in)
	}
}

func checkAgainstNetMail(t *testing.T, p Policy, in string) {
	t.Helper()
	got, err := p.NormalizeEmail(in)
	if err != nil {
		return
	}
	a, err := mail.ParseAddress(got)
	if err != nil {
		t.Fatalf("NormalizeEmail accepted %q (→ %q) but net/mail refuses it: %v", in, got, err)
	}
	if a.Address != got || a.Name != "" {
		t.Fatalf("net/mail reads %q as %+v", got, a)
	}
	if again, err := p.NormalizeEmail(got); err != nil || again != got {
		t.Fatalf("not idempotent: %q → %q, %v", got, again, err)
	}
}
