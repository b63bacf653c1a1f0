package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
)

func doReq(t *testing.T, method, u, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestExampleTodo makes the requests of examples/todo/README.md against `gatehouse --app
// examples/todo` and checks every answer: the insert script and its shared module, per-user rows, the
// custom API and its permission, the job, and the offline-sync query with soft-deleted rows.
func TestExampleTodo(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base, logs, _ := startServer(t, []string{"--app", "../../examples/todo", "--data", data}, nil)
	ks, err := keys.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(user string) string {
		code, out, errs := runCmd(t, nil, "token", "mint", "--user", user, "--data", data)
		if code != 0 {
			t.Fatalf("mint: %s", errs)
		}
		return strings.TrimSpace(out)
	}
	ann := map[string]string{"X-ZUMO-AUTH": mint("custom:ann")}
	bob := map[string]string{"X-ZUMO-AUTH": mint("custom:bob")}

	var item map[string]any
	code, body := doReq(t, "POST", base+"/tables/TodoItem", `{"text":"  Buy milk "}`, ann)
	if code != 201 || json.Unmarshal([]byte(body), &item) != nil || item["text"] != "Buy milk" || item["complete"] != false || item["userId"] != "custom:ann" {
		t.Fatalf("insert: %d %s", code, body)
	}
	if code, body := doReq(t, "POST", base+"/tables/TodoItem", `{"text":"Call Bob","complete":true}`, ann); code != 201 {
		t.Fatalf("insert 2: %d %s", code, body)
	}
	if code, body := doReq(t, "POST", base+"/tables/TodoItem", `{"text":"   "}`, ann); code != 400 || body != `{"error":"text is required"}` {
		t.Fatalf("empty text: %d %s", code, body)
	}
	if code, body := doReq(t, "POST", base+"/tables/TodoItem", `{"text":"`+strings.Repeat("x", 201)+`"}`, ann); code != 400 || !strings.Contains(body, "longer than 200") {
		t.Fatalf("long text: %d %s", code, body)
	}
	if code, body := doReq(t, "GET", base+"/tables/TodoItem", "", bob); code != 200 || body != "[]" {
		t.Fatalf("bob sees: %d %s", code, body)
	}
	if code, body := doReq(t, "GET", base+"/api/stats", "", bob); code != 200 || body != `{"open":1,"done":1}` {
		t.Fatalf("stats: %d %s", code, body)
	}
	if code, body := doReq(t, "GET", base+"/api/stats", "", nil); code != 401 || body != `{"code":401,"error":"Error: Unauthorized"}` {
		t.Fatalf("stats anonymous: %d %s", code, body)
	}
	if code, body := doReq(t, "POST", base+"/jobs/cleanup", "", map[string]string{"X-ZUMO-MASTER": ks.MasterKey}); code != 200 {
		t.Fatalf("job: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := doReq(t, "GET", base+"/api/stats", "", ann)
		if body == `{"open":1,"done":0}` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not delete the completed item: %s\n%s", body, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	q := url.Values{"$filter": {"(updatedAt ge datetimeoffset'1970-01-01T00:00:00.000Z')"}, "$orderby": {"updatedAt"}, "$top": {"50"}, "__includeDeleted": {"true"}}
	code, body = doReq(t, "GET", base+"/tables/TodoItem?"+q.Encode(), "", map[string]string{"X-ZUMO-AUTH": ann["X-ZUMO-AUTH"], "ZUMO-API-VERSION": "2.0.0"})
	var rows []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &rows) != nil || len(rows) != 2 {
		t.Fatalf("offline sync query: %d %s", code, body)
	}
	deleted := map[string]any{}
	for _, r := range rows {
		deleted[r["text"].(string)] = r["deleted"]
	}
	if deleted["Buy milk"] != false || deleted["Call Bob"] != true {
		t.Fatalf("offline sync rows: %s", body)
	}
	if !strings.Contains(logs.String(), "todo app starting") || !strings.Contains(logs.String(), "cleanup: deleted 1 completed items") {
		t.Fatalf("startup script or job log missing:\n%s", logs.String())
	}
}
