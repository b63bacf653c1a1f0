package account

import (
	"testing"
	"time"
)

// TestRuleSchedule checks the backoff arithmetic and the hourly cap on a fake clock.
func TestRuleSchedule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rule := DefaultRules().Pair
	var r ThrottleRow
	now := t0
	var blocks []time.Duration
	for i := 1; i <= 16; i++ {
		now = now.Add(r.wait(now)) // the attacker waits exactly as long as told
		r = rule.fail(r, now)
		blocks = append(blocks, r.wait(now))
	}
	want := []time.Duration{0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900}
	for i, w := range want {
		if blocks[i] != w*time.Second {
			t.Fatalf("failure %d: block %v, want %vs (all: %v)", i+1, blocks[i], w, blocks)
		}
	}
	// Decay: after an idle hour the consecutive count starts over.
	now = now.Add(r.wait(now) + time.Hour)
	r = rule.fail(r, now)
	if r.Failures != 1 || r.wait(now) != 0 {
		t.Fatalf("after decay: %+v", r)
	}

	// The hourly cap: a rule without backoff blocks at PerHour until the window ends.
	capped := Rule{Free: 1000, Base: time.Second, Max: time.Second, PerHour: 100, Decay: time.Hour}
	r, now = ThrottleRow{}, t0
	for i := 1; i < 100; i++ {
		r = capped.fail(r, now.Add(time.Duration(i)*time.Second))
		if r.wait(now.Add(time.Duration(i)*time.Second)) != 0 {
			t.Fatalf("blocked after %d failures", i)
		}
	}
	at := now.Add(100 * time.Second)
	r = capped.fail(r, at)
	if w := r.wait(at); w != time.Hour+time.Second-100*time.Second { // the window began at the first failure, t0+1s
		t.Fatalf("hourly cap wait %v", w)
	}
	// The next window starts fresh.
	at = t0.Add(time.Hour + time.Second)
	r = capped.fail(r, at)
	if r.WindowCount != 1 || r.wait(at) != 0 {
		t.Fatalf("new window: %+v", r)
	}
}

func TestClientPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":                 "203.0.113.7",
		"::ffff:203.0.113.7":          "203.0.113.7",
		"2001:db8:1:2:3:4:5:6":        "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff:ff:1": "2001:db8:1:2::/64",
		"garbage":                     "garbage",
	} {
		if got := clientPrefix(in); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}
