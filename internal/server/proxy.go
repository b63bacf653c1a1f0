package server

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Proxies decides who a request came from. The TCP peer is the client unless it is a trusted proxy;
// then the forwarding header is walked right to left (each proxy appends the address it saw), and the
// first address that is not a trusted proxy is the client. Entries left of it were written by whoever
// that client is and are never believed. The scheme and host come from the same hop.
//
// Only one header family is read (ProxyHeader): a proxy that sets X-Forwarded-For usually passes a
// client's own Forwarded header through untouched, so reading both would let a client choose its
// address.
type Proxies struct {
	Trusted []netip.Prefix
	// Forwarded selects RFC 7239 Forwarded; otherwise X-Forwarded-For, -Proto and -Host.
	Forwarded bool
}

// maxHops bounds the work a long forwarding header can cause.
const maxHops = 32

func (p Proxies) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, pr := range p.Trusted {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// hop is one forwarding entry: the address a proxy saw, and (when the header says) the scheme and
// host of the request it received.
type hop struct {
	addr  netip.Addr // invalid: obfuscated, "unknown" or malformed
	proto string
	host  string
}

// Resolve returns the request's client.
func (p Proxies) Resolve(r *http.Request) httpx.Client {
	peer := httpx.PeerAddr(r)
	c := httpx.Client{IP: peer, Peer: peer, HTTPS: r.TLS != nil, Host: r.Host}
	if !p.trusted(peer) {
		return c
	}
	var hops []hop
	if p.Forwarded {
		hops = parseForwarded(r.Header.Values("Forwarded"))
	} else {
		hops = parseXForwarded(r.Header.Values("X-Forwarded-For"), r.Header.Values("X-Forwarded-Proto"), r.Header.Values("X-Forwarded-Host"))
		// The original service's front end (ARR) marks HTTPS with x-arr-ssl.
		if len(hops) == 0 && r.Header.Get("X-Arr-Ssl") != "" {
			c.HTTPS = true
		}
	}
	// Walk right to left while the entries are trusted proxies.
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		if !h.addr.IsValid() {
			// An entry we cannot read: nothing to its left can be attributed; the client is the last
			// trusted hop (its proxy), with that hop's scheme and host.
			break
		}
		c.IP = h.addr
		if h.proto != "" {
			c.HTTPS = strings.EqualFold(h.proto, "https")
		}
		if h.host != "" {
			c.Host = h.host
		}
		if !p.trusted(h.addr) {
			break
		}
	}
	return c
}

// parseXForwarded reads X-Forwarded-For (every header line, in order) with X-Forwarded-Proto and
// -Host. A proxy that appends to X-Forwarded-For usually sets (not appends) the other two, so they
// belong to the rightmost hop; when they carry one value per X-Forwarded-For entry they are aligned.
func parseXForwarded(xff, xfp, xfh []string) []hop {
	addrs := splitList(xff)
	if len(addrs) == 0 {
		return nil
	}
	protos, hosts := splitList(xfp), splitList(xfh)
	hops := make([]hop, len(addrs))
	for i, a := range addrs {
		hops[i].addr = parseNode(a)
	}
	last := len(hops) - 1
	if len(protos) == len(hops) {
		for i := range hops {
			hops[i].proto = validProto(protos[i])
		}
	} else if len(protos) > 0 {
		hops[last].proto = validProto(protos[len(protos)-1])
	}
	if len(hosts) == len(hops) {
		for i := range hops {
			hops[i].host = validHost(hosts[i])
		}
	} else if len(hosts) > 0 {
		hops[last].host = validHost(hosts[len(hosts)-1])
	}
	return hops
}

// splitList splits comma-separated header values, keeping only the last maxHops entries (the walk
// starts at the right and never needs more).
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, part := range strings.Split(v, ",") {
			out = append(out, strings.TrimSpace(part))
		}
	}
	if len(out) > maxHops {
		out = out[len(out)-maxHops:]
	}
	return out
}

// parseForwarded reads RFC 7239 Forwarded: forwarded-element *( "," forwarded-element ), each
// element pairs separated by ";", values tokens or quoted strings.
func parseForwarded(vals []string) []hop {
	var hops []hop
	for _, v := range vals {
		for _, el := range splitQuoted(v, ',') {
			var h hop
			for _, pair := range splitQuoted(el, ';') {
				k, val, ok := strings.Cut(pair, "=")
				if !ok {
					continue
				}
				val = unquote(strings.TrimSpace(val))
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "for":
					h.addr = parseNode(val)
				case "proto":
					h.proto = validProto(val)
				case "host":
					h.host = validHost(val)
				}
			}
			hops = append(hops, h)
		}
	}
	if len(hops) > maxHops {
		hops = hops[len(hops)-maxHops:]
	}
	return hops
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	inQuote, esc, start := false, false, 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case esc:
			esc = false
		case inQuote && ch == '\\':
			esc = true
		case ch == '"':
			inQuote = !inQuote
		case !inQuote && ch == sep:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseNode reads an address as proxies write it: 192.0.2.1, 192.0.2.1:4711, 2001:db8::1,
// [2001:db8::1] or [2001:db8::1]:4711. "unknown", obfuscated identifiers (_hidden) and anything
// else give an invalid address.
func parseNode(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap()
	}
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end > 0 {
			rest := s[end+1:]
			if rest == "" || (rest[0] == ':' && len(rest) > 1) {
				if a, err := netip.ParseAddr(s[1:end]); err == nil && a.Zone() == "" {
					return a.Unmap()
				}
			}
		}
	}
	return netip.Addr{}
}

func validProto(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "http" || s == "https" {
		return s
	}
	return ""
}

// validHost keeps a host[:port] made of host-name characters only (it ends up in logs).
func validHost(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 255 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-.:[]_", ch) >= 0) {
			return ""
		}
	}
	return strings.ToLower(s)
}
