package activity

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// AdminHandler serves the activity to administrators (mount behind the admin permission); the
// console's Logs & health page reads the same Store through the same functions:
//
//	GET /admin/activity?status=&route=&user=&requestId=&kind=&instance=&after=&limit=
//	    {"events":[…oldest first…], "next":"<last id>"}: poll with after=<next> to follow the tail
//	GET /admin/activity/stats?since=1h
//	    requests, 4xx and 5xx, requests/s, error rate and p99 per minute and over the window, and
//	    the instances seen (since: a duration up to 7 days back, or an RFC 3339 time)
type AdminHandler struct {
	Store *Store
	Now   func() time.Time
}

func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := httpx.ReadOnly(w, r, "/admin/activity")
	if !ok {
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	switch rest {
	case "":
		f, err := ParseFilter(r.URL.Query())
		if err != nil {
			httpx.Error(w, r, http.StatusBadRequest, err.Error())
			return
		}
		evs, err := h.Store.Tail(r.Context(), f)
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		out := struct {
			Events []Event `json:"events"`
			Next   string  `json:"next"`
		}{Events: evs, Next: strconv.FormatInt(f.AfterID, 10)}
		if len(evs) > 0 {
			last := evs[len(evs)-1].ID
			if f.AfterID == 0 || last > f.AfterID {
				out.Next = strconv.FormatInt(last, 10)
			}
		}
		httpx.JSON(w, http.StatusOK, out)
	case "stats":
		since, err := ParseSince(r.URL.Query(), now())
		if err != nil {
			httpx.Error(w, r, http.StatusBadRequest, err.Error())
			return
		}
		st, err := h.Store.Stats(r.Context(), since, now())
		if err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, st)
	default:
		httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
	}
}

const maxParam = 512

// ParseFilter reads the tail's parameters: status (a class 1–5 or a status 100–599), route, user,
// requestId, kind (request|script), instance, after, limit (1–1000). Unknown parameters are refused.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for k, vs := range q {
		if len(vs) != 1 {
			return f, fmt.Errorf("parameter %q must be given once", k)
		}
		v := vs[0]
		if len(v) > maxParam {
			return f, fmt.Errorf("parameter %q is too long", k)
		}
		var err error
		switch k {
		case "status":
			// "5xx" and "4xx" as well as 5 and 404.
			n, e := strconv.Atoi(strings.TrimSuffix(strings.ToLower(v), "xx"))
			switch {
			case e != nil || n < 1 || (n > 5 && n < 100) || n > 599:
				err = fmt.Errorf("must be a status (404) or a class (4 or 4xx)")
			default:
				f.Status = n
			}
		case "route":
			f.Route = v
		case "user":
			f.User = v
		case "requestId":
			f.RequestID = v
		case "kind":
			switch Kind(v) {
			case KindRequest, KindScript, "":
				f.Kind = Kind(v)
			default:
				err = fmt.Errorf("must be request or script")
			}
		case "instance":
			f.Instance = v
		case "after":
			f.AfterID, err = strconv.ParseInt(v, 10, 64)
			if err == nil && f.AfterID < 0 {
				err = fmt.Errorf("must not be negative")
			}
		case "limit":
			f.Limit, err = strconv.Atoi(v)
			if err == nil && (f.Limit < 1 || f.Limit > 1000) {
				err = fmt.Errorf("must be between 1 and 1000")
			}
		default:
			return f, fmt.Errorf("unknown parameter %q (status, route, user, requestId, kind, instance, after, limit)", k)
		}
		if err != nil {
			return f, fmt.Errorf("parameter %q: %v", k, err)
		}
	}
	return f, nil
}

// MaxStatsWindow is the longest window Stats is asked for.
const MaxStatsWindow = 7 * 24 * time.Hour

// ParseSince reads stats' since= (default one hour back): a duration up to MaxStatsWindow or an
// RFC 3339 time within it.
func ParseSince(q url.Values, now time.Time) (time.Time, error) {
	for k := range q {
		if k != "since" {
			return time.Time{}, fmt.Errorf("unknown parameter %q (since)", k)
		}
	}
	v := q.Get("since")
	if v == "" {
		return now.Add(-time.Hour), nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 || d > MaxStatsWindow {
			return time.Time{}, fmt.Errorf("parameter \"since\": a duration between 1m and 168h")
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.After(now) || now.Sub(t) > MaxStatsWindow {
		return time.Time{}, fmt.Errorf("parameter \"since\": a duration such as 1h or an RFC 3339 time in the last 7 days")
	}
	return t, nil
}
