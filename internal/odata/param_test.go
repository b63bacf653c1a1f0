package odata

import (
	"reflect"
	"testing"
)

// TestParamCompilesLikeItsValue checks that a query with a Param compiles, once bound, to exactly the
// statement and arguments of the same query with the value written in, wherever the Param sits among
// the client's literals, in both dialects; and that a wrong number of values is an error.
func TestParamCompilesLikeItsValue(t *testing.T) {
	for _, d := range []Dialect{SQLite{}, Postgres{}} {
		for _, filter := range []string{"", "name eq 'x' and qty gt 2", "substringof('a', name) or price lt 3.5"} {
			build := func(v Expr) *Query {
				q := &Query{Top: 10, Skip: 5, InlineCount: true}
				if filter != "" {
					f, err := ParseFilter(filter)
					if err != nil {
						t.Fatal(err)
					}
					q.Filter = f
				}
				q.Restrict(Eq(Ident("name"), v))
				return q
			}
			s := testSchema(t)
			withValue, err := Compile(build(Str("user-1")), s, d, 1)
			if err != nil {
				t.Fatal(err)
			}
			withParam, err := Compile(build(NewParam()), s, d, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(withParam.Params) != 1 || withParam.Args[withParam.Params[0]] != nil {
				t.Fatalf("params %v args %v", withParam.Params, withParam.Args)
			}
			cols := []Column{{Name: "id", SQL: "id"}, {Name: "name", SQL: "name"}}
			sqlV, argsV, _ := withValue.SelectSQL(`"t"`, cols)
			sqlP, argsP, _ := withParam.SelectSQL(`"t"`, cols)
			bound, err := withParam.Bind(argsP, "user-1")
			if err != nil {
				t.Fatal(err)
			}
			if sqlV != sqlP || !reflect.DeepEqual(argsV, bound) {
				t.Fatalf("%T %q:\n%s %v\n%s %v", d, filter, sqlV, argsV, sqlP, bound)
			}
			if argsP[withParam.Params[0]] != nil {
				t.Fatal("Bind changed its input")
			}
			cV, cargsV := withValue.CountSQL(`"t"`)
			cP, cargsP := withParam.CountSQL(`"t"`)
			if cb, err := withParam.Bind(cargsP, "user-1"); err != nil || cV != cP || !reflect.DeepEqual(cargsV, cb) {
				t.Fatalf("count: %s %v / %s %v (%v)", cV, cargsV, cP, cb, err)
			}
			if _, err := withParam.Bind(argsP); err == nil {
				t.Fatal("missing value accepted")
			}
			if _, err := withParam.Bind(argsP, "a", "b"); err == nil {
				t.Fatal("extra value accepted")
			}
		}
	}
	if _, _, err := CompileFilter(Eq(Ident("name"), NewParam()), testSchema(t), SQLite{}, 1); err == nil {
		t.Fatal("CompileFilter left a parameter unbound")
	}
}
