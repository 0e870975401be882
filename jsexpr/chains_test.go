package jsexpr

import (
	"context"
	"fmt"
	"testing"
)

// TestLeftAssociate checks the relational-chain rewrite against the values
// JavaScript (node) gives for the same sources.
func TestLeftAssociate(t *testing.T) {
	cases := []struct {
		src, fixed string
		want       any // JavaScript's value of src
	}{
		{"1000 < 1200 < 10000", "(1000 < 1200) < 10000", true},
		{"3 > 2 > 1", "(3 > 2) > 1", false},
		{"1 < 2 <= 3", "(1 < 2) <= 3", true},
		{"1 < 2 < 3 < 0", "((1 < 2) < 3) < 0", false},
		{"1 < (2 < 3)", "1 < (2 < 3)", false},
		{"(1 < 2) < 3", "(1 < 2) < 3", true},
		{"1 < (2) < (3)", "(1 < (2)) < (3)", true},
		{"(1) < (2 < 3)", "(1) < (2 < 3)", false},
		{"1 < ((2) < 3)", "1 < ((2) < 3)", false},
		{"1 < (2 < 3) < 0.5", "(1 < (2 < 3)) < 0.5", true},
		{"'(' < ')' < 1", "('(' < ')') < 1", false},
		{"1 < /\\(/.test('(') < 2", "(1 < /\\(/.test('(')) < 2", true},
		{"1 /* ( */ < 2 < 3", "(1 /* ( */ < 2) < 3", true},
		{"1 < 2 // (\n < 3", "(1 < 2) // (\n < 3", true},
		{"'x' in {x:1} in {true:1}", "('x' in {x:1}) in {true:1}", true},
		{"[] instanceof Array < 2", "([] instanceof Array) < 2", true},
		{"[1 < 5 < 3, 3 > 2 > 1]", "[(1 < 5) < 3, (3 > 2) > 1]", []any{true, false}},
		{"1 < 2 ? 3 > 2 > 1 : 0", "1 < 2 ? (3 > 2) > 1 : 0", false},
		{"(function(a){ return a < 2 < 3 })(5)", "(function(a){ return (a < 2) < 3 })(5)", true},
		{"`${1 < (2 < 3)}` < `(${2 < 3 < 1}`", "`${1 < (2 < 3)}` < `(${(2 < 3) < 1}`", false},
		{"(1 < 2 < 3) < 1 < 2", "(((1 < 2) < 3) < 1) < 2", true},
		{"var y = 1\n1 < 2 < 3", "var y = 1\n0, (1 < 2) < 3", true},
		{"var y = 1;\n1 < 2 < 3", "var y = 1;\n(1 < 2) < 3", true},
		{"if (1 > 2) 3 > 2 > 1; else 3 < 2 < 1", "if (1 > 2) 0, (3 > 2) > 1; else 0, (3 < 2) < 1", true},
		{"var f = function(){}\n1 < 2 < 3 ? 'a' : 'b'", "var f = function(){}\n0, (1 < 2) < 3 ? 'a' : 'b'", "a"},
		{"1 + 2 < 3 - 1 < 1", "(1 + 2 < 3 - 1) < 1", true},
		{"1 < 2 == 3 > 2 > 1", "1 < 2 == (3 > 2) > 1", false},
		{"no chain here && 1 < 2", "no chain here && 1 < 2", nil}, // does not parse: unchanged
	}
	js := NewSandbox(Options{})
	for _, c := range cases {
		got := leftAssociate(c.src, "", "")
		if got != c.fixed {
			t.Errorf("leftAssociate(%q) = %q, want %q", c.src, got, c.fixed)
			continue
		}
		if c.want == nil {
			continue
		}
		p, err := Compile("t", c.src) // Compile rewrites chains itself
		if err != nil {
			t.Errorf("%q: %v", got, err)
			continue
		}
		v, err := js.Eval(context.Background(), p, nil)
		if err != nil || fmt.Sprint(v) != fmt.Sprint(c.want) {
			t.Errorf("%q = %v, %v; JavaScript gives %v", got, v, err, c.want)
		}
	}
	// Function sources are parsed the way CompileFunction wraps them.
	fn := "function(r, l) { return 0 < r.x < 2; }"
	if got := leftAssociate(fn, "(", "\n)"); got != "function(r, l) { return (0 < r.x) < 2; }" {
		t.Errorf("function source = %q", got)
	}
}
