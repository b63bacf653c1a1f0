package odata

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// MaxParams bounds the number of bound parameters of one compiled query
// (SQLite's default limit is 32766, PostgreSQL's 65535).
const MaxParams = 30000

// maxCompileDepth bounds the recursion of the compiler. Parsed trees are
// at most MaxDepth deep; programmatic restrictions add a few levels.
const maxCompileDepth = 2 * MaxDepth

// maxReplaceLen bounds the replacement string of replace(), which must be
// a literal (as in v1) so that one call cannot multiply a value's size by
// more than that.
const maxReplaceLen = 100

// Compiled is a query translated to SQL fragments for one dialect.
type Compiled struct {
	// Where is a boolean SQL expression, or "" when there is no filter. It
	// uses Args[:WhereArgs].
	Where     string
	WhereArgs int
	// OrderBy is the ORDER BY list without the keyword; it always ends
	// with the primary key. It may use Args[WhereArgs:].
	OrderBy string
	// Args are the bound values. Placeholders are numbered from the
	// argStart given to Compile, in both dialects ("?N" / "$N"), so a
	// fragment may reuse a parameter.
	Args []any
	// Params are the indexes in Args of the query's Params (nil there until Bind).
	Params         []int
	Limit          int      // rows to return; NoLimit for none
	Offset         int      // rows to skip
	Columns        []Column // resolved $select, nil = all columns
	Count          bool     // $inlinecount=allpages: also run CountSQL
	IncludeDeleted bool

	dialect  Dialect
	argStart int
}

// SelectSQL assembles the page query. from is a trusted SQL fragment (use
// QuoteIdent for table names); cols is the list of columns to select
// (usually Columns, or all columns when it is nil). LIMIT and OFFSET are
// bound as further parameters.
func (c *Compiled) SelectSQL(from string, cols []Column) (string, []any, error) {
	var b strings.Builder
	b.Grow(64 + 24*len(cols) + len(from) + len(c.Where) + len(c.OrderBy))
	b.WriteString("SELECT ")
	if len(cols) == 0 {
		return "", nil, fmt.Errorf("odata: no columns to select")
	}
	for i, col := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if err := writeIdent(&b, col.Ident()); err != nil {
			return "", nil, err
		}
	}
	b.WriteString(" FROM ")
	b.WriteString(from)
	if c.Where != "" {
		b.WriteString(" WHERE ")
		b.WriteString(c.Where)
	}
	b.WriteString(" ORDER BY ")
	b.WriteString(c.OrderBy)
	args := append([]any(nil), c.Args...)
	n := c.argStart + len(args)
	switch {
	case c.Limit >= 0:
		b.WriteString(" LIMIT ")
		b.WriteString(c.dialect.Placeholder(n))
		args = append(args, int64(c.Limit))
		n++
	case c.Offset > 0 && c.dialect.noLimit() != "":
		b.WriteString(" LIMIT ")
		b.WriteString(c.dialect.noLimit())
	}
	if c.Offset > 0 {
		b.WriteString(" OFFSET ")
		b.WriteString(c.dialect.Placeholder(n))
		args = append(args, int64(c.Offset))
	}
	return b.String(), args, nil
}

// CountSQL assembles the $inlinecount query: the number of rows matching
// the filter, ignoring $top and $skip.
func (c *Compiled) CountSQL(from string) (string, []any) {
	q := "SELECT COUNT(*) FROM " + from
	if c.Where != "" {
		q += " WHERE " + c.Where
	}
	return q, append([]any(nil), c.Args[:c.WhereArgs]...)
}

// Compile translates q for dialect d, resolving names through s. Bound
// parameters are numbered from argStart (1 when the query has no other
// parameters). Client errors match ErrBadQuery; other errors are
// configuration mistakes.
func Compile(q *Query, s Schema, d Dialect, argStart int) (*Compiled, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	if argStart < 1 {
		return nil, fmt.Errorf("odata: argStart must be at least 1")
	}
	if q.Top < NoLimit || q.Skip < 0 {
		return nil, &OptionError{Option: "$top", Msg: "negative $top or $skip"}
	}
	c := &compiler{d: d, s: s, argStart: argStart}
	out := &Compiled{Limit: q.Top, Offset: q.Skip, Count: q.InlineCount, IncludeDeleted: q.IncludeDeleted,
		dialect: d, argStart: argStart}
	err := c.run("$filter", func() {
		if q.Filter != nil {
			out.Where = c.predicate(q.Filter)
		}
	})
	if err != nil {
		return nil, err
	}
	out.WhereArgs = len(c.args)
	if err := c.run("$orderby", func() { out.OrderBy = c.orderBy(q.OrderBy) }); err != nil {
		return nil, err
	}
	if err := c.run("$select", func() { out.Columns = c.selection(q.Select) }); err != nil {
		return nil, err
	}
	// The cost is checked once the expressions are known to be well typed, so that a type error is
	// reported as such; either way nothing has run yet.
	if err := checkCost(q, q.Cost); err != nil {
		return nil, err
	}
	out.Args = c.args
	out.Params = c.params
	return out, nil
}

// Bind returns args (Args, or what SelectSQL or CountSQL returned) with vals in the places of the
// query's Params, in the order they appear in the query (the filter's first). args is not changed.
func (c *Compiled) Bind(args []any, vals ...any) ([]any, error) {
	if len(vals) != len(c.Params) {
		return nil, fmt.Errorf("odata: %d values for %d parameters", len(vals), len(c.Params))
	}
	out := append([]any(nil), args...)
	for i, p := range c.Params {
		if p >= len(out) {
			return nil, fmt.Errorf("odata: parameter %d is not among %d arguments", p, len(out))
		}
		out[p] = vals[i]
	}
	return out, nil
}

// CompileFilter translates a single predicate (for example the where
// clause of a script's update or delete). It returns "" for a nil Expr.
func CompileFilter(e Expr, s Schema, d Dialect, argStart int) (string, []any, error) {
	if err := d.validate(); err != nil {
		return "", nil, err
	}
	if argStart < 1 {
		return "", nil, fmt.Errorf("odata: argStart must be at least 1")
	}
	c := &compiler{d: d, s: s, argStart: argStart}
	var where string
	err := c.run("$filter", func() {
		if e != nil {
			where = c.predicate(e)
		}
	})
	if err != nil {
		return "", nil, err
	}
	if err := checkCost(&Query{Filter: e}, CostLimits{}); err != nil {
		return "", nil, err
	}
	if len(c.params) > 0 {
		return "", nil, fmt.Errorf("odata: a filter with parameters needs Compile and Bind")
	}
	return where, c.args, nil
}

type compiler struct {
	d        Dialect
	s        Schema
	option   string
	args     []any
	params   []int // indexes in args of Params
	argStart int
	depth    int
}

type compileFailure struct{ err error }

func (c *compiler) run(option string, f func()) (err error) {
	c.option = option
	defer func() {
		if r := recover(); r != nil {
			cf, ok := r.(compileFailure)
			if !ok {
				panic(r)
			}
			err = cf.err
		}
	}()
	f()
	return nil
}

func (c *compiler) fail(err error) { panic(compileFailure{err}) }

func (c *compiler) typeErr(e Expr, format string, args ...any) {
	pos := -1
	if e != nil {
		pos = e.Pos()
	}
	c.fail(&TypeError{Option: c.option, Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) bind(v any, t Type) string {
	if len(c.args) >= MaxParams {
		c.fail(&LimitError{Option: c.option, Max: MaxParams, Msg: fmt.Sprintf("%s: too many values (maximum %d)", c.option, MaxParams)})
	}
	c.args = append(c.args, v)
	return c.d.param(c.argStart+len(c.args)-1, t)
}

// predicate compiles an expression used as a condition.
func (c *compiler) predicate(e Expr) string {
	sql, t := c.expr(e, TypeBoolean)
	if t != TypeBoolean && t != typeNull {
		c.typeErr(e, "expected a Boolean expression but found %s", t)
	}
	return sql
}

// expr compiles e. hint is the type expected by the context; it decides
// how literals are bound (a string compared with a Date is a date, an
// integral number compared with an Integer column is an int64, a null gets
// the type of the other side).
func (c *compiler) expr(e Expr, hint Type) (string, Type) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxCompileDepth {
		c.fail(&LimitError{Option: c.option, Max: maxCompileDepth,
			Msg: fmt.Sprintf("%s: expression is nested too deeply (maximum depth %d)", c.option, MaxDepth)})
	}
	switch e := e.(type) {
	case *Literal:
		return c.literal(e, hint)
	case *Member:
		return c.member(e)
	case *Param:
		c.params = append(c.params, len(c.args))
		return c.bind(nil, TypeString), TypeString
	case *Unary:
		return c.unary(e)
	case *Binary:
		if e.Op.isComparison() {
			return c.comparison(e)
		}
		return c.arithmetic(e)
	case *Logical:
		return c.logical(e)
	case *Call:
		return c.call(e)
	case nil:
		c.typeErr(nil, "missing operand")
	}
	c.typeErr(e, "unsupported expression %T", e)
	return "", 0
}

func (c *compiler) literal(e *Literal, hint Type) (string, Type) {
	switch e.Kind {
	case NullLit:
		return c.d.null(hint), typeNull
	case StringLit, GuidLit:
		if hint == TypeDate && e.Kind == StringLit {
			t, ok := ParseTime(e.Str)
			if !ok {
				c.typeErr(e, "cannot convert '%s' to a date", e.Str)
			}
			return c.bind(c.d.timeArg(t), TypeDate), TypeDate
		}
		if !utf8.ValidString(e.Str) || strings.IndexByte(e.Str, 0) >= 0 {
			c.typeErr(e, "invalid string literal")
		}
		return c.bind(e.Str, TypeString), TypeString
	case NumberLit:
		f := e.Num
		if math.IsNaN(f) || math.IsInf(f, 0) {
			c.typeErr(e, "number out of range")
		}
		if hint == TypeInteger && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return c.bind(int64(f), TypeInteger), TypeInteger
		}
		return c.bind(f, TypeNumber), TypeNumber
	case BoolLit:
		return c.bind(c.d.boolArg(e.Bool), TypeBoolean), TypeBoolean
	case TimeLit:
		if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
			c.typeErr(e, "date out of range")
		}
		return c.bind(c.d.timeArg(e.Time), TypeDate), TypeDate
	}
	c.typeErr(e, "invalid literal")
	return "", 0
}

func (c *compiler) member(e *Member) (string, Type) {
	col, ok := c.s.Column(e.Name)
	if !ok {
		c.fail(&UnknownColumnError{Option: c.option, Pos: e.Pos(), Name: e.Name})
	}
	if col.Type < TypeString || col.Type > TypeDate {
		c.fail(fmt.Errorf("odata: column %q has no valid type", col.Name))
	}
	q, err := QuoteIdent(col.Ident())
	if err != nil {
		c.fail(err)
	}
	return q, col.Type
}

func (c *compiler) unary(e *Unary) (string, Type) {
	switch e.Op {
	case OpNot:
		x := c.predicate(e.X)
		return "(NOT " + x + ")", TypeBoolean
	case OpNeg:
		x, t := c.expr(e.X, TypeNumber)
		if !t.numeric() && t != typeNull {
			c.typeErr(e, "cannot negate %s", t)
		}
		if t == typeNull {
			t = TypeNumber
		}
		return "(-" + x + ")", t
	}
	c.typeErr(e, "invalid unary operator")
	return "", 0
}

// logical joins the terms as a balanced tree so that long `or` chains do
// not exceed the databases' expression depth limits. Every term is an
// atom or parenthesised.
func (c *compiler) logical(e *Logical) (string, Type) {
	if len(e.Terms) == 0 {
		c.typeErr(e, "empty %s", e.Op)
	}
	parts := make([]string, len(e.Terms))
	for i, t := range e.Terms {
		parts[i] = c.predicate(t)
	}
	op := " AND "
	if e.Op == OpOr {
		op = " OR "
	}
	var join func(p []string) string
	join = func(p []string) string {
		if len(p) == 1 {
			return p[0]
		}
		m := len(p) / 2
		return "(" + join(p[:m]) + op + join(p[m:]) + ")"
	}
	return join(parts), TypeBoolean
}

var sqlComparison = map[BinaryOp]string{OpEq: "=", OpNe: "<>", OpGt: ">", OpGe: ">=", OpLt: "<", OpLe: "<="}

func isLiteral(e Expr) bool {
	l, ok := e.(*Literal)
	return ok && l.Kind != NullLit
}

func isNull(e Expr) bool {
	l, ok := e.(*Literal)
	return ok && l.Kind == NullLit
}

// operands compiles both sides of a binary node, the non-literal side
// first so that its type can guide the binding of a literal.
func (c *compiler) operands(e *Binary, hint Type) (l string, lt Type, r string, rt Type) {
	if isLiteral(e.L) && !isLiteral(e.R) || isNull(e.L) && !isNull(e.R) {
		r, rt = c.expr(e.R, hint)
		l, lt = c.expr(e.L, pick(rt, hint))
		return
	}
	l, lt = c.expr(e.L, hint)
	r, rt = c.expr(e.R, pick(lt, hint))
	return
}

func pick(t, fallback Type) Type {
	if t == typeNull || t == 0 {
		return fallback
	}
	return t
}

func compatible(a, b Type) bool {
	return a == b || a == typeNull || b == typeNull || a.numeric() && b.numeric()
}

func (c *compiler) comparison(e *Binary) (string, Type) {
	l, lt, r, rt := c.operands(e, 0)
	if !compatible(lt, rt) {
		c.typeErr(e, "cannot compare %s with %s", lt, rt)
	}
	if e.Op == OpEq || e.Op == OpNe {
		var x string
		switch {
		case isNull(e.R):
			x = l
		case isNull(e.L):
			x = r
		}
		if x != "" {
			if e.Op == OpEq {
				return "(" + x + " IS NULL)", TypeBoolean
			}
			return "(" + x + " IS NOT NULL)", TypeBoolean
		}
	}
	op := sqlComparison[e.Op]
	if (lt == TypeString || rt == TypeString) && e.Op != OpEq && e.Op != OpNe {
		// Ordering comparisons agree with ORDER BY; equality stays exact.
		return "(" + l + " COLLATE " + c.d.collate() + " " + op + " " + r + ")", TypeBoolean
	}
	return "(" + l + " " + op + " " + r + ")", TypeBoolean
}

func (c *compiler) arithmetic(e *Binary) (string, Type) {
	// Literals in arithmetic are always bound as doubles.
	l, lt := c.expr(e.L, TypeNumber)
	r, rt := c.expr(e.R, TypeNumber)
	for _, t := range []Type{lt, rt} {
		if !t.numeric() && t != typeNull {
			c.typeErr(e, "operator '%s' needs numbers but found %s", e.Op, t)
		}
	}
	switch e.Op {
	case OpDiv:
		return c.d.div(l, r), TypeNumber
	case OpMod:
		return c.d.mod(l, r), TypeNumber
	}
	l, r = c.d.operand(l, lt), c.d.operand(r, rt)
	op := map[BinaryOp]string{OpAdd: " + ", OpSub: " - ", OpMul: " * "}[e.Op]
	if op == "" {
		c.typeErr(e, "invalid operator")
	}
	return "(" + l + op + r + ")", TypeNumber
}

// arg compiles a function argument that must have type want (Integer is
// accepted for Number).
func (c *compiler) arg(call *Call, i int, want Type) string {
	a := call.Args[i]
	sql, t := c.expr(a, want)
	if t == typeNull {
		return sql
	}
	if t != want && !(want == TypeNumber && t.numeric()) {
		c.typeErr(a, "argument %d of %s must be %s, not %s", i+1, call.Func, want, t)
	}
	return sql
}

func containsReplace(e Expr) bool {
	switch e := e.(type) {
	case *Call:
		if e.Func == "replace" {
			return true
		}
		for _, a := range e.Args {
			if containsReplace(a) {
				return true
			}
		}
	case *Unary:
		return containsReplace(e.X)
	case *Binary:
		return containsReplace(e.L) || containsReplace(e.R)
	case *Logical:
		for _, t := range e.Terms {
			if containsReplace(t) {
				return true
			}
		}
	}
	return false
}

func (c *compiler) call(e *Call) (string, Type) {
	arity, ok := functions[e.Func]
	if !ok {
		c.typeErr(e, "unknown function '%s'", e.Func)
	}
	if len(e.Args) < arity[0] || len(e.Args) > arity[1] {
		c.typeErr(e, "%s", arityMessage(e.Func, arity))
	}
	str := func(i int) string { return c.arg(e, i, TypeString) }
	num := func(i int) string { return c.arg(e, i, TypeNumber) }
	switch e.Func {
	case "tolower":
		return c.d.lower(str(0)), TypeString
	case "toupper":
		return c.d.upper(str(0)), TypeString
	case "length":
		return "length(" + str(0) + ")", TypeInteger
	case "trim":
		return "trim(" + str(0) + ")", TypeString
	case "concat":
		parts := make([]string, len(e.Args))
		for i := range e.Args {
			parts[i] = str(i)
		}
		return "(" + strings.Join(parts, " || ") + ")", TypeString
	case "replace":
		for _, a := range e.Args {
			if containsReplace(a) {
				c.typeErr(e, "calls to 'replace' cannot be nested")
			}
		}
		lit, ok := e.Args[2].(*Literal)
		if !ok || lit.Kind != StringLit || utf8.RuneCountInString(lit.Str) > maxReplaceLen {
			c.typeErr(e.Args[2], "the third argument of replace must be a string literal of at most %d characters", maxReplaceLen)
		}
		s, f, r := str(0), str(1), str(2)
		return "replace(" + s + ", " + f + ", " + r + ")", TypeString
	case "indexof":
		return c.d.indexOf(str(0), str(1)), TypeInteger
	case "substring":
		s := str(0)
		start := c.d.clampIndex(num(1)) + " + 1"
		if len(e.Args) == 3 {
			return "substr(" + s + ", " + start + ", " + c.d.clampIndex(num(2)) + ")", TypeString
		}
		return "substr(" + s + ", " + start + ")", TypeString
	case "substringof":
		needle := str(0)
		return c.d.contains(str(1), needle), TypeBoolean
	case "startswith":
		return c.d.startsWith(str(0), str(1)), TypeBoolean
	case "endswith":
		return c.d.endsWith(str(0), str(1)), TypeBoolean
	case "year", "month", "day", "hour", "minute", "second":
		return c.d.datePart(e.Func, c.arg(e, 0, TypeDate)), TypeInteger
	case "floor":
		return c.d.floor(num(0)), TypeNumber
	case "ceiling":
		return c.d.ceiling(num(0)), TypeNumber
	case "round":
		return c.d.round(num(0)), TypeNumber
	}
	c.typeErr(e, "unknown function '%s'", e.Func)
	return "", 0
}

// orderBy compiles the keys and appends the primary key (ascending) as the
// final tie-breaker unless it is already a key, so that paging with $skip
// is stable. NULLs sort first ascending and last descending on both
// databases (SQL Server's order).
func (c *compiler) orderBy(keys []OrderKey) string {
	pk := c.s.PrimaryKey()
	pkSQL, err := QuoteIdent(pk.Ident())
	if err != nil {
		c.fail(err)
	}
	var parts []string
	hasPK := false
	for _, k := range keys {
		if k.Expr == nil {
			c.typeErr(nil, "missing order key")
		}
		if _, ok := k.Expr.(*Literal); ok {
			c.typeErr(k.Expr, "cannot order by a constant")
		}
		sql, t := c.expr(k.Expr, 0)
		if t == typeNull {
			c.typeErr(k.Expr, "cannot order by null")
		}
		if sql == pkSQL {
			hasPK = true
		}
		if t == TypeString {
			sql += " COLLATE " + c.d.collate()
		}
		if k.Desc {
			sql += " DESC NULLS LAST"
		} else {
			sql += " ASC NULLS FIRST"
		}
		parts = append(parts, sql)
	}
	if !hasPK {
		parts = append(parts, pkSQL+" ASC")
	}
	return strings.Join(parts, ", ")
}

// selection resolves $select. nil or "*" anywhere means all columns.
func (c *compiler) selection(names []string) []Column {
	var cols []Column
	seen := map[string]bool{}
	star := false
	for _, n := range names {
		if n == "*" {
			star = true
			continue
		}
		col, ok := c.s.Column(n)
		if !ok {
			c.fail(&UnknownColumnError{Option: c.option, Pos: -1, Name: n})
		}
		if !seen[col.Ident()] {
			seen[col.Ident()] = true
			cols = append(cols, col)
		}
	}
	if star {
		return nil
	}
	return cols
}
