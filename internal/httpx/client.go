package httpx

import (
	"context"
	"net"
	"net/http"
	"net/netip"
)

// Client is who a request came from after the trusted proxies are peeled off (server.Proxies): the
// client's address, the scheme it used and the Host it asked for. Peer is the TCP peer.
type Client struct {
	IP    netip.Addr
	Peer  netip.Addr
	HTTPS bool
	Host  string
}

type clientKey struct{}

// WithClient records the resolved client.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientOf returns the resolved client; without the server's middleware (tests, tools), the TCP
// peer with no forwarding header believed.
func ClientOf(r *http.Request) Client {
	ctx := r.Context()
	if c, ok := ctx.Value(clientKey{}).(Client); ok {
		return c
	}
	if i, ok := ctx.Value(infoKey).(*Info); ok && i.hasClient {
		return i.client
	}
	peer := PeerAddr(r)
	return Client{IP: peer, Peer: peer, HTTPS: r.TLS != nil, Host: r.Host}
}

// PeerAddr is the TCP peer's address (invalid when RemoteAddr is not an address).
func PeerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// ClientIP is ClientOf(r).IP as text ("" when unknown), for throttling keys and logs.
func ClientIP(r *http.Request) string {
	if ip := ClientOf(r).IP; ip.IsValid() {
		return ip.String()
	}
	return ""
}

// RequestID returns the id of the request ctx belongs to ("" outside a request).
func RequestID(ctx context.Context) string {
	if i, ok := ctx.Value(infoKey).(*Info); ok {
		return i.RequestID
	}
	return ""
}
