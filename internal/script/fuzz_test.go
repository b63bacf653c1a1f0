package script

import "testing"

// FuzzTranslatePredicate: where(function) translation never panics, whatever the source.
func FuzzTranslatePredicate(f *testing.F) {
	for _, s := range []string{
		"function () { return this.a == 1 && this.b.toLowerCase().indexOf('x') >= 0; }",
		"function (u) { return this.userId === u.id || !(this.n < -2); }",
		"function () { return this.d.getMonth() + Math.floor(this.p) > this.s.substring(1, 2).length; }",
		"() => 1", "function () {}", "function () { return; }", "x", "function (",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		translatePredicate(s, []any{"v", map[string]any{"id": "1"}}) //nolint:errcheck // only panics matter
	})
}
