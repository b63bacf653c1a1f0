package scriptstore

import (
	"context"
	"errors"
	"log/slog"
	"sort"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/notify"
)

// Engine is what the editor needs of the script engine: script.Engine (a server) and script.Checker
// (the CLI) implement it.
type Engine interface {
	// Check compiles a script's text as the engine would compile the file rel; a syntax error comes
	// back as a *script.SyntaxError.
	Check(rel string, src []byte) error
	// ScriptsDir is the folder with table/, api/, scheduler/ and shared/ (the deployed files).
	ScriptsDir() string
	App() *appdir.App
}

// Auditor writes an audit entry through the change's transaction (audit.Store implements it).
type Auditor interface {
	RecordTx(ctx context.Context, q audit.Execer, e audit.Entry) error
}

// Editor is the one code path of every script change, whether it comes from the console, the admin
// API or the CLI: check the syntax (nothing is stored on an error), store the change and its audit
// entry in one transaction, announce it on notify.Scripts so that every instance reloads, and reload
// this one.
type Editor struct {
	Store  Store
	Engine Engine
	Audit  Auditor
	// Notifier tells the other instances (nil: they notice at their next poll).
	Notifier notify.Notifier
	// Reload reloads this instance's engine (nil: nothing to reload, e.g. the CLI).
	Reload func(ctx context.Context) (bool, error)
	Log    *slog.Logger
}

// Errors of the editor (besides the store's and *script.SyntaxError).
var (
	ErrInvalidPath = errors.New("scriptstore: not a script path: a .js file below table/, api/, scheduler/ or shared/")
	ErrNoScript    = errors.New("scriptstore: no such script")
)

// InvalidSourceError is text that cannot be stored as a script.
type InvalidSourceError struct{ Msg string }

func (e *InvalidSourceError) Error() string { return e.Msg }

// LoadError is a change that was stored (and announced) but that this instance could not load: the
// previous version keeps serving here until the cause (usually another script) is fixed.
type LoadError struct{ Err error }

func (e *LoadError) Error() string {
	return "the change is stored, but the app did not load (the previous version keeps serving): " + e.Err.Error()
}

func (e *LoadError) Unwrap() error { return e.Err }

// App is the serving app's metadata.
func (ed *Editor) App() *appdir.App { return ed.Engine.App() }

// ScriptsDir is the app folder's scripts folder (the deployed files).
func (ed *Editor) ScriptsDir() string { return ed.Engine.ScriptsDir() }

func (ed *Editor) log() *slog.Logger {
	if ed.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return ed.Log
}

// List returns every script: the deployed files and the edits, sorted by path. Edited scripts carry
// their edit (without source) and whether the deployed file changed since.
func (ed *Editor) List(ctx context.Context) ([]Script, error) {
	edits, err := ed.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	dir := ed.Engine.ScriptsDir()
	byPath := map[string]*Script{}
	for _, p := range deployedFiles(dir) {
		s := describe(p)
		s.Deployed = true
		byPath[p] = &s
	}
	for i := range edits {
		e := edits[i]
		s, ok := byPath[e.Path]
		if !ok {
			d := describe(e.Path)
			s = &d
			byPath[e.Path] = s
		}
		s.Edit = &e
		ed.compare(s)
	}
	out := make([]Script, 0, len(byPath))
	for _, s := range byPath {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// compare sets the deployed file's hash and the drift of an edited script.
func (ed *Editor) compare(s *Script) {
	b, ok, err := readDeployed(ed.Engine.ScriptsDir(), s.Path)
	if err != nil {
		ed.log().Warn("reading a deployed script failed", "path", s.Path, "err", err)
		return
	}
	s.Deployed = ok
	if ok {
		s.DeployedSHA256 = Hash(b)
	}
	if s.Edit != nil {
		s.Drift = s.DeployedSHA256 != s.Edit.BaseSHA256
	}
}

// Show returns one script with the source that serves and the edit history. ErrNoScript: neither a
// deployed file nor an edit (nor any history) exists.
func (ed *Editor) Show(ctx context.Context, rel string) (Script, error) {
	rel, ok := ValidPath(rel)
	if !ok {
		return Script{}, ErrInvalidPath
	}
	s := describe(rel)
	e, err := ed.Store.Get(ctx, rel)
	switch {
	case err == nil:
		s.Edit = &e
	case !errors.Is(err, ErrNotFound):
		return Script{}, err
	}
	b, deployed, err := readDeployed(ed.Engine.ScriptsDir(), rel)
	if err != nil {
		return Script{}, err
	}
	s.Deployed = deployed
	if deployed {
		s.DeployedSHA256 = Hash(b)
		s.Source = string(b)
	}
	if s.Edit != nil {
		s.Source = s.Edit.Source
		s.Drift = s.DeployedSHA256 != s.Edit.BaseSHA256
		s.Edit.Source = ""
	}
	if s.History, err = ed.Store.History(ctx, rel); err != nil {
		return Script{}, err
	}
	if !s.Deployed && s.Edit == nil && len(s.History) == 0 {
		return Script{}, ErrNoScript
	}
	return s, nil
}

// Revision returns one kept revision of a script, with its source (ErrNotFound: not kept).
func (ed *Editor) Revision(ctx context.Context, rel string, revision int64) (Edit, error) {
	rel, ok := ValidPath(rel)
	if !ok {
		return Edit{}, ErrInvalidPath
	}
	return ed.Store.At(ctx, rel, revision)
}

// Save checks src and puts it in force for rel on every instance. who names the actor, surface,
// remote address and request id of the audit entry ("script.save", with the source before and
// after). A *script.SyntaxError (or any other error but *LoadError) means nothing was stored.
func (ed *Editor) Save(ctx context.Context, who audit.Entry, rel, src string) (Edit, error) {
	return ed.save(ctx, who, "script.save", rel, src, 0)
}

// Restore puts a kept revision of rel back in force as a new revision ("script.restore").
func (ed *Editor) Restore(ctx context.Context, who audit.Entry, rel string, revision int64) (Edit, error) {
	old, err := ed.Revision(ctx, rel, revision)
	if err != nil {
		return Edit{}, err
	}
	return ed.save(ctx, who, "script.restore", old.Path, old.Source, revision)
}

func (ed *Editor) save(ctx context.Context, who audit.Entry, action, rel, src string, from int64) (Edit, error) {
	rel, ok := ValidPath(rel)
	if !ok {
		return Edit{}, ErrInvalidPath
	}
	if err := ValidSource(src); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return Edit{}, err
		}
		return Edit{}, &InvalidSourceError{Msg: "A script must be UTF-8 text without NUL characters."}
	}
	if err := ed.Engine.Check(rel, []byte(src)); err != nil {
		return Edit{}, err
	}
	deployed, hasFile, err := readDeployed(ed.Engine.ScriptsDir(), rel)
	if err != nil {
		return Edit{}, err
	}
	base := ""
	if hasFile {
		base = Hash(deployed)
	}
	saved, err := ed.Store.Save(ctx, Change{Path: rel, Source: src, BaseSHA256: base, SavedBy: who.Actor},
		func(ctx context.Context, q Execer, before, after *Edit) error {
			e := who
			e.Action, e.Target = action, rel
			e.Before = audit.Snapshot(state(before, deployed, hasFile))
			a := state(after, nil, false)
			if from > 0 {
				a["restoredFrom"] = from
			}
			e.After = audit.Snapshot(a)
			return ed.Audit.RecordTx(ctx, q, e)
		})
	if err != nil {
		return Edit{}, err
	}
	return saved, ed.announce(ctx, rel)
}

// Revert deletes the edit of rel: the deployed file serves again on every instance (or, when the
// folder has none, the script is gone). The deployed file is checked first: one with a syntax error
// is refused (a *script.SyntaxError) and nothing changes. ErrNotFound: rel has no edit.
func (ed *Editor) Revert(ctx context.Context, who audit.Entry, rel string) (Edit, error) {
	rel, ok := ValidPath(rel)
	if !ok {
		return Edit{}, ErrInvalidPath
	}
	deployed, hasFile, err := readDeployed(ed.Engine.ScriptsDir(), rel)
	if err != nil {
		return Edit{}, err
	}
	if hasFile {
		if err := ed.Engine.Check(rel, deployed); err != nil {
			return Edit{}, err
		}
	}
	gone, err := ed.Store.Revert(ctx, rel, func(ctx context.Context, q Execer, before, _ *Edit) error {
		e := who
		e.Action, e.Target = "script.revert", rel
		e.Before = audit.Snapshot(state(before, nil, false))
		if hasFile {
			e.After = audit.Snapshot(state(nil, deployed, true))
		}
		return ed.Audit.RecordTx(ctx, q, e)
	})
	if err != nil {
		return Edit{}, err
	}
	gone.Source = ""
	return gone, ed.announce(ctx, rel)
}

// state is an audit entry's before or after: the edit in force, else the deployed file, else nothing.
func state(e *Edit, deployed []byte, hasFile bool) map[string]any {
	switch {
	case e != nil:
		return map[string]any{"revision": e.Revision, "bytes": e.Bytes, "sha256": e.SHA256, "source": e.Source}
	case hasFile:
		return map[string]any{"deployed": true, "bytes": len(deployed), "sha256": Hash(deployed), "source": string(deployed)}
	}
	return nil
}

// announce tells every instance (this one included) that rel changed, then reloads this one. The
// change has committed: a failed notification only delays the others to their next poll.
func (ed *Editor) announce(ctx context.Context, rel string) error {
	if ed.Notifier != nil {
		if err := ed.Notifier.Publish(context.WithoutCancel(ctx), notify.Scripts, rel); err != nil {
			ed.log().Warn("notifying other instances of a script change failed; they reload at their next poll", "path", rel, "err", err)
		}
	}
	if ed.Reload == nil {
		return nil
	}
	if _, err := ed.Reload(context.WithoutCancel(ctx)); err != nil {
		return &LoadError{Err: err}
	}
	return nil
}

// EditsRevision is the edits' revision counter (what the instances poll).
func (ed *Editor) EditsRevision(ctx context.Context) (int64, error) { return ed.Store.Revision(ctx) }
