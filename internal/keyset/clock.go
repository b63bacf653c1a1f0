package keyset

import "time"

// Clock is the time source of a Set. Tests inject a fake one (keysettest.Clock) so
// that freshness, staleness, rate limits and the background loop are deterministic.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once the clock has advanced by d.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After is time.After.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
