package activity_test

import (
	"math/rand/v2"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/activity"
)

// TestQuantile: the histogram's p99 is never below the exact p99 and at most 2^(1/8) above it.
func TestQuantile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		n := 1 + rng.IntN(5000)
		h := activity.Histogram{}
		ds := make([]time.Duration, n)
		for i := range ds {
			// Log-normal-ish latencies from microseconds to seconds.
			ds[i] = time.Duration(float64(time.Microsecond) * (1 + rng.ExpFloat64()*float64(rng.IntN(6)+1)*1000))
			h.Add(ds[i])
		}
		// Splitting and merging (per-minute, per-instance rows) changes nothing.
		back := activity.ParseHistogram(h.String())
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		rank := (99*n + 99) / 100
		exact := ds[rank-1]
		got := back.Quantile(0.99)
		if got < exact || float64(got) > float64(exact)*1.0906+float64(time.Microsecond) {
			t.Fatalf("trial %d: n=%d p99 %v, exact %v", trial, n, got, exact)
		}
	}
	if (activity.Histogram{}).Quantile(0.99) != 0 {
		t.Fatal("empty histogram")
	}
}

func FuzzParseHistogram(f *testing.F) {
	for _, s := range []string{"", "1:2,3:4", "0:1", "320:9223372036854775807", "x:y,1:-3", ",,:", "5:1,5:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := activity.ParseHistogram(s)
		for b, n := range h {
			if b < 0 || b > 320 || n <= 0 {
				t.Fatalf("bucket %d count %d from %q", b, n, s)
			}
		}
		_ = h.Quantile(0.99)
		if again := activity.ParseHistogram(h.String()); again.String() != h.String() {
			t.Fatalf("round trip of %q", s)
		}
	})
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"status=5xx&route=/tables/x", "status=404&after=10&limit=5", "kind=script&user=sid:1", "limit=0", "bogus=1", "status=6", "after=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		fl, err := activity.ParseFilter(q)
		if err != nil {
			return
		}
		if fl.Limit < 0 || fl.Limit > 1000 || fl.AfterID < 0 || fl.Status < 0 || fl.Status > 599 || (fl.Status > 5 && fl.Status < 100) {
			t.Fatalf("accepted %+v from %q", fl, s)
		}
		if len(fl.Route) > 512 || len(fl.User) > 512 {
			t.Fatalf("unbounded parameter from %q", s)
		}
	})
}
