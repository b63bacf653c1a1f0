package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/jsonx"
)

// Protocol is the source's dialect.
type Protocol string

// Dialects of a source.
const (
	V1 Protocol = "v1" // Mobile Services: __createdAt, __updatedAt, __version, __deleted
	V2 Protocol = "v2" // Mobile Apps (ZUMO-API-VERSION 2.0.0): createdAt, updatedAt, version, deleted
)

// sysNames are the system property names of a dialect: created, updated, version, deleted.
func (p Protocol) sysNames() [4]string {
	if p == V2 {
		return [4]string{"createdAt", "updatedAt", "version", "deleted"}
	}
	return [4]string{"__createdAt", "__updatedAt", "__version", "__deleted"}
}

// source talks to the backend being imported, over its own REST API.
type source struct {
	base      *url.URL
	masterKey string
	client    *http.Client
	maxBody   int64
	proto     Protocol
}

// errRedirect refuses redirects: the master key header would follow them to wherever they point
// (Go's client drops Authorization and cookies on a cross-host redirect, but not X-ZUMO-MASTER).
var errRedirect = errors.New("the source answered with a redirect; give its final URL with --from")

// parseSource checks the source URL: https, or http only to a loopback address (or when allowHTTP),
// since the master key travels in a header.
func parseSource(raw string, allowHTTP bool) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("--from must be an http(s) URL such as https://myapp.azure-mobile.net, not %q", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--from must be the service's base URL, without user info, query or fragment")
	}
	if u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("--from %s: plain http would send the master key in clear; use https (or --allow-http on a network you trust)", u.Redacted())
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// key is the source's identity in the import state: scheme, host and path.
func (s *source) key() string { return s.base.Scheme + "://" + s.base.Host + s.base.Path }

// httpError is a non-2xx answer.
type httpError struct {
	Status int
	Msg    string
}

func (e *httpError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Msg)
}

// get reads path?query from the source as the given dialect and decodes its JSON body strictly
// (numbers kept as json.Number).
func (s *source) get(ctx context.Context, path string, q url.Values, proto Protocol) (any, http.Header, error) {
	u := *s.base
	u.Path = s.base.Path + path
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if proto == V2 {
		req.Header.Set("ZUMO-API-VERSION", "2.0.0")
	}
	if s.masterKey != "" {
		req.Header.Set("X-ZUMO-MASTER", s.masterKey)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, errRedirect) {
			return nil, nil, errRedirect
		}
		// url.Error carries the URL (no secrets: the key is in a header) and the cause.
		return nil, nil, fmt.Errorf("GET %s: %w", path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	if int64(len(body)) > s.maxBody {
		return nil, nil, fmt.Errorf("GET %s: the answer is larger than %d bytes; lower --page-size", path, s.maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, resp.Header, &httpError{Status: resp.StatusCode, Msg: errorMessage(body)}
	}
	var v any
	if err := jsonx.UnmarshalUseNumber(body, &v); err != nil {
		return nil, nil, fmt.Errorf("GET %s: the answer is not valid JSON: %w", path, err)
	}
	return v, resp.Header, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorMessage extracts {"error": "..."} (v1 and v2) or a short, printable prefix of the body.
func errorMessage(body []byte) string {
	var e struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		if s, ok := e.Error.(string); ok {
			return clip(s)
		}
	}
	body = bytes.TrimSpace(body)
	if !utf8.Valid(body) {
		return ""
	}
	return clip(string(body))
}

func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// newClient is the HTTP client for a source: TLS verified (Go's default), no redirects, a timeout
// per request.
func newClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = timeout
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errRedirect
		},
	}
}

// tableInfo is what a Gatehouse source's /admin/tables says about a table.
type tableInfo struct {
	Name          string            `json:"name"`
	IDType        string            `json:"idType"`
	SoftDelete    bool              `json:"softDelete"`
	PerUser       bool              `json:"perUser"`
	DynamicSchema bool              `json:"dynamicSchema"`
	Permissions   map[string]string `json:"permissions"`
	Columns       map[string]string `json:"columns"`
}

// listTables asks for the source's table list (Gatehouse's /admin/tables). ok is false when the source
// has no such listing (Mobile Services and Mobile Apps have none).
func (s *source) listTables(ctx context.Context) ([]tableInfo, bool, error) {
	v, _, err := s.get(ctx, "/admin/tables", nil, V2)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusMethodNotAllowed || he.Status == http.StatusBadRequest) {
			return nil, false, nil
		}
		if errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
			return nil, false, fmt.Errorf("listing the source's tables: %w (check the master key)", err)
		}
		return nil, false, fmt.Errorf("listing the source's tables: %w", err)
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false, nil
	}
	out := make([]tableInfo, 0, len(arr))
	for _, x := range arr {
		b, _ := json.Marshal(x)
		var ti tableInfo
		if err := json.Unmarshal(b, &ti); err != nil || ti.Name == "" {
			return nil, false, nil // not Gatehouse's listing
		}
		out = append(out, ti)
	}
	return out, true, nil
}

// page is one read's items and, when asked, the total count.
type page struct {
	items []map[string]any
	count int64 // -1 when not given
}

// parsePage accepts a bare array or {"results": [...], "count": n}.
func parsePage(v any) (*page, error) {
	p := &page{count: -1}
	var arr []any
	switch x := v.(type) {
	case []any:
		arr = x
	case map[string]any:
		r, ok := x["results"].([]any)
		if !ok {
			return nil, fmt.Errorf("expected an array of items or {\"results\": [...]}")
		}
		arr = r
		if c, ok := x["count"].(json.Number); ok {
			if n, err := c.Int64(); err == nil {
				p.count = n
			}
		}
	default:
		return nil, fmt.Errorf("expected an array of items")
	}
	for i, it := range arr {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("item %d is not an object", i)
		}
		p.items = append(p.items, m)
	}
	return p, nil
}

// detect finds the dialect by reading one item of table: a v2 read (ZUMO-API-VERSION 2.0.0) that is
// answered with v2 property names, or with no items, is v2; otherwise the source speaks v1.
func (s *source) detect(ctx context.Context, table string) (Protocol, error) {
	q := url.Values{"$top": {"1"}, "__systemProperties": {"*"}, "__includeDeleted": {"true"}}
	v, _, err := s.get(ctx, "/tables/"+url.PathEscape(table), q, V2)
	if err == nil {
		p, perr := parsePage(v)
		if perr == nil {
			if len(p.items) == 0 {
				return V2, nil
			}
			if _, ok := p.items[0]["updatedAt"]; ok {
				return V2, nil
			}
		}
	} else {
		var he *httpError
		if !errors.As(err, &he) || he.Status == http.StatusNotFound || he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden {
			return "", tableError(table, err)
		}
	}
	if _, _, err := s.get(ctx, "/tables/"+url.PathEscape(table), q, V1); err != nil {
		return "", tableError(table, err)
	}
	return V1, nil
}

func tableError(table string, err error) error {
	var he *httpError
	if errors.As(err, &he) {
		switch he.Status {
		case http.StatusNotFound:
			return fmt.Errorf("table %s: not found on the source (%w)", table, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("table %s: access refused by the source (%w); check the master key", table, err)
		}
	}
	return fmt.Errorf("table %s: %w", table, err)
}
