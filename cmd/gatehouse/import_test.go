package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const importTestMaster = "import-test-master-key-0123456789"

// zumo sends one request to a Gatehouse with the master key and answers status and body.
func zumo(t *testing.T, method, u string, v2 bool, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, r)
	req.Header.Set("X-ZUMO-MASTER", importTestMaster)
	req.Header.Set("Content-Type", "application/json")
	if v2 {
		req.Header.Set("ZUMO-API-VERSION", "2.0.0")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// snapshot reads a whole table, deleted rows and system properties included, in both dialects.
func snapshot(t *testing.T, base, tbl string) string {
	t.Helper()
	q := "?__includeDeleted=true&__systemProperties=*&$orderby=id&$top=1000"
	c1, v1 := zumo(t, "GET", base+"/tables/"+tbl+q, false, nil)
	c2, v2 := zumo(t, "GET", base+"/tables/"+tbl+q, true, nil)
	if c1 != 200 || c2 != 200 {
		t.Fatalf("read %s: %d %s / %d %s", tbl, c1, v1, c2, v2)
	}
	return v1 + "\n" + v2
}

// seedSource creates and fills the source's tables: string and integer ids, soft-deleted rows, dates,
// numbers, booleans and nulls, and a table with more rows than one page.
func seedSource(t *testing.T, srcData string) (base string, stop func() int) {
	t.Helper()
	env := map[string]string{"GATEHOUSE_MASTER_KEY": importTestMaster}
	if err := os.MkdirAll(srcData, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"migrate", "up"}, // admin commands never create or migrate a database
		{"table", "create", "movies", "--soft-delete", "--columns", "title=string,year=number,released=date,seen=boolean"},
		{"table", "create", "counters", "--integer-id", "--soft-delete"},
		{"table", "create", "bulk", "--permissions", "*=admin"},
	} {
		if code, _, errs := runCmd(t, env, append(args, "--data", srcData)...); code != 0 {
			t.Fatalf("%v: %s", args, errs)
		}
	}
	base, _, stop = startServer(t, []string{"--data", srcData}, env)
	for i, m := range []map[string]any{
		{"id": "m1", "title": "Alien", "year": 1979, "released": "1979-05-25T00:00:00.000Z", "seen": true},
		{"id": "m2", "title": "L'Atalante — “quoted”", "year": 1934.5, "released": "1934-09-12T10:11:12.345Z", "seen": false},
		{"id": "m3", "title": nil, "year": nil, "released": nil, "seen": nil},
		{"id": "m4", "title": "Deleted", "year": 2000},
	} {
		if c, b := zumo(t, "POST", base+"/tables/movies", i%2 == 0, m); c != 201 {
			t.Fatalf("seed movies: %d %s", c, b)
		}
	}
	if c, b := zumo(t, "DELETE", base+"/tables/movies/m4", false, nil); c != 200 && c != 204 {
		t.Fatalf("delete m4: %d %s", c, b)
	}
	for i := 0; i < 5; i++ {
		if c, b := zumo(t, "POST", base+"/tables/counters", false, map[string]any{"n": i, "label": fmt.Sprintf("c%d", i), "when": "2020-01-0" + fmt.Sprint(i+1) + "T00:00:00Z"}); c != 201 {
			t.Fatalf("seed counters: %d %s", c, b)
		}
	}
	if c, b := zumo(t, "DELETE", base+"/tables/counters/2", false, nil); c != 200 && c != 204 {
		t.Fatalf("delete counter 2: %d %s", c, b)
	}
	for i := 0; i < 45; i++ {
		if c, b := zumo(t, "POST", base+"/tables/bulk", true, map[string]any{"id": fmt.Sprintf("b%02d", i), "n": i}); c != 201 {
			t.Fatalf("seed bulk: %d %s", c, b)
		}
	}
	return base, stop
}

func importArgs(from, data string, extra ...string) []string {
	return append([]string{"import", "--from", from, "--data", data}, extra...)
}

var importEnv = map[string]string{envImportMasterKey: importTestMaster}

// TestImportFromGatehouse imports a live Gatehouse into an empty data directory, compares every row
// with its system properties, re-runs after changes (only the changes are copied), and checks that a
// source dying mid-import leaves a consistent prefix that a re-run completes.
func TestImportFromGatehouse(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testImportFromGatehouse(t, func() string { return "" }) })
	t.Run("postgres", func(t *testing.T) { testImportFromGatehouse(t, func() string { return storetest.PostgresURL(t) }) })
}

func testImportFromGatehouse(t *testing.T, newDSN func() string) {
	srcData := filepath.Join(t.TempDir(), "src")
	base, _ := seedSource(t, srcData)
	dstData := filepath.Join(t.TempDir(), "dst")
	dsn := newDSN()
	importArgs := func(from, data string, extra ...string) []string {
		return append([]string{"import", "--from", from, "--data", data, "--database", dsn}, extra...)
	}
	startServer := func(t *testing.T, args []string, env map[string]string) (string, *lockedBuffer, func() int) {
		return startServer(t, append(args, "--database", dsn), env)
	}

	code, out, errs := runCmd(t, importEnv, importArgs(base, dstData, "--page-size", "7")...)
	if code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errs)
	}
	if !regexp.MustCompile(`\(v2\): 3 tables, 54 rows \(2 deleted\)`).MatchString(out) {
		t.Fatalf("summary: %s", out)
	}
	// Not a terminal: the plain lines on stdout, no progress line on stderr.
	if !strings.Contains(out, "movies: done, ") || strings.ContainsAny(out+errs, "\r\x1b") {
		t.Fatalf("import off a terminal: %q %q", out, errs)
	}
	if strings.Contains(out+errs, importTestMaster) {
		t.Fatal("the master key was printed")
	}
	if strings.HasPrefix(dsn, "postgres") {
		// The import leaves the planner's statistics behind (store.DB.Analyze): a table never analyzed
		// has reltuples -1 until autovacuum comes by.
		db, err := store.Open(context.Background(), dsn, dstData)
		if err != nil {
			t.Fatal(err)
		}
		for _, tbl := range []string{"gh_movies", "gh_counters", "gh_bulk"} {
			var est float64
			if err := db.QueryRow(`SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)`, tbl).Scan(&est); err != nil || est <= 0 {
				t.Errorf("%s: no planner statistics after the import (reltuples %v, %v)", tbl, est, err)
			}
		}
		db.Close()
	}
	dst, _, stopDst := startServer(t, []string{"--data", dstData}, map[string]string{"GATEHOUSE_MASTER_KEY": importTestMaster})
	compare := func() {
		t.Helper()
		for _, tbl := range []string{"movies", "counters", "bulk"} {
			if a, b := snapshot(t, base, tbl), snapshot(t, dst, tbl); a != b {
				t.Fatalf("%s differs:\nsource: %s\nimport: %s", tbl, a, b)
			}
		}
		// Options and column types came along.
		for _, tbl := range []string{"movies", "counters", "bulk"} {
			_, a := zumo(t, "GET", base+"/admin/tables/"+tbl, false, nil)
			_, b := zumo(t, "GET", dst+"/admin/tables/"+tbl, false, nil)
			a = strings.Replace(a, `"source":"admin"`, "", 1)
			b = strings.Replace(b, `"source":"admin"`, "", 1)
			if a != b {
				t.Fatalf("%s schema differs:\nsource: %s\nimport: %s", tbl, a, b)
			}
		}
	}
	compare()
	stopDst()

	// Change the source: update, soft-delete, undelete, insert. A second run copies exactly those.
	if c, b := zumo(t, "PATCH", base+"/tables/movies/m1", false, map[string]any{"title": "Aliens", "year": 1986}); c != 200 {
		t.Fatalf("update: %d %s", c, b)
	}
	if c, b := zumo(t, "DELETE", base+"/tables/movies/m2", true, nil); c != 200 && c != 204 {
		t.Fatalf("delete: %d %s", c, b)
	}
	if c, b := zumo(t, "POST", base+"/tables/counters/2", true, nil); c != 200 && c != 201 {
		t.Fatalf("undelete: %d %s", c, b)
	}
	if c, b := zumo(t, "POST", base+"/tables/bulk", false, map[string]any{"id": "zz", "n": 99, "note": "new column"}); c != 201 {
		t.Fatalf("insert: %d %s", c, b)
	}
	code, out, errs = runCmd(t, importEnv, importArgs(base, dstData)...)
	if code != 0 || !strings.Contains(out, "3 tables, 4 rows (1 deleted)") {
		t.Fatalf("second import: %d %s %s", code, out, errs)
	}
	code, out, _ = runCmd(t, importEnv, importArgs(base, dstData)...)
	if code != 0 || !strings.Contains(out, "3 tables, 0 rows (0 deleted)") {
		t.Fatalf("third import (nothing changed): %d %s", code, out)
	}
	dst, _, stopDst = startServer(t, []string{"--data", dstData}, map[string]string{"GATEHOUSE_MASTER_KEY": importTestMaster})
	compare()
	stopDst()

	// The source dies in the middle of the bulk table: the run fails, what was written is a whole
	// number of pages with a matching high-water mark, and a re-run completes.
	var calls atomic.Int32
	target, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(target)
	var proxy *httptest.Server
	proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// From the 4th read of bulk on, the source is gone (every later request fails too, so the
		// client's retry of an idempotent request cannot save it).
		if strings.HasPrefix(r.URL.Path, "/tables/bulk") && calls.Add(1) >= 4 || calls.Load() >= 4 {
			proxy.CloseClientConnections()
			panic(http.ErrAbortHandler)
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	killed := filepath.Join(t.TempDir(), "killed")
	dsn = newDSN()
	code, out, errs = runCmd(t, importEnv, importArgs(proxy.URL, killed, "--page-size", "10", "--tables", "movies,bulk,counters")...)
	if code != 1 || !strings.Contains(errs, "table bulk") || !strings.Contains(errs, "run the same command again") {
		t.Fatalf("import from a dying source: %d %s %s", code, out, errs)
	}
	db, err := store.Open(context.Background(), dsn, killed)
	if err != nil {
		t.Fatal(err)
	}
	var n, stateRows int64
	var lastID string
	if err := db.QueryRow(`SELECT COUNT(*) FROM gh_bulk`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT rows, last_id FROM gatehouse_import_state WHERE table_name = 'bulk'`).Scan(&stateRows, &lastID); err != nil {
		t.Fatal(err)
	}
	var maxID string
	if err := db.QueryRow(`SELECT id FROM gh_bulk ORDER BY sys_updated_at DESC, id DESC LIMIT 1`).Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Calls on bulk: the probe of one item, pages 1 and 2 of 10 rows; the 4th call died.
	if n != 20 || stateRows != n || lastID != `"`+maxID+`"` {
		t.Fatalf("after the failure: %d rows, state rows %d, mark %s, last row %s", n, stateRows, lastID, maxID)
	}
	code, out, errs = runCmd(t, importEnv, importArgs(base, killed, "--tables", "movies,bulk,counters")...)
	if code != 0 || !strings.Contains(out, "bulk") {
		t.Fatalf("re-run: %d %s %s", code, out, errs)
	}
	dst, _, _ = startServer(t, []string{"--data", killed}, map[string]string{"GATEHOUSE_MASTER_KEY": importTestMaster})
	compare()
	// An integer-id table goes on counting after the imported ids.
	if c, b := zumo(t, "POST", dst+"/tables/counters", false, map[string]any{"n": 9}); c != 201 || !strings.Contains(b, `"id":6`) {
		t.Fatalf("insert after import: %d %s", c, b)
	}
}

// TestImportMasterKeyNeverAFlag checks that the master key is refused as a flag and read from the
// environment, a file or stdin.
func TestImportMasterKeyNeverAFlag(t *testing.T) {
	data := t.TempDir()
	for _, f := range []string{"--master-key", "-master-key=abc", "--master-key=abc"} {
		code, _, errs := runCmd(t, nil, "import", "--from", "https://example.invalid", "--data", data, f, "x")
		if code != 2 || !strings.Contains(errs, "never accepted as flags") || strings.Contains(errs, "abc") {
			t.Fatalf("%s: %d %s", f, code, errs)
		}
	}
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string { return map[string]string{envImportMasterKey: "from-env"}[k] }
	none := func(string) string { return "" }
	for _, c := range []struct {
		file, stdin string
		getenv      func(string) string
		want, err   string
	}{
		{"", "", env, "from-env", ""},
		{file, "", none, "from-file", ""},
		{"-", "from-stdin\n", none, "from-stdin", ""},
		{file, "", env, "", "given twice"},
		{"-", "\n", none, "", "empty"},
		{"", "", none, "", ""},
	} {
		got, err := importMasterKey(c.file, strings.NewReader(c.stdin), c.getenv)
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v: %q %v", c, got, err)
		}
	}
}

// TestImportErrors: clear errors for what cannot work, before anything is written.
func TestImportErrors(t *testing.T) {
	data := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--data", data}, "--from URL is required"},
		{[]string{"import", "--data", data, "--from", "http://example.com"}, "plain http"},
		{[]string{"import", "--data", data, "--from", "https://u:p@example.com"}, "without user info"},
		{[]string{"import", "--data", data, "--from", "https://example.com", "--since", "yesterday"}, "RFC 3339"},
		{[]string{"import", "--data", data, "--from", "https://example.com", "--page-size", "5000"}, "over the limit"},
	} {
		code, _, errs := runCmd(t, nil, c.args...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: %d %s", c.args, code, errs)
		}
	}
	// A source without a table listing (not a Gatehouse) needs --tables.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"not found"}`)
	}))
	defer plain.Close()
	code, _, errs := runCmd(t, importEnv, "import", "--data", data, "--from", plain.URL)
	if code != 1 || !strings.Contains(errs, "--tables") {
		t.Fatalf("no listing: %d %s", code, errs)
	}
	code, _, errs = runCmd(t, importEnv, "import", "--data", data, "--from", plain.URL, "--tables", "todo")
	if code != 1 || !strings.Contains(errs, "table todo: not found on the source") {
		t.Fatalf("missing table: %d %s", code, errs)
	}
	// A redirect is refused (the master key header would follow it).
	redir := httptest.NewServer(http.RedirectHandler("http://127.0.0.1:1/elsewhere", http.StatusFound))
	defer redir.Close()
	code, _, errs = runCmd(t, importEnv, "import", "--data", data, "--from", redir.URL, "--tables", "todo")
	if code != 1 || !strings.Contains(errs, "redirect") {
		t.Fatalf("redirect: %d %s", code, errs)
	}
}

// TestImportV1 imports the same source as a Mobile Services (v1) client reads it: string-id tables
// keep their system properties; integer-id tables, which have none in v1 (as in the original), are
// read in id order and re-runs copy the rows added since.
func TestImportV1(t *testing.T) {
	base, _ := seedSource(t, filepath.Join(t.TempDir(), "src"))
	dstData := filepath.Join(t.TempDir(), "dst")
	code, out, errs := runCmd(t, importEnv, importArgs(base, dstData, "--protocol", "v1", "--tables", "movies,counters,bulk", "--page-size", "4")...)
	if code != 0 || !strings.Contains(out, "(v1): 3 tables, 53 rows (1 deleted)") || !strings.Contains(out, "read in id order") {
		t.Fatalf("v1 import: %d %s %s", code, out, errs)
	}
	if c, b := zumo(t, "POST", base+"/tables/counters", false, map[string]any{"n": 5, "label": "c5"}); c != 201 {
		t.Fatalf("insert: %d %s", c, b)
	}
	code, out, errs = runCmd(t, importEnv, importArgs(base, dstData, "--protocol", "v1", "--tables", "movies,counters,bulk")...)
	if code != 0 || !strings.Contains(out, "3 tables, 1 rows (0 deleted)") {
		t.Fatalf("second v1 import: %d %s %s", code, out, errs)
	}
	dst, _, _ := startServer(t, []string{"--data", dstData}, map[string]string{"GATEHOUSE_MASTER_KEY": importTestMaster})
	for _, tbl := range []string{"movies", "bulk"} {
		if a, b := snapshot(t, base, tbl), snapshot(t, dst, tbl); a != b {
			t.Fatalf("%s differs:\nsource: %s\nimport: %s", tbl, a, b)
		}
	}
	// Without the master key the listing is refused; with --tables the tables are still tried, and the
	// error names the table and the cause.
	code, _, errs = runCmd(t, nil, importArgs(base, filepath.Join(t.TempDir(), "nokey"), "--tables", "bulk")...)
	if code != 1 || !strings.Contains(errs, "table bulk: access refused by the source") || !strings.Contains(errs, "no master key") {
		t.Fatalf("without a key: %d %s", code, errs)
	}
	q := "/tables/counters?$orderby=id&$top=1000"
	_, a := zumo(t, "GET", base+q, false, nil)
	_, b := zumo(t, "GET", dst+q, false, nil)
	if a != b {
		t.Fatalf("counters differ:\nsource: %s\nimport: %s", a, b)
	}
}
