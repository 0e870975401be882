package jsv

import (
	"math"
	"testing"
)

func TestNumberString(t *testing.T) {
	cases := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {1, "1"}, {-3, "-3"}, {1234567, "1234567"}, {1.5, "1.5"},
		{0.30000000000000004, "0.30000000000000004"}, {1e21, "1e+21"}, {1.5e-7, "1.5e-7"},
		{1714557600000, "1714557600000"}, {math.NaN(), "NaN"}, {math.Inf(1), "Infinity"},
	}
	for _, c := range cases {
		if got := NumberString(c.in); got != c.want {
			t.Errorf("NumberString(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLooseEqual(t *testing.T) {
	cases := []struct {
		a, b any
		want bool
	}{
		{"5", 5.0, true}, {"", 0.0, true}, {"a", "a", true}, {"a", "b", false},
		{nil, nil, true}, {nil, 0.0, false}, {true, 1.0, true}, {"1", true, true},
		{[]any{"a"}, "a", true}, {map[string]any{}, map[string]any{}, false},
	}
	for _, c := range cases {
		if got := LooseEqual(c.a, c.b); got != c.want {
			t.Errorf("LooseEqual(%#v, %#v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestGet(t *testing.T) {
	doc := map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": "x"}}}}
	if v, ok := Get(doc, "a.b.0.c"); !ok || v != "x" {
		t.Fatalf("got %v %v", v, ok)
	}
	if _, ok := Get(doc, "a.z"); ok {
		t.Fatal("missing path found")
	}
	if v, _ := Get(doc, "a.b.length"); v != 1.0 {
		t.Fatalf("length = %v", v)
	}
}

func TestTruthy(t *testing.T) {
	for _, v := range []any{true, 1.0, "0", " ", map[string]any{}, []any{}} {
		if !Truthy(v) {
			t.Errorf("%#v should be truthy", v)
		}
	}
	for _, v := range []any{false, 0.0, "", nil, math.NaN()} {
		if Truthy(v) {
			t.Errorf("%#v should be falsy", v)
		}
	}
}
