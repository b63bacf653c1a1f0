package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/user"
)

// newAccounts builds the accounts service from the configuration. minter may be nil (admin commands);
// users may be nil until the users directory is wired.
func newAccounts(cfg *config.Config, db *store.DB, minter account.Minter, users account.Users, sealer account.Sealer, log *slog.Logger) (*account.Service, error) {
	h, err := newHasher(cfg)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	var mailer mail.Mailer = mail.Disabled{}
	if cfg.Mail.Host != "" {
		m, err := mail.NewSMTP(mail.SMTPConfig{Host: cfg.Mail.Host, Port: cfg.Mail.Port, Username: cfg.Mail.Username, Password: cfg.Mail.Password,
			From: cfg.Mail.From, TLS: mail.TLSMode(cfg.Mail.TLS), Timeout: cfg.Mail.Timeout})
		if err != nil {
			return nil, fmt.Errorf("mail settings: %w", err)
		}
		mailer = m
	}
	reset, verify := account.Links(cfg.Accounts.ResetURL, cfg.Accounts.VerifyURL, cfg.PublicURL)
	// Passkeys need a relying party: public_url's host (a Host header cannot be trusted for it).
	// WebAuthn refuses an IP address as relying party id: with such a public_url passkeys stay off.
	var passkeys *account.PasskeyConfig
	if cfg.PublicURL != "" {
		if passkeys, err = account.PasskeyConfigFor(cfg.PublicURL, cfg.Accounts.PasskeyOrigins); err != nil {
			return nil, err
		}
		if net.ParseIP(passkeys.RPID) != nil {
			log.Warn("accounts: public_url names an IP address, not a domain; passkeys are off (use a host name, e.g. localhost)", "public_url", cfg.PublicURL)
			passkeys = nil
		}
	}
	return account.NewService(account.Options{
		Sealer: sealer, MFATTL: cfg.Accounts.MFAChallengeTTL, Passkeys: passkeys,
		SignInLink: account.SignInLinks(cfg.Accounts.SignInURL, cfg.PublicURL), SignInTTL: cfg.Accounts.SignInTTL,
		Store: account.NewSQL(db), Hasher: h, Policy: password.Policy{MinLength: cfg.Accounts.MinPasswordLength},
		Mailer: mailer, Minter: minter, Users: users, LinkTTL: cfg.Accounts.LinkTTL, ResetLink: reset, VerifyLink: verify,
		ServiceName: cfg.ServiceName, AllowRegistration: cfg.Accounts.AllowRegistration,
		RequireVerifiedEmail: cfg.Accounts.RequireVerifiedEmail, KeepLegacyHashes: cfg.Accounts.KeepLegacyHashes, Log: log,
	})
}

// newHasher is the argon2id hasher with the accounts' parameters (the console's administrators use
// it too).
func newHasher(cfg *config.Config) (*password.Hasher, error) {
	conc := cfg.Accounts.HashConcurrency
	if conc == 0 {
		conc = password.DefaultConcurrency()
	}
	queue := cfg.Accounts.HashQueue
	if queue == 0 {
		queue = password.DefaultQueue(conc)
	}
	return password.NewHasher(password.Config{
		Params:  password.Params{Memory: uint32(cfg.Accounts.Argon2MemoryKiB), Time: uint32(cfg.Accounts.Argon2Time), Threads: uint8(cfg.Accounts.Argon2Threads)},
		Limiter: password.NewLimiter(conc, queue),
	})
}

// mountAccounts serves the accounts routes (both families) and the admin API when accounts.enabled
// is set, and runs the service's background work until ctx ends.
func mountAccounts(ctx context.Context, srv *server.Server, cfg *config.Config, db *store.DB, authn *auth.Authenticator, minter account.Minter, users account.Users, log *slog.Logger) (*account.Service, error) {
	if !cfg.Accounts.Enabled {
		return nil, nil
	}
	// Authenticator-app secrets are sealed under keys derived from the master keys (and follow their
	// rotation: every accepted code re-seals the secret under the current key).
	sealer, err := user.NewRotatingSealer("account second factors", authn, user.SealerOptions{})
	if err != nil {
		return nil, err
	}
	svc, err := newAccounts(cfg, db, minter, users, sealer, log)
	if err != nil {
		return nil, err
	}
	if cfg.PublicURL == "" {
		log.Warn("accounts: public_url is not set; passkeys are off (they need a relying party id)")
	}
	if cfg.Mail.Host == "" {
		log.Warn("accounts are enabled but no SMTP server is configured (mail.smtp_host): verification and reset emails cannot be sent")
	}
	if cfg.PublicURL == "" && cfg.Accounts.ResetURL == "" {
		log.Warn("accounts: public_url is not set; emailed links point at http://localhost:8080")
	}
	go svc.Run(ctx)
	h := &account.Handler{Service: svc, Auth: authn, Log: log, PublicURL: cfg.PublicURL}
	for _, p := range h.Prefixes() {
		srv.Mount(p, p, h)
	}
	srv.Mount(account.AdminPrefix, account.AdminPrefix, &account.AdminHandler{Service: svc})
	return svc, nil
}

// accountUsersCmd runs the subcommands of `gatehouse users` that may name an account: add, enable,
// disable, set-password, import (enable and disable also take any user id of the users directory;
// list, show and revoke belong to users.go). It reports whether it handled sub.
func accountUsersCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "add", "enable", "disable", "set-password", "reset-mfa", "import":
	default:
		return false, nil
	}
	var email, ref, format string
	var verified, passwordStdin bool
	cfg, fs, err := loadConfigArgs("users "+sub, args, stderr, getenv, func(fs *flag.FlagSet) {
		switch sub {
		case "add":
			fs.StringVar(&email, "email", "", "email address (required)")
			fs.BoolVar(&verified, "verified", false, "mark the address as verified")
			fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input (else: no password; the user sets one with a reset link)")
		case "enable", "disable", "set-password", "reset-mfa":
			fs.StringVar(&ref, "user", "", "account id, email address or user id (or give it as the argument)")
			if sub == "set-password" {
				fs.BoolVar(&passwordStdin, "password-stdin", true, "read the password from the first line of standard input")
			}
		case "import":
			fs.StringVar(&format, "format", "", "csv or json (default: detected)")
		}
	})
	if err != nil {
		return true, err
	}
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return true, err
	}
	defer db.Close()
	log := newLogger(cfg, stderr)
	n, _, err := newNotifier(ctx, cfg, db, log)
	if err != nil {
		return true, err
	}
	// Running servers enforce a revocation this command writes at once (set-password ends sessions).
	dir, err := user.NewDirectory(user.NewSQL(db), user.Options{OnRevoke: publishRevocation(nil, n, log)})
	if err != nil {
		return true, err
	}
	// Accounts are users of the directory: add and import create them there, enable and set-password
	// re-enable and revoke there too.
	svc, err := newAccounts(cfg, db, nil, account.UserDirectory{Dir: dir}, nil, log)
	if err != nil {
		return true, err
	}
	readPassword := func() (string, error) {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", fmt.Errorf("%w: no password on standard input", errUsage)
		}
		return line, nil
	}
	show := func(a *account.Account) error {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(svc.ViewOf(a))
	}
	switch sub {
	case "add":
		if email == "" {
			return true, fmt.Errorf("%w: --email is required", errUsage)
		}
		pw := ""
		if passwordStdin {
			if pw, err = readPassword(); err != nil {
				return true, err
			}
		}
		a, err := svc.Add(ctx, email, pw, verified)
		if errors.Is(err, account.ErrDuplicate) {
			return true, fmt.Errorf("an account with the address %s already exists", email)
		}
		if err != nil {
			return true, err
		}
		return true, show(a)
	case "reset-mfa":
		if fs.NArg() == 1 && ref == "" {
			ref = fs.Arg(0)
		}
		if ref == "" || fs.NArg() > 1 || (fs.NArg() == 1 && ref != fs.Arg(0)) {
			return true, fmt.Errorf("%w: gatehouse users reset-mfa USER (account id, email address or user id)", errUsage)
		}
		a, err := svc.Find(ctx, ref)
		if err != nil {
			return true, fmt.Errorf("%s: %w", ref, err)
		}
		if err := svc.ResetMFA(ctx, a.ID); err != nil {
			return true, err
		}
		fmt.Fprintf(stdout, "second factors of %s (%s) removed; its sessions are revoked\n", a.ID, a.Email)
		return true, nil
	case "enable", "disable", "set-password":
		// The user may be named by --user or as the argument: "users enable Google:user77".
		switch {
		case fs.NArg() == 1 && ref == "":
			ref = fs.Arg(0)
		case fs.NArg() > 1 || (fs.NArg() == 1 && ref != ""):
			return true, fmt.Errorf("%w: gatehouse users %s USER (account id, email address or user id)", errUsage, sub)
		}
		if ref == "" {
			return true, fmt.Errorf("%w: gatehouse users %s USER (account id, email address or user id)", errUsage, sub)
		}
		if sub != "set-password" {
			// An account and its user in the directory change together; any other user id is a user
			// of the directory (a provider login such as Google:1234).
			sw, err := account.SetUserDisabled(ctx, svc, dir, ref, sub == "disable")
			if errors.Is(err, account.ErrNoUser) {
				return true, fmt.Errorf("no account or user %q (see 'gatehouse users list')", ref)
			}
			if err != nil {
				return true, err
			}
			if sw.Account != nil {
				fmt.Fprintf(stdout, "account %s (%s) %sd\n", sw.Account.ID, sw.Account.Email, sub)
				return true, nil
			}
			done := "enabled; tokens issued before now stay revoked"
			if sub == "disable" {
				done = "disabled; running servers refuse its tokens within seconds"
			}
			fmt.Fprintf(stdout, "user %s %s\n", ref, done)
			return true, nil
		}
		a, err := svc.Find(ctx, ref)
		if err != nil {
			return true, fmt.Errorf("%s: %w", ref, err)
		}
		pw, err := readPassword()
		if err != nil {
			return true, err
		}
		if err := svc.SetPassword(ctx, a.ID, pw); err != nil {
			return true, err
		}
		fmt.Fprintf(stdout, "password of %s (%s) set; its sessions are revoked\n", a.ID, a.Email)
		return true, nil
	case "import":
		if fs.NArg() != 1 {
			return true, fmt.Errorf("%w: gatehouse users import [--format csv|json] FILE", errUsage)
		}
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return true, err
		}
		defer f.Close()
		rows, err := account.ParseImportFile(f, format)
		if err != nil {
			return true, err
		}
		sum := svc.Import(ctx, rows)
		for _, r := range sum.Rows {
			if r.Status == "error" {
				fmt.Fprintf(stderr, "line %d (%s): %s\n", r.Line, r.Email, r.Error)
			}
		}
		fmt.Fprintf(stdout, "%d created, %d already present, %d errors\n", sum.Created, sum.Exists, sum.Errors)
		if sum.Errors > 0 {
			return true, fmt.Errorf("%d rows failed (fix them and run the import again: it is idempotent)", sum.Errors)
		}
		return true, nil
	}
	return false, nil
}
