package account_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestImportReportNeverRepeatsAHash: a malformed hash is reported by its field and problem, never by
// its value (parsers quote the start of what they could not read).
func TestImportReportNeverRepeatsAHash(t *testing.T) {
	e := newEnv(t, storetest.Open(t, storetest.SQLiteURL(t)), envOpt{})
	const secret = "s3cr3tH4shV4lu3-0123456789abcdef"
	file := "email,hash_format,hash,salt\n" +
		"a@example.com,phc,$" + secret + "$x,\n" +
		"b@example.com,phc," + secret + ",\n" +
		"c@example.com,zumo,@@@," + secret + "\n"
	rows, err := account.ParseImportFile(strings.NewReader(file), "csv")
	if err != nil {
		t.Fatal(err)
	}
	sum := e.svc.Import(context.Background(), rows)
	if sum.Errors != 3 || sum.Created != 0 {
		t.Fatalf("summary: %+v", sum)
	}
	for _, r := range sum.Rows {
		if r.Error == "" {
			t.Fatalf("row %d has no reason", r.Line)
		}
		for _, piece := range []string{secret[:6], secret[6:12], secret[12:20]} {
			if strings.Contains(r.Error, piece) {
				t.Errorf("row %d's report repeats the hash: %s", r.Line, r.Error)
			}
		}
	}
}
