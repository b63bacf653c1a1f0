package main

import (
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
	if keysFromDataDir(cfg) {
		if err := requireDataDir(cfg); err != nil {
			return err
		}
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
		return fmt.Errorf("%w: gatehouse keys generate|rotate", errUsage)
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
		if err := requireDataDir(cfg); err != nil {
			return err
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
	}
	return fmt.Errorf("%w: unknown keys command %q (generate or rotate)", errUsage, args[0])
}
