package idtoken_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/idtoken"
	"github.com/gatehouse/gatehouse/internal/keyset"
)

// TestRotationUnderLoad: 500 concurrent verifiers; the provider rotates "just
// before signing" (publishes and signs with a new key at once, so no background
// refresh can have seen it). No valid token may be rejected, and the rotation may
// cost at most one fetch.
func TestRotationUnderLoad(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	const workers = 500
	oldTok := f.prov.Sign(f.claims(nil))
	var cur, newTok atomic.Pointer[string]
	cur.Store(&oldTok)

	var (
		rejected, verified atomic.Int64
		firstErr           atomic.Pointer[error]
		wg                 sync.WaitGroup
	)
	start := make(chan struct{})
	midTraffic := make(chan struct{}) // closed after 2 verifications per worker
	for range workers {
		wg.Go(func() {
			<-start
			for {
				tp := cur.Load()
				if _, err := f.verify(*tp); err != nil {
					rejected.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
				if verified.Add(1) == 2*workers {
					close(midTraffic)
				}
				if nt := newTok.Load(); nt != nil && tp == nt {
					return
				}
			}
		})
	}
	close(start)
	<-midTraffic
	fetchesBefore := f.prov.Fetches()
	f.prov.Rotate(jose.ES256)
	nt := f.prov.Sign(f.claims(nil))
	newTok.Store(&nt)
	cur.Store(&nt)
	wg.Wait()

	if n := rejected.Load(); n != 0 {
		t.Fatalf("%d of %d valid tokens rejected; first: %v", n, verified.Load(), *firstErr.Load())
	}
	if got := f.prov.Fetches() - fetchesBefore; got != 1 {
		t.Fatalf("fetches for one rotation = %d, want 1", got)
	}
	if f.prov.ForcedFetches() != 1 {
		t.Fatalf("forced fetches = %d, want 1", f.prov.ForcedFetches())
	}
	if _, err := f.verify(oldTok); err != nil {
		t.Fatalf("old key still published, old token must verify: %v", err)
	}
	t.Logf("%d verifications, 0 rejected, 1 fetch", verified.Load())
}

// TestRandomKidFlood: 100,000 plausible tokens (our iss and aud, not expired) with
// random kids, over 100 s of fake time, from 4 goroutines: every one is rejected as
// an unknown key, forced fetches stay within one per 30 s, and a valid token keeps
// verifying throughout.
func TestRandomKidFlood(t *testing.T) {
	const (
		total    = 100_000
		batch    = 1_000
		workers  = 4
		interval = 30 * time.Second
		tick     = time.Second // fake time per batch
	)
	f := newFixture(t, fixtureOpts{keysCfg: func(c *keyset.Config) { c.ForcedRefreshInterval = interval }})
	valid := f.prov.Sign(f.claims(nil))
	payload := b64([]byte(mustJSON(f.claims(nil))))
	sig := make([]byte, 256)
	_, _ = rand.Read(sig)
	sigPart := b64(sig)

	var wrong atomic.Int64
	var firstWrong atomic.Pointer[error]
	for b := range total / batch {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < batch; i += workers {
					var kid [12]byte
					_, _ = rand.Read(kid[:])
					tok := b64([]byte(`{"alg":"RS256","typ":"JWT","kid":"`+fmt.Sprintf("%x", kid)+`"}`)) + "." + payload + "." + sigPart
					if _, err := f.verify(tok); !errors.Is(err, idtoken.ErrUnknownKey) {
						wrong.Add(1)
						firstWrong.CompareAndSwap(nil, &err)
					}
				}
			})
		}
		wg.Wait()
		if b%10 == 0 {
			if _, err := f.verify(valid); err != nil {
				t.Fatalf("valid token rejected during the flood: %v", err)
			}
		}
		f.clock.Advance(tick)
	}
	if n := wrong.Load(); n != 0 {
		t.Fatalf("%d random-kid tokens not rejected as unknown key; first: %v", n, *firstWrong.Load())
	}
	elapsed := time.Duration(total/batch) * tick
	budget := int64(elapsed/interval) + 1
	forced := f.prov.ForcedFetches()
	if forced < 1 || forced > budget {
		t.Fatalf("forced fetches = %d over %v, want 1..%d", forced, elapsed, budget)
	}
	t.Logf("%d tokens, %d forced fetches over %v of fake time (budget %d)", total, forced, elapsed, budget)
}

func BenchmarkVerifyRS256Warm(b *testing.B) { benchWarm(b, jose.RS256) }
func BenchmarkVerifyES256Warm(b *testing.B) { benchWarm(b, jose.ES256) }

func benchWarm(b *testing.B, alg jose.SignatureAlgorithm) {
	f := newFixture(b, fixtureOpts{})
	if alg != jose.RS256 {
		f.prov.Rotate(alg)
		if err := f.keys.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	tok := f.prov.Sign(f.claims(nil))
	if _, err := f.verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRotation500: per iteration, 500 goroutines verify 40 tokens each while
// the provider rotates (publish and sign at once) half-way through. Reports
// throughput, p99 latency and fetches per rotation.
func BenchmarkRotation500(b *testing.B) {
	const (
		workers = 500
		each    = 40
	)
	var (
		lat      []time.Duration
		fetches  int64
		rejected int64
		elapsed  time.Duration
	)
	for b.Loop() {
		b.StopTimer()
		f := newFixture(b, fixtureOpts{keysCfg: func(c *keyset.Config) { c.ForcedRefreshInterval = time.Nanosecond }})
		oldTok := f.prov.Sign(f.claims(nil))
		var cur atomic.Pointer[string]
		cur.Store(&oldTok)
		var done atomic.Int64
		var once sync.Once
		rotate := func() {
			f.prov.Rotate(jose.RS256)
			nt := f.prov.Sign(f.claims(nil))
			cur.Store(&nt)
		}
		perWorker := make([][]time.Duration, workers)
		before := f.prov.Fetches()
		var wg sync.WaitGroup
		b.StartTimer()
		start := time.Now()
		for w := range workers {
			wg.Go(func() {
				l := make([]time.Duration, 0, each)
				for range each {
					tok := *cur.Load()
					t0 := time.Now()
					_, err := f.verify(tok)
					l = append(l, time.Since(t0))
					if err != nil {
						atomic.AddInt64(&rejected, 1)
					}
					if done.Add(1) == workers*each/2 {
						once.Do(rotate)
					}
				}
				perWorker[w] = l
			})
		}
		wg.Wait()
		elapsed += time.Since(start)
		b.StopTimer()
		fetches += f.prov.Fetches() - before
		for _, l := range perWorker {
			lat = append(lat, l...)
		}
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "verifies/s")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(fetches)/float64(b.N), "fetches/rotation")
	b.ReportMetric(float64(rejected), "rejected")
}
