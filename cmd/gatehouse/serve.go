package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/outage"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/token"
)

// loadConfig parses flags for a subcommand (no positional arguments) and resolves the configuration.
func loadConfig(name string, args []string, stderr io.Writer, getenv func(string) string, extra func(*flag.FlagSet)) (*config.Config, *flag.FlagSet, error) {
	cfg, fs, err := loadConfigArgs(name, args, stderr, getenv, extra)
	if err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return cfg, fs, nil
}

// loadConfigArgs is loadConfig for commands that take positional arguments (before, between or
// after the flags).
func loadConfigArgs(name string, args []string, stderr io.Writer, getenv func(string) string, extra func(*flag.FlagSet)) (*config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := config.RegisterFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if r, ok := stderr.(interface{ recordFlags(*flag.FlagSet) }); ok {
		r.recordFlags(fs) // completion reads the flags
	}
	if err := parseInterspersed(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := config.Load(flags, getenv)
	if err != nil {
		return nil, nil, err
	}
	return cfg, fs, nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// secrets resolves the keys in force and turns them into the authenticator's form.
func secrets(cfg *config.Config, now time.Time) (*keys.Resolved, auth.Secrets, error) {
	res, err := keys.Resolve(cfg.DataDir, keys.Configured{MasterKey: cfg.MasterKey, ApplicationKey: cfg.ApplicationKey, SystemKey: cfg.SystemKey}, now, cfg.TokenMaxTTL)
	if err != nil {
		return nil, auth.Secrets{}, err
	}
	s := auth.Secrets{MasterKey: res.MasterKey, ApplicationKey: res.ApplicationKey, SystemKey: res.SystemKey}
	for _, p := range res.Previous {
		s.Previous = append(s.Previous, token.Key{Secret: p.Key, RetiredAt: p.RetiredAt})
	}
	for _, p := range cfg.PreviousMasterKeys {
		s.Previous = append(s.Previous, token.Key{Secret: p})
	}
	s.Signing = res.SigningEntries()
	return res, s, nil
}

// authOptions are the authenticator's token checks: clock skew, longest lifetime, and the issuer and
// audiences of asymmetric tokens.
func authOptions(cfg *config.Config) auth.Options {
	aud := cfg.Tokens.Audiences
	if len(aud) == 0 && cfg.Issuer() != "" {
		aud = []string{cfg.Issuer()}
	}
	return auth.Options{ClockSkew: cfg.ClockSkew, MaxTTL: cfg.TokenMaxTTL, Issuer: cfg.Issuer(), Audiences: aud}
}

// newMinter signs the tokens login flows return, in the format tokens.format selects.
func newMinter(cfg *config.Config, a *auth.Authenticator) *auth.Minter {
	return &auth.Minter{Auth: a, DefaultTTL: cfg.TokenTTL, MaxTTL: cfg.TokenMaxTTL, Format: cfg.Tokens.Format}
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	started := time.Now()
	cfg, _, err := loadConfig("serve", args, stderr, getenv, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	// The outage monitor logs a database outage once (and its recovery with a count); every
	// component's logger folds its "database unreachable" errors into it instead of one per request.
	var dbReady atomic.Pointer[store.DB]
	dbOutage := outage.New(pingFunc(func(ctx context.Context) error {
		if db := dbReady.Load(); db != nil {
			return db.Ping(ctx)
		}
		return nil
	}), log, outage.Options{})
	log = slog.New(dbOutage.Handler(log.Handler()))

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	policy := store.RequireCurrent
	if cfg.AutoMigrate {
		policy = store.Migrate
	}
	opt := storeOptions(cfg)
	opt.Schema, opt.CreateDataDir = policy, true
	pool := dbPool(cfg)
	db, err := store.OpenWith(ctx, store.WithPool(cfg.Database, pool), cfg.DataDir, opt)
	if err != nil {
		return err
	}
	defer db.Close()
	db.Configure(pool)
	dbReady.Store(db)
	go dbOutage.Run(ctx)
	// Change notifications between instances (LISTEN/NOTIFY on PostgreSQL); polling stays the fallback.
	notifier, runNotifier, err := newNotifier(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	go runNotifier(ctx)

	ks, err := setupKeys(ctx, cfg, db, notifier, log, stderr)
	if err != nil {
		return err
	}
	sec := ks.sec
	authn, err := auth.New(sec, authOptions(cfg))
	if err != nil {
		return err
	}
	if ks.agent != nil {
		ks.agent.Install = authn.SetSecrets
		agentDone := make(chan struct{})
		actx, cancelAgent := context.WithCancel(context.WithoutCancel(ctx))
		go func() { defer close(agentDone); ks.agent.Run(actx) }()
		// The agent outlives request handling (it acknowledges rotations while draining) and leaves
		// the instance registry last.
		defer func() { cancelAgent(); <-agentDone }()
	}

	m := metrics.New(version)
	// Activity (requests and script output, cluster-wide) and the audit trail.
	act, stopActivity := startActivity(ctx, cfg, db, ks, notifier, log)
	defer stopActivity()
	scriptLog := log
	if act != nil {
		scriptLog = slog.New(activity.ScriptLog(log.Handler(), act))
	}
	auditStore := audit.NewStore(db)
	if days := cfg.Audit.RetentionDays; days > 0 {
		go auditStore.RunRetention(ctx, time.Duration(days)*24*time.Hour, time.Hour, log)
	}
	app, engine, err := loadApp(cfg, db, currentScriptKeys(authn), scriptLog, m)
	if err != nil {
		return err
	}
	for _, m := range db.Newer {
		log.Warn("the database has a newer additive migration this binary does not know: running on it (rolling upgrade); upgrade this instance",
			"migration", m.Version, "name", m.Name)
	}

	tables, err := table.NewService(ctx, table.NewSQL(db), app, tableDefaults(cfg), log)
	if err != nil {
		return err
	}
	tables.Notify(notifier)

	m.Database(db.Stats, func() bool { return !dbOutage.Down() })
	m.ReadPipelines(db.ReadPipelineStats)
	tracer, stopTracing, err := telemetry.New(ctx, telemetry.Options{Endpoint: cfg.Telemetry.OTLPEndpoint,
		SampleRatio: cfg.Telemetry.SampleRatio, ServiceName: cfg.Telemetry.ServiceName, Version: version})
	if err != nil {
		return err
	}
	defer func() {
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(tctx); err != nil {
			log.Warn("flushing traces failed", "err", err)
		}
	}()
	srv := server.New(server.Deps{
		Config: cfg, Auth: authn, App: app, DB: db, Metrics: m, Logger: log, Version: version, Outage: dbOutage, Tracer: tracer,
		Minter:   newMinter(cfg, authn),
		Activity: act, Audit: &audit.Middleware{Recorder: auditStore, Log: log},
	})
	actStore := activity.NewStore(db)
	if ks.agent != nil {
		actStore.Registry, actStore.Liveness = ks.agent.Store, keyring.Liveness(cfg.KeyRing.Poll)
	}
	srv.Mount("/admin/audit", "/admin/audit", server.RequirePermission(auth.Admin, &audit.AdminHandler{Store: auditStore, Log: log}))
	srv.Mount("/admin/activity", "/admin/activity", server.RequirePermission(auth.Admin, &activity.AdminHandler{Store: actStore}))

	var ringStore *keyring.Store
	if ks.agent != nil {
		ringStore = ks.agent.Store
	}
	srv.Mount("/admin/keys", "/admin/keys", server.RequirePermission(auth.Admin, &keyring.AdminHandler{
		Store: ringStore, Options: ringRotateOptions(cfg, notifier), Log: log}))

	th := &table.Handler{Service: tables, Log: log, PublicURL: cfg.PublicURL}
	srv.Mount("tables", "/tables/{table}", th)
	srv.Mount("/admin/tables", "/admin/tables", &table.AdminHandler{Service: tables})
	go tables.Run(ctx, 5*time.Second)
	users, err := newUsers(ctx, cfg, db, authn, notifier, log)
	if err != nil {
		return err
	}
	// Built-in accounts (accounts.enabled) are users of the same directory, with refresh tokens when
	// login.refresh_tokens is on.
	accounts, err := mountAccounts(ctx, srv, cfg, db, authn, newMinter(cfg, authn),
		account.UserDirectory{Dir: users, Refresh: cfg.Login.RefreshTokens}, log)
	if err != nil {
		return err
	}
	if err := mountLogin(ctx, srv, cfg, users, accounts, authn, m, log); err != nil {
		return err
	}
	if engine != nil && users != nil {
		engine.SetIdentities(users)
	}
	pushSvc, err := mountPush(srv, cfg, db, notifier, app, engine, m, log)
	if err != nil {
		return err
	}
	sched, schedules, editor, err := mountScripts(ctx, srv, cfg, db, notifier, tables, th, engine, m, log)
	if err != nil {
		return err
	}
	consoleStore, err := mountConsole(ctx, srv, cfg, consoleDeps{db: db, authn: authn, tables: tables, rows: th, users: users,
		accounts: accounts, engine: engine, scripts: editor, sched: sched, schedules: schedules, ring: ringStore, ringOpts: ringRotateOptions(cfg, notifier), activity: actStore, notifier: notifier}, log)
	if err != nil {
		return err
	}
	pushDone := make(chan struct{})
	if cfg.PushDelivery.Deliver {
		go func() { defer close(pushDone); _ = pushSvc.Run(ctx) }()
	} else {
		close(pushDone)
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	httpSrv := newHTTPServer(srv.Handler(), cfg, log)
	errc := make(chan error, 3)
	scheme := "http"
	var certSrc *certs.Source
	if cfg.Edge.TLSEnabled() {
		if certSrc, err = certs.New(certOptions(cfg, log)); err != nil {
			ln.Close()
			return err
		}
		scheme = "https"
		httpSrv.TLSConfig = certSrc.TLSConfig()
		go func() { errc <- httpSrv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- httpSrv.Serve(ln) }()
	}
	var redirectSrv *http.Server
	if cfg.Edge.RedirectListen != "" {
		rln, err := net.Listen("tcp", cfg.Edge.RedirectListen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Edge.RedirectListen, err)
		}
		redirectSrv = newHTTPServer(certSrc.RedirectHandler(cfg.PublicURL, ln.Addr().(*net.TCPAddr).Port), cfg, log)
		go func() { errc <- redirectSrv.Serve(rln) }()
		log.Info("redirecting plain HTTP to https", "addr", rln.Addr().String(), "acme", len(cfg.Edge.ACMEDomains) > 0)
	}

	var metricsSrv *http.Server
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.MetricsListen, err)
		}
		metricsSrv = newHTTPServer(srv.MetricsHandler(), cfg, log)
		go func() { errc <- metricsSrv.Serve(mln) }()
	}
	if ks.watchFile {
		go watchKeys(ctx, cfg, authn, log)
	}
	attrs := []any{"addr", ln.Addr().String(), "version", version, "database", string(db.Dialect),
		"database_location", db.Location, "data", cfg.DataDir, "startup", time.Since(started).String()}
	if db.Transport.Description != "" {
		attrs = append(attrs, "database_transport", db.Transport.Description)
	}
	log.Info("gatehouse listening", attrs...)
	if db.Transport.Warning != "" {
		log.Warn("database connection is not protected: " + db.Transport.Warning)
	}
	fmt.Fprintf(stdout, "Gatehouse %s listening on %s://%s\n", version, scheme, ln.Addr())
	printSetupLink(ctx, consoleStore, cfg, scheme+"://"+ln.Addr().String(), stdout, log)

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if metricsSrv != nil {
		metricsSrv.Shutdown(sctx) //nolint:errcheck
	}
	if redirectSrv != nil {
		redirectSrv.Shutdown(sctx) //nolint:errcheck
	}
	if err := httpSrv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Deliveries in flight end with ctx; their messages come back to the outbox when their leases run out.
	<-pushDone
	log.Info("stopped")
	return nil
}

func newHTTPServer(h http.Handler, cfg *config.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.RequestTimeout + 10*time.Second,
		WriteTimeout:      cfg.RequestTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// watchKeys reloads the keys file when `gatehouse keys rotate` changes it, so rotation needs no restart.
func watchKeys(ctx context.Context, cfg *config.Config, a *auth.Authenticator, log *slog.Logger) {
	last := keys.ModTime(cfg.DataDir)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mt := keys.ModTime(cfg.DataDir)
		if mt.Equal(last) {
			continue
		}
		last = mt
		_, sec, err := secrets(cfg, time.Now())
		if err == nil {
			err = a.SetSecrets(sec)
		}
		if err != nil {
			log.Error("reloading keys failed; keeping the previous keys", "err", err)
			continue
		}
		log.Info("keys reloaded", "file", keys.Path(cfg.DataDir), "previous_master_keys", len(sec.Previous))
	}
}

func tableDefaults(cfg *config.Config) table.Defaults {
	return table.Defaults{PageSize: cfg.PageSize, MaxTop: cfg.MaxTop, DynamicSchema: cfg.DynamicSchema, Permission: auth.Application,
		Cost:           odata.CostLimits{MaxGrowth: float64(cfg.ODataMaxGrowth), MaxBytes: int64(cfg.ODataMaxComputedKB) << 10},
		MaxResultBytes: int64(cfg.MaxResponseKB) << 10, MaxColumns: cfg.MaxColumns, MaxNewColumns: cfg.MaxNewColumns}
}

func storeOptions(cfg *config.Config) store.Options {
	return store.Options{SQLiteMaxLength: cfg.SQLiteMaxValueKB << 10}
}

func dbPool(cfg *config.Config) store.Pool {
	p := cfg.DBPool
	pipelines := p.ReadPipelines
	if pipelines == 0 {
		pipelines = -1 // the setting's 0 is off; store.Pool's is the default
	}
	return store.Pool{MaxConns: p.MaxConns, MaxIdleConns: p.MaxIdleConns, ConnMaxLifetime: p.ConnMaxLifetime,
		ConnMaxIdleTime: p.ConnMaxIdleTime, StatementTimeout: p.StatementTimeout, ConnectTimeout: p.ConnectTimeout,
		ReadPipelines: pipelines}
}

type pingFunc func(ctx context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

func certOptions(cfg *config.Config, log *slog.Logger) certs.Options {
	e := cfg.Edge
	cache := e.ACMECacheDir
	if cache == "" {
		cache = filepath.Join(cfg.DataDir, "acme")
	}
	return certs.Options{CertFile: e.TLSCertFile, KeyFile: e.TLSKeyFile, Domains: e.ACMEDomains, Email: e.ACMEEmail,
		DirectoryURL: e.ACMEDirectoryURL, CAFile: e.ACMECAFile, CacheDir: cache, Log: log}
}

// parseInterspersed parses fs from args with flags allowed before, between and after positional
// arguments ("users show Google:1234 --json" as well as "users show --json Google:1234"); everything
// after a "--" is positional. fs.Args() then holds the positional arguments in their order.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	// Parse once more so fs.Args() reports the positional arguments (the flags are already set).
	return fs.Parse(append([]string{"--"}, pos...))
}

// startActivity starts this instance's activity recorder (nil when activity.enabled is off); stop
// flushes what is pending, after the HTTP server has drained.
func startActivity(ctx context.Context, cfg *config.Config, db *store.DB, ks *keySetup, n notify.Notifier, log *slog.Logger) (*activity.Recorder, func()) {
	if !cfg.Activity.Enabled {
		return nil, func() {}
	}
	id := newInstanceID()
	if ks.agent != nil {
		id = ks.agent.Instance.ID
	}
	rec := activity.NewRecorder(activity.NewStore(db), activity.Options{Instance: id, Window: cfg.Activity.Window,
		MaxEvents: cfg.Activity.MaxEvents, Notify: n, Log: log.With("component", "activity")})
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(rctx) }()
	return rec, func() { cancel(); <-done }
}
