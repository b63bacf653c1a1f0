package platform

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse/gatehouse/internal/push"
)

// WNSTokenURL is the Windows Notification Service's token endpoint.
const WNSTokenURL = "https://login.live.com/accesstoken.srf"

// WNSMaxPayload is WNS' limit on a notification's body.
const WNSMaxPayload = 5000

// WNSChannelHosts is where channel URIs may point: WNS' own hosts.
var WNSChannelHosts = []string{"*.notify.windows.com"}

// WNSConfig holds WNS credentials: the app's package SID and client secret (the original service
// used its Microsoft account settings, MS_MicrosoftPackageSID and MS_MicrosoftClientSecret).
type WNSConfig struct {
	PackageSID   string
	ClientSecret string
	// ChannelHosts replaces WNSChannelHosts: host patterns ("*.example.com", "host:port") channel
	// URIs may name. For tests only.
	ChannelHosts []string
}

// WNS delivers to the Windows Notification Service with an OAuth2 client-credentials token.
//
// Headers: X-WNS-Type (wns/toast, wns/tile, wns/badge, wns/raw; default: the XML payload's root
// element), X-WNS-Cache-Policy (cache, no-cache), X-WNS-RequestForStatus (true, false), X-WNS-Tag
// and X-WNS-Group (≤ 16 characters), X-WNS-TTL (seconds; default from Delivery.Expiry),
// X-WNS-SuppressPopup (true, false).
type WNS struct {
	o     Options
	hosts []string
	conf  *clientcredentials.Config
	http  *http.Client

	mu sync.Mutex
	ts oauth2.TokenSource
}

var _ push.Platform = (*WNS)(nil)

// NewWNS builds the platform. No token is fetched yet.
func NewWNS(cfg WNSConfig, o Options) (*WNS, error) {
	if cfg.PackageSID == "" || cfg.ClientSecret == "" {
		return nil, fmt.Errorf("wns: %w: package SID and client secret are both needed", errNotConfigured)
	}
	if !strings.HasPrefix(cfg.PackageSID, "ms-app://") {
		return nil, fmt.Errorf("wns: the package SID must start with ms-app:// (got %q)", cfg.PackageSID)
	}
	w := &WNS{o: o, hosts: WNSChannelHosts, http: o.client(nil, false)}
	if len(cfg.ChannelHosts) > 0 {
		w.hosts = cfg.ChannelHosts
	}
	tokenURL := WNSTokenURL
	if o.TokenURL != "" {
		tokenURL = o.TokenURL
	}
	w.conf = &clientcredentials.Config{ClientID: cfg.PackageSID, ClientSecret: cfg.ClientSecret, TokenURL: tokenURL,
		Scopes: []string{"notify.windows.com"}, AuthStyle: oauth2.AuthStyleInParams}
	w.ts = w.newTokenSource()
	return w, nil
}

func (w *WNS) newTokenSource() oauth2.TokenSource {
	return w.conf.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, w.http))
}

// Name is push.WNS.
func (w *WNS) Name() string { return push.WNS }

// ValidateChannel checks a channel URI: https, no credentials or fragment, on an allowed host.
func (w *WNS) ValidateChannel(channel string) error {
	return validateChannelURI("wns", channel, w.hosts)
}

// ValidateWNSChannel is WNS' channel check with the default hosts, usable without credentials.
func ValidateWNSChannel(channel string) error {
	return validateChannelURI("wns", channel, WNSChannelHosts)
}

// maxChannelURI bounds a channel URI or Web Push endpoint.
const maxChannelURI = 2048

func validateChannelURI(platform, channel string, hosts []string) error {
	if len(channel) > maxChannelURI {
		return fmt.Errorf("%s: the channel URI is longer than %d bytes", platform, maxChannelURI)
	}
	u, err := url.Parse(channel)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" ||
		strings.ContainsAny(channel, " \t\r\n\\") {
		return fmt.Errorf("%s: the channel must be an absolute https URL without credentials or fragment", platform)
	}
	if !hostAllowed(u, hosts) {
		return fmt.Errorf("%s: the channel's host %q is not a push service host (%s)", platform, u.Hostname(), strings.Join(hosts, ", "))
	}
	return nil
}

// hostAllowed matches u's host against patterns: "*.example.com" (any subdomain, default port),
// "example.com" (default port), or "host:port" exactly.
func hostAllowed(u *url.URL, patterns []string) bool {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case strings.Contains(p, ":"):
			if strings.ToLower(u.Host) == p {
				return true
			}
		case port != "" && port != "443":
		case strings.HasPrefix(p, "*."):
			if strings.HasSuffix(host, p[1:]) && len(host) > len(p)-1 {
				return true
			}
		case host == p:
			return true
		}
	}
	return false
}

var wnsContentTypes = map[string]string{"wns/toast": "text/xml", "wns/tile": "text/xml", "wns/badge": "text/xml", "wns/raw": "application/octet-stream"}

type wnsRequest struct {
	typ     string
	headers headers
}

// ValidatePayload checks the type, the XML of toast/tile/badge notifications, the headers and the
// size.
func (w *WNS) ValidatePayload(payload []byte, h map[string]string) error {
	_, err := wnsPrepare(payload, h)
	return err
}

func wnsPrepare(payload []byte, h map[string]string) (wnsRequest, error) {
	var r wnsRequest
	hs, err := canonicalHeaders("wns", h, "x-wns-type", "x-wns-cache-policy", "x-wns-requestforstatus", "x-wns-tag", "x-wns-group", "x-wns-ttl", "x-wns-suppresspopup")
	if err != nil {
		return r, err
	}
	if len(payload) > WNSMaxPayload {
		return r, errTooLarge("wns", len(payload), WNSMaxPayload)
	}
	if len(payload) == 0 {
		return r, errors.New("wns: the payload is empty")
	}
	r.typ = strings.ToLower(hs["x-wns-type"])
	root := ""
	if r.typ != "wns/raw" {
		if root, err = xmlRoot(payload); err != nil && r.typ != "" {
			return r, fmt.Errorf("wns: a %s payload must be XML: %w", r.typ, err)
		}
	}
	if r.typ == "" {
		if err != nil || wnsContentTypes["wns/"+root] == "" || root == "raw" {
			return r, errors.New("wns: X-WNS-Type is missing and the payload is not a <toast>, <tile> or <badge> document")
		}
		r.typ = "wns/" + root
	}
	if _, ok := wnsContentTypes[r.typ]; !ok {
		return r, fmt.Errorf("wns: X-WNS-Type must be wns/toast, wns/tile, wns/badge or wns/raw, not %q", r.typ)
	}
	if r.typ != "wns/raw" && "wns/"+root != r.typ {
		return r, fmt.Errorf("wns: a %s payload's root element must be <%s>, not <%s>", r.typ, strings.TrimPrefix(r.typ, "wns/"), root)
	}
	for name, allowed := range map[string][]string{"x-wns-cache-policy": {"cache", "no-cache"}, "x-wns-requestforstatus": {"true", "false"}, "x-wns-suppresspopup": {"true", "false"}} {
		if v, ok := hs[name]; ok && !contains(allowed, strings.ToLower(v)) {
			return r, fmt.Errorf("wns: %s must be %s", name, strings.Join(allowed, " or "))
		}
	}
	for _, name := range []string{"x-wns-tag", "x-wns-group"} {
		if v, ok := hs[name]; ok && (v == "" || len(v) > 16) {
			return r, fmt.Errorf("wns: %s must be 1 to 16 characters", name)
		}
	}
	if v, ok := hs["x-wns-ttl"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
			return r, errors.New("wns: X-WNS-TTL must be whole seconds")
		}
	}
	r.headers = hs
	return r, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// xmlRoot checks that data is one well-formed XML document and returns its root element's name.
func xmlRoot(data []byte) (string, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	root, depth := "", 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if root != "" {
					return "", errors.New("more than one root element")
				}
				root = t.Name.Local
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.Directive:
			return "", errors.New("DOCTYPE and other directives are not allowed")
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return "", errors.New("text outside the root element")
			}
		}
	}
	if root == "" {
		return "", errors.New("no root element")
	}
	return root, nil
}

// Send delivers d. A 401 (expired or revoked token) fetches a new token and tries once more.
func (w *WNS) Send(ctx context.Context, d push.Delivery) error {
	if err := w.ValidateChannel(d.Channel); err != nil {
		return &push.DeliveryError{Platform: push.WNS, Reason: "InvalidChannel", Err: err}
	}
	r, err := wnsPrepare(d.Payload, d.Headers)
	if err != nil {
		return &push.DeliveryError{Platform: push.WNS, Reason: "InvalidPayload", Err: err}
	}
	if _, ok := r.headers["x-wns-ttl"]; !ok && !d.Expiry.IsZero() {
		// At least a second: an expired notification is worth one immediate attempt, not a stored one.
		r.headers["x-wns-ttl"] = strconv.FormatInt(max(int64(math.Ceil(d.Expiry.Sub(w.o.now()).Seconds())), 1), 10)
	}
	for attempt := 0; ; attempt++ {
		w.mu.Lock()
		ts := w.ts
		w.mu.Unlock()
		tok, err := ts.Token()
		if err != nil {
			return &push.DeliveryError{Platform: push.WNS, Retryable: true, Reason: "token", Err: fmt.Errorf("access token: %w", redactTokenError(err))}
		}
		resp, err := post(ctx, w.http, d.Channel, d.Payload, func(h http.Header) {
			h.Set("Authorization", "Bearer "+tok.AccessToken)
			h.Set("Content-Type", wnsContentTypes[r.typ])
			h.Set("X-WNS-Type", r.typ)
			for k, v := range r.headers {
				if k != "x-wns-type" {
					h.Set(k, v)
				}
			}
		})
		if err != nil {
			return transportError(push.WNS, err)
		}
		if resp.StatusCode == http.StatusOK {
			drain(resp.Body)
			return nil
		}
		drain(resp.Body)
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			w.mu.Lock()
			if cur, err := w.ts.Token(); err == nil && cur.AccessToken == tok.AccessToken {
				w.ts = w.newTokenSource()
			}
			w.mu.Unlock()
			continue
		}
		return w.classify(resp)
	}
}

func (w *WNS) classify(resp *http.Response) *push.DeliveryError {
	reason := resp.Header.Get("X-WNS-Error-Description")
	if reason == "" {
		reason = resp.Header.Get("X-WNS-Status")
	}
	if reason == "" {
		reason = http.StatusText(resp.StatusCode)
	}
	if len(reason) > 200 {
		reason = reason[:200]
	}
	de := &push.DeliveryError{Platform: push.WNS, Status: resp.StatusCode, Reason: reason,
		RetryAfter: retryAfter(resp.Header, w.o.now()), Retryable: statusRetryable(resp.StatusCode)}
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone: // channel not valid / expired
		de.Unregistered = true
	case http.StatusNotAcceptable: // throttled
		de.Retryable = true
	case http.StatusUnauthorized:
		de.Retryable = true // credentials: kept for when the operator has fixed them
	}
	return de
}
