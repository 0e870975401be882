package jsexpr

import (
	"reflect"
	"sort"
	"strings"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"
)

// leftAssociate works around a parser bug of the embedded JavaScript engine
// (goja): it parses chains of relational operators (<, <=, >, >=,
// instanceof, in) right to left, so `1000 < x < 10000` runs as
// `1000 < (x < 10000)` where JavaScript means `(1000 < x) < 10000`. The
// conditions config authors wrote for the reference rely on the JavaScript
// reading (the spec even warns about it), so the source is rewritten with
// explicit parentheses before it is compiled: `(1000 < x) < 10000`. Sources
// without such chains, or that do not parse, come back unchanged.
//
// prefix and suffix are put around src for parsing only (CompileFunction
// sources are parsed as "(" + src + ")"). Compile and CompileFunction apply
// it to every expression of the config.
func leftAssociate(src, prefix, suffix string) string {
	full := prefix + src + suffix
	file, err := parser.ParseFile(nil, "", full, 0, parser.WithDisableSourceMaps)
	if err != nil {
		return src
	}
	fx := &chainFixer{src: full, stmtStarts: map[int]bool{}}
	fx.collect(reflect.ValueOf(file))
	fx.walk(reflect.ValueOf(file))
	if len(fx.inserts) == 0 {
		return src
	}
	sort.SliceStable(fx.inserts, func(i, j int) bool { return fx.inserts[i].pos > fx.inserts[j].pos })
	out := full
	for _, in := range fx.inserts {
		text := in.text
		if fx.stmtStarts[in.pos] && endsExpression(out[:in.pos]) {
			// A statement starting with "(" would continue the previous
			// line's expression (a call) when that line has no semicolon;
			// "0, " starts it with a token that cannot, and leaves its
			// value unchanged.
			text = "0, " + text
		}
		out = out[:in.pos] + text + out[in.pos:]
	}
	if _, err := parser.ParseFile(nil, "", out, 0, parser.WithDisableSourceMaps); err != nil {
		return src // cannot happen; never make a working source fail
	}
	return out[len(prefix) : len(out)-len(suffix)]
}

// endsExpression reports whether the last significant character of s may
// end an expression, so that a "(" after it would read as a call.
func endsExpression(s string) bool {
	s = strings.TrimRight(s, " \t\n\r\v\f\u00a0\ufeff\u2028\u2029")
	if s == "" {
		return false
	}
	return !strings.ContainsAny(s[len(s)-1:], "(;{,=:?![&|^~<>*%")
}

type chainInsert struct {
	pos  int
	text string
}

// chainFixer finds the relational chains of one parsed source.
type chainFixer struct {
	src      string
	literals [][2]int // offsets of string, template-text and regexp literals
	// stmtStarts are the offsets where expression statements start.
	stmtStarts map[int]bool
	inserts    []chainInsert
}

var nodeType = reflect.TypeOf((*ast.Node)(nil)).Elem()

func isRelational(e ast.Expression) (*ast.BinaryExpression, bool) {
	b, ok := e.(*ast.BinaryExpression)
	if !ok || b == nil {
		return nil, false
	}
	switch b.Operator {
	case token.LESS, token.LESS_OR_EQUAL, token.GREATER, token.GREATER_OR_EQUAL, token.INSTANCEOF, token.IN:
		return b, true
	}
	return nil, false
}

// children calls fn for every AST node directly or indirectly held by v
// that is not itself inside another node (i.e. the next level of nodes).
func children(v reflect.Value, fn func(ast.Node)) {
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			children(v.Elem(), fn)
		}
	case reflect.Ptr:
		if v.IsNil() {
			return
		}
		if v.Type().Implements(nodeType) && v.CanInterface() {
			fn(v.Interface().(ast.Node))
			return
		}
		children(v.Elem(), fn)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				children(v.Field(i), fn)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			children(v.Index(i), fn)
		}
	}
}

// eachNode calls fn on n and every node below it.
func eachNode(n ast.Node, fn func(ast.Node)) {
	fn(n)
	children(reflect.ValueOf(n).Elem(), func(c ast.Node) { eachNode(c, fn) })
}

// span is the source extent [start, end) of n as offsets: the smallest
// start and largest end over n and its descendants (some node types leave
// parts such as a template's tag out of their own positions).
func (fx *chainFixer) span(n ast.Node) (start, end int) {
	start, end = -1, -1
	eachNode(n, func(c ast.Node) {
		if i0 := int(c.Idx0()) - 1; i0 >= 0 && (start < 0 || i0 < start) {
			start = i0
		}
		if i1 := int(c.Idx1()) - 1; i1 >= 0 && i1 > end && i1 <= len(fx.src) {
			end = i1
		}
	})
	return start, end
}

// collect records the literals and the starts of expression statements.
func (fx *chainFixer) collect(v reflect.Value) {
	children(v, func(n ast.Node) {
		switch n.(type) {
		case *ast.StringLiteral, *ast.TemplateElement, *ast.RegExpLiteral:
			s, e := fx.span(n)
			fx.literals = append(fx.literals, [2]int{s, e})
			return
		case *ast.ExpressionStatement:
			if s, _ := fx.span(n); s >= 0 {
				fx.stmtStarts[s] = true
			}
		}
		fx.collect(reflect.ValueOf(n).Elem())
	})
}

// scanParens calls fn for each "(" and ")" of src[from:to] outside
// literals and comments.
func (fx *chainFixer) scanParens(from, to int, fn func(open bool)) {
	for i := from; i < to && i < len(fx.src); i++ {
		skipped := false
		for _, l := range fx.literals {
			if i >= l[0] && i < l[1] {
				i, skipped = l[1]-1, true
				break
			}
		}
		if skipped {
			continue
		}
		switch {
		case strings.HasPrefix(fx.src[i:], "//"):
			if j := strings.IndexAny(fx.src[i:], "\n\r\u2028\u2029"); j >= 0 {
				i += j
			} else {
				i = len(fx.src)
			}
		case strings.HasPrefix(fx.src[i:], "/*"):
			if j := strings.Index(fx.src[i+2:], "*/"); j >= 0 {
				i += j + 3
			} else {
				i = len(fx.src)
			}
		case fx.src[i] == '(':
			fn(true)
		case fx.src[i] == ')':
			fn(false)
		}
	}
}

// parenthesized reports whether r, the right operand of b, was written in
// parentheses (the parser keeps no trace of them). Between b's left operand
// and r there may be ")" closing the left operand's own parentheses, the
// operator, and "(" that open either around r or around a leading part of
// r. Scanning r, a ")" with no "(" of r's own open closes one of the
// latter; any still open at r's end wraps r.
func (fx *chainFixer) parenthesized(b, r *ast.BinaryExpression) bool {
	_, leftEnd := fx.span(b.Left)
	rStart, rEnd := fx.span(r)
	if leftEnd < 0 || rStart < leftEnd {
		return true // positions unknown: leave it alone
	}
	outer := 0
	fx.scanParens(leftEnd, rStart, func(open bool) {
		if open {
			outer++
		}
	})
	inner := 0
	fx.scanParens(rStart, rEnd, func(open bool) {
		switch {
		case open:
			inner++
		case inner > 0:
			inner--
		default:
			outer--
		}
	})
	return outer > 0
}

// walk finds every chain head: a relational expression whose unparenthesized
// right operands are relational too. For x0 op1 x1 op2 x2 … opk xk it asks
// for k-1 "(" before x0 and a ")" after each of x1 … x(k-1).
func (fx *chainFixer) walk(v reflect.Value) {
	children(v, func(n ast.Node) {
		b, ok := n.(ast.Expression)
		if !ok {
			fx.walk(reflect.ValueOf(n).Elem())
			return
		}
		head, ok := isRelational(b)
		if !ok {
			fx.walk(reflect.ValueOf(n).Elem())
			return
		}
		operands := []ast.Expression{head.Left}
		cur := head
		for {
			r, ok := isRelational(cur.Right)
			if !ok || fx.parenthesized(cur, r) {
				break
			}
			operands = append(operands, r.Left)
			cur = r
		}
		operands = append(operands, cur.Right)
		if k := len(operands) - 1; k >= 2 {
			start, _ := fx.span(operands[0])
			if start >= 0 {
				fx.inserts = append(fx.inserts, chainInsert{start, strings.Repeat("(", k-1)})
				for _, x := range operands[1:k] {
					if _, end := fx.span(x); end >= 0 {
						fx.inserts = append(fx.inserts, chainInsert{end, ")"})
					}
				}
			}
		}
		for _, x := range operands {
			fx.walkNode(x)
		}
	})
}

// walkNode walks n itself (not only its children).
func (fx *chainFixer) walkNode(n ast.Node) {
	holder := struct{ N ast.Node }{n}
	fx.walk(reflect.ValueOf(holder))
}
