package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse/gatehouse/internal/completion"
)

// completionCmd is `gatehouse completion bash|zsh|fish`: a completion script for the commands,
// subcommands and flags, read from the commands list and from the flag set each command builds.
func completionCmd(args []string, stdout io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%w: gatehouse completion %s", errUsage, strings.Join(completion.Shells, "|"))
	}
	if err := completion.Write(stdout, args[0], "gatehouse", commandTree()); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// flagRecorder is a writer given to a command as its stderr that also receives the flag set the
// command builds (loadConfigArgs hands it over); writes are discarded.
type flagRecorder struct{ sets []*flag.FlagSet }

func (r *flagRecorder) Write(p []byte) (int, error)  { return len(p), nil }
func (r *flagRecorder) recordFlags(fs *flag.FlagSet) { r.sets = append(r.sets, fs) }

// commandTree is the commands list as a tree, each leaf with the flags its command defines: the
// command runs with -h (which returns before anything is opened) and a flagRecorder as stderr.
func commandTree() []completion.Command {
	var tree []completion.Command
	index := map[string]int{}
	for _, c := range commands {
		words := strings.Fields(c.Use)
		name, sub := words[0], ""
		if len(words) > 1 && isSubcommand(words[1]) {
			sub = words[1]
		}
		i, ok := index[name]
		if !ok {
			i, index[name] = len(tree), len(tree)
			tree = append(tree, completion.Command{Name: name, Summary: c.Summary})
		}
		leaf := completion.Command{Name: name, Summary: c.Summary}
		if sub != "" {
			leaf.Name = sub
		}
		if name != "help" {
			args := []string{"-h"}
			if sub != "" {
				args = []string{sub, "-h"}
			}
			rec := &flagRecorder{}
			// The error is flag.ErrHelp, or a usage error from a command without flags (version,
			// completion): either way the recorder holds what there is (a test checks every command).
			_, _ = dispatch(context.Background(), name, args, io.Discard, rec, func(string) string { return "" })
			for _, fs := range rec.sets {
				fs.VisitAll(func(f *flag.Flag) {
					bf, isBool := f.Value.(interface{ IsBoolFlag() bool })
					leaf.Flags = append(leaf.Flags, completion.Flag{Name: f.Name, Usage: f.Usage, TakesValue: !isBool || !bf.IsBoolFlag()})
				})
			}
		}
		if sub == "" {
			tree[i].Flags = leaf.Flags
		} else {
			tree[i].Summary = name + " commands"
			tree[i].Subcommands = append(tree[i].Subcommands, leaf)
		}
	}
	return tree
}

// isSubcommand: "show" in "keys show" (not "NAME", "[--json]" or "--from").
func isSubcommand(w string) bool {
	return !strings.HasPrefix(w, "[") && !strings.HasPrefix(w, "-") && strings.ToLower(w) == w
}
