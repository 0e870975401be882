package validation

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"sentinel-go/jsv"
)

// JavaScript helpers the rule functions need beyond package jsv.

// isJSWhiteSpace reports whether r is JavaScript WhiteSpace or LineTerminator
// (what String.prototype.trim, parseFloat and parseInt skip).
func isJSWhiteSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff':
		return true
	}
	return r >= '\u2000' && r <= '\u200a'
}

func trimLeftJS(s string) string {
	return strings.TrimLeftFunc(s, isJSWhiteSpace)
}

// parseFloat is JavaScript's parseFloat(String(v)): leading white space is
// skipped and the longest prefix that is a decimal literal (or Infinity) is
// read; NaN when there is none.
func parseFloat(v any) float64 {
	s := trimLeftJS(jsv.String(v))
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if strings.HasPrefix(s[i:], "Infinity") {
		if s[0] == '-' {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		frac := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
			frac++
		}
		if digits > 0 || frac > 0 {
			i = j
			digits += frac
		}
	}
	if digits == 0 {
		return math.NaN()
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
	// Only range errors are possible here, and ParseFloat then returns ±Inf
	// or ±0 as JavaScript does.
	f, _ := strconv.ParseFloat(s[:i], 64)
	return f
}

// parseInt10 is JavaScript's parseInt(String(v), 10).
func parseInt10(v any) float64 {
	s := trimLeftJS(jsv.String(v))
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return math.NaN()
	}
	f, _ := strconv.ParseFloat(s[:i], 64)
	if neg {
		f = -f
	}
	return f
}

// isNumber reports whether v is a JavaScript number.
func isNumber(v any) bool {
	switch v.(type) {
	case float64, int, int64:
		return true
	}
	return false
}

// strictEqual is JavaScript's `a === b` for JSON values and rule arguments.
// Objects and arrays are never identical to a rule argument.
func strictEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	if isNumber(a) && isNumber(b) {
		return jsv.Number(a) == jsv.Number(b)
	}
	return false
}

// utf16Len is the JavaScript length of s (UTF-16 code units).
func utf16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
		i += size
	}
	return n
}

// jsLength is v.length: strings and arrays have one, numbers, booleans and
// objects do not.
func jsLength(v any) (float64, bool) {
	switch x := v.(type) {
	case string:
		return float64(utf16Len(x)), true
	case []any:
		return float64(len(x)), true
	}
	return 0, false
}

// toNumber converts a rule argument for a relational comparison (`x >= n`):
// a missing argument is undefined, hence NaN.
func toNumber(args []any, i int) float64 {
	if i >= len(args) {
		return math.NaN()
	}
	return jsv.Number(args[i])
}

// jsLower is String.prototype.toLowerCase for the cases where Go differs
// (U+0130 lower-cases to "i̇" in JavaScript).
func jsLower(s string) string {
	if strings.ContainsRune(s, '\u0130') {
		s = strings.ReplaceAll(s, "\u0130", "i\u0307")
	}
	return strings.ToLower(s)
}
