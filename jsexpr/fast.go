package jsexpr

import (
	"math"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/token"
)

// The commonest config expressions only compare fields of the doc with
// literals: `doc.type === 'data_record' && doc.form === 'P'` (outbound
// relevant_to, bool_expr). Truthy decides those in Go, straight on the
// caller's values, instead of copying the whole (hydrated) doc into a fresh
// runtime: about 150 µs per evaluation, paid for every change and every
// push of a backlog.
//
// Only what has a single JavaScript meaning on JSON-like values is
// accepted: identifiers of globals, member access with a dot, string,
// number, boolean and null literals, !, &&, || and the strict equalities.
// Anything else (a call, ==, [], a template, a global that is not given…)
// is left to goja. At run time an evaluation that could throw, or whose
// answer depends on the JavaScript built-ins, gives up and goja runs the
// expression, so the result and the error are goja's: a member of null or
// undefined (TypeError), a member of a string, number or array other than
// an array's length, a key the object lacks whose name Object.prototype has
// (`doc.constructor`), a comparison of objects (identity), a value that is
// not JSON-like. TestFastTruthyAgreesWithGoja holds the two to the same
// answers.

// fastExpr is a node of an expression Truthy can decide in Go. eval returns
// ok false when goja must decide.
type fastExpr interface {
	eval(globals map[string]any) (v any, ok bool)
}

// undefinedValue is JavaScript's undefined (nil is null).
type undefinedValue struct{}

type (
	fastGlobal string
	fastMember struct {
		obj  fastExpr
		name string
	}
	fastLiteral struct{ v any }
	fastNot     struct{ x fastExpr }
	fastLogical struct {
		and         bool
		left, right fastExpr
	}
	fastEqual struct {
		negate      bool
		left, right fastExpr
	}
)

// compileFast returns the Go evaluator of a script made of one expression
// of the accepted kinds, nil for any other script.
func compileFast(body []ast.Statement) fastExpr {
	if len(body) != 1 {
		return nil
	}
	st, ok := body[0].(*ast.ExpressionStatement)
	if !ok {
		return nil
	}
	return fastNode(st.Expression, 0)
}

// fastMaxDepth bounds the nesting accepted (a real expression has a few
// levels; the bound keeps recursion shallow on any source).
const fastMaxDepth = 64

func fastNode(e ast.Expression, depth int) fastExpr {
	if depth > fastMaxDepth {
		return nil
	}
	switch x := e.(type) {
	case *ast.Identifier:
		return fastGlobal(x.Name.String())
	case *ast.DotExpression:
		obj := fastNode(x.Left, depth+1)
		if obj == nil {
			return nil
		}
		return fastMember{obj: obj, name: x.Identifier.Name.String()}
	case *ast.StringLiteral:
		return fastLiteral{v: x.Value.String()}
	case *ast.NumberLiteral:
		switch n := x.Value.(type) {
		case float64:
			return fastLiteral{v: n}
		case int64:
			if n > -(1<<53) && n < 1<<53 {
				return fastLiteral{v: float64(n)}
			}
		}
		return nil
	case *ast.BooleanLiteral:
		return fastLiteral{v: x.Value}
	case *ast.NullLiteral:
		return fastLiteral{v: nil}
	case *ast.UnaryExpression:
		if x.Operator != token.NOT || x.Postfix {
			return nil
		}
		if o := fastNode(x.Operand, depth+1); o != nil {
			return fastNot{x: o}
		}
		return nil
	case *ast.BinaryExpression:
		l, r := fastNode(x.Left, depth+1), fastNode(x.Right, depth+1)
		if l == nil || r == nil {
			return nil
		}
		switch x.Operator {
		case token.LOGICAL_AND, token.LOGICAL_OR:
			return fastLogical{and: x.Operator == token.LOGICAL_AND, left: l, right: r}
		case token.STRICT_EQUAL, token.STRICT_NOT_EQUAL:
			return fastEqual{negate: x.Operator == token.STRICT_NOT_EQUAL, left: l, right: r}
		}
	}
	return nil
}

func (g fastGlobal) eval(globals map[string]any) (any, bool) {
	v, ok := globals[string(g)]
	if !ok || !jsonLike(v) {
		return nil, false // a built-in, or a ReferenceError: goja's
	}
	return v, true
}

func (m fastMember) eval(globals map[string]any) (any, bool) {
	obj, ok := m.obj.eval(globals)
	if !ok {
		return nil, false
	}
	switch o := obj.(type) {
	case map[string]any:
		if objectProtoName(m.name) {
			return nil, false
		}
		v, has := o[m.name]
		if !has {
			return undefinedValue{}, true
		}
		if !jsonLike(v) {
			return nil, false
		}
		return v, true
	case []any:
		if m.name == "length" {
			return float64(len(o)), true
		}
	}
	return nil, false
}

func (l fastLiteral) eval(map[string]any) (any, bool) { return l.v, true }

func (n fastNot) eval(globals map[string]any) (any, bool) {
	v, ok := n.x.eval(globals)
	return !truthy(v), ok
}

func (l fastLogical) eval(globals map[string]any) (any, bool) {
	v, ok := l.left.eval(globals)
	if !ok || truthy(v) != l.and {
		return v, ok // && stops at a falsy value, || at a truthy one
	}
	return l.right.eval(globals)
}

func (e fastEqual) eval(globals map[string]any) (any, bool) {
	a, ok := e.left.eval(globals)
	if !ok {
		return nil, false
	}
	b, ok := e.right.eval(globals)
	if !ok {
		return nil, false
	}
	eq, ok := strictEqual(a, b)
	return eq != e.negate, ok
}

// strictEqual is === on primitives; objects and arrays compare by
// identity in JavaScript, which the copies into goja decide: not here.
func strictEqual(a, b any) (eq, ok bool) {
	switch x := a.(type) {
	case undefinedValue:
		_, same := b.(undefinedValue)
		return same, isPrimitive(b)
	case nil:
		return b == nil, isPrimitive(b)
	case bool:
		y, same := b.(bool)
		return same && x == y, isPrimitive(b)
	case float64:
		y, same := b.(float64)
		return same && x == y, isPrimitive(b) // NaN unequal, +0 === -0: as Go's ==
	case string:
		y, same := b.(string)
		return same && x == y, isPrimitive(b)
	}
	return false, false
}

func isPrimitive(v any) bool {
	switch v.(type) {
	case undefinedValue, nil, bool, float64, string:
		return true
	}
	return false
}

// jsonLike reports whether v is a value whose copy into goja the fast
// path can stand for (maps and slices are checked where they are read).
func jsonLike(v any) bool {
	switch v.(type) {
	case nil, bool, float64, string, map[string]any, []any:
		return true
	}
	return false
}

// truthy is JavaScript's ToBoolean on the values above.
func truthy(v any) bool {
	switch x := v.(type) {
	case undefinedValue, nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true // objects and arrays
}

// objectProtoName reports whether every plain object has a property of
// that name (from Object.prototype): a key of that name means something
// else in JavaScript than in the doc, present or not.
func objectProtoName(name string) bool {
	switch name {
	case "constructor", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable",
		"toLocaleString", "toString", "valueOf", "__proto__",
		"__defineGetter__", "__defineSetter__", "__lookupGetter__", "__lookupSetter__":
		return true
	}
	return false
}
