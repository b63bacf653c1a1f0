package console

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/table"
)

// Scripts is the script engine (script.Engine implements it).
type Scripts interface {
	App() *appdir.App
	ScriptsDir() string
	Check(rel string, src []byte) error
	Save(rel string, src []byte) error
}

// maxScriptEdit bounds a script posted from the editor.
const maxScriptEdit = 1 << 20

type scriptFile struct {
	Path  string // relative to the scripts folder, forward slashes
	Kind  string // table, api, scheduler, shared
	Owner string // the table, API or job it belongs to
}

type scriptsData struct {
	Enabled  bool
	Writable bool
	Files    []scriptFile
	Tables   []table.Info
	APIs     []apiInfo
	File     *scriptFile
	Source   string
	Perms    string // the API's permissions file, or the table's permissions
	Error    *script.SyntaxError
	Problem  string
	Events   []event
}

type apiInfo struct {
	Name, File, Permissions string
}

// writable reports whether the scripts folder accepts new files (probed with a temporary file).
func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".gatehouse-probe-*")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return true
}

// listScripts walks table/, api/, scheduler/ and shared/ (at most 2,000 files).
func listScripts(dir string) []scriptFile {
	var out []scriptFile
	for _, kind := range []string{"table", "api", "scheduler", "shared"} {
		root := filepath.Join(dir, kind)
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || len(out) >= 2000 {
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
			base := strings.TrimSuffix(d.Name(), ".js")
			owner, _, _ := strings.Cut(base, ".")
			out = append(out, scriptFile{Path: filepath.ToSlash(rel), Kind: kind, Owner: owner})
			return nil
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// scriptPath validates a script path from a URL: a .js file below table/, api/, scheduler/ or shared/,
// no "..", no hidden or node_modules segments.
func scriptPath(rel string) (string, bool) {
	if rel == "" || len(rel) > 300 || strings.Contains(rel, "\\") || strings.HasPrefix(rel, "/") || !strings.HasSuffix(rel, ".js") {
		return "", false
	}
	clean := path.Clean(rel)
	if clean != rel {
		return "", false
	}
	segs := strings.Split(clean, "/")
	switch segs[0] {
	case "table", "api", "scheduler", "shared":
	default:
		return "", false
	}
	for _, s := range segs {
		if s == "" || s == ".." || strings.HasPrefix(s, ".") || s == "node_modules" {
			return "", false
		}
	}
	return clean, len(segs) >= 2
}

// scripts lists the app's scripts with their permissions and shows or saves one. A save is checked
// first (syntax errors with file, line and column; nothing is written), then written atomically and
// reloaded; the previous version keeps serving on any failure.
func (c *Console) scripts(w http.ResponseWriter, r *http.Request, rest []string) {
	d := scriptsData{Enabled: c.o.Scripts != nil}
	if c.o.Scripts == nil {
		c.render(w, r, http.StatusOK, "scripts", view{Title: "Scripts and APIs", Nav: "scripts", Data: d})
		return
	}
	sc := c.o.Scripts
	dir := sc.ScriptsDir()
	d.Writable = writable(dir)
	if len(rest) == 0 || rest[0] == "" {
		d.Files = listScripts(dir)
		if list, err := c.o.Tables.List(r.Context()); err == nil {
			for _, s := range list {
				d.Tables = append(d.Tables, table.Describe(s))
			}
		}
		for _, a := range sc.App().APIs() {
			ai := apiInfo{Name: a.Name, File: a.File}
			if b, err := os.ReadFile(filepath.Join(dir, "api", a.Name+".json")); err == nil && len(b) < 64<<10 {
				ai.Permissions = string(b)
			}
			d.APIs = append(d.APIs, ai)
		}
		c.render(w, r, http.StatusOK, "scripts", view{Title: "Scripts and APIs", Nav: "scripts", Data: d})
		return
	}
	rel, ok := scriptPath(strings.Join(rest, "/"))
	if !ok {
		c.notFound(w, r)
		return
	}
	f := scriptFile{Path: rel, Kind: strings.SplitN(rel, "/", 2)[0]}
	f.Owner, _, _ = strings.Cut(strings.TrimSuffix(path.Base(rel), ".js"), ".")
	d.File = &f
	full := filepath.Join(dir, filepath.FromSlash(rel))
	if f.Kind == "api" {
		if b, err := os.ReadFile(strings.TrimSuffix(full, ".js") + ".json"); err == nil && len(b) < 64<<10 {
			d.Perms = string(b)
		}
	}
	if f.Kind == "table" {
		if s, err := c.o.Tables.Lookup(r.Context(), f.Owner); err == nil {
			in := table.Describe(s)
			d.Perms = "read: " + in.Permissions["read"] + ", insert: " + in.Permissions["insert"] + ", update: " + in.Permissions["update"] + ", delete: " + in.Permissions["delete"]
		}
	}
	d.Events = c.scriptEvents(r, rel)
	title := "Script " + rel
	if r.Method == http.MethodPost {
		src := strings.ReplaceAll(r.PostFormValue("source"), "\r\n", "\n")
		d.Source = src
		if len(src) > maxScriptEdit {
			d.Problem = "The script is larger than 1 MiB."
			c.render(w, r, http.StatusRequestEntityTooLarge, "script", view{Title: title, Nav: "scripts", Data: d})
			return
		}
		if !d.Writable {
			d.Problem = "The app folder is read-only on this server: edit the files where the app is deployed."
			c.render(w, r, http.StatusConflict, "script", view{Title: title, Nav: "scripts", Data: d})
			return
		}
		old, _ := os.ReadFile(full)
		err := sc.Save(rel, []byte(src))
		var se *script.SyntaxError
		if errors.As(err, &se) {
			d.Error = se
			c.render(w, r, http.StatusUnprocessableEntity, "script", view{Title: title, Nav: "scripts",
				Problem: "Not saved: the script has a syntax error. The previous version keeps serving.", Data: d})
			return
		}
		if err != nil {
			d.Problem = "Not saved: " + err.Error()
			c.render(w, r, http.StatusUnprocessableEntity, "script", view{Title: title, Nav: "scripts", Data: d})
			return
		}
		c.record(r, "script.save", rel, map[string]any{"bytes": len(old), "source": string(old)}, map[string]any{"bytes": len(src), "source": src})
		c.redirect(w, r, "/scripts/"+rel, "Saved and loaded.")
		return
	}
	b, err := os.ReadFile(full)
	if errors.Is(err, fs.ErrNotExist) {
		if r.URL.Query().Get("new") == "" {
			c.notFound(w, r)
			return
		}
	} else if err != nil {
		c.unavailable(w, r, err)
		return
	}
	d.Source = string(b)
	c.render(w, r, http.StatusOK, "script", view{Title: title, Nav: "scripts", Data: d})
}
