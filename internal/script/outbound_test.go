package script

import (
	"net/netip"
	"testing"
)

func TestPublicAddr(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "100.64.0.1", "100.127.255.254", "0.0.0.0", "0.1.2.3", "169.254.169.254", "fe80::1", "fe80::1%eth0",
		"fc00::1", "fd12:3456::1", "ff02::1", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "::",
		"::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "2001:0:4136:e378::1", "2001:db8::1", "198.18.0.1",
		"192.0.2.1", "198.51.100.7", "203.0.113.9", "192.0.0.8", "fec0::1",
	} {
		if publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s counted as public", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "172.32.0.1", "100.128.0.1"} {
		if !publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s counted as not public", s)
		}
	}
}

func TestOutboundAllowlistEntries(t *testing.T) {
	o, err := newOutbound([]string{"api.example.com", "10.0.0.5", "[fd00::7]", "192.168.10.0/24", "*.corp.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]bool{
		"10.0.0.5": true, "::ffff:10.0.0.5": true, "10.0.0.6": false, "fd00::7": true, "192.168.10.200": true,
		"192.168.11.1": false, "127.0.0.1": false, "8.8.8.8": true,
	} {
		if got := o.addrAllowed(netip.MustParseAddr(a)); got != want {
			t.Errorf("addrAllowed(%s) = %v", a, got)
		}
	}
	for h, want := range map[string]bool{"10.0.0.5": true, "192.168.10.1": true, "10.0.0.6": false, "a.corp.example": true, "8.8.8.8": false} {
		if got := o.hostAllowed(h); got != want {
			t.Errorf("hostAllowed(%s) = %v", h, got)
		}
	}
	if _, err := newOutbound([]string{"10.0.0.0/33"}, nil); err == nil {
		t.Error("a bad range was accepted")
	}
}
