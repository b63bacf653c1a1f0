package odata

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// precedence: not/- > mul div mod > add sub > comparisons > and > or
		{`a eq 1 or b eq 2 and c eq 3`, `(a eq 1) or ((b eq 2) and (c eq 3))`},
		{`a add b mul c eq d`, `(a add (b mul c)) eq d`},
		{`a sub b sub c eq 0`, `((a sub b) sub c) eq 0`},
		{`a div b mod c mul d eq 0`, `(((a div b) mod c) mul d) eq 0`},
		{`a mod 2 add 1 gt 3`, `((a mod 2) add 1) gt 3`},
		{`not a eq b`, `(not a) eq b`},
		{`not (a eq b)`, `not (a eq b)`},
		{`not(done)`, `not done`},
		{`not not done`, `not not done`},
		{`-a mul b`, `(-a) mul b`},
		{`- a`, `-a`},
		{`a eq -5`, `a eq (-5)`},
		{`a eq - 5`, `a eq (-5)`},
		{`a eq -(5)`, `a eq (-5)`},
		{`a lt b eq true`, `(a lt b) eq true`},
		{`(a or b) and c`, `(a or b) and c`},
		{`a or b or c`, `a or b or c`},
		{`(a or b) or (c or d)`, `a or b or c or d`},
		{`a and (b and c)`, `a and b and c`},
		{`((((a))))`, `a`},
		// literals
		{`s eq 'it''s'`, `s eq 'it''s'`},
		{`s eq ''''`, `s eq ''''`},
		{`s eq ''`, `s eq ''`},
		{`s eq 'Ünïcödé ✓'`, `s eq 'Ünïcödé ✓'`},
		{`n eq 1.5m`, `n eq 1.5`},
		{`n eq 1.5M`, `n eq 1.5`},
		{`n eq 3L`, `n eq 3`},
		{`n eq 2d`, `n eq 2`},
		{`n eq 1f`, `n eq 1`},
		{`n eq 1e10`, `n eq 1e+10`},
		{`n eq 1.5E-3`, `n eq 0.0015`},
		{`n eq 5e-324`, `n eq 5e-324`},
		{`n eq 1.7976931348623157e308`, `n eq 1.7976931348623157e+308`},
		{`b eq true or b eq false`, `(b eq true) or (b eq false)`},
		{`x eq null`, `x eq null`},
		{`d eq datetime'2024-01-01T00:00:00Z'`, `d eq datetimeoffset'2024-01-01T00:00:00Z'`},
		{`d eq datetime'2024-01-01T10:20'`, `d eq datetimeoffset'2024-01-01T10:20:00Z'`},
		{`d eq DateTime'2024-01-01'`, `d eq datetimeoffset'2024-01-01T00:00:00Z'`},
		{`(updatedAt ge datetimeoffset'2024-01-01T00:00:00.000Z')`, `updatedAt ge datetimeoffset'2024-01-01T00:00:00Z'`},
		{`d eq datetimeoffset'2024-01-01T01:00:00.5+01:00'`, `d eq datetimeoffset'2024-01-01T00:00:00.5Z'`},
		{`id eq guid'6F9619FF-8B86-D011-B42D-00C04FC964FF'`, `id eq guid'6F9619FF-8B86-D011-B42D-00C04FC964FF'`},
		// functions, any case
		{`substring(name,1,2) eq 'ab'`, `substring(name,1,2) eq 'ab'`},
		{`SubstringOf('a', name)`, `substringof('a',name)`},
		{`startswith(name, 'x') and endswith(name,'y')`, `startswith(name,'x') and endswith(name,'y')`},
		{`year(d) eq 2024 and month(d) eq 1 and day(d) eq 2 and hour(d) eq 3 and minute(d) eq 4 and second(d) eq 5`,
			`(year(d) eq 2024) and (month(d) eq 1) and (day(d) eq 2) and (hour(d) eq 3) and (minute(d) eq 4) and (second(d) eq 5)`},
		{`round(floor(ceiling(p))) eq 1`, `round(floor(ceiling(p))) eq 1`},
		{`tolower(toupper(trim(concat(a,b)))) eq replace(c,'x','y')`, `tolower(toupper(trim(concat(a,b)))) eq replace(c,'x','y')`},
		{`indexof(a,'b') eq length(c)`, `indexof(a,'b') eq length(c)`},
		// operators in any case, whitespace variants
		{"a EQ 1 Or b Ne 2", `(a eq 1) or (b ne 2)`},
		{"a\teq\n1", `a eq 1`},
		{`name eq'x'`, `name eq 'x'`},
		{`Not eq 1`, `Not eq 1`},
		{`_x1 eq 1`, `_x1 eq 1`},
		{`prénom eq 'x'`, `prénom eq 'x'`},
	} {
		e, err := ParseFilter(tc.in)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tc.in, err)
			continue
		}
		if got := Format(e); got != tc.want {
			t.Errorf("ParseFilter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseFilterEmpty(t *testing.T) {
	for _, s := range []string{"", "   ", "\t"} {
		e, err := ParseFilter(s)
		if e != nil || err != nil {
			t.Errorf("ParseFilter(%q) = %v, %v; want nil, nil", s, e, err)
		}
	}
}

func TestParseFilterErrors(t *testing.T) {
	deep := strings.Repeat("(", MaxDepth+1) + "a" + strings.Repeat(")", MaxDepth+1)
	chain := "a" + strings.Repeat(" add 1", MaxDepth+1) + " eq 1"
	nots := strings.Repeat("not ", MaxDepth+1) + "a"
	for _, tc := range []struct {
		in  string
		pos int
		msg string
	}{
		{`name eq`, 7, "unexpected end of input"},
		{`name eq 'abc`, 8, "unterminated string literal"},
		{`(name eq 'a'`, 12, "expected ')'"},
		{`a/b eq 1`, 1, "member access"},
		{`x-1 eq 2`, 1, "'-' is not allowed in identifiers"},
		{`name eq 1.`, 8, "invalid number"},
		{`name eq .5`, 8, "unexpected character '.'"},
		{`n eq 3.5L`, 5, "suffix L"},
		{`n eq 12abc`, 5, "invalid number"},
		{`n eq 1e999`, 5, "number out of range"},
		{`n eq 1e`, 5, "invalid number"},
		{`foo(x) eq 1`, 0, "unknown function 'foo'"},
		{`substring(name) eq 'a'`, 0, "requires 2 to 3 parameters"},
		{`concat('a') eq 'a'`, 0, "requires 2 parameter(s)"},
		{`length() eq 0`, 0, "requires 1 parameter(s)"},
		{`length(a,) eq 0`, 9, "expected an operand"},
		{`name eq $it`, 8, "unexpected character '$'"},
		{`name eq @p`, 8, "unexpected character '@'"},
		{`d eq datetime'2024-13-01T00:00:00Z'`, 5, "invalid datetime literal"},
		{`d eq datetime'0000-01-01T00:00:00Z'`, 5, "invalid datetime literal"},
		{`d eq datetimeoffset'yesterday'`, 5, "invalid datetimeoffset literal"},
		{`t eq time'12:00'`, 5, "unsupported literal type 'time'"},
		{`t eq X'00'`, 5, "unsupported literal type 'X'"},
		{`id eq guid'xyz'`, 6, "invalid guid literal"},
		{`a eq 1 b`, 7, "unexpected 'b'"},
		{`eq 1`, 0, "expected an operand but found 'eq'"},
		{`a eq eq 1`, 5, "expected an operand but found 'eq'"},
		{`a eq 1)`, 6, "unexpected ')'"},
		{`a eq 1,`, 6, "unexpected ','"},
		{`a eq 'x'; DROP TABLE t`, 8, "unexpected character ';'"},
		{`a = 1`, 2, "unexpected character '='"},
		{`a eq "x"`, 5, "unexpected character '\"'"},
		{`'ééé' eq x/y`, 10, "member access"},
		{`s eq 'a` + "\x00" + `'`, 5, "NUL character"},
		{"s eq 'a\xffb'", 7, "invalid UTF-8"},
		{deep, MaxDepth, "nested too deeply"},
		{nots, 4 * (MaxDepth - 1), "nested too deeply"},
		{chain, 2 + 6*(MaxDepth-1), "nested too deeply"},
		{strings.Repeat("x", maxIdentLength+1) + " eq 1", 0, "identifier longer than"},
	} {
		_, err := ParseFilter(tc.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseFilter(%.40q): error %v, want *SyntaxError", tc.in, err)
			continue
		}
		if !errors.Is(err, ErrBadQuery) {
			t.Errorf("ParseFilter(%.40q): error does not match ErrBadQuery", tc.in)
		}
		if se.Pos != tc.pos || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("ParseFilter(%.40q) = pos %d %q, want pos %d containing %q", tc.in, se.Pos, se.Msg, tc.pos, tc.msg)
		}
		if !strings.HasPrefix(err.Error(), "$filter: syntax error at position ") {
			t.Errorf("Error() = %q", err.Error())
		}
	}
}

func TestParseFilterLimits(t *testing.T) {
	long := "a eq '" + strings.Repeat("x", MaxFilterLength) + "'"
	_, err := ParseFilter(long)
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrBadQuery) {
		t.Errorf("long filter: %v, want *LimitError", err)
	}
	// A long flat or-chain (as clients send for many ids) is fine.
	terms := make([]string, 2000)
	for i := range terms {
		terms[i] = "id eq 'x'"
	}
	e, err := ParseFilter(strings.Join(terms, " or "))
	if err != nil {
		t.Fatalf("or-chain: %v", err)
	}
	if l, ok := e.(*Logical); !ok || len(l.Terms) != 2000 {
		t.Errorf("or-chain not flat: %T", e)
	}
	// Exactly MaxDepth levels of parentheses are accepted.
	ok := strings.Repeat("(", MaxDepth-1) + "a" + strings.Repeat(")", MaxDepth-1)
	if _, err := ParseFilter(ok); err != nil {
		t.Errorf("depth %d: %v", MaxDepth-1, err)
	}
}

func TestParseOrderBy(t *testing.T) {
	keys, err := ParseOrderBy("name desc, price ASC ,tolower(title), updatedAt")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		s := Format(k.Expr)
		if k.Desc {
			s += " desc"
		}
		got = append(got, s)
	}
	if want := "name desc|price|tolower(title)|updatedAt"; strings.Join(got, "|") != want {
		t.Errorf("got %q, want %q", strings.Join(got, "|"), want)
	}
	for _, bad := range []string{"name,", ",name", "name desc desc", "name; drop", "name asc, ", "a/b"} {
		if _, err := ParseOrderBy(bad); !errors.Is(err, ErrBadQuery) {
			t.Errorf("ParseOrderBy(%q) = %v, want a bad query error", bad, err)
		} else if !strings.HasPrefix(err.Error(), "$orderby:") {
			t.Errorf("ParseOrderBy(%q) error %q does not name $orderby", bad, err)
		}
	}
}

func TestParseSelect(t *testing.T) {
	got, err := ParseSelect(" id, name ,__createdAt,*")
	if err != nil || strings.Join(got, "|") != "id|name|__createdAt|*" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, tc := range []struct {
		in  string
		pos int
	}{{"id,,name", 3}, {"id, na-me", 4}, {`"id"`, 0}, {"id;drop", 0}, {"a/b", 0}, {"id, (SELECT 1)", 4}} {
		_, err := ParseSelect(tc.in)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Pos != tc.pos {
			t.Errorf("ParseSelect(%q) = %v, want syntax error at %d", tc.in, err, tc.pos)
		}
	}
}
