package odata

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSchema resolves every name, with a type chosen from the name, so
// that fuzzed filters reach every part of the compiler.
type fuzzSchema struct{}

func (fuzzSchema) Column(name string) (Column, bool) {
	if strings.HasPrefix(name, "unknown") {
		return Column{}, false
	}
	types := []Type{TypeString, TypeNumber, TypeInteger, TypeBoolean, TypeDate}
	return Column{Name: name, SQL: name + `"q`, Type: types[len(name)%len(types)]}, true
}

func (fuzzSchema) PrimaryKey() Column { return Column{Name: "id", Type: TypeString} }

// FuzzParseFilter checks that the parser and compiler never panic, that
// every error is a bad-query error with a position inside the input, that
// formatting a parsed tree round-trips, and that the compiled SQL uses
// exactly the bound parameters. Seeds: testdata/fuzz/FuzzParseFilter.
func FuzzParseFilter(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseFilter(s)
		if err != nil {
			if !errors.Is(err, ErrBadQuery) {
				t.Fatalf("ParseFilter(%q): %v is not a bad query error", s, err)
			}
			var se *SyntaxError
			if errors.As(err, &se) && (se.Pos < 0 || se.Pos > utf8.RuneCountInString(s)) {
				t.Fatalf("ParseFilter(%q): position %d outside the input", s, se.Pos)
			}
			return
		}
		if e == nil {
			return
		}
		text := Format(e)
		e2, err := ParseFilter(text)
		if err != nil {
			t.Fatalf("Format(%q) = %q does not parse: %v", s, text, err)
		}
		if text2 := Format(e2); text2 != text {
			t.Fatalf("round trip of %q: %q != %q", s, text2, text)
		}
		for _, d := range []Dialect{SQLite{}, Postgres{}} {
			sql, args, err := CompileFilter(e, fuzzSchema{}, d, 1)
			if err != nil {
				if !errors.Is(err, ErrBadQuery) {
					t.Fatalf("CompileFilter(%q): %v is not a bad query error", s, err)
				}
				continue
			}
			if len(args) > 100 {
				continue
			}
			for i := range args {
				if !placeholderUsed(sql, d, i+1) {
					t.Fatalf("%T %q: parameter %d unused in %s", d, s, i+1, sql)
				}
			}
			if placeholderUsed(sql, d, len(args)+1) {
				t.Fatalf("%T %q: parameter %d used but not bound in %s", d, s, len(args)+1, sql)
			}
		}
	})
}

// placeholderUsed reports whether placeholder n occurs as a whole token.
func placeholderUsed(sql string, d Dialect, n int) bool {
	p := d.Placeholder(n)
	for i := 0; ; {
		j := strings.Index(sql[i:], p)
		if j < 0 {
			return false
		}
		end := i + j + len(p)
		if end >= len(sql) || sql[end] < '0' || sql[end] > '9' {
			return true
		}
		i = end
	}
}

func BenchmarkParseCompile(b *testing.B) {
	s := testSchema(b)
	const filter = `(due ge datetimeoffset'2024-01-01T00:00:00.000Z') and (startswith(name,'Am') or price gt 10.5) and userId eq 'u1' and not done`
	b.ReportAllocs()
	for b.Loop() {
		e, err := ParseFilter(filter)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := CompileFilter(e, s, Postgres{}, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseQueryCompile(b *testing.B) {
	s := testSchema(b)
	raw := "$filter=" + strings.ReplaceAll(`(due ge datetimeoffset'2024-01-01T00:00:00.000Z')`, " ", "%20") +
		"&$orderby=due&$top=50&$skip=100&__includeDeleted=true&$inlinecount=allpages"
	b.ReportAllocs()
	for b.Loop() {
		v, _ := url.ParseQuery(raw)
		q, err := ParseQuery(v, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Compile(q, s, SQLite{}, 1); err != nil {
			b.Fatal(err)
		}
	}
}
