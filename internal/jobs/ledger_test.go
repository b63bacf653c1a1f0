package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestSlotOf(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		d    time.Duration
		want time.Time
	}{
		{t0.Add(59 * time.Second), time.Minute, t0},
		{t0.Add(time.Minute), time.Minute, t0.Add(time.Minute)},
		{t0.Add(7 * time.Hour), 24 * time.Hour, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{t0.Add(20 * time.Minute), 15 * time.Minute, t0.Add(15 * time.Minute)},
		{time.UnixMilli(-1), time.Second, time.UnixMilli(-1000).UTC()},
	} {
		if got := jobs.SlotOf(tc.at, tc.d); !got.Equal(tc.want) {
			t.Errorf("SlotOf(%v, %v) = %v, want %v", tc.at, tc.d, got, tc.want)
		}
	}
}

// TestClaimSlotIsAtomic: many connections claiming the same slot at once: exactly one wins, on both
// databases.
func TestClaimSlotIsAtomic(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l := jobs.NewLedger(db)
		for slot := 0; slot < 3; slot++ {
			at := t0.Add(time.Duration(slot) * time.Minute)
			var wg sync.WaitGroup
			var mu sync.Mutex
			won := 0
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					_, ok, err := l.ClaimSlot(context.Background(), "Tick", at, fmt.Sprint("i", i), at, at.Add(time.Hour))
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						won++
						mu.Unlock()
					}
				}(i)
			}
			wg.Wait()
			if won != 1 {
				t.Fatalf("slot %d won %d times", slot, won)
			}
		}
		runs, err := l.Runs(context.Background(), "TICK", 10, time.Time{}, t0)
		if err != nil || len(runs) != 3 {
			t.Fatalf("%d runs, %v", len(runs), err)
		}
	})
}

// TestLeaseHistoryAbandonPrune covers leases (exclusive, expiring), finishing a run, paging, runs of a
// dead instance shown and marked abandoned, and pruning.
func TestLeaseHistoryAbandonPrune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := jobs.NewLedger(db)
		if ok, err := l.AcquireLease(ctx, "tick", "a", t0, t0.Add(time.Minute)); !ok || err != nil {
			t.Fatalf("first lease: %v %v", ok, err)
		}
		if ok, _ := l.AcquireLease(ctx, "Tick", "b", t0.Add(30*time.Second), t0.Add(2*time.Minute)); ok {
			t.Fatal("a held lease was taken")
		}
		if ok, _ := l.AcquireLease(ctx, "tick", "b", t0.Add(2*time.Minute), t0.Add(3*time.Minute)); !ok {
			t.Fatal("an expired lease was not taken over")
		}
		if err := l.ReleaseLease(ctx, "tick", "a"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := l.AcquireLease(ctx, "tick", "c", t0.Add(2*time.Minute), t0.Add(3*time.Minute)); ok {
			t.Fatal("releasing someone else's lease freed it")
		}

		done, err := l.StartManual(ctx, "r1", "tick", "a", t0, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Finish(ctx, &done, jobs.Failed, "bad\x00\xff"+strings.Repeat("é", 3000), t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.StartManual(ctx, "r2", "tick", "dead", t0.Add(time.Minute), t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(10 * time.Minute)
		runs, err := l.Runs(ctx, "tick", 10, time.Time{}, now)
		if err != nil || len(runs) != 2 {
			t.Fatalf("%+v %v", runs, err)
		}
		if runs[0].ID != "r2" || runs[0].Outcome != jobs.Abandoned || runs[1].Outcome != jobs.Failed || len(runs[1].Error) > 2100 || !utf8.ValidString(runs[1].Error) || strings.Contains(runs[1].Error, "\x00") || runs[1].Duration() != time.Second {
			t.Fatalf("runs %+v", runs)
		}
		if page, _ := l.Runs(ctx, "tick", 10, runs[0].Started, now); len(page) != 1 || page[0].ID != "r1" {
			t.Fatalf("page %+v", page)
		}
		if n, err := l.AbandonExpired(ctx, "tick", now); n != 1 || err != nil {
			t.Fatalf("abandoned %d %v", n, err)
		}
		if _, err := l.Runs(ctx, "tick", 0, time.Time{}, now); err == nil {
			t.Fatal("limit 0 accepted")
		}
		if n, err := l.Prune(ctx, "tick", t0.Add(30*time.Second)); n != 1 || err != nil {
			t.Fatalf("pruned %d %v", n, err)
		}
	})
}

func TestAdminHandler(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := jobs.NewLedger(db)
		r, _, _ := l.ClaimSlot(ctx, "cleanup", t0, "a", t0, t0.Add(time.Hour))
		l.Finish(ctx, &r, jobs.Succeeded, "", t0.Add(time.Second))
		l.ClaimSlot(ctx, "retired", t0, "a", t0, t0.Add(time.Hour))
		h := &jobs.AdminHandler{Ledger: l, Now: func() time.Time { return t0.Add(time.Minute) },
			Defs: func() []jobs.Def { return []jobs.Def{{Name: "cleanup", Every: 15 * time.Minute}, {Name: "report"}} }}
		get := func(path string) (int, string) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			return rec.Code, rec.Body.String()
		}
		code, body := get("/admin/jobs")
		var list []jobs.Summary
		if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 3 {
			t.Fatalf("%d %s", code, body)
		}
		if list[0].Name != "cleanup" || list[0].Schedule != "15m0s" || list[0].LastRun == nil || list[0].LastRun.Outcome != jobs.Succeeded ||
			list[1].Name != "report" || list[1].LastRun != nil || !list[1].Declared ||
			list[2].Name != "retired" || list[2].Declared || !list[2].Running {
			t.Fatalf("%s", body)
		}
		if code, body := get("/admin/jobs/Cleanup/runs"); code != 200 || !json.Valid([]byte(body)) {
			t.Fatalf("%d %s", code, body)
		}
		if code, _ := get("/admin/jobs/report/runs"); code != 200 {
			t.Fatalf("declared job without runs: %d", code)
		}
		for path, want := range map[string]int{"/admin/jobs/nope/runs": 404, "/admin/jobs/cleanup/runs?limit=1001": 400, "/admin/jobs/cleanup": 404, "/admin/jobs/cleanup/runs?before=x": 400} {
			if code, _ := get(path); code != want {
				t.Errorf("%s: %d, want %d", path, code, want)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/admin/jobs", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Fatalf("POST: %d", rec.Code)
		}
	})
}
