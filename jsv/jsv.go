// Package jsv gives Go code the JavaScript view of JSON values: truthiness,
// String(), loose equality, number printing and dotted-path lookups.
//
// Documents are handled everywhere as the values encoding/json produces when
// decoding into `any` (map[string]any, []any, string, float64, bool, nil), which
// are exactly JavaScript's JSON values. Config authors wrote their settings
// against JavaScript semantics, so these helpers reproduce those semantics.
package jsv

import (
	"math"
	"strconv"
	"strings"
)

// Truthy reports whether v is truthy in JavaScript: false, 0, NaN, "" and
// null/undefined are falsy; every object and array (even empty) is truthy.
func Truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case int:
		return x != 0
	case int64:
		return x != 0
	case string:
		return x != ""
	default:
		return true
	}
}

// NumberString prints f as JavaScript's Number.prototype.toString does:
// integers without a fraction, the shortest round-tripping form otherwise,
// and exponent notation outside [1e-7, 1e21).
func NumberString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	abs := math.Abs(f)
	if abs >= 1e21 || abs < 1e-6 {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Go writes e+06 / e-07; JavaScript writes e+6 / e-7.
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		exp = strings.TrimLeft(exp[1:], "0")
		if exp == "" {
			exp = "0"
		}
		return mant + "e" + string(sign) + exp
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// String converts v as JavaScript's String(v) would for JSON values.
// Objects print as "[object Object]" and arrays join their elements with ",".
func String(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		return NumberString(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			if e != nil {
				parts[i] = String(e)
			}
		}
		return strings.Join(parts, ",")
	case map[string]any:
		return "[object Object]"
	default:
		return ""
	}
}

// Number converts v as JavaScript's Number(v) would (NaN when not numeric).
func Number(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0
		}
		if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
			n, err := strconv.ParseInt(s[2:], 16, 64)
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		}
		switch s {
		case "Infinity", "+Infinity":
			return math.Inf(1)
		case "-Infinity":
			return math.Inf(-1)
		}
		if strings.ContainsAny(s, "_pPxX") || strings.EqualFold(s, "inf") || strings.EqualFold(s, "+inf") || strings.EqualFold(s, "-inf") || strings.EqualFold(s, "nan") {
			return math.NaN()
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return math.NaN()
		}
		return f
	case []any:
		switch len(x) {
		case 0:
			return 0
		case 1:
			return Number(String(x[0]))
		}
		return math.NaN()
	default:
		return math.NaN()
	}
}

// LooseEqual reports JavaScript's `a == b` for JSON values.
func LooseEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch x := a.(type) {
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case float64, bool, int, int64:
			return Number(x) == Number(y)
		}
	case float64, int, int64:
		switch b.(type) {
		case string, float64, bool, int, int64:
			return Number(a) == Number(b)
		}
	case bool:
		return LooseEqual(Number(x), b)
	case map[string]any, []any:
		switch b.(type) {
		case map[string]any, []any:
			return false // identity comparison: distinct JSON values are never the same object
		default:
			return LooseEqual(String(a), b)
		}
	}
	if _, ok := b.(bool); ok {
		return LooseEqual(a, Number(b))
	}
	if _, ok := b.([]any); ok {
		return LooseEqual(a, String(b))
	}
	if _, ok := b.(map[string]any); ok {
		return LooseEqual(a, String(b))
	}
	return false
}

// Get returns the value at a dotted path ("fields.patient_id",
// "new_reports.0.contact.name") inside v, and whether it exists.
// Numeric segments index arrays.
func Get(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	cur := v
	for _, seg := range strings.Split(path, ".") {
		switch x := cur.(type) {
		case map[string]any:
			next, ok := x[seg]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				if seg == "length" {
					cur = float64(len(x))
					continue
				}
				return nil, false
			}
			cur = x[i]
		case string:
			if seg == "length" {
				cur = float64(len([]rune(x)))
				continue
			}
			return nil, false
		default:
			return nil, false
		}
	}
	return cur, true
}

// GetString returns the value at path when it is a string, else "".
func GetString(v any, path string) string {
	x, _ := Get(v, path)
	s, _ := x.(string)
	return s
}

// Map returns v as an object, or nil when it is not one.
func Map(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// Slice returns v as an array, or nil when it is not one.
func Slice(v any) []any {
	s, _ := v.([]any)
	return s
}

// Set stores value at a dotted path inside m, creating intermediate objects.
func Set(m map[string]any, path string, value any) {
	segs := strings.Split(path, ".")
	cur := m
	for _, seg := range segs[:len(segs)-1] {
		next, ok := cur[seg].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[seg] = next
		}
		cur = next
	}
	cur[segs[len(segs)-1]] = value
}

// Clone deep-copies a JSON value so that the copy can be changed freely.
func Clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Clone(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Clone(e)
		}
		return out
	default:
		return v
	}
}

// CloneMap deep-copies an object.
func CloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return Clone(m).(map[string]any)
}
