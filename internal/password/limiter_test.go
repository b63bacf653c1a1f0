package password

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor spins (yielding, no sleeps) until cond holds; the deadline only
// turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// occupy fills n slots of l with functions that block until the returned
// release is called; it returns once all n are running.
func occupy(t *testing.T, l *Limiter, n int) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			err := l.Do(context.Background(), func() error {
				started.Done()
				<-gate
				return nil
			})
			if err != nil {
				t.Errorf("occupying Do: %v", err)
			}
		}()
	}
	started.Wait()
	var once sync.Once
	release = func() {
		once.Do(func() { close(gate); done.Wait() })
	}
	t.Cleanup(release)
	return release
}

func TestLimiterReturnsFnError(t *testing.T) {
	l := NewLimiter(1, 0)
	boom := errors.New("boom")
	if err := l.Do(context.Background(), func() error { return boom }); err != boom {
		t.Fatalf("err = %v, want boom", err)
	}
	ran := false
	if err := l.Do(context.Background(), func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("err = %v ran = %v", err, ran)
	}
}

func TestLimiterQueueAndBusy(t *testing.T) {
	l := NewLimiter(2, 3)
	release := occupy(t, l, 2)

	// Three waiters fill the queue.
	var wg sync.WaitGroup
	var ran atomic.Int32
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- l.Do(context.Background(), func() error { ran.Add(1); return nil })
		}()
	}
	waitFor(t, "3 waiters", func() bool { return l.Stats().Waiting == 3 })

	// The next caller is refused at once and its fn never runs.
	if err := l.Do(context.Background(), func() error { t.Error("ran while busy"); return nil }); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	st := l.Stats()
	if st.Running != 2 || st.Waiting != 3 || st.Rejected != 1 || st.Concurrency != 2 || st.Queue != 3 {
		t.Fatalf("stats = %+v", st)
	}

	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("queued Do: %v", err)
		}
	}
	if ran.Load() != 3 {
		t.Fatalf("ran %d queued functions, want 3", ran.Load())
	}
	if st := l.Stats(); st.Running != 0 || st.Waiting != 0 {
		t.Fatalf("stats after drain = %+v", st)
	}
}

func TestLimiterZeroQueue(t *testing.T) {
	l := NewLimiter(0, -1) // clamped to 1 slot, no queue
	if st := l.Stats(); st.Concurrency != 1 || st.Queue != 0 {
		t.Fatalf("stats = %+v", st)
	}
	occupy(t, l, 1)
	if err := l.Do(context.Background(), func() error { return nil }); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
}

func TestLimiterContext(t *testing.T) {
	l := NewLimiter(1, 1)

	// An already-cancelled context fails even with a free slot.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if err := l.Do(done, func() error { t.Error("ran with cancelled ctx"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	release := occupy(t, l, 1)
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() {
		result <- l.Do(ctx, func() error { t.Error("ran after cancel"); return nil })
	}()
	waitFor(t, "waiter", func() bool { return l.Stats().Waiting == 1 })
	cancel()
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if st := l.Stats(); st.Waiting != 0 || st.Rejected != 0 {
		t.Fatalf("stats = %+v", st)
	}

	// A deadline behaves the same way.
	dctx, dcancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer dcancel()
	if err := l.Do(dctx, func() error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}

	release()
	if err := l.Do(context.Background(), func() error { return nil }); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestLimiterBoundsConcurrency(t *testing.T) {
	const slots, callers = 3, 40
	l := NewLimiter(slots, callers)
	var cur, peak atomic.Int32
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.Do(context.Background(), func() error {
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				runtime.Gosched()
				cur.Add(-1)
				return nil
			})
			if err != nil {
				t.Errorf("Do: %v", err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > slots || p < 1 {
		t.Fatalf("peak concurrency %d, want 1..%d", p, slots)
	}
}

func TestLimiterPanicReleasesSlot(t *testing.T) {
	l := NewLimiter(1, 0)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic not propagated")
			}
		}()
		_ = l.Do(context.Background(), func() error { panic("boom") })
	}()
	if st := l.Stats(); st.Running != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if err := l.Do(context.Background(), func() error { return nil }); err != nil {
		t.Fatalf("slot not released: %v", err)
	}
}

// TestLimiterNoGoroutineLeak: the limiter starts no goroutines of its own;
// after busy, cancelled and completed calls, the count returns to baseline.
func TestLimiterNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		l := NewLimiter(1, 2)
		release := occupy(t, l, 1)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); _ = l.Do(ctx, func() error { return nil }) }()
		}
		waitFor(t, "waiters", func() bool { return l.Stats().Waiting == 2 })
		_ = l.Do(context.Background(), func() error { return nil }) // ErrBusy
		cancel()
		wg.Wait()
		release()
	}()
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= base })
}

func TestConcurrencyFor(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	if got := ConcurrencyFor(Params{}, 1); got != 1 {
		t.Errorf("tiny budget: %d, want 1", got)
	}
	if got := ConcurrencyFor(Params{}, 1<<40); got != procs {
		t.Errorf("huge budget: %d, want GOMAXPROCS %d", got, procs)
	}
	if got := ConcurrencyFor(Params{Memory: 1024}, 1024*1024); got != min(1, procs) {
		t.Errorf("1 MiB / 1 MiB: %d", got)
	}
	if got := DefaultQueue(2); got != 32 {
		t.Errorf("DefaultQueue(2) = %d", got)
	}
}
