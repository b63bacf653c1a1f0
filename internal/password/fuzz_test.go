package password

import (
	"testing"
	"unicode/utf8"
)

// FuzzParseStored: the parser never panics; whatever it accepts
// (leniently, as imports do) re-encodes to a canonical string that parses
// strictly to the same canonical string.
func FuzzParseStored(f *testing.F) {
	for _, s := range []string{
		argon2Reference[0].stored, argon2Reference[2].stored, bcryptReference[0].stored,
		"$pbkdf2-sha1$i=1000$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA",
		"$scrypt$ln=4,r=1,p=1$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA",
		"$firebase-scrypt$ln=4,r=1,ss=Bw,sk=AAAAAAAAAAAAAAAAAAAAAA$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA",
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4=",
		"", "$", "$$$$", "$argon2id$v=19$m=,t=,p=$$",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		strict, serr := parseStored(s, false)
		if serr == nil && strict.String() != s {
			t.Fatalf("strict parse is not canonical: %q → %q", s, strict.String())
		}
		sh, err := parseStored(s, true)
		if err != nil {
			if serr == nil {
				t.Fatalf("strict accepts %q but lenient refuses: %v", s, err)
			}
			return
		}
		c := sh.String()
		again, err := parseStored(c, false)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", c, s, err)
		}
		if again.String() != c || again.scheme() != sh.scheme() {
			t.Fatalf("canonical form unstable: %q → %q", c, again.String())
		}
	})
}

// FuzzNormalizeEmail: accepted addresses are idempotent, at most 254 bytes,
// and valid addr-specs for net/mail.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"user@example.com", " User+x@Example.COM ", "jörg@bücher.de", `"a b"@c.d`, "a@b", "a@[1.2.3.4]", "a..b@c.d", "a\u200b@b.c", "ｕ＠ｂ．ｃ", "a@xn--bcher-kva.de"} {
		f.Add(s)
	}
	p := DefaultPolicy()
	f.Fuzz(func(t *testing.T, s string) {
		got, err := p.NormalizeEmail(s)
		if err != nil {
			return
		}
		if len(got) > maxEmailBytes || !utf8.ValidString(got) {
			t.Fatalf("accepted %q", got)
		}
		// The profile is a canonical form: idempotent, nothing invisible left (issue 10 finding 17).
		if again, err := p.NormalizeEmail(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q, %v", got, again, err)
		}
		for _, r := range got {
			if invisible(r) {
				t.Fatalf("invisible U+%04X kept in %q", r, got)
			}
		}
		checkAgainstNetMail(t, p, s)
	})
}

// FuzzNormalizePassword: normalization is idempotent and respects the bounds.
func FuzzNormalizePassword(f *testing.F) {
	for _, s := range []string{"password", "ﬁﬁﬁﬁ1234", "ｐａｓｓｗｏｒｄ", "cafe\u0301-latte", "\xff\xfe", "\uFDFA\uFDFA\uFDFA"} {
		f.Add(s)
	}
	p := DefaultPolicy()
	f.Fuzz(func(t *testing.T, s string) {
		got, err := p.NormalizePassword(s)
		if err != nil {
			return
		}
		if len(got) > defaultMaxBytes || utf8.RuneCountInString(got) < defaultMinLength {
			t.Fatalf("bounds violated: %q", got)
		}
		again, err := p.NormalizePassword(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q, %v", got, again, err)
		}
	})
}
