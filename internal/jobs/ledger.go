// Package jobs is the cluster's ledger of scheduled-job runs. Every instance sharing a database runs
// the same schedule; the database decides which one runs each slot: a scheduled run claims its
// (job, slot) row with INSERT … ON CONFLICT DO NOTHING, so exactly one instance wins a slot whatever
// the number of instances. A lease row keeps any two runs of a job (scheduled or manual) from
// overlapping, and the run rows are the history the admin API and CLI show. Package script executes
// the jobs; this package only decides who runs what, and records it.
package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Kind is what started a run.
type Kind string

// Kinds of runs.
const (
	Scheduled Kind = "scheduled"
	Manual    Kind = "manual"
)

// Outcome is how a run ended (or that it has not yet).
type Outcome string

// Outcomes.
const (
	Running   Outcome = "running"
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
	// Skipped: the slot was claimed but not run because the job was still running (here or elsewhere).
	Skipped Outcome = "skipped"
	// Missed: slots nobody claimed (every instance was down or could not reach the database); one row
	// per gap, at the gap's first slot.
	Missed Outcome = "missed"
	// Abandoned: a run whose instance stopped before recording its end (found after its deadline).
	Abandoned Outcome = "abandoned"
)

// Run is one row of the history.
type Run struct {
	ID       string     `json:"id"`
	Job      string     `json:"job"`
	Kind     Kind       `json:"trigger"`
	Slot     *time.Time `json:"slot,omitempty"`
	Instance string     `json:"instance"`
	Started  time.Time  `json:"startedAt"`
	Finished *time.Time `json:"finishedAt,omitempty"`
	Outcome  Outcome    `json:"outcome"`
	Error    string     `json:"error,omitempty"`
	// Deadline is when the run, if still marked running, counts as abandoned.
	Deadline time.Time `json:"-"`
}

// Duration is how long a finished run took (0 while running).
func (r Run) Duration() time.Duration {
	if r.Finished == nil {
		return 0
	}
	return r.Finished.Sub(r.Started)
}

// maxError bounds the error text kept per run (scripts choose their messages).
const maxError = 2000

// Ledger stores claims, leases and history in the database.
type Ledger struct {
	db *store.DB
}

// NewLedger returns the ledger on db (migrated: tables gatehouse_job_runs and gatehouse_job_leases).
func NewLedger(db *store.DB) *Ledger { return &Ledger{db: db} }

// Key is the stored form of a job name: job names are case-insensitive.
func Key(job string) string { return strings.ToLower(job) }

// NewID returns a random run id.
func NewID() string {
	b := make([]byte, 12)
	rand.Read(b) //nolint:errcheck // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b)
}

// SlotOf is the start of the schedule slot containing t for a job run every d: slots are aligned to
// the Unix epoch in whole milliseconds, so every instance computes the same slots from its own clock.
func SlotOf(t time.Time, d time.Duration) time.Time {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	u := t.UnixMilli()
	s := u - u%ms
	if u < 0 && u%ms != 0 {
		s -= ms
	}
	return time.UnixMilli(s).UTC()
}

// ClaimSlot records a scheduled run of job for slot, started now by instance: won is false when another
// instance (or an earlier attempt) already claimed the slot. The claim is one INSERT … ON CONFLICT DO
// NOTHING on the unique (job, slot) index, atomic on both databases.
func (l *Ledger) ClaimSlot(ctx context.Context, job string, slot time.Time, instance string, now, deadline time.Time) (Run, bool, error) {
	run := Run{ID: NewID(), Job: Key(job), Kind: Scheduled, Slot: &slot, Instance: instance, Started: now, Outcome: Running, Deadline: deadline}
	res, err := l.db.ExecContext(ctx, l.db.Rebind(`INSERT INTO gatehouse_job_runs (id, job, slot, kind, instance, started_at, deadline, outcome)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job, slot) DO NOTHING`),
		run.ID, run.Job, slot.UnixMilli(), string(Scheduled), instance, now.UnixMilli(), deadline.UnixMilli(), string(Running))
	if err != nil {
		return Run{}, false, fmt.Errorf("jobs: claim %s slot %s: %w", job, slot.Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Run{}, false, fmt.Errorf("jobs: claim %s: %w", job, err)
	}
	return run, n == 1, nil
}

// StartManual records a manual run (the caller holds the job's lease).
func (l *Ledger) StartManual(ctx context.Context, id, job, instance string, now, deadline time.Time) (Run, error) {
	run := Run{ID: id, Job: Key(job), Kind: Manual, Instance: instance, Started: now, Outcome: Running, Deadline: deadline}
	_, err := l.db.ExecContext(ctx, l.db.Rebind(`INSERT INTO gatehouse_job_runs (id, job, slot, kind, instance, started_at, deadline, outcome)
VALUES (?, ?, NULL, ?, ?, ?, ?, ?)`), run.ID, run.Job, string(Manual), instance, now.UnixMilli(), deadline.UnixMilli(), string(Running))
	if err != nil {
		return Run{}, fmt.Errorf("jobs: record manual run of %s: %w", job, err)
	}
	return run, nil
}

// Finish records how a run ended.
func (l *Ledger) Finish(ctx context.Context, run *Run, outcome Outcome, msg string, at time.Time) error {
	msg = truncate(msg, maxError)
	run.Outcome, run.Error, run.Finished = outcome, msg, &at
	_, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE gatehouse_job_runs SET outcome = ?, error = ?, finished_at = ? WHERE id = ?`),
		string(outcome), msg, at.UnixMilli(), run.ID)
	if err != nil {
		return fmt.Errorf("jobs: record the end of run %s of %s: %w", run.ID, run.Job, err)
	}
	return nil
}

// PreviousSlot returns the latest claimed (or missed) slot of job before slot.
func (l *Ledger) PreviousSlot(ctx context.Context, job string, slot time.Time) (time.Time, bool, error) {
	var v sql.NullInt64
	err := l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT MAX(slot) FROM gatehouse_job_runs WHERE job = ? AND slot < ?`), Key(job), slot.UnixMilli()).Scan(&v)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("jobs: %w", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(v.Int64).UTC(), true, nil
}

// LatestSlot returns job's latest claimed (or missed) slot.
func (l *Ledger) LatestSlot(ctx context.Context, job string) (time.Time, bool, error) {
	var v sql.NullInt64
	err := l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT MAX(slot) FROM gatehouse_job_runs WHERE job = ?`), Key(job)).Scan(&v)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("jobs: %w", err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(v.Int64).UTC(), true, nil
}

// RecordMissed records a gap of n unclaimed slots starting at first: one row at the first slot, so that
// exactly one instance records (and logs) each gap. recorded is false when the row exists already.
func (l *Ledger) RecordMissed(ctx context.Context, job string, first, last time.Time, n int64, instance string, now time.Time) (bool, error) {
	msg := fmt.Sprintf("%d slot(s) from %s to %s were not run: no instance claimed them", n, first.Format(time.RFC3339), last.Format(time.RFC3339))
	res, err := l.db.ExecContext(ctx, l.db.Rebind(`INSERT INTO gatehouse_job_runs (id, job, slot, kind, instance, started_at, finished_at, deadline, outcome, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job, slot) DO NOTHING`),
		NewID(), Key(job), first.UnixMilli(), string(Scheduled), instance, now.UnixMilli(), now.UnixMilli(), now.UnixMilli(), string(Missed), msg)
	if err != nil {
		return false, fmt.Errorf("jobs: record missed slots of %s: %w", job, err)
	}
	k, err := res.RowsAffected()
	return k == 1, err
}

// AbandonExpired marks runs of job still recorded as running after their deadline as abandoned (their
// instance died mid-run) and returns how many.
func (l *Ledger) AbandonExpired(ctx context.Context, job string, now time.Time) (int64, error) {
	res, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE gatehouse_job_runs SET outcome = ?, finished_at = deadline,
error = 'the instance running it stopped before recording its end' WHERE job = ? AND outcome = ? AND deadline < ?`),
		string(Abandoned), Key(job), string(Running), now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("jobs: %w", err)
	}
	return res.RowsAffected()
}

// Prune deletes job's history older than before.
func (l *Ledger) Prune(ctx context.Context, job string, before time.Time) (int64, error) {
	res, err := l.db.ExecContext(ctx, l.db.Rebind(`DELETE FROM gatehouse_job_runs WHERE job = ? AND started_at < ? AND outcome <> ?`),
		Key(job), before.UnixMilli(), string(Running))
	if err != nil {
		return 0, fmt.Errorf("jobs: prune history of %s: %w", job, err)
	}
	return res.RowsAffected()
}

// AcquireLease takes job's lease for holder until the given time; false when someone else holds an
// unexpired lease. The lease table is shared with earlier releases, which take the same lease.
func (l *Ledger) AcquireLease(ctx context.Context, job, holder string, now, until time.Time) (bool, error) {
	res, err := l.db.ExecContext(ctx, l.db.Rebind(`INSERT INTO gatehouse_job_leases (job, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE gatehouse_job_leases.expires_at < ? OR gatehouse_job_leases.holder = ?`), Key(job), holder, until.UnixMilli(), now.UnixMilli(), holder)
	if err != nil {
		return false, fmt.Errorf("jobs: lease of %s: %w", job, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("jobs: lease of %s: %w", job, err)
	}
	return n == 1, nil
}

// ReleaseLease gives up holder's lease of job.
func (l *Ledger) ReleaseLease(ctx context.Context, job, holder string) error {
	_, err := l.db.ExecContext(ctx, l.db.Rebind(`DELETE FROM gatehouse_job_leases WHERE job = ? AND holder = ?`), Key(job), holder)
	if err != nil {
		return fmt.Errorf("jobs: release the lease of %s: %w", job, err)
	}
	return nil
}

// MaxRuns is the most runs one history query returns.
const MaxRuns = 1000

// Runs returns job's runs, newest first: at most limit (1..MaxRuns), started before the given time
// when it is not zero. Runs still marked running after their deadline are shown as abandoned.
func (l *Ledger) Runs(ctx context.Context, job string, limit int, before time.Time, now time.Time) ([]Run, error) {
	if limit < 1 || limit > MaxRuns {
		return nil, fmt.Errorf("jobs: limit must be between 1 and %d", MaxRuns)
	}
	q := `SELECT id, job, slot, kind, instance, started_at, finished_at, deadline, outcome, error FROM gatehouse_job_runs WHERE job = ?`
	args := []any{Key(job)}
	if !before.IsZero() {
		q += ` AND started_at < ?`
		args = append(args, before.UnixMilli())
	}
	q += ` ORDER BY started_at DESC, COALESCE(slot, started_at) DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("jobs: history of %s: %w", job, err)
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		r, err := scanRun(rows, now)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jobs: history of %s: %w", job, err)
	}
	return out, nil
}

// Latest returns each job's most recent run (by start), keyed by job.
func (l *Ledger) Latest(ctx context.Context, now time.Time) (map[string]Run, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT r.id, r.job, r.slot, r.kind, r.instance, r.started_at, r.finished_at, r.deadline, r.outcome, r.error
FROM gatehouse_job_runs r JOIN (SELECT job, MAX(started_at) AS s FROM gatehouse_job_runs GROUP BY job) m ON r.job = m.job AND r.started_at = m.s
ORDER BY r.job, r.id`)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]Run{}
	for rows.Next() {
		r, err := scanRun(rows, now)
		if err != nil {
			return nil, err
		}
		if _, seen := out[r.Job]; !seen {
			out[r.Job] = r
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(...any) error }

func scanRun(s scanner, now time.Time) (Run, error) {
	var r Run
	var slot, finished sql.NullInt64
	var started, deadline int64
	var kind, outcome string
	if err := s.Scan(&r.ID, &r.Job, &slot, &kind, &r.Instance, &started, &finished, &deadline, &outcome, &r.Error); err != nil {
		return Run{}, fmt.Errorf("jobs: %w", err)
	}
	r.Kind, r.Outcome = Kind(kind), Outcome(outcome)
	r.Started, r.Deadline = time.UnixMilli(started).UTC(), time.UnixMilli(deadline).UTC()
	if slot.Valid {
		t := time.UnixMilli(slot.Int64).UTC()
		r.Slot = &t
	}
	if finished.Valid {
		t := time.UnixMilli(finished.Int64).UTC()
		r.Finished = &t
	}
	if r.Outcome == Running && now.After(r.Deadline) {
		r.Outcome, r.Finished = Abandoned, &r.Deadline
		r.Error = "the instance running it stopped before recording its end"
	}
	return r, nil
}

// truncate bounds an error text and makes it storable: valid UTF-8 without NUL (PostgreSQL text
// refuses both; script errors may contain anything).
func truncate(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// Clock is the scheduler's time source; tests inject a manual one to run many slots quickly.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once the clock has advanced by d.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// After is time.After.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
