package account

import (
	"net/url"
	"strings"
)

// Links builds the emailed URLs. A template (accounts.reset_url / accounts.verify_url) holds {token},
// replaced by the query-escaped token; without one the link points at Gatehouse's own pages under
// publicURL (the configured public_url, never the request's Host header: a forged Host would
// otherwise send reset links to an attacker). Without a public URL the links are relative to
// http://localhost:8080, which only suits development.
func Links(resetTmpl, verifyTmpl, publicURL string) (reset, verify func(token string) string) {
	base := strings.TrimSuffix(publicURL, "/")
	if base == "" {
		base = "http://localhost:8080"
	}
	mk := func(tmpl, path string) func(string) string {
		if tmpl != "" {
			return func(tok string) string { return strings.Replace(tmpl, "{token}", url.QueryEscape(tok), 1) }
		}
		return func(tok string) string { return base + path + "?token=" + url.QueryEscape(tok) }
	}
	return mk(resetTmpl, V1Prefix+"/reset/confirm"), mk(verifyTmpl, V1Prefix+"/verify")
}
