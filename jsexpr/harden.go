package jsexpr

import (
	"strings"

	"github.com/dop251/goja"
)

// Hardening of the built-ins, applied to every fresh runtime before the
// caller's globals and the program.
//
// goja parses and walks nested structures by Go recursion, and Go's stack
// overflow is fatal (it cannot be recovered like a panic). Native built-ins
// also ignore Interrupt. Measured here: eval("(".repeat(2e6) + …) and
// String(JSON.parse("[".repeat(2e6) + "]".repeat(2e6))) both kill the process
// with "goroutine stack exceeds 1000000000-byte limit", and
// eval("1+".repeat(1e5) + "1") compiles for ~50 s, ignoring the time limit.
// Strings that long are built natively in microseconds, so the time bound
// does not help. Hence:
//
//   - Code generation from strings is disabled, as Node's
//     vm.createContext(…, {codeGeneration: {strings: false}}) does: eval,
//     Function and the constructors reachable through .constructor throw
//     EvalError. Expressions in app_settings have no use for them.
//   - JSON.parse rejects text nested deeper than maxJSONDepth.
//
// Building deep structures in a script loop is bounded by the time limit
// instead (see the package doc).

// maxJSONDepth matches encoding/json's own nesting limit.
const maxJSONDepth = 10000

// codeGenMessage is Node's text for the same restriction.
const codeGenMessage = "Code generation from strings disallowed for this context"

// asyncOrGenerator finds the async and generator function prototypes, whose
// constructor properties lead to AsyncFunction and GeneratorFunction. Without
// eval, only the program's own syntax can create such functions, so this
// (costly: ~10µs) step runs only for programs whose source could contain it.
var asyncOrGenerator = goja.MustCompile("jsexpr-harden", "[function*(){}, async function(){}]", true)

// mayCreateAsyncOrGenerator is a conservative text test for generator or
// async function syntax ("*" also matches multiplication and comments;
// a backslash may be a unicode escape in an identifier).
func mayCreateAsyncOrGenerator(src string) bool {
	return strings.ContainsAny(src, `*\`) || strings.Contains(src, "async")
}

// harden applies the restrictions above to e.rt.
func (e *evaluation) harden() error {
	rt := e.rt
	deny := rt.ToValue(func(goja.ConstructorCall) *goja.Object {
		panic(e.newError("EvalError", codeGenMessage))
	}).(*goja.Object)

	fnCtor, ok := rt.Get("Function").(*goja.Object)
	if !ok {
		return nil
	}
	fnProto, ok := fnCtor.Get("prototype").(*goja.Object)
	if !ok {
		return nil
	}
	// Keep "f instanceof Function" working with the replacement.
	if err := deny.DefineDataProperty("prototype", fnProto, goja.FLAG_FALSE, goja.FLAG_FALSE, goja.FLAG_FALSE); err != nil {
		return err
	}
	protos := []*goja.Object{fnProto}
	if mayCreateAsyncOrGenerator(e.p.src) {
		v, err := rt.RunProgram(asyncOrGenerator)
		if err != nil {
			return err
		}
		arr := v.(*goja.Object)
		for _, k := range []string{"0", "1"} {
			if fn, ok := arr.Get(k).(*goja.Object); ok && fn.Prototype() != nil {
				protos = append(protos, fn.Prototype())
			}
		}
	}
	for _, p := range protos {
		if err := p.DefineDataProperty("constructor", deny, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
			return err
		}
	}
	global := rt.GlobalObject()
	for _, name := range []string{"Function", "eval"} {
		if err := global.DefineDataProperty(name, deny, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
			return err
		}
	}
	return e.hardenJSONParse()
}

// hardenJSONParse replaces JSON.parse with a wrapper that checks nesting
// before calling the original.
func (e *evaluation) hardenJSONParse() error {
	rt := e.rt
	jsonObj, ok := rt.Get("JSON").(*goja.Object)
	if !ok {
		return nil
	}
	parse, ok := goja.AssertFunction(jsonObj.Get("parse"))
	if !ok {
		return nil
	}
	wrapper := rt.ToValue(func(call goja.FunctionCall) goja.Value {
		// String(text) first, as JSON.parse does; it may run a toString
		// and throw, which propagates as usual from a native function.
		text := call.Argument(0).String()
		if jsonDepth(text) > maxJSONDepth {
			panic(e.newError("SyntaxError", "JSON nested too deeply"))
		}
		v, err := parse(call.This, rt.ToValue(text), call.Argument(1))
		if err != nil {
			panic(err)
		}
		return v
	})
	return jsonObj.DefineDataProperty("parse", wrapper, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// jsonDepth returns the deepest nesting of arrays and objects in text,
// ignoring brackets inside strings. It does not validate: JSON.parse does.
func jsonDepth(text string) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case (c == ']' || c == '}') && depth > 0:
			depth--
		}
	}
	return deepest
}

// newError makes a JavaScript error of the built-in type name, looked up
// when thrown; if the script replaced that global with something that is not
// a constructor, a TypeError is thrown instead.
func (e *evaluation) newError(name, msg string) goja.Value {
	if ctor, ok := goja.AssertConstructor(e.rt.Get(name)); ok {
		if obj, err := ctor(nil, e.rt.ToValue(msg)); err == nil {
			return obj
		}
	}
	return e.rt.NewTypeError(msg)
}
