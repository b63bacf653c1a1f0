package script

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/appdir"
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
func (e *Engine) Check(rel string, src []byte) error { return check(e.cur.Load(), rel, src) }

// Checker compiles scripts exactly as an engine on the same app folder would, without loading the
// app or running anything (the CLI checks an edit with it).
type Checker struct{ v *Version }

// NewChecker reads the app folder's layout (where its scripts folder is).
func NewChecker(dir string) (*Checker, error) {
	app, err := appdir.Load(dir)
	if err != nil {
		return nil, err
	}
	root, scripts, err := appPaths(app)
	if err != nil {
		return nil, err
	}
	return &Checker{v: &Version{App: app, root: root, scripts: scripts, progs: map[string]*goja.Program{}}}, nil
}

// Check is Engine.Check.
func (c *Checker) Check(rel string, src []byte) error { return check(c.v, rel, src) }

// ScriptsDir is the folder with table/, api/ and scheduler/.
func (c *Checker) ScriptsDir() string { return c.v.scripts }

// App is the app folder's metadata.
func (c *Checker) App() *appdir.App { return c.v.App }

func check(v *Version, rel string, src []byte) error {
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
