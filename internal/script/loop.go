package script

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dop251/goja"
)

// Errors that end an invocation.
var (
	// ErrTimeout: the invocation ran past its time budget (a loop that never ends, a callback never
	// answered).
	ErrTimeout = errors.New("script: time limit exceeded")
	// ErrMemory: the process heap passed the ceiling while the invocation ran and it was the one
	// stopped (see memory.go).
	ErrMemory = errors.New("script: memory limit exceeded")
	// ErrNoAnswer: the script finished without answering the request.
	ErrNoAnswer = errors.New("script: the script completed without responding to the request")
)

// timer is a pending setTimeout/setInterval.
type timer struct {
	when     time.Time
	seq      int64
	fn       func()
	interval time.Duration
	dead     bool
	index    int
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *timerHeap) Push(x any)   { t := x.(*timer); t.index = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any     { old := *h; t := old[len(old)-1]; *h = old[:len(old)-1]; return t }
func (h timerHeap) peek() *timer  { return h[0] }
func (h *timerHeap) remove(t *timer) {
	if t.index >= 0 && t.index < len(*h) && (*h)[t.index] == t {
		heap.Remove(h, t.index)
	}
}

// maxPending bounds queued callbacks and timers of one invocation (a script scheduling work in a loop
// runs out of this before it runs out of memory).
const maxPending = 100000

// loop is the event loop of one invocation: everything runs on the goroutine that called run, so the
// goja runtime is never touched concurrently. Services (tables, mssql, crypto.pbkdf2...) do their work
// synchronously and queue the script's callback, which keeps Node's "callbacks run later" ordering.
type loop struct {
	ticks  []func() // process.nextTick
	queue  []func() // setImmediate and service callbacks
	timers timerHeap
	seq    int64
	byID   map[int64]*timer
	err    error // first uncaught error of a callback
}

func newLoop() *loop { return &loop{byID: map[int64]*timer{}} }

func (l *loop) reset() {
	l.ticks, l.queue, l.timers, l.err = l.ticks[:0], l.queue[:0], l.timers[:0], nil
	clear(l.byID)
}

func (l *loop) pending() int { return len(l.ticks) + len(l.queue) + len(l.timers) }

func (l *loop) enqueue(vm *goja.Runtime, fn func()) {
	if l.pending() >= maxPending {
		panic(vm.NewGoError(fmt.Errorf("too many pending callbacks (%d)", maxPending)))
	}
	l.queue = append(l.queue, fn)
}

func (l *loop) nextTick(vm *goja.Runtime, fn func()) {
	if l.pending() >= maxPending {
		panic(vm.NewGoError(fmt.Errorf("too many pending callbacks (%d)", maxPending)))
	}
	l.ticks = append(l.ticks, fn)
}

func (l *loop) addTimer(vm *goja.Runtime, d time.Duration, interval bool, fn func()) int64 {
	if l.pending() >= maxPending {
		panic(vm.NewGoError(fmt.Errorf("too many pending timers (%d)", maxPending)))
	}
	if d < 0 {
		d = 0
	}
	l.seq++
	t := &timer{when: time.Now().Add(d), seq: l.seq, fn: fn}
	if interval {
		t.interval = max(d, time.Millisecond)
	}
	heap.Push(&l.timers, t)
	l.byID[t.seq] = t
	return t.seq
}

func (l *loop) clearTimer(id int64) {
	if t, ok := l.byID[id]; ok {
		t.dead = true
		l.timers.remove(t)
		delete(l.byID, id)
	}
}

// run drains the loop until done() reports the invocation answered and no immediate work is left,
// until nothing is left at all, or until ctx ends. Pending timers after the answer are dropped.
func (l *loop) run(ctx context.Context, done func() bool, call func(func()) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case len(l.ticks) > 0:
			fn := l.ticks[0]
			l.ticks = l.ticks[1:]
			if err := call(fn); err != nil {
				return err
			}
		case len(l.queue) > 0:
			fn := l.queue[0]
			l.queue = l.queue[1:]
			if err := call(fn); err != nil {
				return err
			}
		case done():
			return nil
		case len(l.timers) > 0:
			t := l.timers.peek()
			if wait := time.Until(t.when); wait > 0 {
				tm := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					tm.Stop()
					return ctx.Err()
				case <-tm.C:
				}
			}
			heap.Pop(&l.timers)
			if t.interval > 0 && !t.dead {
				t.when = time.Now().Add(t.interval)
				heap.Push(&l.timers, t)
			} else {
				delete(l.byID, t.seq)
			}
			if err := call(t.fn); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}
