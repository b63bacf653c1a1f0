package user

import (
	"net/url"
	"strings"
)

// CanonicalIssuer is the one spelling under which identities of an issuer are stored (issue 10
// finding 8: Google's "accounts.google.com" and "https://accounts.google.com" made two identities,
// so two users, for one sub). Both are accepted by ID-token validation, which compares iss exactly
// with the configured forms; identities are keyed by this canonical form:
//
//   - http(s) URLs: scheme and host in lower case, the default port dropped, trailing slashes of the
//     path removed ("https://idp.example/" and "https://IDP.example" are "https://idp.example");
//   - a bare host name with an optional path (Google's legacy form) is that host over https;
//   - anything else (URNs such as "urn:gatehouse:accounts") is kept as it is.
//
// Case in the path is kept: issuers are case-sensitive there (Entra tenant paths are lower case).
func CanonicalIssuer(iss string) string {
	if !strings.Contains(iss, "://") {
		if !bareHost(iss) {
			return iss
		}
		iss = "https://" + iss
	}
	u, err := url.Parse(iss)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http" && !strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http")) || u.Host == "" || u.User != nil {
		return iss
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	if (scheme == "https" && strings.HasSuffix(host, ":443")) || (scheme == "http" && strings.HasSuffix(host, ":80")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	out := scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

// bareHost reports whether s is a DNS name (with a dot), optionally followed by a path.
func bareHost(s string) bool {
	host, _, _ := strings.Cut(s, "/")
	if host == "" || !strings.Contains(host, ".") || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") {
		return false
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// issuerAliases are the spellings identities of a canonical issuer may have been stored under before
// issuers were canonicalised (and raw, the spelling this login used). Login moves such a row to the
// canonical issuer the first time its identity signs in again.
func issuerAliases(canonical, raw string) []string {
	var out []string
	add := func(s string) {
		if s != canonical && s != "" {
			for _, o := range out {
				if o == s {
					return
				}
			}
			out = append(out, s)
		}
	}
	add(raw)
	if rest, ok := strings.CutPrefix(canonical, "https://"); ok {
		add(canonical + "/")
		add(rest)
		add(rest + "/")
	} else if strings.HasPrefix(canonical, "http://") {
		add(canonical + "/")
	}
	return out
}
