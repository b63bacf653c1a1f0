package keyset

import (
	"net/http"
	"testing"
	"time"
)

func TestLifetime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const (
		def = time.Hour
		lo  = 5 * time.Minute
		hi  = 24 * time.Hour
	)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		hdr  http.Header
		want time.Duration
	}{
		{"google", h("Cache-Control", "public, max-age=24873, must-revalidate, no-transform"), 24873 * time.Second},
		{"age subtracted", h("Cache-Control", "public, max-age=24873", "Age", "5059"), (24873 - 5059) * time.Second},
		{"age beyond max-age clamps to min", h("Cache-Control", "max-age=100", "Age", "500"), lo},
		{"quoted max-age", h("Cache-Control", `max-age="3600"`), time.Hour},
		{"max-age wins over expires", h("Cache-Control", "max-age=7200", "Expires", now.Add(time.Minute).Format(http.TimeFormat)), 2 * time.Hour},
		{"expires relative to date", h("Expires", now.Add(3*time.Hour).Format(http.TimeFormat), "Date", now.Add(-time.Hour).Format(http.TimeFormat)), 4 * time.Hour},
		{"expires relative to now", h("Expires", now.Add(3*time.Hour).Format(http.TimeFormat)), 3 * time.Hour},
		{"invalid expires is expired", h("Expires", "0"), lo},
		{"no-cache (Apple) clamps to min", h("Cache-Control", "no-cache, no-store"), lo},
		{"no headers uses default", h(), def},
		{"garbage max-age ignored", h("Cache-Control", "max-age=abc"), def},
		{"huge clamps to max", h("Cache-Control", "max-age=99999999999999999"), hi},
		{"negative ignored", h("Cache-Control", "max-age=-5"), def},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lifetime(tc.hdr, now, def, lo, hi); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	s := &Set{cfg: Config{RetryMin: 15 * time.Second, RetryMax: 5 * time.Minute}}
	want := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if got := s.backoff(i + 1); got != w {
			t.Errorf("failure %d: got %v, want %v", i+1, got, w)
		}
	}
}
