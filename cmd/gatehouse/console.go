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
	"github.com/gatehouse/gatehouse/internal/notify"
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
	notifier  notify.Notifier
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
		o.Activity = console.NewActivity(d.activity)
	}
	// Live tails wake on every instance's new-events hint and end when the server shuts down.
	o.Notifier, o.Done = d.notifier, ctx.Done()
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
