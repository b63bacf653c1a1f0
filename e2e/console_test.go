package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// consoleResult is what js/scenarios/console.mjs returns.
type consoleResult struct {
	SetupNotice         string                       `json:"setupNotice"`
	SetupReuse          int                          `json:"setupReuse"`
	Throttle            []int                        `json:"throttle"`
	ThrottleText        string                       `json:"throttleText"`
	TablesAfterCreate   int                          `json:"tablesAfterCreate"`
	Inserted            []string                     `json:"inserted"`
	Edited              string                       `json:"edited"`
	ConflictShown       string                       `json:"conflictShown"`
	AfterOverwrite      string                       `json:"afterOverwrite"`
	AfterDelete         int                          `json:"afterDelete"`
	FilterError         string                       `json:"filterError"`
	ReadAfterPermission int                          `json:"readAfterPermission"`
	ReadAsMaster        int                          `json:"readAsMaster"`
	SyntaxError         string                       `json:"syntaxError"`
	OldServes           *string                      `json:"oldServes"`
	NewServes           string                       `json:"newServes"`
	EditedMark          string                       `json:"editedMark"`
	HistoryRows         int                          `json:"historyRows"`
	AfterRevert         *string                      `json:"afterRevert"`
	JobHistory          string                       `json:"jobHistory"`
	JobSchedule         map[string]any               `json:"jobSchedule"`
	UserBefore          int                          `json:"userBefore"`
	UserAfter           int                          `json:"userAfter"`
	Audit               string                       `json:"audit"`
	PhoneOverflow       bool                         `json:"phoneOverflow"`
	AfterSignOut        string                       `json:"afterSignOut"`
	ImportReport        string                       `json:"importReport"`
	LiveTailMs          float64                      `json:"liveTailMs"`
	Axe                 map[string][]json.RawMessage `json:"axe"`
	Pages               map[string]struct {
		Bytes       float64  `json:"bytes"`
		HTMLBytes   float64  `json:"htmlBytes"`
		FCP         *float64 `json:"fcp"`
		Interactive *float64 `json:"interactive"`
	} `json:"pages"`
}

// TestConsole drives the admin console through every page in headless Chromium. With
// GATEHOUSE_CONSOLE_SHOTS=DIR it also writes the screenshots committed under docs/console/.
func TestConsole(t *testing.T) {
	alone(t)
	needTools(t, true)
	if _, err := os.Stat(filepath.Join(shared.dir, "node_modules", "axe-core", "axe.min.js")); err != nil {
		msg := "end-to-end test needs: npm package axe-core (run: npm ci --prefix e2e)"
		if os.Getenv(envCI) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	app := writeApp(t, map[string]string{
		"datamodel.json":        `{"tables":[{"name":"Items","permissions":{"*":"application"}}]}`,
		"table/items.insert.js": "function insert(item, user, request) {\n  request.execute();\n}\n",
		"scheduler/cleanup.js":  "function cleanup() {\n  console.log('cleanup ran');\n}\n",
	})
	g := startGatehouse(t, GatehouseOptions{App: app, Env: map[string]string{"GATEHOUSE_ACCOUNTS_ENABLED": "true"}})
	// The link is printed right after the address line.
	var link []string
	for deadline := time.Now().Add(10 * time.Second); link == nil && time.Now().Before(deadline); {
		if link = regexp.MustCompile(`Console setup \(one-time link[^)]*\): (\S+)\n`).FindStringSubmatch(g.stdout.String()); link == nil {
			select {
			case <-g.stdout.changed:
			case <-time.After(time.Second):
			}
		}
	}
	if link == nil {
		t.Fatalf("no setup link in:\n%s", g.stdout.String())
	}
	// An app user with an email/password account, signed in, whose token the console will disable.
	cmd := exec.Command(g.bin, "users", "add", "--data", g.DataDir, "--email", "ann@example.com", "--password-stdin")
	cmd.Env = g.env
	cmd.Stdin = strings.NewReader("ann's long password\n")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("users add: %v\n%s", err, b)
	}
	body, _ := json.Marshal(map[string]string{"email": "ann@example.com", "password": "ann's long password"})
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/.auth/login/custom", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ZUMO-API-VERSION", "2.0.0")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		Token string `json:"authenticationToken"`
		User  struct {
			UserID string `json:"userId"`
		} `json:"user"`
	}
	if err := json.NewDecoder(res.Body).Decode(&login); err != nil || login.Token == "" {
		t.Fatalf("login: %d %v", res.StatusCode, err)
	}
	res.Body.Close()

	args := map[string]any{"setup": link[1], "base": g.URL, "masterKey": g.MasterKey, "appKey": g.ApplicationKey,
		"userId": login.User.UserID, "userToken": login.Token, "shots": os.Getenv("GATEHOUSE_CONSOLE_SHOTS")}
	var out consoleResult
	runBrowser(t, "console", servePage(t, nil).URL(), g.URL, args, &out)

	check := func(ok bool, format string, a ...any) {
		t.Helper()
		if !ok {
			t.Errorf(format, a...)
		}
	}
	check(strings.Contains(out.SetupNotice, "Welcome"), "setup notice %q", out.SetupNotice)
	check(out.SetupReuse == http.StatusNotFound, "setup link reused: %d", out.SetupReuse)
	check(len(out.Throttle) > 5 && out.Throttle[0] == 401 && out.Throttle[len(out.Throttle)-1] == 429 && !slices.Contains(out.Throttle[:5], 429) && strings.Contains(out.ThrottleText, "Too many"),
		"throttle %v %q", out.Throttle, out.ThrottleText)
	check(out.TablesAfterCreate == 200, "/tables/Todo after create: %d", out.TablesAfterCreate)
	check(len(out.Inserted) == 1 && strings.Contains(out.Inserted[0], "<script>"), "inserted %q", out.Inserted)
	check(out.Edited == "Buy oat milk", "edited %q", out.Edited)
	check(strings.Contains(out.ConflictShown, "mine") && strings.Contains(out.ConflictShown, "theirs"), "conflict %q", out.ConflictShown)
	check(out.AfterOverwrite == "mine", "after overwrite %q", out.AfterOverwrite)
	check(out.AfterDelete == 0, "rows after delete: %d", out.AfterDelete)
	check(strings.Contains(out.FilterError, "position 9"), "filter error %q", out.FilterError)
	check(out.ReadAfterPermission == 401 && out.ReadAsMaster == 200, "read after permission: app key %d, master %d", out.ReadAfterPermission, out.ReadAsMaster)
	check(strings.Contains(out.SyntaxError, "table/items.insert.js:3:"), "syntax error %q", out.SyntaxError)
	check(out.OldServes == nil, "the old script should keep serving (no tag), got %v", out.OldServes)
	check(out.NewServes == "new", "new script: %q", out.NewServes)
	check(strings.Contains(out.EditedMark, "edited in the console") && out.HistoryRows == 1, "edited mark %q, history rows %d", out.EditedMark, out.HistoryRows)
	check(out.AfterRevert == nil, "after revert the deployed script should serve (no tag), got %v", out.AfterRevert)
	check(strings.Contains(out.JobHistory, "succeeded"), "job history %q", out.JobHistory)
	check(out.JobSchedule["every"] == "15m" && out.JobSchedule["source"] == "database" && out.JobSchedule["updatedBy"] != "", "job schedule %v", out.JobSchedule)
	check(out.UserBefore == 200 && out.UserAfter == 401, "user token before %d after %d", out.UserBefore, out.UserAfter)
	for _, a := range []string{"table.create", "row.insert", "row.update", "row.delete", "table.permissions", "script.save", "script.revert", "job.run", "user.disable", "user.import"} {
		check(strings.Contains(out.Audit, a), "audit lacks %s", a)
	}
	check(strings.Contains(out.ImportReport, "Import of people.csv") && regexp.MustCompile(`Created\s*1`).MatchString(out.ImportReport) &&
		regexp.MustCompile(`Already present \(skipped\)\s*1`).MatchString(out.ImportReport) && strings.Contains(out.ImportReport, "email:"),
		"import report %q", out.ImportReport)
	// Activity is flushed every second and pushed at once: well under the old 2 s poll plus a flush.
	check(out.LiveTailMs >= 0 && out.LiveTailMs < 2500, "live tail: the request appeared after %v ms", out.LiveTailMs)
	t.Logf("live tail: a request appeared on the Logs page %v ms after it was made", out.LiveTailMs)
	check(!out.PhoneOverflow, "the data page overflows a phone's width")
	check(strings.Contains(out.AfterSignOut, "/console/signin"), "after sign-out: %s", out.AfterSignOut)
	for page, v := range out.Axe {
		check(len(v) == 0, "axe on %s: %s", page, v)
	}
	for name, p := range out.Pages {
		fcp, ti := -1.0, -1.0
		if p.FCP != nil {
			fcp = *p.FCP
		}
		if p.Interactive != nil {
			ti = *p.Interactive
		}
		t.Logf("page %-14s transferred %6.0f B (HTML %6.0f B), first contentful paint %5.0f ms, interactive %5.0f ms", name, p.Bytes, p.HTMLBytes, fcp, ti)
	}
}
