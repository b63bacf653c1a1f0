package table_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/odata"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/table"
)

// peakRSS is the process's peak resident set size in bytes (VmHWM), or -1 where /proc is missing.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// amplification is issue 10's attack: nested concats of replace(text,'a',<100 chars>) over a 1 MiB
// value (each replace makes 100 MiB; SQLite evaluated them in our process: 972 MB peak RSS).
func amplification(n int) string {
	r := strings.Repeat("R", 100)
	e := "replace(text,'a','" + r + "')"
	for range n {
		e = "concat(" + e + ",replace(text,'a','" + r + "'))"
	}
	return e
}

// TestODataAmplificationRefused: issue 10 finding 5. With the application key, the amplifying
// $filter and $orderby over a ~1 MiB row answer 400 at once, without running (peak RSS stays put);
// a query within the bound still runs on the same row.
func TestODataAmplificationRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		big := strings.Repeat("a", 1000*1000)
		expect(t, e.do("POST", "/tables/todoitem", `{"id":"big","text":"`+big+`"}`, "X-ZUMO-APPLICATION", appKey), 201)
		before := peakRSS()
		for _, q := range []string{
			"$filter=" + url.QueryEscape("length("+amplification(8)+") gt 0"),
			"$orderby=" + url.QueryEscape(amplification(8)),
			"$filter=" + url.QueryEscape("length("+amplification(1)+") gt 0"),
			"$filter=" + url.QueryEscape("text eq 'x'") + "&$orderby=" + url.QueryEscape(amplification(1)),
		} {
			for _, v2 := range []bool{false, true} {
				h := []string{"X-ZUMO-APPLICATION", appKey}
				if v2 {
					h = append(h, "v2")
				}
				start := time.Now()
				r := e.do("GET", "/tables/todoitem?"+q, "", h...)
				expect(t, r, 400, "too expensive", "maximum 32")
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("refusal took %v", d)
				}
			}
		}
		if after := peakRSS(); before > 0 && after-before > 64<<20 {
			t.Fatalf("peak RSS grew by %d MB while refusing", (after-before)>>20)
		}
		r := e.do("GET", "/tables/todoitem?$select=id&$filter="+url.QueryEscape("length(concat(tolower(text),replace(text,'a','bb'))) gt 0"), "", "X-ZUMO-APPLICATION", appKey)
		expect(t, r, 200, `"id":"big"`)
	})
}

// TestResultSizeBounded: a read whose rows exceed max_response_kb answers 400 naming the bound, in
// both dialects; a smaller $top succeeds.
func TestResultSizeBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnvWith(t, db, table.Defaults{DynamicSchema: true, Permission: auth.Application, MaxResultBytes: 50_000}, nil)
		row := strings.Repeat("x", 10_000)
		for i := range 8 {
			expect(t, e.do("POST", "/tables/todoitem", fmt.Sprintf(`{"id":"r%d","text":"%s"}`, i, row)), 201)
		}
		for _, h := range [][]string{nil, {"v2"}} {
			expect(t, e.do("GET", "/tables/todoitem", "", h...), 400, "larger than the maximum of 50000 bytes", "$top")
			r := e.do("GET", "/tables/todoitem?$top=3", "", h...)
			expect(t, r, 200)
			if n := len(r.list(t)); n != 3 {
				t.Fatalf("%d rows", n)
			}
		}
		// JSON escaping can make a page longer than its values: the rendered page is bounded too.
		ctl := strings.Repeat(`\u0001`, 4_000)
		for i := range 3 {
			expect(t, e.do("POST", "/tables/todoitem", fmt.Sprintf(`{"id":"c%d","text":"%s"}`, i, ctl)), 201)
		}
		expect(t, e.do("GET", "/tables/todoitem?$filter="+url.QueryEscape("startswith(id,'c')"), ""), 400, "larger than the maximum")
	})
}

// TestQueryCancelledAtDeadline: a read stops when its context ends, on both databases, also when the
// expensive part comes after the first row (SQLite interrupts only the first step of a statement).
func TestQueryCancelledAtDeadline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := table.NewSQL(db)
		s, err := table.NewSchema("Big", table.StringID, table.Options{}, map[string]table.ColumnType{"t": table.String})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		all, err := st.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s = all["big"]
		const n = 20000
		body := strings.Repeat("a", 4000)
		rows := make([]*table.Row, 0, n)
		for i := range n {
			v := body
			if i == 0 || i == n-1 { // matches at both ends: the first row comes at once
				v = "needle" + body
			}
			rows = append(rows, &table.Row{ID: fmt.Sprintf("%06d", i), Values: map[string]any{"t": v}})
		}
		if err := st.InsertBatch(ctx, s, rows); err != nil {
			t.Fatal(err)
		}
		f, err := odata.ParseFilter("substringof('needle', replace(t,'a','bbbb'))")
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, err = st.Query(c, s, &odata.Query{Filter: f, Top: 10})
		d := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v after %v, want the deadline", err, d)
		}
		if d > time.Second {
			t.Fatalf("the query ran %v past a 100ms deadline", d)
		}
	})
}

// props is a JSON object with n properties named prefix0 … prefixN-1.
func props(prefix string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"%s%d":%d`, prefix, i, i)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func columnCount(t *testing.T, e *env, name string) int {
	t.Helper()
	s, err := e.svc.Refresh(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return len(s.Columns())
}

// TestDynamicSchemaIssueReproduction: issue 10 finding 6 with the default limits. One insert with
// 2,100 new properties answered 500 after adding 1,995 columns, and every later insert with a new
// property failed. Now it is a 400 that adds nothing, and the table keeps working.
func TestDynamicSchemaIssueReproduction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		before := columnCount(t, e, "TodoItem")
		expect(t, e.do("POST", "/tables/todoitem", props("p", 2100), "X-ZUMO-APPLICATION", appKey), 400, "at most 516")
		expect(t, e.do("POST", "/tables/todoitem", props("p", 300), "X-ZUMO-APPLICATION", appKey), 400, "one request can add at most 100")
		if n := columnCount(t, e, "TodoItem"); n != before {
			t.Fatalf("%d columns added by refused requests", n-before)
		}
		expect(t, e.do("POST", "/tables/todoitem", `{"text":"still works","fresh":true}`, "X-ZUMO-APPLICATION", appKey), 201)
	})
}

// TestColumnLimits: the per-request and per-table bounds, on inserts, updates and the admin API;
// a refused request adds no column (all or nothing) and the table stays usable.
func TestColumnLimits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnvWith(t, db, table.Defaults{DynamicSchema: true, Permission: auth.Application, MaxColumns: 30, MaxNewColumns: 10}, nil)
		e.adminMount()
		m := []string{"X-ZUMO-MASTER", masterKey}
		expect(t, e.do("POST", "/tables/todoitem", props("a", 11)), 400, "at most 10")
		if n := columnCount(t, e, "TodoItem"); n != 0 {
			t.Fatalf("%d columns after a refused insert", n)
		}
		for _, p := range []string{"a", "b", "c"} {
			expect(t, e.do("POST", "/tables/todoitem", props(p, 9)), 201)
		}
		// 27 columns: 4 more do not fit; none of them is added.
		r := e.do("POST", "/tables/todoitem", props("d", 4))
		expect(t, r, 400, "would have 31 columns", "at most 30")
		if n := columnCount(t, e, "TodoItem"); n != 27 {
			t.Fatalf("%d columns, want 27", n)
		}
		r = e.do("POST", "/tables/todoitem", `{"a1":5}`)
		expect(t, r, 201)
		id := r.json(t)["id"].(string)
		expect(t, e.do("PATCH", "/tables/todoitem/"+id, props("e", 4)), 400, "at most 30")
		expect(t, e.do("PATCH", "/tables/todoitem/"+id, props("e", 3)), 200)
		expect(t, e.do("PATCH", "/tables/todoitem/"+id, `{"e9":1}`), 400, "at most 30")
		expect(t, e.do("PATCH", "/tables/todoitem/"+id, `{"e1":7}`), 200, `"e1":7`)
		// The admin API: a table with too many columns, and an update past the bound that changes
		// nothing at all (not even the options it carries).
		cols := make([]string, 31)
		for i := range cols {
			cols[i] = fmt.Sprintf(`"c%d":"string"`, i)
		}
		expect(t, e.do("POST", "/admin/tables", `{"name":"Wide","columns":{`+strings.Join(cols, ",")+`}}`, m...), 400, "at most 30")
		expect(t, e.do("POST", "/admin/tables", `{"name":"Wide","columns":{`+strings.Join(cols[:20], ",")+`}}`, m...), 201)
		expect(t, e.do("PATCH", "/admin/tables/Wide", `{"softDelete":true,"columns":{`+strings.Join(cols, ",")+`}}`, m...), 400, "would have 31 columns")
		if s, _ := e.svc.Refresh(context.Background(), "Wide"); s.Options.SoftDelete || len(s.Columns()) != 20 {
			t.Fatalf("refused update changed the table: softDelete %v, %d columns", s.Options.SoftDelete, len(s.Columns()))
		}
		expect(t, e.do("PATCH", "/admin/tables/Wide", `{"columns":{`+strings.Join(cols[:30], ",")+`}}`, m...), 200)
	})
}

// legacyShort is how versions before issue 10 shortened a long physical name (57 bytes).
func legacyShort(prefix, name string) string {
	n := prefix + strings.ToLower(name)
	sum := sha256.Sum256([]byte(strings.ToLower(name)))
	return n[:40] + "_" + hex.EncodeToString(sum[:8])
}

// TestColumnNameCollision: issue 10 finding 15 (columns). A property named like another column's
// shortened physical name answered 500; it is a 400 now and the table stays usable. New long names
// are shortened to 63 bytes, beyond any unshortened name, so a crafted name cannot reach them; names
// shortened by older versions are still recorded, and checked.
func TestColumnNameCollision(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		long := "a" + strings.Repeat("b", 99)
		ctx := context.Background()
		s, err := e.svc.Refresh(ctx, "TodoItem")
		if err != nil {
			t.Fatal(err)
		}
		// A column recorded by an older version with the 57-byte shortening.
		legacy := legacyShort("c_", long)
		if err := e.svc.Store().AddColumn(ctx, s, table.Column{Name: long, SQL: legacy, Type: table.String}); err != nil {
			t.Fatal(err)
		}
		crafted := strings.TrimPrefix(legacy, "c_")
		expect(t, e.do("POST", "/tables/todoitem", `{"`+crafted+`":"x"}`, "X-ZUMO-APPLICATION", appKey), 400, "collides with column '"+long+"'")
		// With today's shortening the same attack finds nothing to collide with.
		long2 := "z" + strings.Repeat("y", 99)
		expect(t, e.do("POST", "/tables/todoitem", `{"`+long2+`":"x"}`, "X-ZUMO-APPLICATION", appKey), 201)
		crafted2 := strings.TrimPrefix(legacyShort("c_", long2), "c_")
		expect(t, e.do("POST", "/tables/todoitem", `{"`+crafted2+`":"y"}`, "X-ZUMO-APPLICATION", appKey), 201)
		r := e.do("POST", "/tables/todoitem", `{"`+long+`":"l","`+long2+`":"m","text":"ok"}`, "X-ZUMO-APPLICATION", appKey)
		expect(t, r, 201, `"text":"ok"`)
		r = e.do("GET", "/tables/todoitem?$filter="+url.QueryEscape(long2+" eq 'm'"), "", "X-ZUMO-APPLICATION", appKey)
		expect(t, r, 200, `"`+long+`":"l"`)
	})
}

// TestTableNameCollision: a table name that spells another table's index name (or the reverse) is
// refused with 400, in either order, for the table's own indexes and declared column indexes.
func TestTableNameCollision(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.adminMount()
		m := []string{"X-ZUMO-MASTER", masterKey}
		expect(t, e.do("POST", "/admin/tables", `{"name":"x"}`, m...), 201)
		expect(t, e.do("POST", "/admin/tables", `{"name":"x_updated"}`, m...), 400, "collides")
		expect(t, e.do("POST", "/admin/tables", `{"name":"y_updated"}`, m...), 201)
		expect(t, e.do("POST", "/admin/tables", `{"name":"y"}`, m...), 400, "collides")
		// Movies declares an index on year, named gh_movies_ox_year_<hash>.
		expect(t, e.do("POST", "/admin/tables", `{"name":"`+strings.TrimPrefix(declaredIndexName("gh_movies", "year"), "gh_")+`"}`, m...), 400, "collides")
		expect(t, e.do("POST", "/admin/tables", `{"name":"`+strings.TrimPrefix(declaredIndexName("gh_z", "n"), "gh_")+`"}`, m...), 201)
		expect(t, e.do("POST", "/admin/tables", `{"name":"z","columns":{"n":"number"},"indexes":["n"]}`, m...), 400)
		// Long table names: both shortened names stay distinct and usable.
		l1, l2 := "t"+strings.Repeat("q", 90)+"1", "t"+strings.Repeat("q", 90)+"2"
		for _, n := range []string{l1, l2} {
			expect(t, e.do("POST", "/admin/tables", `{"name":"`+n+`","permissions":{"*":"public"},"perUser":false}`, m...), 201)
			expect(t, e.do("POST", "/tables/"+n, `{"v":"`+n[len(n)-1:]+`"}`), 201)
		}
		expect(t, e.do("GET", "/tables/"+l2, ""), 200, `"v":"2"`)
		expect(t, e.do("GET", "/tables/x", "", m...), 200)
	})
}

// TestSQLiteLengthLimitIsClientError: past SQLITE_LIMIT_LENGTH a write or a read answers 400, not 500.
func TestSQLiteLengthLimitIsClientError(t *testing.T) {
	db, err := store.OpenWith(context.Background(), storetest.SQLiteURL(t), t.TempDir(), store.Options{Schema: store.Migrate, SQLiteMaxLength: 20_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := newEnv(t, db)
	expect(t, e.do("POST", "/tables/todoitem", `{"id":"big","text":"`+strings.Repeat("x", 30_000)+`"}`), 400, "too large to store")
	expect(t, e.do("POST", "/tables/todoitem", `{"id":"ok","text":"`+strings.Repeat("x", 8_000)+`"}`), 201)
	f := url.QueryEscape("length(concat(concat(text,text),text)) gt 0")
	expect(t, e.do("GET", "/tables/todoitem?$filter="+f, ""), 400, "larger than the database allows")
	expect(t, e.do("GET", "/tables/todoitem/ok", ""), 200)
}
