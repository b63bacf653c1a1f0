package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestProgressOnTerminal: under a pseudo-terminal (script(1)) backup and restore end with a progress
// summary line on stderr; TestBackupRestore and TestImport check that nothing of it appears when the
// output is not a terminal.
func TestProgressOnTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("script(1) (util-linux) is not installed")
		}
		t.Skip("script(1) (util-linux) is not installed")
	}
	dir := t.TempDir()
	bin := buildGatehouse(t, dir)
	data := filepath.Join(dir, "data")
	for _, args := range [][]string{{"keys", "generate", "--data", data}, {"migrate", "up", "--data", data}} {
		if code, _, errs := runCmd(t, nil, args...); code != 0 {
			t.Fatalf("%v: %s", args, errs)
		}
	}
	onTerminal := func(args ...string) string {
		t.Helper()
		cmdline := bin
		for _, a := range args {
			cmdline += " '" + a + "'"
		}
		cmd := exec.Command(scriptBin, "-qec", cmdline, "/dev/null")
		cmd.Env = append(os.Environ(), "TERM=dumb")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	archive := filepath.Join(dir, "b.tar.gz")
	out := onTerminal("backup", "--data", data, "--out", archive)
	if !regexp.MustCompile(`\rbackup: [0-9.]+ [kM]?B in [0-9.]+m?s \([0-9.]+ [kMG]?B/s\)\x1b\[K\r?\n`).MatchString(out) || !strings.Contains(out, "backup written to") {
		t.Fatalf("backup on a terminal: %q", out)
	}
	out = onTerminal("restore", "--data", filepath.Join(dir, "restored"), "--in", archive)
	if !regexp.MustCompile(`\rrestore: [0-9.]+ [kM]?B in [0-9.]+m?s \([0-9.]+ [kMG]?B/s\)\x1b\[K\r?\n`).MatchString(out) || !strings.Contains(out, "restored ") {
		t.Fatalf("restore on a terminal: %q", out)
	}
}
