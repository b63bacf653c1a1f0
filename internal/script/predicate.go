package script

import (
	"encoding/json"
	"fmt"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"

	"github.com/gatehouse/gatehouse/internal/odata"
)

// translatePredicate turns a where(function) predicate into OData, as the original's QueryJS did:
// the function's single return expression over this.<column>, its parameters (bound to the extra
// arguments of where) and literals, with comparisons, &&, ||, !, arithmetic and the string, date and
// Math methods OData has. Anything else is refused with the construct named.
func translatePredicate(src string, args []any) (odata.Expr, error) {
	prog, err := parser.ParseFile(nil, "where", "("+src+")", 0)
	if err != nil {
		return nil, fmt.Errorf("where: the predicate does not parse: %v", err)
	}
	if len(prog.Body) != 1 {
		return nil, fmt.Errorf("where: expected a function")
	}
	es, ok := prog.Body[0].(*ast.ExpressionStatement)
	if !ok {
		return nil, fmt.Errorf("where: expected a function")
	}
	var params []*ast.Binding
	var body ast.Statement
	switch f := es.Expression.(type) {
	case *ast.FunctionLiteral:
		params, body = f.ParameterList.List, f.Body
	case *ast.ArrowFunctionLiteral:
		return nil, fmt.Errorf("where: arrow functions cannot use 'this'; use function () { return this.column ... }")
	default:
		return nil, fmt.Errorf("where: expected a function")
	}
	tr := &predTranslator{vars: map[string]any{}}
	for i, p := range params {
		id, ok := p.Target.(*ast.Identifier)
		if !ok {
			return nil, fmt.Errorf("where: destructured parameters are not supported")
		}
		var v any
		if i < len(args) {
			v = args[i]
		}
		tr.vars[string(id.Name)] = v
	}
	block, ok := body.(*ast.BlockStatement)
	if !ok || len(block.List) != 1 {
		return nil, fmt.Errorf("where: the predicate must be a single 'return <expression>;'")
	}
	ret, ok := block.List[0].(*ast.ReturnStatement)
	if !ok || ret.Argument == nil {
		return nil, fmt.Errorf("where: the predicate must be a single 'return <expression>;'")
	}
	return tr.expr(ret.Argument)
}

type predTranslator struct {
	vars map[string]any
}

// value is either an OData expression or a constant known at translation time (parameters).
type predValue struct {
	expr  odata.Expr
	konst any
	isK   bool
	str   bool // a string-valued expression (concat result)
}

func (t *predTranslator) expr(e ast.Expression) (odata.Expr, error) {
	v, err := t.val(e)
	if err != nil {
		return nil, err
	}
	return t.toExpr(v)
}

func (t *predTranslator) toExpr(v predValue) (odata.Expr, error) {
	if !v.isK {
		return v.expr, nil
	}
	return literal(v.konst)
}

func konst(v any) predValue { return predValue{konst: v, isK: true} }

func (t *predTranslator) val(e ast.Expression) (predValue, error) {
	switch x := e.(type) {
	case *ast.StringLiteral:
		return konst(string(x.Value)), nil
	case *ast.NumberLiteral:
		switch n := x.Value.(type) {
		case int64:
			return konst(json.Number(fmt.Sprint(n))), nil
		case float64:
			return konst(n), nil
		}
		return konst(x.Value), nil
	case *ast.BooleanLiteral:
		return konst(x.Value), nil
	case *ast.NullLiteral:
		return konst(nil), nil
	case *ast.Identifier:
		name := string(x.Name)
		if v, ok := t.vars[name]; ok {
			return konst(v), nil
		}
		if name == "undefined" {
			return konst(nil), nil
		}
		return predValue{}, fmt.Errorf("where: unknown name '%s' (pass values as extra arguments of where)", name)
	case *ast.DotExpression:
		name := string(x.Identifier.Name)
		if _, ok := x.Left.(*ast.ThisExpression); ok {
			return predValue{expr: odata.Ident(name)}, nil
		}
		left, err := t.val(x.Left)
		if err != nil {
			return predValue{}, err
		}
		if left.isK {
			if m, ok := left.konst.(map[string]any); ok {
				return konst(m[name]), nil
			}
			if s, ok := left.konst.(string); ok && name == "length" {
				return konst(float64(len([]rune(s)))), nil
			}
			return predValue{}, fmt.Errorf("where: cannot read '%s' of a constant", name)
		}
		if name == "length" {
			return predValue{expr: odata.NewCall("length", left.expr)}, nil
		}
		return predValue{}, fmt.Errorf("where: member '%s' is not supported (only this.<column>)", name)
	case *ast.UnaryExpression:
		op, err := t.val(x.Operand)
		if err != nil {
			return predValue{}, err
		}
		ex, err := t.toExpr(op)
		if err != nil {
			return predValue{}, err
		}
		switch x.Operator {
		case token.NOT:
			return predValue{expr: odata.Not(ex)}, nil
		case token.MINUS:
			if op.isK {
				if f, ok := toFloat(op.konst); ok {
					return konst(-f), nil
				}
			}
			return predValue{expr: &odata.Unary{Op: odata.OpNeg, X: ex}}, nil
		case token.PLUS:
			return op, nil
		}
		return predValue{}, fmt.Errorf("where: operator '%s' is not supported", x.Operator)
	case *ast.BinaryExpression:
		l, err := t.val(x.Left)
		if err != nil {
			return predValue{}, err
		}
		r, err := t.val(x.Right)
		if err != nil {
			return predValue{}, err
		}
		if x.Operator == token.IN {
			return t.in(l, r)
		}
		le, err := t.toExpr(l)
		if err != nil {
			return predValue{}, err
		}
		re, err := t.toExpr(r)
		if err != nil {
			return predValue{}, err
		}
		switch x.Operator {
		case token.LOGICAL_AND:
			return predValue{expr: odata.And(le, re)}, nil
		case token.LOGICAL_OR:
			return predValue{expr: odata.Or(le, re)}, nil
		case token.PLUS:
			_, ls := l.konst.(string)
			_, rs := r.konst.(string)
			if (l.isK && ls) || (r.isK && rs) || l.str || r.str {
				return predValue{expr: odata.NewCall("concat", le, re), str: true}, nil
			}
		}
		ops := map[token.Token]odata.BinaryOp{
			token.EQUAL: odata.OpEq, token.STRICT_EQUAL: odata.OpEq, token.NOT_EQUAL: odata.OpNe, token.STRICT_NOT_EQUAL: odata.OpNe,
			token.LESS: odata.OpLt, token.LESS_OR_EQUAL: odata.OpLe, token.GREATER: odata.OpGt, token.GREATER_OR_EQUAL: odata.OpGe,
			token.PLUS: odata.OpAdd, token.MINUS: odata.OpSub, token.MULTIPLY: odata.OpMul, token.SLASH: odata.OpDiv, token.REMAINDER: odata.OpMod,
		}
		op, ok := ops[x.Operator]
		if !ok {
			return predValue{}, fmt.Errorf("where: operator '%s' is not supported", x.Operator)
		}
		return predValue{expr: odata.Compare(op, le, re)}, nil
	case *ast.CallExpression:
		return t.call(x)
	case *ast.ConditionalExpression:
		return predValue{}, fmt.Errorf("where: the conditional operator (?:) is not supported")
	}
	return predValue{}, fmt.Errorf("where: %T is not supported in a predicate", e)
}

// in translates `this.col in values` as the original's QueryJS did: values is an array (a where
// argument) of constants, or of objects with exactly one property whose value is used; the result is
// col == v1 || col == v2 ...; an empty array can never match (true == false).
func (t *predTranslator) in(l, r predValue) (predValue, error) {
	arr, ok := r.konst.([]any)
	if !r.isK || !ok {
		return predValue{}, fmt.Errorf("where: the right side of 'in' must be an array passed as an argument of where")
	}
	left, err := t.toExpr(l)
	if err != nil {
		return predValue{}, err
	}
	if len(arr) == 0 {
		return predValue{expr: odata.Eq(odata.Bool(true), odata.Bool(false))}, nil
	}
	var out odata.Expr
	for _, v := range arr {
		if m, ok := v.(map[string]any); ok {
			if len(m) != 1 {
				return predValue{}, fmt.Errorf("where: 'in' requires comparison objects with a single field")
			}
			for _, one := range m {
				v = one
			}
		}
		lit, err := literal(v)
		if err != nil {
			return predValue{}, fmt.Errorf("where: 'in': %w", err)
		}
		eq := odata.Eq(left, lit)
		if out == nil {
			out = eq
		} else {
			out = odata.Or(out, eq)
		}
	}
	return predValue{expr: out}, nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func (t *predTranslator) call(c *ast.CallExpression) (predValue, error) {
	dot, ok := c.Callee.(*ast.DotExpression)
	if !ok {
		return predValue{}, fmt.Errorf("where: only method calls such as this.name.toLowerCase() are supported")
	}
	method := string(dot.Identifier.Name)
	args := make([]odata.Expr, len(c.ArgumentList))
	for i, a := range c.ArgumentList {
		e, err := t.expr(a)
		if err != nil {
			return predValue{}, err
		}
		args[i] = e
	}
	if id, ok := dot.Left.(*ast.Identifier); ok && id.Name == "Math" {
		fn := map[string]string{"floor": "floor", "ceil": "ceiling", "round": "round"}[method]
		if fn == "" || len(args) != 1 {
			return predValue{}, fmt.Errorf("where: Math.%s is not supported", method)
		}
		return predValue{expr: odata.NewCall(fn, args[0])}, nil
	}
	recv, err := t.expr(dot.Left)
	if err != nil {
		return predValue{}, err
	}
	arity := func(n ...int) error {
		for _, k := range n {
			if len(args) == k {
				return nil
			}
		}
		return fmt.Errorf("where: wrong number of arguments to %s", method)
	}
	switch method {
	case "toLowerCase", "toLocaleLowerCase":
		return predValue{expr: odata.NewCall("tolower", recv)}, arity(0)
	case "toUpperCase", "toLocaleUpperCase":
		return predValue{expr: odata.NewCall("toupper", recv)}, arity(0)
	case "trim":
		return predValue{expr: odata.NewCall("trim", recv)}, arity(0)
	case "indexOf", "concat":
		if err := arity(1); err != nil {
			return predValue{}, err
		}
		return predValue{expr: odata.NewCall(map[string]string{"indexOf": "indexof", "concat": "concat"}[method], recv, args[0])}, nil
	case "substr":
		if err := arity(1, 2); err != nil {
			return predValue{}, err
		}
		return predValue{expr: odata.NewCall("substring", append([]odata.Expr{recv}, args...)...)}, nil
	case "substring":
		if err := arity(1, 2); err != nil {
			return predValue{}, err
		}
		if len(args) == 1 {
			return predValue{expr: odata.NewCall("substring", recv, args[0])}, nil
		}
		return predValue{expr: odata.NewCall("substring", recv, args[0], odata.Compare(odata.OpSub, args[1], args[0]))}, nil
	case "replace":
		if err := arity(2); err != nil {
			return predValue{}, err
		}
		return predValue{expr: odata.NewCall("replace", recv, args[0], args[1]), str: true}, nil
	case "getFullYear", "getUTCFullYear":
		return predValue{expr: odata.NewCall("year", recv)}, arity(0)
	case "getYear": // years since 1900, as Date.prototype.getYear and the original's QueryJS
		return predValue{expr: odata.Compare(odata.OpSub, odata.NewCall("year", recv), odata.Num(1900))}, arity(0)
	case "getMonth", "getUTCMonth":
		return predValue{expr: odata.Compare(odata.OpSub, odata.NewCall("month", recv), odata.Num(1))}, arity(0)
	case "getDate", "getUTCDate":
		return predValue{expr: odata.NewCall("day", recv)}, arity(0)
	case "getHours", "getUTCHours":
		return predValue{expr: odata.NewCall("hour", recv)}, arity(0)
	case "getMinutes", "getUTCMinutes":
		return predValue{expr: odata.NewCall("minute", recv)}, arity(0)
	case "getSeconds", "getUTCSeconds":
		return predValue{expr: odata.NewCall("second", recv)}, arity(0)
	}
	return predValue{}, fmt.Errorf("where: method '%s' is not supported", method)
}
