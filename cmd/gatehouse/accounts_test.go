package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/user"
)

// TestUsersAccountCommands: add, import (idempotent, per-row errors), set-password, enable, then a
// served login with an imported legacy password and with the CLI-set one.
func TestUsersAccountCommands(t *testing.T) {
	data := t.TempDir()
	env := map[string]string{"GATEHOUSE_ACCOUNTS_ENABLED": "true", "GATEHOUSE_ACCOUNTS_ARGON2_MEMORY_KIB": "1024", "GATEHOUSE_ACCOUNTS_ARGON2_TIME": "1"}
	// Admin commands never migrate (issue 11): the schema is created first.
	if code, _, errs := runCmd(t, env, "migrate", "up", "--data", data); code != 0 {
		t.Fatalf("migrate up: %s", errs)
	}
	cli := func(stdin string, args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		handled, err := accountUsersCmd(context.Background(), append(args, "--data", data), strings.NewReader(stdin), &out, &errb, envOf(env))
		if !handled {
			t.Fatalf("%v not handled", args)
		}
		return out.String(), errb.String(), err
	}
	// Flags come before positional arguments, so --data is appended to args that have none.
	out, _, err := cli("first password\n", "add", "--email", "Ops@Example.com", "--password-stdin", "--verified")
	if err != nil || !strings.Contains(out, `"email": "Ops@example.com"`) || !strings.Contains(out, `"passwordScheme": "argon2id"`) {
		t.Fatalf("add: %v %s", err, out)
	}
	if _, _, err := cli("", "add", "--email", "ops@example.com"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate add: %v", err)
	}
	if _, _, err := cli("", "add"); err == nil {
		t.Fatal("add without --email accepted")
	}
	file := filepath.Join(t.TempDir(), "users.csv")
	os.WriteFile(file, []byte("email,user_id,hash_format,hash,salt\n"+
		"ann@example.com,Custom:1,zumo,lEgtee7nF9+YepTb9EairotYaysAL3EYKHVqYOW73FU=,d9Wgx1bBKiXtOdOW07lxnh+BwSrXOxaMshj/ls5Hsu8=\n"+
		"oops,,,,\n"), 0o600)
	var out2, errb bytes.Buffer
	handled, err := accountUsersCmd(context.Background(), []string{"import", "--data", data, file}, strings.NewReader(""), &out2, &errb, envOf(env))
	if !handled || err == nil || !strings.Contains(out2.String(), "1 created, 0 already present, 1 errors") || !strings.Contains(errb.String(), "line 3 (oops)") {
		t.Fatalf("import: %v\n%s\n%s", err, out2.String(), errb.String())
	}
	out2.Reset()
	accountUsersCmd(context.Background(), []string{"import", "--data", data, file}, strings.NewReader(""), &out2, &errb, envOf(env)) //nolint:errcheck
	if !strings.Contains(out2.String(), "0 created, 1 already present, 1 errors") {
		t.Fatalf("re-import: %s", out2.String())
	}
	if _, _, err := cli("second password\n", "set-password", "--user", "ops@example.com"); err != nil {
		t.Fatal(err)
	}
	if out, _, err := cli("", "enable", "--user", "Custom:1"); err != nil || !strings.Contains(out, "enabled") {
		t.Fatalf("enable: %v %s", err, out)
	}
	if _, _, err := cli("", "enable", "--user", "nobody@example.com"); err == nil {
		t.Fatal("enable of an unknown account succeeded")
	}
	// disable by address: the account and its user in the directory, then enable by the argument.
	if out, _, err := cli("", "disable", "ann@example.com"); err != nil || !strings.Contains(out, "(ann@example.com) disabled") {
		t.Fatalf("disable by address: %v %s", err, out)
	}
	{
		db, err := store.Open(context.Background(), "", data)
		if err != nil {
			t.Fatal(err)
		}
		u, err := user.NewSQL(db).Get(context.Background(), "Custom:1")
		db.Close()
		if err != nil || !u.Disabled {
			t.Fatalf("directory user not disabled with its account: %v %+v", err, u)
		}
	}
	if out, _, err := cli("", "enable", "ann@example.com"); err != nil || !strings.Contains(out, "(ann@example.com) enabled") {
		t.Fatalf("enable by address: %v %s", err, out)
	}
	if _, _, err := cli("", "disable", "nobody@example.com"); err == nil {
		t.Fatal("disable of an unknown account succeeded")
	}

	// The CLI created the users in the directory too.
	db, err := store.Open(context.Background(), "", data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := user.NewSQL(db).Get(context.Background(), "Custom:1"); err != nil {
		t.Fatalf("imported user not in the directory: %v", err)
	}
	db.Close()

	base, _, stop := startServer(t, []string{"--data", data}, env)
	defer stop()
	for _, c := range []struct{ email, pw, uid string }{{"ann@example.com", "Passw0rd!", "Custom:1"}, {"ops@example.com", "second password", "custom:"}} {
		res, err := http.Post(base+"/.auth/login/custom", "application/json", strings.NewReader(`{"email":"`+c.email+`","password":"`+c.pw+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(b.String(), `"userId":"`+c.uid) {
			t.Fatalf("login %s: %d %s", c.email, res.StatusCode, b.String())
		}
	}
}
