package push

import (
	"errors"
	"strings"
	"testing"
)

func TestParseExpr(t *testing.T) {
	has := func(tags ...string) []string { return tags }
	cases := []struct {
		expr string
		tags []string
		want bool
	}{
		{"a", has("a"), true},
		{"a", has("b"), false},
		{"a && b", has("a", "b"), true},
		{"a && b", has("a"), false},
		{"a || b", has("b"), true},
		{"!a", has("b"), true},
		{"!a", has("a"), false},
		{"a || b && c", has("a"), true},        // && binds tighter
		{"(a || b) && c", has("a"), false},     // parentheses group
		{"(a || b) && c", has("b", "c"), true}, //
		{"!(a && b)", has("a", "b"), false},
		{"!!a", has("a"), true},
		{"  a&&b  ", has("a", "b"), true},
		{"_UserId:Google:123 && lang-en", has("_UserId:Google:123", "lang-en"), true},
		{"follows:#news@x.y", has("follows:#news@x.y"), true},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.expr)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		if got := e.MatchTags(c.tags); got != c.want {
			t.Errorf("%q on %v = %v, want %v", c.expr, c.tags, got, c.want)
		}
	}
}

func TestParseExprErrors(t *testing.T) {
	cases := []struct {
		expr string
		pos  int
		msg  string
	}{
		{"", 1, "empty expression"},
		{"a &&", 5, "ends where a tag was expected"},
		{"a & b", 3, `single "&"`},
		{"(a || b", 1, "unclosed parenthesis"},
		{"a b", 3, "expected && or ||"},
		{"a || b$c", 7, `character "$"`},
		{"()", 2, "empty parentheses"},
		{"a)", 2, "unexpected"},
		{"a || é", 6, `character "é"`},
		{strings.Repeat("(", 40) + "a" + strings.Repeat(")", 40), 34, "nested deeper"},
		{"a && " + strings.Repeat("x", 121), 6, "longer than 120"},
	}
	for _, c := range cases {
		_, err := ParseExpr(c.expr)
		var ee *ExprError
		if !errors.As(err, &ee) {
			t.Fatalf("%q: got %v, want an ExprError", c.expr, err)
		}
		if ee.Pos != c.pos || !strings.Contains(ee.Msg, c.msg) {
			t.Errorf("%q: position %d %q, want %d %q", c.expr, ee.Pos, ee.Msg, c.pos, c.msg)
		}
		if !strings.Contains(err.Error(), "at position") {
			t.Errorf("%q: the message %q names no position", c.expr, err)
		}
	}
}

func TestParseExprLimits(t *testing.T) {
	tags := func(n int, op string) string {
		var s []string
		for i := 0; i < n; i++ {
			s = append(s, "t"+strings.Repeat("x", i%3)+string(rune('a'+i)))
		}
		return strings.Join(s, op)
	}
	if _, err := ParseExpr(tags(20, " || ")); err != nil {
		t.Fatalf("20 tags with ||: %v", err)
	}
	if _, err := ParseExpr(tags(21, " || ")); err == nil || !strings.Contains(err.Error(), "at most 20") {
		t.Fatalf("21 tags with ||: %v", err)
	}
	if _, err := ParseExpr(tags(6, " && ")); err != nil {
		t.Fatalf("6 tags with &&: %v", err)
	}
	if _, err := ParseExpr(tags(7, " && ")); err == nil || !strings.Contains(err.Error(), "at most 6") {
		t.Fatalf("7 tags with &&: %v", err)
	}
	if _, err := ParseExpr("!" + tags(6, " || ")); err != nil {
		t.Fatalf("a negation and 6 tags: %v", err)
	}
	if _, err := ParseExpr("!" + tags(7, " || ")); err == nil {
		t.Fatal("a negation and 7 tags: accepted")
	}
}

func TestNeedsAll(t *testing.T) {
	for expr, want := range map[string]bool{"a": false, "!a": true, "a || !b": true, "a && !b": false, "!(a && b)": true} {
		e, err := ParseExpr(expr)
		if err != nil {
			t.Fatal(err)
		}
		if e.NeedsAll() != want {
			t.Errorf("%q NeedsAll = %v", expr, !want)
		}
	}
}

func TestValidTagAndUserTag(t *testing.T) {
	for _, ok := range []string{"a", "x_y@z#1.2:3-4", strings.Repeat("a", 120)} {
		if err := ValidTag(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a,b", strings.Repeat("a", 121), "é", "a|b"} {
		if ValidTag(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := UserTag("Google:123"); got != "_UserId:Google:123" {
		t.Errorf("UserTag = %q", got)
	}
	// Characters a tag cannot hold are escaped, # too, so distinct ids stay distinct and valid.
	a, b := UserTag("oidc|x y"), UserTag("oidc#7Cx y")
	if a == b || ValidTag(a) != nil || ValidTag(b) != nil {
		t.Errorf("UserTag escapes: %q %q", a, b)
	}
}

func TestExpand(t *testing.T) {
	props := map[string]string{"msg": `He said "hi" <b> & left`, "n": "42", "long": "abcdef"}
	body, _, err := Expand(APNs, Template{Body: `{"aps":{"alert":"$(msg)","badge":"$(n)"},"x":"$(missing)$(long, 3)"}`}, props)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"aps":{"alert":"He said \"hi\" \u003cb\u003e \u0026 left","badge":"42"},"x":"abc"}`
	if string(body) != want {
		t.Errorf("json: %s\nwant  %s", body, want)
	}
	body, h, err := Expand(WNS, Template{Body: `<toast><visual><binding template="ToastText01"><text id="1">$(msg)</text></binding></visual></toast>`,
		Headers: map[string]string{"X-WNS-Type": "wns/toast", "X-WNS-Tag": "$(n)"}}, props)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `He said &quot;hi&quot; &lt;b&gt; &amp; left`) || h["X-WNS-Tag"] != "42" {
		t.Errorf("xml: %s %v", body, h)
	}
	for _, bad := range []string{"$(", "$(a", "$()", "$(a, x)", "$(a, 0)"} {
		if err := CheckTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"a", "a && b", "(a || b) && !c", "!(", "a &&", "((((a))))", "a || b || c", "é", "a&b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpr(s)
		if err != nil {
			var ee *ExprError
			if !errors.As(err, &ee) || ee.Pos < 1 || ee.Pos > len(s)+1 {
				t.Fatalf("%q: bad error %v", s, err)
			}
			return
		}
		if len(e.Tags()) == 0 {
			t.Fatalf("%q parsed without tags", s)
		}
		for _, tag := range e.Tags() {
			if err := ValidTag(tag); err != nil {
				t.Fatalf("%q produced an invalid tag: %v", s, err)
			}
		}
		e.MatchTags(e.Tags())
		e.NeedsAll()
	})
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"$(a)", "x$(a, 2)y", "$(", "$()", `{"a":"$(b)"}`} {
		f.Add(s, "v\"<&")
	}
	f.Fuzz(func(t *testing.T, body, v string) {
		if CheckTemplate(body) != nil {
			return
		}
		for _, p := range []string{APNs, WNS} {
			if _, _, err := Expand(p, Template{Body: body}, map[string]string{"a": v, "b": v}); err != nil {
				t.Fatalf("%q passed CheckTemplate but Expand failed: %v", body, err)
			}
		}
	})
}
