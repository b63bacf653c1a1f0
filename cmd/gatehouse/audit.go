package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/table"
)

// auditCmd is `gatehouse audit list|export`.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "export") {
		return fmt.Errorf("%w: gatehouse audit list|export", errUsage)
	}
	sub := args[0]
	var since, until, actor, action, target, format, order string
	var after, before int64
	var limit int
	var asJSON bool
	cfg, _, err := loadConfig("audit "+sub, args[1:], stderr, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&since, "since", "", "entries from this RFC 3339 time, or this long ago (24h)")
		fs.StringVar(&until, "until", "", "entries before this RFC 3339 time, or this long ago")
		fs.StringVar(&actor, "actor", "", "only this actor (master-key, cli:alice, an admin's email)")
		fs.StringVar(&action, "action", "", "only this action (table.create), or a resource's every action (table.*)")
		fs.StringVar(&target, "target", "", "only this target (a table, a user id, …)")
		fs.Int64Var(&after, "after", 0, "only entries after this id")
		if sub == "list" {
			fs.Int64Var(&before, "before", 0, "only entries before this id (the next page)")
			fs.IntVar(&limit, "limit", audit.DefaultLimit, fmt.Sprintf("at most this many entries (1-%d), newest first", audit.MaxLimit))
			fs.StringVar(&order, "order", "desc", "desc (newest first) or asc")
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		} else {
			fs.StringVar(&format, "format", "jsonl", "jsonl (one JSON object a line) or csv")
			fs.IntVar(&limit, "limit", 0, "at most this many entries (0: all), oldest first")
		}
	})
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"since": since, "until": until, "actor": actor, "action": action, "target": target, "order": order, "format": format} {
		if v != "" {
			q.Set(k, v)
		}
	}
	f, fmtOut, err := audit.ParseQuery(q, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if after < 0 || before < 0 || limit < 0 || (sub == "list" && (limit < 1 || limit > audit.MaxLimit)) {
		return fmt.Errorf("%w: --after and --before are ids; --limit is 1-%d", errUsage, audit.MaxLimit)
	}
	f.AfterID, f.BeforeID, f.Limit = after, before, limit
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	st := audit.NewStore(db)
	if sub == "export" {
		_, err := st.Export(ctx, stdout, f, fmtOut)
		return err
	}
	list, err := st.List(ctx, f)
	if err != nil {
		return err
	}
	if asJSON {
		if list == nil {
			list = []audit.Entry{}
		}
		return json.NewEncoder(stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tACTOR\tVIA\tACTION\tTARGET\tREMOTE")
	for _, e := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.UTC().Format(time.RFC3339), printable(e.Actor), e.Via, printable(e.Action),
			printable(e.Target), printable(e.Remote))
	}
	return tw.Flush()
}

// printable keeps a terminal safe from control characters stored in a field.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// cliChanges maps the commands that change state ("command subcommand", or "command" alone) to their
// audit action. Everything else (list, show, status, backup, version…) is read-only.
var cliChanges = map[string]string{
	"table create": "table.create", "table update": "table.alter", "table delete": "table.drop",
	"users add": "account.create", "users set-password": "account.password", "users import": "account.import",
	"users disable": "user.disable", "users enable": "user.enable", "users revoke": "user.revoke",
	"keys rotate": "keys.rotate",
	"token mint":  "token.mint",
	"jobs run":    "job.run",
	"migrate up":  "migrate.up",
	"import":      "import.run",
	"restore":     "backup.restore",
}

// cliAudit is the CLI's one choke point: run starts one before a command that changes state (table
// changes also snapshot the table) and finishes it after the command succeeded, writing the entry
// with actor "cli:<os user>". The change has committed by then; when the entry cannot be written
// (no database reachable, a schema older than the trail) the command still succeeds and a warning
// naming the lost entry goes to standard error.
type cliAudit struct {
	entry  audit.Entry
	cfg    *config.Config
	table  string
	before json.RawMessage
}

// beginCLIAudit returns nil for a read-only command (or one whose configuration does not load: the
// command itself reports that).
func beginCLIAudit(ctx context.Context, cmd string, args []string, getenv func(string) string) *cliAudit {
	sub, pos, flags := splitCLIArgs(args)
	action, ok := cliChanges[cmd+" "+sub]
	if !ok {
		if action, ok = cliChanges[cmd]; ok {
			pos = append([]string{sub}, pos...)
		}
	}
	if !ok && cmd == "admin" && sub != "" && sub != "list" && sub != "show" && sub != "status" {
		// The console's admin accounts (gatehouse admin create|disable|…).
		action, ok = "admin."+sub, true
	}
	if !ok {
		return nil
	}
	cfg, err := cliConfig(flags, getenv)
	if err != nil {
		return nil
	}
	a := &cliAudit{cfg: cfg, entry: audit.Entry{Actor: cliActor(getenv), Via: audit.ViaCLI, Action: action}}
	if h, err := os.Hostname(); err == nil {
		a.entry.Remote = h
	}
	target := ""
	if len(pos) > 0 && pos[0] != "" {
		target = pos[0]
	}
	switch {
	case cmd == "keys" && sub == "rotate":
		target = flagValue(flags, "which", "master")
	case cmd == "token":
		target = flagValue(flags, "user", "")
	case cmd == "users" && sub == "add":
		target = flagValue(flags, "email", "")
	case cmd == "import":
		target = redactURL(flagValue(flags, "from", ""))
	case cmd == "restore":
		target = flagValue(flags, "in", "")
	}
	a.entry.Target = target
	if cmd == "table" && target != "" {
		a.table = target
		a.before = snapshotTable(ctx, cfg, target)
	}
	return a
}

// finish records the entry after the command succeeded.
func (a *cliAudit) finish(ctx context.Context, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if a.table != "" {
		after := snapshotTable(ctx, a.cfg, a.table)
		a.entry.Before, a.entry.After = a.before, after
		if a.entry.Action == "table.alter" && len(a.before) > 0 && len(after) > 0 {
			a.entry.Action = tableChangeAction(a.before, after)
		}
	}
	db, err := openAdminDB(ctx, a.cfg)
	if err == nil {
		defer db.Close()
		err = audit.NewStore(db).Record(ctx, a.entry)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse: WARNING: audit entry lost: the change was made but recording %s %s by %s failed: %v\n",
			a.entry.Action, a.entry.Target, a.entry.Actor, err)
	}
}

// tableChangeAction names an update by what changed between two table descriptions.
func tableChangeAction(before, after json.RawMessage) string {
	var b, a table.Info
	if json.Unmarshal(before, &b) != nil || json.Unmarshal(after, &a) != nil {
		return "table.alter"
	}
	perms, cols := !sameMap(b.Permissions, a.Permissions), !sameMap(b.Columns, a.Columns)
	b.Permissions, a.Permissions, b.Columns, a.Columns = nil, nil, nil, nil
	bj, _ := json.Marshal(b)
	aj, _ := json.Marshal(a)
	switch {
	case string(bj) != string(aj):
		return "table.alter"
	case perms && !cols:
		return "table.permissions"
	case cols && !perms:
		return "table.columns"
	}
	return "table.alter"
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// snapshotTable describes a table for before/after (nil when it does not exist or cannot be read).
func snapshotTable(ctx context.Context, cfg *config.Config, name string) json.RawMessage {
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return nil
	}
	defer db.Close()
	svc, err := tableService(ctx, cfg, db)
	if err != nil {
		return nil
	}
	s, err := svc.Refresh(ctx, name)
	if err != nil {
		return nil
	}
	return audit.Snapshot(table.Describe(s))
}

func cliActor(getenv func(string) string) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	for _, k := range []string{"USER", "USERNAME", "LOGNAME"} {
		if v := getenv(k); v != "" {
			return "cli:" + v
		}
	}
	return "cli:unknown"
}

// redactURL keeps a source URL's scheme, host and path (never user info or a query).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// cliBoolFlags are the commands' flags that take no value (every configuration flag takes one).
var cliBoolFlags = map[string]bool{"yes": true, "json": true, "integer-id": true, "soft-delete": true, "per-user": true, "verified": true,
	"password-stdin": true, "full": true, "force": true, "master": true, "revoke-previous": true, "ready": true, "dry-run": true}

// splitCLIArgs separates a command's arguments into its subcommand (the first argument when it is
// not a flag), positional arguments and flags ("--name=value" each), without knowing the
// command's own flag set.
func splitCLIArgs(args []string) (sub string, pos, flags []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			flags = append(flags, "--"+name)
			continue
		}
		if cliBoolFlags[name] {
			if i+1 < len(args) && (args[i+1] == "true" || args[i+1] == "false") {
				i++
			}
			flags = append(flags, "--"+name+"=true")
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, "--"+name+"="+args[i+1])
			i++
		}
	}
	return sub, pos, flags
}

func flagValue(flags []string, name, def string) string {
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			def = v
		}
	}
	return def
}

// cliConfig loads the configuration from the configuration flags among flags (the command's own
// flags are skipped), the file and the environment, as the command itself does.
func cliConfig(flags []string, getenv func(string) string) (*config.Config, error) {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := config.RegisterFlags(fs)
	var known []string
	for _, f := range flags {
		name, _, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if fs.Lookup(name) != nil {
			known = append(known, f)
		}
	}
	if err := fs.Parse(known); err != nil {
		return nil, err
	}
	return config.Load(cf, getenv)
}
