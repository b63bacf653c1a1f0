package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Limits of an interval set at run time (the configuration's scripts.jobs has its own check).
const (
	MinEvery = time.Minute
	MaxEvery = 366 * 24 * time.Hour
)

// Where a schedule comes from.
const (
	// FromConfiguration: the scripts.jobs setting (or nothing: the job runs only when called).
	FromConfiguration = "configuration"
	// FromDatabase: set through the console, the admin API or the CLI; in force on every instance.
	FromDatabase = "database"
)

// Errors of schedule changes.
var (
	ErrUnknownJob      = errors.New("jobs: no such job in the app directory")
	ErrInvalidSchedule = errors.New("jobs: invalid schedule")
)

// Override is a job's schedule as set at run time (a row of gatehouse_job_schedules).
type Override struct {
	Job string // Key(job)
	// Every replaces the configured interval; 0 keeps the configured one.
	Every time.Duration
	// Disabled stops scheduled runs (a run started by hand still runs).
	Disabled  bool
	UpdatedAt time.Time
	UpdatedBy string
}

// IsDefault reports whether o changes nothing: the configured schedule is in force.
func (o Override) IsDefault() bool { return o.Every == 0 && !o.Disabled }

// Schedule is a job's schedule in force.
type Schedule struct {
	Job string // the declared name
	// Every is the interval in force (0: the job runs only when called).
	Every   time.Duration
	Enabled bool
	// Configured is the scripts.jobs interval (0: none).
	Configured time.Duration
	// Source is FromConfiguration or FromDatabase.
	Source string
	// UpdatedAt and UpdatedBy name the last change made at run time (zero: none). UpdatedAt is also
	// when the schedule in force began, which the missed-slot accounting measures from.
	UpdatedAt time.Time
	UpdatedBy string
}

// Active reports whether the job runs on a schedule.
func (s Schedule) Active() bool { return s.Enabled && s.Every > 0 }

// Next is the start of the next slot after now (zero when the job is not scheduled). The slot
// current at a change of schedule may also run at once; Next names the regular one.
func (s Schedule) Next(now time.Time) time.Time {
	if !s.Active() {
		return time.Time{}
	}
	return SlotOf(now, s.Every).Add(s.Every)
}

// Resolve applies the overrides (keyed by Key(job)) to the declared jobs and their configured
// intervals.
func Resolve(defs []Def, overrides map[string]Override) []Schedule {
	out := make([]Schedule, 0, len(defs))
	for _, d := range defs {
		s := Schedule{Job: d.Name, Every: d.Every, Configured: d.Every, Enabled: true, Source: FromConfiguration}
		if o, ok := overrides[Key(d.Name)]; ok {
			s.UpdatedAt, s.UpdatedBy = o.UpdatedAt, o.UpdatedBy
			if o.Every > 0 {
				s.Every = o.Every
			}
			s.Enabled = !o.Disabled
			if !o.IsDefault() {
				s.Source = FromDatabase
			}
		}
		out = append(out, s)
	}
	return out
}

// ParseEvery reads an interval: a Go duration ("15m", "1h30m") or a number of days ("7d"), from
// MinEvery to MaxEvery, in whole seconds.
func ParseEvery(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	var d time.Duration
	if n, ok := strings.CutSuffix(v, "d"); ok && n != "" && !strings.ContainsAny(n, "hmsuµn") {
		days, err := strconv.ParseInt(n, 10, 32)
		if err != nil || days < 1 || days > int64(MaxEvery/(24*time.Hour)) {
			return 0, fmt.Errorf("%w: %q: a number of days must be from 1 to %d", ErrInvalidSchedule, v, MaxEvery/(24*time.Hour))
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("%w: %q is not an interval: write it like 15m, 2h, 1h30m or 7d", ErrInvalidSchedule, clipName(v))
		}
	}
	if d < MinEvery || d > MaxEvery {
		return 0, fmt.Errorf("%w: the interval must be from 1m to %s, not %s", ErrInvalidSchedule, FormatEvery(MaxEvery), clipName(v))
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("%w: the interval must be a whole number of seconds, not %s", ErrInvalidSchedule, clipName(v))
	}
	return d, nil
}

// FormatEvery writes an interval the way ParseEvery reads it, shortest first: "7d", "15m", "1h30m".
func FormatEvery(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// clipName bounds a client's value echoed in an error.
func clipName(s string) string {
	if len(s) > 40 {
		return truncate(s, 40)
	}
	return s
}

// ScheduleStore keeps the overrides.
type ScheduleStore interface {
	// Overrides returns every job's override, keyed by Key(job).
	Overrides(ctx context.Context) (map[string]Override, error)
	// Update changes job's override in one transaction: change gets the current one (found false: none)
	// and returns the new one, or an error that stores nothing; record runs in the same transaction
	// after the write (the audit entry), and its error undoes the write.
	Update(ctx context.Context, job string, change func(cur Override, found bool) (Override, error),
		record func(ctx context.Context, tx *sql.Tx, before Override, found bool, after Override) error) (Override, error)
}

// SQLSchedules is the ScheduleStore on gatehouse_job_schedules (migration 120).
type SQLSchedules struct{ db *store.DB }

// NewScheduleStore returns the schedule overrides stored in db.
func NewScheduleStore(db *store.DB) *SQLSchedules { return &SQLSchedules{db: db} }

// Overrides implements ScheduleStore.
func (s *SQLSchedules) Overrides(ctx context.Context) (map[string]Override, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT job, every_ms, disabled, updated_at, updated_by FROM gatehouse_job_schedules`)
	if err != nil {
		return nil, fmt.Errorf("jobs: schedules: %w", err)
	}
	defer rows.Close()
	out := map[string]Override{}
	for rows.Next() {
		o, err := scanOverride(rows)
		if err != nil {
			return nil, err
		}
		out[o.Job] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jobs: schedules: %w", err)
	}
	return out, nil
}

func scanOverride(s scanner) (Override, error) {
	var o Override
	var every, at int64
	var disabled int
	if err := s.Scan(&o.Job, &every, &disabled, &at, &o.UpdatedBy); err != nil {
		return Override{}, fmt.Errorf("jobs: schedules: %w", err)
	}
	o.Every, o.Disabled, o.UpdatedAt = time.Duration(every)*time.Millisecond, disabled != 0, time.UnixMilli(at).UTC()
	return o, nil
}

// Update implements ScheduleStore. Concurrent changes of one job serialise: on PostgreSQL the row is
// created if missing and locked (FOR UPDATE); on SQLite the transaction is BEGIN IMMEDIATE.
func (s *SQLSchedules) Update(ctx context.Context, job string, change func(Override, bool) (Override, error),
	record func(context.Context, *sql.Tx, Override, bool, Override) error) (Override, error) {
	key := Key(job)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Override{}, fmt.Errorf("jobs: schedule of %s: %w", job, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	q := `SELECT job, every_ms, disabled, updated_at, updated_by FROM gatehouse_job_schedules WHERE job = ?`
	if s.db.Dialect == store.Postgres {
		// A placeholder row to lock: a first change of a job serialises like the later ones. It is
		// rolled back with the transaction when change refuses.
		if _, err := tx.ExecContext(ctx, `INSERT INTO gatehouse_job_schedules (job, every_ms, disabled, updated_at, updated_by)
VALUES ($1, 0, 0, -1, '') ON CONFLICT (job) DO NOTHING`, key); err != nil {
			return Override{}, fmt.Errorf("jobs: schedule of %s: %w", job, err)
		}
		q += ` FOR UPDATE`
	}
	cur, err := scanOverride(tx.QueryRowContext(ctx, s.db.Rebind(q), key))
	found := err == nil && !cur.UpdatedAt.Equal(time.UnixMilli(-1).UTC())
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Override{}, err
	}
	if !found {
		cur = Override{Job: key}
	}
	next, err := change(cur, found)
	if err != nil {
		return Override{}, err
	}
	next.Job = key
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO gatehouse_job_schedules (job, every_ms, disabled, updated_at, updated_by)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (job) DO UPDATE SET every_ms = excluded.every_ms, disabled = excluded.disabled,
updated_at = excluded.updated_at, updated_by = excluded.updated_by`),
		key, next.Every.Milliseconds(), boolInt(next.Disabled), next.UpdatedAt.UnixMilli(), next.UpdatedBy); err != nil {
		return Override{}, fmt.Errorf("jobs: schedule of %s: %w", job, err)
	}
	if record != nil {
		if err := record(ctx, tx, cur, found, next); err != nil {
			return Override{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return Override{}, fmt.Errorf("jobs: schedule of %s: %w", job, err)
	}
	return next, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Change is a change of a job's schedule: nil fields keep their current value.
type Change struct {
	// Every sets the interval; a pointer to 0 returns to the configured interval.
	Every *time.Duration
	// Enabled turns scheduled runs on or off.
	Enabled *bool
}

// Schedules is the one code path of schedule changes, for the console, the admin API and the CLI:
// validation, the write with its audit entry in one transaction, and the hint that makes every
// instance re-read the schedules.
type Schedules struct {
	Store ScheduleStore
	Audit *audit.Store
	// Notifier tells the instances (nil: they see the change at their next poll).
	Notifier notify.Notifier
	Now      func() time.Time
	Log      *slog.Logger
}

// NewSchedules returns the schedules of db, audited in db's trail.
func NewSchedules(db *store.DB, n notify.Notifier, log *slog.Logger) *Schedules {
	return &Schedules{Store: NewScheduleStore(db), Audit: audit.NewStore(db), Notifier: n, Log: log}
}

func (s *Schedules) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Effective returns the schedules in force of the declared jobs.
func (s *Schedules) Effective(ctx context.Context, defs []Def) ([]Schedule, error) {
	o, err := s.Store.Overrides(ctx)
	if err != nil {
		return nil, err
	}
	return Resolve(defs, o), nil
}

// Get returns one declared job's schedule in force (ErrUnknownJob when it is not declared).
func (s *Schedules) Get(ctx context.Context, defs []Def, name string) (Schedule, error) {
	def, ok := findDef(defs, name)
	if !ok {
		return Schedule{}, fmt.Errorf("%w: %q", ErrUnknownJob, clipName(name))
	}
	list, err := s.Effective(ctx, []Def{def})
	if err != nil {
		return Schedule{}, err
	}
	return list[0], nil
}

func findDef(defs []Def, name string) (Def, bool) {
	for _, d := range defs {
		if Key(d.Name) == Key(name) {
			return d, true
		}
	}
	return Def{}, false
}

// Validate checks a change before it is made.
func (ch Change) Validate() error {
	if ch.Every == nil && ch.Enabled == nil {
		return fmt.Errorf("%w: give an interval (every) or whether the job is enabled", ErrInvalidSchedule)
	}
	if ch.Every != nil && *ch.Every != 0 && (*ch.Every < MinEvery || *ch.Every > MaxEvery || *ch.Every%time.Second != 0) {
		return fmt.Errorf("%w: the interval must be from 1m to 366d in whole seconds", ErrInvalidSchedule)
	}
	return nil
}

// Set changes a declared job's schedule on behalf of by (its Actor, Via, Remote and RequestID), records
// the change ("job.schedule", before and after) in the same transaction, and tells every instance. A
// change that changes nothing writes nothing and returns changed false.
func (s *Schedules) Set(ctx context.Context, defs []Def, name string, ch Change, by audit.Entry) (sc Schedule, changed bool, err error) {
	if err := ch.Validate(); err != nil {
		return Schedule{}, false, err
	}
	return s.update(ctx, defs, name, by, func(cur Override) Override {
		if ch.Every != nil {
			cur.Every = *ch.Every
		}
		if ch.Enabled != nil {
			cur.Disabled = !*ch.Enabled
		}
		return cur
	})
}

// Reset returns a declared job to its configured schedule (recorded and announced like Set).
func (s *Schedules) Reset(ctx context.Context, defs []Def, name string, by audit.Entry) (Schedule, bool, error) {
	return s.update(ctx, defs, name, by, func(Override) Override { return Override{} })
}

// errUnchanged aborts a transaction that would change nothing.
var errUnchanged = errors.New("jobs: unchanged")

func (s *Schedules) update(ctx context.Context, defs []Def, name string, by audit.Entry, apply func(Override) Override) (Schedule, bool, error) {
	def, ok := findDef(defs, name)
	if !ok {
		return Schedule{}, false, fmt.Errorf("%w: %q", ErrUnknownJob, clipName(name))
	}
	if s.Audit == nil || by.Actor == "" || by.Via == "" {
		return Schedule{}, false, errors.New("jobs: a schedule change needs the audit trail and who makes it")
	}
	now := s.now()
	var before Override
	var existed bool
	after, err := s.Store.Update(ctx, def.Name, func(cur Override, found bool) (Override, error) {
		before, existed = cur, found
		next := apply(cur)
		if next.Every == cur.Every && next.Disabled == cur.Disabled && (found || next.IsDefault()) {
			return Override{}, errUnchanged
		}
		next.UpdatedAt, next.UpdatedBy = now, by.Actor
		return next, nil
	}, func(ctx context.Context, tx *sql.Tx, _ Override, _ bool, next Override) error {
		e := by
		e.Time, e.Action, e.Target = now, "job.schedule", def.Name
		e.Before = audit.Snapshot(stateOf(resolveOne(def, before, existed)))
		e.After = audit.Snapshot(stateOf(resolveOne(def, next, true)))
		return s.Audit.RecordTx(ctx, tx, e)
	})
	if errors.Is(err, errUnchanged) {
		return resolveOne(def, before, existed), false, nil
	}
	if err != nil {
		return Schedule{}, false, err
	}
	if s.Notifier != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := s.Notifier.Publish(pctx, notify.Jobs, Key(def.Name)); err != nil && s.Log != nil {
			s.Log.Warn("telling the other instances of a job schedule change failed; they apply it at their next poll", "job", def.Name, "err", err)
		}
	}
	return resolveOne(def, after, true), true, nil
}

func resolveOne(def Def, o Override, found bool) Schedule {
	m := map[string]Override{}
	if found {
		m[Key(def.Name)] = o
	}
	return Resolve([]Def{def}, m)[0]
}

// ScheduleState is a schedule as the audit trail and the admin API show it: every is the interval in
// force ("15m", "7d"; absent: only when called), source "configuration" or "database", configured the
// scripts.jobs interval, nextRun the next slot (absent when not scheduled).
type ScheduleState struct {
	Job        string     `json:"job,omitempty"`
	Every      string     `json:"every,omitempty"`
	Enabled    bool       `json:"enabled"`
	Source     string     `json:"source"`
	Configured string     `json:"configured,omitempty"`
	NextRun    *time.Time `json:"nextRun,omitempty"`
	UpdatedAt  *time.Time `json:"updatedAt,omitempty"`
	UpdatedBy  string     `json:"updatedBy,omitempty"`
}

func stateOf(s Schedule) ScheduleState {
	return ScheduleState{Job: s.Job, Every: FormatEvery(s.Every), Enabled: s.Enabled, Source: s.Source, Configured: FormatEvery(s.Configured)}
}

// State is s as the admin API shows it, with the next slot after now.
func (s Schedule) State(now time.Time) ScheduleState {
	st := stateOf(s)
	if n := s.Next(now); !n.IsZero() {
		st.NextRun = &n
	}
	if !s.UpdatedAt.IsZero() {
		t := s.UpdatedAt
		st.UpdatedAt, st.UpdatedBy = &t, s.UpdatedBy
	}
	return st
}
