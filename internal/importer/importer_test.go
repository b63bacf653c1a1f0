package importer

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/jsonx"
	"github.com/gatehouse/gatehouse/internal/table"
)

func TestParseSource(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
		allowHTTP     bool
	}{
		{in: "https://MyApp.azure-mobile.net/", want: "https://myapp.azure-mobile.net"},
		{in: "https://example.com/sub/", want: "https://example.com/sub"},
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{in: "http://[::1]:8080", want: "http://[::1]:8080"},
		{in: "http://localhost:1", want: "http://localhost:1"},
		{in: "http://example.com", err: "plain http"},
		{in: "http://example.com", want: "http://example.com", allowHTTP: true},
		{in: "ftp://example.com", err: "http(s) URL"},
		{in: "example.com", err: "http(s) URL"},
		{in: "https://user:pw@example.com", err: "without user info"},
		{in: "https://example.com/?a=b", err: "without user info"},
	} {
		u, err := parseSource(c.in, c.allowHTTP)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v", c.in, err)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("%s: error shows the password: %v", c.in, err)
			}
			continue
		}
		if err != nil || (&source{base: u}).key() != c.want {
			t.Errorf("%s: %v %v", c.in, u, err)
		}
	}
}

func decode(t testing.TB, s string) any {
	var v any
	if err := jsonx.UnmarshalUseNumber([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParsePageAndRows(t *testing.T) {
	p, err := parsePage(decode(t, `{"results":[{"id":"a","updatedAt":"2020-01-02T03:04:05.678Z","createdAt":"2020-01-01T00:00:00Z","version":"AAA=","deleted":true,"n":1.5,"when":"2020-01-01T00:00:00.000Z","ok":false,"s":"x"}],"count":7}`))
	if err != nil || p.count != 7 || len(p.items) != 1 {
		t.Fatalf("%+v %v", p, err)
	}
	rows, err := convertRows("t", V2, p.items, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	if r.ID != "a" || !r.Deleted || r.Version != "AAA=" || r.UpdatedAt.Format(timeLayout) != "2020-01-02T03:04:05.678Z" || r.CreatedAt.Year() != 2020 {
		t.Fatalf("%+v", r)
	}
	cols, err := inferColumns("t", nil, p.items)
	if err != nil {
		t.Fatal(err)
	}
	if cols["n"] != table.Number || cols["when"] != table.Date || cols["ok"] != table.Boolean || cols["s"] != table.String || len(cols) != 4 {
		t.Fatalf("%v", cols)
	}
	for _, bad := range []string{
		`{"a":1}`, `[1]`, `"x"`,
	} {
		if _, err := parsePage(decode(t, bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	for _, bad := range []string{
		`[{"id":"a"}]`, // no system properties
		`[{"id":"a","createdAt":"x","updatedAt":"2020-01-02T03:04:05Z","version":"v"}]`,
		`[{"id":"a","createdAt":"2020-01-02T03:04:05Z","updatedAt":"2020-01-02T03:04:05Z","version":"v","deleted":"yes"}]`,
		`[{"id":1.5,"createdAt":"2020-01-02T03:04:05Z","updatedAt":"2020-01-02T03:04:05Z","version":"v"}]`,
		`[{"id":"a/b","createdAt":"2020-01-02T03:04:05Z","updatedAt":"2020-01-02T03:04:05Z","version":"v"}]`,
		`[{"id":null}]`,
	} {
		p, err := parsePage(decode(t, bad))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := convertRows("t", V2, p.items, false, time.Now()); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// Mixed types, objects and bad names are refused; dates mixed with strings make a string column.
	for in, want := range map[string]string{
		`[{"x":1},{"x":"a"}]`:                         "holds both",
		`[{"x":{"y":1}}]`:                             "object or array",
		`[{"x":1},{"X":2}]`:                           "differ only in case",
		`[{"bad-name":1}]`:                            "cannot be a column name",
		`[{"d":"2020-01-01T00:00:00Z"},{"d":"soon"}]`: "",
	} {
		p, _ := parsePage(decode(t, in))
		cols, err := inferColumns("t", nil, p.items)
		if want == "" {
			if err != nil || cols["d"] != table.String {
				t.Errorf("%s: %v %v", in, cols, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func TestMarkOrderAndLiterals(t *testing.T) {
	t0 := time.Date(2020, 1, 2, 3, 4, 5, 678e6, time.UTC)
	a := mark{set: true, updated: t0, id: "a"}
	b := mark{set: true, updated: t0, id: "b"}
	c := mark{set: true, updated: t0.Add(time.Millisecond), id: "a"}
	if !a.less(b) || b.less(a) || !b.less(c) || a.less(a) {
		t.Fatal("mark order")
	}
	if literal(t0) != "datetimeoffset'2020-01-02T03:04:05.678Z'" || idLiteral("o'k") != "'o''k'" || idLiteral(int64(42)) != "42" {
		t.Fatal(literal(t0), idLiteral("o'k"))
	}
}

func TestConvertValue(t *testing.T) {
	num := table.Column{Name: "n", Type: table.Number}
	if v, err := convertValue(num, json.Number("1e400")); err == nil {
		t.Fatalf("overflow accepted: %v", v)
	}
	date := table.Column{Name: "d", Type: table.Date}
	if _, err := convertValue(date, "yesterday"); err == nil {
		t.Fatal("bad date accepted")
	}
	if v, err := convertValue(date, "/Date(1000)/"); err != nil || !v.(time.Time).Equal(time.UnixMilli(1000)) {
		t.Fatal(v, err)
	}
	if _, err := convertValue(table.Column{Name: "b", Type: table.Boolean}, "true"); err == nil {
		t.Fatal("string into a boolean column")
	}
}

// FuzzPage feeds arbitrary source answers through the parsing and conversion an import applies: no
// panic, and every accepted row has an id and system properties.
func FuzzPage(f *testing.F) {
	f.Add(`[{"id":"a","updatedAt":"2020-01-02T03:04:05.678Z","createdAt":"2020-01-01T00:00:00Z","version":"AAA=","deleted":true,"n":1.5}]`)
	f.Add(`{"results":[{"id":7,"__updatedAt":"2020-01-02T03:04:05Z","__createdAt":"2020-01-02T03:04:05Z","__version":"v"}],"count":1}`)
	f.Add(`[{"id":3,"x":"2020-01-01T00:00:00+01:00"}]`)
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if jsonx.UnmarshalUseNumber([]byte(s), &v) != nil {
			return
		}
		p, err := parsePage(v)
		if err != nil {
			return
		}
		for _, proto := range []Protocol{V1, V2} {
			for _, legacy := range []bool{false, true} {
				rows, err := convertRows("t", proto, p.items, legacy, time.Unix(0, 0))
				if err != nil {
					continue
				}
				for _, r := range rows {
					if r.ID == nil || r.CreatedAt.IsZero() && !legacy {
						t.Fatalf("accepted a row without id or times: %+v", r)
					}
				}
				cols, err := inferColumns("t", nil, p.items)
				if err != nil {
					continue
				}
				for k := range cols {
					if !table.ValidColumnName(k) {
						t.Fatalf("invalid column %q", k)
					}
				}
			}
		}
	})
}
