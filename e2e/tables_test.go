package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// tableResult is one op of the table scenario (e2e/js/scenarios/table.mjs).
type tableResult struct {
	Name   string          `json:"name"`
	OK     bool            `json:"ok"`
	Value  json.RawMessage `json:"value"`
	Error  string          `json:"error"`
	Status int             `json:"status"`
	Body   string          `json:"body"`
}

type readValue struct {
	Items      []map[string]any `json:"items"`
	TotalCount *float64         `json:"totalCount"`
}

// TestBrowserSDKTables drives the official JavaScript SDK (azure-mobile-apps-client) in headless
// Chromium through insert, lookup, queries, an update with a stale version, delete and per-user data,
// against a running gatehouse on SQLite and on PostgreSQL.
func TestBrowserSDKTables(t *testing.T) {
	alone(t)
	needTools(t, true)
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			var args []string
			if db == "postgres" {
				args = []string{"--database", storetest.PostgresURL(t)}
			}
			app := writeApp(t, map[string]string{
				"datamodel.json": `{"tables":[{"name":"TodoItem","permissions":{"*":"user"},"softDelete":true},
					{"name":"Diary","permissions":{"*":"user"},"perUser":true}]}`,
			})
			g := startGatehouse(t, GatehouseOptions{App: app, Args: args, Env: map[string]string{
				"MS_CrossDomainWhitelist": `[{"host":"127.0.0.1"}]`,
			}})
			alice := g.MintToken(t, "custom:alice")
			bob := g.MintToken(t, "custom:bob")
			page := servePage(t, nil)

			ops := []map[string]any{
				{"name": "insert-generated-id", "op": "insert", "table": "todoitem", "item": map[string]any{"text": "first", "complete": false, "due": "2024-05-01T10:00:00.000Z"}},
				{"name": "insert-own-id", "op": "insert", "table": "todoitem", "item": map[string]any{"id": "fixed-1", "text": "Amélie", "complete": true}},
				{"name": "insert-third", "op": "insert", "table": "todoitem", "item": map[string]any{"id": "fixed-2", "text": "American Beauty", "complete": true}},
				{"name": "insert-duplicate", "op": "insert", "table": "todoitem", "item": map[string]any{"id": "fixed-1", "text": "again"}},
				{"name": "lookup", "op": "lookup", "table": "todoitem", "id": "fixed-1"},
				{"name": "read-where", "op": "read", "table": "todoitem", "query": map[string]any{"where": map[string]any{"complete": false}}},
				{"name": "read-function", "op": "read", "table": "todoitem", "query": map[string]any{"where": "function () { return this.complete === true && this.text.indexOf('Am') === 0; }", "orderBy": []string{"text"}}},
				{"name": "read-raw", "op": "read", "table": "todoitem", "query": "$filter=complete eq true&$orderby=text desc"},
				{"name": "read-count", "op": "read", "table": "todoitem", "query": map[string]any{"take": 1, "includeTotalCount": true, "orderBy": []string{"text"}}},
				{"name": "update-stale", "op": "update", "table": "todoitem", "item": map[string]any{"id": "fixed-1", "version": "AAAAAAAAAAA=", "text": "stale write"}},
				{"name": "update", "op": "update", "table": "todoitem", "item": map[string]any{"id": "fixed-1", "text": "Amélie (2001)"}},
				{"name": "delete", "op": "del", "table": "todoitem", "item": map[string]any{"id": "fixed-2"}},
				{"name": "lookup-deleted", "op": "lookup", "table": "todoitem", "id": "fixed-2"},
				{"name": "read-include-deleted", "op": "read", "table": "todoitem", "query": map[string]any{"includeDeleted": true}},
				{"name": "diary-insert", "op": "insert", "table": "diary", "item": map[string]any{"id": "d1", "text": "alice's secret"}},
			}
			var res []tableResult
			runBrowser(t, "table", page.URL(), g.URL, map[string]any{"token": alice, "userId": "custom:alice", "ops": ops}, &res)
			got := map[string]tableResult{}
			for _, r := range res {
				got[r.Name] = r
			}
			if len(got) != len(ops) {
				t.Fatalf("%d results for %d ops: %+v", len(got), len(ops), res)
			}
			must := func(name string) tableResult {
				t.Helper()
				r := got[name]
				if !r.OK {
					t.Fatalf("%s failed: %+v", name, r)
				}
				return r
			}
			var item map[string]any
			json.Unmarshal(must("insert-generated-id").Value, &item)
			if id, _ := item["id"].(string); len(id) != 36 || item["version"] == nil || item["createdAt"] == nil || item["due"] != "2024-05-01T10:00:00.000Z" {
				t.Fatalf("insert answer %v", item)
			}
			if r := got["insert-duplicate"]; r.OK || r.Status != 409 {
				t.Fatalf("duplicate insert: %+v", r)
			}
			json.Unmarshal(must("lookup").Value, &item)
			if item["text"] != "Amélie" {
				t.Fatalf("lookup %v", item)
			}
			reads := func(name string) []string {
				var v readValue
				json.Unmarshal(must(name).Value, &v)
				var out []string
				for _, it := range v.Items {
					out = append(out, it["text"].(string))
				}
				return out
			}
			if r := reads("read-where"); strings.Join(r, "|") != "first" {
				t.Fatalf("where: %v", r)
			}
			if r := reads("read-function"); strings.Join(r, "|") != "Amélie|American Beauty" {
				t.Fatalf("function where + culture-aware orderBy: %v", r)
			}
			if r := reads("read-raw"); strings.Join(r, "|") != "American Beauty|Amélie" {
				t.Fatalf("raw OData: %v", r)
			}
			var count readValue
			json.Unmarshal(must("read-count").Value, &count)
			if len(count.Items) != 1 || count.TotalCount == nil || *count.TotalCount != 3 {
				t.Fatalf("includeTotalCount: %s", got["read-count"].Value)
			}
			stale := got["update-stale"]
			if stale.OK || stale.Status != 412 || !strings.Contains(stale.Body, `"text":"Amélie"`) {
				t.Fatalf("stale update must be 412 with the server's item: %+v", stale)
			}
			json.Unmarshal(must("update").Value, &item)
			if item["text"] != "Amélie (2001)" {
				t.Fatalf("update %v", item)
			}
			must("delete")
			if r := got["lookup-deleted"]; r.OK || r.Status != 404 {
				t.Fatalf("lookup after delete: %+v", r)
			}
			if r := reads("read-include-deleted"); len(r) != 3 {
				t.Fatalf("includeDeleted: %v", r)
			}
			json.Unmarshal(must("diary-insert").Value, &item)
			if item["userId"] != "custom:alice" {
				t.Fatalf("per-user insert %v", item)
			}

			// Bob, through the same SDK, sees none of Alice's diary.
			var bobRes []tableResult
			runBrowser(t, "table", page.URL(), g.URL, map[string]any{"token": bob, "userId": "custom:bob", "ops": []map[string]any{
				{"name": "read", "op": "read", "table": "diary", "query": "$filter=userId eq 'custom:alice' or true"},
				{"name": "lookup", "op": "lookup", "table": "diary", "id": "d1"},
				{"name": "update", "op": "update", "table": "diary", "item": map[string]any{"id": "d1", "text": "pwned"}},
			}}, &bobRes)
			for _, r := range bobRes {
				if strings.Contains(string(r.Value)+r.Body, "secret") {
					t.Fatalf("bob saw alice's row: %+v", r)
				}
				if r.Name == "read" && (!r.OK || !strings.Contains(string(r.Value), `"items":[]`)) {
					t.Fatalf("bob's read: %+v", r)
				}
				if r.Name != "read" && (r.OK || r.Status != 404) {
					t.Fatalf("bob's %s: %+v", r.Name, r)
				}
			}
		})
	}
}
