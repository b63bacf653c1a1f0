package table

import (
	"strings"
	"testing"
)

// FuzzPhysicalNames: two different valid names never get the same physical name, whatever their
// lengths (a shortened name is 63 bytes, an unshortened one at most 60), for tables and columns.
func FuzzPhysicalNames(f *testing.F) {
	long := "a" + strings.Repeat("b", 99)
	f.Add(long, strings.TrimPrefix(legacyPhysical("c_", long), "c_"))
	f.Add("x", "x_updated")
	f.Add(strings.Repeat("q", 58), strings.Repeat("q", 59))
	f.Fuzz(func(t *testing.T, a, b string) {
		if !ValidColumnName(a) || !ValidColumnName(b) || strings.EqualFold(a, b) {
			return
		}
		for _, fn := range []func(string) string{physicalColumn, physicalTable} {
			pa, pb := fn(a), fn(b)
			if pa == pb {
				t.Fatalf("%q and %q share the physical name %q", a, b, pa)
			}
			for _, p := range []string{pa, pb} {
				if len(p) > 63 || (len(p) > 60 && len(p) != 63) {
					t.Fatalf("physical name %q has %d bytes", p, len(p))
				}
			}
		}
	})
}
