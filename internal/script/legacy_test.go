package script

import "testing"

func TestDecimalLeadingZeros(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Date.UTC(2012, 08, 1)", "Date.UTC(2012,  8, 1)"},
		{"x = 09.5 + 0019", "x =  9.5 +   19"},
		{"x = 012 + 0 + 0.08 + 1e09 + 0x09", "x = 012 + 0 + 0.08 + 1e09 + 0x09"},
		{"s = '08' + \"09\" + `0${09}8` // 08\n/* 09 */ r = /08/g; y = a / 08 / 2", "s = '08' + \"09\" + `0${09}8` // 08\n/* 09 */ r = /08/g; y = a /  8 / 2"},
		{"return /09/.test(x)", "return /09/.test(x)"},
		{"v08 = 1; o.a08 = 2", "v08 = 1; o.a08 = 2"},
	} {
		got, _ := decimalLeadingZeros(c.in)
		if got != c.want {
			t.Errorf("%q:\n got  %q\n want %q", c.in, got, c.want)
		}
	}
}

func FuzzDecimalLeadingZeros(f *testing.F) {
	for _, s := range []string{"Date.UTC(2012, 08, 1)", "`${08}`", "/0[89]/.test('09')", "a/08/b", "1.08e-09"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		out, changed := decimalLeadingZeros(src)
		if len(out) != len(src) {
			t.Fatalf("length changed: %q -> %q", src, out)
		}
		for i := range src {
			if src[i] != out[i] && !(src[i] == '0' && out[i] == ' ') {
				t.Fatalf("byte %d changed from %q to %q", i, src[i], out[i])
			}
		}
		if changed == (out == src) {
			t.Fatalf("changed=%v but equal=%v", changed, out == src)
		}
	})
}
