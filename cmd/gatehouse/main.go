// Command gatehouse is the Gatehouse server and its administration CLI. This file and its siblings are
// wiring only: configuration, construction of the internal packages, and process lifecycle.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		cmd, args = "help", args[1:]
	} else if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	// "gatehouse users -h" and "gatehouse help users": the lines of that command.
	if cmd == "help" && len(args) > 0 {
		cmd, args = args[0], []string{"-h"}
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") && cmd != "serve" {
		if !usageOf(stdout, cmd) {
			fmt.Fprintf(stderr, "gatehouse: unknown command %q\n", cmd)
			usage(stderr)
			return 2
		}
		return 0
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		usage(stdout)
		return 0
	}
	// Commands that change state are recorded in the audit trail once they succeed (audit.go).
	trail := beginCLIAudit(ctx, cmd, args, getenv)
	known, err := dispatch(ctx, cmd, args, stdout, stderr, getenv)
	if !known {
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
	if err == nil && trail != nil {
		trail.finish(ctx, stderr)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "gatehouse %s: %v\n", cmd, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// dispatch runs one command; known is false when there is no such command. Completion calls it with
// -h to read each command's flag set.
func dispatch(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer, getenv func(string) string) (known bool, err error) {
	switch cmd {
	case "serve":
		err = serve(ctx, args, stdout, stderr, getenv)
	case "token":
		err = tokenCmd(args, stdout, stderr, getenv)
	case "keys":
		err = keysCmd(args, stdout, stderr, getenv)
	case "table":
		err = tableCmd(ctx, args, stdout, stderr, getenv)
	case "users":
		// add, enable, disable, set-password, reset-mfa and import: accounts.go; list, show, revoke: users.go.
		var handled bool
		if handled, err = accountUsersCmd(ctx, args, os.Stdin, stdout, stderr, getenv); !handled {
			err = usersCmd(ctx, args, stdout, stderr, getenv)
		}
	case "migrate":
		err = migrateCmd(ctx, args, stdout, stderr, getenv)
	case "admin":
		err = adminCmd(ctx, args, os.Stdin, stdout, stderr, getenv)
	case "jobs":
		err = jobsCmd(ctx, args, stdout, stderr, getenv)
	case "scripts":
		err = scriptsCmd(ctx, args, os.Stdin, stdout, stderr, getenv)
	case "audit":
		err = auditCmd(ctx, args, stdout, stderr, getenv)
	case "push":
		err = pushCmd(ctx, args, stdout, stderr, getenv)
	case "backup":
		err = backupCmd(ctx, args, stdout, stderr, getenv)
	case "restore":
		err = restoreCmd(ctx, args, stdout, stderr, getenv)
	case "healthcheck":
		err = healthcheck(ctx, args, stdout, stderr, getenv)
	case "import":
		err = importCmd(ctx, args, os.Stdin, stdout, stderr, getenv)
	case "version":
		fmt.Fprintf(stdout, "gatehouse %s\n", version)
	case "completion":
		err = completionCmd(args, stdout)
	default:
		return false, nil
	}
	return true, err
}

// commands lists every command with one line of help; usage prints it, and a test checks that the
// README's Commands table names each one.
var commands = []struct{ Use, Summary string }{
	{"serve [flags]", "run the server (the default command)"},
	{"token mint --user ID", "print an app token for a user id (e.g. custom:123; --ttl, --aud)"},
	{"keys generate", "create the data directory's keys if there are none and print them"},
	{"keys show [--master]", "print the data directory's keys (--value master|application for scripts)"},
	{"keys rotate [--which K]", "replace a key (master, application, system; --revoke-previous); with a key-encryption key: the cluster's ring, two-phase"},
	{"keys status", "the key ring's fingerprints and live instances (or keys.json's state on one node)"},
	{"table create NAME", "create a table (--columns, --permissions, --integer-id, --soft-delete, --per-user)"},
	{"table list [--json]", "list the tables"},
	{"table show NAME [--json]", "show a table's columns, permissions and options"},
	{"table update NAME", "change a table's columns, permissions or options"},
	{"table delete NAME --yes", "delete a table and all its rows"},
	{"table truncate NAME --yes", "delete all of a table's rows; integer ids restart at 1"},
	{"users add --email ADDR", "create an email/password account (--verified, --password-stdin)"},
	{"users set-password USER", "set an account's password from standard input; ends its sessions"},
	{"users reset-mfa USER", "remove an account's second factors (authenticator app, recovery codes, passkeys); ends its sessions"},
	{"users import FILE", "import accounts with legacy password hashes (--format csv|json)"},
	{"users list [--json]", "list users: accounts and provider logins (--after, --limit)"},
	{"users show USER_ID [--json]", "show a user with its linked identities"},
	{"users disable USER", "disable an account (id or email) or any user; tokens refused in seconds"},
	{"users enable USER", "re-enable an account (id or email) or any user (e.g. Google:1234)"},
	{"users revoke USER_ID", "end every session of a user"},
	{"admin create EMAIL", "create an admin console administrator; the password is read from standard input (prompted on a terminal)"},
	{"migrate status [--json]", "list applied and pending migrations, whether each is additive"},
	{"migrate up", "apply pending migrations (serve does this unless auto_migrate = false)"},
	{"jobs list [--json]", "the jobs with their schedule and last run"},
	{"jobs runs NAME", "a job's run history across the cluster (--limit N, --json)"},
	{"scripts list [--json]", "the app's scripts: deployed files and the edits stored in the database (needs --app)"},
	{"scripts show PATH", "print the source that serves (--revision N: a kept revision; --json: with the edit and history)"},
	{"scripts history PATH", "the kept revisions of a script's edits, newest first (--json)"},
	{"scripts save PATH", "check and store an edit from standard input (--file F); every instance serves it"},
	{"scripts restore PATH --revision N", "put a kept revision back in force"},
	{"scripts revert PATH", "delete a script's edit: the deployed file serves again"},
	{"jobs schedule NAME", "show or change a job's schedule on every instance (--every 15m, --disable, --enable, --default)"},
	{"push send", "queue a notification: --platform P --payload JSON (native) or --props JSON (templates); --tag EXPR, --device TOKEN"},
	{"push list", "a user's (--user), installation's, device's (--platform --device) or tag's registrations (--json)"},
	{"push status", "the configured push platforms and the notifications waiting in the outbox"},
	{"backup --out FILE", "online backup of the SQLite database and keys.json into one archive (--force)"},
	{"restore --in FILE", "verify an archive and restore it as the data directory (--force)"},
	{"import --from URL", "copy a live Mobile Services / Mobile Apps backend's tables (--tables, --since, --full)"},
	{"audit list [--json]", "the audit trail, newest first (--since, --until, --actor, --action, --target, --limit, --before)"},
	{"audit export [--format F]", "the audit trail as JSON lines or CSV (--format jsonl|csv), oldest first, with the same filters"},
	{"healthcheck [--ready]", "probe this instance's /healthz (/readyz): exit 0 when healthy"},
	{"completion SHELL", "print a completion script for bash, zsh or fish (e.g. source <(gatehouse completion bash))"},
	{"version", "print the version"},
	{"help", "print this list"},
}

// usageOf prints the lines of one command's subcommands; false if there is no such command.
func usageOf(w io.Writer, cmd string) bool {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	found := false
	for _, c := range commands {
		if strings.Fields(c.Use)[0] == cmd {
			found = true
			fmt.Fprintf(tw, "  gatehouse %s\t%s\n", c.Use, c.Summary)
		}
	}
	tw.Flush()
	if found {
		fmt.Fprintf(w, "\n"+`"gatehouse %s SUBCOMMAND -h" lists a subcommand's flags.`+"\n", cmd)
	}
	return found
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Gatehouse: a self-hosted backend for Azure Mobile Services / Mobile Apps clients.\n\nUsage:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  gatehouse %s\t%s\n", c.Use, c.Summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Flags may come before or after arguments. Every command takes --config FILE, --data DIR and the
settings' flags; "gatehouse COMMAND [SUBCOMMAND] -h" lists them. Exit status 2: a command-line
mistake; 1: any other failure.
`)
}
