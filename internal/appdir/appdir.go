// Package appdir loads an app directory in the Azure Mobile Services layout (spec zumo-protocol.md §1.1,
// §5.1): datamodel.json, table/<name>.json and api/<name>.json permission files, with scripts beside
// them (table/<t>.<op>.js, api/<name>.js, scheduler/<job>.js, shared/, extensions/).
//
// The script folders may sit directly in the app directory or under service/ or scripts/ (the
// original's site-extension and git layouts). A malformed file stops start-up with an error naming the
// file and the key.
package appdir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// Operation is a table operation.
type Operation string

// Table operations and the HTTP verbs that map to them (POST=insert, GET=read, PATCH=update,
// DELETE=delete).
const (
	Read   Operation = "read"
	Insert Operation = "insert"
	Update Operation = "update"
	Delete Operation = "delete"
)

var operations = []Operation{Read, Insert, Update, Delete}

// Table is a declared table.
type Table struct {
	Name        string // canonical casing
	Permissions map[Operation]auth.Permission
	Options     TableOptions
	// File is where the table was declared (for messages).
	File string
}

// TableOptions are Gatehouse's per-table settings, readable from datamodel.json entries or the table's
// own JSON file next to "routes". Absent values leave the defaults to the table store.
type TableOptions struct {
	IDType        string            `json:"idType,omitempty"`        // "string" (default) or "integer"
	SoftDelete    *bool             `json:"softDelete,omitempty"`    // keep deleted rows, flagged
	PerUser       *bool             `json:"perUser,omitempty"`       // stamp and filter by the caller's user id
	DynamicSchema *bool             `json:"dynamicSchema,omitempty"` // add columns on demand
	Columns       map[string]string `json:"columns,omitempty"`       // declared columns: name → string|number|boolean|date
	PageSize      int               `json:"pageSize,omitempty"`
	MaxTop        int               `json:"maxTop,omitempty"`
	Indexes       []string          `json:"indexes,omitempty"` // indexes: a column, or columns joined by "+"
}

// Permission returns the permission of an operation (Admin when none is set).
func (t *Table) Permission(op Operation) auth.Permission { return t.Permissions[op] }

// API is a custom API's permission metadata (api/<name>.json). Permissions are looked up by the
// route a request matched (RoutePermission in route.go).
type API struct {
	Name  string
	rules []routeRule // every route of the file but "*"
	star  []routeRule // the "*" route: applies when no rule names the matched route
	File  string
}

// Job is a declared scheduler job.
type Job struct {
	Name string
}

// App is a loaded app directory.
type App struct {
	Dir        string // the app directory as given
	ScriptsDir string // where table/, api/, ... live
	tables     map[string]*Table
	apis       map[string]*API
	jobs       map[string]*Job
	push       *API // extensions/push.json (push.go); nil: application
}

// Empty is an app with nothing declared (Gatehouse started without --app).
func Empty() *App {
	return &App{tables: map[string]*Table{}, apis: map[string]*API{}, jobs: map[string]*Job{}}
}

// Table finds a table by name, case-insensitively.
func (a *App) Table(name string) (*Table, bool) {
	if !validName(name) {
		return nil, false // strings.ToLower would fold e.g. the Kelvin sign onto "k"
	}
	t, ok := a.tables[strings.ToLower(name)]
	return t, ok
}

// Tables lists the declared tables sorted by name.
func (a *App) Tables() []*Table {
	return sortedByName(a.tables, func(t *Table) string { return t.Name })
}

// API finds a custom API by name, case-insensitively.
func (a *App) API(name string) (*API, bool) {
	if !validName(name) {
		return nil, false
	}
	x, ok := a.apis[strings.ToLower(name)]
	return x, ok
}

// APIs lists the declared APIs sorted by name.
func (a *App) APIs() []*API { return sortedByName(a.apis, func(x *API) string { return x.Name }) }

func sortedByName[T any](m map[string]*T, name func(*T) string) []*T {
	out := make([]*T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return name(out[i]) < name(out[j]) })
	return out
}

// Jobs lists the declared jobs sorted by name.
func (a *App) Jobs() []*Job { return sortedByName(a.jobs, func(j *Job) string { return j.Name }) }

// Job finds a job by name, case-insensitively.
func (a *App) Job(name string) (*Job, bool) {
	if !validName(name) {
		return nil, false
	}
	j, ok := a.jobs[strings.ToLower(name)]
	return j, ok
}

// FileError is a malformed app file.
type FileError struct {
	File string
	Key  string // JSON path of the offending key, "" for the whole file
	Err  error
}

func (e *FileError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("Invalid metadata file '%s': %v", e.File, e.Err)
	}
	return fmt.Sprintf("Invalid metadata file '%s': key %s: %v", e.File, e.Key, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// maxFile bounds each metadata file we read.
const maxFile = 1 << 20

// Load reads an app directory.
func Load(dir string) (*App, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("app directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("app directory %s is not a directory", dir)
	}
	a := Empty()
	a.Dir = dir
	a.ScriptsDir = scriptsDir(dir)

	dm := filepath.Join(dir, "datamodel.json")
	if _, err := os.Stat(dm); os.IsNotExist(err) && a.ScriptsDir != dir {
		dm = filepath.Join(a.ScriptsDir, "datamodel.json")
	}
	if err := a.loadDataModel(dm); err != nil {
		return nil, err
	}
	if err := a.loadTableFiles(filepath.Join(a.ScriptsDir, "table")); err != nil {
		return nil, err
	}
	if err := a.loadAPIFiles(filepath.Join(a.ScriptsDir, "api")); err != nil {
		return nil, err
	}
	if err := a.loadJobs(filepath.Join(a.ScriptsDir, "scheduler")); err != nil {
		return nil, err
	}
	if err := a.loadPush(filepath.Join(a.ScriptsDir, "extensions")); err != nil {
		return nil, err
	}
	return a, nil
}

func scriptsDir(dir string) string {
	for _, sub := range []string{"table", "api", "scheduler", "shared"} {
		if isDir(filepath.Join(dir, sub)) {
			return dir
		}
	}
	for _, alt := range []string{"service", "scripts"} {
		if isDir(filepath.Join(dir, alt)) {
			return filepath.Join(dir, alt)
		}
	}
	return dir
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func readJSON(path string) (map[string]json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, &FileError{File: path, Err: err}
	}
	if n > maxFile {
		return nil, &FileError{File: path, Err: errors.New("file is larger than 1 MiB")}
	}
	b := bytes.TrimPrefix(buf.Bytes(), []byte("\xef\xbb\xbf")) // files edited on Windows carry a BOM
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &FileError{File: path, Err: fmt.Errorf("not a JSON object: %w", err)}
	}
	return m, nil
}

func (a *App) loadDataModel(path string) error {
	m, err := readJSON(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for k, raw := range m {
		switch k {
		case "tables":
			var tables []map[string]json.RawMessage
			if err := json.Unmarshal(raw, &tables); err != nil {
				return &FileError{File: path, Key: "tables", Err: errors.New("must be an array of objects")}
			}
			for i, te := range tables {
				if err := a.addDataModelTable(path, i, te); err != nil {
					return err
				}
			}
		case "jobs":
			var jobs []struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(raw, &jobs); err != nil {
				return &FileError{File: path, Key: "jobs", Err: errors.New("must be an array of {\"name\": ...} objects")}
			}
			for i, j := range jobs {
				if !validName(j.Name) {
					return &FileError{File: path, Key: fmt.Sprintf("jobs[%d].name", i), Err: fmt.Errorf("invalid job name %q", j.Name)}
				}
				a.jobs[strings.ToLower(j.Name)] = &Job{Name: j.Name}
			}
		default:
			// Other keys (e.g. the original portal's bookkeeping) are ignored.
		}
	}
	return nil
}

func (a *App) addDataModelTable(path string, i int, te map[string]json.RawMessage) error {
	key := func(k string) string { return fmt.Sprintf("tables[%d].%s", i, k) }
	var name string
	if err := json.Unmarshal(te["name"], &name); err != nil || !validName(name) {
		return &FileError{File: path, Key: key("name"), Err: fmt.Errorf("invalid or missing table name")}
	}
	t := &Table{Name: name, Permissions: map[Operation]auth.Permission{}, File: path}
	for k, raw := range te {
		switch k {
		case "name":
		case "permissions":
			var perms map[string]string
			if err := json.Unmarshal(raw, &perms); err != nil {
				return &FileError{File: path, Key: key("permissions"), Err: errors.New("must map operations to permission names")}
			}
			for op, ps := range perms {
				if err := setOpPermission(t, op, ps); err != nil {
					return &FileError{File: path, Key: key("permissions." + op), Err: err}
				}
			}
		default:
			if err := t.Options.set(k, raw); err != nil {
				return &FileError{File: path, Key: key(k), Err: err}
			}
		}
	}
	if err := t.Options.validate(); err != nil {
		return &FileError{File: path, Key: fmt.Sprintf("tables[%d]", i), Err: err}
	}
	a.tables[strings.ToLower(name)] = t
	return nil
}

func setOpPermission(t *Table, op, ps string) error {
	p, err := auth.ParsePermission(ps)
	if err != nil {
		return err
	}
	op = strings.ToLower(op)
	if op == "*" {
		for _, o := range operations {
			t.Permissions[o] = p
		}
		return nil
	}
	for _, o := range operations {
		if Operation(op) == o {
			t.Permissions[o] = p
			return nil
		}
	}
	return fmt.Errorf("unknown operation %q (read, insert, update, delete or *)", op)
}

func (o *TableOptions) set(k string, raw json.RawMessage) error {
	var err error
	switch k {
	case "idType":
		err = json.Unmarshal(raw, &o.IDType)
	case "softDelete":
		err = json.Unmarshal(raw, &o.SoftDelete)
	case "perUser":
		err = json.Unmarshal(raw, &o.PerUser)
	case "dynamicSchema":
		err = json.Unmarshal(raw, &o.DynamicSchema)
	case "columns":
		err = json.Unmarshal(raw, &o.Columns)
	case "pageSize":
		err = json.Unmarshal(raw, &o.PageSize)
	case "maxTop":
		err = json.Unmarshal(raw, &o.MaxTop)
	case "indexes":
		err = json.Unmarshal(raw, &o.Indexes)
	default:
		return nil // unknown keys are ignored, for files written for the original or newer versions
	}
	if err != nil {
		return fmt.Errorf("wrong type: %v", err)
	}
	return nil
}

func (o *TableOptions) validate() error {
	switch strings.ToLower(o.IDType) {
	case "", "string", "integer":
		o.IDType = strings.ToLower(o.IDType)
	default:
		return fmt.Errorf("idType must be \"string\" or \"integer\", not %q", o.IDType)
	}
	for c, typ := range o.Columns {
		if !validName(c) {
			return fmt.Errorf("column name %q is invalid", c)
		}
		switch strings.ToLower(typ) {
		case "string", "number", "boolean", "date":
			o.Columns[c] = strings.ToLower(typ)
		default:
			return fmt.Errorf("column %q has type %q (string, number, boolean or date)", c, typ)
		}
	}
	for _, ix := range o.Indexes {
		// An index on several columns joins them with "+" ("year+title").
		for _, c := range strings.Split(ix, "+") {
			if !validName(c) {
				return fmt.Errorf("index %q: column name %q is invalid", ix, c)
			}
		}
	}
	if o.PageSize < 0 || o.MaxTop < 0 || (o.PageSize > 0 && o.MaxTop > 0 && o.PageSize > o.MaxTop) {
		return errors.New("pageSize and maxTop must be positive, pageSize ≤ maxTop")
	}
	return nil
}

func (a *App) loadTableFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("app directory: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			continue
		}
		if strings.HasSuffix(n, ".json") {
			if err := a.loadTableFile(filepath.Join(dir, n), strings.TrimSuffix(n, ".json")); err != nil {
				return err
			}
			continue
		}
		// table/<name>.<op>.js declares the table too.
		if base, ok := strings.CutSuffix(n, ".js"); ok {
			if name, _, ok := strings.Cut(base, "."); ok && validName(name) {
				if _, exists := a.tables[strings.ToLower(name)]; !exists {
					a.tables[strings.ToLower(name)] = &Table{Name: name, Permissions: map[Operation]auth.Permission{}, File: filepath.Join(dir, n)}
				}
			}
		}
	}
	return nil
}

func (a *App) loadTableFile(path, name string) error {
	if !validName(name) {
		return &FileError{File: path, Err: fmt.Errorf("invalid table name %q", name)}
	}
	m, err := readJSON(path)
	if err != nil {
		return err
	}
	t, ok := a.tables[strings.ToLower(name)]
	if !ok {
		t = &Table{Name: name, Permissions: map[Operation]auth.Permission{}}
		a.tables[strings.ToLower(name)] = t
	}
	t.File = path
	for k, raw := range m {
		if k != "routes" {
			if err := t.Options.set(k, raw); err != nil {
				return &FileError{File: path, Key: k, Err: err}
			}
			continue
		}
		routes, err := parseRoutes(path, raw)
		if err != nil {
			return err
		}
		// The original read a table's permissions from the "/" route, else "*". Both may be written;
		// where both name an operation the more restrictive wins (never the map order).
		set := map[Operation]auth.Permission{}
		for _, r := range routes {
			if r.norm != "*" && r.norm != "" {
				return &FileError{File: path, Key: "routes." + r.norm, Err: errors.New("table routes must be \"*\" or \"/\"")}
			}
			for op := range r.methods {
				if op != "*" && !isOperation(op) {
					return &FileError{File: path, Key: "routes." + r.key + "." + op, Err: fmt.Errorf("unknown operation %q (read, insert, update, delete or *)", op)}
				}
			}
			for _, o := range operations {
				p, ok := r.methods[string(o)]
				if !ok {
					p, ok = r.methods["*"]
				}
				if !ok {
					continue
				}
				if prev, seen := set[o]; seen {
					p = min(prev, p)
				}
				set[o] = p
			}
		}
		for o, p := range set {
			t.Permissions[o] = p
		}
	}
	if err := t.Options.validate(); err != nil {
		return &FileError{File: path, Err: err}
	}
	return nil
}

// fileRoute is one entry of a metadata file's "routes".
type fileRoute struct {
	key     string // as written
	norm    string // trimmed of slashes: "" is the root, "*" every other route
	methods map[string]auth.Permission
}

func isOperation(op string) bool {
	for _, o := range operations {
		if Operation(op) == o {
			return true
		}
	}
	return false
}

// parseRoutes reads {"routes": {"<route>": {"<op-or-method>": {"permission": "..."}}}}. The only
// allowed key in a leaf is "permission", as in the original. Routes come back sorted by key.
func parseRoutes(path string, raw json.RawMessage) ([]fileRoute, error) {
	var routes map[string]map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &routes); err != nil {
		return nil, &FileError{File: path, Key: "routes", Err: errors.New(`must look like {"*": {"get": {"permission": "public"}}}`)}
	}
	keys := make([]string, 0, len(routes))
	for k := range routes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]fileRoute, 0, len(routes))
	for _, route := range keys {
		if route == "" {
			return nil, &FileError{File: path, Key: "routes", Err: errors.New("a route may not be empty (\"/\" is the root)")}
		}
		fr := fileRoute{key: route, norm: strings.Trim(route, "/"), methods: map[string]auth.Permission{}}
		for method, leaf := range routes[route] {
			key := "routes." + route + "." + method
			for lk := range leaf {
				if lk != "permission" {
					return nil, &FileError{File: path, Key: key + "." + lk, Err: errors.New("only \"permission\" is allowed")}
				}
			}
			var ps string
			if err := json.Unmarshal(leaf["permission"], &ps); err != nil {
				return nil, &FileError{File: path, Key: key + ".permission", Err: errors.New("must be a string")}
			}
			p, err := auth.ParsePermission(ps)
			if err != nil {
				return nil, &FileError{File: path, Key: key + ".permission", Err: err}
			}
			m := strings.ToLower(method)
			if prev, dup := fr.methods[m]; dup {
				p = min(prev, p) // "GET" and "get" in one route: the more restrictive
			}
			fr.methods[m] = p
		}
		out = append(out, fr)
	}
	return out, nil
}

func (a *App) loadAPIFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("app directory: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			continue
		}
		var name string
		switch {
		case strings.HasSuffix(n, ".json"):
			name = strings.TrimSuffix(n, ".json")
		case strings.HasSuffix(n, ".js"):
			name = strings.TrimSuffix(n, ".js")
		default:
			continue
		}
		if !validName(name) {
			return &FileError{File: filepath.Join(dir, n), Err: fmt.Errorf("invalid API name %q", name)}
		}
		api, ok := a.apis[strings.ToLower(name)]
		if !ok {
			api = &API{Name: name, File: filepath.Join(dir, n)}
			a.apis[strings.ToLower(name)] = api
		}
		if strings.HasSuffix(n, ".json") {
			path := filepath.Join(dir, n)
			m, err := readJSON(path)
			if err != nil {
				return err
			}
			if err := api.setRoutes(path, m); err != nil {
				return err
			}
			api.File = path
		}
	}
	return nil
}

// setRoutes reads a metadata file's members (only "routes") into the API's rules.
func (api *API) setRoutes(path string, m map[string]json.RawMessage) error {
	for k, raw := range m {
		if k != "routes" {
			return &FileError{File: path, Key: k, Err: errors.New("unknown key (only \"routes\")")}
		}
		routes, err := parseRoutes(path, raw)
		if err != nil {
			return err
		}
		api.rules, api.star = nil, nil
		for _, r := range routes {
			rule := routeRule{pattern: ParsePattern(r.norm), methods: r.methods}
			if r.norm == "*" {
				api.star = append(api.star, rule)
			} else {
				api.rules = append(api.rules, rule)
			}
		}
	}
	return nil
}

func (a *App) loadJobs(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("app directory: %w", err)
	}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".js"); ok && !e.IsDir() && validName(name) {
			if _, exists := a.jobs[strings.ToLower(name)]; !exists {
				a.jobs[strings.ToLower(name)] = &Job{Name: name}
			}
		}
	}
	return nil
}

// validName accepts the names the original accepted for tables, APIs and jobs: letters, digits and
// underscores, starting with a letter or underscore, at most 128 characters.
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidName reports whether s is a valid table, API or job name.
func ValidName(s string) bool { return validName(s) }

// DeclareScript declares what a script file known only from elsewhere (an edit stored in the
// database, laid over the folder) declares when it is in the folder: table/NAME.OP.js the table
// NAME, api/NAME.js the custom API NAME (no permissions file: the default applies), scheduler/NAME.js
// the job NAME. rel is relative to the scripts folder, with forward slashes; anything else declares
// nothing.
func (a *App) DeclareScript(rel string) {
	dir, file, ok := strings.Cut(rel, "/")
	if !ok || strings.Contains(file, "/") {
		return
	}
	base, ok := strings.CutSuffix(file, ".js")
	if !ok {
		return
	}
	path := filepath.Join(a.ScriptsDir, dir, file)
	switch dir {
	case "table":
		if name, _, ok := strings.Cut(base, "."); ok && validName(name) {
			if _, exists := a.tables[strings.ToLower(name)]; !exists {
				a.tables[strings.ToLower(name)] = &Table{Name: name, Permissions: map[Operation]auth.Permission{}, File: path}
			}
		}
	case "api":
		if validName(base) {
			if _, exists := a.apis[strings.ToLower(base)]; !exists {
				a.apis[strings.ToLower(base)] = &API{Name: base, File: path}
			}
		}
	case "scheduler":
		if validName(base) {
			if _, exists := a.jobs[strings.ToLower(base)]; !exists {
				a.jobs[strings.ToLower(base)] = &Job{Name: base}
			}
		}
	}
}
