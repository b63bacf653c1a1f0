package scriptstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/scriptstore"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

func TestStoreConformance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
		st := scriptstore.NewSQL(db).WithClock(func() time.Time { return at })

		if rev, err := st.Revision(ctx); err != nil || rev != 0 {
			t.Fatalf("empty revision: %d %v", rev, err)
		}
		if _, err := st.Get(ctx, "api/x.js"); !errors.Is(err, scriptstore.ErrNotFound) {
			t.Fatalf("get of nothing: %v", err)
		}
		if _, err := st.Revert(ctx, "api/x.js", nil); !errors.Is(err, scriptstore.ErrNotFound) {
			t.Fatalf("revert of nothing: %v", err)
		}

		// A save puts the source in force, with its hash, base, author and a revision.
		var hooked []string
		hook := func(_ context.Context, q scriptstore.Execer, before, after *scriptstore.Edit) error {
			b, a := "-", "-"
			if before != nil {
				b = before.Source
			}
			if after != nil {
				a = after.Source
			}
			hooked = append(hooked, b+">"+a)
			return nil
		}
		e1, err := st.Save(ctx, scriptstore.Change{Path: "api/x.js", Source: "exports.get = 1;", BaseSHA256: "base1", SavedBy: "ann"}, hook)
		if err != nil {
			t.Fatal(err)
		}
		if e1.Revision < 1 || e1.SHA256 != scriptstore.Hash([]byte("exports.get = 1;")) || e1.Bytes != 16 || !e1.SavedAt.Equal(at) {
			t.Fatalf("saved: %+v", e1)
		}
		got, err := st.Get(ctx, "api/x.js")
		if err != nil || got.Source != "exports.get = 1;" || got.BaseSHA256 != "base1" || got.SavedBy != "ann" || got.Revision != e1.Revision || !got.SavedAt.Equal(at) {
			t.Fatalf("get: %+v %v", got, err)
		}
		e2, err := st.Save(ctx, scriptstore.Change{Path: "api/x.js", Source: "exports.get = 2;", BaseSHA256: "base1", SavedBy: "bob"}, hook)
		if err != nil || e2.Revision <= e1.Revision {
			t.Fatalf("second save: %+v %v", e2, err)
		}
		if _, err := st.Save(ctx, scriptstore.Change{Path: "shared/y.js", Source: "exports.y = 1;", SavedBy: "ann"}, nil); err != nil {
			t.Fatal(err)
		}
		rev, src, err := st.Sources(ctx)
		if err != nil || len(src) != 2 || src["api/x.js"] != "exports.get = 2;" || src["shared/y.js"] != "exports.y = 1;" {
			t.Fatalf("sources: %d %v %v", rev, src, err)
		}
		if now, _ := st.Revision(ctx); now != rev || rev < e2.Revision+1 {
			t.Fatalf("revision %d, sources at %d", now, rev)
		}
		list, err := st.List(ctx)
		if err != nil || len(list) != 2 || list[0].Path != "api/x.js" || list[0].Source != "" || list[0].Revision != e2.Revision || list[1].Path != "shared/y.js" {
			t.Fatalf("list: %+v %v", list, err)
		}
		hist, err := st.History(ctx, "api/x.js")
		if err != nil || len(hist) != 2 || hist[0].Revision != e2.Revision || hist[1].Revision != e1.Revision || hist[1].SavedBy != "ann" || hist[0].Source != "" {
			t.Fatalf("history: %+v %v", hist, err)
		}
		old, err := st.At(ctx, "api/x.js", e1.Revision)
		if err != nil || old.Source != "exports.get = 1;" {
			t.Fatalf("at: %+v %v", old, err)
		}
		if _, err := st.At(ctx, "api/x.js", e1.Revision+1000); !errors.Is(err, scriptstore.ErrNotFound) {
			t.Fatalf("at of a missing revision: %v", err)
		}

		// A failing hook rolls the whole change back: nothing stored, the revision unchanged.
		before, _ := st.Revision(ctx)
		boom := errors.New("audit down")
		if _, err := st.Save(ctx, scriptstore.Change{Path: "api/x.js", Source: "exports.get = 3;", SavedBy: "eve"},
			func(context.Context, scriptstore.Execer, *scriptstore.Edit, *scriptstore.Edit) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("hook error: %v", err)
		}
		if after, _ := st.Revision(ctx); after != before {
			t.Fatalf("revision moved on a rolled-back save: %d -> %d", before, after)
		}
		if got, _ := st.Get(ctx, "api/x.js"); got.Source != "exports.get = 2;" {
			t.Fatalf("a rolled-back save is in force: %q", got.Source)
		}
		if hist, _ := st.History(ctx, "api/x.js"); len(hist) != 2 {
			t.Fatalf("a rolled-back save is in the history: %d", len(hist))
		}

		// Revert: the edit goes, the history stays, the revision moves.
		gone, err := st.Revert(ctx, "api/x.js", hook)
		if err != nil || gone.Source != "exports.get = 2;" {
			t.Fatalf("revert: %+v %v", gone, err)
		}
		if _, err := st.Get(ctx, "api/x.js"); !errors.Is(err, scriptstore.ErrNotFound) {
			t.Fatalf("after revert: %v", err)
		}
		if hist, _ := st.History(ctx, "api/x.js"); len(hist) != 2 {
			t.Fatalf("history after revert: %d", len(hist))
		}
		if after, _ := st.Revision(ctx); after <= before {
			t.Fatalf("revert did not move the revision: %d", after)
		}
		want := []string{"->exports.get = 1;", "exports.get = 1;>exports.get = 2;", "exports.get = 2;>-"}
		if strings.Join(hooked, "|") != strings.Join(want, "|") {
			t.Fatalf("hook saw %q", hooked)
		}

		// The history keeps the newest MaxHistory revisions.
		for i := range scriptstore.MaxHistory + 5 {
			if _, err := st.Save(ctx, scriptstore.Change{Path: "table/t.insert.js", Source: fmt.Sprintf("// %d", i), SavedBy: "ann"}, nil); err != nil {
				t.Fatal(err)
			}
		}
		hist, _ = st.History(ctx, "table/t.insert.js")
		if len(hist) != scriptstore.MaxHistory {
			t.Fatalf("history kept %d", len(hist))
		}
		if e, err := st.At(ctx, "table/t.insert.js", hist[0].Revision); err != nil || e.Source != fmt.Sprintf("// %d", scriptstore.MaxHistory+4) {
			t.Fatalf("newest kept: %+v %v", e, err)
		}
		if e, err := st.At(ctx, "table/t.insert.js", hist[len(hist)-1].Revision); err != nil || e.Source != "// 5" {
			t.Fatalf("oldest kept: %+v %v", e, err)
		}

		// Limits.
		if _, err := st.Save(ctx, scriptstore.Change{Path: "api/big.js", Source: strings.Repeat("x", scriptstore.MaxSource+1), SavedBy: "ann"}, nil); !errors.Is(err, scriptstore.ErrTooLarge) {
			t.Fatalf("too large: %v", err)
		}
		if _, err := st.Save(ctx, scriptstore.Change{Path: "api/full.js", Source: strings.Repeat("x", scriptstore.MaxSource), SavedBy: "ann"}, nil); err != nil {
			t.Fatalf("1 MiB: %v", err)
		}
		// Unicode survives both databases unchanged.
		uni := "// ünïcødé ✓ 🚀\nexports.s = '\u2028';"
		if _, err := st.Save(ctx, scriptstore.Change{Path: "shared/u.js", Source: uni, SavedBy: "ann"}, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Get(ctx, "shared/u.js"); got.Source != uni || got.Bytes != len(uni) {
			t.Fatalf("unicode: %q", got.Source)
		}
	})
}

func TestStoreConcurrentSaves(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := scriptstore.NewSQL(db)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.Save(ctx, scriptstore.Change{Path: "shared/c.js", Source: fmt.Sprintf("// %d", i), SavedBy: "ann"}, nil)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		hist, _ := st.History(ctx, "shared/c.js")
		got, _ := st.Get(ctx, "shared/c.js")
		if len(hist) != 8 || got.Revision != hist[0].Revision {
			t.Fatalf("history %d, in force %d (newest %d)", len(hist), got.Revision, hist[0].Revision)
		}
		if rev, _ := st.Revision(ctx); rev != 8 {
			t.Fatalf("revision %d after 8 saves", rev)
		}
	})
}

func TestStoreEditLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the edit limit")
	}
	db := storetest.Open(t, storetest.SQLiteURL(t))
	ctx := context.Background()
	st := scriptstore.NewSQL(db)
	for i := range scriptstore.MaxEdits {
		if _, err := st.Save(ctx, scriptstore.Change{Path: fmt.Sprintf("shared/m%d.js", i), Source: "//", SavedBy: "ann"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Save(ctx, scriptstore.Change{Path: "shared/one-more.js", Source: "//", SavedBy: "ann"}, nil); !errors.Is(err, scriptstore.ErrTooMany) {
		t.Fatalf("past the limit: %v", err)
	}
	// An edited path can still be saved again.
	if _, err := st.Save(ctx, scriptstore.Change{Path: "shared/m1.js", Source: "// again", SavedBy: "ann"}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestValidPath(t *testing.T) {
	for _, ok := range []string{"table/todo.insert.js", "api/hello.js", "scheduler/cleanup.js", "shared/lib/util.js", "api/sub/helper.js"} {
		if got, valid := scriptstore.ValidPath(ok); !valid || got != ok {
			t.Errorf("%s refused", ok)
		}
	}
	for _, bad := range []string{"", "api", "api/", "x.js", "extensions/startup.js", "../api/x.js", "api/../x.js", "api//x.js", "/api/x.js",
		"api\\x.js", "table/.hidden.js", "shared/node_modules/x.js", "api/x.json", "api/bad-name.js", "scheduler/1job.js", "api/x\n.js",
		"shared/" + strings.Repeat("a", 300) + ".js"} {
		if _, valid := scriptstore.ValidPath(bad); valid {
			t.Errorf("%q accepted", bad)
		}
	}
}
