package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/jsonx"
)

// tableCall is one row operation run through the /tables handler, exactly as the admin API runs it
// (an administrator caller, the Mobile Apps v2 dialect): the same permission checks, validation,
// scripts, concurrency, soft delete and store as a client's request with the master key.
type tableCall struct {
	Method  string
	Table   string
	ID      string // "" for the collection
	Query   url.Values
	Body    any
	IfMatch string // a version, sent as If-Match: "version"
}

// tableResult is the handler's answer.
type tableResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// Error is the {"error": "..."} message of a failed call.
func (t tableResult) Error() string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(t.Body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return http.StatusText(t.Status)
}

// Item decodes a single item.
func (t tableResult) Item() (map[string]any, error) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(t.Body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("console: decoding an item: %w", err)
	}
	return m, nil
}

// bufferWriter is an http.ResponseWriter that keeps the answer in memory.
type bufferWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.h }
func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}

// callTable runs c on the /tables handler within the console request's context (request id,
// deadline, client).
func (c *Console) callTable(ctx context.Context, tc tableCall) (tableResult, error) {
	path := "/tables/" + url.PathEscape(tc.Table)
	if tc.ID != "" {
		path += "/" + url.PathEscape(tc.ID)
	}
	u := &url.URL{Path: path, RawPath: path}
	if p, err := url.PathUnescape(path); err == nil {
		u.Path = p
	}
	if tc.Query != nil {
		u.RawQuery = tc.Query.Encode()
	}
	var body []byte
	if tc.Body != nil {
		b, err := json.Marshal(tc.Body)
		if err != nil {
			return tableResult{}, err
		}
		body = b
	}
	ctx = httpx.WithCaller(httpx.WithDialect(ctx, httpx.V2), &auth.Caller{Level: auth.AdminLevel})
	req, err := http.NewRequestWithContext(ctx, tc.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return tableResult{}, err
	}
	req.URL = u
	req.RequestURI = u.RequestURI()
	req.Header.Set("ZUMO-API-VERSION", "2.0.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tc.IfMatch != "" {
		req.Header.Set("If-Match", strconv.Quote(tc.IfMatch))
	}
	w := &bufferWriter{h: http.Header{}}
	c.o.Rows.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return tableResult{Status: w.status, Header: w.h, Body: w.buf.Bytes()}, nil
}

// decodeItems reads a JSON array of objects (or {"results": [...], "count": n}) with numbers kept as
// json.Number.
func decodeItems(b []byte) ([]map[string]any, int64, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if len(b) > 0 && b[0] == '{' {
		var page struct {
			Results []map[string]any `json:"results"`
			Count   int64            `json:"count"`
		}
		if err := d.Decode(&page); err != nil {
			return nil, 0, err
		}
		return page.Results, page.Count, nil
	}
	var items []map[string]any
	if err := d.Decode(&items); err != nil {
		return nil, 0, err
	}
	return items, int64(len(items)), nil
}

// parseImport reads an import file: a JSON array of objects (strict JSON, as every client body) or CSV
// with a header row (empty cells are left out, so the column keeps its default).
func parseImport(data []byte, format string) ([]map[string]any, error) {
	trimmed := bytes.TrimSpace(data)
	if format == "" {
		format = "csv"
		if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') {
			format = "json"
		}
	}
	switch strings.ToLower(format) {
	case "json":
		var items []map[string]any
		if err := jsonx.Unmarshal(trimmed, &items); err != nil {
			return nil, fmt.Errorf("the JSON file is not an array of objects: %w", err)
		}
		return items, nil
	case "csv":
		return parseCSV(data)
	}
	return nil, fmt.Errorf("unknown format %q (csv or json)", format)
}
