package table_test

import (
	"context"
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
