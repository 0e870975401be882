package jsexpr

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"

	"github.com/dop251/goja"
)

// maxDepth bounds nesting in both directions. encoding/json already refuses
// deeper documents (10000), so a real doc never reaches it; it stops a cyclic
// Go map or JavaScript object from recursing until the Go stack overflows,
// which, unlike a panic, cannot be recovered.
const maxDepth = 10000

// maxExported bounds how many values one result may hold. A result such as
// "a = []; a.length = 4e9; a" would otherwise make the exporter loop (outside
// the interruptible JavaScript engine) and allocate without end.
const maxExported = 1 << 20

// toJS deep-copies a Go JSON-like value into native JavaScript values.
//
// goja's own ToValue would wrap maps and slices so that script writes reach
// the caller's data and the objects behave unlike plain JS objects; copying
// gives plain objects and arrays (Object.keys, JSON.stringify, Array methods
// behave as in the reference) and leaves the caller's values untouched.
// Object keys are added in sorted order: Go maps have no order, and a fixed
// one keeps for…in and Object.keys deterministic between runs.
func (e *evaluation) toJS(v any, depth int) (goja.Value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("value nested more than %d levels (cyclic?)", maxDepth)
	}
	rt := e.rt
	switch x := v.(type) {
	case nil:
		return goja.Null(), nil
	case bool, string, float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64:
		return rt.ToValue(x), nil
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return rt.ToValue(f), nil
		}
		return rt.ToValue(x.String()), nil
	case map[string]any:
		obj := rt.NewObject()
		for _, k := range slices.Sorted(maps.Keys(x)) {
			jv, err := e.toJS(x[k], depth+1)
			if err != nil {
				return nil, err
			}
			if k == "__proto__" {
				// A plain assignment would replace the prototype; JSON.parse
				// makes an ordinary own property, and so do we.
				if err := obj.DefineDataProperty(k, jv, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
					return nil, err
				}
				continue
			}
			if err := obj.Set(k, jv); err != nil {
				return nil, err
			}
		}
		return obj, nil
	case []any:
		items := make([]any, len(x))
		for i, item := range x {
			jv, err := e.toJS(item, depth+1)
			if err != nil {
				return nil, err
			}
			items[i] = jv
		}
		return rt.NewArray(items...), nil
	case func(args ...any) any:
		return rt.ToValue(e.hostFunc(x)), nil
	}
	// Anything else JSON can represent (structs, []string, map[string]int…)
	// goes through encoding/json, so the script sees exactly what a JSON
	// document would give it.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("unsupported value of type %T: %w", v, err)
	}
	var plain any
	if err := json.Unmarshal(b, &plain); err != nil {
		return nil, fmt.Errorf("unsupported value of type %T: %w", v, err)
	}
	return e.toJS(plain, depth)
}

// hostFunc wraps a Go helper (e.g. conditional_alerts' FORM(i)) as a native
// JavaScript function: arguments are exported like results, the result is
// copied in like a global, and a Go panic becomes a JavaScript exception
// rather than crossing the engine.
func (e *evaluation) hostFunc(fn func(args ...any) any) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value {
		args := make([]any, len(call.Arguments))
		for i, a := range call.Arguments {
			w := walker{e: e}
			v, err := w.value(a, 0)
			if err != nil {
				panic(e.rt.NewTypeError("argument %d: %s", i, err.Error()))
			}
			if _, skip := v.(omit); skip {
				v = nil
			}
			args[i] = v
		}
		res, perr := callHost(fn, args)
		if perr != nil {
			panic(e.rt.NewGoError(perr))
		}
		v, err := e.toJS(res, 0)
		if err != nil {
			panic(e.rt.NewTypeError("result: %s", err.Error()))
		}
		return v
	}
}

// callHost calls fn, turning a panic into an error.
func callHost(fn func(args ...any) any, args []any) (res any, err error) {
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("host function panicked: %v", x)
		}
	}()
	return fn(args...), nil
}

// export converts a result to Go JSON-like values, with JSON.stringify's
// rules for what cannot be represented: members that are undefined,
// functions or symbols are left out of objects and become nil in arrays (and
// at the top level); toJSON (e.g. Date's) is honoured; a cycle is an error.
// Numbers are always float64, as encoding/json would give.
//
// It walks the value in Go instead of calling JSON.stringify so that the walk
// can notice the time bound (a native JSON.stringify of a huge sparse array
// cannot be interrupted) and so there is no string round trip. Getters,
// proxies and toJSON may run script code and throw: the walk runs under
// Runtime.Try so those become ordinary script errors.
func (e *evaluation) export(v goja.Value) (out any, err error) {
	w := walker{e: e}
	if _, isObj := v.(*goja.Object); !isObj {
		// Primitives run no script code: skip the Try frame.
		out, err = w.value(v, 0)
	} else if ex := e.rt.Try(func() { out, err = w.value(v, 0) }); ex != nil {
		return nil, ex
	}
	if _, skip := out.(omit); skip {
		out = nil
	}
	return out, err
}

// omit marks a value that JSON would leave out of an object.
type omit struct{}

// walker holds the state of one export: the objects on the current path (to
// detect cycles) and how many values were produced (for the maxExported
// bound and the periodic check of the stop flag).
type walker struct {
	e      *evaluation
	count  int
	onPath map[*goja.Object]struct{}
}

// value is export's recursive step; it may return omit{}.
func (w *walker) value(v goja.Value, depth int) (any, error) {
	w.count++
	if w.count > maxExported {
		return nil, fmt.Errorf("result has more than %d values", maxExported)
	}
	if w.count&1023 == 0 && w.e.stopped.Load() != running {
		return nil, errStopped
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("result nested more than %d levels", maxDepth)
	}
	obj, isObj := v.(*goja.Object)
	if !isObj {
		return exportPrimitive(v), nil
	}
	if _, isFn := goja.AssertFunction(obj); isFn {
		return omit{}, nil
	}
	if toJSON, ok := goja.AssertFunction(obj.Get("toJSON")); ok {
		// JSON.stringify calls toJSON once per position, then serialises
		// whatever it returned without calling toJSON on it again.
		r, err := toJSON(obj)
		if err != nil {
			return nil, err
		}
		robj, isObj := r.(*goja.Object)
		if !isObj {
			return exportPrimitive(r), nil
		}
		if _, isFn := goja.AssertFunction(robj); isFn {
			return omit{}, nil
		}
		obj = robj
	}
	return w.object(obj, depth)
}

// object exports arrays, boxed primitives and other objects (own enumerable
// string keys, as JSON.stringify and Object.keys see them).
func (w *walker) object(obj *goja.Object, depth int) (any, error) {
	switch obj.ClassName() {
	case "Number":
		// new Number(1) and friends: JSON unwraps them (with ToNumber and
		// ToString, which may call the object's own valueOf/toString).
		return obj.ToFloat(), nil
	case "String":
		return obj.String(), nil
	case "Boolean":
		return obj.Export() == true, nil
	}
	if _, seen := w.onPath[obj]; seen {
		return nil, errors.New("TypeError: Converting circular structure to JSON")
	}
	if w.onPath == nil {
		w.onPath = make(map[*goja.Object]struct{})
	}
	w.onPath[obj] = struct{}{}
	defer delete(w.onPath, obj)

	if obj.ClassName() == "Array" {
		n := obj.Get("length").ToInteger()
		if n > maxExported {
			return nil, fmt.Errorf("result has more than %d values", maxExported)
		}
		arr := make([]any, 0, n)
		for i := int64(0); i < n; i++ {
			v, err := w.value(obj.Get(strconv.FormatInt(i, 10)), depth+1)
			if err != nil {
				return nil, err
			}
			if _, skip := v.(omit); skip {
				v = nil
			}
			arr = append(arr, v)
		}
		return arr, nil
	}
	keys := obj.Keys()
	m := make(map[string]any, len(keys))
	for _, k := range keys {
		v, err := w.value(obj.Get(k), depth+1)
		if err != nil {
			return nil, err
		}
		if _, skip := v.(omit); skip {
			continue
		}
		m[k] = v
	}
	return m, nil
}

// exportPrimitive converts a non-object value. undefined and symbols (which
// JSON drops) become omit{}; BigInts, which JSON rejects, become the nearest
// float64 rather than failing the whole result.
func exportPrimitive(v goja.Value) any {
	if v == nil || goja.IsUndefined(v) {
		return omit{}
	}
	if _, isSym := v.(*goja.Symbol); isSym {
		return omit{} // Export would give its description
	}
	switch x := v.Export().(type) {
	case nil:
		return nil
	case bool, string, float64:
		return x
	case int64:
		return float64(x)
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f
	}
	return omit{}
}
