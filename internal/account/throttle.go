package account

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"time"
)

// Rule is an exponential-backoff schedule for one kind of throttling key.
//
// Every attempt is recorded as a failure before the password is checked (so concurrent attempts
// cannot slip past the count) and a success clears the key. After Free consecutive failures, each
// further failure blocks the key for Base, then 2×Base, 4×Base … up to Max. Independently, at most
// PerHour failures are recorded per hour window; the key is then blocked until the window ends.
// Consecutive failures are forgotten after Decay without a failure. An attempt refused because
// the key is blocked is not counted, so hammering a blocked key never extends the block.
type Rule struct {
	Free    int
	Base    time.Duration
	Max     time.Duration
	PerHour int
	Decay   time.Duration
}

// Rules are the throttling schedules.
type Rules struct {
	// Pair throttles one account from one client address (IPv4 address, IPv6 /64).
	Pair Rule
	// Account throttles one account from every address except the account's known addresses (those
	// that logged into it successfully within KnownFor).
	Account Rule
	// IP throttles one client address across every account (credential stuffing).
	IP Rule
	// Mail limits the email a single address can be sent (reset, verification, duplicate notices);
	// over it, requests still answer 202 but no mail goes out.
	Mail Rule
	// Ceremony bounds the passkey sign-in challenges one client address may ask for (each is a
	// database row until it is answered or expires); sign-ins count, not only failures.
	Ceremony Rule
	// KnownFor is how long a successful login makes its address "known" to the account.
	KnownFor time.Duration
}

// DefaultRules are the documented defaults (README, accounts section).
func DefaultRules() Rules {
	return Rules{
		Pair:    Rule{Free: 5, Base: time.Second, Max: 15 * time.Minute, PerHour: 100, Decay: time.Hour},
		Account: Rule{Free: 10, Base: time.Second, Max: time.Minute, PerHour: 100, Decay: time.Hour},
		IP:      Rule{Free: 20, Base: time.Second, Max: 15 * time.Minute, PerHour: 1000, Decay: time.Hour},
		Mail:    Rule{Free: 3, Base: time.Minute, Max: time.Hour, PerHour: 10, Decay: 24 * time.Hour},
		// A rate, not a streak: only the hourly window applies.
		Ceremony: Rule{Free: math.MaxInt32, Base: time.Second, Max: time.Minute, PerHour: 3000, Decay: time.Hour},
		KnownFor: 30 * 24 * time.Hour,
	}
}

// wait is how long the row is still blocked at now (0: not blocked).
func (r ThrottleRow) wait(now time.Time) time.Duration {
	if now.Before(r.BlockedUntil) {
		return r.BlockedUntil.Sub(now)
	}
	return 0
}

// fail records one failure at now under rule.
func (rule Rule) fail(r ThrottleRow, now time.Time) ThrottleRow {
	if !r.LastAt.IsZero() && now.Sub(r.LastAt) >= rule.Decay {
		r.Failures = 0
	}
	if r.WindowStart.IsZero() || now.Sub(r.WindowStart) >= time.Hour {
		r.WindowStart, r.WindowCount = now, 0
	}
	r.Failures++
	r.WindowCount++
	r.LastAt = now
	if r.Failures > rule.Free {
		d := rule.Base
		for i := rule.Free + 1; i < r.Failures && d < rule.Max; i++ {
			d *= 2
		}
		if d > rule.Max {
			d = rule.Max
		}
		if until := now.Add(d); until.After(r.BlockedUntil) {
			r.BlockedUntil = until
		}
	}
	if rule.PerHour > 0 && r.WindowCount >= rule.PerHour {
		if until := r.WindowStart.Add(time.Hour); until.After(r.BlockedUntil) {
			r.BlockedUntil = until
		}
	}
	return r
}

// keyHash shortens an identifier for the throttle table (no email address is stored there).
func keyHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// clientPrefix groups client addresses: an IPv4 address alone, an IPv6 address by its /64 (one
// customer's allocation). An unparsable value is used as is.
func clientPrefix(ip string) string {
	p := net.ParseIP(ip)
	if p == nil {
		return ip
	}
	if v4 := p.To4(); v4 != nil {
		return v4.String()
	}
	return p.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// ScopedThrottleKeys are the address-pair and client-address keys of another sign-in surface (the
// console's scope is "c"), prefixed so that its failures never lock an app user out or the reverse.
func ScopedThrottleKeys(scope, emailKey, ip string) []string {
	return []string{scope + pairKey(emailKey, ip), scope + ipKey(ip)}
}

func pairKey(emailKey, ip string) string  { return "p:" + keyHash(emailKey, clientPrefix(ip)) }
func acctKey(emailKey string) string      { return "a:" + keyHash(emailKey) }
func ipKey(ip string) string              { return "i:" + keyHash(clientPrefix(ip)) }
func knownKey(emailKey, ip string) string { return "k:" + keyHash(emailKey, clientPrefix(ip)) }
func mailKey(emailKey string) string      { return "m:" + keyHash(emailKey) }
func reqKey(ip string) string             { return "r:" + keyHash(clientPrefix(ip)) }
func ceremonyKey(ip string) string        { return "w:" + keyHash(clientPrefix(ip)) }

// Fail is fail for other sign-in forms that share the throttle table (the admin console): the row
// after one more failure at now.
func (rule Rule) Fail(r ThrottleRow, now time.Time) ThrottleRow { return rule.fail(r, now) }

// Wait is how long the row still blocks attempts at now (0: not blocked).
func (r ThrottleRow) Wait(now time.Time) time.Duration { return r.wait(now) }
