package console

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
)

type auditData struct {
	Filter  auditFilter
	Entries []audit.Entry
	Older   string
	Export  string
}

type auditFilter struct {
	Actor, Action, Target, Since string
	Before                       int64
}

func (f auditFilter) filter() audit.Filter {
	af := audit.Filter{Actor: f.Actor, Action: f.Action, Target: f.Target, BeforeID: f.Before, Limit: 100}
	if t, err := time.Parse("2006-01-02", f.Since); err == nil {
		af.Since = t
	}
	return af
}

func (f auditFilter) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"actor": f.Actor, "action": f.Action, "target": f.Target, "since": f.Since} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

// audit shows the trail (newest first, filtered, paged backwards) and exports it; read-only.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, rest []string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.notFound(w, r)
		return
	}
	if c.o.AuditLog == nil {
		c.render(w, r, http.StatusOK, "audit", view{Title: "Audit trail", Nav: "audit", Problem: "The audit trail is not available.", Data: auditData{}})
		return
	}
	q := r.URL.Query()
	f := auditFilter{Actor: clip(q.Get("actor")), Action: clip(q.Get("action")), Target: clip(q.Get("target")), Since: clip(q.Get("since"))}
	if n, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && n > 0 {
		f.Before = n
	}
	if len(rest) == 1 && rest[0] == "export" {
		format, ok := audit.ParseFormat(q.Get("format"))
		if !ok {
			c.notFound(w, r)
			return
		}
		af := f.filter()
		af.Limit = 0
		ext, ctype := "jsonl", "application/x-ndjson"
		if format == audit.CSV {
			ext, ctype = "csv", "text/csv; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", `attachment; filename="gatehouse-audit.`+ext+`"`)
		if _, err := c.o.AuditLog.Export(r.Context(), w, af, format); err != nil {
			c.o.Log.Warn("console: audit export failed", "err", err)
		}
		return
	}
	if len(rest) > 0 && rest[0] != "" {
		c.notFound(w, r)
		return
	}
	entries, err := c.o.AuditLog.List(r.Context(), f.filter())
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	d := auditData{Filter: f, Entries: entries}
	base := c.o.Path + "/audit"
	if len(entries) == 100 {
		v := f.values()
		v.Set("before", strconv.FormatInt(entries[len(entries)-1].ID, 10))
		d.Older = base + "?" + v.Encode()
	}
	v := f.values()
	v.Set("format", "csv")
	d.Export = base + "/export?" + v.Encode()
	c.render(w, r, http.StatusOK, "audit", view{Title: "Audit trail", Nav: "audit", Data: d})
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}
