package account

import (
	"github.com/gatehouse/gatehouse/internal/user"
	"strings"
	"testing"
	"time"
)

// RFC 6238 appendix B, SHA-1 column, truncated to six digits (the last six of the eight given).
func TestTOTPRFC6238Vectors(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		code string
	}{{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"}} {
		if got := totpCode(secret, totpStep(time.Unix(v.unix, 0))); got != v.code {
			t.Errorf("T=%d: %s, want %s", v.unix, got, v.code)
		}
	}
}

func TestTOTPWindowAndReplay(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1_700_000_010, 0) // inside a step
	cur := totpStep(now)
	for d := int64(-1); d <= 1; d++ {
		step, ok, reused := totpMatch(secret, totpCode(secret, cur+d), now, 0)
		if !ok || reused || step != cur+d {
			t.Errorf("step %+d: ok=%v reused=%v step=%d", d, ok, reused, step)
		}
	}
	for _, d := range []int64{-2, 2} {
		if _, ok, _ := totpMatch(secret, totpCode(secret, cur+d), now, 0); ok {
			t.Errorf("step %+d accepted outside the window", d)
		}
	}
	// Replay: the step used last, and any earlier one, is refused as reused.
	if _, ok, reused := totpMatch(secret, totpCode(secret, cur), now, cur); ok || !reused {
		t.Errorf("replayed code: ok=%v reused=%v", ok, reused)
	}
	if _, ok, reused := totpMatch(secret, totpCode(secret, cur-1), now, cur); ok || !reused {
		t.Errorf("older code after a newer one: ok=%v reused=%v", ok, reused)
	}
	if _, ok, _ := totpMatch(secret, totpCode(secret, cur+1), now, cur); !ok {
		t.Error("next step's code refused after the current one was used")
	}
}

func TestParseTOTPCode(t *testing.T) {
	for in, want := range map[string]string{"123456": "123456", "123 456": "123456", " 000001 ": "000001"} {
		if got, ok := parseTOTPCode(in); !ok || got != want {
			t.Errorf("%q: %q %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "12345", "1234567", "12345a", "١٢٣٤٥٦", "123-456", strings.Repeat(" ", 20) + "123456"} {
		if _, ok := parseTOTPCode(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestOtpauthURI(t *testing.T) {
	u := otpauthURI("Test: App", "ann@example.com", []byte("12345678901234567890"))
	want := "otpauth://totp/Test%20App:ann@example.com?algorithm=SHA1&digits=6&issuer=Test%3A+App&period=30&secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	if u != want {
		t.Fatalf("%s\nwant %s", u, want)
	}
}

func TestRecoveryCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		c := newRecoveryCode()
		n, ok := normRecoveryCode(c)
		if !ok || len(c) != 19 || seen[n] {
			t.Fatalf("code %q (%q %v)", c, n, ok)
		}
		seen[n] = true
		// People may type it in upper case, without dashes, with spaces.
		if m, ok := normRecoveryCode(strings.ToUpper(strings.ReplaceAll(c, "-", " "))); !ok || m != n {
			t.Fatalf("%q normalised to %q", c, m)
		}
	}
	if recoveryHash("a", "x") == recoveryHash("b", "x") {
		t.Fatal("recovery hash ignores the account")
	}
	for _, bad := range []string{"", "abcd", "abcd-efgh-ijkl-mno1", strings.Repeat("a", 65)} {
		if _, ok := normRecoveryCode(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseTOTPCode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", "12345", "abcdef", " 1 2 3 4 5 6", "1234567"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := parseTOTPCode(s)
		if !ok {
			return
		}
		if len(c) != totpDigits || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("%q parsed to %q", s, c)
		}
		if strings.ReplaceAll(s, " ", "") != c {
			t.Fatalf("%q parsed to %q", s, c)
		}
	})
}

// BenchmarkTOTPVerify is the CPU cost of checking one code: the three candidate steps' HMAC-SHA-1
// and constant-time comparisons (the code is the last candidate, the worst case).
func BenchmarkTOTPVerify(b *testing.B) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1_700_000_010, 0)
	code := totpCode(secret, totpStep(now)+1)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := totpMatch(secret, code, now, 0); !ok {
			b.Fatal("no match")
		}
	}
}

// BenchmarkTOTPVerifySealed adds what a verification does around the match without the database:
// opening the sealed secret and sealing it again under the current key (AES-256-GCM).
func BenchmarkTOTPVerifySealed(b *testing.B) {
	s, err := user.NewSealer("account second factors", "bench-master-key-0123456789abcdef")
	if err != nil {
		b.Fatal(err)
	}
	secret := []byte("12345678901234567890")
	sealed, _ := s.Seal(secret, totpAD("acct"))
	now := time.Unix(1_700_000_010, 0)
	code := totpCode(secret, totpStep(now))
	b.ReportAllocs()
	for b.Loop() {
		sec, err := s.Open(sealed, totpAD("acct"))
		if err != nil {
			b.Fatal(err)
		}
		if _, ok, _ := totpMatch(sec, code, now, 0); !ok {
			b.Fatal("no match")
		}
		if _, err := s.Seal(sec, totpAD("acct")); err != nil {
			b.Fatal(err)
		}
	}
}
