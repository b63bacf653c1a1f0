package tsql

import (
	"strconv"
	"strings"
)

// name is an identifier as written: bare or quoted. Quoting never changes how a name resolves; it
// only lets a name be a keyword.
type name struct {
	text   string
	quoted bool
}

type expr interface{}

type (
	colRef   struct{ parts []name }
	strLit   struct{ v string }
	numLit   struct{ v string }
	nullLit  struct{}
	boolLit  struct{ v bool }
	paramRef struct{ idx int }
	nowExpr  struct{}
	call     struct {
		fn       name
		star     bool
		distinct bool
		args     []expr
	}
	unary struct {
		op string
		x  expr
	}
	binary struct {
		op   string
		l, r expr
	}
	isNull struct {
		x   expr
		not bool
	}
	inExpr struct {
		x    expr
		not  bool
		list []expr
		sub  *selectStmt
	}
	between struct {
		x, lo, hi expr
		not       bool
	}
	likeExpr struct {
		x, pat expr
		not    bool
	}
	existsExpr struct{ sub *selectStmt }
	caseExpr   struct {
		operand expr
		whens   [][2]expr
		els     expr
	}
	subquery  struct{ sel *selectStmt }
	parenExpr struct{ x expr }
)

type selItem struct {
	star  bool
	qual  []name // t.* qualifier
	x     expr
	alias *name
}

type fromItem interface{}

type (
	tableRef struct {
		parts []name // [schema.]table
		alias *name
		ent   *entry // set when resolved
	}
	joinItem struct {
		kind        string // INNER, LEFT, RIGHT, FULL, CROSS
		left, right fromItem
		on          expr
	}
	parenFrom struct{ inner fromItem }
)

type selectCore struct {
	distinct bool
	top      int // -1: none
	items    []selItem
	from     []fromItem
	where    expr
	groupBy  []expr
	having   expr
}

type orderItem struct {
	x    expr
	desc bool
}

type selectStmt struct {
	cores    []*selectCore
	unionAll []bool // between cores
	orderBy  []orderItem
}

type insertStmt struct {
	table  tableRef
	cols   []name
	values []expr
}

type setItem struct {
	col []name
	x   expr
}

type updateStmt struct {
	table tableRef
	sets  []setItem
	where expr
}

type deleteStmt struct {
	table    tableRef
	where    expr
	truncate bool // TRUNCATE TABLE
}

type parser struct {
	toks    []token
	i       int
	nParams int
	depth   int
}

// maxDepth bounds nesting (parentheses, subqueries, operators) so hostile input cannot exhaust the stack.
const maxDepth = 64

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// kw reports whether the next token is the bare keyword k.
func (p *parser) kw(k string) bool {
	t := p.peek()
	return t.kind == tWord && strings.EqualFold(t.text, k)
}

func (p *parser) kwAt(off int, k string) bool {
	if p.i+off >= len(p.toks) {
		return false
	}
	t := p.toks[p.i+off]
	return t.kind == tWord && strings.EqualFold(t.text, k)
}

func (p *parser) acceptKw(k string) bool {
	if p.kw(k) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expectKw(k string) error {
	if !p.acceptKw(k) {
		return p.unexpected("expected " + k)
	}
	return nil
}

func (p *parser) op(o string) bool {
	t := p.peek()
	return t.kind == tOp && t.text == o
}

func (p *parser) acceptOp(o string) bool {
	if p.op(o) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expectOp(o string) error {
	if !p.acceptOp(o) {
		return p.unexpected("expected '" + o + "'")
	}
	return nil
}

func (p *parser) unexpected(what string) error {
	t := p.peek()
	switch t.kind {
	case tEOF:
		return errorf("%s at the end of the statement", what)
	case tString:
		return errorf("%s, found a string literal", what)
	}
	return errorf("%s, found '%s'", what, t.text)
}

// reserved words cannot be bare names (aliases, columns, tables); quote them to use them as names.
var reserved = map[string]bool{
	"SELECT": true, "DISTINCT": true, "TOP": true, "FROM": true, "WHERE": true, "AND": true, "OR": true, "NOT": true,
	"IN": true, "IS": true, "NULL": true, "LIKE": true, "BETWEEN": true, "ORDER": true, "BY": true, "ASC": true,
	"DESC": true, "GROUP": true, "HAVING": true, "AS": true, "INSERT": true, "INTO": true, "VALUES": true, "UPDATE": true,
	"SET": true, "DELETE": true, "JOIN": true, "INNER": true, "LEFT": true, "RIGHT": true, "FULL": true, "OUTER": true,
	"CROSS": true, "ON": true, "CASE": true, "WHEN": true, "THEN": true, "ELSE": true, "END": true, "EXISTS": true,
	"UNION": true, "ALL": true, "TRUE": true, "FALSE": true, "TRUNCATE": true, "TABLE": true, "ESCAPE": true,
	"CURRENT_TIMESTAMP": true, "PERCENT": true, "TIES": true,
}

// name reads one identifier.
func (p *parser) name(what string) (name, error) {
	t := p.peek()
	switch {
	case t.kind == tQuoted:
		p.i++
		return name{text: t.text, quoted: true}, nil
	case t.kind == tWord && !reserved[strings.ToUpper(t.text)]:
		p.i++
		return name{text: t.text}, nil
	}
	return name{}, p.unexpected("expected " + what)
}

func (p *parser) isName() bool {
	t := p.peek()
	return t.kind == tQuoted || (t.kind == tWord && !reserved[strings.ToUpper(t.text)])
}

// dotted reads a.b.c.
func (p *parser) dotted(what string) ([]name, error) {
	n, err := p.name(what)
	if err != nil {
		return nil, err
	}
	parts := []name{n}
	for p.op(".") && p.i+1 < len(p.toks) && (p.toks[p.i+1].kind == tQuoted || p.toks[p.i+1].kind == tWord) {
		p.i++
		n, err := p.name(what)
		if err != nil {
			return nil, err
		}
		parts = append(parts, n)
	}
	if len(parts) > 4 {
		return nil, errorf("name '%s' has too many parts", joinNames(parts))
	}
	return parts, nil
}

func joinNames(ns []name) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.text
	}
	return strings.Join(s, ".")
}

// alias reads an optional [AS] alias.
func (p *parser) alias() (*name, error) {
	if p.acceptKw("AS") {
		n, err := p.name("an alias after AS")
		if err != nil {
			return nil, err
		}
		return &n, nil
	}
	if p.isName() {
		n, _ := p.name("")
		return &n, nil
	}
	return nil, nil
}

// statement parses one statement (an optional trailing ';').
func (p *parser) statement() (any, error) {
	var st any
	var err error
	switch {
	case p.kw("SELECT"):
		st, err = p.selectStmt()
	case p.kw("INSERT"):
		st, err = p.insertStmt()
	case p.kw("UPDATE"):
		st, err = p.updateStmt()
	case p.kw("DELETE"):
		st, err = p.deleteStmt()
	case p.kw("TRUNCATE"):
		p.next()
		if err := p.expectKw("TABLE"); err != nil {
			return nil, errorf("expected TRUNCATE TABLE <name>")
		}
		var t tableRef
		t.parts, err = p.dotted("a table name")
		st = &deleteStmt{table: t, truncate: true}
	case p.peek().kind == tEOF:
		return nil, errorf("empty statement")
	case p.op("("):
		return nil, errorf("a statement cannot start with '(' (write SELECT ...)")
	default:
		return nil, errorf("'%s' statements are not supported (SELECT, INSERT, UPDATE, DELETE and TRUNCATE TABLE are)", p.peek().text)
	}
	if err != nil {
		return nil, err
	}
	for p.acceptOp(";") {
	}
	if p.peek().kind != tEOF {
		if p.i > 0 && p.toks[p.i-1].kind == tOp && p.toks[p.i-1].text == ";" {
			return nil, errorf("multiple statements in one query are not supported")
		}
		return nil, p.unexpected("expected the end of the statement")
	}
	return st, nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return errorf("the statement nests too deeply")
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) selectStmt() (*selectStmt, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	s := &selectStmt{}
	for {
		c, err := p.selectCore()
		if err != nil {
			return nil, err
		}
		s.cores = append(s.cores, c)
		if !p.acceptKw("UNION") {
			break
		}
		s.unionAll = append(s.unionAll, p.acceptKw("ALL"))
		if !p.kw("SELECT") {
			return nil, p.unexpected("expected SELECT after UNION")
		}
	}
	if p.acceptKw("ORDER") {
		if err := p.expectKw("BY"); err != nil {
			return nil, err
		}
		for {
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			it := orderItem{x: x}
			if p.acceptKw("DESC") {
				it.desc = true
			} else {
				p.acceptKw("ASC")
			}
			s.orderBy = append(s.orderBy, it)
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if len(s.cores) > 1 {
		for _, c := range s.cores {
			if c.top >= 0 {
				return nil, errorf("TOP together with UNION is not supported")
			}
		}
		if len(s.orderBy) > 0 {
			return nil, errorf("ORDER BY together with UNION is not supported")
		}
	}
	return s, nil
}

func (p *parser) selectCore() (*selectCore, error) {
	if err := p.expectKw("SELECT"); err != nil {
		return nil, err
	}
	c := &selectCore{top: -1}
	if p.acceptKw("DISTINCT") {
		c.distinct = true
	} else {
		p.acceptKw("ALL")
	}
	if p.acceptKw("TOP") {
		paren := p.acceptOp("(")
		t := p.next()
		if t.kind != tNumber {
			return nil, errorf("TOP needs a number")
		}
		n, err := strconv.Atoi(t.text)
		if err != nil || n < 0 {
			return nil, errorf("TOP needs a whole number")
		}
		c.top = n
		if paren {
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
		}
		if p.kw("PERCENT") {
			return nil, errorf("TOP ... PERCENT is not supported")
		}
		if p.kw("WITH") || p.kw("TIES") {
			return nil, errorf("TOP ... WITH TIES is not supported")
		}
	}
	for {
		it, err := p.selItem()
		if err != nil {
			return nil, err
		}
		c.items = append(c.items, it)
		if !p.acceptOp(",") {
			break
		}
	}
	if p.kw("INTO") {
		return nil, errorf("SELECT ... INTO is not supported")
	}
	if p.acceptKw("FROM") {
		for {
			f, err := p.fromItem()
			if err != nil {
				return nil, err
			}
			c.from = append(c.from, f)
			if !p.acceptOp(",") {
				break
			}
		}
	}
	var err error
	if p.acceptKw("WHERE") {
		if c.where, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if p.acceptKw("GROUP") {
		if err := p.expectKw("BY"); err != nil {
			return nil, err
		}
		for {
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			c.groupBy = append(c.groupBy, x)
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if p.acceptKw("HAVING") {
		if c.having, err = p.expr(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (p *parser) selItem() (selItem, error) {
	if p.acceptOp("*") {
		return selItem{star: true}, nil
	}
	// t.* (and schema.t.*)
	if p.isName() {
		save := p.i
		var qual []name
		for p.isName() {
			n, _ := p.name("")
			qual = append(qual, n)
			if !p.acceptOp(".") {
				break
			}
			if p.acceptOp("*") {
				return selItem{star: true, qual: qual}, nil
			}
		}
		p.i = save
	}
	x, err := p.expr()
	if err != nil {
		return selItem{}, err
	}
	it := selItem{x: x}
	// T-SQL also has "alias = expr"; it is rare in scripts and ambiguous with comparisons, so unsupported.
	it.alias, err = p.alias()
	if err != nil {
		return selItem{}, err
	}
	return it, nil
}

func (p *parser) fromItem() (fromItem, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	left, err := p.fromPrimary()
	if err != nil {
		return nil, err
	}
	for {
		kind := ""
		switch {
		case p.kw("JOIN"):
			kind = "INNER"
		case p.kw("INNER") && p.kwAt(1, "JOIN"):
			p.next()
			kind = "INNER"
		case p.kw("CROSS") && p.kwAt(1, "JOIN"):
			p.next()
			kind = "CROSS"
		case p.kw("LEFT") || p.kw("RIGHT") || p.kw("FULL"):
			kind = strings.ToUpper(p.next().text)
			p.acceptKw("OUTER")
			if !p.kw("JOIN") {
				return nil, p.unexpected("expected JOIN")
			}
		default:
			return left, nil
		}
		p.next() // JOIN
		right, err := p.fromPrimary()
		if err != nil {
			return nil, err
		}
		j := &joinItem{kind: kind, left: left, right: right}
		if kind != "CROSS" {
			if err := p.expectKw("ON"); err != nil {
				return nil, err
			}
			if j.on, err = p.expr(); err != nil {
				return nil, err
			}
		}
		left = j
	}
}

func (p *parser) fromPrimary() (fromItem, error) {
	if p.acceptOp("(") {
		if p.kw("SELECT") {
			return nil, errorf("subqueries in FROM (derived tables) are not supported")
		}
		inner, err := p.fromItem()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		if p.kw("AS") || p.isName() {
			return nil, errorf("an alias after a parenthesised join is not supported")
		}
		return &parenFrom{inner: inner}, nil
	}
	parts, err := p.dotted("a table name")
	if err != nil {
		return nil, err
	}
	if p.op("(") {
		return nil, errorf("table-valued functions ('%s(...)') are not supported", joinNames(parts))
	}
	t := &tableRef{parts: parts}
	if t.alias, err = p.alias(); err != nil {
		return nil, err
	}
	if p.op("(") {
		return nil, errorf("table hints are not supported")
	}
	return t, nil
}

func (p *parser) insertStmt() (*insertStmt, error) {
	p.next()
	p.acceptKw("INTO")
	parts, err := p.dotted("a table name")
	if err != nil {
		return nil, err
	}
	s := &insertStmt{table: tableRef{parts: parts}}
	if !p.acceptOp("(") {
		return nil, errorf("INSERT needs a column list and VALUES (INSERT ... SELECT is not supported)")
	}
	for {
		n, err := p.dotted("a column name")
		if err != nil {
			return nil, err
		}
		if len(n) != 1 {
			return nil, errorf("INSERT column '%s' must be a plain column name", joinNames(n))
		}
		s.cols = append(s.cols, n[0])
		if !p.acceptOp(",") {
			break
		}
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	if !p.acceptKw("VALUES") {
		return nil, errorf("INSERT needs a column list and VALUES (INSERT ... SELECT is not supported)")
	}
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	for {
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		s.values = append(s.values, x)
		if !p.acceptOp(",") {
			break
		}
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	if p.op(",") {
		return nil, errorf("INSERT supports one row of VALUES")
	}
	if len(s.values) != len(s.cols) {
		return nil, errorf("INSERT names %d columns but gives %d values", len(s.cols), len(s.values))
	}
	return s, nil
}

func (p *parser) updateStmt() (*updateStmt, error) {
	p.next()
	if p.kw("TOP") {
		return nil, errorf("TOP is supported in SELECT only")
	}
	parts, err := p.dotted("a table name")
	if err != nil {
		return nil, err
	}
	s := &updateStmt{table: tableRef{parts: parts}}
	if err := p.expectKw("SET"); err != nil {
		return nil, err
	}
	for {
		col, err := p.dotted("a column name")
		if err != nil {
			return nil, err
		}
		if err := p.expectOp("="); err != nil {
			return nil, err
		}
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		s.sets = append(s.sets, setItem{col: col, x: x})
		if !p.acceptOp(",") {
			break
		}
	}
	if p.kw("FROM") {
		return nil, errorf("UPDATE ... FROM is not supported")
	}
	if p.acceptKw("WHERE") {
		if s.where, err = p.expr(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (p *parser) deleteStmt() (*deleteStmt, error) {
	p.next()
	if p.kw("TOP") {
		return nil, errorf("TOP is supported in SELECT only")
	}
	p.acceptKw("FROM")
	parts, err := p.dotted("a table name")
	if err != nil {
		return nil, err
	}
	s := &deleteStmt{table: tableRef{parts: parts}}
	if p.kw("FROM") {
		return nil, errorf("DELETE ... FROM ... JOIN is not supported")
	}
	if p.acceptKw("WHERE") {
		if s.where, err = p.expr(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Expressions, by precedence: OR, AND, NOT, predicates, + -, * / %, unary, primary.

func (p *parser) expr() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	l, err := p.andExpr()
	if err != nil {
		return nil, err
	}
	for p.acceptKw("OR") {
		r, err := p.andExpr()
		if err != nil {
			return nil, err
		}
		l = &binary{op: "OR", l: l, r: r}
	}
	return l, nil
}

func (p *parser) andExpr() (expr, error) {
	l, err := p.notExpr()
	if err != nil {
		return nil, err
	}
	for p.acceptKw("AND") {
		r, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		l = &binary{op: "AND", l: l, r: r}
	}
	return l, nil
}

func (p *parser) notExpr() (expr, error) {
	if p.acceptKw("NOT") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		return &unary{op: "NOT", x: x}, nil
	}
	return p.predicate()
}

func (p *parser) predicate() (expr, error) {
	if p.acceptKw("EXISTS") {
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		sub, err := p.selectStmt()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return &existsExpr{sub: sub}, nil
	}
	l, err := p.additive()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tOp {
		switch t.text {
		case "=", "<>", "!=", "<", ">", "<=", ">=":
			p.next()
			r, err := p.additive()
			if err != nil {
				return nil, err
			}
			op := t.text
			if op == "!=" {
				op = "<>"
			}
			return &binary{op: op, l: l, r: r}, nil
		}
	}
	if p.acceptKw("IS") {
		not := p.acceptKw("NOT")
		if err := p.expectKw("NULL"); err != nil {
			return nil, err
		}
		return &isNull{x: l, not: not}, nil
	}
	not := false
	if p.kw("NOT") && (p.kwAt(1, "IN") || p.kwAt(1, "LIKE") || p.kwAt(1, "BETWEEN")) {
		p.next()
		not = true
	}
	switch {
	case p.acceptKw("IN"):
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		in := &inExpr{x: l, not: not}
		if p.kw("SELECT") {
			if in.sub, err = p.selectStmt(); err != nil {
				return nil, err
			}
		} else {
			for {
				x, err := p.expr()
				if err != nil {
					return nil, err
				}
				in.list = append(in.list, x)
				if !p.acceptOp(",") {
					break
				}
			}
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return in, nil
	case p.acceptKw("LIKE"):
		r, err := p.additive()
		if err != nil {
			return nil, err
		}
		if p.kw("ESCAPE") {
			return nil, errorf("LIKE ... ESCAPE is not supported")
		}
		return &likeExpr{x: l, pat: r, not: not}, nil
	case p.acceptKw("BETWEEN"):
		lo, err := p.additive()
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("AND"); err != nil {
			return nil, err
		}
		hi, err := p.additive()
		if err != nil {
			return nil, err
		}
		return &between{x: l, lo: lo, hi: hi, not: not}, nil
	}
	return l, nil
}

func (p *parser) additive() (expr, error) {
	l, err := p.multiplicative()
	if err != nil {
		return nil, err
	}
	for p.op("+") || p.op("-") {
		op := p.next().text
		r, err := p.multiplicative()
		if err != nil {
			return nil, err
		}
		l = &binary{op: op, l: l, r: r}
	}
	return l, nil
}

func (p *parser) multiplicative() (expr, error) {
	l, err := p.unaryExpr()
	if err != nil {
		return nil, err
	}
	for p.op("*") || p.op("/") || p.op("%") {
		op := p.next().text
		r, err := p.unaryExpr()
		if err != nil {
			return nil, err
		}
		l = &binary{op: op, l: l, r: r}
	}
	return l, nil
}

func (p *parser) unaryExpr() (expr, error) {
	if p.op("-") || p.op("+") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		op := p.next().text
		x, err := p.unaryExpr()
		if err != nil {
			return nil, err
		}
		return &unary{op: op, x: x}, nil
	}
	return p.primary()
}

func (p *parser) primary() (expr, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		p.next()
		return &strLit{v: t.text}, nil
	case tNumber:
		p.next()
		return &numLit{v: t.text}, nil
	case tParam:
		p.next()
		p.nParams++
		return &paramRef{idx: p.nParams - 1}, nil
	case tOp:
		if t.text == "(" {
			p.next()
			if p.kw("SELECT") {
				sub, err := p.selectStmt()
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(")"); err != nil {
					return nil, err
				}
				return &subquery{sel: sub}, nil
			}
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return &parenExpr{x: x}, nil
		}
		return nil, p.unexpected("expected an expression")
	case tWord:
		switch strings.ToUpper(t.text) {
		case "NULL":
			p.next()
			return &nullLit{}, nil
		case "TRUE", "FALSE":
			p.next()
			return &boolLit{v: strings.EqualFold(t.text, "TRUE")}, nil
		case "CURRENT_TIMESTAMP":
			p.next()
			return &nowExpr{}, nil
		case "CASE":
			return p.caseExpr()
		}
	}
	if !p.isName() {
		return nil, p.unexpected("expected an expression")
	}
	parts, err := p.dotted("a name")
	if err != nil {
		return nil, err
	}
	if p.acceptOp("(") {
		// A function call, whatever the quoting of its name.
		if len(parts) != 1 {
			return nil, errorf("function %s() is not supported (schema-qualified functions are not allowed)", joinNames(parts))
		}
		c := &call{fn: parts[0]}
		if p.acceptOp("*") {
			c.star = true
		} else if !p.op(")") {
			c.distinct = p.acceptKw("DISTINCT")
			for {
				x, err := p.expr()
				if err != nil {
					return nil, err
				}
				c.args = append(c.args, x)
				if !p.acceptOp(",") {
					break
				}
			}
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return c, nil
	}
	return &colRef{parts: parts}, nil
}

func (p *parser) caseExpr() (expr, error) {
	p.next()
	c := &caseExpr{}
	var err error
	if !p.kw("WHEN") {
		if c.operand, err = p.expr(); err != nil {
			return nil, err
		}
	}
	for p.acceptKw("WHEN") {
		w, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("THEN"); err != nil {
			return nil, err
		}
		th, err := p.expr()
		if err != nil {
			return nil, err
		}
		c.whens = append(c.whens, [2]expr{w, th})
	}
	if len(c.whens) == 0 {
		return nil, p.unexpected("expected WHEN")
	}
	if p.acceptKw("ELSE") {
		if c.els, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if err := p.expectKw("END"); err != nil {
		return nil, err
	}
	return c, nil
}
