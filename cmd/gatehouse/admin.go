package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/notify"
)

func tokenCmd(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "mint" {
		return fmt.Errorf("%w: gatehouse token mint --user ID [--ttl 24h] [--aud NAME]", errUsage)
	}
	var user, aud string
	var ttl time.Duration
	cfg, _, err := loadConfig("token mint", args[1:], stderr, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "user id to put in the token, e.g. custom:123 (required)")
		fs.DurationVar(&ttl, "ttl", 0, "token lifetime (default: token_ttl)")
		fs.StringVar(&aud, "aud", "", "aud claim (default: the provider part of the user id)")
	})
	if err != nil {
		return err
	}
	if user == "" {
		return fmt.Errorf("%w: --user is required", errUsage)
	}
	if keysFromDataDir(cfg) {
		if err := requireDataDir(cfg); err != nil {
			return err
		}
	}
	sec, err := cliSecrets(context.Background(), cfg, stderr)
	if err != nil {
		return err
	}
	a, err := auth.New(sec, auth.Options{ClockSkew: cfg.ClockSkew, MaxTTL: cfg.TokenMaxTTL})
	if err != nil {
		return err
	}
	m := &auth.Minter{Auth: a, DefaultTTL: cfg.TokenTTL, MaxTTL: cfg.TokenMaxTTL}
	tok, _, err := m.Mint(auth.MintRequest{UserID: user, Audience: aud, TTL: ttl})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// cliSecrets returns the keys in force for a CLI command: the cluster key ring when a key-encryption
// key is configured, else the configuration over keys.json (created, and its new keys shown once,
// if missing).
func cliSecrets(ctx context.Context, cfg *config.Config, stderr io.Writer) (auth.Secrets, error) {
	kek, err := loadKEK(cfg)
	if err != nil {
		return auth.Secrets{}, err
	}
	if kek == nil {
		res, sec, err := secrets(cfg, time.Now())
		if err != nil {
			return auth.Secrets{}, err
		}
		if res.Generated {
			fmt.Fprint(stderr, keys.Banner(cfg.DataDir, &res.Shown))
		}
		return sec, nil
	}
	r, _, err := openRing(ctx, cfg, kek)
	if err != nil {
		return auth.Secrets{}, err
	}
	return r.Secrets(extraPrevious(cfg))
}

// openRing loads the sealed ring (and returns its store and database, closed when ctx... by the caller).
func openRing(ctx context.Context, cfg *config.Config, kek *keyring.KEK) (*keyring.Ring, *keyring.Store, error) {
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	context.AfterFunc(ctx, func() { db.Close() })
	st := keyring.NewStore(db, kek)
	r, err := st.Load(ctx)
	if errors.Is(err, keyring.ErrNoRing) {
		return nil, nil, errors.New("the database has no key ring yet: start a server with the key-encryption key once (it creates the ring)")
	}
	if err == nil && !r.Sealed() {
		return nil, nil, errors.New("the cluster's keys are declared in the database by fingerprint only: restart an instance with the key-encryption key configured to seal them into the database")
	}
	return r, st, err
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func keysCmd(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gatehouse keys generate|rotate|show|status", errUsage)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch args[0] {
	case "generate":
		cfg, _, err := loadConfig("keys generate", args[1:], stderr, getenv, nil)
		if err != nil {
			return err
		}
		if cfg.KeyRing.KEK != "" || cfg.KeyRing.KEKFile != "" {
			return errors.New("with a key-encryption key the keys live in the database: a server creates them on its first start; read them with 'gatehouse keys show'")
		}
		res, err := keys.Resolve(cfg.DataDir, keys.Configured{MasterKey: cfg.MasterKey, ApplicationKey: cfg.ApplicationKey, SystemKey: cfg.SystemKey}, time.Now(), cfg.TokenMaxTTL)
		if err != nil {
			return err
		}
		if !res.Generated {
			if len(res.FromFile) == 0 {
				return errors.New("every key is set by the configuration: there is nothing to generate")
			}
			return fmt.Errorf("%s already exists; use 'gatehouse keys rotate' to replace a key", keys.Path(cfg.DataDir))
		}
		fmt.Fprint(stdout, keys.Banner(cfg.DataDir, &res.Shown))
		return nil
	case "status":
		cfg, _, err := loadConfig("keys status", args[1:], stderr, getenv, nil)
		if err != nil {
			return err
		}
		return keysShow(ctx, cfg, showOptions{}, stdout, stderr)
	case "show":
		var o showOptions
		cfg, _, err := loadConfig("keys show", args[1:], stderr, getenv, func(fs *flag.FlagSet) {
			fs.BoolVar(&o.master, "master", false, "also print the master key (full admin access)")
			fs.StringVar(&o.value, "value", "", "print only this key's value, for scripts: master or application")
		})
		if err != nil {
			return err
		}
		if o.value != "" && o.value != "master" && o.value != "application" {
			return fmt.Errorf("%w: --value must be master or application, not %q", errUsage, o.value)
		}
		o.secrets = true
		return keysShow(ctx, cfg, o, stdout, stderr)
	case "rotate":
		var which string
		var revoke bool
		cfg, _, err := loadConfig("keys rotate", args[1:], stderr, getenv, func(fs *flag.FlagSet) {
			fs.StringVar(&which, "which", "master", "key to rotate: master, application or system")
			fs.BoolVar(&revoke, "revoke-previous", false, "drop retired master keys too: every token they signed stops working (use for a leaked key)")
		})
		if err != nil {
			return err
		}
		w := keys.Which(which)
		if w != keys.Master && w != keys.Application && w != keys.System {
			return fmt.Errorf("%w: unknown key %q (master, application or system)", errUsage, which)
		}
		kek, err := loadKEK(cfg)
		if err != nil {
			return err
		}
		if kek != nil {
			return rotateRing(ctx, cfg, kek, w, revoke, stdout)
		}
		return rotateFile(cfg, w, revoke, stdout)
	}
	return fmt.Errorf("%w: unknown keys command %q (generate, rotate, show or status)", errUsage, args[0])
}

// rotateFile rotates a key in keys.json (a single node without a key-encryption key). It refuses when
// the rotation would change nothing: the key comes from configuration, here or in the servers.
func rotateFile(cfg *config.Config, w keys.Which, revoke bool, stdout io.Writer) error {
	if isPostgres(cfg.Database) {
		return errors.New("this cluster has no key-encryption key: each instance's keys come from its own configuration or keys.json and must equal the fingerprints declared in the database, so rotating one data directory would only make its instance refuse to start; configure key_encryption_key on every instance to keep the keys in the database, then rotate (docs/operations.md)")
	}
	setting := string(w) + "_key"
	if src := cfg.Sources[setting]; src != "default" {
		return fmt.Errorf("the %s key is set by %s, which wins over keys.json: rotating it there would change nothing; change it where it is set (list a retired master key in previous_master_keys until its tokens expire)", w, src)
	}
	if err := requireDataDir(cfg); err != nil {
		return err
	}
	s, err := keys.Load(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%w in %s (pass --data DIR naming the server's data directory, run 'gatehouse keys generate' or start the server once)", err, cfg.DataDir)
	}
	if s.IsConfigured(w) {
		return fmt.Errorf("the servers using %s take the %s key from their configuration (the environment or a configuration file), which wins over keys.json: rotating it there would change nothing; change it where it is set", cfg.DataDir, w)
	}
	now := time.Now()
	if err := s.Rotate(w, now, cfg.TokenMaxTTL, revoke); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := s.Save(cfg.DataDir); err != nil {
		return err
	}
	switch w {
	case keys.Master:
		fmt.Fprintf(stdout, "new master key: %s\n", s.MasterKey)
		if revoke {
			fmt.Fprintln(stdout, "previous master keys revoked: tokens they signed no longer verify.")
		} else {
			fmt.Fprintf(stdout, "tokens signed with the previous key keep working until they expire (at most %s).\n", cfg.TokenMaxTTL)
		}
	case keys.Application:
		fmt.Fprintf(stdout, "new application key: %s\n", s.ApplicationKey)
	case keys.System:
		fmt.Fprintln(stdout, "new system key generated.")
	}
	fmt.Fprintln(stdout, "running servers using this data directory pick up the change within seconds.")
	return nil
}

// rotateRing rotates a key of the cluster key ring: the new key is published as accepted, and becomes
// the signing key once every live instance has loaded it (or after key_ring.grace).
func rotateRing(ctx context.Context, cfg *config.Config, kek *keyring.KEK, w keys.Which, revoke bool, stdout io.Writer) error {
	given, src := configuredKeys(cfg)
	if _, ok := given[w]; ok {
		return fmt.Errorf("the %s key is set by %s here: instances configured with it would refuse to start after this rotation (their key would differ from the ring's); remove it from every instance's configuration (the ring keeps the key) and rotate again", w, src[w])
	}
	_, st, err := openRing(ctx, cfg, kek)
	if err != nil {
		return err
	}
	n, _, err := newNotifier(ctx, cfg, st.DB(), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.KeyRing.Grace+5*time.Second)
	defer cancel()
	res, err := st.RotateAndWait(wctx, w, revoke, ringRotateOptions(cfg, n))
	if errors.Is(err, keyring.ErrRotationPending) {
		return errors.New("a rotation of this key is still in progress (its new key waits for every instance): try again in a few seconds")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s key rotated: fingerprint %s -> %s (ring version %d, %d live instances, signing after %s)\n",
		w, res.Previous, res.New.Fingerprint, res.Ring.Version, res.Live, res.Took.Round(time.Millisecond))
	switch w {
	case keys.Master:
		fmt.Fprintf(stdout, "new master key: %s\n", res.Secret)
		if revoke {
			fmt.Fprintln(stdout, "previous master keys revoked: tokens they signed no longer verify.")
		} else {
			fmt.Fprintf(stdout, "tokens signed with the previous key keep working until they expire (at most %s).\n", cfg.TokenMaxTTL)
		}
	case keys.Application:
		fmt.Fprintf(stdout, "new application key: %s (the previous one is refused from now on)\n", res.Secret)
	}
	return nil
}

func ringRotateOptions(cfg *config.Config, n notify.Notifier) keyring.RotateOptions {
	return keyring.RotateOptions{Grace: cfg.KeyRing.Grace, Poll: cfg.KeyRing.Poll, Keep: ringKeep(cfg), Notifier: n}
}

// showOptions say what keys show prints: secrets (show, not status), the master key too (--master),
// or one key's bare value for scripts (--value).
type showOptions struct {
	secrets bool
	master  bool
	value   string
}

// keysShow prints the ring (status: fingerprints, states, instances; show: also the application key,
// and the master key with --master), or keys.json's keys on a single node. Keys given by the
// environment or the configuration file are never printed; a warning says which stored keys they
// override.
func keysShow(ctx context.Context, cfg *config.Config, o showOptions, stdout, stderr io.Writer) error {
	kek, err := loadKEK(cfg)
	if err != nil {
		return err
	}
	printKeys := func(master, application string) {
		switch o.value {
		case "master":
			fmt.Fprintln(stdout, master)
			return
		case "application":
			fmt.Fprintln(stdout, application)
			return
		}
		if application != "" {
			fmt.Fprintf(stdout, "application key (X-ZUMO-APPLICATION): %s\n", application)
		}
		if o.master && master != "" {
			fmt.Fprintf(stdout, "master key (X-ZUMO-MASTER):           %s\n", master)
		} else {
			fmt.Fprintln(stdout, "master key: not shown (add --master)")
		}
	}
	if kek == nil {
		if isPostgres(cfg.Database) {
			return errors.New("without a key-encryption key the cluster's keys are not in the database; each instance has its own configuration or keys.json")
		}
		if err := requireDataDir(cfg); err != nil {
			return err
		}
		s, err := keys.Load(cfg.DataDir)
		if errors.Is(err, keys.ErrNotFound) {
			return fmt.Errorf("no keys in %s (wrong --data directory? start the server once or run 'gatehouse keys generate')", keys.Path(cfg.DataDir))
		}
		if err != nil {
			return err
		}
		if !o.secrets {
			fmt.Fprintf(stdout, "keys in %s; set by configuration: %v; retired master keys: %d\n", keys.Path(cfg.DataDir), s.Configured, len(s.Previous))
			return nil
		}
		for _, k := range []string{"master_key", "application_key"} {
			if src := cfg.Sources[k]; src != "" && src != "default" {
				fmt.Fprintf(stderr, "warning: %s is set by %s; servers using this configuration use that value, not the one in %s (environment keys are never shown)\n", k, src, keys.Path(cfg.DataDir))
			}
		}
		master, application := s.MasterKey, s.ApplicationKey
		if s.IsConfigured(keys.Master) {
			master = ""
		}
		if s.IsConfigured(keys.Application) {
			application = ""
		}
		if (o.value == "master" && master == "") || (o.value == "application" && application == "") {
			return fmt.Errorf("the %s key is set by the configuration, not stored in %s: it is never shown", o.value, keys.Path(cfg.DataDir))
		}
		if o.value == "" {
			fmt.Fprintf(stderr, "keys stored in %s; keep them secret\n", keys.Path(cfg.DataDir))
		}
		printKeys(master, application)
		return nil
	}
	r, st, err := openRing(ctx, cfg, kek)
	if err != nil {
		return err
	}
	if o.secrets {
		sec, err := r.Secrets(nil)
		if err != nil {
			return err
		}
		printKeys(sec.MasterKey, sec.ApplicationKey)
		if o.value != "" {
			return nil
		}
	}
	fmt.Fprintf(stdout, "key ring version %d (sealed under key-encryption key %s), updated %s\n", r.Version, r.KEKID, r.UpdatedAt.Format(time.RFC3339))
	for _, k := range r.Keys {
		line := fmt.Sprintf("  %-11s %-8s %s  created %s", k.Kind, k.State, k.Fingerprint, k.CreatedAt.Format(time.RFC3339))
		if !k.RetiredAt.IsZero() {
			line += "  retired " + k.RetiredAt.Format(time.RFC3339)
		}
		fmt.Fprintln(stdout, line)
	}
	live, err := st.Live(ctx, time.Now(), keyring.Liveness(cfg.KeyRing.Poll))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d live instances:\n", len(live))
	for _, in := range live {
		fmt.Fprintf(stdout, "  %s  %s  ring version %d  heartbeat %s  keys from configuration: %v\n", in.ID, in.Host, in.RingVersion, in.HeartbeatAt.Format(time.RFC3339Nano), in.ConfigKeys)
	}
	return nil
}
