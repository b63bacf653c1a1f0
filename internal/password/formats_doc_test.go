package password

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// docExamplePasswords are the passwords behind FORMATS.md's examples.
var docExamplePasswords = map[string]string{
	"ann@example.com": "Passw0rd!",
	"bob@example.com": "U*U",
	"cy@example.com":  "correct horse battery staple",
	"dee@example.com": fbPassword,
	"eve@example.com": "password",
}

func fencedBlock(t *testing.T, doc, lang string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "```"+lang+"\n")
	if !ok {
		t.Fatalf("FORMATS.md has no %s block", lang)
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// TestFormatsDocExamples keeps FORMATS.md honest: its CSV and JSON examples
// import and verify with the documented passwords, and its canonical
// classic example is what FromImport produces.
func TestFormatsDocExamples(t *testing.T) {
	b, err := os.ReadFile("FORMATS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	h := newTestHasher(t, Config{})
	ctx := context.Background()
	check := func(email string, rec ImportRecord) {
		t.Helper()
		s, err := h.Import(rec)
		if err != nil {
			t.Fatalf("%s: %v", email, err)
		}
		if email == "ann@example.com" && !strings.Contains(doc, "`"+s+"`") {
			t.Errorf("FORMATS.md lacks the canonical string %s", s)
		}
		if email == "eve@example.com" && testing.Short() {
			return // 64 MiB argon2id
		}
		res, err := h.Verify(ctx, s, docExamplePasswords[email])
		if err != nil || !res.Match {
			t.Fatalf("%s: %+v, %v", email, res, err)
		}
	}

	rows, err := csv.NewReader(strings.NewReader(fencedBlock(t, doc, "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		cols := map[string]string{}
		for i, name := range rows[0] {
			cols[name] = row[i]
		}
		rec, err := ParseImportRecord(cols)
		if err != nil {
			t.Fatal(err)
		}
		check(cols["email"], rec)
	}

	var objs []json.RawMessage
	if err := json.Unmarshal([]byte(fencedBlock(t, doc, "json")), &objs); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		var rec ImportRecord
		var user struct{ Email string }
		if err := json.Unmarshal(o, &rec); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(o, &user); err != nil {
			t.Fatal(err)
		}
		check(user.Email, rec)
	}
}
