package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/scriptstore"
)

// scriptsCmd is `gatehouse scripts list|show|history|save|restore|revert`: the script edits stored in
// the database, through the editor the console and /admin/scripts use (checked first, audited in the
// change's transaction as cli:<os user>, announced so that running servers reload at once).
func scriptsCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	const use = "gatehouse scripts list|show PATH|history PATH|save PATH|restore PATH --revision N|revert PATH"
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	sub := args[0]
	var asJSON bool
	var file string
	var revision int64
	cfg, fs, err := loadConfigArgs("scripts "+sub, args[1:], stderr, getenv, func(fs *flag.FlagSet) {
		switch sub {
		case "list", "history":
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		case "show":
			fs.BoolVar(&asJSON, "json", false, "print JSON: the script, its edit and history (the default prints the source that serves)")
			fs.Int64Var(&revision, "revision", 0, "print this kept revision instead")
		case "save":
			fs.StringVar(&file, "file", "-", "read the source from this file (- : standard input)")
		case "restore":
			fs.Int64Var(&revision, "revision", 0, "the kept revision to put back in force (see scripts history)")
		}
	})
	if err != nil {
		return err
	}
	rel := ""
	switch sub {
	case "list":
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: gatehouse scripts list takes no arguments", errUsage)
		}
	case "show", "history", "save", "restore", "revert":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: gatehouse scripts %s PATH (e.g. table/todoitem.insert.js)", errUsage, sub)
		}
		var ok bool
		if rel, ok = scriptstore.ValidPath(fs.Arg(0)); !ok {
			return fmt.Errorf("%w: %q is not a script path: a .js file below table/, api/, scheduler/ or shared/", errUsage, fs.Arg(0))
		}
	default:
		return fmt.Errorf("%w: unknown scripts command %q; %s", errUsage, sub, use)
	}
	if sub == "restore" && revision < 1 {
		return fmt.Errorf("%w: gatehouse scripts restore PATH --revision N", errUsage)
	}
	if cfg.AppDir == "" {
		return fmt.Errorf("%w: gatehouse scripts needs the app folder (--app DIR, or app_dir): edits are checked against it and shown beside its files", errUsage)
	}
	var src string
	if sub == "save" {
		// Read the source before opening anything: a bad file fails fast.
		var r io.Reader = stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		b, err := io.ReadAll(io.LimitReader(r, scriptstore.MaxSource+1))
		if err != nil {
			return fmt.Errorf("reading the source: %w", err)
		}
		if len(b) > scriptstore.MaxSource {
			return fmt.Errorf("the source is larger than %d MiB", scriptstore.MaxSource>>20)
		}
		src = string(b)
	}
	checker, err := script.NewChecker(cfg.AppDir)
	if err != nil {
		return err
	}
	if cfg.Database == "" {
		if err := requireDataDir(cfg); err != nil {
			return err
		}
	}
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	// Running servers reload as soon as this command changes an edit (and at their next poll anyway).
	n, _, err := newNotifier(ctx, cfg, db, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	ed := &scriptstore.Editor{Store: scriptstore.NewSQL(db), Engine: checker, Audit: audit.NewStore(db), Notifier: n, Log: newLogger(cfg, stderr)}
	who := audit.Entry{Actor: cliActor(getenv), Via: audit.ViaCLI}
	if h, err := os.Hostname(); err == nil {
		who.Remote = h
	}
	switch sub {
	case "list":
		list, err := ed.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			if list == nil {
				list = []scriptstore.Script{}
			}
			return json.NewEncoder(stdout).Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATH\tKIND\tSTATE\tREVISION\tSAVED BY\tSAVED AT")
		for _, s := range list {
			state, rev, by, at := "deployed", "-", "-", "-"
			if s.Edit != nil {
				state = "edited"
				if !s.Deployed {
					state = "added"
				}
				if s.Drift {
					state += " (deployed file changed since)"
				}
				rev, by, at = fmt.Sprint(s.Edit.Revision), printable(s.Edit.SavedBy), s.Edit.SavedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", printable(s.Path), s.Kind, state, rev, by, at)
		}
		return tw.Flush()
	case "show":
		if revision > 0 {
			e, err := ed.Revision(ctx, rel, revision)
			if err != nil {
				return scriptsErr(rel, err)
			}
			if asJSON {
				return json.NewEncoder(stdout).Encode(e)
			}
			_, err = io.WriteString(stdout, e.Source)
			return err
		}
		s, err := ed.Show(ctx, rel)
		if err != nil {
			return scriptsErr(rel, err)
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(s)
		}
		_, err = io.WriteString(stdout, s.Source)
		return err
	case "history":
		s, err := ed.Show(ctx, rel)
		if err != nil {
			return scriptsErr(rel, err)
		}
		if s.History == nil {
			s.History = []scriptstore.Edit{}
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(s.History)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REVISION\tSAVED BY\tSAVED AT\tBYTES\tSHA256\tIN FORCE")
		for _, e := range s.History {
			inForce := ""
			if s.Edit != nil && s.Edit.Revision == e.Revision {
				inForce = "yes"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", e.Revision, printable(e.SavedBy), e.SavedAt.Format(time.RFC3339), e.Bytes, e.SHA256[:12], inForce)
		}
		return tw.Flush()
	case "save":
		e, err := ed.Save(ctx, who, rel, src)
		if err != nil {
			return scriptsErr(rel, err)
		}
		fmt.Fprintf(stdout, "%s saved: revision %d (sha256 %s), in force on every instance\n", rel, e.Revision, e.SHA256[:12])
	case "restore":
		e, err := ed.Restore(ctx, who, rel, revision)
		if err != nil {
			return scriptsErr(rel, err)
		}
		fmt.Fprintf(stdout, "%s: revision %d restored as revision %d, in force on every instance\n", rel, revision, e.Revision)
	case "revert":
		if _, err := ed.Revert(ctx, who, rel); err != nil {
			return scriptsErr(rel, err)
		}
		fmt.Fprintf(stdout, "%s reverted: the deployed file serves on every instance\n", rel)
	}
	return nil
}

// scriptsErr words an editor error for the terminal: a syntax error as file:line:column.
func scriptsErr(rel string, err error) error {
	var se *script.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("not saved: %s (nothing changed)", se.Error())
	case errors.Is(err, scriptstore.ErrNoScript), errors.Is(err, scriptstore.ErrNotFound):
		return fmt.Errorf("%s: no such script, edit or revision", rel)
	case errors.Is(err, scriptstore.ErrTooMany), errors.Is(err, scriptstore.ErrTooLarge):
		return errors.New(strings.TrimPrefix(err.Error(), "scriptstore: "))
	}
	var ie *scriptstore.InvalidSourceError
	if errors.As(err, &ie) {
		return errors.New(ie.Msg)
	}
	return err
}
