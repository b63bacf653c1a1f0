package console

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/scriptstore"
	"github.com/gatehouse/gatehouse/internal/table"
)

// Scripts is the script editor (scriptstore.Editor implements it): the code path the admin API's
// /admin/scripts runs too. Edits are stored in the database and reach every instance.
type Scripts interface {
	App() *appdir.App
	ScriptsDir() string
	List(ctx context.Context) ([]scriptstore.Script, error)
	Show(ctx context.Context, rel string) (scriptstore.Script, error)
	Revision(ctx context.Context, rel string, revision int64) (scriptstore.Edit, error)
	Save(ctx context.Context, who audit.Entry, rel, src string) (scriptstore.Edit, error)
	Restore(ctx context.Context, who audit.Entry, rel string, revision int64) (scriptstore.Edit, error)
	Revert(ctx context.Context, who audit.Entry, rel string) (scriptstore.Edit, error)
}

type scriptsData struct {
	Enabled bool
	Files   []scriptstore.Script
	Tables  []table.Info
	APIs    []apiInfo
	File    *scriptstore.Script
	Source  string
	// Viewing is a kept revision shown read-only (restore offered).
	Viewing *scriptstore.Edit
	Perms   string // the API's permissions file, or the table's permissions
	Error   *script.SyntaxError
	Problem string
	Events  []event
}

type apiInfo struct {
	Name, File, Permissions string
}

// scripts lists the app's scripts with their permissions, shows one (or a kept revision of it) and
// saves, restores or reverts it through the editor: checked first (syntax errors with file, line and
// column; nothing is stored), then stored with its audit entry and loaded by every instance.
func (c *Console) scripts(w http.ResponseWriter, r *http.Request, rest []string) {
	d := scriptsData{Enabled: c.o.Scripts != nil}
	if c.o.Scripts == nil {
		c.render(w, r, http.StatusOK, "scripts", view{Title: "Scripts and APIs", Nav: "scripts", Data: d})
		return
	}
	sc := c.o.Scripts
	dir := sc.ScriptsDir()
	ctx := r.Context()
	if len(rest) == 0 || rest[0] == "" {
		files, err := sc.List(ctx)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		d.Files = files
		if list, err := c.o.Tables.List(ctx); err == nil {
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
	rel, ok := scriptstore.ValidPath(strings.Join(rest, "/"))
	if !ok {
		c.notFound(w, r)
		return
	}
	title := "Script " + rel
	f, err := sc.Show(ctx, rel)
	switch {
	case errors.Is(err, scriptstore.ErrNoScript):
		if r.Method != http.MethodPost && r.URL.Query().Get("new") == "" {
			c.notFound(w, r)
			return
		}
		f = scriptstore.Script{Path: rel, Kind: strings.SplitN(rel, "/", 2)[0]}
		f.Owner, _, _ = strings.Cut(strings.TrimSuffix(filepath.Base(rel), ".js"), ".")
	case err != nil:
		c.unavailable(w, r, err)
		return
	}
	d.File, d.Source = &f, f.Source
	if f.Kind == "api" {
		if b, err := os.ReadFile(filepath.Join(dir, "api", strings.TrimSuffix(strings.TrimPrefix(rel, "api/"), ".js")+".json")); err == nil && len(b) < 64<<10 {
			d.Perms = string(b)
		}
	}
	if f.Kind == "table" {
		if s, err := c.o.Tables.Lookup(ctx, f.Owner); err == nil {
			in := table.Describe(s)
			d.Perms = "read: " + in.Permissions["read"] + ", insert: " + in.Permissions["insert"] + ", update: " + in.Permissions["update"] + ", delete: " + in.Permissions["delete"]
		}
	}
	d.Events = c.scriptEvents(r, rel)
	if r.Method == http.MethodPost {
		c.changeScript(w, r, rel, title, d)
		return
	}
	if q := r.URL.Query().Get("revision"); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n < 1 {
			c.notFound(w, r)
			return
		}
		e, err := sc.Revision(ctx, rel, n)
		if errors.Is(err, scriptstore.ErrNotFound) {
			c.notFound(w, r)
			return
		}
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		d.Viewing = &e
	}
	c.render(w, r, http.StatusOK, "script", view{Title: title, Nav: "scripts", Data: d})
}

// changeScript runs a posted change: save (the default), restore (a kept revision) or revert.
func (c *Console) changeScript(w http.ResponseWriter, r *http.Request, rel, title string, d scriptsData) {
	sc := c.o.Scripts
	who := audit.Entry{Time: c.now(), Via: audit.ViaConsole, Remote: clientIP(r), RequestID: httpx.InfoOf(r).RequestID}
	if s := sessionOf(r.Context()); s != nil {
		who.Actor = s.admin.Email
	}
	var err error
	var notice string
	switch r.PostFormValue("do") {
	case "", "save":
		src := strings.ReplaceAll(r.PostFormValue("source"), "\r\n", "\n")
		d.Source = src
		_, err = sc.Save(r.Context(), who, rel, src)
		notice = "Saved and loaded on every instance."
	case "restore":
		n, perr := strconv.ParseInt(r.PostFormValue("revision"), 10, 64)
		if perr != nil || n < 1 {
			c.notFound(w, r)
			return
		}
		_, err = sc.Restore(r.Context(), who, rel, n)
		notice = "Revision " + strconv.FormatInt(n, 10) + " restored and loaded on every instance."
	case "revert":
		_, err = sc.Revert(r.Context(), who, rel)
		notice = "Reverted to the deployed file on every instance."
		if !d.File.Deployed {
			notice = "Removed: the app folder has no such file."
		}
	default:
		c.notFound(w, r)
		return
	}
	var le *scriptstore.LoadError
	var se *script.SyntaxError
	switch {
	case err == nil:
		c.redirect(w, r, "/scripts/"+rel, notice)
	case errors.As(err, &le):
		c.o.Log.Warn("console: a script change is stored but did not load here", "path", rel, "err", le.Err)
		c.redirect(w, r, "/scripts/"+rel, "Stored, but the app did not load on this instance (the previous version keeps serving): "+truncate(le.Err.Error(), 90))
	case errors.As(err, &se):
		d.Error = se
		problem := "Not saved: the script has a syntax error. The previous version keeps serving."
		if r.PostFormValue("do") == "revert" {
			problem = "Not reverted: the deployed file has a syntax error. The edit keeps serving."
		}
		c.render(w, r, http.StatusUnprocessableEntity, "script", view{Title: title, Nav: "scripts", Problem: problem, Data: d})
	default:
		status, msg := scriptstore.Status(err)
		if status == http.StatusServiceUnavailable {
			c.unavailable(w, r, err)
			return
		}
		d.Problem = "Not saved: " + msg
		c.render(w, r, status, "script", view{Title: title, Nav: "scripts", Data: d})
	}
}
