package script

import (
	"runtime"
	"runtime/metrics"
	"time"
)

// Memory: what is and is not bounded.
//
// goja has no per-runtime heap limit, and Go cannot attribute heap to a goroutine. Gatehouse bounds
// script memory in three ways:
//
//  1. Per invocation, exactly: what the Node subset allocates on a script's behalf (Buffers,
//     string↔bytes conversions, crypto output, randomBytes) is counted against Options.AllocLimit;
//     past it the script gets a RangeError. pbkdf2 iterations and key sizes are capped.
//  2. Per invocation, structurally: pending callbacks and timers are capped (maxPending), the call
//     stack is capped (maxCallStack), and scripts and modules are at most 4 MiB each.
//  3. Process-wide, by a watchdog: while invocations run, the Go heap (runtime/metrics, no
//     stop-the-world) is sampled every 5 ms; past Options.MemoryLimit the longest-running invocation
//     is interrupted (it fails with ErrMemory, its runtime is discarded) and a GC is forced before
//     the next decision. A script growing memory in a loop (arrays, string concatenation) is
//     therefore stopped within a few milliseconds of crossing the line.
//
// Not bounded: a single allocation inside the engine (e.g. 'x'.repeat(2e9)) happens before any check
// can run; if it is larger than the memory the machine has, the process fails. The watchdog may also
// stop a well-behaved long-running invocation when another one allocated the memory, if that one is
// younger; the time budget keeps both short.

const watchdogInterval = 5 * time.Millisecond

var heapMetric = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

func heapBytes() uint64 {
	s := make([]metrics.Sample, 1)
	copy(s, heapMetric)
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// watch runs while invocations are in flight (started by track, exits when none are left).
func (e *Engine) watch() {
	t := time.NewTicker(watchdogInterval)
	defer t.Stop()
	for range t.C {
		e.runMu.Lock()
		if len(e.running) == 0 {
			e.watching = false
			e.runMu.Unlock()
			return
		}
		e.runMu.Unlock()
		if heapBytes() <= e.opt.MemoryLimit {
			continue
		}
		e.runMu.Lock()
		var oldest *invocation
		for inv := range e.running {
			if inv.memory.Load() {
				continue
			}
			if oldest == nil || inv.started.Before(oldest.started) {
				oldest = inv
			}
		}
		if oldest != nil {
			oldest.memory.Store(true)
			oldest.vm.rt.Interrupt(ErrMemory)
		}
		e.runMu.Unlock()
		if oldest != nil {
			oldest.log.Error("script stopped: the process heap passed the script memory limit", "limit_bytes", e.opt.MemoryLimit)
			runtime.GC()
		}
	}
}
