package push

import (
	"fmt"
	"strings"
)

// Notification Hubs' limits, which Gatehouse keeps so that apps written against them behave alike.
const (
	// MaxTagLength is the longest tag.
	MaxTagLength = 120
	// MaxExprTagsOr is how many tags an expression made only of || may name.
	MaxExprTagsOr = 20
	// MaxExprTags is how many tags an expression using && or ! may name.
	MaxExprTags = 6
	// MaxExprLength bounds the text of a tag expression (tags, operators and spaces).
	MaxExprLength = 4096
)

// UserTagPrefix starts the tag the server gives every registration of an authenticated caller.
const UserTagPrefix = "_UserId:"

// ValidTag reports whether s is a Notification Hubs tag: 1 to 120 characters among letters, digits
// and _ @ # . : - (the user tag _UserId:<id> also follows this rule: ids with other characters are
// not representable as tags, see UserTag).
func ValidTag(s string) error {
	if s == "" {
		return fmt.Errorf("a tag is empty")
	}
	if len(s) > MaxTagLength {
		return fmt.Errorf("the tag %q is longer than %d characters", truncate(s, 40), MaxTagLength)
	}
	for i := 0; i < len(s); i++ {
		if !tagByte(s[i]) {
			return fmt.Errorf("the tag %q contains %q: tags are letters, digits and _ @ # . : -", truncate(s, 40), rune(s[i]))
		}
	}
	return nil
}

func tagByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '_', '@', '#', '.', ':', '-':
		return true
	}
	return false
}

// UserTag is the tag of a user's registrations: _UserId:<id>, with every character a tag cannot hold
// written as #XX, and # itself too (so that every id maps to one tag and no two ids to the same one).
func UserTag(userID string) string {
	var b strings.Builder
	b.WriteString(UserTagPrefix)
	for i := 0; i < len(userID); i++ {
		c := userID[i]
		if tagByte(c) && c != '#' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "#%02X", c)
		}
	}
	return b.String()
}

// Expr is a parsed tag expression. A nil *Expr matches every registration: a send without tags is a
// broadcast.
type Expr struct {
	root node
	tags []string // distinct tags named, in order of appearance
	text string
}

type nodeKind int

const (
	nTag nodeKind = iota
	nNot
	nAnd
	nOr
)

type node struct {
	kind nodeKind
	tag  string
	kids []node
}

// ExprError is a malformed tag expression; Pos is the 1-based character position of the problem.
type ExprError struct {
	Expr string
	Pos  int
	Msg  string
}

func (e *ExprError) Error() string {
	return fmt.Sprintf("invalid tag expression %q: %s at position %d", truncate(e.Expr, 200), e.Msg, e.Pos)
}

// ParseExpr parses a Notification Hubs tag expression: tags joined by && and ||, negated by !,
// grouped by parentheses (! binds tightest, then &&, then ||). An empty expression is an error;
// a nil *Expr reaches everyone.
func ParseExpr(s string) (*Expr, error) {
	if len(s) > MaxExprLength {
		return nil, &ExprError{Expr: s, Pos: MaxExprLength + 1, Msg: fmt.Sprintf("longer than %d characters", MaxExprLength)}
	}
	p := &exprParser{src: s}
	p.next()
	if p.tok.kind == tEOF {
		return nil, &ExprError{Expr: s, Pos: 1, Msg: "empty expression"}
	}
	root, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind == tBad {
		return nil, p.badToken()
	}
	if p.tok.kind != tEOF {
		return nil, p.errorf("unexpected %s", p.tok.describe())
	}
	e := &Expr{root: root, text: s}
	seen := map[string]bool{}
	onlyOr := true
	count := 0
	var walk func(n node)
	walk = func(n node) {
		switch n.kind {
		case nTag:
			count++
			if !seen[n.tag] {
				seen[n.tag] = true
				e.tags = append(e.tags, n.tag)
			}
		case nNot, nAnd:
			onlyOr = false
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(root)
	if onlyOr && count > MaxExprTagsOr {
		return nil, &ExprError{Expr: s, Pos: 1, Msg: fmt.Sprintf("%d tags: an expression of || alone may name at most %d", count, MaxExprTagsOr)}
	}
	if !onlyOr && count > MaxExprTags {
		return nil, &ExprError{Expr: s, Pos: 1, Msg: fmt.Sprintf("%d tags: an expression using && or ! may name at most %d", count, MaxExprTags)}
	}
	return e, nil
}

// AnyTag is the expression of a send to a list of tags: a registration with any of them.
func AnyTag(tags []string) (*Expr, error) {
	if len(tags) == 0 {
		return nil, fmt.Errorf("push: an empty list of tags")
	}
	if len(tags) > MaxExprTagsOr {
		return nil, fmt.Errorf("push: %d tags: a send may name at most %d", len(tags), MaxExprTagsOr)
	}
	e := &Expr{root: node{kind: nOr}}
	seen := map[string]bool{}
	for _, t := range tags {
		if err := ValidTag(t); err != nil {
			return nil, fmt.Errorf("push: %w", err)
		}
		e.root.kids = append(e.root.kids, node{kind: nTag, tag: t})
		if !seen[t] {
			seen[t] = true
			e.tags = append(e.tags, t)
		}
	}
	e.text = strings.Join(tags, " || ")
	return e, nil
}

// Broadcast reports whether the expression matches every registration (no tags given).
func (e *Expr) Broadcast() bool { return e == nil }

// Tags returns the distinct tags the expression names.
func (e *Expr) Tags() []string {
	if e == nil {
		return nil
	}
	return append([]string(nil), e.tags...)
}

// String is the expression's text.
func (e *Expr) String() string {
	if e == nil {
		return ""
	}
	return e.text
}

// NeedsAll reports whether a registration with none of the named tags can match (an expression such
// as "!a" or "!a || b"): candidates cannot then be found by tag alone.
func (e *Expr) NeedsAll() bool {
	if e.Broadcast() {
		return true
	}
	return e.root.eval(func(string) bool { return false })
}

// Match evaluates the expression against a registration's tags.
func (e *Expr) Match(has func(tag string) bool) bool {
	if e.Broadcast() {
		return true
	}
	return e.root.eval(has)
}

// MatchTags evaluates the expression against a list of tags.
func (e *Expr) MatchTags(tags []string) bool {
	return e.Match(func(t string) bool {
		for _, x := range tags {
			if x == t {
				return true
			}
		}
		return false
	})
}

func (n node) eval(has func(string) bool) bool {
	switch n.kind {
	case nTag:
		return has(n.tag)
	case nNot:
		return !n.kids[0].eval(has)
	case nAnd:
		for _, k := range n.kids {
			if !k.eval(has) {
				return false
			}
		}
		return true
	default:
		for _, k := range n.kids {
			if k.eval(has) {
				return true
			}
		}
		return false
	}
}

type tokKind int

const (
	tEOF tokKind = iota
	tTag
	tAnd
	tOr
	tNot
	tLParen
	tRParen
	tBad
)

type token struct {
	kind tokKind
	text string
	pos  int // 1-based
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tTag:
		return fmt.Sprintf("tag %q", truncate(t.text, 40))
	default:
		return fmt.Sprintf("%q", t.text)
	}
}

type exprParser struct {
	src string
	off int
	tok token
}

// maxDepth bounds parentheses and negations nested in one another.
const maxDepth = 32

func (p *exprParser) errorf(format string, args ...any) error {
	return &ExprError{Expr: p.src, Pos: p.tok.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *exprParser) next() {
	for p.off < len(p.src) && (p.src[p.off] == ' ' || p.src[p.off] == '\t') {
		p.off++
	}
	start := p.off
	pos := start + 1
	if p.off >= len(p.src) {
		p.tok = token{kind: tEOF, pos: pos}
		return
	}
	c := p.src[p.off]
	two := ""
	if p.off+1 < len(p.src) {
		two = p.src[p.off : p.off+2]
	}
	switch {
	case two == "&&":
		p.off += 2
		p.tok = token{kind: tAnd, text: "&&", pos: pos}
	case two == "||":
		p.off += 2
		p.tok = token{kind: tOr, text: "||", pos: pos}
	case c == '!':
		p.off++
		p.tok = token{kind: tNot, text: "!", pos: pos}
	case c == '(':
		p.off++
		p.tok = token{kind: tLParen, text: "(", pos: pos}
	case c == ')':
		p.off++
		p.tok = token{kind: tRParen, text: ")", pos: pos}
	case tagByte(c):
		for p.off < len(p.src) && tagByte(p.src[p.off]) {
			p.off++
		}
		p.tok = token{kind: tTag, text: p.src[start:p.off], pos: pos}
	default:
		r := []rune(p.src[p.off:])[0]
		p.off += len(string(r))
		p.tok = token{kind: tBad, text: string(r), pos: pos}
	}
}

func (p *exprParser) badToken() error {
	if p.tok.text == "&" || p.tok.text == "|" {
		return p.errorf("single %q (use %s%s)", p.tok.text, p.tok.text, p.tok.text)
	}
	return p.errorf("character %q is not allowed in a tag", p.tok.text)
}

func (p *exprParser) or(depth int) (node, error) {
	first, err := p.and(depth)
	if err != nil {
		return node{}, err
	}
	if p.tok.kind != tOr {
		return first, nil
	}
	n := node{kind: nOr, kids: []node{first}}
	for p.tok.kind == tOr {
		p.next()
		k, err := p.and(depth)
		if err != nil {
			return node{}, err
		}
		n.kids = append(n.kids, k)
	}
	return n, nil
}

func (p *exprParser) and(depth int) (node, error) {
	first, err := p.unary(depth)
	if err != nil {
		return node{}, err
	}
	if p.tok.kind != tAnd {
		return first, nil
	}
	n := node{kind: nAnd, kids: []node{first}}
	for p.tok.kind == tAnd {
		p.next()
		k, err := p.unary(depth)
		if err != nil {
			return node{}, err
		}
		n.kids = append(n.kids, k)
	}
	return n, nil
}

func (p *exprParser) unary(depth int) (node, error) {
	if depth > maxDepth {
		return node{}, p.errorf("nested deeper than %d", maxDepth)
	}
	switch p.tok.kind {
	case tNot:
		p.next()
		k, err := p.unary(depth + 1)
		if err != nil {
			return node{}, err
		}
		return node{kind: nNot, kids: []node{k}}, nil
	case tLParen:
		open := p.tok
		p.next()
		if p.tok.kind == tRParen {
			return node{}, p.errorf("empty parentheses")
		}
		n, err := p.or(depth + 1)
		if err != nil {
			return node{}, err
		}
		if p.tok.kind != tRParen {
			if p.tok.kind == tEOF {
				return node{}, &ExprError{Expr: p.src, Pos: open.pos, Msg: "unclosed parenthesis"}
			}
			return node{}, p.errorf("expected ) but found %s", p.tok.describe())
		}
		p.next()
		return n, nil
	case tTag:
		t := p.tok
		if len(t.text) > MaxTagLength {
			return node{}, p.errorf("a tag longer than %d characters", MaxTagLength)
		}
		p.next()
		if p.tok.kind == tTag || p.tok.kind == tLParen || p.tok.kind == tNot {
			return node{}, p.errorf("expected && or || but found %s", p.tok.describe())
		}
		return node{kind: nTag, tag: t.text}, nil
	case tBad:
		return node{}, p.badToken()
	case tEOF:
		return node{}, p.errorf("expression ends where a tag was expected")
	default:
		return node{}, p.errorf("expected a tag but found %s", p.tok.describe())
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
