package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keyset"
	"github.com/gatehouse/gatehouse/internal/login"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/provider"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/user"
)

// usersCmd is `gatehouse users list|show ID|revoke ID` for the users directory (accounts.go handles
// add, enable, disable, set-password and import first).
func usersCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gatehouse users list|show|disable|enable|revoke", errUsage)
	}
	sub, args := args[0], args[1:]
	var asJSON bool
	var after string
	var limit int
	cfg, fs, err := loadConfigArgs("users "+sub, args, stderr, getenv, func(fs *flag.FlagSet) {
		if sub == "list" || sub == "show" {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}
		if sub == "list" {
			fs.StringVar(&after, "after", "", "list users whose id sorts after this one (paging)")
			fs.IntVar(&limit, "limit", 100, "at most this many users (1-1000)")
		}
	})
	if err != nil {
		return err
	}
	id := ""
	switch sub {
	case "list":
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: gatehouse users list takes no arguments", errUsage)
		}
	case "show", "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: gatehouse users %s USER_ID (e.g. Google:1234)", errUsage, sub)
		}
		id = fs.Arg(0)
	default:
		return fmt.Errorf("%w: unknown users subcommand %q (list, show, disable, enable, revoke, add, set-password, import)", errUsage, sub)
	}
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// Running servers learn of a revocation or a disabled user at once (and at their next poll
	// without notifications).
	n, _, err := newNotifier(ctx, cfg, db, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	dir, err := user.NewDirectory(user.NewSQL(db), user.Options{OnRevoke: publishRevocation(nil, n, newLogger(cfg, stderr))})
	if err != nil {
		return err
	}
	notFound := func(err error) error {
		if errors.Is(err, user.ErrNotFound) {
			return fmt.Errorf("no user %q", id)
		}
		return err
	}
	switch sub {
	case "list":
		us, err := dir.List(ctx, after, limit)
		if err != nil {
			return err
		}
		if asJSON {
			views := []login.UserView{}
			for i := range us {
				views = append(views, login.ViewOf(&us[i], nil))
			}
			return json.NewEncoder(stdout).Encode(views)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPROVIDER\tDISABLED\tCREATED\tLAST LOGIN")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", u.ID, u.Provider, u.Disabled, u.CreatedAt.Format(time.RFC3339), u.LastLoginAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "show":
		u, err := dir.Get(ctx, id)
		if err != nil {
			return notFound(err)
		}
		ids, err := dir.Identities(ctx, id)
		if err != nil {
			return err
		}
		v := login.ViewOf(u, ids)
		if asJSON {
			return json.NewEncoder(stdout).Encode(v)
		}
		fmt.Fprintf(stdout, "id:         %s\nprovider:   %s\ndisabled:   %v\ncreated:    %s\nlast login: %s\n", v.ID, v.Provider, v.Disabled,
			v.CreatedAt.Format(time.RFC3339), v.LastLoginAt.Format(time.RFC3339))
		for _, i := range v.Identities {
			claims, _ := json.Marshal(i.Claims)
			fmt.Fprintf(stdout, "identity:   %s %s sub=%s claims=%s provider_tokens=%v\n", i.Provider, i.Issuer, i.Subject, claims, i.HasProviderTokens)
		}
		return nil
	case "revoke":
		if _, err := dir.Get(ctx, id); err != nil {
			return notFound(err)
		}
		if err := dir.RevokeAll(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "every session of user %s ended\n", id)
	}
	return nil
}

// publishRevocation applies a cut-off this process just wrote locally and tells the other instances.
func publishRevocation(apply func(user.Revocation), n notify.Notifier, log *slog.Logger) func(user.Revocation) {
	return func(r user.Revocation) {
		if apply != nil {
			apply(r)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := n.Publish(ctx, notify.Revocations, ""); err != nil {
			log.Warn("notifying other instances of a revocation failed; they apply it at their next poll", "err", err)
		}
	}
}

// newUsers builds the users directory (shared by logins, accounts and the console) and the
// revocation list the authenticator enforces, kept current until ctx ends.
func newUsers(ctx context.Context, cfg *config.Config, db *store.DB, authn *auth.Authenticator, n notify.Notifier, log *slog.Logger) (*user.Directory, error) {
	// The sealer reads the master keys from the authenticator at every use, so `keys rotate` (and
	// --revoke-previous) reach it with the same reload that reaches token verification.
	tokSealer, err := user.NewRotatingSealer("provider tokens", authn, user.SealerOptions{})
	if err != nil {
		return nil, err
	}
	st := user.NewSQL(db)
	// Revocations written by this instance apply here at once; other instances reload when notified
	// (and at their next poll if the notification is lost).
	revs := user.NewRevocationList(st, cfg.Login.RevocationPoll, log, nil)
	changes, unsubscribe := n.Subscribe(notify.Revocations)
	context.AfterFunc(ctx, unsubscribe)
	revs.Follow(changes)
	dir, err := user.NewDirectory(st, user.Options{KeepProviderTokens: cfg.Login.KeepProviderTokens, Sealer: tokSealer,
		RefreshIdle: cfg.Login.RefreshIdle, RefreshLifetime: cfg.Login.RefreshLifetime, OnRevoke: publishRevocation(revs.Apply, n, log)})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = revs.Sync(sctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("loading user revocations: %w", err)
	}
	authn.SetRevocations(revs)
	go revs.Run(ctx)
	return dir, nil
}

// mountLogin builds the identity providers and the login handlers and mounts /login, /.auth/login,
// /.auth/refresh, /.auth/logout and /admin/users (whose disable and enable run accounts' decision:
// account.SetUserDisabled; accounts may be nil).
func mountLogin(ctx context.Context, srv *server.Server, cfg *config.Config, dir *user.Directory, accounts *account.Service, authn *auth.Authenticator, m *metrics.Metrics, log *slog.Logger) error {
	// A flow cookie lives StateTTL: a retired key opens flow cookies only that long after it retired.
	flowSealer, err := user.NewRotatingSealer("login flow", authn, user.SealerOptions{MaxAge: cfg.Login.StateTTL + time.Minute})
	if err != nil {
		return err
	}
	obs, err := keyset.NewPrometheusObserver(m.Registry)
	if err != nil {
		return err
	}
	client := keyset.NewHTTPClient(0, 0)
	reg, warnings, err := provider.FromConfig(cfg, provider.Deps{
		HTTP: provider.HTTP{Client: client, Timeout: cfg.Login.ProviderTimeout},
		Keys: keyset.Config{Client: client, Logger: log, Observer: obs, MinRefresh: cfg.KeysMinRefresh, MaxRefresh: cfg.KeysMaxRefresh,
			MaxStale: cfg.KeysMaxStale, ForcedRefreshInterval: cfg.KeysForcedRefreshInterval},
		Run: ctx,
	})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	h, err := login.New(login.Options{
		Providers: reg, Users: dir, Minter: newMinter(cfg, authn),
		SetDisabled: func(ctx context.Context, id string, disabled bool) error {
			_, err := account.SetUserDisabled(ctx, accounts, dir, id, disabled)
			return err
		},
		Sealer: flowSealer, PublicURL: cfg.PublicURL, AllowOrigin: srv.OriginAllowed, AllowedRedirects: cfg.Login.AllowedRedirectURLs,
		PackageSID: cfg.Providers.MicrosoftPackageSID, StateTTL: cfg.Login.StateTTL, RefreshTokens: cfg.Login.RefreshTokens, Log: log,
	})
	if err != nil {
		return err
	}
	h.MountOn(srv)
	log.Info("login providers", "enabled", reg.Enabled(), "public_url", cfg.PublicURL)
	if cfg.PublicURL == "" && len(reg.Names()) > 0 {
		log.Warn("public_url is not set: server-flow login is refused (client-flow login works)")
	}
	return nil
}
