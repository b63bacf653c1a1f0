package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/scriptstore"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
)

// loadApp loads the app directory with the script edits stored in the database laid over it, and
// compiles its scripts (an empty app and no engine without --app). A script that does not compile
// stops start-up with its file and line.
func loadApp(cfg *config.Config, db *store.DB, scriptKeys func() script.Keys, log *slog.Logger, m *metrics.Metrics) (*appdir.App, *script.Engine, error) {
	if cfg.AppDir == "" {
		return appdir.Empty(), nil, nil
	}
	engine, err := script.New(cfg.AppDir, script.Options{
		Timeout:     cfg.Scripts.Timeout,
		JobTimeout:  cfg.Scripts.JobTimeout,
		MemoryLimit: uint64(cfg.Scripts.MemoryLimitMB) << 20,
		AllocLimit:  int64(cfg.Scripts.AllocLimitMB) << 20,
		ServiceName: cfg.ServiceName,
		AppSettings: cfg.Scripts.AppSettings,
		HTTPAllow:   cfg.Scripts.HTTPAllowlist,
		Keys:        scriptKeys,
		Log:         log.With("component", "script"),
		Observe:     scriptMetrics(m),
		Overlay:     scriptstore.NewSQL(db),
	})
	if err != nil {
		return nil, nil, err
	}
	app := engine.App()
	log.Info("app directory loaded", "dir", cfg.AppDir, "tables", len(app.Tables()), "apis", len(app.APIs()))
	for job := range cfg.Scripts.Jobs {
		if _, ok := app.Job(job); !ok {
			return nil, nil, &config.Error{Setting: "scripts.jobs", Value: job, Reason: "no such job in the app directory (scheduler/" + job + ".js)"}
		}
	}
	return app, engine, nil
}

// currentScriptKeys gives scripts the keys in force, from the authenticator (so that a rotation,
// from keys.json or the cluster key ring, reaches them too): only the master and application keys,
// never the system key or other secrets.
func currentScriptKeys(a *auth.Authenticator) func() script.Keys {
	return func() script.Keys {
		s := a.Secrets()
		return script.Keys{MasterKey: s.MasterKey, ApplicationKey: s.ApplicationKey}
	}
}

// scriptsFollowInterval is how often an instance polls the script edits' revision, the fallback for a
// lost notification (like the table catalogue's).
const scriptsFollowInterval = 5 * time.Second

// mountScripts connects the script engine: table scripts on the tables handler, /api, /jobs, the
// startup hook, the job schedules (configured, and set at run time cluster-wide), hot reload of the
// folder, the script edits (/admin/scripts, and reloads when another instance changes them). It
// returns the scheduler, the schedules and the editor the console shares.
func mountScripts(ctx context.Context, srv *server.Server, cfg *config.Config, db *store.DB, n notify.Notifier, tables *table.Service, th *table.Handler,
	engine *script.Engine, m *metrics.Metrics, log *slog.Logger) (*script.Scheduler, *jobs.Schedules, *scriptstore.Editor, error) {
	if engine == nil {
		return nil, nil, nil, nil
	}
	sqlsvc := script.NewSQL(db, tables)
	sqlsvc.Role, sqlsvc.Timeout = cfg.Scripts.SQLRole, cfg.Scripts.SQLTimeout
	if sqlsvc.Role != "" && db.Dialect != store.Postgres {
		log.Warn("scripts.sql_role applies to PostgreSQL only; SQLite statements are confined by the authorizer")
	}
	engine.SetServices(&table.ScriptAPI{Service: tables}, sqlsvc)
	if err := engine.Startup(ctx); err != nil {
		return nil, nil, nil, fmt.Errorf("app directory: %w", err)
	}
	th.Scripts = &script.TableHook{Engine: engine}
	jm := metrics.NewJobs(m.Registry)
	schedules := jobs.NewSchedules(db, n, log.With("component", "scheduler"))
	sched := &script.Scheduler{Engine: engine, DB: db, Holder: instanceID(), Log: log.With("component", "scheduler"),
		Schedules: schedules.Store, Notifier: n,
		OnRun: func(r jobs.Run) { jm.Run(r.Job, string(r.Outcome), r.Duration()) }}
	srv.Mount("api", "/api/{name}", &script.APIHandler{Engine: engine})
	srv.Mount("jobs", "/jobs/{job}", &script.JobHandler{Scheduler: sched, Context: ctx})
	srv.Mount("/admin/jobs", "/admin/jobs", server.RequirePermission(auth.Admin, &jobs.AdminHandler{
		Ledger: jobs.NewLedger(db), Schedules: schedules, Defs: func() []jobs.Def { return jobDefs(engine.App(), cfg) }}))
	editor := &scriptstore.Editor{Store: scriptstore.NewSQL(db), Engine: engine, Audit: audit.NewStore(db), Notifier: n,
		Reload: engine.Reload, Log: log.With("component", "scripts")}
	srv.Mount("/admin/scripts", "/admin/scripts", server.RequirePermission(auth.Admin, &scriptstore.AdminHandler{Editor: editor, Log: log}))
	go sched.Schedule(ctx, cfg.Scripts.Jobs)
	if cfg.Scripts.ReloadInterval > 0 {
		go engine.Watch(ctx, cfg.Scripts.ReloadInterval)
	}
	go engine.Follow(ctx, n, scriptsFollowInterval)
	return sched, schedules, editor, nil
}

// jobDefs lists the app's jobs with their configured schedule.
func jobDefs(app *appdir.App, cfg *config.Config) []jobs.Def {
	var defs []jobs.Def
	for _, j := range app.Jobs() {
		d := jobs.Def{Name: j.Name}
		for name, every := range cfg.Scripts.Jobs {
			if jobs.Key(name) == jobs.Key(j.Name) {
				d.Every = every
			}
		}
		defs = append(defs, d)
	}
	return defs
}

// instanceID names this instance in the job history: the host name and a random suffix (several
// instances may share a host).
func instanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "gatehouse"
	}
	return host + "-" + jobs.NewID()[:8]
}

// scriptMetrics feeds the script and job metrics from the engine's per-invocation hook.
func scriptMetrics(m *metrics.Metrics) func(string, time.Duration, error) {
	return func(name string, d time.Duration, err error) {
		outcome := "ok"
		switch {
		case err == nil:
		case errors.Is(err, script.ErrTimeout):
			outcome = "timeout"
		case errors.Is(err, script.ErrMemory):
			outcome = "memory"
		default:
			outcome = "error"
		}
		kind := "other"
		switch path.Base(path.Dir(name)) {
		case "table":
			kind = "table"
		case "api":
			kind = "api"
		case "scheduler":
			kind = "job"
			jobOutcome := outcome
			if outcome == "error" || outcome == "memory" {
				jobOutcome = "failed"
			}
			m.JobRun(strings.TrimSuffix(path.Base(name), ".js"), d, jobOutcome)
		}
		m.ScriptRun(kind, d, outcome)
	}
}
