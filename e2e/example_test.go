package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrowserSDKExampleTodo runs examples/todo (the app the README's quick start uses) and drives it
// with the official JavaScript client in Chromium: inserts through the table script, its refusal of
// an empty item, per-user reads, the custom API through invokeApi, and an incremental read by
// updatedAt with deleted rows, as offline sync pulls.
func TestBrowserSDKExampleTodo(t *testing.T) {
	alone(t)
	needTools(t, true)
	app, err := filepath.Abs("../examples/todo")
	if err != nil {
		t.Fatal(err)
	}
	g := startGatehouse(t, GatehouseOptions{App: app, Env: map[string]string{
		"MS_CrossDomainWhitelist": `[{"host":"127.0.0.1"}]`,
	}})
	ann := g.MintToken(t, "custom:ann")
	bob := g.MintToken(t, "custom:bob")
	page := servePage(t, nil)

	ops := []map[string]any{
		{"name": "insert", "op": "insert", "table": "TodoItem", "item": map[string]any{"id": "t1", "text": "  Buy milk "}},
		{"name": "insert-done", "op": "insert", "table": "TodoItem", "item": map[string]any{"id": "t2", "text": "Call Bob", "complete": true}},
		{"name": "insert-empty", "op": "insert", "table": "TodoItem", "item": map[string]any{"text": "   "}},
		{"name": "delete", "op": "del", "table": "TodoItem", "item": map[string]any{"id": "t2"}},
		{"name": "pull", "op": "read", "table": "TodoItem", "query": "$filter=(updatedAt ge datetimeoffset'1970-01-01T00:00:00.000Z')&$orderby=updatedAt&$skip=0&$top=50&__includeDeleted=true"},
	}
	var res []tableResult
	runBrowser(t, "table", page.URL(), g.URL, map[string]any{"token": ann, "userId": "custom:ann", "ops": ops}, &res)
	got := map[string]tableResult{}
	for _, r := range res {
		got[r.Name] = r
	}
	var item map[string]any
	if r := got["insert"]; !r.OK || json.Unmarshal(r.Value, &item) != nil || item["text"] != "Buy milk" || item["complete"] != false || item["userId"] != "custom:ann" {
		t.Fatalf("insert through the script: %+v", r)
	}
	if r := got["insert-empty"]; r.OK || r.Status != 400 || !strings.Contains(r.Body, "text is required") {
		t.Fatalf("the script must refuse an empty item: %+v", r)
	}
	if r := got["delete"]; !r.OK {
		t.Fatalf("delete: %+v", r)
	}
	var pull readValue
	if r := got["pull"]; !r.OK || json.Unmarshal(r.Value, &pull) != nil || len(pull.Items) != 2 {
		t.Fatalf("incremental pull: %+v", got["pull"])
	}
	deleted := map[string]any{}
	for _, it := range pull.Items {
		deleted[it["id"].(string)] = it["deleted"]
	}
	if deleted["t1"] != false || deleted["t2"] != true {
		t.Fatalf("pull must return the live and the deleted row: %v", pull.Items)
	}

	var bobRead []tableResult
	runBrowser(t, "table", page.URL(), g.URL, map[string]any{"token": bob, "userId": "custom:bob", "ops": []map[string]any{
		{"name": "read", "op": "read", "table": "TodoItem", "query": map[string]any{}},
	}}, &bobRead)
	var bobItems readValue
	if len(bobRead) != 1 || !bobRead[0].OK || json.Unmarshal(bobRead[0].Value, &bobItems) != nil || len(bobItems.Items) != 0 {
		t.Fatalf("bob must see none of ann's rows: %+v", bobRead)
	}

	var calls []callResult
	runBrowser(t, "invoke", page.URL(), g.URL, map[string]any{"calls": []map[string]any{
		{"name": "stats", "api": "stats", "token": bob, "userId": "custom:bob"},
		{"name": "stats-anonymous", "api": "stats"},
	}}, &calls)
	byCall := byName(t, calls, 2)
	if r := byCall["stats"]; r.Status != 200 || r.Body != `{"open":1,"done":0}` {
		t.Fatalf("custom API: %+v", r)
	}
	if r := byCall["stats-anonymous"]; r.Status != 401 {
		t.Fatalf("custom API without a token: %+v", r)
	}
}
