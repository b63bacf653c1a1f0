package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keys"
)

func runArgs(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, envOf(env))
	return code, out.String(), errb.String()
}

// TestHelpListsEveryCommand: --help, -h and help print every command with its line, exit 0; an
// unknown command exits 2 with the list on stderr.
func TestHelpListsEveryCommand(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help"} {
		code, out, _ := runArgs(t, nil, arg)
		if code != 0 {
			t.Fatalf("%s: exit %d", arg, code)
		}
		for _, c := range commands {
			if !strings.Contains(out, "gatehouse "+c.Use) || !strings.Contains(out, c.Summary) {
				t.Errorf("%s lacks %q", arg, c.Use)
			}
		}
		for _, name := range []string{"serve", "token mint", "keys show", "table create", "users enable", "users import"} {
			if !strings.Contains(out, "gatehouse "+name) {
				t.Errorf("%s lacks %s", arg, name)
			}
		}
	}
	if code, _, errs := runArgs(t, nil, "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) || !strings.Contains(errs, "gatehouse users list") {
		t.Fatalf("unknown command: %d %q", code, errs)
	}
	// A command's help: its subcommands, exit 0.
	for _, args := range [][]string{{"users", "-h"}, {"users", "--help"}, {"help", "users"}} {
		code, out, _ := runArgs(t, nil, args...)
		if code != 0 || !strings.Contains(out, "gatehouse users enable USER") || strings.Contains(out, "gatehouse table") {
			t.Fatalf("%v: %d %q", args, code, out)
		}
	}
	if code, _, errs := runArgs(t, nil, "help", "nope"); code != 2 || !strings.Contains(errs, `unknown command "nope"`) {
		t.Fatalf("help nope: %d %q", code, errs)
	}
	// Subcommand help: flags of that subcommand, exit 0.
	if code, _, errs := runArgs(t, nil, "keys", "show", "-h"); code != 0 || !strings.Contains(errs, "-master") {
		t.Fatalf("keys show -h: %d %q", code, errs)
	}
	// Misuse: exit 2 and a one-line reason.
	for _, args := range [][]string{{"keys"}, {"keys", "nope"}, {"users"}, {"table"}, {"token"}, {"keys", "show", "--value", "system"}, {"keys", "show", "extra"}} {
		code, _, errs := runArgs(t, nil, args...)
		if code != 2 || !strings.HasPrefix(errs, "gatehouse ") {
			t.Errorf("%v: exit %d %q", args, code, errs)
		}
	}
}

// TestReadmeCommandsTable: the README's Commands table names every command the CLI has.
func TestReadmeCommandsTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		// "table create NAME" → "gatehouse table create" must appear in the README.
		words := strings.Fields(c.Use)
		name := words[0]
		if len(words) > 1 && !strings.HasPrefix(words[1], "[") && strings.ToLower(words[1]) == words[1] && !strings.HasPrefix(words[1], "-") {
			name += " " + words[1]
		}
		if !strings.Contains(string(b), "gatehouse "+name) {
			t.Errorf("README.md does not list `gatehouse %s`", name)
		}
	}
}

// TestKeysShow: prints the data directory's keys (master only when asked), never environment keys,
// and warns when the environment overrides a stored key; no data directory is created.
func TestKeysShow(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nothing-here")
	if code, _, errs := runArgs(t, nil, "keys", "show", "--data", missing); code != 1 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("missing: %d %q", code, errs)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("keys show created %s", missing)
	}
	data := filepath.Join(dir, "data")
	if code, _, errs := runArgs(t, nil, "keys", "generate", "--data", data); code != 0 {
		t.Fatalf("generate: %q", errs)
	}
	s, err := keys.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := runArgs(t, nil, "keys", "show", "--data", data)
	if code != 0 || !strings.Contains(out, s.ApplicationKey) || strings.Contains(out, s.MasterKey) || !strings.Contains(out, "add --master") {
		t.Fatalf("show: %d %q", code, out)
	}
	if code, out, _ := runArgs(t, nil, "keys", "show", "--master", "--data", data); code != 0 || !strings.Contains(out, s.MasterKey) {
		t.Fatalf("show --master: %d %q", code, out)
	}
	if code, out, _ := runArgs(t, nil, "keys", "show", "--value", "master", "--data", data); code != 0 || out != s.MasterKey+"\n" {
		t.Fatalf("--value master: %d %q", code, out)
	}
	if code, out, _ := runArgs(t, nil, "keys", "show", "--data", data, "--value", "application"); code != 0 || out != s.ApplicationKey+"\n" {
		t.Fatalf("--value application: %d %q", code, out)
	}
	const envKey = "EnvironmentMasterKey0123456789abcdef"
	code, out, errs := runArgs(t, map[string]string{"MS_MasterKey": envKey}, "keys", "show", "--master", "--data", data)
	if code != 0 || strings.Contains(out+errs, envKey) || !strings.Contains(errs, "master_key is set by") || !strings.Contains(out, s.MasterKey) {
		t.Fatalf("env override: %d %q %q", code, out, errs)
	}
}

// TestFlagsAnywhere: flags before, between and after positional arguments; "--" ends flags.
func TestFlagsAnywhere(t *testing.T) {
	for _, args := range [][]string{
		{"a", "--json", "b"},
		{"--json", "a", "b"},
		{"a", "b", "--json"},
		{"a", "--json", "--", "b"},
	} {
		var asJSON bool
		_, fs, err := loadConfigArgs("x", args, &bytes.Buffer{}, envOf(nil), func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "") })
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !asJSON || fs.NArg() != 2 || fs.Arg(0) != "a" || fs.Arg(1) != "b" {
			t.Fatalf("%v: json=%v args=%v", args, asJSON, fs.Args())
		}
	}
	var asJSON bool
	_, fs, err := loadConfigArgs("x", []string{"a", "--", "--json"}, &bytes.Buffer{}, envOf(nil), func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "") })
	if err != nil || asJSON || fs.NArg() != 2 || fs.Arg(1) != "--json" {
		t.Fatalf("after --: %v %v %v", err, asJSON, fs.Args())
	}
}

// cliReference renders docs/cli.md from the commands themselves: each command's line from `commands`
// and the flags its own -h prints, less the settings' flags every command shares.
func cliReference(t *testing.T) string {
	t.Helper()
	common := flag.NewFlagSet("common", flag.ContinueOnError)
	config.RegisterFlags(common)
	var sb strings.Builder
	sb.WriteString("# Command-line reference\n\n<!-- Generated from the commands by TestCLIReference (cmd/gatehouse/cli_test.go); regenerate with\nGATEHOUSE_UPDATE_README=1 go test ./cmd/gatehouse -run TestCLIReference -->\n\n")
	sb.WriteString("Flags may come before or after arguments (`--` ends the flags). Every command also takes the\nsettings' flags (`--config FILE`, `--data DIR`, `--database URL`, `--app DIR`, … listed in\n[configuration.md](configuration.md)). Exit status 0: success; 1: the command failed (the message\nnames the setting or file at fault); 2: a command-line mistake (a one-line reason on standard error).\n\n" +
		"Shell completion (commands, subcommands and every flag, generated from the same definitions as this\npage): `source <(gatehouse completion bash)` in `~/.bashrc`; `source <(gatehouse completion zsh)` in\n`~/.zshrc` after `compinit`; `gatehouse completion fish > ~/.config/fish/completions/gatehouse.fish`.\n\n" +
		"On a terminal, `gatehouse import`, `backup` and `restore` redraw a progress line on standard error\n(rows or bytes, rate) at most ten times a second; scripts and CI (standard error not a terminal) see\nonly the usual output.\n\n")
	for _, c := range commands {
		words := strings.Fields(c.Use)
		argv := []string{words[0]}
		if len(words) > 1 && !strings.HasPrefix(words[1], "[") && !strings.HasPrefix(words[1], "-") && strings.ToLower(words[1]) == words[1] {
			argv = append(argv, words[1])
		}
		fmt.Fprintf(&sb, "## gatehouse %s\n\n%s.\n\n```text\ngatehouse %s\n```\n\n", strings.Join(argv, " "), strings.ToUpper(c.Summary[:1])+c.Summary[1:], c.Use)
		if argv[0] == "version" || argv[0] == "help" {
			continue
		}
		code, _, errs := runArgs(t, nil, append(argv, "-h")...)
		if code != 0 {
			t.Fatalf("%v -h: exit %d %s", argv, code, errs)
		}
		// flag.PrintDefaults: "  -name type" then "    \tusage" lines.
		var rows []string
		var name, typ string
		var usage []string
		flush := func() {
			if name != "" && common.Lookup(name) == nil {
				rows = append(rows, fmt.Sprintf("| `--%s` | %s | %s |", name, typ, strings.ReplaceAll(strings.Join(usage, " "), "|", "\\|")))
			}
			name, typ, usage = "", "", nil
		}
		for _, l := range strings.Split(errs, "\n") {
			switch {
			case strings.HasPrefix(l, "  -"):
				flush()
				f := strings.Fields(strings.TrimPrefix(l, "  -"))
				name = f[0]
				if len(f) > 1 {
					typ = f[1]
				}
			case strings.HasPrefix(l, "    \t"):
				usage = append(usage, strings.TrimSpace(l))
			}
		}
		flush()
		if len(rows) > 0 {
			sb.WriteString("| flag | value | meaning |\n|---|---|---|\n" + strings.Join(rows, "\n") + "\n\n")
		}
	}
	return strings.TrimRight(sb.String(), "\n") + "\n"
}

// TestCLIReference keeps docs/cli.md identical to what the commands say about themselves.
func TestCLIReference(t *testing.T) {
	const path = "../../docs/cli.md"
	want := cliReference(t)
	got, _ := os.ReadFile(path)
	if string(got) == want {
		return
	}
	if os.Getenv("GATEHOUSE_UPDATE_README") != "" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("docs/cli.md is stale; run: GATEHOUSE_UPDATE_README=1 go test ./cmd/gatehouse -run TestCLIReference")
}
