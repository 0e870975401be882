package outbound

import (
	"math"
	"testing"
)

// Expected outputs were produced with Node's JSON.stringify of an object
// whose keys were inserted sorted (recursively): the behaviour to match.
func TestSortedJSON(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want string
	}{
		{"sorted keys", map[string]any{"b": 1.0, "a": 2.0}, `{"a":2,"b":1}`},
		{"array index keys first", map[string]any{"10": 1.0, "2": 2.0, "b": 3.0, "a": 4.0, "01": 5.0, "-1": 6.0, "4294967295": 7.0, "4294967294": 8.0},
			`{"2":2,"10":1,"4294967294":8,"-1":6,"01":5,"4294967295":7,"a":4,"b":3}`},
		{"utf-16 key order", map[string]any{"\uff61": 1.0, "\U0001F600": 2.0, "z": 3.0, "\u00e9": 4.0}, `{"z":3,"é":4,"😀":2,"｡":1}`},
		{"string escapes", map[string]any{"s": "<>&\u2028\u2029\u007f\"\\\b\f\n\r\t\u0001\u001f é 😀"},
			"{\"s\":\"<>&\u2028\u2029\u007f\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f é 😀\"}"},
		{"numbers", map[string]any{"n": []any{0.0, math.Copysign(0, -1), 1.0, 0.1, 1e21, 1e-7, 1.5e-7, 123456789012345680000.0, 5e-324, 1.7976931348623157e308, -2.5, 100.0, 1e20, 0.000001}},
			`{"n":[0,0,1,0.1,1e+21,1e-7,1.5e-7,123456789012345680000,5e-324,1.7976931348623157e+308,-2.5,100,100000000000000000000,0.000001]}`},
		{"nested", map[string]any{"nested": map[string]any{"z": []any{map[string]any{"b": 1.0, "a": []any{3.0, map[string]any{"d": 1.0, "c": 2.0}}}}, "a": nil, "t": true, "f": false}},
			`{"nested":{"a":null,"f":false,"t":true,"z":[{"a":[3,{"c":2,"d":1}],"b":1}]}}`},
		{"lone surrogates", map[string]any{"lone": "a\xed\xa0\x80b\xed\xbf\xbfc"}, `{"lone":"a\ud800b\udfffc"}`},
		{"non-finite numbers", map[string]any{"nan": []any{math.NaN(), math.Inf(1), math.Inf(-1)}}, `{"nan":[null,null,null]}`},
		{"invalid utf-8", "a\xffb", "\"a\ufffdb\""},
		{"integers", []any{1, int64(-2), uint(3)}, `[1,-2,3]`},
		{"empty", map[string]any{"o": map[string]any{}, "a": []any{}}, `{"a":[],"o":{}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := SortedJSON(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestSortedJSONRejectsOtherTypes(t *testing.T) {
	if _, err := SortedJSON(map[string]any{"f": func() {}}); err == nil {
		t.Error("a func must be an error")
	}
	deep := any(nil)
	for i := 0; i < 2000; i++ {
		deep = []any{deep}
	}
	if _, err := SortedJSON(deep); err == nil {
		t.Error("excessive nesting must be an error")
	}
}

// Hashes computed with Node: sha256 hex of JSON.stringify(sorted object).
func TestHash(t *testing.T) {
	cases := []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"rev": "1-abc", "id": "report1"}, "65c7fbc3b0c2a6f44c05d9efac6db774a1afb244b1938e14a552e9334eff5e2c"},
		{map[string]any{"id": "r1", "a": map[string]any{"b": []any{1.0, "x"}}}, "e3f542ce5dca476c19382a8b56997bcfdd019908005fd69536af96a874990c9a"},
	}
	for _, c := range cases {
		got, err := Hash(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("Hash(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func FuzzSortedJSON(f *testing.F) {
	f.Add("a\x00b", "k")
	f.Add("\xed\xa0\x80", "\U0001F600")
	f.Fuzz(func(t *testing.T, s, k string) {
		if _, err := SortedJSON(map[string]any{k: s, s: []any{k, 1.5}}); err != nil {
			t.Fatal(err)
		}
	})
}
