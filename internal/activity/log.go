package activity

import (
	"context"
	"log/slog"
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// ScriptLog tees the script engine's log into the recorder: every console line a script writes
// (records with source=console) and every warning or failure (a script that threw, responded with an
// error, timed out; a job that failed; an app directory that did not reload), with the script
// ("table/todoitem.insert", "api/hello", "scheduler/cleanup") as the event's source and the
// request's id. Everything still goes to next, as before; the recorder adds nothing to that log.
//
// Wrap the logger given to script.Options.Log: slog.New(activity.ScriptLog(log.Handler(), rec)).
func ScriptLog(next slog.Handler, r *Recorder) slog.Handler {
	return &scriptHandler{next: next, rec: r}
}

type scriptHandler struct {
	next   slog.Handler
	rec    *Recorder
	script string // from WithAttrs
	job    string
	group  string // non-empty once WithGroup was called: attributes below are not ours
}

func (h *scriptHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// Console lines at info level reach the activity log even when the process logs warnings only.
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *scriptHandler) Handle(ctx context.Context, rec slog.Record) error {
	var err error
	if h.next.Enabled(ctx, rec.Level) {
		err = h.next.Handle(ctx, rec)
	}
	script, job, console, reqID := h.script, h.job, false, ""
	var detail []string
	if h.group == "" {
		rec.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "script":
				script = a.Value.String()
			case "job":
				job = a.Value.String()
			case "source":
				console = a.Value.String() == "console"
			case "request_id":
				reqID = a.Value.String()
			case "error", "err", "at", "note":
				detail = append(detail, a.Key+"="+a.Value.String())
			}
			return true
		})
	}
	if !console && rec.Level < slog.LevelWarn {
		return err
	}
	source := script
	if source == "" && job != "" {
		source = "scheduler/" + job
	}
	if source == "" {
		source = "scripts"
	}
	msg := rec.Message
	if !console && len(detail) > 0 {
		msg += ": " + strings.Join(detail, " ")
	}
	if reqID == "" {
		reqID = httpx.InfoFrom(ctx).RequestID
	}
	h.rec.Script(rec.Time, strings.ToLower(rec.Level.String()), source, reqID, clip(msg, MaxMessage))
	return err
}

func (h *scriptHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if h.group == "" {
		for _, a := range attrs {
			switch a.Key {
			case "script":
				c.script = a.Value.String()
			case "job":
				c.job = a.Value.String()
			}
		}
	}
	return &c
}

func (h *scriptHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	if name != "" {
		c.group = name
	}
	return &c
}
