// Package jsexpr runs the JavaScript expressions that config authors write in
// app_settings (bool_expr, is_report_counted, alert conditions, outbound
// relevant_to, recipient expressions…) in a sandbox.
//
// The spec (transitions/README.md "Expressions") asks for a fresh sandbox per
// evaluation whose only globals are the listed variables plus the standard
// built-ins, the source run as a script whose completion value is the result,
// and a time limit whose expiry is reported like a thrown error. This package
// provides that on top of goja:
//
//   - Compile / CompileFunction parse once per config load, so syntax errors
//     surface (with line and column) when the config is loaded, not per doc.
//   - A Sandbox evaluates a Program against Go JSON-like values. Every
//     evaluation gets its own goja runtime (see Sandbox for why reuse is not
//     safe), a timer that interrupts runaway scripts, and a call-depth limit.
//   - Results come back as encoding/json-style values (map[string]any, []any,
//     string, float64, bool, nil), so callers never hold goja values.
//   - Truthy decides the commonest expressions (fields compared with
//     literals) in Go, on the caller's values, when that answer cannot
//     differ from goja's (fast.go); the rest run in goja.
//
// One deliberate difference from "all standard built-ins": eval, Function and
// the other constructors that compile strings throw EvalError, and JSON.parse
// refuses text nested deeper than 10000 levels (see harden.go for the
// crashes this prevents). Expressions have no use for either.
//
// Limits that goja cannot enforce:
//   - Memory: rely on GOMEMLIMIT.
//   - Time inside one native built-in call (one huge String.prototype.repeat,
//     a backtracking regular expression, JSON.stringify of a huge value):
//     Interrupt is only noticed between JavaScript instructions.
//   - Go stack: native built-ins recurse on nested values, and Go's stack
//     overflow is fatal. A script loop can build roughly 650k nesting levels
//     per second here, and String(), Array.prototype.flat or JSON.stringify
//     over about a million levels kill the process. The time bound is the
//     guard, so keep Options.Timeout well under a second (default 100ms:
//     ~70k levels, harmless).
package jsexpr

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

// Program is compiled once per config load; safe to share between goroutines.
//
// It wraps an immutable *goja.Program, which goja documents as usable from
// several runtimes at once, plus the original source for error messages.
type Program struct {
	name  string
	src   string
	empty bool
	fn    bool // compiled by CompileFunction: the completion value is the function
	prg   *goja.Program
	// fast decides Truthy in Go when it can (fast.go); nil for most sources.
	fast fastExpr
}

// SyntaxError reports source that does not compile. Line and Column are
// 1-based positions in the source as the config author wrote it (0 when goja
// could not tell), so they can be shown next to the settings key in Name.
type SyntaxError struct {
	Name    string // program name given to Compile, e.g. "registrations[2].events[0].bool_expr"
	Line    int
	Column  int
	Message string
}

// Error formats like a compiler diagnostic: "name:line:col: SyntaxError: msg".
func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: SyntaxError: %s", e.Name, e.Line, e.Column, e.Message)
	}
	return fmt.Sprintf("%s: SyntaxError: %s", e.Name, e.Message)
}

// Compile compiles src as a script (not a module, not strict) whose completion
// value is the expression's value, as the reference's vm.runInNewContext does.
// name labels errors; it should say where the source came from in the config.
// A syntax error is returned as a *SyntaxError.
func Compile(name, src string) (*Program, error) {
	if err := checkLength(name, src); err != nil {
		return nil, err
	}
	p := &Program{name: name, src: src, empty: strings.TrimSpace(src) == ""}
	prg, body, err := compileSource(name, leftAssociate(src, "", ""))
	if err != nil {
		return nil, err
	}
	p.prg, p.fast = prg, compileFast(body)
	return p, nil
}

// CompileFunction compiles src, the source of a function expression such as
// "function(report, latest_report) { ... }", so that Sandbox.Call can call it.
// The source is wrapped in parentheses (as the reference does) so that a
// function literal is an expression, not a declaration. Anything other than a
// single function literal is rejected here, at config load, rather than at the
// first call. A syntax error is a *SyntaxError with
// positions in src, not in the wrapped text.
func CompileFunction(name, src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &SyntaxError{Name: name, Line: 1, Column: 1, Message: "empty function source"}
	}
	if err := checkLength(name, src); err != nil {
		return nil, err
	}
	// The newline before ")" keeps a trailing // comment from swallowing it.
	wrapped := "(" + leftAssociate(src, "(", "\n)") + "\n)"
	prg, body, err := compileSource(name, wrapped)
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			unwrapPosition(se, src)
		}
		return nil, err
	}
	if !isFunctionLiteral(body) {
		return nil, &SyntaxError{Name: name, Line: 1, Column: 1, Message: "not a function expression"}
	}
	return &Program{name: name, src: src, fn: true, prg: prg}, nil
}

// MaxSourceLen bounds the length of a source in bytes. Real expressions are
// a few hundred bytes; the bound keeps pathological sources from costing
// seconds of compile time (goja compiles "1+1+…" in quadratic time: 50 s
// for 200 KB) or, around a million nesting levels, overflowing the Go stack,
// which is fatal.
const MaxSourceLen = 64 << 10

// checkLength enforces MaxSourceLen.
func checkLength(name, src string) error {
	if len(src) > MaxSourceLen {
		return &SyntaxError{Name: name, Message: fmt.Sprintf("source is %d bytes, longer than the limit of %d", len(src), MaxSourceLen)}
	}
	return nil
}

// isFunctionLiteral reports whether the parsed wrapped source is exactly one
// function (or arrow function) literal. Checking the tree, not the text,
// catches at config load both mistakes ("r.magic") and sources that close the
// added parenthesis early ("function(){}), (other").
func isFunctionLiteral(body []ast.Statement) bool {
	if len(body) != 1 {
		return false
	}
	st, ok := body[0].(*ast.ExpressionStatement)
	if !ok {
		return false
	}
	switch st.Expression.(type) {
	case *ast.FunctionLiteral, *ast.ArrowFunctionLiteral:
		return true
	}
	return false
}

// unwrapPosition maps a position in "(" + src + "\n)" back into src: the
// opening parenthesis shifts line 1 by one column, and an error on the added
// last line (e.g. an unclosed brace) is reported at the end of src.
func unwrapPosition(se *SyntaxError, src string) {
	lines := strings.Split(src, "\n")
	switch {
	case se.Line == 1 && se.Column > 1:
		se.Column--
	case se.Line > len(lines):
		se.Line = len(lines)
		se.Column = len([]rune(lines[len(lines)-1])) + 1
	}
}

// compileSource parses and compiles one script. It calls the parser directly
// (rather than goja.Compile) for two reasons: goja.Compile drops the position
// of parse errors, and its default parser follows a trailing
// "//# sourceMappingURL=" comment by reading that path from the host file
// system, which a config string must never be able to do.
func compileSource(name, src string) (prg *goja.Program, body []ast.Statement, err error) {
	defer func() {
		// Compile must never take the daemon down over a config string.
		if r := recover(); r != nil {
			prg, body = nil, nil
			err = &SyntaxError{Name: name, Message: fmt.Sprintf("internal compiler error: %v", r)}
		}
	}()
	file, perr := parser.ParseFile(nil, name, src, 0, parser.WithDisableSourceMaps)
	if perr != nil {
		return nil, nil, parseError(name, perr)
	}
	prg, cerr := goja.CompileAST(file, false)
	if cerr != nil {
		return nil, nil, compileError(name, cerr)
	}
	return prg, file.Body, nil
}

// parseError converts the parser's error list to a *SyntaxError for the first
// (earliest) error, which is the one worth fixing first.
func parseError(name string, err error) error {
	var list parser.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		first := list[0]
		return &SyntaxError{Name: name, Line: first.Position.Line, Column: first.Position.Column, Message: first.Message}
	}
	var one *parser.Error
	if errors.As(err, &one) {
		return &SyntaxError{Name: name, Line: one.Position.Line, Column: one.Position.Column, Message: one.Message}
	}
	return &SyntaxError{Name: name, Message: err.Error()}
}

// compileError converts errors found after parsing (e.g. "let x; let x;"),
// which goja reports with a file offset instead of a line and column.
func compileError(name string, err error) error {
	var cse *goja.CompilerSyntaxError
	if errors.As(err, &cse) {
		se := &SyntaxError{Name: name, Message: cse.Message}
		if cse.File != nil {
			pos := cse.File.Position(cse.Offset)
			se.Line, se.Column = pos.Line, pos.Column
		}
		return se
	}
	var cre *goja.CompilerReferenceError
	if errors.As(err, &cre) {
		return &SyntaxError{Name: name, Message: cre.Message}
	}
	return &SyntaxError{Name: name, Message: err.Error()}
}

// Empty reports whether the source was empty or whitespace only, which the
// spec defines as "true" for bool_expr (see Sandbox.Truthy).
func (p *Program) Empty() bool { return p.empty }

// Source returns the source exactly as given to Compile or CompileFunction.
func (p *Program) Source() string { return p.src }

// Name returns the name given at compile time; errors from evaluating the
// program start with it.
func (p *Program) Name() string { return p.name }

// Describe explains a compile error for a config author without repeating
// the program's name: "JavaScript syntax error at line 1, column 18:
// Unexpected end of input". Other errors print as they are.
func Describe(err error) string {
	var se *SyntaxError
	if errors.As(err, &se) {
		if se.Line > 0 {
			return fmt.Sprintf("JavaScript syntax error at line %d, column %d: %s", se.Line, se.Column, se.Message)
		}
		return "JavaScript syntax error: " + se.Message
	}
	return err.Error()
}
