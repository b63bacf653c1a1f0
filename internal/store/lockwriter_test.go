package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestLockWriter checks the in-process queue of SQLite writers: one holder at a time, a waiter
// admitted as soon as the holder releases it, a waiter giving up with its context, a release that
// can be called twice; and no queue on PostgreSQL.
func TestLockWriter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		unlock, err := db.LockWriter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		second, err := db.LockWriter(short)
		if db.Dialect == store.Postgres {
			if err != nil {
				t.Fatalf("PostgreSQL writers queued: %v", err)
			}
			second()
			unlock()
			return
		}
		if err == nil {
			t.Fatal("two holders of the SQLite writer lock")
		}
		got := make(chan time.Time)
		go func() {
			u, err := db.LockWriter(ctx)
			if err != nil {
				t.Error(err)
				close(got)
				return
			}
			got <- time.Now()
			u()
		}()
		time.Sleep(20 * time.Millisecond)
		released := time.Now()
		unlock()
		unlock() // twice: no effect
		at, ok := <-got
		if !ok {
			return
		}
		if wait := at.Sub(released); wait > time.Second {
			t.Fatalf("the waiter was admitted %v after the release", wait)
		}
		u, err := db.LockWriter(ctx) // free again
		if err != nil {
			t.Fatal(err)
		}
		u()
	})
}
