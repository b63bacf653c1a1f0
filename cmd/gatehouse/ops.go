package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/store"
)

// openAdminDB opens the database for an admin command: never creates the data directory (on SQLite
// it must exist: requireDataDir), never migrates, and refuses a database that is behind this binary
// (naming `gatehouse migrate up`).
func openAdminDB(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	if cfg.Database == "" {
		if err := requireDataDir(cfg); err != nil {
			return nil, err
		}
	}
	opt := storeOptions(cfg)
	opt.Schema = store.RequireCurrent
	return store.OpenWith(ctx, cfg.Database, cfg.DataDir, opt)
}

// requireDataDir refuses a data directory that does not exist: admin commands never create one (a
// command run in the wrong directory would otherwise make an empty ./gatehouse-data with new keys).
func requireDataDir(cfg *config.Config) error {
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the data directory %s does not exist: pass --data DIR (or set GATEHOUSE_DATA) naming the server's data directory; only 'gatehouse serve' creates one", cfg.DataDir)
	} else if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// keysFromDataDir reports whether some key would be read from (or generated into) the data directory.
func keysFromDataDir(cfg *config.Config) bool {
	return cfg.MasterKey == "" || cfg.ApplicationKey == "" || cfg.SystemKey == ""
}

// migrateCmd is `gatehouse migrate status|up`.
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || (args[0] != "status" && args[0] != "up") {
		return fmt.Errorf("%w: gatehouse migrate status|up", errUsage)
	}
	sub := args[0]
	var asJSON bool
	cfg, _, err := loadConfig("migrate "+sub, args[1:], stderr, getenv, func(fs *flag.FlagSet) {
		if sub == "status" {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}
	})
	if err != nil {
		return err
	}
	if cfg.Database == "" {
		if err := requireDataDir(cfg); err != nil {
			return err
		}
	}
	// migrate up may create the SQLite file in an existing data directory; status never creates anything.
	db, err := store.OpenWith(ctx, cfg.Database, cfg.DataDir, store.Options{Schema: store.AnySchema, CreateDatabase: sub == "up"})
	if err != nil {
		return err
	}
	if sub == "up" {
		defer db.Close()
		done, err := db.MigrateUp(ctx)
		if err != nil {
			return err
		}
		for _, m := range done {
			fmt.Fprintf(stdout, "applied %d %s\n", m.Version, m.Name)
		}
		st, err := db.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "database %s is at schema %d (this binary: %d); %d migration(s) applied.\n", db.Location, st.Current, st.Target, len(done))
		return nil
	}
	defer db.Close()
	st, err := db.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		type pending struct {
			Version  int    `json:"version"`
			Name     string `json:"name"`
			Additive bool   `json:"additive"`
		}
		out := struct {
			store.Status
			Pending    []pending `json:"pending"`
			Compatible bool      `json:"compatible"`
		}{Status: st, Pending: []pending{}, Compatible: st.Compatible() == nil}
		for _, m := range st.Pending {
			out.Pending = append(out.Pending, pending{m.Version, m.Name, m.Additive})
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tADDITIVE\tSTATE")
	unknown := map[int]bool{}
	for _, a := range st.Unknown {
		unknown[a.Version] = true
	}
	for _, a := range st.Applied {
		state := "applied " + a.AppliedAt
		if unknown[a.Version] {
			state += " (unknown to this binary)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%v\t%s\n", a.Version, a.Name, a.Additive, state)
	}
	for _, m := range st.Pending {
		fmt.Fprintf(tw, "%d\t%s\t%v\tpending\n", m.Version, m.Name, m.Additive)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\ndatabase %s: schema %d, this binary %d.\n", db.Location, st.Current, st.Target)
	switch {
	case st.Compatible() != nil:
		fmt.Fprintf(stdout, "this binary cannot run on this database: %v\n", st.Compatible())
	case len(st.Pending) > 0:
		fmt.Fprintf(stdout, "%d migration(s) pending: run 'gatehouse migrate up' (serve does it at start unless auto_migrate is false).\n", len(st.Pending))
	case len(st.Unknown) > 0:
		fmt.Fprintln(stdout, "the database has newer additive migrations: this binary runs on it; upgrade it.")
	default:
		fmt.Fprintln(stdout, "up to date.")
	}
	return nil
}

// jobsCmd is `gatehouse jobs list`, `gatehouse jobs runs NAME` (the cluster's job history) and
// `gatehouse jobs schedule NAME` (show or change a job's schedule, cluster-wide).
func jobsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "runs" && args[0] != "schedule") {
		return fmt.Errorf("%w: gatehouse jobs list|runs NAME|schedule NAME", errUsage)
	}
	sub := args[0]
	var asJSON, disable, enable, reset bool
	var limit int
	var every string
	cfg, fs, err := loadConfigArgs("jobs "+sub, args[1:], stderr, getenv, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		switch sub {
		case "runs":
			fs.IntVar(&limit, "limit", 20, fmt.Sprintf("at most this many runs, newest first (1-%d)", jobs.MaxRuns))
		case "schedule":
			fs.StringVar(&every, "every", "", "run the job at this interval (15m, 2h, 7d; 1m to 366d) on every instance")
			fs.BoolVar(&disable, "disable", false, "stop the job's scheduled runs (it still runs when started by hand)")
			fs.BoolVar(&enable, "enable", false, "resume the job's scheduled runs")
			fs.BoolVar(&reset, "default", false, "return to the configured schedule (scripts.jobs)")
		}
	})
	if err != nil {
		return err
	}
	name := ""
	switch sub {
	case "runs", "schedule":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: gatehouse jobs %s NAME", errUsage, sub)
		}
		name = fs.Arg(0)
		if sub == "runs" && (limit < 1 || limit > jobs.MaxRuns) {
			return fmt.Errorf("%w: --limit must be from 1 to %d", errUsage, jobs.MaxRuns)
		}
	default:
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: gatehouse jobs list takes no arguments", errUsage)
		}
	}
	var change jobs.Change
	if sub == "schedule" {
		if change, err = scheduleFlags(every, disable, enable, reset); err != nil {
			return err
		}
		if cfg.AppDir == "" {
			return fmt.Errorf("%w: gatehouse jobs schedule needs the app directory (--app DIR or GATEHOUSE_APP) to know the app's jobs", errUsage)
		}
	}
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	ledger := jobs.NewLedger(db)
	now := time.Now()
	if sub == "list" || sub == "schedule" {
		app := appdir.Empty()
		if cfg.AppDir != "" {
			if app, err = appdir.Load(cfg.AppDir); err != nil {
				return err
			}
		}
		log := newLogger(cfg, stderr)
		schedules := jobs.NewSchedules(db, nil, log)
		defs := jobDefs(app, cfg)
		if sub == "schedule" {
			// On PostgreSQL every running server hears of the change at once; on SQLite the server
			// re-reads the schedules within DefaultSchedulePoll.
			if schedules.Notifier, _, err = newNotifier(ctx, cfg, db, log); err != nil {
				return err
			}
			return jobSchedule(ctx, schedules, defs, name, change, reset, asJSON, stdout, getenv)
		}
		scheds, err := schedules.Effective(ctx, defs)
		if err != nil {
			return err
		}
		list, err := ledger.Summaries(ctx, scheds, now)
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tSCHEDULE\tNEXT RUN\tLAST RUN\tTRIGGER\tOUTCOME\tINSTANCE")
		for _, s := range list {
			sched := s.Schedule
			if sched == "" {
				sched = "-"
			} else if !s.Enabled {
				sched += " (disabled)"
			}
			if s.Source == jobs.FromDatabase {
				sched += " (set at run time)"
			}
			if !s.Declared {
				sched += " (not in the app directory)"
			}
			next := "-"
			if s.NextRun != nil {
				next = s.NextRun.Format(time.RFC3339)
			}
			if s.LastRun == nil {
				fmt.Fprintf(tw, "%s\t%s\t%s\tnever\t\t\t\n", s.Name, sched, next)
				continue
			}
			r := s.LastRun
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, sched, next, r.Started.Format(time.RFC3339), r.Kind, r.Outcome, r.Instance)
		}
		return tw.Flush()
	}
	runs, err := ledger.Runs(ctx, name, limit, time.Time{}, now)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(runs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tDURATION\tTRIGGER\tSLOT\tINSTANCE\tOUTCOME\tERROR")
	for _, r := range runs {
		slot, dur := "-", "-"
		if r.Slot != nil {
			slot = r.Slot.Format(time.RFC3339)
		}
		if r.Finished != nil {
			dur = r.Duration().Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Started.Format(time.RFC3339), dur, r.Kind, slot, r.Instance, r.Outcome, r.Error)
	}
	return tw.Flush()
}

// scheduleFlags reads `jobs schedule`'s flags: none (show the schedule), --default alone, or --every
// with at most one of --enable and --disable.
func scheduleFlags(every string, disable, enable, reset bool) (jobs.Change, error) {
	var ch jobs.Change
	if reset {
		if every != "" || disable || enable {
			return ch, fmt.Errorf("%w: --default cannot be combined with --every, --enable or --disable", errUsage)
		}
		return ch, nil
	}
	if disable && enable {
		return ch, fmt.Errorf("%w: give --enable or --disable, not both", errUsage)
	}
	if every != "" {
		d, err := jobs.ParseEvery(every)
		if err != nil {
			return ch, fmt.Errorf("%w: --every: %s", errUsage, jobs.Message(err))
		}
		ch.Every = &d
	}
	if disable || enable {
		ch.Enabled = &enable
	}
	return ch, nil
}

// jobSchedule shows a job's schedule, or changes it through the same code path as the console and the
// admin API (validated, audited in its transaction as cli:<user>, announced to the running servers).
func jobSchedule(ctx context.Context, schedules *jobs.Schedules, defs []jobs.Def, name string, ch jobs.Change, reset, asJSON bool,
	stdout io.Writer, getenv func(string) string) error {
	by := audit.Entry{Actor: cliActor(getenv), Via: audit.ViaCLI}
	if h, err := os.Hostname(); err == nil {
		by.Remote = h
	}
	var sc jobs.Schedule
	var changed bool
	var err error
	switch {
	case reset:
		sc, changed, err = schedules.Reset(ctx, defs, name, by)
	case ch.Every == nil && ch.Enabled == nil:
		sc, err = schedules.Get(ctx, defs, name)
	default:
		sc, changed, err = schedules.Set(ctx, defs, name, ch, by)
	}
	if errors.Is(err, jobs.ErrUnknownJob) {
		return fmt.Errorf("there is no job %s in the app directory (scheduler/%s.js)", name, name)
	}
	if errors.Is(err, jobs.ErrInvalidSchedule) {
		return fmt.Errorf("%w: %s", errUsage, jobs.Message(err))
	}
	if err != nil {
		return err
	}
	st := sc.State(time.Now())
	if asJSON {
		return json.NewEncoder(stdout).Encode(st)
	}
	what := "on demand only (no interval)"
	if st.Every != "" {
		what = "every " + st.Every
		if !st.Enabled {
			what += ", disabled"
		}
	}
	src := "configured"
	if st.Source == jobs.FromDatabase {
		src = "set by " + st.UpdatedBy + " at " + st.UpdatedAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "%s: %s (%s)\n", sc.Job, what, src)
	if st.NextRun != nil {
		fmt.Fprintf(stdout, "next run: %s\n", st.NextRun.Format(time.RFC3339))
	}
	if ch.Every != nil || ch.Enabled != nil || reset {
		if changed {
			fmt.Fprintln(stdout, "saved: running servers apply it within seconds.")
		} else {
			fmt.Fprintln(stdout, "unchanged.")
		}
	}
	return nil
}
