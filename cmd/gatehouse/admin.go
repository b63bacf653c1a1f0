package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/keys"
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
	res, sec, err := secrets(cfg, time.Now())
	if err != nil {
		return err
	}
	if res.Generated {
		fmt.Fprint(stderr, keys.Banner(cfg.DataDir, &res.Set))
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

func keysCmd(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gatehouse keys generate|show|rotate", errUsage)
	}
	switch args[0] {
	case "generate":
		cfg, _, err := loadConfig("keys generate", args[1:], stderr, getenv, nil)
		if err != nil {
			return err
		}
		s, created, err := keys.Ensure(cfg.DataDir, time.Now())
		if err != nil {
			return err
		}
		if !created {
			return fmt.Errorf("%s already exists; use 'gatehouse keys rotate' to replace a key", keys.Path(cfg.DataDir))
		}
		fmt.Fprint(stdout, keys.Banner(cfg.DataDir, s))
		return nil
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
		if cfg.Sources["master_key"] != "default" && which == "master" {
			return fmt.Errorf("the master key is set by %s; change it there (list the old one in previous_master_keys until its tokens expire)", cfg.Sources["master_key"])
		}
		s, err := keys.Load(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("%w (run 'gatehouse keys generate' or start the server once)", err)
		}
		now := time.Now()
		if err := s.Rotate(keys.Which(which), now, cfg.TokenMaxTTL, revoke); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if err := s.Save(cfg.DataDir); err != nil {
			return err
		}
		switch keys.Which(which) {
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
	case "show":
		return keysShow(args[1:], stdout, stderr, getenv)
	}
	return fmt.Errorf("%w: unknown keys command %q (generate, show or rotate)", errUsage, args[0])
}

// keysShow prints the keys stored in the data directory's keys.json: the application key, and the
// master key only when asked (--master, or --value master). Keys given by the environment or the
// configuration file are never printed; a warning says which stored keys they override.
func keysShow(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var master bool
	var value string
	cfg, _, err := loadConfig("keys show", args, stderr, getenv, func(fs *flag.FlagSet) {
		fs.BoolVar(&master, "master", false, "also print the master key (full admin access)")
		fs.StringVar(&value, "value", "", "print only this key's value, for scripts: master or application")
	})
	if err != nil {
		return err
	}
	if value != "" && value != "master" && value != "application" {
		return fmt.Errorf("%w: --value must be master or application, not %q", errUsage, value)
	}
	s, err := keys.Load(cfg.DataDir)
	if errors.Is(err, keys.ErrNotFound) {
		return fmt.Errorf("no keys in %s (wrong --data directory? start the server once or run 'gatehouse keys generate')", keys.Path(cfg.DataDir))
	}
	if err != nil {
		return err
	}
	for _, k := range []string{"master_key", "application_key"} {
		if src := cfg.Sources[k]; src != "" && src != "default" {
			fmt.Fprintf(stderr, "warning: %s is set by %s; servers using this configuration use that value, not the one in %s (environment keys are never shown)\n", k, src, keys.Path(cfg.DataDir))
		}
	}
	switch value {
	case "master":
		fmt.Fprintln(stdout, s.MasterKey)
		return nil
	case "application":
		fmt.Fprintln(stdout, s.ApplicationKey)
		return nil
	}
	fmt.Fprintf(stderr, "keys stored in %s; keep them secret\n", keys.Path(cfg.DataDir))
	fmt.Fprintf(stdout, "application key (X-ZUMO-APPLICATION): %s\n", s.ApplicationKey)
	if master {
		fmt.Fprintf(stdout, "master key (X-ZUMO-MASTER):           %s\n", s.MasterKey)
	} else {
		fmt.Fprintln(stdout, "master key: not shown (add --master)")
	}
	return nil
}
