package script_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/notify"
	"github.com/gatehouse/gatehouse/internal/script"
	"github.com/gatehouse/gatehouse/internal/scriptstore"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

var overlayApp = map[string]string{
	"datamodel.json":        `{"tables":[{"name":"Items","permissions":{"*":"public"}}]}`,
	"table/items.insert.js": "function insert(item, user, request) { item.by = 'file'; request.execute(); }\n",
	"api/hello.json":        `{"routes":{"*":{"get":{"permission":"public"}}}}`,
	"api/hello.js":          `exports.get = function (req, res) { res.send(200, { v: require('../shared/version').value }); };`,
	"shared/version.js":     `exports.value = 'file';`,
}

func overlayEnv(t *testing.T, db *store.DB) (*env, *scriptstore.SQL) {
	t.Helper()
	st := scriptstore.NewSQL(db)
	return newEnv(t, db, overlayApp, func(o *script.Options) { o.Overlay = st }), st
}

func save(t *testing.T, st *scriptstore.SQL, path, src string) {
	t.Helper()
	if _, err := st.Save(context.Background(), scriptstore.Change{Path: path, Source: src, SavedBy: "test"}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestOverlayEdits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e, st := overlayEnv(t, db)
		reload := func(want bool) {
			t.Helper()
			changed, err := e.engine.Reload(ctx)
			if err != nil || changed != want {
				t.Fatalf("reload: changed %v (want %v), %v", changed, want, err)
			}
		}
		expect(t, e.do("GET", "/api/hello", ""), 200, `{"v":"file"}`)
		reload(false)

		// An edit of a shared module overrides the deployed file, also through require.
		save(t, st, "shared/version.js", `exports.value = 'edit';`)
		reload(true)
		expect(t, e.do("GET", "/api/hello", ""), 200, `{"v":"edit"}`)
		if !e.engine.Current().Edited("shared/version.js") || e.engine.Current().Edited("api/hello.js") {
			t.Fatal("Edited does not tell the edit from the file")
		}
		reload(false)

		// A table operation script edit serves the next insert.
		save(t, st, "table/items.insert.js", "function insert(item, user, request) { item.by = 'edit'; request.execute(); }\n")
		reload(true)
		expect(t, e.do("POST", "/tables/Items", `{"title":"a"}`, "ZUMO-API-VERSION", "2.0.0"), 201, `"by":"edit"`)

		// Edits can add scripts the folder lacks: an API (with a new shared module it requires), a
		// table operation, a job.
		save(t, st, "shared/lib/extra.js", `exports.word = 'added';`)
		save(t, st, "api/fresh.js", `exports.get = function (req, res) { res.send(200, { w: require('../shared/lib/extra').word }); };`)
		save(t, st, "table/items.update.js", "function update(item, user, request) { item.by = 'update-edit'; request.execute(); }\n")
		save(t, st, "scheduler/fresh.js", "function fresh() { console.log('fresh job'); }\n")
		reload(true)
		expect(t, e.do("GET", "/api/fresh", "", "X-ZUMO-MASTER", masterKey), 200, `{"w":"added"}`)
		if _, ok := e.engine.App().Job("fresh"); !ok {
			t.Fatal("a job added by an edit is not declared")
		}
		if _, ok := e.engine.Current().TableScript("items", "update"); !ok {
			t.Fatal("a table operation added by an edit is not registered")
		}

		// A syntax error in any edit: nothing of the new state loads; the previous version serves.
		save(t, st, "api/hello.js", "exports.get = function (req, res) {\n  res.send(200, { v: 3 );\n};")
		save(t, st, "shared/version.js", `exports.value = 'never';`)
		if _, err := e.engine.Reload(ctx); err == nil || !strings.Contains(err.Error(), "api/hello.js") {
			t.Fatalf("reload with a syntax error: %v", err)
		}
		expect(t, e.do("GET", "/api/hello", ""), 200, `{"v":"edit"}`)

		// Reverting the broken edit: the deployed api/hello.js serves with the newest shared module.
		if _, err := st.Revert(ctx, "api/hello.js", nil); err != nil {
			t.Fatal(err)
		}
		reload(true)
		expect(t, e.do("GET", "/api/hello", ""), 200, `{"v":"never"}`)

		// Reverting an added script removes it.
		if _, err := st.Revert(ctx, "api/fresh.js", nil); err != nil {
			t.Fatal(err)
		}
		reload(true)
		expect(t, e.do("GET", "/api/fresh", "", "X-ZUMO-MASTER", masterKey), 404)
	})
}

// TestFollowReloadsOnHintAndPoll: a notify.Scripts hint reloads at once; without one, the poll of the
// edits' revision does.
func TestFollowReloadsOnHintAndPoll(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteURL(t))
	e, st := overlayEnv(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := notify.NewLocal()
	go e.engine.Follow(ctx, n, time.Hour)
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := e.do("GET", "/api/hello", "")
			if strings.Contains(r.body, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %s, want %s", r.body, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Follow subscribes asynchronously: publish until the hint lands.
	save(t, st, "shared/version.js", `exports.value = 'hinted';`)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				_ = n.Publish(ctx, notify.Scripts, "shared/version.js")
			}
		}
	}()
	waitFor(`"hinted"`)
	close(stop)

	// No hint: a short poll finds the change.
	cancel()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go e.engine.Follow(ctx2, nil, 50*time.Millisecond)
	save(t, st, "shared/version.js", `exports.value = 'polled';`)
	waitFor(`"polled"`)
	if rev, _ := st.Revision(context.Background()); e.engine.Current().EditsRevision() != rev {
		t.Fatalf("serving revision %d, stored %d", e.engine.Current().EditsRevision(), rev)
	}
}

func TestCheckerMatchesEngine(t *testing.T) {
	e := newEnv(t, nil, overlayApp)
	c, err := script.NewChecker(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("function insert(item, user, request) {\n  request.execute(;\n}\n")
	want := e.engine.Check("table/items.insert.js", bad)
	got := c.Check("table/items.insert.js", bad)
	if want == nil || got == nil || want.Error() != got.Error() || !strings.Contains(got.Error(), "table/items.insert.js:2:") {
		t.Fatalf("checker %v, engine %v", got, want)
	}
	if err := c.Check("table/items.insert.js", []byte("function insert(item, user, request) { request.execute(); }")); err != nil {
		t.Fatal(err)
	}
	if c.ScriptsDir() != e.engine.ScriptsDir() {
		t.Fatalf("scripts dir %s vs %s", c.ScriptsDir(), e.engine.ScriptsDir())
	}
}
