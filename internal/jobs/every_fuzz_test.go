package jobs_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/jobs"
)

// FuzzParseEvery: an accepted interval is within the bounds, in whole seconds, and FormatEvery
// writes it back in a form ParseEvery reads as the same interval.
func FuzzParseEvery(f *testing.F) {
	for _, s := range []string{"15m", "1h30m", "7d", "366d", "367d", "59s", "1m0.5s", "-1h", "0d", "1e3h", "9223372036854775807d", " 1h", "1h "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := jobs.ParseEvery(s)
		if err != nil {
			return
		}
		if d < jobs.MinEvery || d > jobs.MaxEvery || d%time.Second != 0 {
			t.Fatalf("ParseEvery(%q) = %v: outside [%v, %v] or not whole seconds", s, d, jobs.MinEvery, jobs.MaxEvery)
		}
		back, err := jobs.ParseEvery(jobs.FormatEvery(d))
		if err != nil || back != d {
			t.Fatalf("ParseEvery(FormatEvery(%v) = %q) = %v, %v", d, jobs.FormatEvery(d), back, err)
		}
	})
}
