package httpx

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestInfoCarriesClientAndDialect checks that the client and dialect the middleware records in a
// request's bookkeeping are what ClientOf and DialectOf answer, that a context value set on a
// derived context takes precedence, and the answers without either.
func TestInfoCarriesClientAndDialect(t *testing.T) {
	r := httptest.NewRequest("GET", "/x", nil)
	r.RemoteAddr = "192.0.2.7:1234"
	if c := ClientOf(r); c.IP != netip.MustParseAddr("192.0.2.7") || c.Host != "example.com" {
		t.Fatalf("client without middleware: %+v", c)
	}
	if d := DialectOf(r); d != V1 {
		t.Fatalf("dialect without middleware: %v", d)
	}
	if r2 := SetDialect(r, V2); DialectOf(r2) != V2 || DialectOf(r) != V1 {
		t.Fatal("SetDialect without bookkeeping must derive a request carrying the dialect")
	}

	info := &Info{RequestID: "r1"}
	want := Client{IP: netip.MustParseAddr("203.0.113.9"), Peer: netip.MustParseAddr("192.0.2.7"), HTTPS: true, Host: "api.example"}
	info.SetClient(want)
	r = r.WithContext(WithInfo(r.Context(), info))
	if r2 := SetDialect(r, V2); r2 != r {
		t.Fatal("SetDialect with bookkeeping must not copy the request")
	}
	if c := ClientOf(r); c != want {
		t.Fatalf("client %+v, want %+v", c, want)
	}
	if d := DialectOf(r); d != V2 {
		t.Fatalf("dialect %v, want v2", d)
	}
	other := Client{IP: netip.MustParseAddr("198.51.100.1"), Host: "other"}
	derived := r.WithContext(WithDialect(WithClient(context.WithoutCancel(r.Context()), other), V1))
	if c, d := ClientOf(derived), DialectOf(derived); c != other || d != V1 {
		t.Fatalf("derived context: client %+v dialect %v", c, d)
	}
}
