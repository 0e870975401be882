package validation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"sentinel-go/jsv"
)

// The rule language (validations.md §2):
//
//	rule    := ε | expr
//	expr    := chain [ '?' expr ':' expr ]
//	chain   := unary { ('&&' | '||') unary }        left to right, no precedence
//	unary   := '!' unary | '(' expr ')' | call
//	call    := name [ '(' [ arg { ',' arg } ] ')' ]
//	arg     := '…' | "…" | number
//
// So a ternary's condition is the whole chain before '?' (within its
// parentheses, or the whole rule) and its else-branch runs to the closing
// parenthesis or the end of the rule. `!` applies to the term right after it.

// maxDepth bounds nesting of parentheses, `!` and ternaries so that hostile
// rule text cannot exhaust the stack.
const maxDepth = 200

// ParseError is a rule that is not valid rule language.
type ParseError struct {
	Rule   string // the rule text
	Offset int    // byte offset of the problem in Rule
	Msg    string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("invalid validation rule %q: %s at offset %d", e.Rule, e.Msg, e.Offset)
}

// Rule is a compiled validation rule; it is safe for concurrent use.
type Rule struct {
	src  string
	root node // nil for the empty rule
	// calls lists every call in textual order.
	calls []*callNode
}

// String returns the rule text.
func (r *Rule) String() string { return r.src }

// UnknownFunctions returns the names of called functions that do not exist
// (those calls are always true), in order of appearance, without duplicates.
func (r *Rule) UnknownFunctions() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range r.calls {
		if c.fn == nil && !seen[c.name] {
			seen[c.name] = true
			out = append(out, c.name)
		}
	}
	return out
}

type node interface {
	eval(ec *evalCtx) (bool, error)
}

type notNode struct{ x node }

type chainNode struct {
	first node
	ops   []byte // '&' or '|'
	rest  []node
}

type ternaryNode struct{ cond, then, els node }

type callNode struct {
	name  string // as written
	fn    *function
	other bool // otherName('field', …): fn runs on field's value
	field string
	args  []any // string or float64
	// re is the precompiled pattern of regex() with literal arguments.
	re *jsRegexp
}

// Compile parses rule text. The empty (or blank) rule is always true.
func Compile(rule string) (*Rule, error) {
	p := &parser{src: rule}
	if err := p.lex(); err != nil {
		return nil, err
	}
	r := &Rule{src: rule}
	if len(p.toks) == 1 { // only EOF
		return r, nil
	}
	root, err := p.parseExpr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errAt(t, "unexpected "+t.describe())
	}
	r.root = root
	r.calls = p.calls
	return r, nil
}

var ruleCache sync.Map // rule text -> compiled (*Rule or error)

type cached struct {
	rule *Rule
	err  error
}

// compileCached compiles rule text once per process (used for entries that
// did not come through ParseConfig).
func compileCached(rule string) (*Rule, error) {
	if c, ok := ruleCache.Load(rule); ok {
		return c.(cached).rule, c.(cached).err
	}
	r, err := Compile(rule)
	ruleCache.Store(rule, cached{r, err})
	return r, err
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokName
	tokString
	tokNumber
	tokLParen
	tokRParen
	tokComma
	tokAnd
	tokOr
	tokNot
	tokQuestion
	tokColon
)

type token struct {
	kind tokKind
	pos  int
	text string  // name, string contents, or source text
	num  float64 // tokNumber
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of rule"
	case tokString:
		return "string " + strconv.Quote(t.text)
	default:
		return strconv.Quote(t.text)
	}
}

type parser struct {
	src   string
	toks  []token
	i     int
	calls []*callNode
}

func (p *parser) errAt(t token, msg string) *ParseError {
	return &ParseError{Rule: p.src, Offset: t.pos, Msg: msg}
}

func isNameStart(r rune) bool { return r == '_' || r == '$' || unicode.IsLetter(r) }
func isNamePart(r rune) bool  { return isNameStart(r) || unicode.IsDigit(r) }

func (p *parser) lex() error {
	s := p.src
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			i++
			continue
		case c == '(':
			p.toks = append(p.toks, token{kind: tokLParen, pos: i, text: "("})
			i++
		case c == ')':
			p.toks = append(p.toks, token{kind: tokRParen, pos: i, text: ")"})
			i++
		case c == ',':
			p.toks = append(p.toks, token{kind: tokComma, pos: i, text: ","})
			i++
		case c == '?':
			p.toks = append(p.toks, token{kind: tokQuestion, pos: i, text: "?"})
			i++
		case c == ':':
			p.toks = append(p.toks, token{kind: tokColon, pos: i, text: ":"})
			i++
		case c == '!':
			p.toks = append(p.toks, token{kind: tokNot, pos: i, text: "!"})
			i++
		case c == '&' || c == '|':
			if i+1 >= len(s) || s[i+1] != c {
				return &ParseError{Rule: s, Offset: i, Msg: fmt.Sprintf("unexpected %q (operators are && and ||)", string(c))}
			}
			kind := tokAnd
			if c == '|' {
				kind = tokOr
			}
			p.toks = append(p.toks, token{kind: kind, pos: i, text: s[i : i+2]})
			i += 2
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return &ParseError{Rule: s, Offset: i, Msg: "unterminated string"}
			}
			p.toks = append(p.toks, token{kind: tokString, pos: i, text: s[i+1 : i+1+end]})
			i += end + 2
		case c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+':
			n := numberPrefix(s[i:])
			if n == 0 {
				return &ParseError{Rule: s, Offset: i, Msg: fmt.Sprintf("unexpected %q", string(c))}
			}
			f, err := strconv.ParseFloat(s[i:i+n], 64)
			if err != nil && !isRangeErr(err) {
				return &ParseError{Rule: s, Offset: i, Msg: "invalid number " + strconv.Quote(s[i:i+n])}
			}
			p.toks = append(p.toks, token{kind: tokNumber, pos: i, text: s[i : i+n], num: f})
			i += n
			if i < len(s) {
				if r := rune(s[i]); isNamePart(r) || r >= 0x80 {
					return &ParseError{Rule: s, Offset: i, Msg: "unexpected text after number"}
				}
			}
		default:
			r, size := decodeRune(s[i:])
			if !isNameStart(r) {
				if unicode.IsSpace(r) {
					i += size
					continue
				}
				return &ParseError{Rule: s, Offset: i, Msg: fmt.Sprintf("unexpected %q (only quoted strings and numbers are arguments)", string(r))}
			}
			j := i + size
			for j < len(s) {
				r, size := decodeRune(s[j:])
				if !isNamePart(r) {
					break
				}
				j += size
			}
			p.toks = append(p.toks, token{kind: tokName, pos: i, text: s[i:j]})
			i = j
		}
	}
	p.toks = append(p.toks, token{kind: tokEOF, pos: len(s)})
	return nil
}

func isRangeErr(err error) bool {
	return errors.Is(err, strconv.ErrRange)
}

// numberPrefix returns the length of the unquoted number at the start of s:
// [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?, or 0.
func numberPrefix(s string) int {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) parseExpr(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errAt(p.peek(), "rule nested too deeply")
	}
	cond, err := p.parseChain(depth)
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tokQuestion {
		return cond, nil
	}
	p.next()
	then, err := p.parseExpr(depth + 1)
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tokColon {
		return nil, p.errAt(t, "expected \":\" of the ternary, found "+t.describe())
	}
	els, err := p.parseExpr(depth + 1)
	if err != nil {
		return nil, err
	}
	return &ternaryNode{cond: cond, then: then, els: els}, nil
}

func (p *parser) parseChain(depth int) (node, error) {
	first, err := p.parseUnary(depth)
	if err != nil {
		return nil, err
	}
	var chain *chainNode
	for {
		t := p.peek()
		if t.kind != tokAnd && t.kind != tokOr {
			break
		}
		p.next()
		x, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		if chain == nil {
			chain = &chainNode{first: first}
		}
		chain.ops = append(chain.ops, t.text[0])
		chain.rest = append(chain.rest, x)
	}
	if chain == nil {
		return first, nil
	}
	return chain, nil
}

func (p *parser) parseUnary(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errAt(p.peek(), "rule nested too deeply")
	}
	t := p.next()
	switch t.kind {
	case tokNot:
		x, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	case tokLParen:
		x, err := p.parseExpr(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, p.errAt(c, "expected \")\", found "+c.describe())
		}
		return x, nil
	case tokName:
		return p.parseCall(t)
	default:
		return nil, p.errAt(t, "expected a function call, found "+t.describe())
	}
}

func (p *parser) parseCall(name token) (node, error) {
	c := &callNode{name: name.text}
	if p.peek().kind == tokLParen {
		p.next()
		if p.peek().kind == tokRParen {
			p.next()
		} else {
			for {
				t := p.next()
				switch t.kind {
				case tokString:
					c.args = append(c.args, t.text)
				case tokNumber:
					c.args = append(c.args, t.num)
				default:
					return nil, p.errAt(t, "expected a quoted string or a number, found "+t.describe())
				}
				t = p.next()
				if t.kind == tokRParen {
					break
				}
				if t.kind != tokComma {
					return nil, p.errAt(t, "expected \",\" or \")\", found "+t.describe())
				}
			}
		}
	}
	resolve(c)
	p.calls = append(p.calls, c)
	return c, nil
}

// resolve finds the function of a call, case-insensitively, including the
// otherName('field', …) form.
func resolve(c *callNode) {
	lname := strings.ToLower(c.name)
	if fn, ok := functions[lname]; ok {
		c.fn = fn
	} else if base, ok := strings.CutPrefix(lname, "other"); ok && base != "" {
		if fn, ok := functions[base]; ok {
			c.fn = fn
			c.other = true
			if len(c.args) > 0 {
				c.field = jsv.String(c.args[0])
				c.args = c.args[1:]
			}
		}
	}
	if c.fn != nil && c.fn.name == "regex" {
		// Literal pattern: compile now; a bad pattern stays an error raised
		// when the rule runs (as JavaScript's RegExp constructor would).
		pattern, flags := regexArgs(c.args)
		c.re, _ = compileJSRegexp(pattern, flags)
	}
}

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }
