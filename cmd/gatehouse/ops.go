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

// jobsCmd is `gatehouse jobs list` and `gatehouse jobs runs NAME`: the cluster's job history.
func jobsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "runs") {
		return fmt.Errorf("%w: gatehouse jobs list|runs NAME", errUsage)
	}
	sub := args[0]
	var asJSON bool
	var limit int
	cfg, fs, err := loadConfigArgs("jobs "+sub, args[1:], stderr, getenv, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		if sub == "runs" {
			fs.IntVar(&limit, "limit", 20, fmt.Sprintf("at most this many runs, newest first (1-%d)", jobs.MaxRuns))
		}
	})
	if err != nil {
		return err
	}
	name := ""
	if sub == "runs" {
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: gatehouse jobs runs NAME", errUsage)
		}
		name = fs.Arg(0)
		if limit < 1 || limit > jobs.MaxRuns {
			return fmt.Errorf("%w: --limit must be from 1 to %d", errUsage, jobs.MaxRuns)
		}
	} else if fs.NArg() != 0 {
		return fmt.Errorf("%w: gatehouse jobs list takes no arguments", errUsage)
	}
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	ledger := jobs.NewLedger(db)
	now := time.Now()
	if sub == "list" {
		app := appdir.Empty()
		if cfg.AppDir != "" {
			if app, err = appdir.Load(cfg.AppDir); err != nil {
				return err
			}
		}
		list, err := ledger.Summaries(ctx, jobDefs(app, cfg), now)
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tSCHEDULE\tLAST RUN\tTRIGGER\tOUTCOME\tINSTANCE")
		for _, s := range list {
			sched := s.Schedule
			if sched == "" {
				sched = "-"
			}
			if !s.Declared {
				sched += " (not in the app directory)"
			}
			if s.LastRun == nil {
				fmt.Fprintf(tw, "%s\t%s\tnever\t\t\t\n", s.Name, sched)
				continue
			}
			r := s.LastRun
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, sched, r.Started.Format(time.RFC3339), r.Kind, r.Outcome, r.Instance)
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
