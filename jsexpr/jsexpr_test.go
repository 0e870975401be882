package jsexpr

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dop251/goja"
)

// report is a typical hydrated data_record, as encoding/json decodes it.
func report() map[string]any {
	return map[string]any{
		"_id":           "rep-1",
		"type":          "data_record",
		"form":          "P",
		"reported_date": 1700000000000.0,
		"from":          "+254700000001",
		"fields":        map[string]any{"lmp": "12", "temp": 39.5, "tags": []any{"a", "b"}},
		"contact": map[string]any{
			"_id":  "c1",
			"name": "CHW",
			"parent": map[string]any{
				"_id":    "hc1",
				"parent": map[string]any{"_id": "d1"},
			},
		},
		"errors": []any{},
	}
}

func mustCompile(t testing.TB, src string) *Program {
	t.Helper()
	p, err := Compile("expr", src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return p
}

func mustCompileFunction(t testing.TB, src string) *Program {
	t.Helper()
	p, err := CompileFunction("fn", src)
	if err != nil {
		t.Fatalf("CompileFunction(%q): %v", src, err)
	}
	return p
}

func TestEvalCompletionValue(t *testing.T) {
	doc := map[string]any{"a": 1.0, "b": "two", "n": nil, "list": []any{1.0, "x", true}}
	cases := []struct {
		src  string
		want any
	}{
		{"doc.a; doc.b", "two"},
		{"doc.a", 1.0},
		{"doc.a + 1", 2.0},
		{"1/2", 0.5},
		{"doc.n", nil},
		{"doc.missing", nil},
		{"var x = 5", nil},
		{"var x = 5; x", 5.0},
		{"if (doc.a) { 'yes' } else { 'no' }", "yes"},
		{"doc.list", []any{1.0, "x", true}},
		{"doc.list.map(function (v) { return typeof v })", []any{"number", "string", "boolean"}},
		{"({a: 1, b: [null, 'x'], c: {d: false}})", map[string]any{"a": 1.0, "b": []any{nil, "x"}, "c": map[string]any{"d": false}}},
		// JSON.stringify's rules for what JSON cannot hold.
		{"({u: undefined, f: function () {}, s: Symbol('x'), ok: 1})", map[string]any{"ok": 1.0}},
		{"[undefined, function () {}, Symbol('x'), , 1]", []any{nil, nil, nil, nil, 1.0}},
		{"(function () {})", nil},
		{"Symbol('x')", nil},
		{"undefined", nil},
		{"new Date(0)", "1970-01-01T00:00:00.000Z"},
		{"({d: new Date(0)})", map[string]any{"d": "1970-01-01T00:00:00.000Z"}},
		{"({toJSON: function () { return 'custom' }})", "custom"},
		{"[new Number(3), new String('s'), new Boolean(false), new Boolean(true)]", []any{3.0, "s", false, true}},
		{"10n", 10.0},
		{"NaN !== NaN", true},
		{"Object.keys(doc)", []any{"a", "b", "list", "n"}}, // sorted: Go maps have no order
		{"JSON.stringify(doc)", `{"a":1,"b":"two","list":[1,"x",true],"n":null}`},
		{"Array.isArray(doc.list) && doc.list.indexOf('x')", 1.0},
		{"doc.b === 'two'", true},
		{"typeof doc", "object"},
		{"Object.getPrototypeOf(doc) === Object.prototype", true},
		{"JSON.parse('{\"x\":[1,{\"y\":\"]]\"}]}')", map[string]any{"x": []any{1.0, map[string]any{"y": "]]"}}}},
		{"(function () {}) instanceof Function", true},
	}
	s := NewSandbox(Options{})
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			got, err := s.Eval(context.Background(), mustCompile(t, c.src), map[string]any{"doc": doc})
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestTruthy(t *testing.T) {
	withLMP := func(v any) map[string]any {
		return map[string]any{"doc": map[string]any{"fields": map[string]any{"lmp": v}}}
	}
	const lmpExpr = "doc.fields.lmp && /^[0-9]+$/.test(doc.fields.lmp)"
	cases := []struct {
		name    string
		src     string
		globals map[string]any
		want    bool
	}{
		{"empty", "", nil, true},
		{"whitespace", " \n\t ", nil, true},
		{"comment only is not empty", "// nothing", nil, false},
		{"lmp digits", lmpExpr, withLMP("12"), true},
		{"lmp letters", lmpExpr, withLMP("1a"), false},
		{"lmp empty", lmpExpr, withLMP(""), false},
		{"lmp missing", lmpExpr, map[string]any{"doc": map[string]any{"fields": map[string]any{}}}, false},
		{"zero", "0", nil, false},
		{"empty string", "''", nil, false},
		{"undefined", "undefined", nil, false},
		{"null", "null", nil, false},
		{"NaN", "NaN", nil, false},
		{"empty array is truthy", "[]", nil, true},
		{"empty object is truthy", "({})", nil, true},
		{"string", "'false'", nil, true},
		{"completion of last statement", "true; 0", nil, false},
		{"var statement has no value", "var ok = true", nil, false},
		{"strict equality on strings", "doc.form === 'P'", map[string]any{"doc": report()}, true},
	}
	s := NewSandbox(Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Truthy(context.Background(), mustCompile(t, c.src), c.globals)
			if err != nil {
				t.Fatalf("Truthy: %v", err)
			}
			if got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestEmptyProgram(t *testing.T) {
	p := mustCompile(t, "  \n ")
	if !p.Empty() {
		t.Error("Empty() = false for whitespace source")
	}
	if p.Source() != "  \n " || p.Name() != "expr" {
		t.Errorf("Source/Name = %q/%q", p.Source(), p.Name())
	}
	if mustCompile(t, "1").Empty() {
		t.Error("Empty() = true for non-empty source")
	}
	// An empty program is true without running, even with a cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := NewSandbox(Options{}).Truthy(ctx, p, nil); !ok || err != nil {
		t.Errorf("Truthy(empty) = %v, %v", ok, err)
	}
	if v, err := NewSandbox(Options{}).Eval(context.Background(), p, nil); v != nil || err != nil {
		t.Errorf("Eval(empty) = %v, %v", v, err)
	}
}

func TestSyntaxError(t *testing.T) {
	cases := []struct {
		src        string
		fn         bool
		line, col  int
		msgContain string
	}{
		{src: "doc.a ==", line: 1, col: 9, msgContain: "Unexpected end of input"},
		{src: "a b", line: 1, col: 3, msgContain: "Unexpected identifier"},
		{src: "doc.a &&\n\n  (doc.b", line: 3, col: 9, msgContain: "Unexpected end of input"},
		{src: "let x; let x;", line: 1, col: 12, msgContain: "already been declared"},
		{src: "return true", line: 1, col: 1, msgContain: "Illegal return"},
		{src: "function(r, l) { retrun r }", fn: true, line: 1, col: 25, msgContain: "Unexpected identifier"},
		{src: "function(r, l) {\n  return r.x", fn: true, line: 2, col: 13},
		{src: "r.magic", fn: true, line: 1, col: 1, msgContain: "not a function expression"},
		{src: "function(){}), (function(){}", fn: true, line: 1, col: 1, msgContain: "not a function expression"},
		{src: "  ", fn: true, line: 1, col: 1, msgContain: "empty function source"},
		{src: strings.Repeat(" ", MaxSourceLen+1) + "1", msgContain: "longer than the limit"},
	}
	for _, c := range cases {
		t.Run(c.src[:min(len(c.src), 40)], func(t *testing.T) {
			compile := Compile
			if c.fn {
				compile = CompileFunction
			}
			p, err := compile("registrations[0].bool_expr", c.src)
			if err == nil {
				t.Fatalf("compiled %v", p)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *SyntaxError", err, err)
			}
			if c.line != 0 && (se.Line != c.line || se.Column != c.col) {
				t.Errorf("position %d:%d, want %d:%d (%v)", se.Line, se.Column, c.line, c.col, err)
			}
			if !strings.Contains(se.Message, c.msgContain) {
				t.Errorf("message %q does not contain %q", se.Message, c.msgContain)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "registrations[0].bool_expr") {
				t.Errorf("error %q does not start with the program name", msg)
			}
			if c.line != 0 && !strings.Contains(msg, fmt.Sprintf(":%d:%d:", c.line, c.col)) {
				t.Errorf("error %q does not show line and column", msg)
			}
		})
	}
}

func TestNoMutationOfCallerValues(t *testing.T) {
	doc := report()
	before := report()
	src := `
		doc.form = 'X'; doc.fields.lmp = 0; doc.fields.tags.push('c'); delete doc.contact;
		doc.errors[0] = 'e'; doc.__proto__.polluted = true; doc.added = {};
		Object.freeze(doc.fields); 1`
	s := NewSandbox(Options{})
	if _, err := s.Eval(context.Background(), mustCompile(t, src), map[string]any{"doc": doc}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(doc, before) {
		t.Errorf("caller's doc changed:\n got %#v\nwant %#v", doc, before)
	}

	fn := mustCompileFunction(t, "function (r, l) { r.contact.parent._id = 'changed'; l.fields.tags.length = 0; return true }")
	a, b := report(), report()
	if _, err := s.Call(context.Background(), fn, a, b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, before) || !reflect.DeepEqual(b, before) {
		t.Error("Call changed its arguments")
	}

	// The same Go map under two globals gives two independent copies.
	shared := map[string]any{"v": 1.0}
	got, err := s.Eval(context.Background(), mustCompile(t, "a.v = 2; b.v"), map[string]any{"a": shared, "b": shared})
	if err != nil || got != 1.0 {
		t.Errorf("got %v, %v; want 1", got, err)
	}
}

func TestProtoKeyIsPlainProperty(t *testing.T) {
	doc := map[string]any{"__proto__": map[string]any{"evil": true}}
	got, err := NewSandbox(Options{}).Eval(context.Background(),
		mustCompile(t, "[doc.evil === undefined, Object.keys(doc).length, Object.getPrototypeOf(doc) === Object.prototype]"),
		map[string]any{"doc": doc})
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{true, 1.0, true}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestIsolationBetweenEvaluations(t *testing.T) {
	s := NewSandbox(Options{})
	ctx := context.Background()
	steps := []struct {
		src     string
		globals map[string]any
		want    any
	}{
		{"var x = 1; x", nil, 1.0},
		{"var x = 1; x", nil, 1.0},
		{"let y = 2; y", nil, 2.0}, // a reused runtime fails here: "Identifier 'y' has already been declared"
		{"let y = 3; y", nil, 3.0},
		{"const z = 4; z", nil, 4.0},
		{"const z = 5; z", nil, 5.0},
		{"typeof x + typeof y + typeof z", nil, "undefinedundefinedundefined"},
		{"leaked = 1; other", map[string]any{"other": "a"}, "a"},
		{"typeof leaked + typeof other", nil, "undefinedundefined"},
		{"Array.prototype.includes = function () { return 'hacked' }; Object.prototype.p = 1; Math.max = null; 1", nil, 1.0},
		{"[[1].includes(1), ({}).p, typeof Math.max]", nil, []any{true, nil, "function"}},
	}
	for i, st := range steps {
		got, err := s.Eval(ctx, mustCompile(t, st.src), st.globals)
		if err != nil {
			t.Fatalf("step %d %q: %v", i, st.src, err)
		}
		if !reflect.DeepEqual(got, st.want) {
			t.Fatalf("step %d %q: got %#v, want %#v", i, st.src, got, st.want)
		}
	}
}

func TestReusedRuntimeIsNotIsolated(t *testing.T) {
	// Documents why Sandbox does not reuse runtimes: goja keeps top-level
	// lexical declarations and offers no way to drop them.
	rt := goja.New()
	if _, err := rt.RunString("let y = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RunString("let y = 2"); err == nil {
		t.Fatal("goja now allows redeclaring a global let; runtime reuse could be reconsidered")
	}
}

func TestTimeout(t *testing.T) {
	cases := []struct{ name, src string }{
		{"infinite loop", "while (true) {}"},
		{"allocation loop", "var a = []; while (true) a.push(new Array(1e6))"},
		{"string growth", "var s = 'x'; while (true) { s += s.length < 1e6 ? s : 'x' }"},
		{"loop in catch-all", "while (true) { try { while (true) {} } catch (e) {} }"},
		{"loop in finally", "try { while (true) {} } finally { while (true) {} }"},
		{"loop in promise job", "Promise.resolve().then(function () { while (true) {} }); 1"},
		{"loop in getter of result", "({ get a() { while (true) {} } })"},
		{"loop in toString of thrown value", "throw { toString: function () { while (true) {} } }"},
	}
	s := NewSandbox(Options{Timeout: 20 * time.Millisecond})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := s.Eval(context.Background(), mustCompile(t, c.src), nil)
			elapsed := time.Since(start)
			var te *TimeoutError
			if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) {
				t.Fatalf("error %T %v, want *TimeoutError", err, err)
			}
			if want := "expr: expression timed out after 20ms"; err.Error() != want {
				t.Errorf("message %q, want %q", err.Error(), want)
			}
			if elapsed > 2*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
	t.Run("call", func(t *testing.T) {
		_, err := s.Call(context.Background(), mustCompileFunction(t, "function () { for (;;) {} }"))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("error %v, want timeout", err)
		}
	})
	t.Run("sandbox usable afterwards", func(t *testing.T) {
		if ok, err := s.Truthy(context.Background(), mustCompile(t, "1"), nil); !ok || err != nil {
			t.Fatalf("got %v, %v", ok, err)
		}
	})
}

func TestContextCancellation(t *testing.T) {
	s := NewSandbox(Options{Timeout: 10 * time.Second})
	loop := mustCompile(t, "while (true) {}")

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.Eval(ctx, loop, nil)
	var ce *CanceledError
	if !errors.As(err, &ce) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %T %v, want *CanceledError wrapping context.Canceled", err, err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("cancellation took %v", time.Since(start))
	}

	// Already cancelled: nothing runs.
	_, err = s.Truthy(ctx, mustCompile(t, "1"), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("pre-cancelled: %v", err)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	_, err = s.Call(dctx, mustCompileFunction(t, "function () { while (true) {} }"))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Errorf("deadline: %v", err)
	}
}

func TestScriptErrors(t *testing.T) {
	cases := []struct {
		src, want string
	}{
		{"doc.nope.x", "TypeError: Cannot read property 'x' of undefined"},
		{"undefinedVariable", "ReferenceError: undefinedVariable is not defined"},
		{"throw new Error('boom')", "Error: boom"},
		{"throw 'plain'", "plain"},
		{"throw { toString: function () { throw 1 } }", "uncaught exception (value cannot be converted to a string)"},
		{"function f() { return f() } f()", "RangeError: Maximum call stack size exceeded"},
		{"function f() { return [1].map(f) } f()", "RangeError: Maximum call stack size exceeded"},
		{"var o = {}; o.toString = function () { return '' + o }; '' + o", "RangeError: Maximum call stack size exceeded"},
		{"var o = {}; o.o = o; o", "TypeError: Converting circular structure to JSON"},
		{"var a = []; a.length = 4e9; a", "result has more than"},
		{"({ get a() { throw new Error('getter') } })", "Error: getter"},
		{"new RegExp('(' + 'x'.repeat(2000))", "SyntaxError: Unterminated group"},
		{"throw new Error('x'.repeat(5000))", "Error: xxx"},
	}
	// Not a timeout test: the deep recursions take well over the default
	// 100ms with -race on a busy machine.
	s := NewSandbox(Options{Timeout: 10 * time.Second})
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			_, err := s.Eval(context.Background(), mustCompile(t, c.src), map[string]any{"doc": map[string]any{}})
			var se *ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v, want *ScriptError", err, err)
			}
			if !strings.HasPrefix(se.Message, c.want) {
				t.Errorf("message %q, want prefix %q", se.Message, c.want)
			}
			if !strings.HasPrefix(err.Error(), "expr: ") {
				t.Errorf("error %q does not start with the program name", err)
			}
			if len(se.Message) > maxMessage+len("…") {
				t.Errorf("message not truncated: %d bytes", len(se.Message))
			}
		})
	}
}

func TestScriptErrorPosition(t *testing.T) {
	s := NewSandbox(Options{})
	_, err := s.Eval(context.Background(), mustCompile(t, "var a = 1;\n  doc.nope.x"), map[string]any{"doc": map[string]any{}})
	var se *ScriptError
	if !errors.As(err, &se) || se.Line != 2 {
		t.Fatalf("error %v: want line 2", err)
	}
	_, err = s.Call(context.Background(), mustCompileFunction(t, "function (r) { return r.a.b }"), map[string]any{})
	if !errors.As(err, &se) || se.Line != 1 || se.Column != 27 {
		t.Fatalf("error %v: want line 1 column 27", err)
	}
}

func TestDeepRecursionWithCustomLimit(t *testing.T) {
	p := mustCompile(t, "function f(n) { return n === 0 ? 0 : 1 + f(n - 1) } f(200)")
	if v, err := NewSandbox(Options{}).Eval(context.Background(), p, nil); err != nil || v != 200.0 {
		t.Fatalf("default limit: %v, %v", v, err)
	}
	_, err := NewSandbox(Options{MaxCallStack: 100}).Eval(context.Background(), p, nil)
	var se *ScriptError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "Maximum call stack size exceeded") {
		t.Fatalf("limit 100: %v", err)
	}
}

func TestCall(t *testing.T) {
	const sameHealthCentre = "function(report, latest_report) { return report.contact.parent._id === latest_report.contact.parent._id }"
	other := report()
	other["contact"].(map[string]any)["parent"].(map[string]any)["_id"] = "hc2"
	cases := []struct {
		name string
		src  string
		args []any
		want any
	}{
		{"same parent", sameHealthCentre, []any{report(), report()}, true},
		{"other parent", sameHealthCentre, []any{other, report()}, false},
		{"magic missing", "function(r, l) { return r.magic; }", []any{report(), report()}, nil},
		{"magic set", "function(r, l) { return r.magic; }", []any{map[string]any{"magic": true}, report()}, true},
		{"arrow", "(r) => r.fields.tags.concat(['c'])", []any{report()}, []any{"a", "b", "c"}},
		{"missing args are undefined", "function(a, b) { return typeof b }", []any{1.0}, "undefined"},
		{"this is the global object, sloppy", "function() { return this === globalThis }", nil, true},
		{"trailing line comment", "function() { return 1 } // done", nil, 1.0},
		{"no globals", "function() { return typeof doc }", nil, "undefined"},
		{"nested function", "function(r) { function inner(x) { return x * 2 } return inner(r) }", []any{2.0}, 4.0},
	}
	s := NewSandbox(Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Call(context.Background(), mustCompileFunction(t, c.src), c.args...)
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}
	t.Run("throws", func(t *testing.T) {
		_, err := s.Call(context.Background(), mustCompileFunction(t, "function(r) { return r.a.b }"), map[string]any{})
		var se *ScriptError
		if !errors.As(err, &se) || !strings.Contains(se.Message, "TypeError: Cannot read property 'b' of undefined") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("script program that is not a function", func(t *testing.T) {
		_, err := s.Call(context.Background(), mustCompile(t, "1"))
		var se *ScriptError
		if !errors.As(err, &se) || !strings.Contains(se.Message, "not a function") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("script program whose value is a function", func(t *testing.T) {
		got, err := s.Call(context.Background(), mustCompile(t, "(function (a) { return a + 1 })"), 1.0)
		if err != nil || got != 2.0 {
			t.Fatalf("got %v, %v", got, err)
		}
	})
}

func TestGoFunctionGlobal(t *testing.T) {
	// conditional_alerts' FORM(i): the i-th most recent report, or undefined.
	history := []map[string]any{
		{"fields": map[string]any{"temp": 39.0}, "reported_date": 2000.0},
		{"fields": map[string]any{"temp": 37.0}, "reported_date": 1000.0},
	}
	var calls [][]any
	form := func(args ...any) any {
		calls = append(calls, args)
		if len(args) == 0 {
			return nil
		}
		i, ok := args[0].(float64)
		if !ok || i < 0 || int(i) >= len(history) {
			return nil
		}
		return history[int(i)]
	}
	s := NewSandbox(Options{})
	cond := mustCompile(t, "TEMP(0).fields.temp > 38 && (!TEMP(1) || TEMP(1).fields.temp <= 38)")
	ok, err := s.Truthy(context.Background(), cond, map[string]any{"TEMP": form, "doc": report()})
	if err != nil || !ok {
		t.Fatalf("Truthy = %v, %v", ok, err)
	}
	if len(calls) != 3 || calls[0][0] != 0.0 || calls[2][0] != 1.0 {
		t.Errorf("calls %v", calls)
	}

	got, err := s.Eval(context.Background(), mustCompile(t, "[TEMP(5) === null, typeof TEMP, TEMP('x', {a: [1]})]"),
		map[string]any{"TEMP": form})
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{true, "function", nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	if last := calls[len(calls)-1]; !reflect.DeepEqual(last, []any{"x", map[string]any{"a": []any{1.0}}}) {
		t.Errorf("arguments exported as %#v", last)
	}

	// The script cannot change the Go function's data through its result.
	if _, err := s.Eval(context.Background(), mustCompile(t, "TEMP(0).fields.temp = 0"), map[string]any{"TEMP": form}); err != nil {
		t.Fatal(err)
	}
	if history[0]["fields"].(map[string]any)["temp"] != 39.0 {
		t.Error("script changed the Go function's data")
	}

	// A panicking Go function is a catchable JavaScript error, not a crash.
	boom := func(...any) any { panic("kaboom") }
	_, err = s.Eval(context.Background(), mustCompile(t, "BOOM()"), map[string]any{"BOOM": boom})
	var se *ScriptError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "kaboom") {
		t.Fatalf("panic in host function: %v", err)
	}
	got, err = s.Eval(context.Background(), mustCompile(t, "try { BOOM() } catch (e) { 'caught' }"), map[string]any{"BOOM": boom})
	if err != nil || got != "caught" {
		t.Errorf("got %v, %v", got, err)
	}
}

func TestNoHostAccess(t *testing.T) {
	cases := []struct{ src, want string }{
		{"typeof require", "undefined"},
		{"typeof console", "undefined"},
		{"typeof load", "undefined"},
		{"typeof process", "undefined"},
		{"typeof module + typeof exports", "undefinedundefined"},
		{"typeof setTimeout", "undefined"},
	}
	s := NewSandbox(Options{})
	for _, c := range cases {
		got, err := s.Eval(context.Background(), mustCompile(t, c.src), nil)
		if err != nil || got != c.want {
			t.Errorf("%s = %v, %v; want %q", c.src, got, err, c.want)
		}
	}
	_, err := s.Eval(context.Background(), mustCompile(t, "require('fs')"), nil)
	var se *ScriptError
	if !errors.As(err, &se) || se.Message != "ReferenceError: require is not defined" {
		t.Errorf("require: %v", err)
	}
}

func TestCodeGenerationDisabled(t *testing.T) {
	cases := []string{
		"eval('1 + 1')",
		"(0, eval)('1')",
		"Function('return 1')()",
		"new Function('return 1')()",
		"[].map.constructor('return 1')()",
		"(function () {}).constructor('return 1')()",
		"Object.getPrototypeOf(async function () {}).constructor('return 1')",
		"Object.getPrototypeOf(function* () {}).constructor('yield 1')",
		"Reflect.construct(Function, ['return 1'])",
	}
	s := NewSandbox(Options{})
	for _, src := range cases {
		_, err := s.Eval(context.Background(), mustCompile(t, src), nil)
		var se *ScriptError
		if !errors.As(err, &se) || !strings.Contains(se.Message, "EvalError: "+codeGenMessage) {
			t.Errorf("%s: %v, want EvalError", src, err)
		}
	}
	// Ordinary uses of functions still work.
	got, err := s.Eval(context.Background(),
		mustCompile(t, "function f() {} [f instanceof Function, typeof Function, f.call(null) === undefined, function* () { yield 1 }().next().value]"), nil)
	if want := []any{true, "function", true, 1.0}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, %v", got, err)
	}
}

func TestDeepJSONRejected(t *testing.T) {
	// Without the check this kills the process with a Go stack overflow.
	src := "String(JSON.parse('['.repeat(2e6) + ']'.repeat(2e6)))"
	_, err := NewSandbox(Options{Timeout: 10 * time.Second}).Eval(context.Background(), mustCompile(t, src), nil)
	var se *ScriptError
	if !errors.As(err, &se) || se.Message != "SyntaxError: JSON nested too deeply" {
		t.Fatalf("error %v", err)
	}
	got, err := NewSandbox(Options{}).Eval(context.Background(),
		mustCompile(t, "JSON.parse('[[\"[[[\\\\\"\"]]', function (k, v) { return v })"), nil)
	if want := []any{[]any{`[[["`}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, %v", got, err)
	}
}

func TestJSONDepth(t *testing.T) {
	cases := map[string]int{
		``:                   0,
		`1`:                  0,
		`[]`:                 1,
		`{"a":[{"b":[]}]}`:   4,
		`["[[[", "\"[[["]`:   1,
		`["\\", ["x"]]`:      2,
		`[[1],[2],[[3]]]`:    3,
		`]]]][`:              1,
		`"unterminated [[[`:  0,
		`{"k\"[": {"v": 1}}`: 2,
	}
	for text, want := range cases {
		if got := jsonDepth(text); got != want {
			t.Errorf("jsonDepth(%s) = %d, want %d", text, got, want)
		}
	}
}

func TestUnsupportedGlobals(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	type point struct {
		X, Y int
	}
	s := NewSandbox(Options{})
	cases := []struct {
		name    string
		value   any
		wantErr string
		want    any
	}{
		{"channel", make(chan int), "unsupported value of type chan int", nil},
		{"cyclic map", cyclic, "nested more than", nil},
		{"struct via JSON", point{1, 2}, "", map[string]any{"X": 1.0, "Y": 2.0}},
		{"string slice via JSON", []string{"a"}, "", []any{"a"}},
		{"int", 3, "", 3.0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Eval(context.Background(), mustCompile(t, "v"), map[string]any{"v": c.value})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, c.want)
			}
		})
	}
	_, err := s.Call(context.Background(), mustCompileFunction(t, "function (x) { return x }"), make(chan int))
	if err == nil || !strings.Contains(err.Error(), "argument 0") {
		t.Errorf("Call with unsupported argument: %v", err)
	}
}

func TestNilProgram(t *testing.T) {
	s := NewSandbox(Options{})
	if _, err := s.Eval(context.Background(), nil, nil); err == nil {
		t.Error("Eval(nil) did not fail")
	}
	if _, err := s.Truthy(context.Background(), nil, nil); err == nil {
		t.Error("Truthy(nil) did not fail")
	}
	if _, err := s.Call(context.Background(), nil); err == nil {
		t.Error("Call(nil) did not fail")
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", maxMessage)
	got := truncate(long)
	if len(got) > maxMessage+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("truncate gave %d bytes: %q…", len(got), got[:20])
	}
	if truncate("short") != "short" {
		t.Error("short message changed")
	}
}

func TestSharedProgramConcurrentSandboxes(t *testing.T) {
	p := mustCompile(t, "doc.fields.lmp && /^[0-9]+$/.test(doc.fields.lmp) && (doc.n = (doc.n || 0) + 1)")
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			// A generous bound: this tests sharing, not speed (8 goroutines
			// under -race on a busy CI machine).
			s := NewSandbox(Options{Timeout: 10 * time.Second})
			g := map[string]any{"doc": report()}
			for i := 0; i < 50; i++ {
				if ok, err := s.Truthy(context.Background(), p, g); !ok || err != nil {
					t.Errorf("Truthy = %v, %v", ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDefaults(t *testing.T) {
	s := NewSandbox(Options{})
	if s.timeout != DefaultTimeout || s.maxStack != DefaultMaxCallStack {
		t.Errorf("defaults %v %d", s.timeout, s.maxStack)
	}
	s = NewSandbox(Options{Timeout: time.Second, MaxCallStack: 10})
	if s.timeout != time.Second || s.maxStack != 10 {
		t.Errorf("options ignored: %v %d", s.timeout, s.maxStack)
	}
}

// FuzzEval compiles and evaluates arbitrary sources: whatever the source,
// Compile and Eval must return (a value or an error), never panic or hang.
func FuzzEval(f *testing.F) {
	seeds := []string{
		"doc.a; doc.b",
		"doc.fields.lmp && /^[0-9]+$/.test(doc.fields.lmp)",
		"var x = 1; let y = 2; x + y",
		"while (true) {}",
		"function f() { return f() } f()",
		"throw new Error('x')",
		"({a: [1, {b: undefined}], c: new Date(0)})",
		"FORM(0) && FORM(0).fields",
		"JSON.parse(JSON.stringify(doc))",
		"eval('1')",
		"function(r, l) { return r._id === l._id }",
		"`${doc.a}` + [1, 2].map(x => x * 2)",
		"class A { #p = 1; get p() { return this.#p } } new A().p",
		"async function f() { await 1 } f()",
		"label: for (;;) { break label }",
		"",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	form := func(args ...any) any {
		if len(args) > 0 && args[0] == 0.0 {
			return map[string]any{"fields": map[string]any{"x": 1.0}}
		}
		return nil
	}
	s := NewSandbox(Options{Timeout: 2 * time.Millisecond})
	f.Fuzz(func(t *testing.T, src string) {
		globals := map[string]any{"doc": map[string]any{"a": 1.0, "b": "x", "fields": map[string]any{"lmp": "1"}}, "FORM": form}
		if p, err := Compile("fuzz", src); err == nil {
			_, _ = s.Eval(context.Background(), p, globals)
			_, _ = s.Truthy(context.Background(), p, globals)
		} else {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile error %T is not a *SyntaxError", err)
			}
		}
		if p, err := CompileFunction("fuzz", src); err == nil {
			_, _ = s.Call(context.Background(), p, globals["doc"], 1.0)
		}
	})
}

func benchDoc() map[string]any {
	fields := map[string]any{"lmp": "12"}
	for i := 0; i < 12; i++ {
		fields[fmt.Sprintf("field_%d", i)] = fmt.Sprintf("value %d", i)
	}
	doc := report()
	doc["fields"] = fields
	doc["_rev"] = "3-abc"
	doc["sms_message"] = map[string]any{"message": "P 12", "from": "+254700000001", "form": "P", "locale": "en"}
	doc["tasks"] = []any{}
	doc["scheduled_tasks"] = []any{}
	return doc
}

// BenchmarkTruthy measures a typical bool_expr over a ~30-field doc,
// including the fresh runtime, the hardening and the copy of the doc.
func BenchmarkTruthy(b *testing.B) {
	p := mustCompile(b, "doc.form === 'P' && doc.fields.lmp && /^[0-9]+$/.test(doc.fields.lmp)")
	s := NewSandbox(Options{})
	globals := map[string]any{"doc": benchDoc()}
	b.ReportAllocs()
	for b.Loop() {
		ok, err := s.Truthy(context.Background(), p, globals)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkCall measures one is_report_counted call.
func BenchmarkCall(b *testing.B) {
	p := mustCompileFunction(b, "function(report, latest_report) { return report.contact.parent._id === latest_report.contact.parent._id }")
	s := NewSandbox(Options{})
	r1, r2 := benchDoc(), benchDoc()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Call(context.Background(), p, r1, r2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewRuntime is the bare cost of the fresh runtime per evaluation.
func BenchmarkNewRuntime(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = goja.New()
	}
}
