package console

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/table"
)

// Page sizes of the data browser.
var pageSizes = []int{25, 50, 100, 500}

const (
	defaultPageSize = 50
	exportChunk     = 1000
	maxExportRows   = 1_000_000
	maxImportRows   = 10_000
	cellPreview     = 120
)

type tableRow struct {
	Name       string
	Rows       int64
	CountError string
	Info       table.Info
}

// data routes /data, /data/{table}, /data/{table}/new, /data/{table}/row/{id}[/delete|/undelete],
// /data/{table}/export and /data/{table}/import.
func (c *Console) data(w http.ResponseWriter, r *http.Request, rest []string) {
	if len(rest) == 0 || rest[0] == "" {
		c.dataTables(w, r)
		return
	}
	name, err := url.PathUnescape(rest[0])
	if err != nil {
		c.notFound(w, r)
		return
	}
	s, err := c.o.Tables.Lookup(r.Context(), name)
	if errors.Is(err, table.ErrNoTable) {
		c.notFound(w, r)
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	switch {
	case len(rest) == 1:
		c.browse(w, r, s)
	case len(rest) == 2 && rest[1] == "new":
		c.editRow(w, r, s, "")
	case len(rest) == 2 && rest[1] == "export":
		c.export(w, r, s)
	case len(rest) == 2 && rest[1] == "import" && r.Method == http.MethodPost:
		c.importRows(w, r, s)
	case len(rest) >= 3 && rest[1] == "row":
		id, err := url.PathUnescape(rest[2])
		if err != nil || id == "" {
			c.notFound(w, r)
			return
		}
		switch {
		case len(rest) == 3:
			c.editRow(w, r, s, id)
		case len(rest) == 4 && r.Method == http.MethodPost && (rest[3] == "delete" || rest[3] == "undelete"):
			c.deleteRow(w, r, s, id, rest[3] == "undelete")
		default:
			c.notFound(w, r)
		}
	default:
		c.notFound(w, r)
	}
}

func (c *Console) dataTables(w http.ResponseWriter, r *http.Request) {
	list, err := c.o.Tables.List(r.Context())
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	out := make([]tableRow, 0, len(list))
	for _, s := range list {
		tr := tableRow{Name: s.Name, Info: table.Describe(s)}
		res, err := c.callTable(r.Context(), tableCall{Method: http.MethodGet, Table: s.Name,
			Query: url.Values{"$top": {"1"}, "$select": {"id"}, "$inlinecount": {"allpages"}}})
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if res.Status != http.StatusOK {
			tr.CountError = res.Error()
		} else if _, n, err := decodeItems(res.Body); err == nil {
			tr.Rows = n
		}
		out = append(out, tr)
	}
	c.render(w, r, http.StatusOK, "data", view{Title: "Data", Nav: "data", Problem: r.URL.Query().Get("problem"), Data: out})
}

// browseQuery is the data browser's state, all in the URL (so a page can be bookmarked and shared).
type browseQuery struct {
	Filter  string
	Order   string
	Desc    bool
	Page    int
	Size    int
	Deleted bool
}

func readBrowse(q url.Values) browseQuery {
	b := browseQuery{Filter: q.Get("filter"), Order: q.Get("order"), Desc: q.Get("dir") == "desc", Deleted: q.Get("deleted") == "1", Size: defaultPageSize}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 && n < 1_000_000 {
		b.Page = n
	}
	if n, err := strconv.Atoi(q.Get("size")); err == nil {
		for _, s := range pageSizes {
			if s == n {
				b.Size = n
			}
		}
	}
	if len(b.Filter) > 2000 {
		b.Filter = b.Filter[:2000]
	}
	return b
}

// URL is the browser's URL with some fields changed.
func (b browseQuery) url(base string, change func(*browseQuery)) string {
	x := b
	if change != nil {
		change(&x)
	}
	v := url.Values{}
	if x.Filter != "" {
		v.Set("filter", x.Filter)
	}
	if x.Order != "" {
		v.Set("order", x.Order)
		if x.Desc {
			v.Set("dir", "desc")
		}
	}
	if x.Page > 0 {
		v.Set("page", strconv.Itoa(x.Page))
	}
	if x.Size != defaultPageSize {
		v.Set("size", strconv.Itoa(x.Size))
	}
	if x.Deleted {
		v.Set("deleted", "1")
	}
	if len(v) == 0 {
		return base
	}
	return base + "?" + v.Encode()
}

// odata is the /tables query of the browser state.
func (b browseQuery) odata(top, skip int) url.Values {
	q := url.Values{"$top": {strconv.Itoa(top)}, "$skip": {strconv.Itoa(skip)}, "$inlinecount": {"allpages"}}
	if b.Filter != "" {
		q.Set("$filter", b.Filter)
	}
	order := "updatedAt desc"
	if b.Order != "" {
		order = b.Order
		if b.Desc {
			order += " desc"
		}
	}
	q.Set("$orderby", order+", id")
	if b.Deleted {
		q.Set("__includeDeleted", "true")
	}
	return q
}

type column struct {
	Name  string
	Label string
	Type  string
	Sort  string // URL sorting by this column (toggling the direction)
	Dir   string // "ascending"/"descending" when sorted by it
}

type cell struct {
	Text  string
	Full  string // the whole value when Text is cut
	Null  bool
	Class string
}

type browseRow struct {
	ID      string
	Deleted bool
	Version string
	Cells   []cell
}

type filterError struct {
	Msg    string
	Pos    int // -1 unknown
	Before string
	At     string
	After  string
}

type browseData struct {
	Table      table.Info
	SoftDel    bool
	Q          browseQuery
	Columns    []column
	Rows       []browseRow
	Count      int64
	From       int
	To         int
	Prev       string
	Next       string
	Sizes      []int
	FilterEr   *filterError
	Self       string
	ExportCSV  string
	ExportJSON string
	Problem    string
}

// filterProblem turns a $filter error into a message with its position marked.
func filterProblem(filter, msg string, err error) *filterError {
	fe := &filterError{Msg: msg, Pos: -1}
	var se *odata.SyntaxError
	var ue *odata.UnknownColumnError
	var te *odata.TypeError
	switch {
	case errors.As(err, &se):
		fe.Pos = se.Pos
	case errors.As(err, &ue):
		fe.Pos = ue.Pos
	case errors.As(err, &te):
		fe.Pos = te.Pos
	}
	rs := []rune(filter)
	if fe.Pos >= 0 && fe.Pos <= len(rs) {
		fe.Before = string(rs[:fe.Pos])
		if fe.Pos < len(rs) {
			fe.At, fe.After = string(rs[fe.Pos:fe.Pos+1]), string(rs[fe.Pos+1:])
		} else {
			fe.At = " "
		}
	}
	return fe
}

// columnsOf lists the browser's columns: id, the user columns, then the system columns.
func columnsOf(s *table.Schema) []column {
	cols := []column{{Name: "id", Label: "id", Type: string(s.IDType)}}
	for _, col := range s.Columns() {
		cols = append(cols, column{Name: col.Name, Label: col.Name, Type: string(col.Type)})
	}
	cols = append(cols, column{Name: "updatedAt", Label: "updatedAt", Type: "date"}, column{Name: "createdAt", Label: "createdAt", Type: "date"},
		column{Name: "version", Label: "version", Type: "string"})
	return cols
}

// display renders a value for a cell (strings cut to a preview; the whole value in the edit form).
func display(v any) cell {
	switch x := v.(type) {
	case nil:
		return cell{Text: "null", Null: true, Class: "null"}
	case string:
		if r := []rune(x); len(r) > cellPreview {
			return cell{Text: string(r[:cellPreview]) + "…", Full: x}
		}
		return cell{Text: x}
	case json.Number:
		return cell{Text: x.String(), Class: "num"}
	case bool:
		return cell{Text: strconv.FormatBool(x), Class: "bool"}
	default:
		b, _ := json.Marshal(x)
		return cell{Text: string(b)}
	}
}

func idString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func (c *Console) browse(w http.ResponseWriter, r *http.Request, s *table.Schema) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.notFound(w, r)
		return
	}
	b := readBrowse(r.URL.Query())
	base := c.o.Path + "/data/" + url.PathEscape(s.Name)
	d := browseData{Table: table.Describe(s), SoftDel: s.Options.SoftDelete, Q: b, Sizes: pageSizes, Self: base}
	exp := b.url(base+"/export", func(x *browseQuery) { x.Page = 0; x.Size = defaultPageSize })
	sep := "?"
	if strings.Contains(exp, "?") {
		sep = "&"
	}
	d.ExportCSV, d.ExportJSON = exp+sep+"format=csv", exp+sep+"format=json"
	if b.Order != "" {
		valid := b.Order == "id" || b.Order == "updatedAt" || b.Order == "createdAt" || b.Order == "version"
		if _, ok := s.Column(b.Order); ok {
			valid = true
		}
		if !valid {
			b.Order = ""
			d.Q = b
		}
	}
	for _, col := range columnsOf(s) {
		col.Sort = b.url(base, func(x *browseQuery) {
			x.Desc = x.Order == col.Name && !x.Desc
			x.Order, x.Page = col.Name, 0
		})
		if b.Order == col.Name {
			col.Dir = "ascending"
			if b.Desc {
				col.Dir = "descending"
			}
		}
		d.Columns = append(d.Columns, col)
	}
	// Syntax errors first, from the parser itself, for their position.
	if b.Filter != "" {
		if _, err := odata.ParseQuery(url.Values{"$filter": {b.Filter}}, odata.Limits{}); err != nil {
			d.FilterEr = filterProblem(b.Filter, err.Error(), err)
			c.render(w, r, http.StatusBadRequest, "browse", view{Title: s.Name, Nav: "data", Data: d})
			return
		}
	}
	res, err := c.callTable(r.Context(), tableCall{Method: http.MethodGet, Table: s.Name, Query: b.odata(b.Size, b.Page*b.Size)})
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	if res.Status != http.StatusOK {
		msg := res.Error()
		if b.Filter != "" && res.Status == http.StatusBadRequest {
			d.FilterEr = filterProblem(b.Filter, msg, positionError(msg))
		} else {
			d.Problem = msg
		}
		c.render(w, r, res.Status, "browse", view{Title: s.Name, Nav: "data", Data: d})
		return
	}
	items, count, err := decodeItems(res.Body)
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	d.Count = count
	for _, it := range items {
		row := browseRow{ID: idString(it["id"]), Version: idString(it["version"])}
		row.Deleted, _ = it["deleted"].(bool)
		for _, col := range d.Columns {
			v, ok := it[col.Name]
			if !ok {
				v = lookupCI(it, col.Name)
			}
			row.Cells = append(row.Cells, display(v))
		}
		d.Rows = append(d.Rows, row)
	}
	d.From = b.Page*b.Size + 1
	d.To = b.Page*b.Size + len(items)
	if len(items) == 0 {
		d.From = 0
	}
	if b.Page > 0 {
		d.Prev = b.url(base, func(x *browseQuery) { x.Page-- })
	}
	if int64(d.To) < count {
		d.Next = b.url(base, func(x *browseQuery) { x.Page++ })
	}
	c.render(w, r, http.StatusOK, "browse", view{Title: s.Name, Nav: "data", Problem: r.URL.Query().Get("problem"), Data: d})
}

func lookupCI(m map[string]any, name string) any {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// positionError recovers the position of an error the /tables handler answered ("… at position N").
func positionError(msg string) error {
	i := strings.LastIndex(msg, "at position ")
	if i < 0 {
		return nil
	}
	rest := msg[i+len("at position "):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.Atoi(rest[:j])
	if err != nil {
		return nil
	}
	return &odata.SyntaxError{Option: "$filter", Pos: n, Msg: msg}
}

type field struct {
	Name  string
	Type  string
	Value string
	Null  bool
	Long  bool
}

type editData struct {
	Table    table.Info
	SoftDel  bool
	IDType   string
	ID       string
	New      bool
	Version  string
	Deleted  bool
	Fields   []field
	Conflict *conflictData
	Self     string
	Back     string
}

type conflictData struct {
	Mine    []field
	Current []field
	Version string
}

// valueText is a value as an edit field shows it.
func valueText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, false
	case json.Number:
		return x.String(), false
	case bool:
		return strconv.FormatBool(x), false
	}
	b, _ := json.Marshal(v)
	return string(b), false
}

func fieldsOf(s *table.Schema, item map[string]any) []field {
	var out []field
	for _, col := range s.Columns() {
		f := field{Name: col.Name, Type: string(col.Type)}
		if item != nil {
			v, ok := item[col.Name]
			if !ok {
				v = lookupCI(item, col.Name)
			}
			f.Value, f.Null = valueText(v)
		} else {
			f.Null = true
		}
		f.Long = col.Type == table.String && (len(f.Value) > 80 || strings.Contains(f.Value, "\n"))
		out = append(out, f)
	}
	return out
}

// formValue converts a typed text (form field, CSV cell) to the column's JSON value.
func formValue(t table.ColumnType, s string) (any, error) {
	switch t {
	case table.Number:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case table.Boolean:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1", "yes":
			return true, nil
		case "false", "0", "no":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not true or false", s)
	case table.Date:
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a date such as 2026-01-02T15:04:05Z", s)
		}
		return t.UTC().Format("2006-01-02T15:04:05.000Z"), nil
	}
	return s, nil
}

// formItem reads the edit form: every column, null when its "null" box is ticked.
func formItem(s *table.Schema, r *http.Request) (map[string]any, []field, error) {
	item := map[string]any{}
	var fields []field
	var problems []string
	for _, col := range s.Columns() {
		v := r.PostFormValue("f." + col.Name)
		null := r.PostFormValue("null."+col.Name) != ""
		fields = append(fields, field{Name: col.Name, Type: string(col.Type), Value: v, Null: null,
			Long: col.Type == table.String && (len(v) > 80 || strings.Contains(v, "\n"))})
		if null {
			item[col.Name] = nil
			continue
		}
		val, err := formValue(col.Type, v)
		if err != nil {
			problems = append(problems, col.Name+": "+err.Error())
			continue
		}
		item[col.Name] = val
	}
	if len(problems) > 0 {
		return nil, fields, errors.New(strings.Join(problems, "; "))
	}
	return item, fields, nil
}

// editRow shows and saves the insert form (id "") or a row's edit form. A save carries the version
// the form was loaded with: when the row changed meanwhile, the page shows the conflict with both
// versions and lets the administrator overwrite with theirs or take the current one.
func (c *Console) editRow(w http.ResponseWriter, r *http.Request, s *table.Schema, id string) {
	ctx := r.Context()
	base := c.o.Path + "/data/" + url.PathEscape(s.Name)
	d := editData{Table: table.Describe(s), SoftDel: s.Options.SoftDelete, IDType: string(s.IDType), ID: id, New: id == "", Back: base}
	d.Self = base + "/new"
	if id != "" {
		d.Self = base + "/row/" + url.PathEscape(id)
	}
	title := "New row in " + s.Name
	if id != "" {
		title = s.Name + " / " + id
	}
	load := func() (map[string]any, bool) {
		res, err := c.callTable(ctx, tableCall{Method: http.MethodGet, Table: s.Name, ID: id, Query: url.Values{"__includeDeleted": {"true"}}})
		if err != nil {
			c.unavailable(w, r, err)
			return nil, false
		}
		if res.Status == http.StatusNotFound {
			c.notFound(w, r)
			return nil, false
		}
		if res.Status != http.StatusOK {
			c.render(w, r, res.Status, "error", view{Title: title, Problem: res.Error()})
			return nil, false
		}
		it, err := res.Item()
		if err != nil {
			c.unavailable(w, r, err)
			return nil, false
		}
		return it, true
	}
	if r.Method != http.MethodPost {
		if id == "" {
			d.Fields = fieldsOf(s, nil)
		} else {
			it, ok := load()
			if !ok {
				return
			}
			d.Version = idString(it["version"])
			d.Deleted, _ = it["deleted"].(bool)
			d.Fields = fieldsOf(s, it)
		}
		c.render(w, r, http.StatusOK, "row", view{Title: title, Nav: "data", Data: d})
		return
	}
	item, fields, err := formItem(s, r)
	d.Fields, d.Version = fields, r.PostFormValue("version")
	if err != nil {
		c.render(w, r, http.StatusBadRequest, "row", view{Title: title, Nav: "data", Problem: err.Error(), Data: d})
		return
	}
	if id == "" {
		if nid := strings.TrimSpace(r.PostFormValue("id")); nid != "" && s.IDType == table.StringID {
			item["id"] = nid
		}
		res, err := c.callTable(ctx, tableCall{Method: http.MethodPost, Table: s.Name, Body: item})
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if res.Status != http.StatusCreated && res.Status != http.StatusOK {
			c.render(w, r, res.Status, "row", view{Title: title, Nav: "data", Problem: res.Error(), Data: d})
			return
		}
		created, err := res.Item()
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		nid := idString(created["id"])
		c.record(r, "row.insert", s.Name+"/"+nid, nil, created)
		c.redirect(w, r, "/data/"+url.PathEscape(s.Name), "Row "+nid+" inserted.")
		return
	}
	before, ok := load()
	if !ok {
		return
	}
	version := d.Version
	if r.PostFormValue("overwrite") != "" {
		version = r.PostFormValue("current")
	}
	res, err := c.callTable(ctx, tableCall{Method: http.MethodPatch, Table: s.Name, ID: id, Body: item, IfMatch: version})
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	switch {
	case res.Status == http.StatusOK:
		after, _ := res.Item()
		c.record(r, "row.update", s.Name+"/"+id, before, after)
		c.redirect(w, r, "/data/"+url.PathEscape(s.Name)+"/row/"+url.PathEscape(id), "Row saved.")
	case res.Status == http.StatusPreconditionFailed || res.Status == http.StatusConflict:
		cur, err := res.Item()
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		d.Conflict = &conflictData{Mine: fields, Current: fieldsOf(s, cur), Version: idString(cur["version"])}
		c.render(w, r, http.StatusConflict, "row", view{Title: title, Nav: "data",
			Problem: "Someone changed this row since you opened it. Compare the two versions below.", Data: d})
	default:
		c.render(w, r, res.Status, "row", view{Title: title, Nav: "data", Problem: res.Error(), Data: d})
	}
}

func (c *Console) deleteRow(w http.ResponseWriter, r *http.Request, s *table.Schema, id string, undelete bool) {
	method, action, done := http.MethodDelete, "row.delete", "deleted"
	if undelete {
		method, action, done = http.MethodPost, "row.undelete", "restored"
	}
	before, _ := c.callTable(r.Context(), tableCall{Method: http.MethodGet, Table: s.Name, ID: id, Query: url.Values{"__includeDeleted": {"true"}}})
	res, err := c.callTable(r.Context(), tableCall{Method: method, Table: s.Name, ID: id, IfMatch: r.PostFormValue("version")})
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	back := "/data/" + url.PathEscape(s.Name)
	if res.Status >= 300 {
		if res.Status == http.StatusPreconditionFailed {
			c.redirectProblem(w, r, back, "Row "+id+" changed since the page was loaded; reload and try again.")
			return
		}
		c.redirectProblem(w, r, back, res.Error())
		return
	}
	var b any
	if before.Status == http.StatusOK {
		b, _ = before.Item()
	}
	var after any
	if len(res.Body) > 0 {
		after, _ = res.Item()
	}
	c.record(r, action, s.Name+"/"+id, b, after)
	c.redirect(w, r, back, "Row "+id+" "+done+".")
}

// export streams the filtered rows (every page) as CSV or JSON.
func (c *Console) export(w http.ResponseWriter, r *http.Request, s *table.Schema) {
	b := readBrowse(r.URL.Query())
	format := r.URL.Query().Get("format")
	if format != "json" {
		format = "csv"
	}
	cols := columnsOf(s)
	cols = append(cols, column{Name: "deleted"})
	first, err := c.callTable(r.Context(), tableCall{Method: http.MethodGet, Table: s.Name, Query: b.odata(exportChunk, 0)})
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	if first.Status != http.StatusOK {
		c.redirectProblem(w, r, "/data/"+url.PathEscape(s.Name), first.Error())
		return
	}
	name := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '/' {
			return '_'
		}
		return r
	}, s.Name)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+"."+format+`"`)
	if format == "json" {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	}
	var cw *csv.Writer
	if format == "csv" {
		cw = csv.NewWriter(w)
		head := make([]string, len(cols))
		for i, col := range cols {
			head[i] = col.Name
		}
		_ = cw.Write(head)
	} else {
		_, _ = io.WriteString(w, "[")
	}
	res, n := first, 0
	for skip := 0; ; skip += exportChunk {
		if skip > 0 {
			if res, err = c.callTable(r.Context(), tableCall{Method: http.MethodGet, Table: s.Name, Query: b.odata(exportChunk, skip)}); err != nil || res.Status != http.StatusOK {
				c.o.Log.Warn("console: export stopped", "table", s.Name, "rows", n)
				break
			}
		}
		items, _, err := decodeItems(res.Body)
		if err != nil {
			break
		}
		for _, it := range items {
			if cw != nil {
				rec := make([]string, len(cols))
				for i, col := range cols {
					v, _ := valueText(lookupCI(it, col.Name))
					rec[i] = csvSafe(v)
				}
				_ = cw.Write(rec)
			} else {
				if n > 0 {
					_, _ = io.WriteString(w, ",\n")
				}
				bs, _ := json.Marshal(it)
				_, _ = w.Write(bs)
			}
			n++
		}
		if len(items) < exportChunk || n >= maxExportRows {
			break
		}
	}
	if cw != nil {
		cw.Flush()
	} else {
		_, _ = io.WriteString(w, "]\n")
	}
	c.record(r, "rows.export", s.Name, nil, map[string]any{"rows": n, "format": format, "filter": b.Filter})
}

// csvSafe defuses spreadsheet formulas (a cell starting with = + - @ or a tab/CR is prefixed with ').
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return "'" + v
		}
	}
	return v
}

// parseCSV reads rows with a header; empty cells are left out.
func parseCSV(data []byte) ([]map[string]any, error) {
	cr := csv.NewReader(strings.NewReader(string(data)))
	cr.FieldsPerRecord = 0
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("the CSV file has no header row: %w", err)
	}
	var out []map[string]any
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("CSV: %w", err)
		}
		m := map[string]any{}
		for i, h := range head {
			if rec[i] != "" {
				m[h] = rec[i]
			}
		}
		out = append(out, m)
		if len(out) > maxImportRows {
			return nil, fmt.Errorf("more than %d rows: split the file", maxImportRows)
		}
	}
	return out, nil
}

// upload reads the posted form's "file" (the console parsed the multipart form, bounded by
// console.max_upload) and its name. problem is what to tell the administrator when it is missing or
// larger than MaxUpload.
func (c *Console) upload(r *http.Request) (data []byte, filename, problem string) {
	f, hdr, err := r.FormFile("file")
	if err != nil {
		return nil, "", "Choose a CSV or JSON file to import."
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, c.o.MaxUpload+1))
	if err != nil || int64(len(data)) > c.o.MaxUpload {
		return nil, "", "The file is too large."
	}
	return data, clip(hdr.Filename), ""
}

// importRows inserts the rows of an uploaded CSV or JSON file (bounded by console.max_upload), each
// through the /tables handler; CSV cells are converted to the columns' types.
func (c *Console) importRows(w http.ResponseWriter, r *http.Request, s *table.Schema) {
	back := "/data/" + url.PathEscape(s.Name)
	data, filename, problem := c.upload(r)
	if problem != "" {
		c.redirectProblem(w, r, back, problem)
		return
	}
	format := ""
	if strings.HasSuffix(strings.ToLower(filename), ".json") {
		format = "json"
	}
	items, err := parseImport(data, format)
	if err != nil {
		c.redirectProblem(w, r, back, err.Error())
		return
	}
	if len(items) > maxImportRows {
		c.redirectProblem(w, r, back, fmt.Sprintf("More than %d rows: split the file.", maxImportRows))
		return
	}
	var ok int
	var failures []string
	for i, it := range items {
		for k, v := range it {
			str, isStr := v.(string)
			if col, found := s.Column(k); found && isStr && col.Type != table.String {
				cv, err := formValue(col.Type, str)
				if err != nil {
					failures = append(failures, fmt.Sprintf("row %d: %s: %v", i+1, k, err))
					it = nil
					break
				}
				it[k] = cv
			}
		}
		if it == nil {
			continue
		}
		res, err := c.callTable(r.Context(), tableCall{Method: http.MethodPost, Table: s.Name, Body: it})
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if res.Status >= 300 {
			failures = append(failures, fmt.Sprintf("row %d: %s", i+1, res.Error()))
			continue
		}
		ok++
	}
	sort.Strings(failures)
	c.record(r, "rows.import", s.Name, nil, map[string]any{"inserted": ok, "failed": len(failures), "file": filename})
	if len(failures) > 0 {
		msg := fmt.Sprintf("%d rows imported, %d failed: %s", ok, len(failures), strings.Join(failures[:min(3, len(failures))], "; "))
		c.redirectProblem(w, r, back, msg)
		return
	}
	c.redirect(w, r, back, fmt.Sprintf("%d rows imported.", ok))
}
