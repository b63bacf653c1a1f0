package audit

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// MaxExport caps the entries of one export request; a longer trail is exported in several requests
// (after=<the last id>).
const MaxExport = 100000

// AdminHandler serves the trail to administrators (mount behind the admin permission):
//
//	GET /admin/audit?since=&until=&actor=&action=&target=&after=&before=&limit=&order=asc
//	    {"entries":[…], "next":"<id>"}: newest first; "next" is the before= of the following page
//	    (after=<id> with order=asc follows the trail forward)
//	GET /admin/audit/export?format=jsonl|csv&…the same filters…
//	    the entries oldest first, at most MaxExport per request (limit= lowers it)
//
// since and until are RFC 3339 times or durations back from now ("24h"). There is no way to change
// or delete an entry through it.
type AdminHandler struct {
	Store *Store
	Log   *slog.Logger
	Now   func() time.Time
}

func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := httpx.ReadOnly(w, r, "/admin/audit")
	if !ok {
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	f, format, err := ParseQuery(r.URL.Query(), now())
	if err != nil {
		httpx.Error(w, r, http.StatusBadRequest, err.Error())
		return
	}
	switch rest {
	case "":
		list, err := h.Store.List(r.Context(), f)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		out := struct {
			Entries []Entry `json:"entries"`
			Next    string  `json:"next,omitempty"`
		}{Entries: list}
		if out.Entries == nil {
			out.Entries = []Entry{}
		}
		limit := f.Limit
		if limit <= 0 {
			limit = DefaultLimit
		}
		if len(list) == min(limit, MaxLimit) && len(list) > 0 {
			out.Next = strconv.FormatInt(list[len(list)-1].ID, 10)
		}
		httpx.JSON(w, http.StatusOK, out)
	case "export":
		if f.Limit <= 0 || f.Limit > MaxExport {
			f.Limit = MaxExport
		}
		name := "gatehouse-audit-" + now().UTC().Format("20060102T150405Z")
		if format == CSV {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			name += ".csv"
		} else {
			w.Header().Set("Content-Type", "application/x-ndjson")
			name += ".jsonl"
		}
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if n, err := h.Store.Export(r.Context(), w, f, format); err != nil && h.Log != nil {
			// The headers (and perhaps rows) are out: the client gets a truncated body.
			h.Log.Error("audit export failed", "request_id", httpx.InfoOf(r).RequestID, "written", n, "err", err)
		}
	default:
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
	}
}

// Query limits.
const maxParam = 512

// ParseQuery reads the admin API's (and the CLI's) filter parameters: since, until (RFC 3339 or a
// duration back from now), actor, action, target, after, before, limit, order (asc|desc) and
// format (jsonl|csv). Unknown parameters are refused, so that a misspelt filter does not silently
// match everything.
func ParseQuery(q url.Values, now time.Time) (Filter, Format, error) {
	var f Filter
	format := JSONLines
	for k, vs := range q {
		if len(vs) != 1 {
			return f, "", fmt.Errorf("parameter %q must be given once", k)
		}
		v := vs[0]
		if len(v) > maxParam {
			return f, "", fmt.Errorf("parameter %q is too long", k)
		}
		var err error
		switch k {
		case "since":
			f.Since, err = parseTime(v, now)
		case "until":
			f.Until, err = parseTime(v, now)
		case "actor":
			f.Actor = v
		case "action":
			f.Action = v
		case "target":
			f.Target = v
		case "after":
			f.AfterID, err = parseID(v)
		case "before":
			f.BeforeID, err = parseID(v)
		case "limit":
			f.Limit, err = strconv.Atoi(v)
			if err == nil && (f.Limit < 1 || f.Limit > MaxExport) {
				err = fmt.Errorf("must be between 1 and %d", MaxExport)
			}
		case "order":
			switch v {
			case "asc":
				f.Ascending = true
			case "desc", "":
			default:
				err = fmt.Errorf("must be asc or desc")
			}
		case "format":
			var ok bool
			if format, ok = ParseFormat(v); !ok {
				err = fmt.Errorf("must be jsonl or csv")
			}
		default:
			return f, "", fmt.Errorf("unknown parameter %q (since, until, actor, action, target, after, before, limit, order, format)", k)
		}
		if err != nil {
			return f, "", fmt.Errorf("parameter %q: %v", k, err)
		}
	}
	return f, format, nil
}

func parseTime(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("a duration back from now must be positive")
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time or a duration such as 24h")
	}
	return t, nil
}

func parseID(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("must be a non-negative integer")
	}
	return n, nil
}
