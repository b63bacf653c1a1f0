package script

import "testing"

// FuzzTokenize: the T-SQL tokenizer never panics and always terminates.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{
		"SELECT TOP 10 [text] FROM todolist.TodoItem WHERE complete = ? ORDER BY [text] DESC",
		"insert into t (a, b) values (N'x''y', 1.5e3); -- comment",
		"/* c */ UPDATE t SET a = getdate() WHERE b <> ?",
		"[unterminated", "'open", "/* open", "SELECT \"q\"\"x\" FROM t", "@@version", "1..2e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := tokenize(s)
		if err == nil && len(toks) > len(s)+1 {
			t.Fatalf("%d tokens from %d bytes", len(toks), len(s))
		}
	})
}

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
