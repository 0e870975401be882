package validation

import (
	"context"
	"testing"
	"time"
)

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"", "lenMin(1) && lenMax(100)", "regex('^[0-9]{5}$')", `regex(\d{5})`,
		"otherEquals('country', 'US') ? lenMin(2) : lenMin(0)", "a || b && c", "!(a ? b : c)",
		"unique('patient_id') && uniqueWithin('form', 'x', '2 weeks')", "exists('REG', 'patient_id')",
		"isAfter('-3 days') || isBefore('1 month')", "isISOWeek('week', 'year')",
		"validPhone('x') && uniquePhone('x')", "iEquals('a')", "between(1.5e3, -2)", "in('a', \"b\", 3)",
		"regex('(a+)+$', 'imsuy')", "((((a))))", "equalsTo('n')", "lenEquals('3') ? numeric : integer",
	} {
		f.Add(s)
	}
	doc := map[string]any{
		"_id": "d", "form": "REG", "reported_date": 1714557600000.0, "from": "+254712345678",
		"fields": map[string]any{"x": "abc", "n": 5.0, "week": "12", "year": "2024", "patient_id": "12345", "l": []any{"a"}, "o": map[string]any{}},
	}
	store := testStore()
	f.Fuzz(func(t *testing.T, rule string) {
		r, err := Compile(rule)
		if err != nil {
			if r != nil {
				t.Fatal("rule and error")
			}
			return
		}
		_ = r.UnknownFunctions()
		for _, prop := range []string{"x", "n", "l", "o", "missing"} {
			cfg := Config{Entries: []Entry{{Property: prop, Rule: rule}}}
			_, _ = Validate(context.Background(), cfg, doc, Env{Store: store, Now: time.UnixMilli(1714557600000), Location: time.UTC, DefaultCountryCode: "254"})
		}
		cfg, _ := ParseConfig(map[string]any{"list": []any{map[string]any{"property": "x", "rule": rule}}})
		_, _ = Validate(context.Background(), cfg, doc, Env{})
	})
}

func BenchmarkValidate(b *testing.B) {
	cfg, problems := ParseConfig(map[string]any{"join_responses": true, "list": []any{
		map[string]any{"property": "patient_name", "rule": "lenMin(1) && lenMax(100)"},
		map[string]any{"property": "patient_id", "rule": "regex('^[0-9]{5}$')"},
		map[string]any{"property": "age", "rule": "integer && between(0, 120)"},
	}})
	if len(problems) != 0 {
		b.Fatal(problems)
	}
	doc := map[string]any{
		"_id": "r1", "type": "data_record", "form": "REG", "reported_date": 1714557600000.0, "from": "+254712345678",
		"fields": map[string]any{"patient_name": "Paula Patient", "patient_id": "12345", "age": "34"},
	}
	env := Env{Now: time.UnixMilli(1714557600000), Location: time.UTC}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if f, err := Validate(ctx, cfg, doc, env); err != nil || len(f) != 0 {
			b.Fatal(f, err)
		}
	}
}
