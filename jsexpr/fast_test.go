package jsexpr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// fastGlobals are the values the fast path is checked on: JSON-like docs
// with the edge cases of JavaScript's truthiness and equality, and values
// it must leave to goja.
func fastGlobals() []map[string]any {
	contact := map[string]any{"_id": "c1", "type": "person", "phone": "+1", "parent": map[string]any{"_id": "hc", "name": ""}}
	docs := []map[string]any{
		{"_id": "r1", "type": "data_record", "form": "P", "fields": map[string]any{"patient_name": "Jane", "n": float64(2), "zero": float64(0)}, "contact": contact},
		{"_id": "r2", "type": "data_record", "form": "p", "fields": map[string]any{}, "errors": []any{}, "tasks": []any{map[string]any{"state": "sent"}}},
		{"_id": "p1", "type": "person", "name": "", "flag": false, "nothing": nil, "neg": math.Copysign(0, -1), "nan": math.NaN(), "inf": math.Inf(1)},
		{"_id": "x", "type": "data_record", "constructor": "c", "__proto__": "p", "toString": "t", "length": float64(3)},
		{"_id": "odd", "type": "data_record", "count": 3, "num": json.Number("4"), "list": []string{"a"}, "form": "P"},
		{},
	}
	out := make([]map[string]any, 0, len(docs)+2)
	for _, d := range docs {
		out = append(out, map[string]any{"doc": d})
	}
	return append(out, map[string]any{"doc": nil}, map[string]any{"doc": "text", "other": float64(1)})
}

var fastExprs = []string{
	"doc.type === 'data_record' && doc.form === 'P'",
	"doc.type === 'data_record' && doc.form === 'P';",
	"doc.type !== 'person'",
	"doc.form === 'P' || doc.form === 'p'",
	"!doc.form",
	"!!doc.fields",
	"doc.fields.patient_name === 'Jane'",
	"doc.fields.n === 2",
	"doc.fields.n === 2.0 && doc.fields.zero === 0",
	"doc.fields.zero",
	"doc.missing === undefined",
	"doc.missing === null",
	"doc.nothing === null",
	"doc.nothing",
	"doc.flag === false",
	"doc.neg === 0",
	"doc.nan === doc.nan",
	"doc.nan",
	"doc.inf",
	"doc.name",
	"doc.errors",
	"doc.errors.length",
	"doc.errors.length === 0",
	"doc.tasks.length === 1",
	"doc.contact.parent._id === 'hc'",
	"doc.contact.parent.name",
	"doc.contact.parent.parent._id",
	"doc.missing.deeper",
	"doc.constructor",
	"doc.toString",
	"doc.__proto__",
	"doc.hasOwnProperty",
	"doc.length",
	"doc.fields === doc.fields",
	"doc.fields !== null",
	"doc.count === 3",
	"doc.num === 4",
	"doc.list",
	"other === 1",
	"nobody",
	"undefined",
	"null",
	"true && 'x'",
	"0 || ''",
	"1",
	"'' === ''",
	"doc",
	"doc.type",
	"(doc.type === 'person') === false",
	"(doc.form || 'none') === 'none'",
	"doc.form && doc.form === 'P'",
	"doc.tasks.length",
	"doc.type.length",
}

// slow is p without its fast path: goja decides.
func slow(p *Program) *Program {
	c := *p
	c.fast = nil
	return &c
}

// checkFast evaluates src on globals both ways: when the fast path
// decides, goja must give the same answer and no error.
func checkFast(t *testing.T, s *Sandbox, src string, globals map[string]any) (decided bool) {
	t.Helper()
	p, err := Compile("t", src)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	want, werr := s.Truthy(context.Background(), slow(p), globals)
	if p.fast == nil {
		return false
	}
	v, ok := p.fast.eval(globals)
	if !ok {
		return false
	}
	if werr != nil || truthy(v) != want {
		t.Errorf("%s on %v: fast path says %v, goja says %v (error %v)", src, globals, truthy(v), want, werr)
	}
	return true
}

func TestFastTruthyAgreesWithGoja(t *testing.T) {
	s := NewSandbox(Options{})
	decided := 0
	for _, src := range fastExprs {
		for _, g := range fastGlobals() {
			if checkFast(t, s, src, g) {
				decided++
			}
		}
	}
	if decided < len(fastExprs)*len(fastGlobals())/3 {
		t.Errorf("the fast path decided only %d of %d cases", decided, len(fastExprs)*len(fastGlobals()))
	}
}

// Random expressions of the accepted grammar (and a few others) on the
// same values.
func TestFastTruthyRandom(t *testing.T) {
	s := NewSandbox(Options{})
	r := rand.New(rand.NewPCG(1, 2))
	paths := []string{"doc", "doc.type", "doc.form", "doc.fields", "doc.fields.n", "doc.fields.zero", "doc.missing",
		"doc.nothing", "doc.flag", "doc.nan", "doc.neg", "doc.errors", "doc.errors.length", "doc.contact.parent._id",
		"doc.name", "doc.count", "doc.constructor", "doc.length", "doc.missing.x", "other"}
	lits := []string{"'P'", "'data_record'", "''", "0", "2", "-0", "null", "true", "false", "undefined", "1.5"}
	var gen func(depth int) string
	gen = func(depth int) string {
		if depth > 3 {
			if r.IntN(2) == 0 {
				return paths[r.IntN(len(paths))]
			}
			return lits[r.IntN(len(lits))]
		}
		switch r.IntN(7) {
		case 0:
			return "!" + gen(depth+1)
		case 1:
			return "(" + gen(depth+1) + " && " + gen(depth+1) + ")"
		case 2:
			return "(" + gen(depth+1) + " || " + gen(depth+1) + ")"
		case 3:
			return gen(depth+1) + " === " + gen(depth+1)
		case 4:
			return gen(depth+1) + " !== " + gen(depth+1)
		case 5:
			return "(" + gen(depth+1) + ")"
		}
		return paths[r.IntN(len(paths))]
	}
	n := 400
	if testing.Short() {
		n = 100
	}
	globals := fastGlobals()
	decided := 0
	for i := 0; i < n; i++ {
		src := gen(0)
		if strings.Count(src, "===") > 6 {
			continue
		}
		for _, g := range globals {
			if checkFast(t, s, src, g) {
				decided++
			}
		}
	}
	t.Logf("fast path decided %d of %d", decided, n*len(globals))
}

// Sources outside the grammar are goja's only.
func TestFastPathOnlyForItsGrammar(t *testing.T) {
	for _, src := range []string{
		"doc.form == 'P'", "doc['form'] === 'P'", "doc.form.toUpperCase() === 'P'", "let x = 1; x",
		"doc.n > 1", "`P` === doc.form", "doc.form === 'P'; doc.type", "typeof doc.form === 'string'",
		"doc?.form", "-1", "x = 1",
	} {
		p, err := Compile("t", src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if p.fast != nil {
			t.Errorf("%s: has a fast path", src)
		}
	}
	p, _ := Compile("t", "doc.type === 'data_record' && doc.form === 'P'")
	if p.fast == nil {
		t.Fatal("the outbound relevant_to of the benchmark has no fast path")
	}
}

// A canceled context is reported even when the fast path could decide.
func TestFastPathCanceled(t *testing.T) {
	p, _ := Compile("t", "doc.form === 'P'")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewSandbox(Options{}).Truthy(ctx, p, map[string]any{"doc": map[string]any{"form": "P"}})
	var ce *CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a CanceledError", err)
	}
}

func BenchmarkTruthyFastPath(b *testing.B) {
	p, _ := Compile("t", "doc.type === 'data_record' && doc.form === 'P'")
	g := fastGlobals()[0]
	s := NewSandbox(Options{})
	for _, prg := range []*Program{p, slow(p)} {
		b.Run(fmt.Sprint(prg.fast != nil), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := s.Truthy(context.Background(), prg, g); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
