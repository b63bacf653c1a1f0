package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
)

// TestCLIAudit: the CLI's changes are recorded with the OS user as actor, table changes with their
// before and after; read-only commands and failed changes are not; audit list and export read it.
func TestCLIAudit(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) string {
		if k == "GATEHOUSE_DATA" {
			return dir
		}
		return ""
	}
	ctx := context.Background()
	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, &out, &errb, env)
		return code, out.String(), errb.String()
	}
	for _, args := range [][]string{
		{"migrate", "up"},
		{"table", "create", "todo", "--columns", "text=string"},
		{"table", "update", "--permissions", "read=user", "todo"},
		{"table", "list"},
		{"table", "show", "todo"},
	} {
		if code, _, stderr := cli(args...); code != 0 || strings.Contains(stderr, "audit entry lost") {
			t.Fatalf("%v: %d %s", args, code, stderr)
		}
	}
	if code, _, _ := cli("table", "delete", "todo"); code != 2 {
		t.Fatalf("delete without --yes: %d", code)
	}
	code, out, stderr := cli("audit", "list", "--json", "--order", "asc")
	if code != 0 {
		t.Fatalf("audit list: %d %s", code, stderr)
	}
	var list []audit.Entry
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Action+" "+e.Target+" "+e.Via)
		if !strings.HasPrefix(e.Actor, "cli:") {
			t.Fatalf("actor %q", e.Actor)
		}
	}
	if strings.Join(got, ",") != "migrate.up  cli,table.create todo cli,table.permissions todo cli" {
		t.Fatalf("trail: %v", got)
	}
	if p := list[2]; !strings.Contains(string(p.Before), `"read":"application"`) || !strings.Contains(string(p.After), `"read":"user"`) {
		t.Fatalf("before/after: %s %s", p.Before, p.After)
	}
	code, out, _ = cli("audit", "export", "--format", "csv", "--action", "table.*")
	if code != 0 || strings.Count(out, "\n") < 3 || !strings.HasPrefix(out, "id,time,actor,via,action") {
		t.Fatalf("export: %d %s", code, out)
	}
	if code, _, _ := cli("audit", "list", "--since", "yesterday"); code != 2 {
		t.Fatalf("bad --since: %d", code)
	}
}

func TestSplitCLIArgs(t *testing.T) {
	sub, pos, flags := splitCLIArgs([]string{"update", "--soft-delete", "true", "--data=/d", "todo", "--permissions", "read=user", "--yes", "--", "-x"})
	if sub != "update" || strings.Join(pos, " ") != "todo -x" || strings.Join(flags, " ") != "--soft-delete=true --data=/d --permissions=read=user --yes=true" {
		t.Fatalf("%q %q %q", sub, pos, flags)
	}
	if got := redactURL("https://user:pw@old.azure-mobile.net/tables?key=s"); got != "https://old.azure-mobile.net/tables" {
		t.Fatalf("redactURL: %s", got)
	}
}
