package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/importer"
	"github.com/gatehouse/gatehouse/internal/progress"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
)

// envImportMasterKey holds the source's master key. Secrets are never flags: a process's argv is
// readable by every local user (ps, /proc/PID/cmdline) and lands in shell history.
const envImportMasterKey = "GATEHOUSE_IMPORT_MASTER_KEY"

// importCmd copies the tables of a live Mobile Services / Mobile Apps backend into the local database.
func importCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	for _, a := range args {
		if n := strings.TrimLeft(a, "-"); a != n && (n == "master-key" || strings.HasPrefix(n, "master-key=")) {
			return fmt.Errorf("%w: secrets are never accepted as flags (argv is visible to every local user); put the master key in %s or a file given with --master-key-file (- for stdin)", errUsage, envImportMasterKey)
		}
	}
	var from, tables, since, keyFile string
	var pageSize int
	var timeout time.Duration
	var allowHTTP, full bool
	var protocol string
	cfg, _, err := loadConfig("import", args, stderr, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "", "base URL of the source backend, e.g. https://myapp.azure-mobile.net (required)")
		fs.StringVar(&tables, "tables", "", "tables to copy, comma separated (required unless the source is a Gatehouse, which lists its tables)")
		fs.StringVar(&since, "since", "", "copy only rows updated at or after this time (RFC 3339, e.g. 2024-01-31T00:00:00Z)")
		fs.StringVar(&keyFile, "master-key-file", "", "file holding the source's master key (- reads it from stdin); or set "+envImportMasterKey)
		fs.IntVar(&pageSize, "page-size", importer.DefaultPageSize, "rows per request (at most 1000)")
		fs.DurationVar(&timeout, "timeout", importer.DefaultTimeout, "timeout of each request to the source")
		fs.BoolVar(&full, "full", false, "ignore the high-water marks of earlier runs and read every row again")
		fs.StringVar(&protocol, "protocol", "", "v1 or v2 (default: detected)")
		fs.BoolVar(&allowHTTP, "allow-http", false, "allow plain http to a host that is not loopback (the master key travels in clear)")
	})
	if err != nil {
		return err
	}
	if from == "" {
		return fmt.Errorf("%w: --from URL is required", errUsage)
	}
	ic := importer.Config{From: from, AllowHTTP: allowHTTP, PageSize: pageSize, Timeout: timeout, Full: full, Protocol: importer.Protocol(protocol)}
	for _, t := range strings.Split(tables, ",") {
		if t = strings.TrimSpace(t); t != "" {
			ic.Tables = append(ic.Tables, t)
		}
	}
	if since != "" {
		if ic.Since, err = time.Parse(time.RFC3339Nano, since); err != nil {
			return fmt.Errorf("%w: --since must be an RFC 3339 time such as 2024-01-31T00:00:00Z", errUsage)
		}
	}
	if ic.MasterKey, err = importMasterKey(keyFile, stdin, getenv); err != nil {
		return err
	}
	if ic.MasterKey == "" {
		fmt.Fprintf(stderr, "gatehouse import: no master key (%s or --master-key-file): reading as an anonymous client\n", envImportMasterKey)
	}
	// On a terminal: one rate-limited line on stderr. Otherwise the lines written so far (a bar when
	// only stdout is a terminal, plain lines in scripts and CI), unchanged.
	line := progressLine(stderr, "import", progress.Rows)
	if line.Enabled() {
		ic.Progress = &importer.Terminal{Line: line}
	} else if f, ok := stdout.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		ic.Progress = &importer.Bar{W: stdout}
	} else {
		ic.Progress = &importer.Lines{W: stdout}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := store.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	app := appdir.Empty()
	if cfg.AppDir != "" {
		if app, err = appdir.Load(cfg.AppDir); err != nil {
			return err
		}
	}
	st := table.NewSQL(db)
	svc, err := table.NewService(ctx, st, app, tableDefaults(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	sum, err := importer.Run(ctx, ic, importer.Target{DB: db, Service: svc, Store: st})
	line.Finish()
	if sum != nil {
		importer.PrintSummary(stdout, sum)
	}
	if err != nil {
		return fmt.Errorf("%w (the rows copied so far are kept with their high-water mark; run the same command again to continue)", err)
	}
	return nil
}

// importMasterKey reads the source's master key from --master-key-file (- = stdin) or the environment.
func importMasterKey(file string, stdin io.Reader, getenv func(string) string) (string, error) {
	env := getenv(envImportMasterKey)
	if file == "" {
		return strings.TrimSpace(env), nil
	}
	if env != "" {
		return "", fmt.Errorf("%w: the master key is given twice (%s and --master-key-file)", errUsage, envImportMasterKey)
	}
	var r io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--master-key-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--master-key-file: %w", err)
	}
	key := strings.TrimSpace(line)
	if key == "" {
		return "", fmt.Errorf("--master-key-file %s: empty", file)
	}
	return key, nil
}
