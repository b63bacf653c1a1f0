package odata

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Parser bounds. The caller is expected to cap the URL length as well.
const (
	// MaxFilterLength is the maximum length in bytes of $filter and $orderby.
	MaxFilterLength = 64 << 10
	// MaxDepth is the maximum nesting depth of an expression tree. Chains of
	// `and` / `or` are flat and count as one level.
	MaxDepth = 100
	// maxIdentLength is the longest member name (v1: 128 characters).
	maxIdentLength = 128
)

// ParseFilter parses a $filter expression. Empty or blank text yields a nil
// Expr and no error.
func ParseFilter(s string) (Expr, error) {
	p, err := newParser("$filter", s)
	if err != nil || p == nil {
		return nil, err
	}
	var e Expr
	err = p.run(func() {
		e, _ = p.parseOr()
		p.expectEOF()
	})
	return e, err
}

// OrderKey is one $orderby key.
type OrderKey struct {
	Expr Expr
	Desc bool
}

// ParseOrderBy parses a $orderby list: expressions separated by commas, each
// optionally followed by asc or desc. Blank text yields no keys.
func ParseOrderBy(s string) ([]OrderKey, error) {
	p, err := newParser("$orderby", s)
	if err != nil || p == nil {
		return nil, err
	}
	var keys []OrderKey
	err = p.run(func() {
		for {
			e, _ := p.parseOr()
			k := OrderKey{Expr: e}
			if p.tok.kind == tIdent {
				switch strings.ToLower(p.tok.text) {
				case "asc":
					p.next()
				case "desc":
					k.Desc = true
					p.next()
				}
			}
			keys = append(keys, k)
			if p.tok.kind != tComma {
				break
			}
			p.next()
		}
		p.expectEOF()
	})
	return keys, err
}

// ParseSelect parses a $select list of member names; "*" selects all
// columns and is returned as is. Blank text yields nil.
func ParseSelect(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if len(s) > MaxFilterLength {
		return nil, &LimitError{Option: "$select", Max: MaxFilterLength,
			Msg: fmt.Sprintf("$select is too long (maximum %d bytes)", MaxFilterLength)}
	}
	if !utf8.ValidString(s) {
		return nil, &SyntaxError{Option: "$select", Pos: invalidUTF8Pos(s), Msg: "invalid UTF-8"}
	}
	var names []string
	off := 0
	for _, part := range strings.Split(s, ",") {
		name := strings.TrimSpace(part)
		pos := off + strings.Index(part, name)
		off += len(part) + 1
		if name == "*" {
			names = append(names, name)
			continue
		}
		if msg := checkIdent(name); msg != "" {
			return nil, &SyntaxError{Option: "$select", Pos: utf8.RuneCountInString(s[:pos]), Msg: msg}
		}
		names = append(names, name)
	}
	return names, nil
}

func checkIdent(name string) string {
	if name == "" {
		return "expected a column name"
	}
	for i, r := range name {
		if !isIdentRune(r, i == 0) {
			if r == '/' {
				return "member access ('/') is not supported"
			}
			return fmt.Sprintf("invalid character %q in column name", r)
		}
	}
	if utf8.RuneCountInString(name) > maxIdentLength {
		return fmt.Sprintf("column name longer than %d characters", maxIdentLength)
	}
	return ""
}

func isIdentRune(r rune, first bool) bool {
	if r == '_' || unicode.IsLetter(r) {
		return true
	}
	return !first && unicode.IsDigit(r)
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tTyped // datetime'…', datetimeoffset'…', guid'…'
	tLParen
	tRParen
	tComma
	tMinus
)

type token struct {
	kind tokKind
	pos  int    // byte offset
	at   int    // 1 + rune index
	text string // identifier text
	lit  *Literal
}

type parser struct {
	option string
	src    string
	off    int // byte offset of the next unread character
	tok    token
	rec    int
	// rune index cache for positions: tokens are read left to right, so
	// counting runes incrementally keeps position tracking linear.
	cacheByte, cacheRune int
}

type bailout struct{ err error }

func newParser(option, s string) (*parser, error) {
	if len(s) > MaxFilterLength {
		return nil, &LimitError{Option: option, Max: MaxFilterLength,
			Msg: fmt.Sprintf("%s is too long (maximum %d bytes)", option, MaxFilterLength)}
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if !utf8.ValidString(s) {
		return nil, &SyntaxError{Option: option, Pos: invalidUTF8Pos(s), Msg: "invalid UTF-8"}
	}
	return &parser{option: option, src: s}, nil
}

func invalidUTF8Pos(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return n
		}
		i += size
		n++
	}
	return n
}

// run executes f, converting the parser's internal bail-outs into errors.
func (p *parser) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			err = b.err
		}
	}()
	p.next()
	f()
	return nil
}

func (p *parser) fail(byteOff int, format string, args ...any) {
	panic(bailout{&SyntaxError{Option: p.option, Pos: utf8.RuneCountInString(p.src[:byteOff]), Msg: fmt.Sprintf(format, args...)}})
}

// at returns 1 + the rune index of byteOff. Offsets are normally
// increasing; a smaller one is counted from the start.
func (p *parser) at(byteOff int) int {
	if byteOff < p.cacheByte {
		p.cacheByte, p.cacheRune = 0, 0
	}
	p.cacheRune += utf8.RuneCountInString(p.src[p.cacheByte:byteOff])
	p.cacheByte = byteOff
	return p.cacheRune + 1
}

func (p *parser) expectEOF() {
	if p.tok.kind != tEOF {
		p.fail(p.tok.pos, "unexpected %s", p.describe())
	}
}

func (p *parser) describe() string {
	switch p.tok.kind {
	case tEOF:
		return "end of input"
	case tIdent:
		return fmt.Sprintf("'%s'", p.tok.text)
	case tLParen:
		return "'('"
	case tRParen:
		return "')'"
	case tComma:
		return "','"
	case tMinus:
		return "'-'"
	default:
		return "literal"
	}
}

// next reads the following token into p.tok.
func (p *parser) next() {
	s := p.src
	for p.off < len(s) && (s[p.off] == ' ' || s[p.off] == '\t' || s[p.off] == '\n' || s[p.off] == '\r') {
		p.off++
	}
	start := p.off
	at := p.at(start)
	if start >= len(s) {
		p.tok = token{kind: tEOF, pos: start, at: at}
		return
	}
	c := s[start]
	switch {
	case c == '(':
		p.off++
		p.tok = token{kind: tLParen, pos: start, at: at}
	case c == ')':
		p.off++
		p.tok = token{kind: tRParen, pos: start, at: at}
	case c == ',':
		p.off++
		p.tok = token{kind: tComma, pos: start, at: at}
	case c == '-':
		p.off++
		p.tok = token{kind: tMinus, pos: start, at: at}
	case c == '/':
		p.fail(start, "member access ('/') is not supported")
	case c == '\'':
		str := p.quoted()
		p.tok = token{kind: tString, pos: start, at: at, lit: &Literal{Kind: StringLit, Str: str, at: at}}
	case c >= '0' && c <= '9':
		p.number(at)
	default:
		r, size := utf8.DecodeRuneInString(s[start:])
		if !isIdentRune(r, true) {
			p.fail(start, "unexpected character %q", r)
		}
		p.off += size
		for p.off < len(s) {
			r, size := utf8.DecodeRuneInString(s[p.off:])
			if !isIdentRune(r, false) {
				break
			}
			p.off += size
		}
		name := s[start:p.off]
		if p.off < len(s) {
			switch s[p.off] {
			case '-':
				p.fail(p.off, "'-' is not allowed in identifiers")
			case '\'':
				if _, ok := literalPrefixes[strings.ToLower(name)]; ok {
					p.typed(start, at, name)
					return
				}
			}
		}
		if utf8.RuneCountInString(name) > maxIdentLength {
			p.fail(start, "identifier longer than %d characters", maxIdentLength)
		}
		p.tok = token{kind: tIdent, pos: start, at: at, text: name}
	}
}

// quoted reads a '…' literal starting at p.off; quotes are escaped by
// doubling them.
func (p *parser) quoted() string {
	s := p.src
	start := p.off
	p.off++
	var b strings.Builder
	for {
		i := strings.IndexByte(s[p.off:], '\'')
		if i < 0 {
			p.fail(start, "unterminated string literal")
		}
		b.WriteString(s[p.off : p.off+i])
		p.off += i + 1
		if p.off < len(s) && s[p.off] == '\'' {
			b.WriteByte('\'')
			p.off++
			continue
		}
		break
	}
	str := b.String()
	if i := strings.IndexByte(str, 0); i >= 0 {
		p.fail(start, "NUL character in string literal")
	}
	return str
}

// literalPrefixes are the typed-literal prefixes recognised before a quote;
// the false ones are OData types this server does not support.
var literalPrefixes = map[string]bool{
	"datetime": true, "datetimeoffset": true, "guid": true,
	"time": false, "binary": false, "x": false, "duration": false, "geography": false, "geometry": false,
}

var guidRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

func (p *parser) typed(start, at int, prefix string) {
	kind := strings.ToLower(prefix)
	body := p.quoted()
	lit := &Literal{at: at}
	switch kind {
	case "datetime", "datetimeoffset":
		t, ok := ParseTime(body)
		if !ok {
			p.fail(start, "invalid %s literal '%s'", kind, body)
		}
		lit.Kind, lit.Time = TimeLit, t
	case "guid":
		if !guidRE.MatchString(body) {
			p.fail(start, "invalid guid literal '%s'", body)
		}
		lit.Kind, lit.Str = GuidLit, body
	default:
		p.fail(start, "unsupported literal type '%s'", prefix)
	}
	p.tok = token{kind: tTyped, pos: start, at: at, lit: lit}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number reads an Edm numeric literal: digits, optional fraction and
// exponent, optional type suffix L (int64), M (decimal), D (double) or
// F (single), any case. Every numeric literal becomes a float64.
func (p *parser) number(at int) {
	s := p.src
	start := p.off
	for p.off < len(s) && isDigit(s[p.off]) {
		p.off++
	}
	integer := true
	if p.off < len(s) && s[p.off] == '.' {
		p.off++
		if p.off >= len(s) || !isDigit(s[p.off]) {
			p.fail(start, "invalid number")
		}
		for p.off < len(s) && isDigit(s[p.off]) {
			p.off++
		}
		integer = false
	}
	if p.off < len(s) && (s[p.off] == 'e' || s[p.off] == 'E') {
		p.off++
		if p.off < len(s) && (s[p.off] == '+' || s[p.off] == '-') {
			p.off++
		}
		if p.off >= len(s) || !isDigit(s[p.off]) {
			p.fail(start, "invalid number")
		}
		for p.off < len(s) && isDigit(s[p.off]) {
			p.off++
		}
		integer = false
	}
	text := s[start:p.off]
	if p.off < len(s) {
		switch s[p.off] {
		case 'L', 'l':
			if !integer {
				p.fail(start, "invalid number: suffix L requires an integer")
			}
			p.off++
		case 'M', 'm', 'D', 'd', 'F', 'f':
			p.off++
		}
	}
	if p.off < len(s) {
		if r, _ := utf8.DecodeRuneInString(s[p.off:]); isIdentRune(r, false) || r == '.' || r == '\'' {
			p.fail(start, "invalid number")
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		p.fail(start, "number out of range")
	}
	p.tok = token{kind: tNumber, pos: start, at: at, lit: &Literal{Kind: NumberLit, Num: f, at: at}}
}

// ParseTime parses the date/time forms accepted in datetime'…' and
// datetimeoffset'…' literals and in strings compared with Date columns:
// YYYY-MM-DD, optionally followed by THH:MM, :SS and a fraction, optionally
// followed by Z or ±HH:MM. A missing zone means UTC. The result is in UTC.
func ParseTime(s string) (time.Time, bool) {
	if len(s) < 10 || len(s) > 40 {
		return time.Time{}, false
	}
	var layouts []string
	switch {
	case len(s) == 10:
		layouts = []string{"2006-01-02"}
	case strings.HasSuffix(s, "Z") || strings.LastIndexAny(s, "+-") > 10:
		layouts = []string{"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04Z07:00"}
	default:
		layouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04"}
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			t = t.UTC()
			if t.Year() < 1 || t.Year() > 9999 {
				return time.Time{}, false
			}
			return t, true
		}
	}
	return time.Time{}, false
}

func (p *parser) enter(pos int) {
	p.rec++
	if p.rec > MaxDepth {
		p.fail(pos, "expression is nested too deeply (maximum depth %d)", MaxDepth)
	}
}

func (p *parser) checkDepth(pos, depth int) {
	if depth > MaxDepth {
		p.fail(pos, "expression is nested too deeply (maximum depth %d)", MaxDepth)
	}
}

// keyword reports whether the current token is the operator keyword kw.
// Operators appear only after an operand, so matching them in any case
// cannot shadow a column name.
func (p *parser) keyword(kw string) bool {
	return p.tok.kind == tIdent && strings.EqualFold(p.tok.text, kw)
}

func (p *parser) parseOr() (Expr, int) {
	p.enter(p.tok.pos)
	defer func() { p.rec-- }()
	return p.parseLogical(OpOr)
}

func (p *parser) parseLogical(op LogicalOp) (Expr, int) {
	sub := func() (Expr, int) {
		if op == OpOr {
			return p.parseLogical(OpAnd)
		}
		return p.parseComparison()
	}
	start, startAt := p.tok.pos, p.tok.at
	first, depth := sub()
	if !p.keyword(op.String()) {
		return first, depth
	}
	terms := []Expr{first}
	for p.keyword(op.String()) {
		p.next()
		t, d := sub()
		terms = append(terms, t)
		depth = max(depth, d)
	}
	depth++
	p.checkDepth(start, depth)
	return logical(op, terms, startAt), depth
}

var comparisonOps = map[string]BinaryOp{"eq": OpEq, "ne": OpNe, "gt": OpGt, "ge": OpGe, "lt": OpLt, "le": OpLe}
var additiveOps = map[string]BinaryOp{"add": OpAdd, "sub": OpSub}
var multiplicativeOps = map[string]BinaryOp{"mul": OpMul, "div": OpDiv, "mod": OpMod}

func (p *parser) binaryOp(ops map[string]BinaryOp) (BinaryOp, bool) {
	if p.tok.kind != tIdent {
		return 0, false
	}
	op, ok := ops[strings.ToLower(p.tok.text)]
	return op, ok
}

func (p *parser) parseBinary(ops map[string]BinaryOp, sub func() (Expr, int)) (Expr, int) {
	l, depth := sub()
	for {
		op, ok := p.binaryOp(ops)
		if !ok {
			return l, depth
		}
		pos, at := p.tok.pos, p.tok.at
		p.next()
		r, d := sub()
		depth = max(depth, d) + 1
		p.checkDepth(pos, depth)
		l = &Binary{Op: op, L: l, R: r, at: at}
	}
}

func (p *parser) parseComparison() (Expr, int) {
	return p.parseBinary(comparisonOps, p.parseAdditive)
}

func (p *parser) parseAdditive() (Expr, int) {
	return p.parseBinary(additiveOps, p.parseMultiplicative)
}

func (p *parser) parseMultiplicative() (Expr, int) {
	return p.parseBinary(multiplicativeOps, p.parseUnary)
}

func (p *parser) parseUnary() (Expr, int) {
	pos, at := p.tok.pos, p.tok.at
	switch {
	case p.tok.kind == tMinus:
		p.enter(pos)
		defer func() { p.rec-- }()
		p.next()
		x, d := p.parseUnary()
		if lit, ok := x.(*Literal); ok && lit.Kind == NumberLit {
			// Fold "-5", "- 5" and "-(5)" into a literal.
			return &Literal{Kind: NumberLit, Num: -lit.Num, at: at}, d
		}
		p.checkDepth(pos, d+1)
		return &Unary{Op: OpNeg, X: x, at: at}, d + 1
	case p.tok.kind == tIdent && p.tok.text == "not":
		p.enter(pos)
		defer func() { p.rec-- }()
		p.next()
		x, d := p.parseUnary()
		p.checkDepth(pos, d+1)
		return &Unary{Op: OpNot, X: x, at: at}, d + 1
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (Expr, int) {
	tok := p.tok
	switch tok.kind {
	case tString, tNumber, tTyped:
		p.next()
		return tok.lit, 1
	case tLParen:
		p.next()
		e, d := p.parseOr()
		if p.tok.kind != tRParen {
			p.fail(p.tok.pos, "expected ')' but found %s", p.describe())
		}
		p.next()
		return e, d
	case tIdent:
		p.next()
		if p.tok.kind == tLParen {
			return p.parseCall(tok)
		}
		switch tok.text {
		case "true", "false":
			return &Literal{Kind: BoolLit, Bool: tok.text == "true", at: tok.at}, 1
		case "null":
			return &Literal{Kind: NullLit, at: tok.at}, 1
		}
		if _, isOp := allKeywords[tok.text]; isOp {
			p.fail(tok.pos, "expected an operand but found '%s'", tok.text)
		}
		return &Member{Name: tok.text, at: tok.at}, 1
	case tEOF:
		p.fail(tok.pos, "unexpected end of input: expected an operand")
	}
	p.fail(tok.pos, "expected an operand but found %s", p.describe())
	return nil, 0
}

// allKeywords are the lower-case binary operator keywords; as in v1 they
// cannot be used as member names, which keeps error messages clear
// ("a eq eq 1").
var allKeywords = map[string]struct{}{
	"eq": {}, "ne": {}, "gt": {}, "ge": {}, "lt": {}, "le": {}, "and": {}, "or": {},
	"add": {}, "sub": {}, "mul": {}, "div": {}, "mod": {},
}

// functions maps each supported function to its arity (min, max).
var functions = map[string][2]int{
	"tolower": {1, 1}, "toupper": {1, 1}, "length": {1, 1}, "trim": {1, 1},
	"concat": {2, 2}, "replace": {3, 3}, "indexof": {2, 2}, "substring": {2, 3},
	"substringof": {2, 2}, "startswith": {2, 2}, "endswith": {2, 2},
	"year": {1, 1}, "month": {1, 1}, "day": {1, 1}, "hour": {1, 1}, "minute": {1, 1}, "second": {1, 1},
	"floor": {1, 1}, "ceiling": {1, 1}, "round": {1, 1},
}

func arityMessage(name string, a [2]int) string {
	if a[0] == a[1] {
		return fmt.Sprintf("function '%s' requires %d parameter(s)", name, a[0])
	}
	return fmt.Sprintf("function '%s' requires %d to %d parameters", name, a[0], a[1])
}

func (p *parser) parseCall(name token) (Expr, int) {
	fn := strings.ToLower(name.text)
	arity, ok := functions[fn]
	if !ok {
		p.fail(name.pos, "unknown function '%s'", name.text)
	}
	p.next() // '('
	var args []Expr
	depth := 0
	if p.tok.kind != tRParen {
		for {
			a, d := p.parseOr()
			args = append(args, a)
			depth = max(depth, d)
			if p.tok.kind != tComma {
				break
			}
			p.next()
		}
	}
	if p.tok.kind != tRParen {
		p.fail(p.tok.pos, "expected ',' or ')' but found %s", p.describe())
	}
	p.next()
	if len(args) < arity[0] || len(args) > arity[1] {
		p.fail(name.pos, "%s", arityMessage(fn, arity))
	}
	depth++
	p.checkDepth(name.pos, depth)
	return &Call{Func: fn, Args: args, at: name.at}, depth
}
