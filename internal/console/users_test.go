package console

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/user"
)

// postFile posts a multipart form with a file (and the page's CSRF token unless fields set _csrf).
func (b *browser) postFile(path string, fields map[string]string, filename, content string) page {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if _, ok := fields["_csrf"]; !ok {
		mw.WriteField("_csrf", b.csrf) //nolint:errcheck
	}
	for k, v := range fields {
		mw.WriteField(k, v) //nolint:errcheck
	}
	fw, _ := mw.CreateFormFile("file", filename)
	fw.Write([]byte(content)) //nolint:errcheck
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.h.ts.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", b.h.ts.URL)
	return b.do(req)
}

const importHash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"

// TestUsersImport: the Users page imports accounts from an uploaded file (CSRF-protected, bounded,
// idempotent), reports created, skipped and failed rows with their reasons and never a hash, and
// records user.import with the counts.
func TestUsersImport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		b := h.signedIn()
		if p := b.get("/console/users"); p.status != http.StatusOK || !strings.Contains(p.body, `action="/console/users/import"`) || !strings.Contains(p.body, `enctype="multipart/form-data"`) {
			t.Fatalf("users page: %d", p.status)
		}
		const secret = "S3cretLegacyHashValue0123456789"
		file := "email,email_verified,hash_format,hash\n" +
			"ann@example.com,true,bcrypt," + importHash + "\n" +
			"bob@example.com,,,\n" +
			"not an address,,,\n" +
			"cy@example.com,,phc," + secret + "\n"
		p := b.postFile("/console/users/import", map[string]string{"format": "csv"}, "people.csv", file)
		if p.status != http.StatusOK {
			t.Fatalf("import: %d %s", p.status, p.body)
		}
		for _, want := range []string{"Import of people.csv", "<dt>Created</dt><dd>2</dd>", "<dt>Failed</dt><dd>2</dd>", "<th scope=\"row\">4</th>", "<th scope=\"row\">5</th>", "email:", "hash:"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("report lacks %q", want)
			}
		}
		if strings.Contains(p.body, secret[:10]) || strings.Contains(p.body, importHash[7:20]) {
			t.Error("the report repeats a password hash")
		}
		a, err := h.accounts.Find(context.Background(), "ann@example.com")
		if err != nil || !a.EmailVerified || a.PasswordHash == "" {
			t.Fatalf("imported account: %+v %v", a, err)
		}
		if _, err := h.users.Get(context.Background(), a.TokenUserID()); err != nil {
			t.Fatalf("the imported account is not a user of the directory: %v", err)
		}
		// Again: idempotent.
		p = b.postFile("/console/users/import", map[string]string{}, "people.csv", file)
		if p.status != http.StatusOK || !strings.Contains(p.body, "<dt>Created</dt><dd>0</dd>") || !strings.Contains(p.body, "<dt>Already present (skipped)</dt><dd>2</dd>") {
			t.Fatalf("second import: %d", p.status)
		}
		// JSON, detected.
		p = b.postFile("/console/users/import", map[string]string{}, "more.json", `[{"email":"dee@example.com"}]`)
		if !strings.Contains(p.body, "<dt>Created</dt><dd>1</dd>") {
			t.Fatalf("json import: %d", p.status)
		}
		// Refused: without the CSRF token, a broken file, an unknown format, a file over the bound.
		if p := b.postFile("/console/users/import", map[string]string{"_csrf": "forged"}, "x.csv", "email\nzed@example.com\n"); p.status != http.StatusForbidden {
			t.Fatalf("without CSRF: %d", p.status)
		}
		if _, err := h.accounts.Find(context.Background(), "zed@example.com"); err == nil {
			t.Fatal("a forged import created an account")
		}
		for _, c := range []struct{ format, file, problem string }{
			{"csv", "name\nx\n", "no email column"},
			{"xml", "email\nx@example.com\n", "Choose CSV or JSON"},
			{"", strings.Repeat("a", 5000), "too large"},
		} {
			h.c.o.MaxUpload = 4096
			p := b.postFile("/console/users/import", map[string]string{"format": c.format}, "f", c.file)
			h.c.o.MaxUpload = 4 << 20
			loc, _ := url.QueryUnescape(p.header.Get("Location"))
			if p.status != http.StatusSeeOther || !strings.Contains(loc, c.problem) {
				t.Errorf("%q: %d %s", c.problem, p.status, loc)
			}
		}
		list, err := h.trail.List(context.Background(), audit.Filter{Action: "user.import", Ascending: true})
		if err != nil || len(list) != 3 {
			t.Fatalf("audit: %d entries, %v", len(list), err)
		}
		after := string(list[0].After)
		if list[0].Target != "people.csv" || !strings.Contains(after, `"created":2`) || !strings.Contains(after, `"failed":2`) || !strings.Contains(after, `"exists":0`) ||
			strings.Contains(after, secret[:10]) || strings.Contains(after, "example.com") {
			t.Fatalf("audit entry: %s %s", list[0].Target, after)
		}
	})
}

// TestUsersDisable: the console's disable and enable run account.SetUserDisabled: an account
// changes with its user, a provider user alone, an unknown user is not found.
func TestUsersDisable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		ctx := context.Background()
		a, err := h.accounts.Add(ctx, "eve@example.com", "", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.users.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "https://accounts.google.com", Subject: "9"}); err != nil {
			t.Fatal(err)
		}
		b := h.signedIn()
		uid := a.TokenUserID()
		b.get("/console/users/" + url.PathEscape(uid))
		if p := b.post("/console/users/"+url.PathEscape(uid)+"/disable", url.Values{}); p.status != http.StatusSeeOther {
			t.Fatalf("disable: %d %s", p.status, p.body)
		}
		if x, _ := h.accounts.Find(ctx, a.ID); !x.Disabled {
			t.Fatal("the account is not disabled with its user")
		}
		if u, _ := h.users.Get(ctx, uid); !u.Disabled {
			t.Fatal("the user is not disabled")
		}
		if p := b.post("/console/users/"+url.PathEscape(uid)+"/enable", url.Values{}); p.status != http.StatusSeeOther {
			t.Fatalf("enable: %d", p.status)
		}
		if x, _ := h.accounts.Find(ctx, a.ID); x.Disabled {
			t.Fatal("the account is still disabled")
		}
		if p := b.post("/console/users/Google:9/disable", url.Values{}); p.status != http.StatusSeeOther {
			t.Fatalf("provider user: %d", p.status)
		}
		if u, _ := h.users.Get(ctx, "Google:9"); !u.Disabled {
			t.Fatal("the provider user is not disabled")
		}
		if p := b.post("/console/users/Google:10/disable", url.Values{}); p.status != http.StatusNotFound {
			t.Fatalf("unknown user: %d", p.status)
		}
		acts := strings.Join(h.auditActions(t), "\n")
		for _, want := range []string{"user.disable " + uid, "user.enable " + uid, "user.disable Google:9"} {
			if !strings.Contains(acts, want) {
				t.Errorf("audit lacks %q:\n%s", want, acts)
			}
		}
	})
}
