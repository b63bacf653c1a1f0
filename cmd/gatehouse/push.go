package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/push"
	"github.com/gatehouse/gatehouse/internal/push/platform"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
)

// newPush builds the push service: the platforms whose credentials are configured, the outbox in db,
// change notifications to wake every instance's workers.
func newPush(cfg *config.Config, db *store.DB, n notify.Notifier, obs push.Observer, log *slog.Logger) (*push.Service, error) {
	byName, err := platform.FromConfig(cfg.PushProviders, platform.Overrides{})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	sort.Strings(names)
	ps := make([]push.Platform, 0, len(names))
	for _, name := range names {
		ps = append(ps, byName[name])
	}
	d := cfg.PushDelivery
	return push.New(push.Options{
		Store:     push.NewStore(db),
		Platforms: ps,
		Notifier:  n,
		Observer:  obs,
		Log:       log.With("component", "push"),
		Config: push.Config{MaxTags: d.MaxTags, ClientTags: d.ClientTags, MaxFanout: d.MaxFanout, Concurrency: d.Concurrency,
			RateLimit: float64(d.RateLimit), Lease: d.Lease, SendTimeout: d.SendTimeout, RetryBase: d.RetryBase, RetryMax: d.RetryMax,
			MaxAttempts: d.MaxAttempts, MessageTTL: d.MessageTTL, Poll: d.Poll},
	}), nil
}

// mountPush serves /push and /admin/push, gives scripts the push object and extensions/push.js,
// and starts the delivery workers (push.deliver).
func mountPush(srv *server.Server, cfg *config.Config, db *store.DB, n notify.Notifier, app *appdir.App,
	engine *script.Engine, m *metrics.Metrics, log *slog.Logger) (*push.Service, error) {
	svc, err := newPush(cfg, db, n, metrics.NewPush(m.Registry), log)
	if err != nil {
		return nil, err
	}
	currentApp := func() *appdir.App { return app }
	var hook func() push.Hook
	if engine != nil {
		currentApp = engine.App
		engine.SetPush(push.Scripts{S: svc})
		hook = func() push.Hook {
			if !engine.HasPushHook() {
				return nil
			}
			return func(ctx context.Context, reg map[string]any, c push.Caller) (map[string]any, error) {
				out, err := engine.PushRegister(ctx, reg, c.Auth)
				if errors.Is(err, script.ErrPushRegistration) {
					return nil, &push.HookError{Msg: strings.TrimPrefix(err.Error(), script.ErrPushRegistration.Error()+": ")}
				}
				return out, err
			}
		}
	}
	srv.Mount("push", "/push", svc.Handler(push.HandlerOptions{App: currentApp, Hook: hook, PublicURL: cfg.PublicURL, Log: log}))
	srv.Mount("/admin/push", "/admin/push", server.RequirePermission(auth.Admin, svc.AdminHandler()))
	if ps := svc.Platforms(); len(ps) > 0 {
		log.Info("push configured", "platforms", strings.Join(ps, ","), "deliver", cfg.PushDelivery.Deliver)
	}
	return svc, nil
}

// pushCmd: gatehouse push send|list|status.
func pushCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || (args[0] != "send" && args[0] != "list" && args[0] != "status") {
		return fmt.Errorf("%w: gatehouse push send|list|status", errUsage)
	}
	sub := args[0]
	var req push.SendRequest
	var payload, payloadFile, props string
	var headers stringList
	var user, installation, device, tag string
	var asJSON bool
	cfg, _, err := loadConfig("push "+sub, args[1:], stderr, getenv, func(fs *flag.FlagSet) {
		switch sub {
		case "send":
			fs.StringVar(&req.Tag, "tag", "", "tag expression the send reaches (a && b, !c, (a || b)); empty: every device")
			fs.StringVar(&req.Platform, "platform", "", "apns, fcm (gcm), wns or webpush: a native send; empty: a template send (--props)")
			fs.StringVar(&req.Device, "device", "", "a device token or channel to send to directly (native sends)")
			fs.StringVar(&payload, "payload", "", `the platform's payload, e.g. '{"aps":{"alert":"Hi"}}' or a WNS toast's XML`)
			fs.StringVar(&payloadFile, "payload-file", "", "read the payload from this file (- for standard input)")
			fs.StringVar(&props, "props", "", `template properties as a JSON object, e.g. '{"message":"Hi"}'`)
			fs.Var(&headers, "header", "a platform header Name=value (repeatable), e.g. apns-push-type=alert, X-WNS-Type=wns/toast")
			fs.StringVar(&req.TTL, "ttl", "", "how long the notification is worth delivering, e.g. 1h")
		case "list":
			fs.StringVar(&user, "user", "", "the devices of a user id (its _UserId: tag)")
			fs.StringVar(&installation, "installation", "", "an installation's registrations")
			fs.StringVar(&req.Platform, "platform", "", "with --device: the device's platform")
			fs.StringVar(&device, "device", "", "a device token or channel's registrations (with --platform)")
			fs.StringVar(&tag, "tag", "", "the registrations with a tag")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		case "status":
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}
	})
	if err != nil {
		return err
	}
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	var n notify.Notifier = notify.NewLocal()
	if db.Dialect == store.Postgres {
		if n, err = notify.NewPostgres(ctx, db.DB, cfg.Database, slog.New(slog.DiscardHandler)); err != nil {
			return err
		}
	}
	svc, err := newPush(cfg, db, n, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	switch sub {
	case "send":
		if payloadFile != "" {
			if payload != "" {
				return fmt.Errorf("%w: give --payload or --payload-file, not both", errUsage)
			}
			var b []byte
			if payloadFile == "-" {
				b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
			} else {
				b, err = os.ReadFile(payloadFile)
			}
			if err != nil {
				return err
			}
			payload = string(b)
		}
		if payload != "" {
			// The payload travels as a JSON string: the platform receives its bytes as given.
			req.Payload, _ = json.Marshal(payload)
		}
		if props != "" {
			if err := json.Unmarshal([]byte(props), &req.Properties); err != nil {
				return fmt.Errorf("%w: --props must be a JSON object of strings: %v", errUsage, err)
			}
		}
		req.Headers = headers.m
		res, err := svc.Send(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "queued %d notification(s)\n", res.Queued)
		return nil
	case "status":
		st, err := svc.Status(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(st)
		}
		ps := strings.Join(st.Platforms, ", ")
		if ps == "" {
			ps = "none (push is not configured)"
		}
		fmt.Fprintf(stdout, "platforms: %s\npending: %d\n", ps, st.Pending)
		return nil
	}
	list, err := svc.List(ctx, user, installation, req.Platform, device, tag)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPLATFORM\tCHANNEL\tTEMPLATE\tUSER\tTAGS\tUPDATED")
	for _, d := range list {
		tmpl, u := d.TemplateName, d.UserID
		if tmpl == "" {
			tmpl = "-"
		}
		if u == "" {
			u = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Platform, d.Channel, tmpl, u, strings.Join(d.Tags, ","), d.UpdatedAt.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

// stringList is a repeatable Name=value flag.
type stringList struct{ m map[string]string }

func (s *stringList) String() string { return "" }

func (s *stringList) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want Name=value")
	}
	if s.m == nil {
		s.m = map[string]string{}
	}
	s.m[k] = val
	return nil
}
