package script

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/dop251/goja"
)

// SyntaxError is a script that does not compile, with its position in the author's text.
type SyntaxError struct {
	File   string // relative to the app directory, with forward slashes
	Line   int
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// linePos finds the position in goja's parser messages: "…: Line 2:19 Unexpected token ; (and 5 more errors)".
var linePos = regexp.MustCompile(`Line (\d+):(\d+) (.+?)(?: \(and \d+ more errors?\))?$`)

// ScriptsDir is the folder with table/, api/ and scheduler/ of the version serving now.
func (e *Engine) ScriptsDir() string { return e.cur.Load().scripts }

// Check compiles src exactly as the engine would compile the file rel (a path below the scripts
// folder, e.g. "table/todoitem.insert.js"), without loading or swapping anything. A syntax error comes
// back as a *SyntaxError.
func (e *Engine) Check(rel string, src []byte) error {
	v := e.cur.Load()
	if len(src) > maxScript {
		return fmt.Errorf("the script is larger than %d MiB", maxScript>>20)
	}
	p := filepath.Join(v.scripts, filepath.FromSlash(rel))
	_, err := v.compileSource(p, src)
	if err == nil {
		return nil
	}
	var ce *goja.CompilerSyntaxError
	if errors.As(err, &ce) && ce.File != nil {
		pos := ce.File.Position(ce.Offset)
		col := pos.Column
		if pos.Line == 1 {
			col -= len(moduleHead) // the wrapper shares the first line
			if col < 1 {
				col = 1
			}
		}
		return &SyntaxError{File: v.rel(p), Line: pos.Line, Column: col, Msg: ce.Message}
	}
	msg := err.Error()
	if m := linePos.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		if line == 1 {
			col = max(1, col-len(moduleHead))
		}
		return &SyntaxError{File: v.rel(p), Line: line, Column: col, Msg: m[3]}
	}
	if i := strings.Index(msg, ": "); i > 0 && strings.HasPrefix(msg, "script ") {
		msg = msg[i+2:]
	}
	return &SyntaxError{File: v.rel(p), Msg: msg}
}

// Save checks src (Check), writes it to rel atomically (a temporary file in the same folder, synced,
// then renamed over the old one) and reloads. When the reload fails anyway, the old text is put back
// and the previous version keeps serving. The folder must be writable.
func (e *Engine) Save(rel string, src []byte) error {
	if err := e.Check(rel, src); err != nil {
		return err
	}
	v := e.cur.Load()
	p := filepath.Join(v.scripts, filepath.FromSlash(rel))
	if r, err := filepath.Rel(v.scripts, p); err != nil || strings.HasPrefix(r, "..") || !strings.HasSuffix(p, ".js") {
		return fmt.Errorf("script: %s is not a script of the app", rel)
	}
	old, oldErr := os.ReadFile(p)
	if err := writeAtomic(p, src); err != nil {
		return err
	}
	if _, err := e.Reload(); err != nil {
		if oldErr == nil {
			_ = writeAtomic(p, old)
		} else {
			_ = os.Remove(p)
		}
		_, _ = e.Reload()
		return err
	}
	return nil
}

func writeAtomic(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".gatehouse-*.js.tmp")
	if err != nil {
		return fmt.Errorf("script: the app folder is not writable: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("script: writing %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("script: writing %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("script: writing %s: %w", p, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("script: writing %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("script: writing %s: %w", p, err)
	}
	return nil
}
