package user

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// RevocationList is one instance's in-memory copy of the revocations table, refreshed by polling, so
// that checking a token against it (auth.Revocations) costs a map lookup and no database read. Every
// instance sharing the database sees a revocation within one poll interval.
//
// Polling reads the rows updated since the last poll minus an overlap (instances' clocks differ, and
// a transaction may commit after a later one), so a row is never missed; the database row always
// replaces the cached one (an enable lowers the cut-off). Ready reports whether the first load
// succeeded; serve loads it before accepting requests.
type RevocationList struct {
	st       Store
	interval time.Duration
	overlap  time.Duration
	now      func() time.Time
	log      *slog.Logger

	wake <-chan string // change notifications (Follow); nil: polling only

	mu      sync.Mutex // serialises Sync
	cursor  time.Time
	entries atomic.Pointer[map[string]Revocation]
	loaded  atomic.Bool
}

// NewRevocationList builds the list; call Sync once, then Run in the background.
func NewRevocationList(st Store, interval time.Duration, log *slog.Logger, now func() time.Time) *RevocationList {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &RevocationList{st: st, interval: interval, overlap: 5 * time.Minute, now: now, log: log}
	empty := map[string]Revocation{}
	l.entries.Store(&empty)
	return l
}

// RevokedBefore implements auth.Revocations.
func (l *RevocationList) RevokedBefore(userID string) (time.Time, bool) {
	r, ok := (*l.entries.Load())[userID]
	return r.NotBefore, ok
}

// Ready reports whether the list has loaded at least once.
func (l *RevocationList) Ready() bool { return l.loaded.Load() }

// Apply records a cut-off this instance just wrote (Options.OnRevoke), so it is enforced here at once;
// the next poll confirms it from the database.
func (l *RevocationList) Apply(r Revocation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := *l.entries.Load()
	if old, ok := cur[r.UserID]; ok && r.raiseOnly && !r.NotBefore.After(old.NotBefore) {
		return
	}
	next := make(map[string]Revocation, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	r.raiseOnly = false
	next[r.UserID] = r
	l.entries.Store(&next)
}

// Sync loads the changes since the last poll.
func (l *RevocationList) Sync(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	since := time.Time{}
	if !l.cursor.IsZero() {
		since = l.cursor.Add(-l.overlap)
	}
	started := l.now()
	rows, err := l.st.RevocationsSince(ctx, since)
	if err != nil {
		return err
	}
	cur := *l.entries.Load()
	next := cur
	copied := false
	for _, r := range rows {
		old, ok := cur[r.UserID]
		if ok && old.NotBefore.Equal(r.NotBefore) && old.UpdatedAt.Equal(r.UpdatedAt) {
			continue
		}
		if !copied {
			next = make(map[string]Revocation, len(cur)+len(rows))
			for k, v := range cur {
				next[k] = v
			}
			copied = true
		}
		next[r.UserID] = r
	}
	if copied {
		l.entries.Store(&next)
	}
	l.cursor = started
	l.loaded.Store(true)
	return nil
}

// Follow makes Run reload at once when c delivers (change notifications from other instances,
// package notify), besides polling. Call before Run.
func (l *RevocationList) Follow(c <-chan string) { l.wake = c }

// Run polls until ctx ends. Failures are logged and retried at the next tick; the last good list
// stays in force.
func (l *RevocationList) Run(ctx context.Context) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.wake:
		}
		if err := l.Sync(ctx); err != nil {
			fails++
			if fails == 1 || fails%30 == 0 {
				l.log.Warn("polling user revocations failed; keeping the last list", "err", err, "consecutive_failures", fails)
			}
			continue
		}
		fails = 0
	}
}
