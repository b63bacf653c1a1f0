package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/console"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/scriptstore"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
	"github.com/gatehouse/gatehouse/internal/user"
	"golang.org/x/term"
)

// consoleDeps are the parts of a running server the console works through.
type consoleDeps struct {
	db       *store.DB
	authn    *auth.Authenticator
	tables   *table.Service
	rows     *table.Handler
	users    *user.Directory
	accounts *account.Service
	engine   *script.Engine
	scripts  *scriptstore.Editor
	sched    *script.Scheduler
	// schedules changes job schedules (with sched).
	schedules *jobs.Schedules
	ring      *keyring.Store
	ringOpts  keyring.RotateOptions
	activity  *activity.Store
}

// mountConsole serves the admin console at console.path (unless console.enabled is false).
func mountConsole(ctx context.Context, srv *server.Server, cfg *config.Config, d consoleDeps, log *slog.Logger) (*console.SQL, error) {
	if !cfg.Console.Enabled {
		return nil, nil
	}
	h, err := newHasher(cfg)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	st := console.NewSQL(d.db)
	trail := audit.NewStore(d.db)
	o := console.Options{
		Path: cfg.Console.Path, Store: st, Keys: d.authn.Secrets, Hasher: h,
		Policy:   password.Policy{MinLength: cfg.Accounts.MinPasswordLength},
		Throttle: account.NewSQL(d.db), Tables: d.tables, Rows: d.rows, Audit: trail, AuditLog: trail,
		IdleTimeout: cfg.Console.IdleTimeout, AbsoluteTimeout: cfg.Console.AbsoluteTimeout,
		InsecureLoopback: cfg.Console.InsecureLoopback, MaxUpload: int64(cfg.Console.MaxUploadKB) << 10,
		Log: log.With("component", "console"),
	}
	if d.scripts != nil {
		o.Scripts = d.scripts
	}
	if d.activity != nil {
		o.Activity = consoleActivity{st: d.activity}
	}
	if d.sched != nil {
		engine := d.engine
		o.Jobs = &console.Jobs{Ledger: jobs.NewLedger(d.db), Schedules: d.schedules, Defs: func() []jobs.Def { return jobDefs(engine.App(), cfg) },
			Start: d.sched.Start}
	}
	if d.users != nil {
		o.Users = &console.Users{Directory: d.users, Accounts: d.accounts}
	}
	o.KeyRing = &console.KeyRing{Store: d.ring, Options: d.ringOpts}
	c, err := console.New(o)
	if err != nil {
		return nil, err
	}
	srv.Mount(cfg.Console.Path, cfg.Console.Path, c)
	go expireConsoleSessions(ctx, st, cfg.Console.IdleTimeout, log)
	return st, nil
}

// expireConsoleSessions deletes ended console sessions and old setup links every ten minutes.
func expireConsoleSessions(ctx context.Context, st *console.SQL, idle time.Duration, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := st.DeleteExpired(ctx, time.Now(), idle); err != nil && ctx.Err() == nil {
			log.Warn("console: expiring sessions failed", "err", err)
		}
	}
}

// printSetupLink prints the console's one-time setup link once, when there is no administrator yet.
func printSetupLink(ctx context.Context, st *console.SQL, cfg *config.Config, base string, stdout io.Writer, log *slog.Logger) {
	if st == nil {
		return
	}
	tok, err := console.IssueSetupLink(ctx, st, time.Now(), cfg.Console.SetupLinkTTL)
	if err != nil {
		log.Warn("console: no setup link (database)", "err", err)
		return
	}
	if tok == "" {
		return
	}
	if cfg.PublicURL != "" {
		base = strings.TrimSuffix(cfg.PublicURL, "/")
	}
	fmt.Fprintf(stdout, "Console setup (one-time link, valid for %s): %s%s/setup?token=%s\n", cfg.Console.SetupLinkTTL,
		base, cfg.Console.Path, url.QueryEscape(tok))
}

// adminCmd runs `gatehouse admin create EMAIL`: a console administrator, the password read from
// standard input (prompted without echo on a terminal).
func adminCmd(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("%w: gatehouse admin create EMAIL (the password is read from standard input)", errUsage)
	}
	cfg, fs, err := loadConfigArgs("admin create", args[1:], stderr, getenv, nil)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: gatehouse admin create EMAIL", errUsage)
	}
	email := fs.Arg(0)
	pw, err := readAdminPassword(stdin, stderr)
	if err != nil {
		return err
	}
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	h, err := newHasher(cfg)
	if err != nil {
		return err
	}
	a, err := console.NewAdmin(ctx, h, password.Policy{MinLength: cfg.Accounts.MinPasswordLength}, email, pw, time.Now())
	if err != nil {
		return err
	}
	st := console.NewSQL(db)
	if err := st.CreateAdmin(ctx, a); err != nil {
		if errors.Is(err, console.ErrExists) {
			return fmt.Errorf("%s: %w", a.Email, err)
		}
		return err
	}
	if err := audit.NewStore(db).Record(ctx, audit.Entry{Actor: cliActor(getenv), Via: audit.ViaCLI, Action: "console.admin.create",
		Target: a.Email, After: audit.Snapshot(map[string]string{"email": a.Email})}); err != nil {
		return fmt.Errorf("administrator created, but recording it in the audit trail failed: %w", err)
	}
	fmt.Fprintf(stdout, "console administrator %s created; sign in at %s/signin\n", a.Email, cfg.Console.Path)
	return nil
}

// readAdminPassword prompts twice without echo on a terminal, or reads the first line of a pipe.
func readAdminPassword(stdin *os.File, stderr io.Writer) (string, error) {
	if stdin != nil && term.IsTerminal(int(stdin.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Password again: ")
		b, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the two passwords differ")
		}
		return string(a), nil
	}
	var r io.Reader = os.Stdin
	if stdin != nil {
		r = stdin
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("%w: no password on standard input", errUsage)
	}
	return line, nil
}

// consoleActivity reads package activity's cluster-wide events and aggregates for the console.
type consoleActivity struct{ st *activity.Store }

func (a consoleActivity) Tail(ctx context.Context, f console.EventFilter) ([]console.Event, error) {
	af := activity.Filter{Status: f.Status, Route: f.Route, User: f.UserID, RequestID: f.RequestID, Kind: activity.Kind(f.Kind),
		AfterID: f.AfterID, Limit: f.Limit}
	source := strings.TrimSuffix(f.Source, ".js")
	if source != "" {
		af.Kind, af.Limit = activity.KindScript, 1000
	}
	list, err := a.st.Tail(ctx, af)
	if err != nil {
		return nil, err
	}
	out := make([]console.Event, 0, len(list))
	// Newest first for the page.
	for i := len(list) - 1; i >= 0; i-- {
		e := list[i]
		if source != "" && !strings.EqualFold(e.Source, source) {
			continue
		}
		out = append(out, console.Event{ID: e.ID, Time: e.Time, Instance: e.Instance, Kind: string(e.Kind), RequestID: e.RequestID,
			Method: e.Method, Route: e.Route, Path: e.Path, Status: e.Status, Duration: e.Duration, UserID: e.UserID,
			Level: e.Level, Source: e.Source, Message: e.Message})
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	return out, nil
}

func (a consoleActivity) Stats(ctx context.Context, window time.Duration) (console.Stats, error) {
	now := time.Now()
	s, err := a.st.Stats(ctx, now.Add(-window), now)
	if err != nil {
		return console.Stats{}, err
	}
	out := console.Stats{Window: window, Requests: s.Requests, PerSecond: s.RequestsPerSecond, P99: s.P99}
	if s.Requests > 0 {
		out.ErrorRate = 100 * float64(s.Errors5xx) / float64(s.Requests)
		out.ClientErrors = 100 * float64(s.Errors4xx) / float64(s.Requests)
	}
	for _, m := range s.Minutes {
		out.Minutes = append(out.Minutes, console.Minute{Start: m.Start, Requests: m.Requests, Errors: m.Errors4xx + m.Errors5xx, P99: m.P99})
	}
	for _, in := range s.Instances {
		out.Instances = append(out.Instances, console.Instance{ID: in.ID, LastSeen: in.LastSeen, Requests: in.Requests})
	}
	return out, nil
}
