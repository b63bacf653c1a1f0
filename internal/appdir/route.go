package appdir

import (
	"errors"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// Custom API routes: one canonical form of a request path and one matcher, used both to dispatch a
// request to the handler a script registered and to find the permission of that handler, so that the
// two cannot disagree.
//
// The original (Express 3 under the Mobile Services runtime) matched the raw path against each
// registered route case-insensitively, then looked the permission up by the text of the *route that
// matched* (not the request's path). Gatehouse keeps that model and makes it fail closed:
//
//   - A request path is split on "/" before percent-decoding, each segment decoded once. Empty
//     segments ("a//b"), dot segments ("." and "..", also as %2e) and NUL are refused; one trailing
//     slash is ignored (Express's non-strict routing).
//   - Literal segments compare case-insensitively with JavaScript's /i rule (simple case folding, but
//     a non-ASCII character never folds onto an ASCII one: "ſ" is not "s", "K" (Kelvin) is not "k").
//   - The permission is that of the rule whose route is the matched route's (parameters compare by
//     position, not name), combined with every rule whose route is a segment prefix of the matched
//     route ("secret" covers "secret/:id"): the most restrictive wins. Only when no rule names the
//     route itself does "*" join in. A rule that does not name the method counts as admin.

// ErrBadPath is a request path that no route can match (empty or dot segments, bad escapes).
var ErrBadPath = errors.New("the request path is not valid")

// SplitPath turns an escaped path (as sent, e.g. r.URL.EscapedPath() without the /api/<name>
// prefix) into decoded segments. "" and "/" are the root (no segments).
func SplitPath(escaped string) ([]string, error) {
	p := strings.TrimPrefix(escaped, "/")
	if p == "" {
		return nil, nil
	}
	if p = strings.TrimSuffix(p, "/"); p == "" {
		return nil, ErrBadPath // "//"
	}
	raw := strings.Split(p, "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		if s == "" {
			return nil, ErrBadPath
		}
		d, err := url.PathUnescape(s)
		if err != nil || d == "." || d == ".." || strings.ContainsRune(d, 0) || !utf8.ValidString(d) {
			return nil, ErrBadPath
		}
		out[i] = d
	}
	return out, nil
}

// segKind is what a pattern segment matches.
type segKind uint8

const (
	segLiteral segKind = iota
	segParam           // :name or :name? (one segment)
	segStar            // * (the rest of the path, possibly nothing)
)

type patSeg struct {
	kind     segKind
	text     string // literal text, or the parameter's name
	optional bool
}

// Pattern is a route as a script registers it (api.get('/items/:id', …)) or as a metadata file names
// it ("items/:id").
type Pattern struct {
	segs []patSeg
	Text string // as written
}

// ParsePattern reads an Express-style route: literal segments, :name, :name? and a *.
func ParsePattern(s string) Pattern {
	p := Pattern{Text: s}
	for _, part := range strings.Split(s, "/") {
		switch {
		case part == "":
		case part == "*":
			p.segs = append(p.segs, patSeg{kind: segStar})
		case len(part) > 1 && part[0] == ':':
			name, opt := strings.CutSuffix(part[1:], "?")
			p.segs = append(p.segs, patSeg{kind: segParam, text: name, optional: opt})
		default:
			p.segs = append(p.segs, patSeg{kind: segLiteral, text: part})
		}
	}
	return p
}

// Len is the number of segments.
func (p Pattern) Len() int { return len(p.segs) }

// Match matches decoded path segments; params holds the parameters (and "0" for *).
func (p Pattern) Match(segs []string) (params map[string]string, ok bool) {
	params = map[string]string{}
	for i, ps := range p.segs {
		switch ps.kind {
		case segStar:
			params["0"] = strings.Join(segs[min(i, len(segs)):], "/")
			return params, true
		case segParam:
			if i >= len(segs) {
				if ps.optional {
					continue
				}
				return nil, false
			}
			params[ps.text] = segs[i]
		default:
			if i >= len(segs) || !FoldEqual(ps.text, segs[i]) {
				return nil, false
			}
		}
	}
	return params, len(segs) <= len(p.segs)
}

// Literal is the pattern that matches exactly these (decoded) segments.
func Literal(segs []string) Pattern {
	p := Pattern{Text: strings.Join(segs, "/")}
	for _, s := range segs {
		p.segs = append(p.segs, patSeg{kind: segLiteral, text: s})
	}
	return p
}

// samePrefix reports whether the first n segments of p and q name the same routes: literals equal
// under FoldEqual, parameters equal whatever their names, * equal to *.
func samePrefix(p, q Pattern, n int) bool {
	if n > len(p.segs) || n > len(q.segs) {
		return false
	}
	for i := 0; i < n; i++ {
		a, b := p.segs[i], q.segs[i]
		if a.kind != b.kind || (a.kind == segLiteral && !FoldEqual(a.text, b.text)) {
			return false
		}
	}
	return true
}

// FoldEqual compares two strings as a JavaScript regular expression with the i flag (and without
// the u flag) compares characters: each UTF-16 code unit upper-cased, except that a non-ASCII
// character whose upper case is ASCII keeps its own value. It is deliberately narrower than
// strings.EqualFold, which folds "ſ" onto "s" and the Kelvin sign onto "k".
func FoldEqual(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra == utf8.RuneError && na <= 1 || rb == utf8.RuneError && nb <= 1 {
			return false
		}
		if jsUpper(ra) != jsUpper(rb) {
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return a == b
}

func jsUpper(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	u := unicode.ToUpper(r)
	if u < utf8.RuneSelf {
		return r
	}
	return u
}

// routeRule is one entry of a metadata file's "routes".
type routeRule struct {
	pattern Pattern
	methods map[string]auth.Permission // lower-case method or "*"
}

func (r routeRule) permission(method string) auth.Permission {
	if p, ok := r.methods[method]; ok {
		return p
	}
	if p, ok := r.methods["*"]; ok {
		return p
	}
	return auth.Admin
}

// RoutePermission is the permission of method on route (the route a request matched, or, when no
// route matched, Literal of the request's segments) under the rules above. Nothing declared ⇒ Admin.
func (a *API) RoutePermission(route Pattern, method string) auth.Permission {
	if a == nil {
		return auth.Admin
	}
	method = strings.ToLower(method)
	exact := false
	perm := auth.Public
	for _, r := range a.rules {
		n := r.pattern.Len()
		switch {
		case n == route.Len() && samePrefix(r.pattern, route, n):
			exact = true
		case n > 0 && n < route.Len() && samePrefix(r.pattern, route, n):
			// a rule on a parent route covers this one
		default:
			continue
		}
		perm = min(perm, r.permission(method)) // Admin is the smallest: min is "most restrictive"
	}
	if !exact {
		if len(a.star) == 0 {
			return auth.Admin
		}
		for _, r := range a.star {
			perm = min(perm, r.permission(method))
		}
	}
	return perm
}

// Loosest is the least restrictive permission any rule of the API grants (a caller it does not
// allow is refused before anything runs).
func (a *API) Loosest() auth.Permission {
	if a == nil {
		return auth.Admin
	}
	loosest := auth.Admin
	for _, r := range append(a.rules[:len(a.rules):len(a.rules)], a.star...) {
		for _, p := range r.methods {
			loosest = max(loosest, p)
		}
	}
	return loosest
}
