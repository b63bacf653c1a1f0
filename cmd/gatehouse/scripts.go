package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
)

// loadApp loads the app directory and compiles its scripts (an empty app and no engine without
// --app). A script that does not compile stops start-up with its file and line.
func loadApp(cfg *config.Config, res *keys.Resolved, log *slog.Logger, m *metrics.Metrics) (*appdir.App, *script.Engine, error) {
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
		Keys:        scriptKeys(cfg, res, log),
		Log:         log.With("component", "script"),
		Observe:     scriptMetrics(m),
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

// scriptKeys gives scripts the keys in force, re-read when `gatehouse keys rotate` changes the keys
// file (only the master and application keys: never the system key or other secrets).
func scriptKeys(cfg *config.Config, res *keys.Resolved, log *slog.Logger) func() script.Keys {
	var mu sync.Mutex
	cur := script.Keys{MasterKey: res.MasterKey, ApplicationKey: res.ApplicationKey}
	stamp := keys.ModTime(cfg.DataDir)
	return func() script.Keys {
		mu.Lock()
		defer mu.Unlock()
		if len(res.FromFile) > 0 {
			if mt := keys.ModTime(cfg.DataDir); !mt.Equal(stamp) {
				stamp = mt
				if r, _, err := secrets(cfg, time.Now()); err == nil {
					cur = script.Keys{MasterKey: r.MasterKey, ApplicationKey: r.ApplicationKey}
				} else {
					log.Error("re-reading keys for scripts failed; scripts keep the previous keys", "err", err)
				}
			}
		}
		return cur
	}
}

// mountScripts connects the script engine: table scripts on the tables handler, /api, /jobs, the
// startup hook, the job schedule and hot reload.
func mountScripts(ctx context.Context, srv *server.Server, cfg *config.Config, db *store.DB, tables *table.Service, th *table.Handler, engine *script.Engine, log *slog.Logger) error {
	if engine == nil {
		return nil
	}
	engine.SetServices(&table.ScriptAPI{Service: tables}, script.NewSQL(db, tables))
	if err := engine.Startup(ctx); err != nil {
		return fmt.Errorf("app directory: %w", err)
	}
	th.Scripts = &script.TableHook{Engine: engine}
	sched := &script.Scheduler{Engine: engine, DB: db, Log: log.With("component", "scheduler")}
	srv.Mount("api", "/api/{name}", &script.APIHandler{Engine: engine})
	srv.Mount("jobs", "/jobs/{job}", &script.JobHandler{Scheduler: sched, Context: ctx})
	go sched.Schedule(ctx, cfg.Scripts.Jobs)
	if cfg.Scripts.ReloadInterval > 0 {
		go engine.Watch(ctx, cfg.Scripts.ReloadInterval)
	}
	return nil
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
