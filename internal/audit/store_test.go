package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		base := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
		now := base
		s := audit.NewStore(db).WithClock(func() time.Time { return now })
		rec := func(e audit.Entry) {
			t.Helper()
			if err := s.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Minute)
		}
		rec(audit.Entry{Actor: "master-key", Via: audit.ViaAdminAPI, Action: "table.create", Target: "todo", Remote: "10.0.0.1", RequestID: "r1",
			After: json.RawMessage(`{"name":"todo","columns":{"password":"string"},"permissions":{"read":"public"}}`)})
		rec(audit.Entry{Actor: "cli:alice", Via: audit.ViaCLI, Action: "table.permissions", Target: "todo",
			Before: json.RawMessage(`{"permissions":{"read":"public"}}`), After: json.RawMessage(`{"permissions":{"read":"user"}}`)})
		rec(audit.Entry{Actor: "owner@example.com", Via: audit.ViaConsole, Action: "user.disable", Target: "Google:1",
			After: json.RawMessage(`{"password":"hunter2","nested":{"apiKey":"k","list":[{"refresh_token":"t"}]},"n":12345678901234567890}`)})
		rec(audit.Entry{Actor: "master-key", Via: audit.ViaAdminAPI, Action: "keys.rotate", Target: "=cmd|' /C calc'!A0"})

		if err := s.Record(ctx, audit.Entry{Actor: "x"}); !errors.Is(err, audit.ErrInvalid) {
			t.Fatalf("entry without action: %v", err)
		}

		all, err := s.List(ctx, audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 4 || all[0].Action != "keys.rotate" || all[3].Action != "table.create" {
			t.Fatalf("newest first: %+v", all)
		}
		if !all[3].Time.Equal(base) || all[3].Remote != "10.0.0.1" || all[3].RequestID != "r1" || all[3].Via != "admin-api" {
			t.Fatalf("fields: %+v", all[3])
		}
		if got := string(all[3].After); !strings.Contains(got, `"password":"string"`) {
			t.Fatalf("a column named password is the app's data, kept: %s", got)
		}
		after := string(all[1].After)
		for _, secret := range []string{"hunter2", `"k"`, `"t"`} {
			if strings.Contains(after, secret) {
				t.Fatalf("secret %s kept: %s", secret, after)
			}
		}
		if !strings.Contains(after, "12345678901234567890") {
			t.Fatalf("numbers must survive redaction exactly: %s", after)
		}
		for _, c := range []struct {
			f    audit.Filter
			want []string
		}{
			{audit.Filter{Actor: "master-key"}, []string{"keys.rotate", "table.create"}},
			{audit.Filter{Action: "table.*"}, []string{"table.permissions", "table.create"}},
			{audit.Filter{Action: "table_*"}, nil},
			{audit.Filter{Target: "todo", Ascending: true}, []string{"table.create", "table.permissions"}},
			{audit.Filter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}, []string{"user.disable", "table.permissions"}},
			{audit.Filter{AfterID: all[2].ID, Ascending: true}, []string{"user.disable", "keys.rotate"}},
			{audit.Filter{BeforeID: all[1].ID, Limit: 1}, []string{"table.permissions"}},
		} {
			got, err := s.List(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range got {
				names = append(names, e.Action)
			}
			if strings.Join(names, ",") != strings.Join(c.want, ",") {
				t.Errorf("%+v: got %v, want %v", c.f, names, c.want)
			}
		}

		// Append-only: the database itself refuses an update.
		if _, err := db.ExecContext(ctx, `UPDATE gatehouse_audit SET actor = 'someone else'`); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("update of the trail: %v", err)
		}

		var jl bytes.Buffer
		n, err := s.Export(ctx, &jl, audit.Filter{}, audit.JSONLines)
		if err != nil || n != 4 {
			t.Fatalf("export: %d %v", n, err)
		}
		lines := strings.Split(strings.TrimSpace(jl.String()), "\n")
		var first audit.Entry
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Action != "table.create" || len(lines) != 4 {
			t.Fatalf("jsonl oldest first: %v %q", err, lines[0])
		}
		var cb bytes.Buffer
		if _, err := s.Export(ctx, &cb, audit.Filter{Limit: 10}, audit.CSV); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&cb).ReadAll()
		if err != nil || len(recs) != 5 || strings.Join(recs[0], ",") != strings.Join(audit.CSVHeader, ",") {
			t.Fatalf("csv: %v %v", err, recs)
		}
		if got := recs[4][5]; got != "'=cmd|' /C calc'!A0" {
			t.Fatalf("formula cell not neutralised: %q", got)
		}

		// Retention is the only delete.
		gone, err := s.Prune(ctx, base.Add(2*time.Minute))
		if err != nil || gone != 2 {
			t.Fatalf("prune: %d %v", gone, err)
		}
		left, _ := s.List(ctx, audit.Filter{})
		if len(left) != 2 {
			t.Fatalf("after prune: %d", len(left))
		}
	})
}

func TestExportPages(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := context.Background()
	s := audit.NewStore(db)
	for i := 0; i < 1203; i++ {
		if err := s.Record(ctx, audit.Entry{Actor: "a", Via: "cli", Action: "row.update", Target: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	n, err := s.Export(ctx, &b, audit.Filter{}, audit.JSONLines)
	if err != nil || n != 1203 || strings.Count(b.String(), "\n") != 1203 {
		t.Fatalf("export across pages: %d %v", n, err)
	}
	b.Reset()
	if n, _ := s.Export(ctx, &b, audit.Filter{Limit: 501}, audit.JSONLines); n != 501 {
		t.Fatalf("limited export: %d", n)
	}
}
