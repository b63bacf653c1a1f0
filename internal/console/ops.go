package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/keyring"
	"github.com/gatehouse/gatehouse/internal/user"
)

// Jobs is the job ledger, the scheduler's manual start (POST /jobs/{name} runs the same) and the
// schedules (PUT /admin/jobs/{name}/schedule and `gatehouse jobs schedule` change them the same way).
type Jobs struct {
	Ledger    *jobs.Ledger
	Schedules *jobs.Schedules
	Defs      func() []jobs.Def
	Start     func(ctx context.Context, name string) error
}

// Users is the users directory and, when built-in accounts are on, the accounts service.
type Users struct {
	Directory *user.Directory
	Accounts  *account.Service
}

// KeyRing is the cluster key ring (nil Store: keys from keys.json or configuration).
type KeyRing struct {
	Store   *keyring.Store
	Options keyring.RotateOptions
}

type jobsData struct {
	Jobs []jobs.Summary
	Runs []jobs.Run
	Name string
	// Editable: the schedules can be changed here.
	Editable bool
}

func (c *Console) jobs(w http.ResponseWriter, r *http.Request, rest []string) {
	if c.o.Jobs == nil {
		c.render(w, r, http.StatusOK, "jobs", view{Title: "Jobs", Nav: "jobs", Data: jobsData{}})
		return
	}
	j := c.o.Jobs
	ctx := r.Context()
	var defs []jobs.Def
	if j.Defs != nil {
		defs = j.Defs()
	}
	name := ""
	if len(rest) > 0 && rest[0] != "" {
		n, err := url.PathUnescape(rest[0])
		if err != nil {
			c.notFound(w, r)
			return
		}
		name = n
	}
	if r.Method == http.MethodPost && len(rest) == 2 && rest[1] == "schedule" && j.Schedules != nil {
		c.jobSchedule(w, r, defs, name)
		return
	}
	if r.Method == http.MethodPost {
		if name == "" || len(rest) != 2 || rest[1] != "run" || j.Start == nil {
			c.notFound(w, r)
			return
		}
		declared := false
		for _, d := range defs {
			declared = declared || jobs.Key(d.Name) == jobs.Key(name)
		}
		if !declared {
			c.notFound(w, r)
			return
		}
		if err := j.Start(context.WithoutCancel(ctx), name); err != nil {
			c.redirectProblem(w, r, "/jobs/"+url.PathEscape(name), "The job did not start: "+err.Error())
			return
		}
		c.record(r, "job.run", name, nil, nil)
		c.redirect(w, r, "/jobs/"+url.PathEscape(name), "Job "+name+" started.")
		return
	}
	scheds := jobs.Resolve(defs, nil)
	if j.Schedules != nil {
		var err error
		if scheds, err = j.Schedules.Effective(ctx, defs); err != nil {
			c.unavailable(w, r, err)
			return
		}
	}
	list, err := j.Ledger.Summaries(ctx, scheds, c.now())
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	d := jobsData{Jobs: list, Name: name, Editable: j.Schedules != nil}
	if name != "" {
		if d.Runs, err = j.Ledger.Runs(ctx, name, 50, time.Time{}, c.now()); err != nil {
			c.unavailable(w, r, err)
			return
		}
	}
	title := "Jobs"
	if name != "" {
		title = "Job " + name
	}
	c.render(w, r, http.StatusOK, "jobs", view{Title: title, Nav: "jobs", Problem: r.URL.Query().Get("problem"), Data: d})
}

// jobSchedule saves the schedule form of a job (every: an interval, empty for the configured one;
// enabled: the checkbox) or, with reset, returns the job to its configured schedule.
func (c *Console) jobSchedule(w http.ResponseWriter, r *http.Request, defs []jobs.Def, name string) {
	j := c.o.Jobs
	ctx := r.Context()
	var sc jobs.Schedule
	var changed bool
	var err error
	if r.PostFormValue("reset") != "" {
		sc, changed, err = j.Schedules.Reset(ctx, defs, name, c.actor(r))
	} else {
		var every time.Duration
		if v := strings.TrimSpace(r.PostFormValue("every")); v != "" {
			if every, err = jobs.ParseEvery(v); err != nil {
				c.redirectProblem(w, r, "/jobs", "The schedule of "+name+" was not changed: "+jobs.Message(err))
				return
			}
		}
		enabled := r.PostFormValue("enabled") != ""
		sc, changed, err = j.Schedules.Set(ctx, defs, name, jobs.Change{Every: &every, Enabled: &enabled}, c.actor(r))
	}
	switch {
	case errors.Is(err, jobs.ErrUnknownJob):
		c.notFound(w, r)
		return
	case errors.Is(err, jobs.ErrInvalidSchedule):
		c.redirectProblem(w, r, "/jobs", "The schedule of "+name+" was not changed: "+jobs.Message(err))
		return
	case err != nil:
		c.unavailable(w, r, err)
		return
	}
	notice := "The schedule of " + sc.Job + " is unchanged."
	if changed {
		notice = "The schedule of " + sc.Job + " is saved: " + describeSchedule(sc, c.now()) + "."
	}
	c.redirect(w, r, "/jobs", notice)
}

// describeSchedule says what a schedule does, for a notice.
func describeSchedule(sc jobs.Schedule, now time.Time) string {
	switch {
	case sc.Every == 0:
		return "runs only when started"
	case !sc.Enabled:
		return "every " + jobs.FormatEvery(sc.Every) + ", disabled"
	}
	return "every " + jobs.FormatEvery(sc.Every) + ", next run " + sc.Next(now).Format("2006-01-02 15:04:05 UTC")
}

type usersData struct {
	Query      string
	Users      []user.User
	Account    *account.View
	Selected   *user.User
	Identities []user.Identity
	Accounts   bool
	Next       string
	Import     *importReport
}

// importReport is the outcome of an account import for the page: the counts and the rows that were
// skipped or failed, each with its line and reason (never a password hash: account.Service.Import
// reports none).
type importReport struct {
	File    string
	Created int
	Exists  int
	Errors  int
	Failed  []account.ImportResult
	More    int // failed rows not listed
}

// maxReportRows bounds the failed rows listed on the page (the counts cover every row).
const maxReportRows = 500

// users: search and list users (and accounts), a user's identities; disable, enable, revoke sessions,
// send a password-reset link. Each action is the one `gatehouse users …` runs.
func (c *Console) users(w http.ResponseWriter, r *http.Request, rest []string) {
	if c.o.Users == nil || c.o.Users.Directory == nil {
		c.render(w, r, http.StatusOK, "users", view{Title: "Users", Nav: "users", Problem: "Users are not enabled on this server.", Data: usersData{}})
		return
	}
	u := c.o.Users
	ctx := r.Context()
	if len(rest) == 1 && rest[0] == "import" && r.Method == http.MethodPost {
		// "import" is never a user id: those have a provider prefix (Google:…, custom:…).
		c.importUsers(w, r)
		return
	}
	if len(rest) >= 1 && rest[0] != "" {
		id, err := url.PathUnescape(rest[0])
		if err != nil {
			c.notFound(w, r)
			return
		}
		if r.Method == http.MethodPost && len(rest) == 2 {
			c.userAction(w, r, id, rest[1])
			return
		}
		usr, err := u.Directory.Get(ctx, id)
		if errors.Is(err, user.ErrNotFound) {
			c.notFound(w, r)
			return
		}
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		ids, err := u.Directory.Identities(ctx, id)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		d := usersData{Selected: usr, Identities: ids, Accounts: u.Accounts != nil}
		if u.Accounts != nil {
			if a, err := u.Accounts.Find(ctx, id); err == nil {
				v := u.Accounts.ViewOf(a)
				d.Account = &v
			}
		}
		c.render(w, r, http.StatusOK, "user", view{Title: "User " + id, Nav: "users", Problem: r.URL.Query().Get("problem"), Data: d})
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	after := r.URL.Query().Get("after")
	d := usersData{Query: q, Accounts: u.Accounts != nil}
	if q != "" && u.Accounts != nil && strings.Contains(q, "@") {
		if a, err := u.Accounts.Find(ctx, q); err == nil {
			v := u.Accounts.ViewOf(a)
			d.Account = &v
			if usr, err := u.Directory.Get(ctx, a.TokenUserID()); err == nil {
				d.Users = append(d.Users, *usr)
			}
		}
	} else {
		list, err := u.Directory.List(ctx, after, 1000)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		lq := strings.ToLower(q)
		for _, x := range list {
			if lq == "" || strings.Contains(strings.ToLower(x.ID), lq) || strings.Contains(strings.ToLower(x.Provider), lq) {
				d.Users = append(d.Users, x)
			}
			if len(d.Users) == 200 {
				break
			}
		}
		if len(list) == 1000 && q == "" {
			d.Next = list[len(list)-1].ID
		}
	}
	c.render(w, r, http.StatusOK, "users", view{Title: "Users", Nav: "users", Problem: r.URL.Query().Get("problem"), Data: d})
}

// importUsers creates built-in accounts from an uploaded CSV or JSON file: the parser and the
// idempotent import `gatehouse users import` and POST /admin/accounts/import run (a row whose address
// has an account already changes nothing), then shows the counts and each failed row's reason.
func (c *Console) importUsers(w http.ResponseWriter, r *http.Request) {
	svc := c.o.Users.Accounts
	if svc == nil {
		c.redirectProblem(w, r, "/users", "Built-in accounts are not enabled on this server (accounts.enabled).")
		return
	}
	data, filename, problem := c.upload(r)
	if problem != "" {
		c.redirectProblem(w, r, "/users", problem)
		return
	}
	format := r.PostFormValue("format")
	switch format {
	case "", "csv", "json":
	default:
		c.redirectProblem(w, r, "/users", "Choose CSV or JSON (or let the console detect it).")
		return
	}
	rows, err := account.ParseImportFile(bytes.NewReader(data), format)
	if err != nil {
		c.redirectProblem(w, r, "/users", "The file could not be read: "+strings.TrimPrefix(err.Error(), "account: import: "))
		return
	}
	// The rows already read are imported even if the administrator leaves: no half-reported import.
	sum := svc.Import(context.WithoutCancel(r.Context()), rows)
	rep := &importReport{File: filename, Created: sum.Created, Exists: sum.Exists, Errors: sum.Errors}
	for _, row := range sum.Rows {
		if row.Status != "error" {
			continue
		}
		if len(rep.Failed) == maxReportRows {
			rep.More++
			continue
		}
		rep.Failed = append(rep.Failed, row)
	}
	c.record(r, "user.import", filename, nil, map[string]any{"rows": len(sum.Rows), "created": sum.Created, "exists": sum.Exists, "failed": sum.Errors})
	v := view{Title: "Users", Nav: "users", Data: usersData{Accounts: true, Import: rep},
		Notice: fmt.Sprintf("%d accounts created, %d already present, %d failed.", sum.Created, sum.Exists, sum.Errors)}
	if sum.Errors > 0 {
		v.Notice, v.Problem = "", fmt.Sprintf("%d accounts created, %d already present, %d failed: fix those rows and import the file again (rows already imported are skipped).", sum.Created, sum.Exists, sum.Errors)
	}
	c.render(w, r, http.StatusOK, "users", v)
}

func (c *Console) userAction(w http.ResponseWriter, r *http.Request, id, action string) {
	u := c.o.Users
	ctx := r.Context()
	self := "/users/" + url.PathEscape(id)
	before, err := u.Directory.Get(ctx, id)
	if errors.Is(err, user.ErrNotFound) {
		c.notFound(w, r)
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	var acct *account.Account
	if u.Accounts != nil {
		if a, err := u.Accounts.Find(ctx, id); err == nil {
			acct = a
		}
	}
	var notice string
	switch action {
	case "disable", "enable":
		// The decision `gatehouse users disable|enable` and the admin APIs make: an account and its
		// user change together, any other user in the directory alone.
		_, err = account.SetUserDisabled(ctx, u.Accounts, u.Directory, id, action == "disable")
		if errors.Is(err, account.ErrNoUser) {
			c.notFound(w, r)
			return
		}
		notice = "User " + id + " " + action + "d."
	case "revoke":
		err = u.Directory.RevokeAll(ctx, id)
		notice = "Every session of " + id + " is revoked."
	case "reset":
		if acct == nil {
			c.redirectProblem(w, r, self, "This user has no email/password account.")
			return
		}
		err = u.Accounts.RequestReset(ctx, account.Client{IP: clientIP(r)}, acct.Email)
		notice = "A password-reset link is on its way to the account's address."
	default:
		c.notFound(w, r)
		return
	}
	if err != nil {
		var te *account.ThrottledError
		if errors.As(err, &te) {
			c.redirectProblem(w, r, self, "Too many requests; try again later.")
			return
		}
		c.unavailable(w, r, err)
		return
	}
	after, _ := u.Directory.Get(ctx, id)
	c.record(r, "user."+action, id, before, after)
	c.redirect(w, r, self, notice)
}

type keyRow struct {
	Kind        string
	State       string
	Fingerprint string
	CreatedAt   time.Time
	RetiredAt   time.Time
}

type keysData struct {
	Ring      bool
	Version   int64
	Keys      []keyRow
	Instances []keyring.Instance
}

// fingerprint is the short public name of a key without the ring (SHA-256, 8 bytes hex).
func fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:8])
}

// keys shows the keys' fingerprints and age and rotates them through the key ring (two-phase,
// cluster-wide) when there is one. No secret ever reaches the page.
func (c *Console) keys(w http.ResponseWriter, r *http.Request, rest []string) {
	ctx := r.Context()
	kr := c.o.KeyRing
	ring := kr != nil && kr.Store != nil
	if r.Method == http.MethodPost {
		if !ring || len(rest) != 1 || rest[0] != "rotate" {
			c.notFound(w, r)
			return
		}
		k := keyring.Kind(r.PostFormValue("which"))
		if k != "master" && k != "application" && k != "system" {
			c.redirectProblem(w, r, "/keys", "Choose the master, application or system key.")
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), kr.Options.Grace+5*time.Second)
		defer cancel()
		res, err := kr.Store.RotateAndWait(rctx, k, r.PostFormValue("revoke") != "", kr.Options)
		if err != nil {
			c.redirectProblem(w, r, "/keys", "Rotation failed: "+err.Error())
			return
		}
		c.record(r, "keys.rotate", string(k), map[string]string{"fingerprint": res.Previous},
			map[string]any{"fingerprint": res.New.Fingerprint, "version": res.Ring.Version, "revokePrevious": r.PostFormValue("revoke") != ""})
		c.redirect(w, r, "/keys", "The "+string(k)+" key is rotated; new fingerprint "+res.New.Fingerprint+".")
		return
	}
	d := keysData{Ring: ring}
	if ring {
		rg, err := kr.Store.Load(ctx)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		d.Version = rg.Version
		for _, k := range rg.Keys {
			d.Keys = append(d.Keys, keyRow{Kind: string(k.Kind), State: string(k.State), Fingerprint: k.Fingerprint, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt})
		}
		if d.Instances, err = kr.Store.Live(ctx, c.now(), keyring.Liveness(kr.Options.Poll)); err != nil {
			c.unavailable(w, r, err)
			return
		}
	} else {
		s := c.o.Keys()
		d.Keys = []keyRow{{Kind: "master", State: "current", Fingerprint: fingerprint(s.MasterKey)},
			{Kind: "application", State: "current", Fingerprint: fingerprint(s.ApplicationKey)},
			{Kind: "system", State: "current", Fingerprint: fingerprint(s.SystemKey)}}
		for _, p := range s.Previous {
			d.Keys = append(d.Keys, keyRow{Kind: "master", State: "retired", Fingerprint: fingerprint(p.Secret), RetiredAt: p.RetiredAt})
		}
	}
	sort.SliceStable(d.Keys, func(i, j int) bool { return d.Keys[i].Kind < d.Keys[j].Kind })
	c.render(w, r, http.StatusOK, "keys", view{Title: "Keys", Nav: "keys", Problem: r.URL.Query().Get("problem"), Data: d})
}
