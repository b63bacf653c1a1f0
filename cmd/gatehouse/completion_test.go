package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needShell returns the shell's path; skipped without it unless CI is set.
func needShell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (CI is set; apt-get install -y zsh fish)", name)
		}
		t.Skipf("%s is not installed (apt-get install -y %s)", name, name)
	}
	return p
}

func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, out, errs := runArgs(t, nil, "completion", shell)
	if code != 0 || out == "" {
		t.Fatalf("completion %s: %d %q", shell, code, errs)
	}
	p := filepath.Join(t.TempDir(), "gatehouse."+shell)
	if err := os.WriteFile(p, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompletionTree: every command of the commands list is in the tree, and every command that
// parses flags has its own (read from its flag set, not from a second list).
func TestCompletionTree(t *testing.T) {
	tree := commandTree()
	find := func(name, sub string) []string {
		for _, c := range tree {
			if c.Name != name {
				continue
			}
			fl := c.Flags
			if sub != "" {
				var n []string
				for _, s := range c.Subcommands {
					if s.Name == sub {
						for _, f := range s.Flags {
							n = append(n, f.Name)
						}
						return n
					}
				}
				t.Fatalf("no subcommand %s %s", name, sub)
			}
			var n []string
			for _, f := range fl {
				n = append(n, f.Name)
			}
			return n
		}
		t.Fatalf("no command %s", name)
		return nil
	}
	for _, c := range commands {
		words := strings.Fields(c.Use)
		sub := ""
		if len(words) > 1 && isSubcommand(words[1]) {
			sub = words[1]
		}
		fl := find(words[0], sub)
		noFlags := words[0] == "help" || words[0] == "version" || words[0] == "completion"
		if noFlags != (len(fl) == 0) {
			t.Errorf("%s: flags %v", c.Use, fl)
		}
		if !noFlags && !strings.Contains(strings.Join(fl, " "), "data") {
			t.Errorf("%s: no --data among %v", c.Use, fl)
		}
	}
	for _, want := range [][3]string{{"keys", "rotate", "which"}, {"keys", "show", "master"}, {"backup", "", "out"}, {"import", "", "tables"}, {"users", "list", "json"}} {
		if fl := strings.Join(find(want[0], want[1]), " "); !strings.Contains(" "+fl+" ", " "+want[2]+" ") {
			t.Errorf("%s %s lacks --%s: %s", want[0], want[1], want[2], fl)
		}
	}
}

// TestCompletionBash: the script is valid bash, and its function completes commands, subcommands
// and flags (a flag's value is not taken for a command).
func TestCompletionBash(t *testing.T) {
	bash := needShell(t, "bash")
	script := completionScript(t, "bash")
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v %s", err, out)
	}
	for line, want := range map[string]string{
		"gatehouse ke":                 "keys",
		"gatehouse keys ":              "generate show rotate status",
		"gatehouse keys rotate --w":    "--which",
		"gatehouse --data dir ta":      "table",
		"gatehouse table ":             "create list show update delete truncate",
		"gatehouse table show --js":    "--json",
		"gatehouse backup --o":         "--out",
		"gatehouse users show x --jso": "--json",
		"gatehouse comp":               "completion",
		"gatehouse --listen":           "--listen",
		"gatehouse nope --x":           "",
	} {
		cmd := exec.Command(bash, "--norc", "-c", `source "$1"; read -ra COMP_WORDS <<<"$2"; [[ $2 == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _gatehouse; echo "${COMPREPLY[*]}"`, "_", script, line)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%q: got %q (%v), want %q", line, out, err, want)
		}
	}
	if out, err := exec.Command(bash, "--norc", "-c", `source "$1"; complete -p gatehouse`, "_", script).CombinedOutput(); err != nil || !strings.Contains(string(out), "-F _gatehouse") {
		t.Fatalf("complete -p: %v %s", err, out)
	}
}

// TestCompletionZshFish: the zsh script parses and loads under compinit; fish's own completer,
// driven with complete -C, offers the commands, subcommands and flags.
func TestCompletionZshFish(t *testing.T) {
	t.Run("zsh", func(t *testing.T) {
		zsh := needShell(t, "zsh")
		script := completionScript(t, "zsh")
		if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
			t.Fatalf("zsh -n: %v %s", err, out)
		}
		cmd := exec.Command(zsh, "-f", "-c", `autoload -U compinit && compinit -u -d "$2/zcompdump" && source "$1" && echo "$_comps[gatehouse]"`, "_", script, t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "_gatehouse" {
			t.Fatalf("zsh load: %v %q", err, out)
		}
	})
	t.Run("fish", func(t *testing.T) {
		fish := needShell(t, "fish")
		script := completionScript(t, "fish")
		if out, err := exec.Command(fish, "-n", script).CombinedOutput(); err != nil {
			t.Fatalf("fish -n: %v %s", err, out)
		}
		for line, want := range map[string]string{
			"gatehouse ke":              "keys",
			"gatehouse keys ":           "generate rotate show status",
			"gatehouse keys rotate --w": "--which",
			"gatehouse backup --o":      "--out",
		} {
			cmd := exec.Command(fish, "--no-config", "-c", `source $argv[1]; complete -C"$argv[2]" | string replace -r '\t.*' ''`, script, line)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if got := strings.Join(strings.Fields(string(out)), " "); err != nil || got != want {
				t.Errorf("fish %q: got %q (%v), want %q", line, got, err, want)
			}
		}
	})
}

// TestCompletionMisuse: no shell or an unknown one exits 2 with a one-line reason.
func TestCompletionMisuse(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		if code, out, errs := runArgs(t, nil, args...); code != 2 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "bash") {
			t.Errorf("%v: %d %q %q", args, code, out, errs)
		}
	}
}
