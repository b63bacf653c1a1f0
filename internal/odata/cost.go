package odata

import (
	"fmt"
	"math"
)

// Default cost bounds (CostLimits zero fields take them).
const (
	// DefaultMaxGrowth is the default CostLimits.MaxGrowth.
	DefaultMaxGrowth = 32
	// DefaultMaxComputedBytes is the default CostLimits.MaxBytes.
	DefaultMaxComputedBytes = 1 << 20
)

// caseMappingGrowth bounds how much tolower/toupper can lengthen a string,
// in bytes: Go's simple case mapping (SQLite) turns a 2-byte letter into a
// 3-byte one at most and an invalid byte into U+FFFD (3 bytes); full case
// mapping with ICU on PostgreSQL turns one 2-byte letter into at most three
// 2-byte letters (U+0390). 3 covers every case.
const caseMappingGrowth = 3

// CostLimits bound what the expressions of one query ($filter and $orderby
// together) may compute for each row they look at. Every string a function
// makes is counted as G·L + B bytes, where L is the length in bytes of the
// longest string value stored in the table: MaxGrowth bounds the sum of the
// G parts, MaxBytes the sum of the B parts (what is made from literals).
// The estimate is static (taken from the AST before the query runs) and
// sound: no row can make a function produce more. Zero fields take the
// defaults; the bounds cannot be switched off.
//
// The rules, per function, for the size of its result:
//
//	column of type String      1·L
//	'literal'                  its length in bytes (not counted: not made per row)
//	concat(a, b)               size(a) + size(b)
//	replace(s, f, 'r')         size(s) · max(1, len(r)/len(f)); len(f) = 1 when f is not a literal
//	                           (every match of f, at least len(f) bytes, becomes len(r) bytes)
//	substring(s, …), trim(s)   size(s)
//	tolower(s), toupper(s)     3 · size(s) (case mapping can lengthen UTF-8)
//	endswith(s, p)             size(s) (SQLite extracts the tail of s)
//	other functions            nothing made (numbers, booleans, positions)
//
// The total counts every string a function makes (concat(replace(t,'a','xx'),t)
// counts the replace and the concat), because a database may keep them all in
// memory at once while it evaluates a row.
type CostLimits struct {
	MaxGrowth float64 // default DefaultMaxGrowth
	MaxBytes  int64   // default DefaultMaxComputedBytes
}

func (l CostLimits) withDefaults() CostLimits {
	if l.MaxGrowth <= 0 || math.IsNaN(l.MaxGrowth) {
		l.MaxGrowth = DefaultMaxGrowth
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxComputedBytes
	}
	return l
}

// Cost is the static estimate of the strings a query computes per row:
// Growth·L + Bytes bytes, L being the longest stored string value.
type Cost struct {
	Growth float64
	Bytes  float64
}

func (c Cost) add(d Cost) Cost      { return Cost{c.Growth + d.Growth, c.Bytes + d.Bytes} }
func (c Cost) scale(f float64) Cost { return Cost{c.Growth * f, c.Bytes * f} }

// Bound is the cost in bytes for a longest stored string value of l bytes.
func (c Cost) Bound(l int64) float64 { return c.Growth*float64(l) + c.Bytes }

// EstimateCost returns the total cost of an expression: the sum of the
// sizes of every string its functions make.
func EstimateCost(e Expr) Cost {
	var total Cost
	size(e, &total)
	return total
}

// size returns the bound on the length in bytes of e's value when it is a
// string (zero for other types) and adds what e's functions make to total.
func size(e Expr, total *Cost) Cost {
	switch e := e.(type) {
	case *Literal:
		if e.Kind == StringLit || e.Kind == GuidLit {
			return Cost{Bytes: float64(len(e.Str))}
		}
		return Cost{}
	case *Member, *Param:
		return Cost{Growth: 1}
	case *Unary:
		size(e.X, total)
		return Cost{}
	case *Binary:
		size(e.L, total)
		size(e.R, total)
		return Cost{}
	case *Logical:
		for _, t := range e.Terms {
			size(t, total)
		}
		return Cost{}
	case *Call:
		args := make([]Cost, len(e.Args))
		for i, a := range e.Args {
			args[i] = size(a, total)
		}
		var out Cost
		switch e.Func {
		case "concat":
			for _, a := range args {
				out = out.add(a)
			}
		case "replace":
			if len(args) != 3 {
				return Cost{}
			}
			out = args[0].scale(replaceGrowth(e.Args[1], e.Args[2]))
		case "substring", "trim", "endswith":
			if len(args) > 0 {
				out = args[0]
			}
		case "tolower", "toupper":
			if len(args) > 0 {
				out = args[0].scale(caseMappingGrowth)
			}
		default:
			return Cost{}
		}
		*total = total.add(out)
		if e.Func == "endswith" {
			return Cost{} // a Boolean
		}
		return out
	}
	return Cost{}
}

// replaceGrowth is the factor replace(s, f, r) can multiply s by. The
// compiler only accepts a literal r; anything else is counted as
// unbounded.
func replaceGrowth(f, r Expr) float64 {
	rl, ok := r.(*Literal)
	if !ok || rl.Kind != StringLit {
		return math.Inf(1)
	}
	fl := 1
	if l, ok := f.(*Literal); ok && (l.Kind == StringLit || l.Kind == GuidLit) {
		if len(l.Str) == 0 {
			return 1 // replace with an empty pattern returns s unchanged
		}
		fl = len(l.Str)
	}
	return math.Max(1, float64(len(rl.Str))/float64(fl))
}

// QueryCost is the cost of a query's $filter and $orderby together.
func QueryCost(q *Query) Cost {
	c := EstimateCost(q.Filter)
	for _, k := range q.OrderBy {
		c = c.add(EstimateCost(k.Expr))
	}
	return c
}

// checkCost refuses a query whose estimated cost exceeds the limits, naming
// the option at which the budget ran out.
func checkCost(q *Query, l CostLimits) error {
	l = l.withDefaults()
	c := EstimateCost(q.Filter)
	if err := costError("$filter", c, l); err != nil {
		return err
	}
	for _, k := range q.OrderBy {
		c = c.add(EstimateCost(k.Expr))
		if err := costError("$orderby", c, l); err != nil {
			return err
		}
	}
	return nil
}

func costError(option string, c Cost, l CostLimits) error {
	if c.Growth > l.MaxGrowth {
		return &LimitError{Option: option, Max: int(l.MaxGrowth), Msg: fmt.Sprintf(
			"%s: the query is too expensive: its functions could compute strings of %s times the size of the stored values for every row (maximum %s); use fewer concat, replace, substring, trim, tolower or toupper calls, or shorter replacement strings",
			option, formatFactor(c.Growth), formatFactor(l.MaxGrowth))}
	}
	if c.Bytes > float64(l.MaxBytes) {
		return &LimitError{Option: option, Max: int(l.MaxBytes), Msg: fmt.Sprintf(
			"%s: the query is too expensive: its functions could compute %s bytes from its literals for every row (maximum %d); use shorter literals or fewer replace calls",
			option, formatFactor(c.Bytes), l.MaxBytes)}
	}
	return nil
}

func formatFactor(f float64) string {
	switch {
	case math.IsInf(f, 1) || f > 1e15:
		return "unboundedly many"
	case f == math.Trunc(f):
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.1f", f)
}
