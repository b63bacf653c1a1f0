package odata

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestParseQueryOptions(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		limits  Limits
		top     int
		skip    int
		count   bool
		deleted bool
	}{
		{"", Limits{}, 50, 0, false, false},
		{"", Limits{PageSize: 20}, 20, 0, false, false},
		{"$top=0&$inlinecount=allpages", Limits{}, 0, 0, true, false},
		{"$top=1000", Limits{}, 1000, 0, false, false},
		{"$top=10&$skip=30", Limits{}, 10, 30, false, false},
		{"$top=007", Limits{}, 7, 0, false, false},
		{"$inlinecount=none", Limits{}, 50, 0, false, false},
		{"__includeDeleted=true", Limits{}, 50, 0, false, true},
		{"__includeDeleted=TRUE", Limits{}, 50, 0, false, true},
		{"__INCLUDEDELETED=True", Limits{}, 50, 0, false, true},
		{"__includeDeleted=false", Limits{}, 50, 0, false, false},
		{"__includeDeleted=1", Limits{}, 50, 0, false, false},
		{"__includeDeleted=", Limits{}, 50, 0, false, false},
		{"$top=5000", Limits{MaxTop: 5000}, 5000, 0, false, false},
		{"other=1&$expand=x&noScript=true", Limits{}, 50, 0, false, false},
	} {
		v, err := url.ParseQuery(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParseQuery(v, tc.limits)
		if err != nil {
			t.Errorf("%q: %v", tc.raw, err)
			continue
		}
		if q.Top != tc.top || q.Skip != tc.skip || q.InlineCount != tc.count || q.IncludeDeleted != tc.deleted {
			t.Errorf("%q: got top=%d skip=%d count=%v deleted=%v", tc.raw, q.Top, q.Skip, q.InlineCount, q.IncludeDeleted)
		}
	}
}

func TestParseQueryErrors(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		limits Limits
		msg    string
	}{
		{"$top=1001", Limits{}, "You cannot request more than 1000 records"},
		{"$top=11", Limits{MaxTop: 10}, "You cannot request more than 10 records"},
		{"$top=99999999999999999999999", Limits{}, "You cannot request more than 1000 records"},
		{"$top=-1", Limits{}, "must be greater or equal to 0"},
		{"$top=abc", Limits{}, "The value specified for '$top' must be a number."},
		{"$top=1.5", Limits{}, "must be a number"},
		{"$top=+5", Limits{}, "must be a number"},
		{"$top=", Limits{}, "must be a number"},
		{"$skip=-3", Limits{}, "The value of the $skip query option must be greater or equal to 0."},
		{"$skip=x", Limits{}, "The value specified for '$skip' must be a number."},
		{"$skip=99999999999", Limits{}, "cannot exceed"},
		{"$inlinecount=all", Limits{}, "either 'allpages' or 'none'"},
		{"$top=1&$top=2", Limits{}, "specified more than once"},
		{"$filter=a%20eq%201&$filter=true", Limits{}, "specified more than once"},
		{"__includeDeleted=true&__INCLUDEDELETED=false", Limits{}, "specified more than once"},
		{"$filter=a%20eq", Limits{}, "$filter: syntax error at position 4"},
		{"$orderby=a%20b", Limits{}, "$orderby: syntax error at position 2"},
		{"$select=a%20b", Limits{}, "$select: syntax error at position 0"},
	} {
		v, err := url.ParseQuery(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseQuery(v, tc.limits)
		if err == nil {
			t.Errorf("%q: accepted", tc.raw)
			continue
		}
		if !errors.Is(err, ErrBadQuery) {
			t.Errorf("%q: %v does not match ErrBadQuery", tc.raw, err)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: error %q does not contain %q", tc.raw, err, tc.msg)
		}
	}
	_, err := ParseQuery(url.Values{"$top": {"1001"}}, Limits{})
	var le *LimitError
	if !errors.As(err, &le) || le.Max != 1000 || le.Option != "$top" {
		t.Errorf("$top above max: %#v", err)
	}
}

func TestQueryRestrict(t *testing.T) {
	q := &Query{Top: NoLimit}
	q.Restrict(Eq(Ident("deleted"), Bool(false)))
	if got := Format(q.Filter); got != "deleted eq false" {
		t.Errorf("Restrict on empty filter = %s", got)
	}
	f, _ := ParseFilter("a eq 1 or b eq 2")
	q.Filter = f
	q.Restrict(Eq(Ident("userId"), Str("u1")))
	if got := Format(q.Filter); got != "(userId eq 'u1') and ((a eq 1) or (b eq 2))" {
		t.Errorf("Restrict = %s", got)
	}
	if And() != nil || And(nil, nil) != nil {
		t.Errorf("And of nothing is not nil")
	}
	x := Ident("x")
	if And(nil, x) != Expr(x) {
		t.Errorf("And of one term is not the term")
	}
}
