package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/user"
)

func TestUsersCommand(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	db, err := store.Open(ctx, "", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := user.NewDirectory(user.NewSQL(db), user.Options{})
	if _, err := dir.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "https://accounts.google.com", Subject: "1234", Claims: map[string]any{"email": "a@example.com"}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	getenv := func(string) string { return "" }
	runCmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		full := append([]string{args[0], args[1], "--data", dataDir}, args[2:]...)
		code := run(ctx, full, &out, &errb, getenv)
		return code, out.String(), errb.String()
	}
	if code, out, errs := runCmd("users", "list"); code != 0 || !strings.Contains(out, "Google:1234") {
		t.Fatalf("list: %d %q %q", code, out, errs)
	}
	if code, out, _ := runCmd("users", "show", "--json", "Google:1234"); code != 0 || !strings.Contains(out, `"email":"a@example.com"`) || strings.Contains(out, "accessToken") {
		t.Fatalf("show: %d %q", code, out)
	}
	if code, out, _ := runCmd("users", "disable", "Google:1234"); code != 0 || !strings.Contains(out, "disabled") {
		t.Fatalf("disable: %d %q", code, out)
	}
	if code, out, _ := runCmd("users", "show", "Google:1234"); code != 0 || !strings.Contains(out, "disabled:   true") {
		t.Fatalf("show disabled: %d %q", code, out)
	}
	// Flags after the argument, as printed in the help.
	if code, out, errs := runCmd("users", "show", "Google:1234", "--json"); code != 0 || !strings.Contains(out, `"disabled":true`) {
		t.Fatalf("show ID --json: %d %q %q", code, out, errs)
	}
	// A provider user (not an account) is re-enabled by its id given as the argument, or with --user.
	if code, out, errs := runCmd("users", "enable", "Google:1234"); code != 0 || !strings.Contains(out, "user Google:1234 enabled") {
		t.Fatalf("enable provider user: %d %q %q", code, out, errs)
	}
	if code, out, _ := runCmd("users", "show", "Google:1234"); code != 0 || !strings.Contains(out, "disabled:   false") {
		t.Fatalf("show enabled: %d %q", code, out)
	}
	if code, _, _ := runCmd("users", "disable", "Google:1234"); code != 0 {
		t.Fatal("disable again")
	}
	if code, out, errs := runCmd("users", "enable", "--user", "Google:1234"); code != 0 || !strings.Contains(out, "enabled") {
		t.Fatalf("enable --user: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCmd("users", "enable", "Google:nobody"); code != 1 || !strings.Contains(errs, `no account or user "Google:nobody"`) {
		t.Fatalf("enable unknown: %d %q", code, errs)
	}
	if code, _, _ := runCmd("users", "enable", "a", "b"); code != 2 {
		t.Fatalf("enable with two users: %d", code)
	}
	if code, _, errs := runCmd("users", "revoke", "nobody:1"); code != 1 || !strings.Contains(errs, `no user "nobody:1"`) {
		t.Fatalf("revoke unknown: %d %q", code, errs)
	}
	if code, _, _ := runCmd("users", "show"); code != 2 {
		t.Fatalf("show without id: %d", code)
	}
}
