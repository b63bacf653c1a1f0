package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The documentation's commands are run by TestDocs. The convention, for README.md, docs/*.md and
// examples/*/README.md:
//
//   - Every ```sh block is run, in the order of the page, by one bash (set -euo pipefail) per page, so
//     a server started with '&' in one block is stopped by 'kill %1' in a later one.
//   - The page runs in a fresh temporary directory holding a copy of examples/, with the gatehouse binary
//     built from this tree first on PATH and no GATEHOUSE_* or MS_* variables set.
//   - A block right after the line <!-- run in: repository --> runs in the repository root instead
//     (e.g. `go install ./cmd/gatehouse`, with GOBIN pointing at the test's binary directory).
//   - A block right after <!-- not run: REASON --> is skipped; the reason is required (external
//     services, benchmarks, the test suite itself).
//   - Port 8080 in the page is replaced by a free port (and GATEHOUSE_LISTEN set to it), so the test
//     never collides with a server already running on the machine.
//   - Shell blocks must be marked ```sh; ```bash, ```shell and ```console are refused so no command
//     escapes the test by its fence.

type docBlock struct {
	Line     int    // line of the opening fence (1-based)
	Code     string // the block's text
	Skip     string // reason given in <!-- not run: … -->
	RepoRoot bool   // <!-- run in: repository -->
}

var docMarker = regexp.MustCompile(`^<!--\s*(not run|run in):\s*(.*?)\s*-->$`)

// docBlocks extracts the shell blocks of a Markdown page with their markers.
func docBlocks(text string) ([]docBlock, error) {
	var out []docBlock
	lines := strings.Split(text, "\n")
	prev := "" // the last non-blank line before the current one, outside code
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, "```") {
			if strings.TrimSpace(l) != "" {
				prev = strings.TrimSpace(l)
			}
			continue
		}
		lang := strings.TrimSpace(strings.TrimPrefix(l, "```"))
		start := i
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("line %d: code block never closed", start+1)
		}
		marker := prev
		prev = ""
		switch lang {
		case "bash", "shell", "console", "shell-session", "zsh":
			return nil, fmt.Errorf("line %d: shell blocks are ```sh (and run by TestDocs), not ```%s", start+1, lang)
		case "sh":
		default:
			continue
		}
		b := docBlock{Line: start + 1, Code: strings.Join(body, "\n")}
		if m := docMarker.FindStringSubmatch(marker); m != nil {
			switch {
			case m[1] == "not run" && m[2] != "":
				b.Skip = m[2]
			case m[1] == "run in" && m[2] == "repository":
				b.RepoRoot = true
			default:
				return nil, fmt.Errorf("line %d: bad marker %q (want <!-- not run: REASON --> or <!-- run in: repository -->)", start+1, marker)
			}
		} else if strings.HasPrefix(marker, "<!--") && strings.Contains(marker, "run") {
			return nil, fmt.Errorf("line %d: unrecognised marker %q", start+1, marker)
		}
		out = append(out, b)
	}
	return out, nil
}

// docScript is the bash script that runs a page's blocks.
func docScript(page string, blocks []docBlock, port string) string {
	var sb strings.Builder
	sb.WriteString("set -euo pipefail\n")
	// Whatever the page left running is stopped when the script ends, also on failure.
	sb.WriteString("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n")
	for _, b := range blocks {
		if b.Skip != "" {
			continue
		}
		code := strings.NewReplacer("127.0.0.1:8080", "127.0.0.1:"+port, "localhost:8080", "localhost:"+port).Replace(b.Code)
		fmt.Fprintf(&sb, "echo '>>> %s:%d' >&2\n", page, b.Line)
		if b.RepoRoot {
			fmt.Fprintf(&sb, "( cd \"$GATEHOUSE_REPO\"\n%s\n)\n", code)
		} else {
			fmt.Fprintf(&sb, "%s\n", code)
		}
	}
	return sb.String()
}

// buildGatehouse builds the binary of this tree into dir.
func buildGatehouse(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "gatehouse")
	// The release build's flags (Dockerfile): TestDockerfile and e2e's harness build the same way, so
	// the three share one compile.
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// docEnv is the environment pages run in: no Gatehouse settings from the caller's environment.
func docEnv(binDir, repo, port string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GATEHOUSE_") || strings.HasPrefix(k, "MS_") || k == "PATH" || k == "GOBIN" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "GOBIN="+binDir,
		"GATEHOUSE_REPO="+repo, "GATEHOUSE_LISTEN=127.0.0.1:"+port)
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runPage runs a page's script and fails the test with its output if a command fails.
func runPage(t *testing.T, page, script, dir string, env []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		s := out.String()
		if len(s) > 6000 {
			s = "…" + s[len(s)-6000:]
		}
		t.Fatalf("%s: %v\n--- script ---\n%s\n--- output ---\n%s", page, err, script, s)
	}
	return out.String()
}

// TestDocs runs every ```sh block of README.md and docs/*.md as written (see the convention above).
func TestDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the documentation's commands")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is needed to run the documentation's commands")
		}
		t.Skip("curl is not installed")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	examples, _ := filepath.Glob(filepath.Join(repo, "examples", "*", "README.md"))
	pages = append(append([]string{filepath.Join(repo, "README.md")}, pages...), examples...)
	binDir := t.TempDir()
	buildGatehouse(t, binDir)
	for _, path := range pages {
		page, _ := filepath.Rel(repo, path)
		t.Run(page, func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			blocks, err := docBlocks(string(b))
			if err != nil {
				t.Fatalf("%s: %v", page, err)
			}
			run := 0
			for _, bl := range blocks {
				if bl.Skip == "" {
					run++
				}
			}
			if run == 0 {
				t.Skipf("%s has no runnable sh block", page)
			}
			dir := t.TempDir()
			copyDir(t, filepath.Join(repo, "examples"), filepath.Join(dir, "examples"))
			port := strconv.Itoa(freePort(t))
			out := runPage(t, page, docScript(page, blocks, port), dir, docEnv(binDir, repo, port))
			t.Logf("%s: %d blocks run, %d skipped\n%s", page, run, len(blocks)-run, out)
		})
	}
}

// TestDocBlocks: the extractor honours the markers and refuses what would let a command escape.
func TestDocBlocks(t *testing.T) {
	page := "text\n\n```sh\necho a\n```\n\n<!-- not run: needs Google -->\n```sh\necho b\n```\n" +
		"<!-- run in: repository -->\n\n```sh\ngo version\n```\n```json\n{}\n```\n```sh\necho c\n```\n"
	bs, err := docBlocks(page)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 4 || bs[0].Code != "echo a" || bs[0].Skip != "" || bs[1].Skip != "needs Google" ||
		!bs[2].RepoRoot || bs[3].RepoRoot || bs[3].Skip != "" || bs[0].Line != 3 {
		t.Fatalf("%+v", bs)
	}
	for name, bad := range map[string]string{
		"bash fence":      "```bash\necho\n```\n",
		"empty reason":    "<!-- not run: -->\n```sh\necho\n```\n",
		"unknown place":   "<!-- run in: somewhere -->\n```sh\necho\n```\n",
		"misspelt marker": "<!-- notrun because -->\n```sh\necho\n```\n",
		"unclosed":        "```sh\necho\n",
	} {
		if _, err := docBlocks(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s := docScript("p.md", bs, "1234")
	if strings.Contains(s, "echo b") || !strings.Contains(s, "cd \"$GATEHOUSE_REPO\"\ngo version") || !strings.Contains(s, "set -euo pipefail") {
		t.Fatalf("script:\n%s", s)
	}
	if s := docScript("p.md", []docBlock{{Code: "curl http://127.0.0.1:8080/status"}}, "1234"); !strings.Contains(s, "127.0.0.1:1234/status") {
		t.Fatalf("port not replaced:\n%s", s)
	}
}

// TestDocLinks: every relative link of README.md, docs/*.md and examples/*/README.md names a file or
// directory inside the repository.
func TestDocLinks(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	examples, _ := filepath.Glob(filepath.Join(repo, "examples", "*", "README.md"))
	pages = append(append([]string{filepath.Join(repo, "README.md")}, pages...), examples...)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, path := range pages {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := filepath.Rel(repo, path)
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			abs := filepath.Join(filepath.Dir(path), filepath.FromSlash(target))
			if rel, err := filepath.Rel(repo, abs); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %q leaves the repository", page, m[1])
				continue
			}
			if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s: link %q: %v", page, m[1], err)
			}
		}
	}
}
