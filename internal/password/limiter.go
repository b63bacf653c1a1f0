package password

import (
	"context"
	"runtime"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Limiter bounds how many password hashes run at once and how many callers
// may wait for a slot. Memory-hard hashing makes concurrency a memory
// problem: every running argon2id computation holds its whole memory cost
// (19 MiB at the default parameters) until it finishes, so N concurrent
// logins need N×19 MiB. The limiter keeps that at concurrency×m while the
// queue absorbs short bursts; beyond the queue, callers get ErrBusy at once
// instead of piling up goroutines and memory.
//
// Sizing (default parameters, m = 19 MiB):
//
//	hashing memory  ≈ concurrency × 19 MiB        (2 CPUs: 38 MiB live)
//	Go heap peak    ≈ 2 × that with GOGC=100      (each hash allocates fresh)
//	queued waiter   ≈ a parked goroutine, a few KiB; no hashing memory
//	worst wait      ≈ (queue/concurrency + 1) × one hash duration
//
// A Limiter is safe for concurrent use. The zero value is not usable; call
// NewLimiter.
type Limiter struct {
	sem         *semaphore.Weighted
	concurrency int
	queue       int64

	running  atomic.Int64
	waiting  atomic.Int64
	rejected atomic.Uint64
}

// DefaultConcurrency is GOMAXPROCS: argon2id with p=1 keeps one core busy,
// so more parallel hashes than cores only add memory and latency.
func DefaultConcurrency() int { return runtime.GOMAXPROCS(0) }

// DefaultQueue returns the default queue length for a given concurrency:
// 16 waiters per slot, which bounds the added wait at about 17 hash
// durations (≈0.5 s at the default parameters on a current x86-64 core;
// see the package benchmarks) while queued callers cost no hashing memory.
func DefaultQueue(concurrency int) int { return 16 * max(concurrency, 1) }

// ConcurrencyFor returns how many argon2id computations with params p fit in
// a memory budget of budgetBytes (the live hashing memory; the Go heap can
// reach about twice that between collections), capped at GOMAXPROCS and at
// least 1.
func ConcurrencyFor(p Params, budgetBytes int64) int {
	per := int64(p.withDefaults().Memory) * 1024
	n := int(budgetBytes / per)
	return max(1, min(n, runtime.GOMAXPROCS(0)))
}

// NewLimiter returns a Limiter running at most concurrency functions at once
// with at most queue callers waiting. concurrency below 1 is treated as 1 and
// a negative queue as 0 (no waiting: ErrBusy whenever all slots are taken).
func NewLimiter(concurrency, queue int) *Limiter {
	concurrency = max(concurrency, 1)
	queue = max(queue, 0)
	return &Limiter{
		sem:         semaphore.NewWeighted(int64(concurrency)),
		concurrency: concurrency,
		queue:       int64(queue),
	}
}

// Do runs fn when a slot is free and returns fn's error. If no slot is free
// it waits in the queue (first come, first served); if the queue is full it
// returns ErrBusy immediately without running fn. If ctx is done before a
// slot frees up, Do returns ctx.Err() and fn is not run. A running fn is not
// interrupted by ctx: hash functions cannot be cancelled midway.
func (l *Limiter) Do(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// TryAcquire fails while others wait, so newcomers cannot overtake the queue.
	if !l.sem.TryAcquire(1) {
		if l.waiting.Add(1) > l.queue {
			l.waiting.Add(-1)
			l.rejected.Add(1)
			return ErrBusy
		}
		err := l.sem.Acquire(ctx, 1)
		l.waiting.Add(-1)
		if err != nil {
			return err
		}
	}
	defer l.sem.Release(1)
	l.running.Add(1)
	defer l.running.Add(-1)
	return fn()
}

// LimiterStats is a snapshot of a Limiter, e.g. for metrics.
type LimiterStats struct {
	Concurrency int    // slots
	Queue       int    // queue capacity
	Running     int    // functions running now
	Waiting     int    // callers waiting now
	Rejected    uint64 // ErrBusy returned since creation
}

// Stats returns a snapshot. Running and Waiting are read separately and may
// be momentarily inconsistent with each other.
func (l *Limiter) Stats() LimiterStats {
	return LimiterStats{
		Concurrency: l.concurrency,
		Queue:       int(l.queue),
		Running:     int(l.running.Load()),
		Waiting:     int(l.waiting.Load()),
		Rejected:    l.rejected.Load(),
	}
}
