// Package jsonx decodes security-relevant JSON (ID tokens, provider answers, key sets, discovery
// documents, flow cookies, the request bodies of the authentication code) with the semantics of
// JavaScript's JSON.parse, which is what the clients, the original runtime and every other JSON
// consumer in the chain agree on, instead of encoding/json's lenient struct decoding:
//
//   - Member names match struct fields exactly. encoding/json matches them case-insensitively, so
//     {"sub":"alice","Sub":"mallory"} decoded into a field tagged "sub" yields "mallory", and {"SUB":…}
//     alone fills it: here neither "Sub" nor "SUB" is ever used for "sub".
//   - Exactly one JSON value, nothing after it.
//   - Duplicate member names are REFUSED rather than resolved last-wins as JSON.parse does. RFC 8259
//     §4 leaves their meaning open and RFC 7519 §4 lets a JWT parser reject them; every consumer we
//     know (JSON.parse, encoding/json, most libraries) takes the last one, but some take the first.
//     In security-relevant input a duplicate is a parser-differential attack (a proxy, an SDK or a log
//     pipeline reading a different "sub" than we do) or a bug; refusing it means no component can
//     disagree with us about which value we used, and the values we accept are exactly what JSON.parse
//     gives (the differential fuzz target checks this against goja's JSON.parse).
//   - Invalid UTF-8 and unpaired surrogate escapes ("\ud800") are refused: encoding/json silently
//     turns both into U+FFFD, so two different identifiers could collapse into one.
//
// Numbers decoded into an interface are float64, or json.Number with UseNumber, as with encoding/json.
package jsonx

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth bounds nesting (arrays and objects); deeper input is refused.
const MaxDepth = 512

// Errors the decoder returns (wrapped with detail; match with errors.Is).
var (
	ErrSyntax    = errors.New("jsonx: malformed JSON")
	ErrDuplicate = errors.New("jsonx: duplicate member name")
	ErrEncoding  = errors.New("jsonx: invalid UTF-8 or unpaired surrogate")
	ErrTrailing  = errors.New("jsonx: data after the JSON value")
	ErrDepth     = errors.New("jsonx: nesting too deep")
)

// Unmarshal decodes data into v (a non-nil pointer) with the rules in the package comment.
func Unmarshal(data []byte, v any) error { return decode(data, v, false) }

// UnmarshalUseNumber is Unmarshal with numbers in interfaces kept as json.Number.
func UnmarshalUseNumber(data []byte, v any) error { return decode(data, v, true) }

func decode(data []byte, v any, useNumber bool) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("jsonx: Unmarshal needs a non-nil pointer")
	}
	n, err := Parse(data)
	if err != nil {
		return err
	}
	filter(n, rv.Type().Elem(), 0)
	var buf bytes.Buffer
	n.encode(&buf)
	dec := json.NewDecoder(&buf)
	if useNumber {
		dec.UseNumber()
	}
	return dec.Decode(v)
}

// Value is a parsed JSON value: an object (ordered members), an array, or a scalar.
type Value struct {
	Kind    Kind
	Members []Member // KindObject, in document order, names unique
	Items   []*Value // KindArray
	Str     string   // KindString
	Num     string   // KindNumber: the literal
	Bool    bool     // KindBool
}

// Member is one object member.
type Member struct {
	Name  string
	Value *Value
}

// Kind is a JSON value's type.
type Kind int

// Kinds.
const (
	KindNull Kind = iota
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

// Get returns the member named exactly name (nil when absent).
func (v *Value) Get(name string) *Value {
	if v == nil || v.Kind != KindObject {
		return nil
	}
	for _, m := range v.Members {
		if m.Name == name {
			return m.Value
		}
	}
	return nil
}

// Parse parses exactly one JSON value with the package's rules.
func Parse(data []byte) (*Value, error) {
	if !utf8.Valid(data) {
		return nil, ErrEncoding
	}
	if err := checkSurrogates(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrTrailing
	}
	return v, nil
}

func syntaxErr(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: unexpected end of input", ErrSyntax)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %s at offset %d", ErrSyntax, se.Error(), se.Offset)
	}
	return fmt.Errorf("%w: %v", ErrSyntax, err)
}

func parseValue(dec *json.Decoder, depth int) (*Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxErr(err)
	}
	switch t := tok.(type) {
	case nil:
		return &Value{Kind: KindNull}, nil
	case bool:
		return &Value{Kind: KindBool, Bool: t}, nil
	case json.Number:
		return &Value{Kind: KindNumber, Num: string(t)}, nil
	case string:
		return &Value{Kind: KindString, Str: t}, nil
	case json.Delim:
		if depth >= MaxDepth {
			return nil, ErrDepth
		}
		switch t {
		case '[':
			v := &Value{Kind: KindArray, Items: []*Value{}}
			for dec.More() {
				item, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.Items = append(v.Items, item)
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxErr(err)
			}
			return v, nil
		case '{':
			v := &Value{Kind: KindObject, Members: []Member{}}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, syntaxErr(err)
				}
				name, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("%w: object key is not a string", ErrSyntax)
				}
				if seen[name] {
					return nil, fmt.Errorf("%w: %q", ErrDuplicate, clip(name))
				}
				seen[name] = true
				val, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.Members = append(v.Members, Member{Name: name, Value: val})
			}
			if _, err := dec.Token(); err != nil {
				return nil, syntaxErr(err)
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: unexpected token", ErrSyntax)
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// checkSurrogates refuses \uD800–\uDFFF escapes that are not a high surrogate followed by a low one.
// It scans only string contents; malformed JSON is left for the parser to report.
func checkSurrogates(data []byte) error {
	in := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !in {
			if c == '"' {
				in = true
			}
			continue
		}
		switch c {
		case '"':
			in = false
		case '\\':
			if i+1 >= len(data) {
				return nil
			}
			if data[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(data, i+2)
			if !ok {
				return nil
			}
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return ErrEncoding
			case r >= 0xD800 && r <= 0xDBFF:
				if i+2 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
					return ErrEncoding
				}
				lo, ok := hex4(data, i+3)
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return ErrEncoding
				}
				i += 6
			}
		}
	}
	return nil
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(n), err == nil
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// filter removes the members of objects decoded into structs whose names are not exactly one of the
// struct's JSON field names, so encoding/json's case-insensitive fallback never applies. Types with
// their own UnmarshalJSON receive the (duplicate-free, canonical) value untouched: they must decode
// with this package themselves when they read objects.
func filter(v *Value, t reflect.Type, depth int) {
	if v == nil || depth > MaxDepth+8 {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		filter(v, t.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if v.Kind == KindArray {
			for _, it := range v.Items {
				filter(it, t.Elem(), depth+1)
			}
		}
	case reflect.Map:
		if v.Kind == KindObject {
			for _, m := range v.Members {
				filter(m.Value, t.Elem(), depth+1)
			}
		}
	case reflect.Struct:
		if v.Kind != KindObject || reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return
		}
		fields := structFields(t)
		kept := v.Members[:0]
		for _, m := range v.Members {
			if ft, ok := fields[m.Name]; ok {
				filter(m.Value, ft, depth+1)
				kept = append(kept, m)
			}
		}
		v.Members = kept
	}
}

// structFields maps the exact JSON names of a struct's fields (encoding/json's naming: the tag's
// name, else the Go name; untagged embedded structs flattened) to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct && depth < 8 {
					walk(et, depth+1)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := out[name]; !dup {
				out[name] = ft
			}
		}
	}
	walk(t, 0)
	return out
}

// encode writes v as canonical JSON (the members that survived, numbers as written).
func (v *Value) encode(b *bytes.Buffer) {
	switch v.Kind {
	case KindNull:
		b.WriteString("null")
	case KindBool:
		b.WriteString(strconv.FormatBool(v.Bool))
	case KindNumber:
		b.WriteString(v.Num)
	case KindString:
		writeString(b, v.Str)
	case KindArray:
		b.WriteByte('[')
		for i, it := range v.Items {
			if i > 0 {
				b.WriteByte(',')
			}
			it.encode(b)
		}
		b.WriteByte(']')
	case KindObject:
		b.WriteByte('{')
		for i, m := range v.Members {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, m.Name)
			b.WriteByte(':')
			m.Value.encode(b)
		}
		b.WriteByte('}')
	}
}

func writeString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a valid UTF-8 string always encodes
	b.Write(enc)
}
