package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// nodeServer is Microsoft's Node server SDK (azure-mobile-apps, the reference Mobile Apps v2 server)
// running js/zumo-node-server.cjs.
type nodeServer struct {
	URL    string
	stdout *syncBuffer
	stderr *syncBuffer
}

// startNodeServer starts the reference server on a free loopback port and stops it (SIGTERM to its
// process group) when the test ends.
func startNodeServer(t *testing.T) *nodeServer {
	t.Helper()
	// Only node and the server SDK are needed here (not the browser packages needTools checks); the
	// policy is the same: skip with the install command, or fail when CI is set.
	var missing []string
	if _, err := exec.LookPath(nodeBinary()); err != nil {
		missing = append(missing, "node ("+err.Error()+")")
	}
	dirs := []string{filepath.Join(shared.dir, "node_modules")}
	// NODE_PATH (node's own fallback) lets a developer point at another install.
	dirs = append(dirs, filepath.SplitList(os.Getenv("NODE_PATH"))...)
	for _, pkg := range []string{"azure-mobile-apps", "sqlite3"} {
		found := false
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, pkg, "package.json")); err == nil {
				found = true
			}
		}
		if !found {
			missing = append(missing, "npm package "+pkg+" (run: npm ci --prefix e2e)")
		}
	}
	if len(missing) > 0 {
		msg := "the import test needs: " + strings.Join(missing, "; ")
		if os.Getenv(envCI) != "" {
			t.Fatalf("%s (CI is set: failing instead of skipping)", msg)
		}
		t.Skip(msg)
	}
	s := &nodeServer{stdout: newSyncBuffer(), stderr: newSyncBuffer()}
	cmd := exec.Command(nodeBinary(), filepath.Join("js", "zumo-node-server.cjs"))
	cmd.Dir = shared.dir
	cmd.Env = envWith(map[string]string{"PORT": "0"})
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	ownGroup(cmd)
	cmd.Cancel = nil // stopped by the cleanup below, never by a context
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck
	t.Cleanup(func() {
		terminate(cmd) //nolint:errcheck
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() //nolint:errcheck
		}
		if t.Failed() {
			t.Logf("azure-mobile-apps stdout:\n%s\nstderr:\n%s", s.stdout.String(), s.stderr.String())
		}
	})
	re := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			s.URL = m[1]
			return s
		}
		select {
		case <-s.stdout.changed:
		case <-exited:
			t.Fatalf("azure-mobile-apps exited before listening:\n%s", s.stderr.String())
		case <-deadline.C:
			t.Fatalf("azure-mobile-apps did not listen within 60s:\n%s", s.stderr.String())
		}
	}
}

// v2 sends a Mobile Apps (ZUMO-API-VERSION 2.0.0) request as the client SDK does.
func v2(t *testing.T, method, url string, headers map[string]string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("ZUMO-API-VERSION", "2.0.0")
	req.Header.Set("Content-Type", "application/json")
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

// suiteMovies are movies of the client test suites' movies table (azure-mobile-apps-js-client).
var suiteMovies = []map[string]any{
	{"id": "movie-01", "title": "The Shawshank Redemption", "duration": 142, "mpaaRating": "R", "releaseDate": "1994-10-14T00:00:00.000Z", "bestPictureWinner": false, "year": 1994},
	{"id": "movie-02", "title": "The Godfather", "duration": 175, "mpaaRating": "R", "releaseDate": "1972-03-24T00:00:00.000Z", "bestPictureWinner": true, "year": 1972},
	{"id": "movie-03", "title": "The Godfather: Part II", "duration": 200, "mpaaRating": "R", "releaseDate": "1974-12-20T00:00:00.000Z", "bestPictureWinner": true, "year": 1974},
	{"id": "movie-04", "title": "Pulp Fiction", "duration": 154, "mpaaRating": "R", "releaseDate": "1994-10-14T00:00:00.000Z", "bestPictureWinner": false, "year": 1994},
	{"id": "movie-05", "title": "The Good, the Bad and the Ugly", "duration": 161, "mpaaRating": nil, "releaseDate": "1966-12-29T00:00:00.000Z", "bestPictureWinner": false, "year": 1966},
	{"id": "movie-06", "title": "12 Angry Men", "duration": 96, "mpaaRating": nil, "releaseDate": "1957-04-10T00:00:00.000Z", "bestPictureWinner": false, "year": 1957},
	{"id": "movie-07", "title": "The Dark Knight", "duration": 152, "mpaaRating": "PG-13", "releaseDate": "2008-07-18T00:00:00.000Z", "bestPictureWinner": false, "year": 2008},
	{"id": "movie-08", "title": "Schindler's List", "duration": 195, "mpaaRating": "R", "releaseDate": "1993-12-15T00:00:00.000Z", "bestPictureWinner": true, "year": 1993},
	{"id": "movie-09", "title": "The Lord of the Rings: The Return of the King", "duration": 201, "mpaaRating": "PG-13", "releaseDate": "2003-12-17T00:00:00.000Z", "bestPictureWinner": true, "year": 2003},
	{"id": "movie-10", "title": "Fight Club", "duration": 139, "mpaaRating": "R", "releaseDate": "1999-10-15T00:00:00.000Z", "bestPictureWinner": false, "year": 1999},
	{"id": "movie-11", "title": "Star Wars: Episode V - The Empire Strikes Back", "duration": 127, "mpaaRating": "PG", "releaseDate": "1980-05-21T00:00:00.000Z", "bestPictureWinner": false, "year": 1980},
	{"id": "movie-12", "title": "One Flew Over the Cuckoo's Nest", "duration": 133, "mpaaRating": "R", "releaseDate": "1975-11-21T00:00:00.000Z", "bestPictureWinner": true, "year": 1975},
	{"id": "movie-13", "title": "Casablanca", "duration": 102, "mpaaRating": "PG", "releaseDate": "1943-01-23T00:00:00.000Z", "bestPictureWinner": true, "year": 1942},
	{"id": "movie-14", "title": "Amélie — “Le Fabuleux Destin”", "duration": 122.5, "mpaaRating": "R", "releaseDate": "2001-04-25T00:00:00.000Z", "bestPictureWinner": false, "year": 2001},
}

// clientQueries are reads the client suites make (query builder → OData), plus the offline sync
// pull's incremental read.
var clientQueries = []string{
	"",
	"?$orderby=title",
	"?$filter=year gt 1990&$orderby=title desc",
	"?$filter=bestPictureWinner eq true&$orderby=year&$select=title,year",
	// (No string functions: the reference server's SQLite provider translates startswith(t,'x') to
	// SQL Server's "t LIKE 'x' + '%'", which SQLite evaluates as a number and matches nothing.)
	"?$filter=mpaaRating eq 'PG-13' or year lt 1960&$orderby=releaseDate desc&$top=3",
	"?$filter=(duration ge 150) and (mpaaRating eq 'R')&$orderby=id",
	"?$filter=mpaaRating eq null&$orderby=id",
	"?$filter=releaseDate lt datetimeoffset'1975-01-01T00:00:00.000Z'&$orderby=releaseDate",
	"?$orderby=year desc,title&$skip=2&$top=4&$inlinecount=allpages",
	"?__includeDeleted=true&$orderby=id",
	"?$filter=updatedAt ge datetimeoffset'2000-01-01T00:00:00.000Z'&$orderby=updatedAt,id&__includeDeleted=true",
	"/movie-04",
	"/movie-11",
}

// sameAnswers runs every client query against both servers and compares the decoded JSON answers.
func sameAnswers(t *testing.T, node, gatehouse string, gheaders map[string]string) {
	t.Helper()
	for _, q := range clientQueries {
		u := "/tables/movies" + strings.ReplaceAll(q, " ", "%20")
		c1, b1 := v2(t, "GET", node+u, nil, nil)
		c2, b2 := v2(t, "GET", gatehouse+u, gheaders, nil)
		var j1, j2 any
		json.Unmarshal([]byte(b1), &j1) //nolint:errcheck
		json.Unmarshal([]byte(b2), &j2) //nolint:errcheck
		if c1 != 200 || c1 != c2 || j1 == nil || !reflect.DeepEqual(j1, j2) {
			t.Errorf("GET %s:\nazure-mobile-apps: %d %s\ngatehouse:         %d %s", u, c1, b1, c2, b2)
		}
	}
}

// TestImportFromAzureMobileApps seeds Microsoft's reference Node server with the client suites'
// movies, imports it into a running Gatehouse with `gatehouse import`, and checks that the client's
// queries answer the same on both, system properties and soft-deleted rows included; then changes
// the source and checks that a second run copies exactly the changes.
func TestImportFromAzureMobileApps(t *testing.T) {
	alone(t)
	node := startNodeServer(t)
	for _, m := range suiteMovies {
		if c, b := v2(t, "POST", node.URL+"/tables/movies", nil, m); c != 201 && c != 200 {
			t.Fatalf("seed %v: %d %s", m["id"], c, b)
		}
	}
	for _, id := range []string{"movie-06", "movie-13"} {
		if c, b := v2(t, "DELETE", node.URL+"/tables/movies/"+id, nil, nil); c != 200 && c != 204 {
			t.Fatalf("delete %s: %d %s", id, c, b)
		}
	}
	if c, b := v2(t, "POST", node.URL+"/tables/notes", nil, map[string]any{"id": "n1", "text": "hello", "pinned": true}); c != 201 && c != 200 {
		t.Fatalf("seed notes: %d %s", c, b)
	}

	g := startGatehouse(t, GatehouseOptions{})
	importRun := func(want string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, gatehouseBinary(t), "import", "--from", node.URL, "--tables", "movies,notes", "--data", g.DataDir, "--page-size", "5")
		cmd.Env = cleanEnv(nil)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("gatehouse import (%v), want %q:\n%s", err, want, out)
		}
		return string(out)
	}
	out := importRun("(v2): 2 tables, 15 rows (2 deleted)")
	t.Logf("first import:\n%s", out)
	master := map[string]string{"X-ZUMO-MASTER": g.MasterKey}
	sameAnswers(t, node.URL, g.URL, master)

	// Change the source; the second run copies exactly the changed rows.
	if c, b := v2(t, "PATCH", node.URL+"/tables/movies/movie-07", nil, map[string]any{"title": "The Dark Knight (IMAX)", "duration": 153}); c != 200 {
		t.Fatalf("update: %d %s", c, b)
	}
	if c, b := v2(t, "DELETE", node.URL+"/tables/movies/movie-01", nil, nil); c != 200 && c != 204 {
		t.Fatalf("delete: %d %s", c, b)
	}
	if c, b := v2(t, "POST", node.URL+"/tables/movies", nil, map[string]any{"id": "movie-15", "title": "Spirited Away", "duration": 125, "mpaaRating": "PG", "releaseDate": "2001-07-20T00:00:00.000Z", "bestPictureWinner": false, "year": 2001}); c != 201 && c != 200 {
		t.Fatalf("insert: %d %s", c, b)
	}
	importRun("(v2): 2 tables, 3 rows (1 deleted)")
	sameAnswers(t, node.URL, g.URL, master)
	importRun("(v2): 2 tables, 0 rows (0 deleted)")

	// The table without soft delete came over with its inferred column types.
	c, b := v2(t, "GET", g.URL+"/admin/tables/notes", master, nil)
	if c != 200 || !strings.Contains(b, `"pinned":"boolean"`) || !strings.Contains(b, `"text":"string"`) {
		t.Fatalf("notes schema: %d %s", c, b)
	}
	fmt.Fprint(io.Discard, b)
}
