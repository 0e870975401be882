package memdb

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// TestCloneIsAJSONRoundTrip: the direct copy of plain docs and the JSON
// path for everything else give what encoding/json gives.
func TestCloneIsAJSONRoundTrip(t *testing.T) {
	docs := []Doc{
		{"_id": "a", "n": 1.5, "b": true, "z": nil, "s": "é", "o": map[string]any{"x": []any{1.0, "y", nil, map[string]any{}}}},
		{"_id": "nil-map", "m": map[string]any(nil), "l": []any(nil), "e": []any{}},
		{"_id": "go-types", "i": 3, "ss": []string{"a", "b"}, "ms": map[string]string{"k": "v"}, "nested": []any{int64(7), map[string]int{"q": 1}}},
		{"_id": "bad-utf8", "s": "a\xffb", "\xfe": 1.0},
	}
	for _, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var want Doc
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got := clone(d)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("clone(%v) = %#v, want %#v", d["_id"], got, want)
		}
	}
	// Not encodable: deep-copied as it is.
	nan := Doc{"_id": "nan", "x": math.NaN(), "o": map[string]any{"k": 1.0}}
	c := clone(nan)
	c["o"].(map[string]any)["k"] = 2.0
	if nan["o"].(map[string]any)["k"] != 1.0 {
		t.Error("clone of an unencodable doc shares memory")
	}
	// A copy never shares memory with the original.
	orig := Doc{"o": map[string]any{"l": []any{1.0}}}
	cp := clone(orig)
	cp["o"].(map[string]any)["l"].([]any)[0] = 2.0
	if orig["o"].(map[string]any)["l"].([]any)[0] != 1.0 {
		t.Error("clone shares memory")
	}
}
