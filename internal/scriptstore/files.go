package scriptstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/appdir"
)

// Kinds of script, by their folder.
var kinds = []string{"table", "api", "scheduler", "shared"}

// maxListed bounds how many deployed files a listing walks.
const maxListed = 2000

// ValidPath checks a script path from a URL, a form or the command line: a .js file below table/,
// api/, scheduler/ or shared/ of the scripts folder, forward slashes, no "..", no hidden or
// node_modules segments, at most 300 bytes. A custom API (api/NAME.js) and a job (scheduler/NAME.js)
// need a valid name (letters, digits, underscores), as in the app folder.
func ValidPath(rel string) (string, bool) {
	if rel == "" || len(rel) > 300 || strings.Contains(rel, "\\") || strings.HasPrefix(rel, "/") || !strings.HasSuffix(rel, ".js") {
		return "", false
	}
	clean := path.Clean(rel)
	if clean != rel {
		return "", false
	}
	segs := strings.Split(clean, "/")
	if len(segs) < 2 {
		return "", false
	}
	switch segs[0] {
	case "table", "api", "scheduler", "shared":
	default:
		return "", false
	}
	for _, s := range segs {
		if s == "" || s == ".." || strings.HasPrefix(s, ".") || s == "node_modules" || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", false
		}
	}
	if len(segs) == 2 && (segs[0] == "api" || segs[0] == "scheduler") && !appdir.ValidName(strings.TrimSuffix(segs[1], ".js")) {
		return "", false
	}
	return clean, true
}

// Script is one script as the console, the admin API and the CLI show it: the deployed file, the edit
// in force, or both.
type Script struct {
	Path  string `json:"path"`
	Kind  string `json:"kind"`  // table, api, scheduler, shared
	Owner string `json:"owner"` // the table, API or job it belongs to
	// Deployed: the app folder has the file; DeployedSHA256 is its hash.
	Deployed       bool   `json:"deployed"`
	DeployedSHA256 string `json:"deployedSha256,omitempty"`
	// Edit is the edit in force (nil: the deployed file serves).
	Edit *Edit `json:"edit,omitempty"`
	// Drift: the deployed file changed (or appeared, or went away) after the edit was saved; the edit
	// still overrides it.
	Drift bool `json:"drift,omitempty"`
	// Source is what serves (the edit's, else the deployed file's); set by Show only.
	Source string `json:"source,omitempty"`
	// History lists the kept revisions, newest first; set by Show only.
	History []Edit `json:"history,omitempty"`
}

// Edited reports whether an edit overrides (or adds) the file.
func (s Script) Edited() bool { return s.Edit != nil }

func describe(rel string) Script {
	kind, _, _ := strings.Cut(rel, "/")
	owner, _, _ := strings.Cut(strings.TrimSuffix(path.Base(rel), ".js"), ".")
	return Script{Path: rel, Kind: kind, Owner: owner}
}

// deployedFiles lists the .js files below table/, api/, scheduler/ and shared/ of dir (at most
// maxListed), relative with forward slashes.
func deployedFiles(dir string) []string {
	var out []string
	for _, kind := range kinds {
		root := filepath.Join(dir, kind)
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || len(out) >= maxListed {
				return filepath.SkipDir
			}
			if d.IsDir() && (d.Name() == "node_modules" || (strings.HasPrefix(d.Name(), ".") && p != root)) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(d.Name(), ".js") || strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return nil
			}
			if r, ok := ValidPath(filepath.ToSlash(rel)); ok {
				out = append(out, r)
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

// readDeployed reads the deployed file rel below dir; ok is false when there is none. A file larger
// than the engine would load is an error.
func readDeployed(dir, rel string) (b []byte, ok bool, err error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("scriptstore: reading the deployed %s: %w", rel, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("scriptstore: reading the deployed %s: %w", rel, err)
	}
	if st.IsDir() {
		return nil, false, nil
	}
	const maxDeployed = 4 << 20 // the engine's own bound on a script file
	b, err = io.ReadAll(io.LimitReader(f, maxDeployed+1))
	if err != nil {
		return nil, false, fmt.Errorf("scriptstore: reading the deployed %s: %w", rel, err)
	}
	if len(b) > maxDeployed {
		return nil, false, fmt.Errorf("scriptstore: the deployed %s is larger than %d MiB", rel, maxDeployed>>20)
	}
	return b, true, nil
}
