package outbound

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf16"

	"sentinel-go/jsv"
)

// maxJSONDepth bounds the nesting SortedJSON walks, so that bad data cannot
// exhaust the stack.
const maxJSONDepth = 1000

// SortedJSON serialises v exactly as JavaScript's JSON.stringify does an
// object whose keys were inserted in sorted order, recursively:
//
//   - no whitespace; arrays in order;
//   - object keys sorted by UTF-16 code units (Array.prototype.sort's
//     default), then laid out the way a JavaScript object orders them: keys
//     that are array indices ("0", "7", "42": canonical integers below
//     2^32-1) first, in numeric order, then the others in sorted order;
//   - numbers as Number.prototype.toString writes them (jsv.NumberString),
//     NaN and ±Infinity as null, -0 as 0;
//   - strings escaped as JSON.stringify does: \" \\ \b \f \n \r \t, other
//     control characters as \u00xx (lower-case hex), lone surrogates as
//     \udxxx, everything else (including <, >, &, U+2028, U+2029 and DEL)
//     written as is — unlike encoding/json, which escapes HTML characters.
//
// v holds the values encoding/json decodes into `any` (map[string]any, []any,
// string, float64, bool, nil); other integer and float kinds and json.Number
// are accepted too. Any other type is an error.
func SortedJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Hash is the payload hash stored in completed_tasks: SHA-256, hex, of
// SortedJSON(payload).
func Hash(payload any) (string, error) {
	b, err := SortedJSON(payload)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func writeJSON(b *bytes.Buffer, v any, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("value nested more than %d levels", maxJSONDepth)
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case float64:
		writeNumber(b, x)
	case float32:
		writeNumber(b, float64(x))
	case int:
		writeNumber(b, float64(x))
	case int64:
		writeNumber(b, float64(x))
	case int32:
		writeNumber(b, float64(x))
	case uint:
		writeNumber(b, float64(x))
	case uint64:
		writeNumber(b, float64(x))
	case uint32:
		writeNumber(b, float64(x))
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", string(x))
		}
		writeNumber(b, f)
	case string:
		jsv.QuoteTo(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case []string:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			jsv.QuoteTo(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for i, k := range JSKeyOrder(x) {
			if i > 0 {
				b.WriteByte(',')
			}
			jsv.QuoteTo(b, k)
			b.WriteByte(':')
			if err := writeJSON(b, x[k], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("cannot serialise a value of type %T", v)
	}
	return nil
}

func writeNumber(b *bytes.Buffer, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		b.WriteString("null")
		return
	}
	b.WriteString(jsv.NumberString(f))
}

// JSKeyOrder returns the keys of m in the order JSON.stringify writes an
// object built by inserting them sorted: array-index keys first in numeric
// order, then the others sorted by UTF-16 code units.
func JSKeyOrder(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, aIdx := arrayIndex(keys[i])
		b, bIdx := arrayIndex(keys[j])
		switch {
		case aIdx && bIdx:
			return a < b
		case aIdx != bIdx:
			return aIdx
		}
		return lessUTF16(keys[i], keys[j])
	})
	return keys
}

// arrayIndex reports whether k is a canonical array index ("0", "12", not
// "012", below 2^32-1), which JavaScript objects list before other keys.
func arrayIndex(k string) (uint64, bool) {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n < 1<<32-1
}

// lessUTF16 compares strings by UTF-16 code units, as JavaScript does.
func lessUTF16(a, b string) bool {
	ua := utf16.Encode([]rune(a))
	ub := utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}
