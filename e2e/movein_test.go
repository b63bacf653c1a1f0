package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs a gatehouse command with the harness's clean environment plus env.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatehouseBinary(t), args...)
	cmd.Env = cleanEnv(env)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// TestBrowserSDKMoveInIntegerIDs moves in as an owner of a Mobile Services app would (issue 13): the
// app folder in the original layout, whose table JSON carries permissions only (no idType) and whose
// scripts are the original's, with the table created beforehand by
// `gatehouse table create … --integer-id` (the original's `azure mobile table create --integerId`).
// The server adopts the existing integer-id table at start, and the official JavaScript client in
// Chromium inserts (ids 1, 2, …, through the insert script), looks up, updates with the version
// (which increases), gets 412 for a stale one, queries and deletes; after `gatehouse table truncate`
// the ids start at 1 again.
func TestBrowserSDKMoveInIntegerIDs(t *testing.T) {
	alone(t)
	needTools(t, true)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"migrate", "up", "--data", data},
		{"table", "create", "Counter", "--integer-id", "--columns", "text=string,n=number", "--data", data},
	} {
		if code, out, errs := runCLI(t, nil, args...); code != 0 {
			t.Fatalf("%v: %d %s %s", args, code, out, errs)
		}
	}
	app := writeApp(t, map[string]string{
		"table/Counter.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
		"table/Counter.insert.js": `function insert(item, user, request) {
    item.text = item.text.toUpperCase();
    request.execute();
}`,
		"table/Counter.read.js": `function read(query, user, request) {
    if (query.id) {
        request.execute({ success: function (results) { results.forEach(function (r) { r.lookedUp = true; }); request.respond(); } });
        return;
    }
    request.execute();
}`,
	})
	g := startGatehouse(t, GatehouseOptions{App: app, Args: []string{"--data", data}, Env: map[string]string{
		"MS_CrossDomainWhitelist": `[{"host":"127.0.0.1"}]`,
	}})
	page := servePage(t, nil)
	tableOps := func(ops []map[string]any) map[string]tableResult {
		t.Helper()
		var res []tableResult
		runBrowser(t, "table", page.URL(), g.URL, map[string]any{"ops": ops}, &res)
		got := map[string]tableResult{}
		for _, r := range res {
			got[r.Name] = r
		}
		return got
	}
	item := func(r tableResult) map[string]any {
		t.Helper()
		var m map[string]any
		if !r.OK || json.Unmarshal(r.Value, &m) != nil {
			t.Fatalf("%s: %+v", r.Name, r)
		}
		return m
	}

	got := tableOps([]map[string]any{
		{"name": "first", "op": "insert", "table": "Counter", "item": map[string]any{"text": "one", "n": 1}},
		{"name": "second", "op": "insert", "table": "Counter", "item": map[string]any{"text": "two", "n": 2}},
		{"name": "lookup", "op": "lookup", "table": "Counter", "id": 1},
		{"name": "query", "op": "read", "table": "Counter", "query": map[string]any{"where": "function () { return this.n > 1; }"}},
	})
	first, second := item(got["first"]), item(got["second"])
	if first["id"] != 1.0 || second["id"] != 2.0 || first["text"] != "ONE" {
		t.Fatalf("inserted %v and %v; want integer ids 1 and 2 and the script's text", first, second)
	}
	if l := item(got["lookup"]); l["id"] != 1.0 || l["lookedUp"] != true {
		t.Fatalf("lookup through the read script (query.id): %v", l)
	}
	var q readValue
	if r := got["query"]; !r.OK || json.Unmarshal(r.Value, &q) != nil || len(q.Items) != 1 || q.Items[0]["id"] != 2.0 {
		t.Fatalf("query: %+v", got["query"])
	}

	v1, _ := first["version"].(string)
	got = tableOps([]map[string]any{
		{"name": "update", "op": "update", "table": "Counter", "item": map[string]any{"id": 1, "text": "uno", "version": v1}},
		{"name": "stale", "op": "update", "table": "Counter", "item": map[string]any{"id": 1, "text": "stale", "version": v1}},
		{"name": "delete", "op": "del", "table": "Counter", "item": map[string]any{"id": 2}},
		{"name": "third", "op": "insert", "table": "Counter", "item": map[string]any{"text": "three"}},
	})
	u := item(got["update"])
	if v2, _ := u["version"].(string); u["text"] != "uno" || len(v2) != 16 || len(v1) != 16 || v2 <= v1 {
		t.Fatalf("update: %v; the version must increase (was %q)", u, v1)
	}
	if r := got["stale"]; r.OK || r.Status != 412 {
		t.Fatalf("update with a stale version: %+v", r)
	}
	if r := got["delete"]; !r.OK {
		t.Fatalf("delete: %+v", r)
	}
	if third := item(got["third"]); third["id"] != 3.0 {
		t.Fatalf("third insert: %v (ids are not reused after a delete)", third)
	}

	// Truncating restarts the ids, as SQL Server's TRUNCATE TABLE did (the server keeps running).
	if code, out, errs := runCLI(t, nil, "table", "truncate", "Counter", "--yes", "--data", data); code != 0 || !strings.Contains(out, "2 rows deleted") {
		t.Fatalf("table truncate: %d %s %s", code, out, errs)
	}
	got = tableOps([]map[string]any{
		{"name": "after", "op": "insert", "table": "Counter", "item": map[string]any{"text": "again"}},
		{"name": "all", "op": "read", "table": "Counter", "query": map[string]any{}},
	})
	if after := item(got["after"]); after["id"] != 1.0 {
		t.Fatalf("first insert after truncate: %v", after)
	}
	if r := got["all"]; !r.OK || json.Unmarshal(r.Value, &q) != nil || len(q.Items) != 1 {
		t.Fatalf("rows after truncate and one insert: %+v", r)
	}
}
