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
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
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
		// add, enable, set-password and import: accounts.go; list, show, disable: users.go (login).
		var handled bool
		if handled, err = accountUsersCmd(ctx, args, os.Stdin, stdout, stderr, getenv); !handled {
			err = usersCmd(ctx, args, stdout, stderr, getenv)
		}
	case "migrate":
		err = migrateCmd(ctx, args, stdout, stderr, getenv)
	case "jobs":
		err = jobsCmd(ctx, args, stdout, stderr, getenv)
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
	case "help", "-h", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n", cmd)
		usage(stderr)
		return 2
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

func usage(w io.Writer) {
	fmt.Fprint(w, `Gatehouse: a self-hosted backend for Azure Mobile Services / Mobile Apps clients.

Usage:
  gatehouse [serve] [flags]          run the server (default command)
  gatehouse token mint --user ID     print an app token for a user id (e.g. custom:123)
  gatehouse keys generate            create the data directory's keys if missing, print them
  gatehouse keys rotate              rotate a key (--which master|application|system); with a
                                     key-encryption key: the cluster's ring, two-phase, all instances
  gatehouse keys status|show         the key ring's fingerprints and instances (show: also the keys)
  gatehouse table create NAME        create a table (--integer-id --columns a=string,b=number
                                     --permissions read=public,insert=user --soft-delete --per-user)
  gatehouse table list|show NAME|update NAME|delete NAME --yes
  gatehouse users add --email ADDR [--verified] [--password-stdin]
  gatehouse users enable --user REF | set-password --user REF (password on stdin)
  gatehouse users import [--format csv|json] FILE   import accounts with legacy hashes
  gatehouse users list|show ID       list users, show one with its identities (--json)
  gatehouse users disable|revoke ID  disable a user / end all its sessions (tokens refused within seconds)
  gatehouse migrate status|up        show the schema's migrations / apply the pending ones
  gatehouse jobs list|runs NAME      the cluster's jobs and their run history (--json, --limit N)
  gatehouse backup --out FILE        archive the SQLite database and keys.json (online, mode 0600)
  gatehouse restore --in FILE        restore an archive into the data directory (--force to replace)
  gatehouse healthcheck [--ready]    probe this instance's /healthz (/readyz): exit 0 when healthy
  gatehouse import --from URL [--tables a,b] [--since T]   copy a live backend's tables
                                     (master key in GATEHOUSE_IMPORT_MASTER_KEY or --master-key-file)
  gatehouse version                  print the version

Every command takes --config FILE and --data DIR; run "gatehouse serve -h" for all flags.
Only serve (with auto_migrate) and migrate up change the schema, and only serve creates a data directory.
`)
}
