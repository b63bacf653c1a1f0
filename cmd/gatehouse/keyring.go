package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/token"
)

// keySetup is where a server's keys come from: the sealed key ring in the database (agent set), or
// its configuration and keys.json (res set; on PostgreSQL checked against the cluster's declared
// fingerprints).
type keySetup struct {
	sec       auth.Secrets
	res       *keys.Resolved
	agent     *keyring.Agent
	watchFile bool // reload keys.json when `keys rotate` changes it (single node)
}

// loadKEK reads the key-encryption key from the configuration or its file (nil: none configured).
func loadKEK(cfg *config.Config) (*keyring.KEK, error) {
	v, setting := cfg.KeyRing.KEK, "key_encryption_key"
	if cfg.KeyRing.KEKFile != "" {
		b, err := os.ReadFile(cfg.KeyRing.KEKFile)
		if err != nil {
			return nil, &config.Error{Setting: "key_encryption_key_file", Value: cfg.KeyRing.KEKFile, Reason: err.Error()}
		}
		v, setting = string(b), "key_encryption_key_file"
	}
	if v == "" {
		return nil, nil
	}
	k, err := keyring.ParseKEK(v)
	if err != nil {
		// Never echo the value: it is a secret even when malformed.
		return nil, &config.Error{Setting: setting, Value: "(hidden)", Reason: err.Error()}
	}
	return k, nil
}

// configuredKeys are the keys set by configuration, with where each came from.
func configuredKeys(cfg *config.Config) (map[keys.Which]string, map[keys.Which]string) {
	given, src := map[keys.Which]string{}, map[keys.Which]string{}
	for w, v := range map[keys.Which]string{keys.Master: cfg.MasterKey, keys.Application: cfg.ApplicationKey, keys.System: cfg.SystemKey} {
		if v != "" {
			given[w], src[w] = v, cfg.Sources[string(w)+"_key"]
		}
	}
	return given, src
}

func kinds(m map[keys.Which]string) []keys.Which {
	var out []keys.Which
	for _, w := range []keys.Which{keys.Master, keys.Application, keys.System} {
		if _, ok := m[w]; ok {
			out = append(out, w)
		}
	}
	return out
}

func extraPrevious(cfg *config.Config) []token.Key {
	var out []token.Key
	for _, p := range cfg.PreviousMasterKeys {
		out = append(out, token.Key{Secret: p})
	}
	return out
}

// ringKeep is how long a retired key must keep verifying: the longest token lifetime plus skew.
func ringKeep(cfg *config.Config) time.Duration { return cfg.TokenMaxTTL + cfg.ClockSkew }

// newNotifier returns the change notifier for db: LISTEN/NOTIFY on PostgreSQL (the caller runs it),
// in-process on SQLite (one node).
func newNotifier(ctx context.Context, cfg *config.Config, db *store.DB, log *slog.Logger) (notify.Notifier, func(context.Context), error) {
	if db.Dialect != store.Postgres {
		return notify.NewLocal(), func(context.Context) {}, nil
	}
	n, err := notify.NewPostgres(ctx, db.DB, cfg.Database, log.With("component", "notify"))
	if err != nil {
		return nil, nil, err
	}
	return n, n.Run, nil
}

func newInstanceID() string {
	b := make([]byte, 8)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}

// setupKeys decides where this server's keys come from and checks them against the cluster's:
//   - a key-encryption key is configured: the sealed ring in the database (created on first start
//     from the configured keys, else keys.json's, else new ones); configured keys must equal it;
//   - PostgreSQL without one: configuration and keys.json, whose fingerprints must equal the ones
//     the cluster declared in the database (the first instance declares them);
//   - SQLite without one: configuration and keys.json, as a single node always did.
func setupKeys(ctx context.Context, cfg *config.Config, db *store.DB, n notify.Notifier, log *slog.Logger, stderr io.Writer) (*keySetup, error) {
	now := time.Now()
	kek, err := loadKEK(cfg)
	if err != nil {
		return nil, err
	}
	given, src := configuredKeys(cfg)
	if kek != nil {
		st := keyring.NewStore(db, kek)
		r, err := st.Load(ctx)
		if errors.Is(err, keyring.ErrNoRing) || (err == nil && !r.Sealed()) {
			r, err = initRing(ctx, cfg, st, given, r, log, stderr)
		}
		if err != nil {
			return nil, err
		}
		if err := r.Check(given, src); err != nil {
			return nil, err
		}
		if cfg.Tokens.Format == auth.FormatJWT {
			if _, err := st.EnsureSigning(ctx, cfg.Tokens.Algorithm, cfg.Tokens.JWKSMaxAge, now, ringKeep(cfg)); err != nil {
				return nil, err
			}
		}
		host, _ := os.Hostname()
		ag := &keyring.Agent{
			Store: st, Notifier: n, ExtraPrevious: extraPrevious(cfg),
			Instance: keyring.Instance{ID: newInstanceID(), Host: host + " " + cfg.Listen, StartedAt: now, ConfigKeys: kinds(given)},
			Poll:     cfg.KeyRing.Poll, Grace: cfg.KeyRing.Grace, Keep: ringKeep(cfg), Log: log.With("component", "keyring"),
		}
		sec, err := ag.Start(ctx)
		if err != nil {
			return nil, err
		}
		log.Info("keys from the cluster key ring", "version", ag.Version(), "kek", kek.ID(), "instance", ag.Instance.ID)
		return &keySetup{sec: sec, agent: ag}, nil
	}
	res, sec, err := secrets(cfg, now)
	if err != nil {
		return nil, err
	}
	if res.Generated {
		fmt.Fprint(stderr, keys.Banner(cfg.DataDir, &res.Shown))
	}
	if cfg.Tokens.Format == auth.FormatJWT {
		if db.Dialect == store.Postgres {
			return nil, &config.Error{Setting: "tokens.format", Value: cfg.Tokens.Format, Reason: "jwt tokens on PostgreSQL need key_encryption_key: every instance must sign with the same keys, which only the sealed key ring shares (docs/operations.md)"}
		}
		if err := keys.EnsureSigning(cfg.DataDir, kinds(given), cfg.Tokens.Algorithm, now, cfg.Tokens.JWKSMaxAge, ringKeep(cfg)); err != nil {
			return nil, err
		}
		if _, sec, err = secrets(cfg, now); err != nil {
			return nil, err
		}
	}
	ks := &keySetup{sec: sec, res: res, watchFile: len(res.FromFile) > 0 || cfg.Tokens.Format == auth.FormatJWT}
	if db.Dialect != store.Postgres {
		return ks, nil
	}
	// A cluster without a key-encryption key: every instance must bring the same keys.
	all := map[keys.Which]string{keys.Master: res.MasterKey, keys.Application: res.ApplicationKey, keys.System: res.SystemKey}
	for _, w := range res.FromFile {
		src[w] = keys.Path(cfg.DataDir)
	}
	r, _, err := keyring.NewStore(db, nil).Init(ctx, all, now)
	if err != nil {
		return nil, err
	}
	if err := r.Check(all, src); err != nil {
		return nil, fmt.Errorf("%w (give every instance the same keys, or configure a key-encryption key to keep them in the database: docs/operations.md)", err)
	}
	// keys.json of one instance cannot change alone in a cluster: `keys rotate` refuses, and a file
	// edited by hand is not picked up.
	ks.watchFile = false
	return ks, nil
}

// initRing creates the sealed ring (or seals a declared one) from the configured keys, keys.json's
// for the others if the data directory has one, else new keys. New keys are never printed here: the
// operator reads them with `gatehouse keys show`.
func initRing(ctx context.Context, cfg *config.Config, st *keyring.Store, given map[keys.Which]string, declared *keyring.Ring, log *slog.Logger, stderr io.Writer) (*keyring.Ring, error) {
	init := map[keys.Which]string{}
	for w, v := range given {
		init[w] = v
	}
	file, ferr := keys.Load(cfg.DataDir)
	var generated []string
	for _, w := range []keys.Which{keys.Master, keys.Application, keys.System} {
		if init[w] != "" {
			continue
		}
		if ferr == nil && !file.IsConfigured(w) {
			switch w {
			case keys.Master:
				init[w] = file.MasterKey
			case keys.Application:
				init[w] = file.ApplicationKey
			case keys.System:
				init[w] = file.SystemKey
			}
		}
		if init[w] == "" {
			if declared != nil {
				return nil, fmt.Errorf("the cluster declared its keys without a key-encryption key; to seal them into the database, start this instance once with all three keys (configuration or keys.json) equal to the declared ones")
			}
			init[w] = keys.Generate()
			generated = append(generated, string(w))
		}
	}
	r, created, err := st.Init(ctx, init, time.Now())
	if err != nil {
		return nil, err
	}
	if created || declared != nil {
		log.Info("cluster key ring sealed into the database", "keys", keyring.Describe(r), "generated", generated)
		if len(generated) > 0 {
			fmt.Fprintf(stderr, "Gatehouse created the cluster key ring with new %s keys; read them with: gatehouse keys show\n", strings.Join(generated, ", "))
		}
	}
	return r, nil
}
