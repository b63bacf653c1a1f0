package account

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 6238 TOTP as authenticator apps implement it: HMAC-SHA-1
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters (RFC 6238 with the values every authenticator app accepts): HMAC-SHA-1, six digits,
// 30-second steps, a secret of 160 bits (RFC 4226 §4 recommends at least 128).
const (
	totpDigits     = 6
	totpPeriod     = 30
	totpSecretSize = 20
	// totpSkew is how many steps before and after the current one a code may be from (clock drift and
	// the time it takes to type).
	totpSkew = 1
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// totpStep is the RFC 6238 time step T at now.
func totpStep(now time.Time) int64 { return now.Unix() / totpPeriod }

// totpCode computes the code of one step (RFC 4226 HOTP with the step as counter).
func totpCode(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	var out [totpDigits]byte
	for i := totpDigits - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
	return string(out[:])
}

// parseTOTPCode reads a code as people type it: six digits, spaces allowed ("123 456"). Anything else
// (letters, other lengths, more than 16 bytes) is not a code.
func parseTOTPCode(s string) (string, bool) {
	if len(s) > 16 {
		return "", false
	}
	var out [totpDigits]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			continue
		case c >= '0' && c <= '9' && n < totpDigits:
			out[n] = c
			n++
		default:
			return "", false
		}
	}
	if n != totpDigits {
		return "", false
	}
	return string(out[:]), true
}

// totpMatch looks for code among the steps around now. It returns the step that matched; reused is
// true when the only match is a step at or before lastStep (a code already accepted, or older than
// one that was: RFC 6238 §5.2 asks that a code be accepted once). Every candidate is compared in
// constant time, all of them, whatever matched.
func totpMatch(secret []byte, code string, now time.Time, lastStep int64) (step int64, ok, reused bool) {
	cur := totpStep(now)
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		if subtle.ConstantTimeCompare([]byte(totpCode(secret, s)), []byte(code)) == 1 {
			if s <= lastStep {
				reused = true
				continue
			}
			if !ok {
				step, ok = s, true
			}
		}
	}
	if ok {
		reused = false
	}
	return step, ok, reused
}

// otpauthURI is the Key URI Format of Google Authenticator, which every authenticator app reads from
// the QR code: otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30.
func otpauthURI(issuer, account string, secret []byte) string {
	label := url.PathEscape(strings.ReplaceAll(issuer, ":", "")) + ":" + url.PathEscape(account)
	q := url.Values{}
	q.Set("secret", b32.EncodeToString(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", "6")
	q.Set("period", "30")
	return "otpauth://totp/" + label + "?" + q.Encode()
}
