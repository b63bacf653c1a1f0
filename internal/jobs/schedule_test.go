package jobs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func TestParseAndFormatEvery(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1m": time.Minute, "15m": 15 * time.Minute, "1h30m": 90 * time.Minute, "2h": 2 * time.Hour,
		"7d": 7 * 24 * time.Hour, "366d": jobs.MaxEvery, " 90s ": 90 * time.Second, "8784h": jobs.MaxEvery,
	} {
		got, err := jobs.ParseEvery(in)
		if err != nil || got != want {
			t.Errorf("ParseEvery(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "59s", "-5m", "367d", "0d", "1d12h", "d", "15", "fortnight", "1m0.5s", "9999999999999d", strings.Repeat("9", 100) + "h"} {
		if _, err := jobs.ParseEvery(bad); !errors.Is(err, jobs.ErrInvalidSchedule) {
			t.Errorf("ParseEvery(%q): %v", bad, err)
		}
	}
	for d, want := range map[time.Duration]string{time.Minute: "1m", 90 * time.Minute: "1h30m", 2 * time.Hour: "2h", 24 * time.Hour: "1d",
		90 * time.Second: "1m30s", 25 * time.Hour: "25h", 0: ""} {
		if got := jobs.FormatEvery(d); got != want {
			t.Errorf("FormatEvery(%v) = %q, want %q", d, got, want)
		}
		if d > 0 {
			if back, err := jobs.ParseEvery(want); err != nil || back != d {
				t.Errorf("ParseEvery(FormatEvery(%v)) = %v, %v", d, back, err)
			}
		}
	}
}

// TestScheduleStoreConformance: the ScheduleStore contract on both databases: overrides round-trip,
// a refused change or a failing record stores nothing, and concurrent read-modify-write changes of
// one job serialise (none is lost).
func TestScheduleStoreConformance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := jobs.NewScheduleStore(db)
		if m, err := st.Overrides(ctx); err != nil || len(m) != 0 {
			t.Fatalf("empty: %v %v", m, err)
		}
		at := t0.Add(time.Hour)
		o, err := st.Update(ctx, "Cleanup", func(cur jobs.Override, found bool) (jobs.Override, error) {
			if found || cur.Job != "cleanup" || !cur.IsDefault() {
				t.Errorf("first change: %+v %v", cur, found)
			}
			return jobs.Override{Every: 15 * time.Minute, UpdatedAt: at, UpdatedBy: "ann"}, nil
		}, nil)
		if err != nil || o.Job != "cleanup" {
			t.Fatalf("update: %+v %v", o, err)
		}
		m, err := st.Overrides(ctx)
		if err != nil || len(m) != 1 {
			t.Fatalf("overrides: %v %v", m, err)
		}
		if got := m["cleanup"]; got.Every != 15*time.Minute || got.Disabled || !got.UpdatedAt.Equal(at) || got.UpdatedBy != "ann" {
			t.Fatalf("stored %+v", got)
		}
		// A refused change and a failing record leave the row as it was.
		refused := errors.New("refused")
		if _, err := st.Update(ctx, "cleanup", func(jobs.Override, bool) (jobs.Override, error) { return jobs.Override{}, refused }, nil); !errors.Is(err, refused) {
			t.Fatalf("refused change: %v", err)
		}
		if _, err := st.Update(ctx, "cleanup", func(cur jobs.Override, _ bool) (jobs.Override, error) {
			cur.Disabled = true
			return cur, nil
		}, func(context.Context, *sql.Tx, jobs.Override, bool, jobs.Override) error { return refused }); !errors.Is(err, refused) {
			t.Fatalf("failing record: %v", err)
		}
		if _, err := st.Update(ctx, "other", func(jobs.Override, bool) (jobs.Override, error) { return jobs.Override{}, refused }, nil); !errors.Is(err, refused) {
			t.Fatal(err)
		}
		if m, _ := st.Overrides(ctx); len(m) != 1 || m["cleanup"].Disabled {
			t.Fatalf("after refused changes: %+v", m)
		}
		// Concurrent read-modify-write: each adds a minute; none is lost.
		const writers = 8
		var wg sync.WaitGroup
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.Update(ctx, "cleanup", func(cur jobs.Override, found bool) (jobs.Override, error) {
					if !found {
						t.Error("the row vanished")
					}
					cur.Every += time.Minute
					cur.UpdatedAt = at
					return cur, nil
				}, func(ctx context.Context, tx *sql.Tx, before jobs.Override, _ bool, after jobs.Override) error {
					if after.Every != before.Every+time.Minute {
						t.Errorf("record saw %v → %v", before.Every, after.Every)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if m, _ := st.Overrides(ctx); m["cleanup"].Every != (15+writers)*time.Minute {
			t.Fatalf("after %d concurrent changes: %v", writers, m["cleanup"].Every)
		}
	})
}

var scheduleDefs = []jobs.Def{{Name: "Cleanup", Every: time.Hour}, {Name: "report"}}

func newSchedules(db *store.DB, n notify.Notifier) *jobs.Schedules {
	return &jobs.Schedules{Store: jobs.NewScheduleStore(db), Audit: audit.NewStore(db), Notifier: n, Now: func() time.Time { return t0 }}
}

// TestSchedulesChanges: the one code path of schedule changes: validation, the schedule in force and
// its source, the audit entry with before and after, the hint, nothing written for no change, and the
// audit entry failing undoes the change.
func TestSchedulesChanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		n := notify.NewLocal()
		hints, stop := n.Subscribe(notify.Jobs)
		defer stop()
		s := newSchedules(db, n)
		by := audit.Entry{Actor: "ann@example.com", Via: audit.ViaConsole, Remote: "192.0.2.1"}
		fifteen, zero, off := 15*time.Minute, time.Duration(0), false
		if _, _, err := s.Set(ctx, scheduleDefs, "nothere", jobs.Change{Every: &fifteen}, by); !errors.Is(err, jobs.ErrUnknownJob) {
			t.Fatalf("unknown job: %v", err)
		}
		short := 30 * time.Second
		if _, _, err := s.Set(ctx, scheduleDefs, "cleanup", jobs.Change{Every: &short}, by); !errors.Is(err, jobs.ErrInvalidSchedule) {
			t.Fatalf("30s: %v", err)
		}
		if _, _, err := s.Set(ctx, scheduleDefs, "cleanup", jobs.Change{}, by); !errors.Is(err, jobs.ErrInvalidSchedule) {
			t.Fatalf("empty change: %v", err)
		}
		if _, _, err := s.Set(ctx, scheduleDefs, "cleanup", jobs.Change{Every: &fifteen}, audit.Entry{}); err == nil {
			t.Fatal("a change without an actor")
		}
		list, err := s.Effective(ctx, scheduleDefs)
		if err != nil || len(list) != 2 || list[0].Every != time.Hour || list[0].Source != jobs.FromConfiguration || !list[0].Enabled || list[1].Active() {
			t.Fatalf("before any change: %+v %v", list, err)
		}
		sc, changed, err := s.Set(ctx, scheduleDefs, "CLEANUP", jobs.Change{Every: &fifteen}, by)
		if err != nil || !changed || sc.Job != "Cleanup" || sc.Every != fifteen || sc.Configured != time.Hour || sc.Source != jobs.FromDatabase || sc.UpdatedBy != by.Actor {
			t.Fatalf("set: %+v %v %v", sc, changed, err)
		}
		select {
		case h := <-hints:
			if h != "cleanup" {
				t.Fatalf("hint %q", h)
			}
		default:
			t.Fatal("no hint")
		}
		if next := sc.Next(t0.Add(20 * time.Minute)); !next.Equal(t0.Add(30 * time.Minute)) {
			t.Fatalf("next %v", next)
		}
		// The same change again: nothing written, no entry, no hint.
		if _, changed, err := s.Set(ctx, scheduleDefs, "cleanup", jobs.Change{Every: &fifteen}, by); err != nil || changed {
			t.Fatalf("no-op: %v %v", changed, err)
		}
		// Disabled: the interval stays; the configured interval back, still disabled; then the default.
		if sc, _, _ = s.Set(ctx, scheduleDefs, "cleanup", jobs.Change{Enabled: &off}, by); sc.Enabled || sc.Every != fifteen || sc.Active() || !sc.Next(t0).IsZero() {
			t.Fatalf("disabled: %+v", sc)
		}
		if sc, _, _ = s.Set(ctx, scheduleDefs, "cleanup", jobs.Change{Every: &zero}, by); sc.Enabled || sc.Every != time.Hour || sc.Source != jobs.FromDatabase {
			t.Fatalf("configured interval, disabled: %+v", sc)
		}
		if sc, changed, err = s.Reset(ctx, scheduleDefs, "cleanup", by); err != nil || !changed || !sc.Enabled || sc.Every != time.Hour || sc.Source != jobs.FromConfiguration {
			t.Fatalf("reset: %+v %v %v", sc, changed, err)
		}
		if _, changed, _ := s.Reset(ctx, scheduleDefs, "cleanup", by); changed {
			t.Fatal("a second reset changed something")
		}
		if _, changed, _ := s.Reset(ctx, scheduleDefs, "report", by); changed {
			t.Fatal("resetting a job never changed wrote something")
		}
		// A job with nothing configured gets a schedule.
		if sc, _, _ = s.Set(ctx, scheduleDefs, "report", jobs.Change{Every: &fifteen}, by); !sc.Active() || sc.Configured != 0 {
			t.Fatalf("report: %+v", sc)
		}
		entries, err := audit.NewStore(db).List(ctx, audit.Filter{Action: "job.schedule", Ascending: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 5 {
			t.Fatalf("%d entries", len(entries))
		}
		e := entries[0]
		if e.Actor != by.Actor || e.Via != audit.ViaConsole || e.Target != "Cleanup" || e.Remote != "192.0.2.1" {
			t.Fatalf("entry %+v", e)
		}
		var before, after map[string]any
		if json.Unmarshal(e.Before, &before) != nil || json.Unmarshal(e.After, &after) != nil {
			t.Fatalf("before %s after %s", e.Before, e.After)
		}
		if before["every"] != "1h" || before["source"] != "configuration" || after["every"] != "15m" || after["source"] != "database" || after["enabled"] != true {
			t.Fatalf("before %v after %v", before, after)
		}
		// No audit entry, no change: with the trail's table gone, the change fails and is not stored.
		if _, err := db.ExecContext(ctx, `DROP TABLE gatehouse_audit`); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Set(ctx, scheduleDefs, "cleanup", jobs.Change{Enabled: &off}, by); err == nil {
			t.Fatal("the change went through without its audit entry")
		}
		if list, err := s.Effective(ctx, scheduleDefs); err != nil || !list[0].Enabled {
			t.Fatalf("after the failed change: %+v %v", list, err)
		}
	})
}

// adminDo serves one request through the admin handler.
func adminDo(h http.Handler, method, path, body string) (int, string) {
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestAdminSchedule: GET, PUT and DELETE /admin/jobs/{name}/schedule and the schedule in GET
// /admin/jobs; strict bodies (400 with a clear message), 404 for an undeclared job, 405, and the
// change recorded once (as the master key, in the change's transaction).
func TestAdminSchedule(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := &jobs.AdminHandler{Ledger: jobs.NewLedger(db), Schedules: newSchedules(db, nil),
			Defs: func() []jobs.Def { return scheduleDefs }, Now: func() time.Time { return t0.Add(time.Minute) }}
		code, body := adminDo(h, "GET", "/admin/jobs/cleanup/schedule", "")
		if code != 200 || !strings.Contains(body, `"every":"1h"`) || !strings.Contains(body, `"source":"configuration"`) || !strings.Contains(body, `"nextRun":"2026-03-01T13:00:00Z"`) {
			t.Fatalf("GET: %d %s", code, body)
		}
		for _, tc := range []struct{ body, msg string }{
			{`{"every":"30s"}`, "from 1m to 366d"},
			{`{"every":"soon"}`, "is not an interval"},
			{`{"every":15}`, `"every" must be a string`},
			{`{"enabled":"yes"}`, `"enabled" must be true or false`},
			{`{"enabeld":false}`, `Unknown member "enabeld"`},
			{`{}`, "Give an interval"},
			{`null`, "must be a JSON object"},
			{`{"every":"1h","every":"2h"}`, "duplicate"},
			{`[1]`, ""},
			{`{"every":"1h"} {}`, "single JSON value"},
		} {
			code, body := adminDo(h, "PUT", "/admin/jobs/cleanup/schedule", tc.body)
			var e struct{ Error string }
			if code != 400 || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("PUT %s: %d %s", tc.body, code, body)
			}
		}
		if code, body := adminDo(h, "PUT", "/admin/jobs/nothere/schedule", `{"every":"1h"}`); code != 404 || !strings.Contains(body, "does not exist") {
			t.Fatalf("undeclared: %d %s", code, body)
		}
		if code, _ := adminDo(h, "POST", "/admin/jobs/cleanup/schedule", `{"every":"1h"}`); code != 405 {
			t.Fatalf("POST: %d", code)
		}
		if code, _ := adminDo(h, "PUT", "/admin/jobs", `{}`); code != 405 {
			t.Fatalf("PUT /admin/jobs: %d", code)
		}
		code, body = adminDo(h, "PUT", "/admin/jobs/Cleanup/schedule", `{"every":"15m","enabled":false}`)
		if code != 200 || !strings.Contains(body, `"every":"15m"`) || !strings.Contains(body, `"enabled":false`) || !strings.Contains(body, `"updatedBy":"master-key"`) ||
			strings.Contains(body, "nextRun") {
			t.Fatalf("PUT: %d %s", code, body)
		}
		code, body = adminDo(h, "GET", "/admin/jobs", "")
		var list []jobs.Summary
		if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 2 {
			t.Fatalf("list: %d %s", code, body)
		}
		if c := list[0]; c.Name != "Cleanup" || c.Schedule != "15m0s" || c.Every != "15m" || c.Enabled || c.Source != "database" || c.Configured != "1h" || c.NextRun != nil {
			t.Fatalf("cleanup: %+v", c)
		}
		if r := list[1]; r.Name != "report" || r.Schedule != "" || !r.Enabled || r.Source != "configuration" {
			t.Fatalf("report: %+v", r)
		}
		code, body = adminDo(h, "PUT", "/admin/jobs/cleanup/schedule", `{"enabled":true,"every":null}`)
		if code != 200 || !strings.Contains(body, `"every":"1h"`) || !strings.Contains(body, `"enabled":true`) || !strings.Contains(body, `"source":"configuration"`) {
			t.Fatalf("PUT back: %d %s", code, body)
		}
		if code, body = adminDo(h, "DELETE", "/admin/jobs/cleanup/schedule", ""); code != 200 || !strings.Contains(body, `"source":"configuration"`) {
			t.Fatalf("DELETE: %d %s", code, body)
		}
		entries, err := audit.NewStore(db).List(context.Background(), audit.Filter{Ascending: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Action+" "+e.Target+" "+e.Actor+" "+e.Via)
		}
		// Two changes: the PUT that turned the schedule back into the default wrote a default row,
		// the DELETE after it changed nothing.
		if strings.Join(got, "; ") != "job.schedule Cleanup master-key admin-api; job.schedule Cleanup master-key admin-api" {
			t.Fatalf("audit: %v", got)
		}
	})
}
