package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/internal/backup"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/progress"
	"github.com/gatehouse/gatehouse/internal/store"
)

// backupCmd is `gatehouse backup --out FILE`: an online copy of the SQLite database and keys.json.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var out string
	var force bool
	cfg, _, err := loadConfig("backup", args, stderr, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "archive to write (required; mode 0600)")
		fs.BoolVar(&force, "force", false, "replace an existing archive")
	})
	if err != nil {
		return err
	}
	if out == "" {
		return fmt.Errorf("%w: --out FILE is required", errUsage)
	}
	// A backup is taken before migrating too: the schema is neither checked nor changed.
	db, err := store.OpenWith(ctx, cfg.Database, cfg.DataDir, store.Options{Schema: store.AnySchema})
	if err != nil {
		return err
	}
	defer db.Close()
	line := progressLine(stderr, "backup", progress.Bytes)
	m, err := backup.Create(ctx, db, cfg.DataDir, out, version, force, time.Now(), line)
	if err != nil {
		return err
	}
	line.Finish()
	fmt.Fprintf(stdout, "backup written to %s: database %s at schema %d", out, db.Location, m.SchemaVersion)
	if m.Has(keys.FileName) {
		fmt.Fprintln(stdout, ", with keys.json.")
	} else {
		fmt.Fprintln(stdout, ".")
	}
	if keysFromDataDir(cfg) && !m.Has(keys.FileName) {
		fmt.Fprintf(stderr, "warning: %s does not exist: the archive holds no keys\n", keys.Path(cfg.DataDir))
	}
	if cfg.MasterKey != "" || cfg.ApplicationKey != "" || cfg.SystemKey != "" {
		fmt.Fprintln(stderr, "note: keys set by configuration (environment or file) are not in the archive: keep them in your secret store.")
	}
	fmt.Fprintln(stderr, "the archive holds secrets: keep it encrypted and access-controlled.")
	return nil
}

// progressLine is a progress line on stderr, drawn only when stderr is a terminal: scripts and CI
// (a pipe, a file, a test's buffer) see the command's usual output and nothing else.
func progressLine(stderr io.Writer, label string, unit progress.Unit) *progress.Line {
	f, ok := stderr.(*os.File)
	return progress.New(stderr, label, unit, progress.Options{Terminal: ok && term.IsTerminal(int(f.Fd()))})
}

// restoreCmd is `gatehouse restore --in FILE [--force]`: the archive becomes the data directory.
func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var in string
	var force bool
	cfg, _, err := loadConfig("restore", args, stderr, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&in, "in", "", "archive written by gatehouse backup (required)")
		fs.BoolVar(&force, "force", false, "replace a data directory that is not empty (its contents are moved aside)")
	})
	if err != nil {
		return err
	}
	if in == "" {
		return fmt.Errorf("%w: --in FILE is required", errUsage)
	}
	if cfg.Database != "" {
		return fmt.Errorf("%w: restore writes the data directory's SQLite database; unset --database/GATEHOUSE_DATABASE (PostgreSQL: pg_restore, see docs/operations.md)", errUsage)
	}
	line := progressLine(stderr, "restore", progress.Bytes)
	res, err := backup.Restore(ctx, in, cfg.DataDir, force, time.Now(), line)
	if err != nil {
		return err
	}
	line.Finish()
	m := res.Manifest
	fmt.Fprintf(stdout, "restored %s into %s: schema %d, taken %s by gatehouse %s", in, cfg.DataDir, m.SchemaVersion, m.CreatedAt.Format(time.RFC3339), m.GatehouseVersion)
	if m.Has(keys.FileName) {
		fmt.Fprintln(stdout, ", with keys.json.")
	} else {
		fmt.Fprintln(stdout, "; the archive had no keys.json.")
	}
	if res.MovedAside != "" {
		fmt.Fprintf(stdout, "the previous data directory was moved to %s; delete it once the restore is verified (it holds secrets).\n", res.MovedAside)
	}
	if m.SchemaVersion < store.SchemaVersion() {
		fmt.Fprintln(stdout, "the schema is older than this binary: 'gatehouse serve' (or 'gatehouse migrate up') brings it up to date.")
	}
	return nil
}
