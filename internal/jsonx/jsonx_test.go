package jsonx_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/jsonx"
)

type claims struct {
	Sub   string `json:"sub"`
	Email string `json:"email"`
	Inner *struct {
		ID string `json:"id"`
	} `json:"inner"`
	Untagged string
}

func TestExactNames(t *testing.T) {
	cases := []struct {
		in   string
		want claims
	}{
		{`{"sub":"alice","Sub":"mallory"}`, claims{Sub: "alice"}},
		{`{"Sub":"mallory","sub":"alice"}`, claims{Sub: "alice"}},
		{`{"SUB":"mallory"}`, claims{}},
		{`{"ſub":"mallory"}`, claims{}}, // U+017F folds to s in encoding/json
		{`{"inner":{"ID":"x","Id":"y"}}`, claims{Inner: &struct {
			ID string `json:"id"`
		}{}}},
		{`{"untagged":"no","Untagged":"yes"}`, claims{Untagged: "yes"}},
	}
	for _, c := range cases {
		var got claims
		if err := jsonx.Unmarshal([]byte(c.in), &got); err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestRefused(t *testing.T) {
	cases := map[string]error{
		`{"sub":"a","sub":"b"}`:              jsonx.ErrDuplicate,
		`{"x":{"sub":"a","sub":"a"}}`:        jsonx.ErrDuplicate,
		`{"sub":"a"} {}`:                     jsonx.ErrTrailing,
		`{"sub":"a"}x`:                       jsonx.ErrTrailing,
		`{"sub":"\ud800"}`:                   jsonx.ErrEncoding,
		`{"sub":"\udc00\ud800"}`:             jsonx.ErrEncoding,
		`{"sub":"\ud800x"}`:                  jsonx.ErrEncoding,
		"{\"sub\":\"\xff\"}":                 jsonx.ErrEncoding,
		`{"sub":`:                            jsonx.ErrSyntax,
		``:                                   jsonx.ErrSyntax,
		`{'sub':1}`:                          jsonx.ErrSyntax,
		`[` + string(make([]byte, 0)) + `]]`: jsonx.ErrTrailing,
	}
	for in, want := range cases {
		var m map[string]any
		err := jsonx.Unmarshal([]byte(in), &m)
		if !errors.Is(err, want) {
			t.Errorf("%q: got %v, want %v", in, err, want)
		}
	}
	deep := make([]byte, 0, 2*jsonx.MaxDepth+2)
	for range jsonx.MaxDepth + 1 {
		deep = append(deep, '[')
	}
	for range jsonx.MaxDepth + 1 {
		deep = append(deep, ']')
	}
	var v any
	if err := jsonx.Unmarshal(deep, &v); !errors.Is(err, jsonx.ErrDepth) {
		t.Errorf("deep: %v", err)
	}
}

func TestValid(t *testing.T) {
	var m map[string]any
	if err := jsonx.UnmarshalUseNumber([]byte(` {"a":[1,2.5e3,"\ud83d\ude00",null,true],"b":{"c":"<&>"}} `), &m); err != nil {
		t.Fatal(err)
	}
	if m["a"].([]any)[1] != json.Number("2.5e3") || m["a"].([]any)[2] != "😀" || m["b"].(map[string]any)["c"] != "<&>" {
		t.Fatalf("%#v", m)
	}
	var raw struct {
		R json.RawMessage `json:"r"`
	}
	if err := jsonx.Unmarshal([]byte(`{"r":{"X":1,"x":2}}`), &raw); err != nil || string(raw.R) != `{"X":1,"x":2}` {
		t.Fatalf("%s %v", raw.R, err)
	}
}

// jsParse is the reference: goja's JSON.parse, exported to Go values.
func jsParse(vm *goja.Runtime, s string) (any, bool) {
	parse, _ := goja.AssertFunction(vm.Get("JSON").ToObject(vm).Get("parse"))
	v, err := parse(goja.Undefined(), vm.ToValue(s))
	if err != nil {
		return nil, false
	}
	// Round-trip through JSON.stringify so both sides compare as plain JSON values.
	str, _ := goja.AssertFunction(vm.Get("JSON").ToObject(vm).Get("stringify"))
	out, err := str(goja.Undefined(), v)
	if err != nil || goja.IsUndefined(out) {
		return nil, false
	}
	var back any
	if err := json.Unmarshal([]byte(out.String()), &back); err != nil {
		return nil, false
	}
	return back, true
}

// FuzzDifferential: whatever jsonx accepts, JSON.parse accepts with the same value; whatever JSON.parse
// accepts and jsonx refuses is refused for a documented reason (duplicates, surrogates, depth); and a
// struct field tagged "sub" only ever holds the exact "sub" member.
func FuzzDifferential(f *testing.F) {
	for _, s := range []string{`{"sub":"a","Sub":"b"}`, `{"sub":"a","sub":"b"}`, `{"SUB":1}`, `[1,"x",{"a":null}]`,
		`{"sub":"\ud800"}`, `"\u00e9"`, `1e400`, `{"a":{"b":[{}]}} x`, `-0`, `{"sub":"x","ſub":"y"}`} {
		f.Add(s)
	}
	vm := goja.New()
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 4096 {
			return
		}
		var got any
		err := jsonx.Unmarshal([]byte(in), &got)
		ref, refOK := jsParse(vm, in)
		if err == nil {
			if !refOK {
				// goja cannot stringify some values JSON.parse accepted (none known); only a jsonx
				// success on input JSON.parse refuses is a failure.
				if _, perr := goja.New().RunString("JSON.parse(" + strconvQuote(in) + ")"); perr != nil {
					t.Fatalf("jsonx accepted %q, JSON.parse refused: %v", in, perr)
				}
				return
			}
			if !reflect.DeepEqual(normalize(got), normalize(ref)) {
				t.Fatalf("%q: jsonx %#v, JSON.parse %#v", in, got, ref)
			}
		} else if refOK && !errors.Is(err, jsonx.ErrDuplicate) && !errors.Is(err, jsonx.ErrEncoding) && !errors.Is(err, jsonx.ErrDepth) {
			t.Fatalf("%q: jsonx refused (%v) what JSON.parse accepts", in, err)
		}
		var c claims
		if jsonx.Unmarshal([]byte(in), &c) == nil {
			m, _ := got.(map[string]any)
			want, _ := m["sub"].(string)
			if c.Sub != want {
				t.Fatalf("%q: sub %q, exact member %q", in, c.Sub, want)
			}
		}
	})
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// normalize maps numbers to float64 via JSON (JSON.stringify writes 1e400 as null; so does the
// comparison after both sides round-trip).
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return "unmarshalable"
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
