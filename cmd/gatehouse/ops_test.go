package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

var opsKeys = map[string]string{
	"GATEHOUSE_MASTER_KEY":      "ops-test-master-key-0123456789abc",
	"GATEHOUSE_APPLICATION_KEY": "ops-test-application-key-0123456",
	"GATEHOUSE_SYSTEM_KEY":      "ops-test-system-key-0123456789abc",
}

func do(t *testing.T, method, u, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
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

// TestAdminCommandsNeverCreateDataDir: run in the wrong place, admin commands name --data and leave
// nothing behind.
func TestAdminCommandsNeverCreateDataDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gatehouse-data")
	for _, args := range [][]string{
		{"token", "mint", "--user", "custom:1"},
		{"keys", "rotate"},
		{"table", "list"},
		{"users", "list"},
		{"jobs", "list"},
		{"migrate", "status"},
		{"migrate", "up"},
		{"backup", "--out", filepath.Join(t.TempDir(), "b.tar.gz")},
	} {
		code, _, errs := runCmd(t, nil, append(args, "--data", missing)...)
		if code != 1 || !strings.Contains(errs, "--data") {
			t.Errorf("%v: exit %d, %s", args, code, errs)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v created the data directory", args)
		}
	}
}

// TestMigrateCommandsAndAutoMigrate: a database left behind by the previous release is refused by
// admin commands and by serve with auto_migrate=false (naming migrate up), reported by migrate
// status, brought up to date by migrate up; serve migrates by default.
func TestMigrateCommandsAndAutoMigrate(t *testing.T) {
	data := t.TempDir()
	all := store.Migrations()
	db, err := store.OpenWith(context.Background(), "", data, store.Options{Schema: store.Migrate, Migrations: all[:len(all)-1]})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	last := all[len(all)-1]
	code, out, _ := runCmd(t, nil, "migrate", "status", "--data", data)
	if code != 0 || !strings.Contains(out, "1 migration(s) pending") || !strings.Contains(out, "pending") || !strings.Contains(out, last.Name) {
		t.Fatalf("status: %d %s", code, out)
	}
	if code, _, errs := runCmd(t, nil, "table", "list", "--data", data); code != 1 || !strings.Contains(errs, "gatehouse migrate up") {
		t.Fatalf("table list on a behind database: %d %s", code, errs)
	}
	env := map[string]string{"GATEHOUSE_AUTO_MIGRATE": "false"}
	if code, _, errs := runCmd(t, env, "serve", "--listen", "127.0.0.1:0", "--data", data); code != 1 || !strings.Contains(errs, "gatehouse migrate up") {
		t.Fatalf("serve with auto_migrate=false: %d %s", code, errs)
	}
	// Still behind: nothing migrated it.
	if _, out, _ := runCmd(t, nil, "migrate", "status", "--json", "--data", data); !strings.Contains(out, `"pending":[{"version":`) {
		t.Fatalf("status --json: %s", out)
	}
	code, out, errs := runCmd(t, nil, "migrate", "up", "--data", data)
	if code != 0 || !strings.Contains(out, "applied "+strconv.Itoa(last.Version)) || !strings.Contains(out, "1 migration(s) applied") {
		t.Fatalf("migrate up: %d %s %s", code, out, errs)
	}
	if code, out, _ := runCmd(t, nil, "migrate", "status", "--data", data); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("status after up: %s", out)
	}
	_, _, stop := startServer(t, []string{"--data", data}, env)
	if stop() != 0 {
		t.Fatal("serve with auto_migrate=false on a current database failed")
	}
}

// TestJobsHistoryThroughAdminAPIAndCLI: a manual run through POST /jobs shows up in GET /admin/jobs,
// GET /admin/jobs/{name}/runs (master key only) and `gatehouse jobs list|runs`.
func TestJobsHistoryThroughAdminAPIAndCLI(t *testing.T) {
	app := t.TempDir()
	os.MkdirAll(filepath.Join(app, "scheduler"), 0o755)
	os.WriteFile(filepath.Join(app, "datamodel.json"), []byte(`{"jobs":[{"name":"tick"},{"name":"nightly"}]}`), 0o644)
	os.WriteFile(filepath.Join(app, "scheduler", "tick.js"), []byte(`function tick() { console.log('tick'); }`), 0o644)
	os.WriteFile(filepath.Join(app, "scheduler", "nightly.js"), []byte(`function nightly() { throw new Error('disk full'); }`), 0o644)
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"GATEHOUSE_JOBS": "nightly=24h"}
	for k, v := range opsKeys {
		env[k] = v
	}
	base, _, stop := startServer(t, []string{"--data", data, "--app", app}, env)
	master := map[string]string{"X-ZUMO-MASTER": opsKeys["GATEHOUSE_MASTER_KEY"]}
	if code, _ := do(t, "GET", base+"/admin/jobs", "", nil); code != 401 {
		t.Fatalf("GET /admin/jobs without the master key: %d", code)
	}
	if code, body := do(t, "POST", base+"/jobs/tick", "", master); code != 200 {
		t.Fatalf("POST /jobs/tick: %d %s", code, body)
	}
	var runs []map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := do(t, "GET", base+"/admin/jobs/tick/runs?limit=5", "", master)
		if code != 200 {
			t.Fatalf("runs: %d %s", code, body)
		}
		runs = nil
		json.Unmarshal([]byte(body), &runs)
		if len(runs) == 1 && runs[0]["outcome"] == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished run: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if runs[0]["trigger"] != "manual" || runs[0]["instance"] == "" || runs[0]["finishedAt"] == nil {
		t.Fatalf("run %v", runs[0])
	}
	// nightly's slot (current at start) ran and failed; its error is in the history.
	var list []map[string]any
	for {
		_, body := do(t, "GET", base+"/admin/jobs", "", master)
		list = nil
		json.Unmarshal([]byte(body), &list)
		if len(list) == 2 && list[0]["lastRun"] != nil && list[0]["lastRun"].(map[string]any)["outcome"] != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	nightly := list[0]["lastRun"].(map[string]any)
	if list[0]["name"] != "nightly" || list[0]["schedule"] != "24h0m0s" || nightly["outcome"] != "failed" || !strings.Contains(nightly["error"].(string), "disk full") || nightly["trigger"] != "scheduled" {
		t.Fatalf("nightly: %v", list[0])
	}
	for _, bad := range []string{"/admin/jobs/tick/runs?limit=0", "/admin/jobs/tick/runs?before=yesterday"} {
		if code, _ := do(t, "GET", base+bad, "", master); code != 400 {
			t.Fatalf("%s: %d", bad, code)
		}
	}
	if code, _ := do(t, "GET", base+"/admin/jobs/nothere/runs", "", master); code != 404 {
		t.Fatalf("unknown job: %d", code)
	}
	if code, body := do(t, "GET", base+"/metrics", "", master); code != 200 ||
		!strings.Contains(body, `gatehouse_job_ledger_runs_total{job="tick",outcome="succeeded"} 1`) ||
		!strings.Contains(body, `gatehouse_job_ledger_runs_total{job="nightly",outcome="failed"} 1`) ||
		!strings.Contains(body, `gatehouse_job_run_duration_seconds_count{job="tick"} 1`) {
		t.Fatalf("metrics: %d %s", code, body)
	}
	code, out, errs := runCmd(t, env, "jobs", "runs", "tick", "--data", data)
	if code != 0 || !strings.Contains(out, "manual") || !strings.Contains(out, "succeeded") {
		t.Fatalf("jobs runs: %d %s %s", code, out, errs)
	}
	code, out, errs = runCmd(t, env, "jobs", "list", "--data", data, "--app", app)
	if code != 0 || !strings.Contains(out, "nightly") || !strings.Contains(out, "24h0m0s") || !strings.Contains(out, "failed") {
		t.Fatalf("jobs list: %d %s %s", code, out, errs)
	}
	stop()
}

// TestBackupRestoreRoundTrip: an online backup of a running server, restored into a new data
// directory, serves the same rows and accepts tokens signed before the backup; restore refuses a
// non-empty data directory without --force, moves it aside with it, and refuses a tampered archive.
func TestBackupRestoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	base, _, stop := startServer(t, []string{"--data", data}, nil)
	ks, err := keys.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	master := map[string]string{"X-ZUMO-MASTER": ks.MasterKey}
	if code, body := do(t, "POST", base+"/admin/tables", `{"name":"notes","permissions":{"*":"application"}}`, master); code != 201 && code != 200 {
		t.Fatalf("create table: %d %s", code, body)
	}
	if code, body := do(t, "POST", base+"/tables/notes", `{"id":"n1","text":"kept"}`, master); code != 201 && code != 200 {
		t.Fatalf("insert: %d %s", code, body)
	}
	_, tok, _ := runCmd(t, nil, "token", "mint", "--data", data, "--user", "custom:7")
	tok = strings.TrimSpace(tok)
	archive := filepath.Join(dir, "backup.tar.gz")
	code, out, errs := runCmd(t, nil, "backup", "--data", data, "--out", archive)
	if code != 0 || !strings.Contains(out, "with keys.json") {
		t.Fatalf("backup: %d %s %s", code, out, errs)
	}
	// Not a terminal: no progress line, the output as it always was.
	if errs != "the archive holds secrets: keep it encrypted and access-controlled.\n" || strings.ContainsAny(out, "\r\x1b") {
		t.Fatalf("backup off a terminal: %q %q", out, errs)
	}
	if st, err := os.Stat(archive); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("archive mode: %v %v", st, err)
	}
	if code, _, errs := runCmd(t, nil, "backup", "--data", data, "--out", archive); code != 1 || !strings.Contains(errs, "--force") {
		t.Fatalf("backup over an existing archive: %d %s", code, errs)
	}
	// Written after the backup: not in the archive.
	do(t, "POST", base+"/tables/notes", `{"id":"n2","text":"later"}`, master)
	stop()

	restored := filepath.Join(dir, "restored")
	code, out, errs = runCmd(t, nil, "restore", "--data", restored, "--in", archive)
	if code != 0 || !strings.Contains(out, "with keys.json") || errs != "" || strings.ContainsAny(out, "\r\x1b") {
		t.Fatalf("restore: %d %q %q", code, out, errs)
	}
	if st, err := os.Stat(restored); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("restored directory: %v %v", st, err)
	}
	base2, _, stop2 := startServer(t, []string{"--data", restored}, nil)
	if code, body := do(t, "GET", base2+"/tables/notes/n1", "", master); code != 200 || !strings.Contains(body, "kept") {
		t.Fatalf("restored row: %d %s", code, body)
	}
	if code, _ := do(t, "GET", base2+"/tables/notes/n2", "", master); code != 404 {
		t.Fatalf("a row written after the backup: %d", code)
	}
	if code, body := do(t, "GET", base2+"/.auth/me", "", map[string]string{"X-ZUMO-AUTH": tok}); code != 200 {
		t.Fatalf("token minted before the backup: %d %s", code, body)
	}
	stop2()

	if code, _, errs := runCmd(t, nil, "restore", "--data", data, "--in", archive); code != 1 || !strings.Contains(errs, "not empty") || !strings.Contains(errs, "--force") {
		t.Fatalf("restore over a data directory: %d %s", code, errs)
	}
	code, out, errs = runCmd(t, nil, "restore", "--data", data, "--in", archive, "--force")
	if code != 0 || !strings.Contains(out, "moved to") {
		t.Fatalf("restore --force: %d %s %s", code, out, errs)
	}
	aside, _ := filepath.Glob(data + ".before-restore-*")
	if len(aside) != 1 {
		t.Fatalf("moved-aside directories: %v", aside)
	}
	if _, err := os.Stat(filepath.Join(aside[0], "gatehouse.db")); err != nil {
		t.Fatalf("the replaced database was not kept: %v", err)
	}

	// One byte of the database changed, the manifest kept: refused, and nothing is touched.
	tampered := filepath.Join(dir, "tampered.tar.gz")
	rewriteArchive(t, archive, tampered, func(name string, b []byte) []byte {
		if name == "gatehouse.db" {
			b[len(b)-1] ^= 0xff
		}
		return b
	})
	target := filepath.Join(dir, "fresh")
	if code, _, errs := runCmd(t, nil, "restore", "--data", target, "--in", tampered); code != 1 || !strings.Contains(errs, "checksum") {
		t.Fatalf("tampered archive: %d %s", code, errs)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed restore created the data directory")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".gatehouse-restore-*")); len(left) != 0 {
		t.Fatalf("temporary directories left: %v", left)
	}
}

func rewriteArchive(t *testing.T, in, out string, edit func(string, []byte) []byte) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		b = edit(hdr.Name, b)
		hdr.Size = int64(len(b))
		tw.WriteHeader(hdr)
		tw.Write(b)
	}
	tw.Close()
	gw.Close()
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresDumpRestore is the documented PostgreSQL procedure: pg_dump -Fc of Gatehouse's schema,
// pg_restore into another database, Gatehouse started on the restored copy serves the data.
func TestPostgresDumpRestore(t *testing.T) {
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing and CI is set", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
	dsn := storetest.PostgresURL(t)
	u, _ := url.Parse(dsn)
	schema := u.Query().Get("search_path")
	server := *u // the same server, without the search_path (not a libpq parameter)
	q := server.Query()
	q.Del("search_path")
	server.RawQuery = q.Encode()

	env := opsKeys
	base, _, stop := startServer(t, []string{"--data", t.TempDir(), "--database", dsn}, env)
	master := map[string]string{"X-ZUMO-MASTER": opsKeys["GATEHOUSE_MASTER_KEY"]}
	if code, body := do(t, "POST", base+"/admin/tables", `{"name":"notes","permissions":{"*":"application"}}`, master); code != 201 && code != 200 {
		t.Fatalf("create table: %d %s", code, body)
	}
	if code, body := do(t, "POST", base+"/tables/notes", `{"id":"n1","text":"kept"}`, master); code != 201 && code != 200 {
		t.Fatalf("insert: %d %s", code, body)
	}
	stop()

	dump := filepath.Join(t.TempDir(), "gatehouse.dump")
	if out, err := exec.Command("pg_dump", "-Fc", "--no-owner", "-n", schema, "-f", dump, server.String()).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	admin, err := sql.Open("pgx", server.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	rand.Read(b)
	dbname := "gh_restore_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE DATABASE ` + dbname); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(`DROP DATABASE IF EXISTS ` + dbname + ` WITH (FORCE)`) })
	target := server
	target.Path = "/" + dbname
	if out, err := exec.Command("pg_restore", "--no-owner", "--exit-on-error", "-d", target.String(), dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	restored := target
	rq := restored.Query()
	rq.Set("search_path", schema)
	restored.RawQuery = rq.Encode()
	if code, out, errs := runCmd(t, env, "migrate", "status", "--database", restored.String()); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate status on the restored database: %d %s %s", code, out, errs)
	}
	base2, _, stop2 := startServer(t, []string{"--data", t.TempDir(), "--database", restored.String()}, env)
	if code, body := do(t, "GET", base2+"/tables/notes/n1", "", master); code != 200 || !strings.Contains(body, "kept") {
		t.Fatalf("restored row: %d %s", code, body)
	}
	stop2()
}

// TestServeOnNewerSchema: this binary, as the previous release of a rolling upgrade, starts on a
// database a newer release migrated additively (with a warning) and refuses a non-additive one.
func TestServeOnNewerSchema(t *testing.T) {
	data := t.TempDir()
	newer := append(store.Migrations(), store.Migration{Version: 9000, Name: "audit log", Additive: true,
		SQLite: `CREATE TABLE gatehouse_future_log (id TEXT PRIMARY KEY)`, Postgres: `CREATE TABLE gatehouse_future_log (id TEXT PRIMARY KEY)`})
	db, err := store.OpenWith(context.Background(), "", data, store.Options{Schema: store.Migrate, Migrations: newer})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, stderr, stop := startServer(t, []string{"--data", data}, nil)
	if stop() != 0 || !strings.Contains(stderr.String(), "newer additive migration") || !strings.Contains(stderr.String(), "audit log") {
		t.Fatalf("serve on an additively newer schema: %s", stderr.String())
	}
	if code, out, _ := runCmd(t, nil, "migrate", "status", "--data", data); code != 0 || !strings.Contains(out, "unknown to this binary") || !strings.Contains(out, "this binary runs on it") {
		t.Fatalf("status: %s", out)
	}
	newer = append(newer, store.Migration{Version: 9001, Name: "drop meta", SQLite: `DROP TABLE gatehouse_meta`, Postgres: `DROP TABLE gatehouse_meta`})
	if db, err = store.OpenWith(context.Background(), "", data, store.Options{Schema: store.Migrate, Migrations: newer}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if code, _, errs := runCmd(t, nil, "serve", "--listen", "127.0.0.1:0", "--data", data); code != 1 || !strings.Contains(errs, "migration 9001 (drop meta)") || !strings.Contains(errs, "not backward compatible") {
		t.Fatalf("serve on a non-additively newer schema: %d %s", code, errs)
	}
}

// TestJobScheduleThroughAdminAPIAndCLI: a schedule set with PUT /admin/jobs/{name}/schedule (master key
// only) is taken up by the running server at once, a change made with `gatehouse jobs schedule` shows
// in the server's GET /admin/jobs, and both are in the audit trail with their actor and surface.
func TestJobScheduleThroughAdminAPIAndCLI(t *testing.T) {
	app := t.TempDir()
	os.MkdirAll(filepath.Join(app, "scheduler"), 0o755)
	os.WriteFile(filepath.Join(app, "datamodel.json"), []byte(`{"jobs":[{"name":"tick"},{"name":"nightly"}]}`), 0o644)
	os.WriteFile(filepath.Join(app, "scheduler", "tick.js"), []byte(`function tick() { console.log('tick'); }`), 0o644)
	os.WriteFile(filepath.Join(app, "scheduler", "nightly.js"), []byte(`function nightly() { console.log('nightly'); }`), 0o644)
	data := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"GATEHOUSE_JOBS": "nightly=24h", "USER": "opsuser"}
	for k, v := range opsKeys {
		env[k] = v
	}
	base, _, stop := startServer(t, []string{"--data", data, "--app", app}, env)
	defer stop()
	master := map[string]string{"X-ZUMO-MASTER": opsKeys["GATEHOUSE_MASTER_KEY"], "ZUMO-API-VERSION": "2.0.0"}
	if code, _ := do(t, "PUT", base+"/admin/jobs/tick/schedule", `{"every":"1m"}`, nil); code != 401 {
		t.Fatalf("PUT without the master key: %d", code)
	}
	if code, body := do(t, "PUT", base+"/admin/jobs/tick/schedule", `{"every":"10s"}`, master); code != 400 || body != `{"error":"The interval must be from 1m to 366d, not 10s."}` {
		t.Fatalf("PUT 10s: %d %s", code, body)
	}
	if code, _ := do(t, "PUT", base+"/admin/jobs/nothere/schedule", `{"every":"1m"}`, master); code != 404 {
		t.Fatalf("PUT unknown job: %d", code)
	}
	code, body := do(t, "PUT", base+"/admin/jobs/tick/schedule", `{"every":"1m"}`, master)
	if code != 200 || !strings.Contains(body, `"source":"database"`) {
		t.Fatalf("PUT: %d %s", code, body)
	}
	// tick had no schedule: the current minute's slot runs now, scheduled.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := do(t, "GET", base+"/admin/jobs/tick/runs", "", master)
		if strings.Contains(body, `"trigger":"scheduled"`) && strings.Contains(body, `"outcome":"succeeded"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new schedule did not run: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The CLI: bad flags, an unknown job, then a change the server shows.
	for _, args := range [][]string{{"--every", "30s"}, {"--default", "--every", "1h"}, {"--enable", "--disable"}} {
		if code, _, errs := runCmd(t, env, append([]string{"jobs", "schedule", "nightly", "--data", data, "--app", app}, args...)...); code != 2 {
			t.Fatalf("jobs schedule %v: %d %s", args, code, errs)
		}
	}
	if code, _, errs := runCmd(t, env, "jobs", "schedule", "nightly", "--data", data, "--disable"); code != 2 || !strings.Contains(errs, "--app") {
		t.Fatalf("without --app: %d %s", code, errs)
	}
	if code, _, errs := runCmd(t, env, "jobs", "schedule", "nothere", "--data", data, "--app", app, "--disable"); code != 1 || !strings.Contains(errs, "no job nothere") {
		t.Fatalf("unknown job: %d %s", code, errs)
	}
	code, out, errs := runCmd(t, env, "jobs", "schedule", "nightly", "--data", data, "--app", app, "--disable")
	if code != 0 || !strings.Contains(out, "nightly: every 1d, disabled (set by cli:") || !strings.Contains(out, "saved") {
		t.Fatalf("jobs schedule --disable: %d %s %s", code, out, errs)
	}
	_, body = do(t, "GET", base+"/admin/jobs", "", master)
	var list []map[string]any
	json.Unmarshal([]byte(body), &list)
	if len(list) != 2 || list[0]["name"] != "nightly" || list[0]["enabled"] != false || list[0]["source"] != "database" || list[1]["every"] != "1m" {
		t.Fatalf("GET /admin/jobs after the CLI: %s", body)
	}
	code, out, _ = runCmd(t, env, "jobs", "list", "--data", data, "--app", app)
	if code != 0 || !strings.Contains(out, "24h0m0s (disabled) (set at run time)") || !strings.Contains(out, "1m0s (set at run time)") {
		t.Fatalf("jobs list: %s", out)
	}
	code, out, _ = runCmd(t, env, "jobs", "schedule", "nightly", "--data", data, "--app", app, "--default", "--json")
	if code != 0 || !strings.Contains(out, `"source":"configuration"`) || !strings.Contains(out, `"enabled":true`) {
		t.Fatalf("jobs schedule --default: %d %s", code, out)
	}
	code, body = do(t, "GET", base+"/admin/audit?action=job.schedule&order=asc", "", master)
	var trail struct{ Entries []map[string]any }
	json.Unmarshal([]byte(body), &trail)
	var got []string
	for _, e := range trail.Entries {
		got = append(got, fmt.Sprint(e["target"], " ", e["actor"], " ", e["via"]))
	}
	if code != 200 || len(got) != 3 || got[0] != "tick master-key admin-api" || !strings.HasPrefix(got[1], "nightly cli:") || !strings.HasSuffix(got[2], " cli") {
		t.Fatalf("audit: %d %v", code, got)
	}
}
