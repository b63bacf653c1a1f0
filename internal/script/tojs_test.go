package script

import (
	"encoding/json"
	"testing"
)

// TestToJSMembersAreOwn: every Go value handed to scripts (request bodies, table items, query and
// mssql rows, conflict items) becomes objects with JSON.parse semantics.
func TestToJSMembersAreOwn(t *testing.T) {
	e, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.get(e.Current())
	if err != nil {
		t.Fatal(err)
	}
	var item map[string]any
	if err := json.Unmarshal([]byte(`{"__proto__":{"isAdmin":true},"a":1,"a":2}`), &item); err != nil {
		t.Fatal(err)
	}
	evil := map[string]any{"__proto__": map[string]any{"isAdmin": true}}
	for name, v := range map[string]any{
		"item":       item,
		"nested":     map[string]any{"x": evil},
		"array":      []any{evil},
		"rows":       []map[string]any{evil},
		"marshalled": struct{ X map[string]any }{evil},
	} {
		_ = m.rt.Set("v", m.toJS(v))
		got, err := m.rt.RunString(`(function () {
			var seen = [];
			(function walk(o) {
				if (o === null || typeof o !== 'object') return;
				if (!Array.isArray(o) && Object.getPrototypeOf(o) !== Object.prototype) seen.push('prototype replaced');
				if (o.isAdmin !== undefined && !Object.prototype.hasOwnProperty.call(o, 'isAdmin')) seen.push('inherited isAdmin');
				Object.keys(o).forEach(function (k) { walk(o[k]); });
			})(v);
			return seen.join(',') + '|' + JSON.stringify(v);
		})()`)
		if err != nil {
			t.Fatal(err)
		}
		if s := got.String(); s[0] != '|' {
			t.Errorf("%s: %s", name, s)
		}
	}
	_ = m.rt.Set("v", m.toJS(item))
	if got, _ := m.rt.RunString(`v.a + ':' + Object.keys(v).sort().join(',')`); got.String() != "2:__proto__,a" {
		t.Errorf("item: %s", got)
	}
}
