package activity

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Latency histograms: log-scale buckets of durations in microseconds, bucketsPerDoubling buckets
// between each power of two. Bucket i (i ≥ 1) holds durations d with 2^((i-1)/8) ≤ d/µs < 2^(i/8);
// bucket 0 holds durations under 1 µs. A quantile is reported as its bucket's upper bound, so it
// overstates the true value by at most 2^(1/8) − 1 ≈ 9 %. Histograms add, which is what makes p99
// over an hour (or over several instances) exact up to that bucket width: per-minute, per-instance
// histograms are summed, never their percentiles averaged.
const (
	bucketsPerDoubling = 8
	maxBucket          = 40 * bucketsPerDoubling // 2^40 µs ≈ 12.7 days
)

// Histogram counts durations by bucket.
type Histogram map[int]int64

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us < 1 {
		return 0
	}
	b := int(math.Floor(math.Log2(us)*bucketsPerDoubling)) + 1
	if b > maxBucket {
		b = maxBucket
	}
	return b
}

// upper is the upper bound of bucket b.
func upper(b int) time.Duration {
	if b <= 0 {
		return time.Microsecond
	}
	return time.Duration(math.Exp2(float64(b)/bucketsPerDoubling) * float64(time.Microsecond))
}

// Add counts one duration.
func (h Histogram) Add(d time.Duration) { h[bucketOf(d)]++ }

// Merge adds o's counts.
func (h Histogram) Merge(o Histogram) {
	for b, n := range o {
		h[b] += n
	}
}

// Count is the number of durations counted.
func (h Histogram) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile returns the upper bound of the bucket holding the q-quantile (0 for an empty histogram).
func (h Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	if rank < 1 {
		rank = 1
	}
	keys := make([]int, 0, len(h))
	for b := range h {
		keys = append(keys, b)
	}
	sort.Ints(keys)
	var seen int64
	for _, b := range keys {
		seen += h[b]
		if seen >= rank {
			return upper(b)
		}
	}
	return upper(keys[len(keys)-1])
}

// String encodes the histogram as "bucket:count,…" in bucket order (the stored form).
func (h Histogram) String() string {
	keys := make([]int, 0, len(h))
	for b := range h {
		keys = append(keys, b)
	}
	sort.Ints(keys)
	var sb strings.Builder
	for i, b := range keys {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(b))
		sb.WriteByte(':')
		sb.WriteString(strconv.FormatInt(h[b], 10))
	}
	return sb.String()
}

// ParseHistogram decodes String's form; malformed or out-of-range pairs are skipped.
func ParseHistogram(s string) Histogram {
	h := Histogram{}
	for _, p := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(p, ":")
		if !ok {
			continue
		}
		b, err1 := strconv.Atoi(k)
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err1 != nil || err2 != nil || b < 0 || b > maxBucket || n <= 0 {
			continue
		}
		h[b] += n
	}
	return h
}
