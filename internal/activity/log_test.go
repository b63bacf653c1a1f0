package activity_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/activity"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func TestScriptLog(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := context.Background()
	st := activity.NewStore(db)
	rec := activity.NewRecorder(st, activity.Options{Instance: "i", Log: quiet()})
	var out bytes.Buffer
	// The process logs warnings only: console lines still reach the activity log, not the process log.
	base := slog.New(activity.ScriptLog(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}), rec)).With("component", "script")

	reqCtx := httpx.WithInfo(ctx, &httpx.Info{RequestID: "req-1"})
	inv := base.With("script", "table/todoitem.insert.js")
	inv.Log(reqCtx, slog.LevelInfo, "inserting "+strings.Repeat("x", 5000), "source", "console")
	inv.Log(reqCtx, slog.LevelError, "oops", "source", "console")
	base.Error("script failed", "script", "api/hello.js", "error", "ReferenceError: y is not defined", "at", "api/hello.js:3:5", "request_id", "req-2")
	base.Error("scheduled job failed", "job", "cleanup", "err", "timeout")
	base.Info("app directory reloaded", "dir", "/app") // not a script event
	base.WithGroup("g").Info("grouped", "source", "console")
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := st.Tail(ctx, activity.Filter{Kind: activity.KindScript})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 {
		t.Fatalf("events: %+v", evs)
	}
	if e := evs[0]; e.Source != "table/todoitem.insert.js" || e.Level != "info" || e.RequestID != "req-1" || len(e.Message) > activity.MaxMessage || !strings.HasPrefix(e.Message, "inserting xxx") {
		t.Fatalf("console line: %+v", e)
	}
	if e := evs[1]; e.Level != "error" || e.Message != "oops" {
		t.Fatalf("console.error: %+v", e)
	}
	if e := evs[2]; e.Source != "api/hello.js" || e.RequestID != "req-2" || !strings.Contains(e.Message, "ReferenceError") || !strings.Contains(e.Message, "api/hello.js:3:5") {
		t.Fatalf("failure: %+v", e)
	}
	if e := evs[3]; e.Source != "scheduler/cleanup" || !strings.Contains(e.Message, "timeout") {
		t.Fatalf("job failure: %+v", e)
	}
	// The process log is unchanged: warnings and errors only, with their attributes.
	if strings.Contains(out.String(), "inserting") || !strings.Contains(out.String(), `"msg":"oops"`) || !strings.Contains(out.String(), `"script":"table/todoitem.insert.js"`) {
		t.Fatalf("process log: %s", out.String())
	}
}
