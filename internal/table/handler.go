package table

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/odata"
)

// Handler serves /tables/{name}[/{id}] in both protocol dialects.
type Handler struct {
	Service   *Service
	Log       *slog.Logger
	PublicURL string // for Location and Link headers; "" = relative URLs
	// Scripts, when set, runs the app's table scripts (package script); nil serves every operation
	// directly.
	Scripts TableScripts

	consts   sync.Once
	constHdr constHeaders
}

// constHeaders are the constant header values of the handler's answers, built once and shared by
// every response under their canonical keys (net/http never modifies a value slice: Set replaces
// it, Add appends to a full slice, which copies it).
type constHeaders struct {
	json, expires, pragma []string
}

func (h *Handler) headers() *constHeaders {
	h.consts.Do(func() {
		h.constHdr = constHeaders{json: []string{"application/json"}, expires: []string{"0"}, pragma: []string{"no-cache"}}
	})
	return &h.constHdr
}

// TableScripts runs table scripts. The handler hands an operation that has a script over after the
// checks that precede any data access (the table exists, the permission, per-user identity, query
// parameter names, noScript); the script reaches the default operation through ScriptCall.Default.
// The master key with a noScript query parameter bypasses scripts.
type TableScripts interface {
	HasTableScript(table string, op appdir.Operation) bool
	ServeTableScript(w http.ResponseWriter, r *http.Request, c *ScriptCall)
}

// ScriptCall describes the table operation a script takes over.
type ScriptCall struct {
	Table    string // canonical table name
	Op       appdir.Operation
	ID       string // the id from the URL, unescaped ("" without)
	HasID    bool
	Undelete bool // POST /tables/T/{id}: the update script runs with request.undelete
	// IntegerID is set on integer-id tables (scripts see ids as numbers there).
	IntegerID bool
	Caller    *auth.Caller
	// Default runs the operation exactly as it runs without a script, on r (a copy of the request
	// carrying the script's item and query), writing the answer to w.
	Default func(w http.ResponseWriter, r *http.Request)
	// DefaultRead runs a read of the whole table on r (a lookup whose script narrowed the query
	// reads with the id as a filter term).
	DefaultRead func(w http.ResponseWriter, r *http.Request)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Split the escaped path so that an id containing %2F stays one segment, then unescape once.
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(segs) < 2 || segs[1] == "" || len(segs) > 3 || (len(segs) == 3 && segs[2] == "") {
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
		return
	}
	name, err := url.PathUnescape(segs[1])
	if err != nil {
		httpx.Error(w, r, http.StatusBadRequest, "Invalid table name.")
		return
	}
	var rawID string
	hasID := len(segs) == 3
	if hasID {
		if rawID, err = url.PathUnescape(segs[2]); err != nil {
			httpx.Error(w, r, http.StatusBadRequest, "The id in the URL is not validly percent-encoded.")
			return
		}
	}
	op, ok := operation(r.Method, hasID)
	if !ok {
		if hasID {
			httpx.MethodNotAllowed(w, r, "GET", "POST", "PATCH", "DELETE")
		} else {
			httpx.MethodNotAllowed(w, r, "GET", "POST", "PATCH")
		}
		return
	}
	caller := httpx.CallerOf(r)
	s, err := h.Service.Lookup(r.Context(), name)
	if errors.Is(err, ErrNoTable) {
		// Unknown tables answer like tables only the master key may use, so table names are not
		// disclosed to anonymous callers (the original answered 404 before authentication).
		if !caller.IsAdmin() {
			h.unauthorized(w, r)
			return
		}
		h.error(w, r, http.StatusNotFound, fmt.Sprintf("Table '%s' does not exist.", name))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if p := s.Permission(op); !caller.Allows(p) {
		if caller.NeedsMFA(p) {
			h.error(w, r, http.StatusForbidden, auth.MsgMFARequired)
			return
		}
		h.unauthorized(w, r)
		return
	}
	if s.Options.PerUser && !caller.IsAdmin() && caller.UserID() == "" {
		h.unauthorized(w, r)
		return
	}
	query := r.URL.Query()
	if err := checkQueryNames(query); err != nil {
		h.fail(w, r, err)
		return
	}
	noScript := queryHas(query, "noScript")
	if noScript && !caller.IsAdmin() {
		h.unauthorized(w, r)
		return
	}
	if h.Scripts != nil && !(caller.IsAdmin() && noScript) && h.Scripts.HasTableScript(s.Name, op) {
		h.Scripts.ServeTableScript(w, r, &ScriptCall{
			Table: s.Name, Op: op, ID: rawID, HasID: hasID, Undelete: r.Method == http.MethodPost && hasID, Caller: caller,
			IntegerID:   s.IDType == IntegerID,
			Default:     func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, s, caller, rawID, hasID, nil) },
			DefaultRead: func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, s, caller, "", false, nil) },
		})
		return
	}
	h.serve(w, r, s, caller, rawID, hasID, query)
}

// serve runs a table operation after the checks of ServeHTTP. query is r's parsed query string, or
// nil to parse it when needed (a script's default action may run on a request it changed).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, s *Schema, caller *auth.Caller, rawID string, hasID bool, query url.Values) {
	var err error
	rq := &request{h: h, w: w, r: r, s: s, caller: caller, v2: httpx.DialectOf(r) == httpx.V2, rawID: rawID, hasID: hasID, query: query}
	switch {
	case r.Method == http.MethodGet && hasID:
		err = rq.lookup()
	case r.Method == http.MethodGet:
		err = rq.read()
	case r.Method == http.MethodPost && hasID:
		err = rq.undelete()
	case r.Method == http.MethodPost:
		err = rq.insert()
	case r.Method == http.MethodPatch:
		err = rq.update()
	case r.Method == http.MethodDelete:
		err = rq.del()
	}
	if err != nil {
		h.fail(w, r, err)
	}
}

func operation(method string, hasID bool) (appdir.Operation, bool) {
	switch method {
	case http.MethodGet:
		return appdir.Read, true
	case http.MethodPost:
		if hasID {
			return appdir.Update, true // undelete changes an item: it needs the update permission
		}
		return appdir.Insert, true
	case http.MethodPatch:
		return appdir.Update, true
	case http.MethodDelete:
		return appdir.Delete, hasID
	}
	return "", false
}

func queryHas(q url.Values, name string) bool {
	for k := range q {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// checkQueryNames refuses unknown $ and __ parameters (spec §4.2), and validates
// __systemProperties on every verb, as the original's request parser did; other parameters are for
// scripts.
func checkQueryNames(q url.Values) error {
	for k, vs := range q {
		switch k {
		case "$filter", "$orderby", "$top", "$skip", "$select", "$inlinecount":
			continue
		}
		lk := strings.ToLower(k)
		if lk == "__systemproperties" {
			for _, v := range vs {
				if _, err := ParseSystemProperties(v); err != nil {
					return err
				}
			}
			continue
		}
		if lk == "__includedeleted" {
			continue
		}
		if strings.HasPrefix(k, "$") || strings.HasPrefix(k, "__") {
			return inputf("Invalid query parameter name '%s'. Custom query parameter names must not start with $ or __.", k)
		}
	}
	return nil
}

func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request) {
	if httpx.DialectOf(r) == httpx.V2 {
		httpx.Error(w, r, http.StatusUnauthorized, "You must be logged in to use this application")
		return
	}
	httpx.Error(w, r, http.StatusUnauthorized, httpx.MsgUnauthorized)
}

func (h *Handler) error(w http.ResponseWriter, r *http.Request, status int, msg string) {
	httpx.Error(w, r, status, msg)
}

// fail maps domain errors to responses.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ie *InputError
	var se *httpx.StatusError
	switch {
	case errors.As(err, &ie):
		httpx.Error(w, r, http.StatusBadRequest, ie.Msg)
	case errors.Is(err, odata.ErrBadQuery):
		httpx.Error(w, r, http.StatusBadRequest, err.Error())
	case errors.As(err, &se):
		httpx.Error(w, r, se.Status, se.Msg)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// The timeout middleware has answered (or the client left); nothing to write.
	default:
		h.Log.Error("table request failed", "request_id", httpx.InfoOf(r).RequestID, "err", err)
		httpx.Error(w, r, http.StatusInternalServerError, httpx.MsgInternal)
	}
}

// request is one table operation in flight.
type request struct {
	h      *Handler
	w      http.ResponseWriter
	r      *http.Request
	s      *Schema
	caller *auth.Caller
	v2     bool
	rawID  string
	hasID  bool
	query  url.Values // the parsed query string (nil: parse it when needed)
}

func (q *request) ctx() context.Context { return q.r.Context() }

// values is the request's query string, parsed once (read only: copy it to change it).
func (q *request) queryValues() url.Values {
	if q.query == nil {
		q.query = q.r.URL.Query()
	}
	return q.query
}

// restrict is the predicate every statement of a per-user table carries for a non-admin caller.
func (q *request) restrict() odata.Expr {
	if q.ownRowsOnly() {
		return odata.Eq(odata.Ident(UserIDColumn), odata.Str(q.caller.UserID()))
	}
	return nil
}

// ownRowsOnly says whether the caller may reach only its own rows (a per-user table, not an admin).
func (q *request) ownRowsOnly() bool { return q.s.Options.PerUser && !q.caller.IsAdmin() }

// parseID turns an id from the URL or body into the table's id type.
func (q *request) parseID(v any) (any, error) {
	if q.s.IDType == IntegerID {
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case json.Number:
			s = string(x)
		default:
			return nil, inputf("The value specified for 'id' must be a number.")
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, inputf("The value specified for 'id' must be a number.")
		}
		return n, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, inputf("The value specified for property 'id' must be a string")
	}
	if err := ValidateStringID(s); err != nil {
		return nil, err
	}
	return s, nil
}

func (q *request) notFound(id any) error {
	if q.v2 {
		return &httpx.StatusError{Status: http.StatusNotFound, Msg: "The item does not exist"}
	}
	return &httpx.StatusError{Status: http.StatusNotFound, Msg: fmt.Sprintf("An item with id '%v' does not exist.", id)}
}

// sysProps reads v1's __systemProperties.
func (q *request) sysProps() (uint8, error) {
	for k, vs := range q.queryValues() {
		if strings.EqualFold(k, "__systemProperties") && len(vs) > 0 {
			return ParseSystemProperties(vs[0])
		}
	}
	return 0, nil
}

func (q *request) includeDeleted() bool {
	for k, vs := range q.queryValues() {
		if strings.EqualFold(k, "__includeDeleted") && len(vs) > 0 {
			return strings.EqualFold(strings.TrimSpace(vs[0]), "true")
		}
	}
	return false
}

func (q *request) limits() odata.Limits {
	d := q.h.Service.defaults
	l := odata.Limits{PageSize: d.PageSize, MaxTop: d.MaxTop, Cost: d.Cost, MaxResultBytes: d.MaxResultBytes}
	if q.s.Options.PageSize > 0 {
		l.PageSize = q.s.Options.PageSize
	}
	if q.s.Options.MaxTop > 0 {
		l.MaxTop = q.s.Options.MaxTop
	}
	return l
}

func (q *request) read() error {
	// ParseQuery reads only the $ options and __includeDeleted (in any case) of the query string.
	oq, err := odata.ParseQuery(q.queryValues(), q.limits())
	if err != nil {
		return err
	}
	sys, err := q.sysProps()
	if err != nil {
		return err
	}
	v := view{v2: q.v2, sys: sys}
	if len(oq.Select) > 0 && !contains(oq.Select, "*") {
		v.cols = map[string]bool{}
		for _, c := range oq.Select {
			lc := strings.ToLower(c)
			switch {
			case lc == "id":
				v.includeID = true
			case strings.HasPrefix(lc, "__"):
				if bit, err := ParseSystemProperties(lc); err == nil {
					v.sys |= bit
				}
			}
			v.cols[lc] = true
		}
	}
	buf := make([]byte, 0, 4096)
	if oq.InlineCount {
		buf = append(buf, `{"results":`...)
	}
	buf = append(buf, '[')
	buf, n, count, err := q.renderPage(oq, v, buf)
	if err != nil {
		return err
	}
	buf = append(buf, ']')
	if oq.InlineCount {
		buf = append(buf, `,"count":`...)
		buf = strconv.AppendInt(buf, count, 10)
		buf = append(buf, '}')
	}
	if q.v2 && oq.Top > 0 && n == oq.Top {
		q.w.Header().Set("Link", q.nextLink(oq.Skip+n))
	}
	q.write(http.StatusOK, buf)
	return nil
}

// inPlace is a store that renders reads straight from the database (SQL; see inplace.go).
type inPlace interface {
	renderPage(ctx context.Context, s *Schema, r pageRead, v view, b []byte) ([]byte, int, int64, error)
	renderItem(ctx context.Context, s *Schema, id any, restrict odata.Expr, v view, b []byte) ([]byte, string, bool, error)
}

// renderPage appends the rows of a read to b (see SQL.renderPage), in place where the store can.
// Rows are soft-deleted unless the client asked for them, and a per-user table's rows are the caller's.
func (q *request) renderPage(oq *odata.Query, v view, b []byte) ([]byte, int, int64, error) {
	if ip, ok := q.h.Service.st.(inPlace); ok {
		vals := q.queryValues()
		first := func(k string) string {
			if v := vals[k]; len(v) > 0 {
				return v[0] // ParseQuery refused an option given twice
			}
			return ""
		}
		r := pageRead{q: oq, perUser: q.ownRowsOnly(), user: q.caller.UserID()}
		r.key = &planKey{s: q.s, filter: first("$filter"), orderBy: first("$orderby"), sel: first("$select"),
			top: oq.Top, skip: oq.Skip, count: oq.InlineCount, includeDeleted: oq.IncludeDeleted, perUser: r.perUser}
		return ip.renderPage(q.ctx(), q.s, r, v, b)
	}
	if !oq.IncludeDeleted {
		oq.Restrict(notDeleted)
	}
	if r := q.restrict(); r != nil {
		oq.Restrict(r)
	}
	rows, count, err := q.h.Service.st.Query(q.ctx(), q.s, oq)
	if err != nil {
		return nil, 0, 0, err
	}
	for i, row := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRow(b, q.s, row, v)
		if oq.MaxBytes > 0 && int64(len(b)) > oq.MaxBytes {
			return nil, 0, 0, resultTooLarge(oq.MaxBytes) // JSON escaping made the page longer than its values
		}
	}
	return b, len(rows), count, nil
}

// nextLink is the URL of the next page, as an RFC 8288 Link value.
func (q *request) nextLink(skip int) string {
	vals := q.r.URL.Query()
	vals.Set("$skip", strconv.Itoa(skip))
	return "<" + q.h.PublicURL + q.r.URL.EscapedPath() + "?" + vals.Encode() + ">; rel=next"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (q *request) write(status int, body []byte) {
	h, c := q.w.Header(), q.h.headers()
	h["Content-Type"] = c.json
	if q.v2 {
		h["Expires"] = c.expires
		h["Pragma"] = c.pragma
	}
	q.w.WriteHeader(status)
	q.w.Write(body) //nolint:errcheck
}

// writeRow answers one item. Like the original runtime, a v1 answer carries an ETag only when the
// item it returns has __version (the v1 client copies the ETag into __version); v2 always does.
func (q *request) writeRow(status int, row *Row, v view) {
	if q.v2 || v.sys&sysVersion != 0 {
		q.w.Header().Set("ETag", `"`+row.Version+`"`)
	}
	q.write(status, appendRow(nil, q.s, row, v))
}

func (q *request) lookup() error {
	vals := q.queryValues()
	for _, k := range []string{"$orderby", "$inlinecount", "$skip", "$top"} {
		if v := vals.Get(k); v != "" {
			return inputf("Query options $orderby, $inlinecount, $skip and $top cannot be applied to id queries.")
		}
	}
	id, err := q.parseID(q.rawID)
	if err != nil {
		return err
	}
	sys, err := q.sysProps()
	if err != nil {
		return err
	}
	body, version, deleted, err := q.renderItem(id, view{v2: q.v2, sys: sys})
	if errors.Is(err, ErrNotFound) || (err == nil && deleted && !q.includeDeleted()) {
		return q.notFound(id)
	}
	if err != nil {
		return err
	}
	if q.v2 || sys&sysVersion != 0 {
		q.w.Header().Set("ETag", `"`+version+`"`)
		if matchETag(q.r.Header.Get("If-None-Match"), version) {
			q.w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
	q.write(http.StatusOK, body)
	return nil
}

// renderItem reads one item (deleted ones included) and renders it (see SQL.renderItem), in place
// where the store can.
func (q *request) renderItem(id any, v view) ([]byte, string, bool, error) {
	if ip, ok := q.h.Service.st.(inPlace); ok {
		return ip.renderItem(q.ctx(), q.s, id, q.restrict(), v, nil)
	}
	row, err := q.h.Service.st.Get(q.ctx(), q.s, id, q.restrict())
	if err != nil {
		return nil, "", false, err
	}
	return appendRow(nil, q.s, row, v), row.Version, row.Deleted, nil
}

// matchETag reports whether an If-None-Match / If-Match list matches the version ("*" matches any).
func matchETag(header, version string) bool {
	if header == "" {
		return false
	}
	for _, part := range strings.Split(header, ",") {
		p := strings.TrimSpace(part)
		if p == "*" {
			return true
		}
		p = strings.TrimPrefix(p, "W/")
		if unq, ok := unquoteETag(p); ok && unq == version {
			return true
		}
	}
	return false
}

func unquoteETag(p string) (string, bool) {
	if len(p) < 2 || p[0] != '"' || p[len(p)-1] != '"' {
		return "", false
	}
	return strings.ReplaceAll(p[1:len(p)-1], `\"`, `"`), true
}

// ifMatch reads the single version an If-Match header demands ("" for none or "*").
func (q *request) ifMatch() (string, bool, error) {
	hv := strings.TrimSpace(q.r.Header.Get("If-Match"))
	if hv == "" || hv == "*" {
		return "", false, nil
	}
	if strings.Contains(hv, ",") {
		return "", false, inputf("Only single etag 'if-match' headers are supported.")
	}
	v, ok := unquoteETag(hv)
	if !ok {
		return "", false, inputf("Invalid 'if-match' header.")
	}
	if v == "" {
		return "", false, inputf("Invalid 'if-match' header.")
	}
	return v, true, nil
}

// readItem reads the JSON object body.
func (q *request) readItem() (map[string]any, error) {
	b, err := io.ReadAll(q.r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpx.StatusError{Status: http.StatusRequestEntityTooLarge, Msg: httpx.MsgBodyTooLarge}
		}
		return nil, inputf("The request body could not be read.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var item map[string]any
	if err := dec.Decode(&item); err != nil || item == nil || dec.More() {
		return nil, inputf("A single (valid) JSON object is expected.")
	}
	return item, nil
}

// values validates an item's properties against the schema and returns the values to store (by
// lower-cased column name), the names submitted, and columns dynamic schema must add first.
func (q *request) values(item map[string]any, update bool) (map[string]any, map[string]bool, []Column, error) {
	// Bound the work one body can cause before looking at its properties: a table's columns, the
	// system properties and id, a few to spare.
	if maxProps := q.h.Service.defaults.MaxColumns + 16; len(item) > maxProps {
		return nil, nil, nil, inputf("The item has %d properties; at most %d are accepted.", len(item), maxProps)
	}
	vals := map[string]any{}
	submitted := map[string]bool{}
	var add []Column
	for k, v := range item {
		lk := strings.ToLower(k)
		switch {
		case k == "id":
			continue
		case lk == "id":
			return nil, nil, nil, inputf("Item identifiers can only be specified via the 'id' property.")
		case update && (k == "version" || k == "__version"):
			continue // the expected version, read by update()
		case strings.HasPrefix(k, "__"):
			return nil, nil, nil, inputf("The property '%s' can not be set. Properties that begin with a '__' are considered system properties.", k)
		case reservedNames[lk]:
			return nil, nil, nil, inputf("Cannot update item with property '%s' as it is reserved", k)
		}
		if !nameRE.MatchString(k) {
			return nil, nil, nil, inputf("The property name '%s' is invalid. Property names start with a letter or _ and contain only letters, digits and _ (at most 128).", k)
		}
		switch v.(type) {
		case map[string]any:
			return nil, nil, nil, inputf("The value of property '%s' is of type 'object' which is not a supported type.", k)
		case []any:
			return nil, nil, nil, inputf("The value of property '%s' is of type 'array' which is not a supported type.", k)
		}
		if q.s.Options.PerUser && lk == strings.ToLower(UserIDColumn) && !q.caller.IsAdmin() {
			// Owned by the server: the caller's own id is accepted (clients echo whole items), any
			// other value is refused.
			if s, ok := v.(string); !ok || s != q.caller.UserID() {
				return nil, nil, nil, inputf("The property '%s' is set by the server on this table.", k)
			}
			continue
		}
		submitted[lk] = true
		c, ok := q.s.Column(k)
		if !ok {
			if !q.s.Options.DynamicSchema {
				return nil, nil, nil, inputf("Could not save item because it contains a column that is not in the table schema.")
			}
			if v == nil {
				return nil, nil, nil, inputf("Unable to insert a null value for new property '%s'", k)
			}
			t, _ := inferType(v)
			c = Column{Name: k, SQL: physicalColumn(k), Type: t}
			add = append(add, c)
		}
		cv, err := convert(c, k, v)
		if err != nil {
			return nil, nil, nil, err
		}
		vals[lk] = cv
	}
	return vals, submitted, add, nil
}

func (q *request) insert() error {
	item, err := q.readItem()
	if err != nil {
		return err
	}
	row := &Row{}
	switch id := item["id"]; {
	case id == nil:
	case q.s.IDType == IntegerID:
		if n, ok := id.(json.Number); ok && n == "0" {
			break
		}
		if s, ok := id.(string); ok && s == "" {
			break
		}
		return inputf("A value cannot be specified for property 'id'")
	default:
		s, ok := id.(string)
		if !ok {
			return inputf("The value specified for property 'id' must be a string")
		}
		if s != "" {
			if err := ValidateStringID(s); err != nil {
				return err
			}
			row.ID = s
		}
	}
	if row.ID == nil && q.s.IDType == StringID {
		row.ID = newID()
	}
	vals, submitted, add, err := q.values(item, false)
	if err != nil {
		return err
	}
	if q.s.Options.PerUser && !q.caller.IsAdmin() {
		vals[strings.ToLower(UserIDColumn)] = q.caller.UserID()
		submitted[strings.ToLower(UserIDColumn)] = true
	}
	s, err := q.h.Service.ensureColumns(q.ctx(), q.s, add)
	if err != nil {
		return err
	}
	q.s = s
	row.Values = vals
	out, err := q.h.Service.st.Insert(q.ctx(), q.s, row)
	if errors.Is(err, ErrDuplicate) {
		return q.duplicate(row.ID)
	}
	if err != nil {
		return err
	}
	q.w.Header().Set("Location", q.h.PublicURL+q.r.URL.EscapedPath()+"/"+url.PathEscape(fmt.Sprint(out.ID)))
	q.writeRow(http.StatusCreated, out, q.writeView(submitted))
	return nil
}

// duplicate answers an insert whose id exists: 409. v2 clients get the server's item as the body,
// when the caller may see it (never another user's row on a per-user table).
func (q *request) duplicate(id any) error {
	if q.v2 {
		cur, err := q.h.Service.st.Get(q.ctx(), q.s, id, q.restrict())
		if err == nil && !cur.Deleted {
			q.writeRow(http.StatusConflict, cur, view{v2: true})
			return nil
		}
	}
	return &httpx.StatusError{Status: http.StatusConflict, Msg: "Could not insert the item because an item with that id already exists."}
}

// writeView is how insert and update answer: v2 the full row; v1 the submitted fields, the id and the
// requested system properties.
func (q *request) writeView(submitted map[string]bool) view {
	if q.v2 {
		return view{v2: true}
	}
	sys, _ := q.sysProps()
	return view{sys: sys, cols: submitted, includeID: true}
}

func (q *request) update() error {
	item, err := q.readItem()
	if err != nil {
		return err
	}
	var id any
	switch {
	case q.hasID:
		if id, err = q.parseID(q.rawID); err != nil {
			return err
		}
		if bid, ok := item["id"]; ok && bid != nil && fmt.Sprint(bid) != fmt.Sprint(id) {
			if q.v2 {
				return inputf("The item ID and querystring ID did not match")
			}
			return inputf("When specified in the body, 'id' must match the id specified in the url.")
		}
	case q.v2 && item["id"] != nil:
		if id, err = q.parseID(item["id"]); err != nil {
			return err
		}
	default:
		return inputf("An id value must be specified in the URL for an update operation.")
	}
	if _, err := q.sysProps(); err != nil {
		return err
	}
	version, fromHeader, err := q.ifMatch()
	if err != nil {
		return err
	}
	if !fromHeader {
		for _, k := range []string{"version", "__version"} {
			if v, ok := item[k].(string); ok && v != "" {
				version = v
			}
		}
	}
	vals, submitted, add, err := q.values(item, true)
	if err != nil {
		return err
	}
	s, err := q.h.Service.ensureColumns(q.ctx(), q.s, add)
	if err != nil {
		return err
	}
	q.s = s
	out, err := q.h.Service.st.Update(q.ctx(), q.s, id, vals, version, q.restrict())
	if err != nil {
		return q.writeFailure(err, id, fromHeader)
	}
	q.writeRow(http.StatusOK, out, q.writeView(submitted))
	return nil
}

// writeFailure answers a failed update, delete or undelete: 404, or the version conflict with the
// server's item as the body (412 after If-Match or in v1, 409 for a v2 body version).
func (q *request) writeFailure(err error, id any, fromHeader bool) error {
	var ce *ConflictError
	switch {
	case errors.Is(err, ErrNotFound):
		return q.notFound(id)
	case errors.As(err, &ce):
		status := http.StatusPreconditionFailed
		if q.v2 && !fromHeader {
			status = http.StatusConflict
		}
		q.writeRow(status, ce.Current, view{v2: q.v2, sys: sysAll})
		return nil
	}
	return err
}

// target reads the id from the URL and the version from If-Match, for delete and undelete.
func (q *request) target() (id any, version string, fromHeader bool, err error) {
	if id, err = q.parseID(q.rawID); err != nil {
		return nil, "", false, err
	}
	version, fromHeader, err = q.ifMatch()
	return id, version, fromHeader, err
}

func (q *request) del() error {
	id, version, fromHeader, err := q.target()
	if err != nil {
		return err
	}
	out, err := q.h.Service.st.Delete(q.ctx(), q.s, id, version, q.restrict())
	if err != nil {
		return q.writeFailure(err, id, fromHeader)
	}
	if q.v2 {
		q.writeRow(http.StatusOK, out, view{v2: true})
		return nil
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (q *request) undelete() error {
	if !q.s.Options.SoftDelete {
		return inputf("The undelete operation is not supported on this table.")
	}
	b, err := io.ReadAll(q.r.Body)
	if err != nil {
		return inputf("The request body could not be read.")
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' && string(t) != "{}" {
		return inputf("An undelete request must not have content.")
	}
	id, version, fromHeader, err := q.target()
	if err != nil {
		return err
	}
	sys, err := q.sysProps()
	if err != nil {
		return err
	}
	out, err := q.h.Service.st.Undelete(q.ctx(), q.s, id, version, q.restrict())
	if err != nil {
		return q.writeFailure(err, id, fromHeader)
	}
	if q.v2 {
		q.writeRow(http.StatusCreated, out, view{v2: true})
		return nil
	}
	q.writeRow(http.StatusOK, out, view{sys: sys | sysDeleted, cols: map[string]bool{}, includeID: true})
	return nil
}
