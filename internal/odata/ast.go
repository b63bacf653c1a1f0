package odata

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Expr is a node of a parsed or programmatically built $filter / $orderby
// expression. The concrete types are *Literal, *Member, *Unary, *Binary,
// *Logical and *Call. Nodes are immutable once built; share them freely.
type Expr interface {
	// Pos is the 0-based character index of the node in the text it was
	// parsed from, or -1 for nodes built with the constructors.
	Pos() int
	exprNode()
}

// LitKind is the kind of a literal.
type LitKind uint8

// Literal kinds.
const (
	NullLit LitKind = iota
	StringLit
	NumberLit
	BoolLit
	TimeLit // datetime'…' and datetimeoffset'…'
	GuidLit // guid'…'; compared as a string
)

// Literal is a constant. Only the field matching Kind is meaningful.
type Literal struct {
	Kind LitKind
	Str  string    // StringLit, GuidLit
	Num  float64   // NumberLit (every Edm numeric type becomes a float64)
	Bool bool      // BoolLit
	Time time.Time // TimeLit
	at   int       // 1 + position; 0 = unknown
}

// Member is a reference to a column by its client-visible name.
type Member struct {
	Name string
	at   int
}

// UnaryOp is a prefix operator.
type UnaryOp uint8

// Unary operators.
const (
	OpNot UnaryOp = iota + 1 // not x
	OpNeg                    // -x
)

// Unary is `not x` or `-x`.
type Unary struct {
	Op UnaryOp
	X  Expr
	at int
}

// BinaryOp is a comparison or arithmetic operator.
type BinaryOp uint8

// Comparison and arithmetic operators.
const (
	OpEq BinaryOp = iota + 1
	OpNe
	OpGt
	OpGe
	OpLt
	OpLe
	OpAdd
	OpSub
	OpMul
	OpDiv
	OpMod
)

var binaryNames = [...]string{OpEq: "eq", OpNe: "ne", OpGt: "gt", OpGe: "ge", OpLt: "lt", OpLe: "le",
	OpAdd: "add", OpSub: "sub", OpMul: "mul", OpDiv: "div", OpMod: "mod"}

// String returns the OData keyword of the operator.
func (op BinaryOp) String() string {
	if int(op) < len(binaryNames) && binaryNames[op] != "" {
		return binaryNames[op]
	}
	return "op(" + strconv.Itoa(int(op)) + ")"
}

func (op BinaryOp) isComparison() bool { return op >= OpEq && op <= OpLe }

// Binary is a comparison (eq ne gt ge lt le) or arithmetic (add sub mul div
// mod) expression.
type Binary struct {
	Op   BinaryOp
	L, R Expr
	at   int
}

// LogicalOp is `and` or `or`.
type LogicalOp uint8

// Logical operators.
const (
	OpAnd LogicalOp = iota + 1
	OpOr
)

// String returns "and" or "or".
func (op LogicalOp) String() string {
	if op == OpOr {
		return "or"
	}
	return "and"
}

// Logical is an n-ary conjunction or disjunction (at least two terms).
// Chains such as `a or b or c` are kept flat so that long client filters do
// not produce deep trees. Each term is compiled inside its own parentheses,
// so ANDing a predicate onto a client filter can never be escaped by an `or`
// inside it.
type Logical struct {
	Op    LogicalOp
	Terms []Expr
	at    int
}

// Call is a function call such as tolower(name) or substring(s, 1, 2). Func
// is the lower-case function name.
type Call struct {
	Func string
	Args []Expr
	at   int
}

// Param is a string value given when a compiled query runs (Compiled.Bind) rather than when it is
// compiled, so that one compilation serves every caller: a per-user table's restriction to the
// caller's user id.
type Param struct{ at int }

// NewParam makes a Param.
func NewParam() *Param { return &Param{} }

func (e *Param) Pos() int   { return e.at - 1 }
func (e *Literal) Pos() int { return e.at - 1 }
func (e *Member) Pos() int  { return e.at - 1 }
func (e *Unary) Pos() int   { return e.at - 1 }
func (e *Binary) Pos() int  { return e.at - 1 }
func (e *Logical) Pos() int { return e.at - 1 }
func (e *Call) Pos() int    { return e.at - 1 }

func (*Param) exprNode()   {}
func (*Literal) exprNode() {}
func (*Member) exprNode()  {}
func (*Unary) exprNode()   {}
func (*Binary) exprNode()  {}
func (*Logical) exprNode() {}
func (*Call) exprNode()    {}

// Constructors for building queries programmatically (table scripts,
// per-user and soft-delete restrictions).

// Ident references a column by its client-visible name.
func Ident(name string) *Member { return &Member{Name: name} }

// Str is a string literal.
func Str(s string) *Literal { return &Literal{Kind: StringLit, Str: s} }

// Num is a numeric literal.
func Num(f float64) *Literal { return &Literal{Kind: NumberLit, Num: f} }

// Bool is a boolean literal.
func Bool(b bool) *Literal { return &Literal{Kind: BoolLit, Bool: b} }

// Null is the null literal.
func Null() *Literal { return &Literal{Kind: NullLit} }

// Time is a date/time literal.
func Time(t time.Time) *Literal { return &Literal{Kind: TimeLit, Time: t} }

// Compare builds a comparison or arithmetic node.
func Compare(op BinaryOp, l, r Expr) *Binary { return &Binary{Op: op, L: l, R: r} }

// Eq builds `l eq r`.
func Eq(l, r Expr) *Binary { return Compare(OpEq, l, r) }

// Not builds `not x`.
func Not(x Expr) *Unary { return &Unary{Op: OpNot, X: x} }

// NewCall builds a function call; the function and its arity are checked
// when compiling.
func NewCall(fn string, args ...Expr) *Call { return &Call{Func: strings.ToLower(fn), Args: args} }

// And combines predicates with `and`. Nil terms are skipped; it returns nil
// when no term is left and the term itself when only one is left. Each term
// stays a separate node, so `And(userFilter, clientFilter)` restricts the
// client filter whatever it contains.
func And(terms ...Expr) Expr { return logical(OpAnd, terms, 0) }

// Or combines predicates with `or`, like And.
func Or(terms ...Expr) Expr { return logical(OpOr, terms, 0) }

func logical(op LogicalOp, terms []Expr, at int) Expr {
	var flat []Expr
	for _, t := range terms {
		if t == nil {
			continue
		}
		if l, ok := t.(*Logical); ok && l.Op == op {
			flat = append(flat, l.Terms...)
			continue
		}
		flat = append(flat, t)
	}
	switch len(flat) {
	case 0:
		return nil
	case 1:
		return flat[0]
	}
	return &Logical{Op: op, Terms: flat, at: at}
}

// Format renders an expression as OData $filter text that parses back to an
// equivalent tree. Composite operands are always parenthesised.
func Format(e Expr) string {
	var b strings.Builder
	format(&b, e)
	return b.String()
}

func format(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case nil:
		b.WriteString("null")
	case *Literal:
		formatLiteral(b, e)
	case *Member:
		b.WriteString(e.Name)
	case *Param:
		b.WriteString("@param")
	case *Unary:
		if e.Op == OpNot {
			b.WriteString("not ")
		} else {
			b.WriteString("-")
		}
		if _, ok := e.X.(*Unary); ok {
			format(b, e.X) // "not not x", "--x": no parentheses needed
			return
		}
		formatOperand(b, e.X)
	case *Binary:
		formatOperand(b, e.L)
		b.WriteString(" ")
		b.WriteString(e.Op.String())
		b.WriteString(" ")
		formatOperand(b, e.R)
	case *Logical:
		for i, t := range e.Terms {
			if i > 0 {
				b.WriteString(" ")
				b.WriteString(e.Op.String())
				b.WriteString(" ")
			}
			formatOperand(b, t)
		}
	case *Call:
		b.WriteString(e.Func)
		b.WriteString("(")
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(",")
			}
			format(b, a)
		}
		b.WriteString(")")
	}
}

func formatOperand(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case *Unary, *Binary, *Logical:
		b.WriteString("(")
		format(b, e)
		b.WriteString(")")
	case *Literal:
		if e.Kind == NumberLit && (e.Num < 0 || math.Signbit(e.Num)) {
			b.WriteString("(")
			format(b, e)
			b.WriteString(")")
			return
		}
		format(b, e)
	default:
		format(b, e)
	}
}

func formatLiteral(b *strings.Builder, e *Literal) {
	switch e.Kind {
	case NullLit:
		b.WriteString("null")
	case StringLit:
		b.WriteString("'")
		b.WriteString(strings.ReplaceAll(e.Str, "'", "''"))
		b.WriteString("'")
	case GuidLit:
		b.WriteString("guid'")
		b.WriteString(strings.ReplaceAll(e.Str, "'", "''"))
		b.WriteString("'")
	case NumberLit:
		b.WriteString(strconv.FormatFloat(e.Num, 'g', -1, 64))
	case BoolLit:
		b.WriteString(strconv.FormatBool(e.Bool))
	case TimeLit:
		b.WriteString("datetimeoffset'")
		b.WriteString(e.Time.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"))
		b.WriteString("'")
	}
}
