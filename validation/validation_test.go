package validation

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// Fixed clock: reports are made 2024-05-01T10:00:00Z.
var (
	testNow      = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	testReported = float64(testNow.UnixMilli())
)

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

func testStore() *fakeStore {
	return &fakeStore{
		reports: []map[string]any{
			{"_id": "r0", "type": "data_record", "form": "REG", "reported_date": ms(testNow.Add(-48 * time.Hour)),
				"fields": map[string]any{"patient_id": "12345", "name": "ABC Person", "lmp_date": "2024-01-01", "count": 123.0}},
			{"_id": "r1", "type": "data_record", "form": "VISIT", "reported_date": ms(testNow.Add(-time.Hour)),
				"fields": map[string]any{"patient_id": "55555", "visit": "2"}},
			{"_id": "bad", "type": "data_record", "form": "REG", "reported_date": ms(testNow),
				"errors": []any{map[string]any{"code": "x"}}, "fields": map[string]any{"patient_id": "77777"}},
			{"_id": "self", "type": "data_record", "form": "REG", "reported_date": ms(testNow),
				"fields": map[string]any{"patient_id": "88888"}},
			{"_id": "msg", "type": "data_record", "reported_date": ms(testNow),
				"fields": map[string]any{"patient_id": "66666"}}, // no form: not a report
		},
		phones: map[string]bool{"+254700000000": true},
	}
}

func testEnv(s Store) Env {
	return Env{Store: s, Now: testNow, Location: time.UTC, DefaultCountryCode: "254", PhoneValidation: "full"}
}

// run validates one rule on property "x" of a doc whose fields are given.
func run(t *testing.T, rule string, fields map[string]any, env Env) (bool, error) {
	t.Helper()
	doc := map[string]any{"_id": "self", "type": "data_record", "form": "REG", "reported_date": testReported, "fields": fields}
	cfg, problems := ParseConfig(map[string]any{"list": []any{map[string]any{"property": "x", "rule": rule}}})
	for _, p := range problems {
		if !p.Warning && !strings.HasSuffix(p.Path, ".rule") {
			t.Fatalf("config problem: %v", p)
		}
	}
	failures, err := Validate(context.Background(), cfg, doc, env)
	return len(failures) == 0, err
}

type fnCase struct {
	rule   string
	fields map[string]any
	want   bool
	err    bool // a *RuleError is expected
}

func x(v any) map[string]any { return map[string]any{"x": v} }

func runCases(t *testing.T, cases []fnCase, env Env) {
	t.Helper()
	for _, tc := range cases {
		got, err := run(t, tc.rule, tc.fields, env)
		if tc.err {
			var re *RuleError
			if !errors.As(err, &re) {
				t.Errorf("%s on %v: want a RuleError, got %v, %v", tc.rule, tc.fields, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s on %v: unexpected error %v", tc.rule, tc.fields, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s on %v = %v; want %v", tc.rule, tc.fields, got, tc.want)
		}
	}
}

func TestFunctions(t *testing.T) {
	cases := []fnCase{
		// equals / sEquals: loose / strict
		{"equals('5')", x(5.0), true, false},
		{"equals(5)", x("5"), true, false},
		{"equals(0)", x(""), true, false},
		{"equals('abc')", x("abc"), true, false},
		{"equals('abc')", x("ABC"), false, false},
		{"equals()", x(""), false, false},
		{"equals('1')", x(true), true, false},
		{"sEquals(5)", x(5.0), true, false},
		{"sEquals('5')", x(5.0), false, false},
		{"sEquals('a')", x("a"), true, false},
		{"sEquals()", x(""), false, false},
		// iEquals / siEquals: lower-cased; error when v is not a string
		{"iEquals('ABC')", x("abc"), true, false},
		{"iEquals('abc')", x("AbC"), true, false},
		{"iEquals('abd')", x("AbC"), false, false},
		{"iEquals(5)", x("5"), true, false},
		{"iEquals('5')", x(5.0), false, true},
		{"iEquals('true')", x(true), false, true},
		{"siEquals('ABC')", x("abc"), true, false},
		{"siEquals(5)", x("5"), false, false},
		{"siEquals('5')", x(5.0), false, true},
		// lenMin / lenMax: numbers have no length
		{"lenMin(3)", x("abc"), true, false},
		{"lenMin(3)", x("ab"), false, false},
		{"lenMin(3)", x(12345.0), false, false},
		{"lenMin(1)", x(true), false, false},
		{"lenMin(3)", x([]any{1.0, 2.0, 3.0}), true, false},
		{"lenMin('2')", x("ab"), true, false},
		{"lenMin()", x("abc"), false, false},
		{"lenMin(2)", x("😀"), true, false}, // UTF-16 length
		{"lenMin(2)", x("é"), false, false},
		{"lenMax(3)", x("abcd"), false, false},
		{"lenMax(3)", x("abc"), true, false},
		{"lenMax(3)", x(1.0), false, false},
		{"lenMax(0)", map[string]any{}, true, false},
		// lenEquals: String(v)
		{"lenEquals(5)", x(12345.0), true, false},
		{"lenEquals(3)", x("abc"), true, false},
		{"lenEquals('3')", x("abc"), true, false},
		{"lenEquals(4)", x(true), true, false},
		{"lenEquals(2)", x(true), false, false},
		{"lenEquals()", x(""), false, false},
		// min / max / between: parseFloat
		{"min(5)", x("5"), true, false},
		{"min(5)", x("4.9"), false, false},
		{"min(5)", x("10abc"), true, false},
		{"min(5)", x("abc"), false, false},
		{"min(5)", x(6.0), true, false},
		{"min('5')", x(6.0), true, false},
		{"min(-1)", x(" -0.5"), true, false},
		{"min()", x(6.0), false, false},
		{"max(5)", x("5.1"), false, false},
		{"max(5)", x(5.0), true, false},
		{"max(5)", x(""), false, false},
		{"max(5)", x(".5"), true, false},
		{"between(1, 10)", x(1.0), true, false},
		{"between(1, 10)", x("10"), true, false},
		{"between(1, 10)", x(0.5), false, false},
		{"between(1, 10)", x(11.0), false, false},
		{"between(1, 10)", x("abc"), false, false},
		{"between(1)", x(5.0), false, false},
		{"between(1e0, 1E1)", x(5.0), true, false},
		// in
		{"in('a', 'b', 3)", x("a"), true, false},
		{"in('a', 'b', 3)", x("c"), false, false},
		{"in('a', 'b', 3)", x("3"), true, false},
		{"in('a', 'b', '3')", x(3.0), true, false},
		{"in()", x(""), false, false},
		// required / optional
		{"required", x(""), false, false},
		{"required", x(0.0), false, false},
		{"required", x(false), false, false},
		{"required", x("0"), true, false},
		{"required", x("x"), true, false},
		{"required", map[string]any{}, false, false},
		{"required", x([]any{}), true, false},
		{"required()", x(map[string]any{}), true, false},
		{"optional", x(""), true, false},
		{"optional", x(nil), true, false},
		// numeric
		{"numeric", x("12"), true, false},
		{"numeric", x("12.5"), true, false},
		{"numeric", x(" 12 "), true, false},
		{"numeric", x("1e3"), true, false},
		{"numeric", x("12abc"), false, false},
		{"numeric", x("abc"), false, false},
		{"numeric", x(""), false, false},
		{"numeric", x(5.0), true, false},
		{"numeric", x("Infinity"), false, false},
		{"numeric", x(true), false, false},
		// integer: parseInt(v, 10) == v
		{"integer", x("12"), true, false},
		{"integer", x(12.0), true, false},
		{"integer", x(12.5), false, false},
		{"integer", x("12.0"), true, false},
		{"integer", x("12abc"), false, false},
		{"integer", x(""), false, false},
		{"integer", x("-3"), true, false},
		{"integer", x(true), false, false},
		{"integer", x(1e21), false, false},
		// alpha / alphaNumeric / email
		{"alpha", x("abcXYZ"), true, false},
		{"alpha", x("ab1"), false, false},
		{"alpha", x(""), false, false},
		{"alpha", x("é"), false, false},
		{"alphaNumeric", x("ab1"), true, false},
		{"alphaNumeric", x(5.0), true, false},
		{"alphaNumeric", x("a b"), false, false},
		{"email", x("a@b.co"), true, false},
		{"email", x("A.B+c@EXAMPLE.ORG"), true, false},
		{"email", x("a@b"), false, false},
		{"email", x("a@b.museum"), false, false},
		{"email", x("a@b.com\n"), false, false},
		// regex: JS RegExp, not anchored
		{"regex('^[0-9]{5}$')", x("12345"), true, false},
		{"regex('^[0-9]{5}$')", x("1234"), false, false},
		{"regex('^[0-9]{5}$')", x(12345.0), true, false},
		{"regex('[0-9]{3}')", x("ab123cd"), true, false},
		{"regex('^abc', 'i')", x("ABCd"), true, false},
		{`regex('\d{2}')`, x("a12"), true, false},
		{`regex("a'b")`, x("xa'b"), true, false},
		{`regex('^abc$')`, x("abc\n"), false, false},
		{`regex('^abc$', 'm')`, x("abc\nd"), true, false},
		{`regex('(?<=a)b')`, x("ab"), true, false},
		{`regex('b', 'y')`, x("ab"), false, false},
		{`regex('a', 'y')`, x("ab"), true, false},
		{`regex('a', 'g')`, x("ba"), true, false},
		{`regex()`, x("anything"), true, false},
		{`regex('[')`, x("x"), false, true},
		{`regex('a', 'z')`, x("a"), false, true},
		{`regex('a', 'gg')`, x("a"), false, true},
		// equalsTo
		{"equalsTo('y')", map[string]any{"x": "5", "y": 5.0}, true, false},
		{"equalsTo('y')", map[string]any{"x": "a", "y": "b"}, false, false},
		{"equalsTo('y')", map[string]any{"x": ""}, true, false},
		// validPhone / uniquePhone take a field name and ignore v
		{"validPhone('phone')", map[string]any{"phone": "+254712345678"}, true, false},
		{"validPhone('phone')", map[string]any{"phone": "0712345678"}, true, false},
		{"validPhone('phone')", map[string]any{"phone": "12"}, false, false},
		{"validPhone('phone')", map[string]any{"phone": "+2547123456a8"}, false, false},
		{"validPhone('phone')", map[string]any{}, false, false},
		{"validPhone('phone')", map[string]any{"phone": 712345678.0}, true, false},
		{"uniquePhone('phone')", map[string]any{"phone": "+254700000000"}, false, false},
		{"uniquePhone('phone')", map[string]any{"phone": "+254711111111"}, true, false},
		// otherName('field', …)
		{"otherEquals('country', 'US')", map[string]any{"country": "US"}, true, false},
		{"otherEquals('country', 'US')", map[string]any{"country": "KE"}, false, false},
		{"otherLenMin('name', 3)", map[string]any{"name": "abc", "x": ""}, true, false},
		{"OTHERREQUIRED('name')", map[string]any{"x": "a"}, false, false},
		{"otherIEquals('n', 'a')", map[string]any{"n": 1.0}, false, true},
		{"otherNoSuch('n', 'a')", map[string]any{}, true, false},
	}
	runCases(t, cases, testEnv(testStore()))
}

func TestNumberAndPhoneEnv(t *testing.T) {
	env := testEnv(testStore())
	env.DefaultCountryCode = ""
	runCases(t, []fnCase{
		{"validPhone('phone')", map[string]any{"phone": "0712345678"}, false, false},
		{"validPhone('phone')", map[string]any{"phone": "+254712345678"}, true, false},
	}, env)
	env.PhoneValidation = "none"
	runCases(t, []fnCase{{"validPhone('phone')", map[string]any{"phone": "12"}, true, false}}, env)
}

func TestDates(t *testing.T) {
	cases := []fnCase{
		{"isAfter('0 days')", x("2024-05-01"), true, false},
		{"isAfter('0 days')", x("2024-04-30"), false, false},
		{"isAfter('0 days')", x(ms(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))), true, false},
		{"isAfter('0 days')", x("2024-05-01T00:00:00.000Z"), true, false},
		{"isAfter('0 days')", x("2024-04-30T23:59:59Z"), false, false},
		{"isAfter('2 weeks')", x("2024-05-15"), true, false},
		{"isAfter('2 weeks')", x("2024-05-14"), false, false},
		{"isAfter('1 day')", x("2024-05-02 08:00"), true, false},
		{"isAfter('12 hours')", x("2024-05-01"), true, false},
		{"isAfter('14 hours')", x("2024-05-01"), false, false},
		{"isAfter('2 DAYS')", x("2024-05-03"), true, false},
		{"isBefore('1 year')", x("2023-05-01"), true, false},
		{"isBefore('1 year')", x("2023-05-02"), false, false},
		{"isBefore('-1 days')", x("2024-05-02"), true, false},
		{"isBefore('-1 days')", x("2024-05-03"), false, false},
		{"isBefore('1 month')", x("2024-04-01"), true, false},
		{"isBefore('1 month')", x("2024-04-02"), false, false},
		{"isBefore('0 seconds')", x(testReported), true, false},
		// invalid duration or date: false
		{"isAfter('2 fortnights')", x("2030-01-01"), false, false},
		{"isAfter('x')", x("2030-01-01"), false, false},
		{"isAfter('two days')", x("2030-01-01"), false, false},
		{"isAfter()", x("2030-01-01"), false, false},
		{"isAfter(2)", x("2030-01-01"), false, false},
		{"isAfter('0 days')", x("not a date"), false, false},
		{"isAfter('0 days')", x(""), false, false},
		{"isAfter('0 days')", x(true), false, false},
		{"isAfter('0 days')", x("2024-13-01"), false, false},
		// isISOWeek
		{"isISOWeek('week', 'year')", map[string]any{"week": "1", "year": "2020"}, true, false},
		{"isISOWeek('week', 'year')", map[string]any{"week": "53", "year": "2020"}, true, false},
		{"isISOWeek('week', 'year')", map[string]any{"week": "53", "year": "2021"}, false, false},
		{"isISOWeek('week', 'year')", map[string]any{"week": "0", "year": "2021"}, false, false},
		{"isISOWeek('week', 'year')", map[string]any{"week": "100", "year": "2021"}, false, false},
		{"isISOWeek('week', 'year')", map[string]any{"week": "ab", "year": "2021"}, false, false},
		{"isISOWeek('week', 'year')", map[string]any{"week": 5.0, "year": 2021.0}, true, false},
		{"isISOWeek('week', 'year')", map[string]any{"week": "5", "year": "21"}, false, false},
		{"isISOWeek('week', 'year')", map[string]any{"week": "5"}, false, false},
		{"isISOWeek('week')", map[string]any{"week": "52"}, true, false}, // 2024: 52 weeks
		{"isISOWeek('week')", map[string]any{"week": "53"}, false, false},
		{"isISOWeek('week')", map[string]any{"week": "07"}, true, false},
	}
	runCases(t, cases, testEnv(testStore()))
}

func TestDatesZoneAndMonths(t *testing.T) {
	nairobi := time.FixedZone("EAT", 3*3600)
	env := testEnv(testStore())
	env.Location = nairobi
	reported := time.Date(2024, 5, 1, 22, 0, 0, 0, time.UTC) // 2 May 01:00 in Nairobi
	check := func(rule string, v any, loc *time.Location, rd any, want bool) {
		t.Helper()
		env.Location = loc
		doc := map[string]any{"_id": "d", "fields": map[string]any{"x": v}}
		if rd != nil {
			doc["reported_date"] = rd
		}
		cfg, _ := ParseConfig(map[string]any{"list": []any{map[string]any{"property": "x", "rule": rule}}})
		f, err := Validate(context.Background(), cfg, doc, env)
		if err != nil || (len(f) == 0) != want {
			t.Errorf("%s on %v (zone %v, reported %v) = %v, %v; want %v", rule, v, loc, rd, len(f) == 0, err, want)
		}
	}
	check("isAfter('0 days')", "2024-05-02", nairobi, ms(reported), true)
	check("isAfter('0 days')", "2024-05-01", nairobi, ms(reported), false)
	check("isAfter('0 days')", "2024-05-01", time.UTC, ms(reported), true)
	// months clamp to the end of the shorter month
	jan31 := ms(time.Date(2024, 1, 31, 12, 0, 0, 0, time.UTC))
	check("isAfter('1 month')", "2024-02-29", time.UTC, jan31, true)
	check("isAfter('1 month')", "2024-02-28", time.UTC, jan31, false)
	check("isAfter('1 year')", "2025-01-31", time.UTC, jan31, true)
	// no reported_date: relative to now
	check("isAfter('1 day')", "2024-05-02", time.UTC, nil, true)
	check("isAfter('1 day')", "2024-05-01", time.UTC, nil, false)
}

func TestDatabaseFunctions(t *testing.T) {
	cases := []fnCase{
		// exists(form, field)
		{"exists('REG', 'patient_id')", map[string]any{"patient_id": "12345"}, true, false},
		{"exists('reg', 'patient_id')", map[string]any{"patient_id": "12345"}, true, false},
		{"exists('REG', 'patient_id')", map[string]any{"patient_id": "99999"}, false, false},
		{"exists('VISIT', 'patient_id')", map[string]any{"patient_id": "12345"}, false, false},
		{"exists('REG', 'patient_id')", map[string]any{"patient_id": "77777"}, false, false}, // report with errors
		{"exists('REG', 'patient_id')", map[string]any{"patient_id": "88888"}, false, false}, // only the doc itself
		{"exists('REG', 'patient_id')", map[string]any{"patient_id": "66666"}, false, false}, // no form
		{"exists('REG', 'name')", map[string]any{"name": "abc person"}, true, false},         // values lower-cased
		{"exists('REG', 'Name')", map[string]any{"Name": "abc person"}, false, false},        // keys are not
		{"exists('REG', 'lmp_date')", map[string]any{"lmp_date": "2024-01-01"}, false, false},
		{"exists('REG', 'count')", map[string]any{"count": 123.0}, true, false},
		{"exists('REG', 'count')", map[string]any{"count": "123"}, true, false},
		{"exists('REG')", map[string]any{"patient_id": "12345"}, false, false},
		// unique(f1, …)
		{"unique('patient_id')", map[string]any{"patient_id": "12345"}, false, false},
		{"unique('patient_id')", map[string]any{"patient_id": "99999"}, true, false},
		{"unique('patient_id')", map[string]any{"patient_id": "77777"}, true, false},
		{"unique('patient_id')", map[string]any{"patient_id": "88888"}, true, false},
		{"unique('form', 'patient_id')", map[string]any{"patient_id": "12345"}, false, false},
		{"unique('form', 'patient_id')", map[string]any{"patient_id": "55555"}, true, false}, // other form
		{"unique('patient_id', 'name')", map[string]any{"patient_id": "12345", "name": "Other"}, true, false},
		{"unique('patient_id', 'name')", map[string]any{"patient_id": "12345", "name": "abc PERSON"}, false, false},
		{"unique('lmp_date')", map[string]any{"lmp_date": "2024-01-01"}, true, false},
		{"unique('Patient_ID')", map[string]any{"Patient_ID": "12345"}, true, false},
		{"unique('count')", map[string]any{"count": 123.0}, false, false},
		{"unique('patient_id')", map[string]any{}, true, false},
		{"unique()", map[string]any{}, true, false},
		// uniqueWithin(f1, …, 'N unit')
		{"uniqueWithin('patient_id', '1 day')", map[string]any{"patient_id": "12345"}, true, false},
		{"uniqueWithin('patient_id', '3 days')", map[string]any{"patient_id": "12345"}, false, false},
		{"uniqueWithin('patient_id', '2 hours')", map[string]any{"patient_id": "55555"}, false, false},
		{"uniqueWithin('patient_id', '30 minutes')", map[string]any{"patient_id": "55555"}, true, false},
		{"uniqueWithin('form', 'patient_id', '1 week')", map[string]any{"patient_id": "12345"}, false, false},
		{"uniqueWithin('patient_id', 'soon')", map[string]any{"patient_id": "99999"}, false, false},
		{"uniqueWithin()", map[string]any{"patient_id": "99999"}, false, false},
	}
	runCases(t, cases, testEnv(testStore()))

	// Database errors and a missing Store give false.
	failing := &fakeStore{fail: true}
	down := []fnCase{
		{"exists('REG', 'patient_id')", map[string]any{"patient_id": "12345"}, false, false},
		{"unique('patient_id')", map[string]any{"patient_id": "99999"}, false, false},
		{"uniqueWithin('patient_id', '1 day')", map[string]any{"patient_id": "99999"}, false, false},
		{"uniquePhone('phone')", map[string]any{"phone": "+254711111111"}, false, false},
		{"!unique('patient_id')", map[string]any{"patient_id": "99999"}, true, false},
	}
	runCases(t, down, testEnv(failing))
	runCases(t, down, testEnv(nil))
	// A field that can never match needs no database.
	runCases(t, []fnCase{{"unique('lmp_date')", map[string]any{"lmp_date": "x"}, true, false}}, testEnv(failing))
}

func TestLanguage(t *testing.T) {
	cases := []fnCase{
		// the spec's ternary example
		{"otherEquals('country', 'US') ? lenMin(2) : lenMin(0)", map[string]any{"country": "US", "x": "a"}, false, false},
		{"otherEquals('country', 'US') ? lenMin(2) : lenMin(0)", map[string]any{"country": "US", "x": "ab"}, true, false},
		{"otherEquals('country', 'US') ? lenMin(2) : lenMin(0)", map[string]any{"country": "KE", "x": ""}, true, false},
		// no precedence: a || b && c = (a || b) && c
		{"lenMin(1) || lenMin(100) && lenMax(2)", x("abcd"), false, false},
		{"lenMin(1) || (lenMin(100) && lenMax(2))", x("abcd"), true, false},
		{"lenMax(2) && lenMin(100) || lenMin(1)", x("abcd"), true, false},
		{"equals('a') || equals('b') && lenMin(5)", x("a"), false, false},
		// ! applies to the next term
		{"!lenMin(3)", x("ab"), true, false},
		{"!lenMin(3) && lenMin(1)", x("ab"), true, false},
		{"!(lenMin(1) && lenMin(3))", x("ab"), true, false},
		{"!!required", x("a"), true, false},
		{"! required", x(""), true, false},
		// ternary: condition is everything before '?', else runs to the end
		{"equals('a') ? optional : lenMin(5) && lenMax(1)", x("a"), true, false},
		{"equals('a') ? optional : lenMin(5) && lenMax(1)", x("b"), false, false},
		{"lenMin(100) || equals('a') ? required : lenMin(100)", x("a"), true, false},
		{"(equals('a') ? lenMin(5) : optional) || equals('a')", x("a"), true, false},
		{"equals('a') ? equals('b') ? optional : lenMin(100) : optional", x("a"), false, false},
		{"equals('a') ? optional : equals('b') ? lenMin(100) : optional", x("b"), false, false},
		{"equals('a') ? optional : equals('b') ? lenMin(100) : optional", x("c"), true, false},
		{"(equals('a') ? optional : lenMin(100)) && lenMax(0)", x("a"), false, false},
		// every term is evaluated: no short circuit, both ternary branches
		{"optional || iEquals('x')", x(1.0), false, true},
		{"required && iEquals('x')", x(0.0), false, true},
		{"equals(1) ? optional : iEquals('x')", x(1.0), false, true},
		// names are case-insensitive; bare name = call without arguments
		{"LENMIN(2)", x("ab"), true, false},
		{"Required", x(""), false, false},
		{"required()", x(""), false, false},
		{"alphanumeric && ALPHANUMERIC()", x("ab1"), true, false},
		// white space, both quote styles, backslashes kept
		{"  lenMin ( 2 )\t&&\nlenMax( 3 ) ", x("abc"), true, false},
		{`in("a", 'b')`, x("b"), true, false},
		{`equals('a"b')`, x(`a"b`), true, false},
		{`equals("a\b")`, x(`a\b`), true, false},
		{`equals('&& || ( ) ? :')`, x("&& || ( ) ? :"), true, false},
		{"between(-1.5, +2.)", x("0"), true, false},
		// unknown functions are true
		{"noSuchFunction(3)", x("a"), true, false},
		{"noSuchFunction('a', 1) && lenMin(5)", x("a"), false, false},
		{"!noSuchFunction", x("a"), false, false},
		{"false", x("a"), true, false}, // a bare name: unknown function
		// empty rule is true
		{"", x("a"), true, false},
		{"   ", x(""), true, false},
	}
	runCases(t, cases, testEnv(testStore()))
}

func TestEveryTermEvaluated(t *testing.T) {
	s := testStore()
	_, err := run(t, "optional || unique('patient_id') || exists('REG', 'patient_id')", map[string]any{"patient_id": "12345"}, testEnv(s))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.calls) != 2 {
		t.Errorf("store calls = %v; want both terms evaluated", s.calls)
	}
}

func TestParseErrors(t *testing.T) {
	bad := []string{
		`regex(\d{5})`,
		`lenMin(3`,
		`lenMin(3))`,
		`lenMin(abc)`,
		`lenMin(3abc)`,
		`lenMin(3,)`,
		`lenMin(,3)`,
		`lenMin(3 4)`,
		`lenMin(3) lenMax(4)`,
		`required optional`,
		`a & b`,
		`a | b`,
		`a ? b`,
		`a ? b : `,
		`? a : b`,
		`a : b`,
		`'x'`,
		`5`,
		`&& a`,
		`a &&`,
		`a || || b`,
		`regex('abc)`,
		`regex("abc')`,
		`()`,
		`(a`,
		`a)`,
		`!`,
		`-`,
		`lenMin(-)`,
		`lenMin(.)`,
		`lenMin(1.2.3)`,
		`a = b`,
		`a == b`,
		`a;b`,
		`lenMin((3))`,
		`f(g())`,
		strings.Repeat("(", 1000) + "a" + strings.Repeat(")", 1000),
		strings.Repeat("!", 1000) + "a",
	}
	for _, rule := range bad {
		r, err := Compile(rule)
		var pe *ParseError
		if !errors.As(err, &pe) || r != nil {
			t.Errorf("Compile(%q) = %v, %v; want a ParseError", rule, r, err)
			continue
		}
		if pe.Offset < 0 || pe.Offset > len(rule) {
			t.Errorf("Compile(%q): offset %d out of range", rule, pe.Offset)
		}
	}
	good := []string{
		"", "a", "a()", "a(1)", "a('x', \"y\", -1.5e3)", "!a", "(a)", "((a))", "a && b || !c", "a ? b : c",
		"(a ? b : c) && d", "a ? (b ? c : d) : e", "$x_1", "é(1)", strings.Repeat("(", 100) + "a" + strings.Repeat(")", 100),
	}
	for _, rule := range good {
		if _, err := Compile(rule); err != nil {
			t.Errorf("Compile(%q): %v", rule, err)
		}
	}
}

func TestUnknownFunctions(t *testing.T) {
	r, err := Compile("noSuch(1) && lenMin(2) || OtherNope('a') || otherLenMin('a', 1) || noSuch")
	if err != nil {
		t.Fatal(err)
	}
	got := r.UnknownFunctions()
	if strings.Join(got, ",") != "noSuch,OtherNope" {
		t.Errorf("UnknownFunctions = %v", got)
	}
	if r.String() != "noSuch(1) && lenMin(2) || OtherNope('a') || otherLenMin('a', 1) || noSuch" {
		t.Errorf("String = %q", r.String())
	}
}

func TestRuleErrorMessage(t *testing.T) {
	// A runtime error (iEquals on a number) aborts the whole list.
	cfg, _ := ParseConfig(map[string]any{"join_responses": true, "list": []any{
		map[string]any{"property": "a", "rule": "lenMin(5)"},
		map[string]any{"property": "n", "rule": "iEquals('x')"},
	}})
	doc := map[string]any{"_id": "d", "fields": map[string]any{"a": "x", "n": 5.0}}
	failures, err := Validate(context.Background(), cfg, doc, testEnv(nil))
	var re *RuleError
	if !errors.As(err, &re) || failures != nil {
		t.Fatalf("Validate = %v, %v; want a RuleError and no failures", failures, err)
	}
	if got := re.Message(); got != "Error on pupil validations: {}" {
		t.Errorf("Message() = %q", got)
	}
	if re.Property != "n" || re.Rule != "iEquals('x')" || re.Error() == "" {
		t.Errorf("RuleError = %+v", re)
	}

	// A bad regex is a runtime SyntaxError.
	cfg, problems := ParseConfig(map[string]any{"list": []any{map[string]any{"property": "a", "rule": "regex('[')"}}})
	if len(problems) != 1 || !problems[0].Warning || problems[0].Path != "validations.list[0].rule" {
		t.Errorf("problems = %v", problems)
	}
	_, err = Validate(context.Background(), cfg, doc, testEnv(nil))
	if !errors.As(err, &re) || re.Message() != "Error on pupil validations: {}" {
		t.Errorf("regex error = %v", err)
	}

	// A rule that does not parse aborts the list wherever it is.
	cfg, problems = ParseConfig(map[string]any{"list": []any{
		map[string]any{"property": "a", "rule": "lenMin(5)"},
		map[string]any{"property": "b", "rule": `regex(\d{5})`},
	}})
	if len(problems) != 1 || problems[0].Path != "validations.list[1].rule" || !problems[0].Warning {
		t.Errorf("problems = %v", problems)
	}
	failures, err = Validate(context.Background(), cfg, doc, testEnv(nil))
	if !errors.As(err, &re) || failures != nil {
		t.Fatalf("Validate = %v, %v; want a RuleError", failures, err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Errorf("want the ParseError inside, got %v", err)
	}
	msg := re.Message()
	if !strings.HasPrefix(msg, `Error on pupil validations: {"message":"`) || !strings.HasSuffix(msg, `","name":"SyntaxError"}`) {
		t.Errorf("Message() = %q", msg)
	}

	// Entries built by hand compile on the fly.
	_, err = Validate(context.Background(), Config{Entries: []Entry{{Property: "a", Rule: "lenMin("}}}, doc, testEnv(nil))
	if !errors.As(err, &re) {
		t.Errorf("hand-built entry: %v", err)
	}
}

func TestValuesUnderTest(t *testing.T) {
	doc := map[string]any{
		"_id":  "d",
		"from": "+254712345678",
		"x":    "top",
		"y":    "top",
		"z":    "top",
		"fields": map[string]any{
			"x": "field",
			"z": nil,
			"n": nil,
		},
	}
	cfg, problems := ParseConfig(map[string]any{"list": []any{
		map[string]any{"property": "x", "rule": "equals('field')"},             // fields win
		map[string]any{"property": "y", "rule": "equals('top')"},               // top level
		map[string]any{"property": "from", "rule": "validPhone('from')"},       // top-level phone
		map[string]any{"property": "missing", "rule": "sEquals('')"},           // missing -> ""
		map[string]any{"property": "n", "rule": "sEquals('') && lenMax(0)"},    // null -> ""
		map[string]any{"property": "z", "rule": "sEquals('')"},                 // null in fields hides top level
		map[string]any{"property": "missing", "rule": "otherSEquals('q', '')"}, // other missing -> ""
		map[string]any{"property": "missing", "rule": "required"},              // fails
	}})
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	failures, err := Validate(context.Background(), cfg, doc, testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 1 || failures[0].Property != "missing" || failures[0].Entry.Rule != "required" {
		t.Errorf("failures = %+v", failures)
	}
	v := Values(doc)
	if v["x"] != "field" || v["y"] != "top" || v["fields"] == nil {
		t.Errorf("Values = %v", v)
	}
}

func TestFailuresInOrder(t *testing.T) {
	raw := []any{
		map[string]any{"property": "a", "rule": "lenMin(5)", "translation_key": "k.a"},
		map[string]any{"property": "b", "rule": "integer"},
		map[string]any{"property": "a", "rule": "integer", "message": []any{map[string]any{"locale": "en", "content": "A not int"}}},
		map[string]any{"property": "c", "rule": "lenMin(1)"},
	}
	cfg, problems := ParseConfig(map[string]any{"join_responses": "yes", "list": raw})
	if len(problems) != 0 || !cfg.JoinResponses || len(cfg.Entries) != 4 {
		t.Fatalf("ParseConfig = %+v, %v", cfg, problems)
	}
	doc := map[string]any{"fields": map[string]any{"a": "x", "b": "y", "c": "z"}}
	failures, err := Validate(context.Background(), cfg, doc, testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	var props []string
	for _, f := range failures {
		props = append(props, f.Property)
	}
	if strings.Join(props, ",") != "a,b,a" {
		t.Errorf("failed properties = %v", props)
	}
	if failures[0].Entry.Raw["translation_key"] != "k.a" || failures[2].Entry.Raw["message"] == nil {
		t.Errorf("Raw not kept: %+v", failures)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, problems := ParseConfig(nil)
	if len(cfg.Entries) != 0 || cfg.JoinResponses || problems != nil {
		t.Errorf("nil: %+v %v", cfg, problems)
	}
	cfg, problems = ParseConfig(map[string]any{})
	if len(cfg.Entries) != 0 || len(problems) != 0 {
		t.Errorf("empty: %+v %v", cfg, problems)
	}
	cfg, problems = ParseConfig(map[string]any{"join_responses": false, "list": []any{
		map[string]any{"property": "a", "rule": "noSuch(1) && lenMin(1)"},
		"not an object",
		map[string]any{"rule": "lenMin(1)"},
		map[string]any{"property": "c"},
		map[string]any{"property": "d", "rule": 5.0},
		map[string]any{"property": "e", "rule": "isAfter('3 fortnights') || uniqueWithin('f', 'x') || unique('lmp_date')"},
		map[string]any{"property": 7.0, "rule": "lenMin(1)"},
	}})
	want := []ConfigError{
		{"validations.list[0].rule", `unknown function "noSuch" is always true`, true},
		{"validations.list[1]", "is not an object: ignored", false},
		{"validations.list[2].property", "is missing", false},
		{"validations.list[3].rule", "is missing: the entry always passes", true},
		{"validations.list[4].rule", "is not a string: " + listFails, true},
	}
	for i, w := range want {
		if i >= len(problems) || *problems[i] != w {
			t.Errorf("problem %d = %v; want %v", i, problems[i], w)
		}
	}
	var lints int
	for _, p := range problems {
		if p.Path == "validations.list[5].rule" && p.Warning {
			lints++
		}
		if p.Error() == "" {
			t.Error("empty Error()")
		}
	}
	if lints != 3 {
		t.Errorf("want 3 lint warnings for entry 5, got %v", problems)
	}
	if len(cfg.Entries) != 6 || cfg.Entries[5].Property != "7" {
		t.Errorf("entries = %+v", cfg.Entries)
	}
	// The entry whose rule is not a string aborts the list.
	if _, err := Validate(context.Background(), cfg, map[string]any{}, testEnv(nil)); err == nil {
		t.Error("want an error for the non-string rule")
	}

	if _, problems = ParseConfig("x"); len(problems) != 1 || problems[0].Path != "validations" {
		t.Errorf("string config: %v", problems)
	}
	if _, problems = ParseConfig(map[string]any{"list": "x"}); len(problems) != 1 || problems[0].Path != "validations.list" {
		t.Errorf("string list: %v", problems)
	}
	cfg, problems = ParseConfig([]any{map[string]any{"property": "a", "rule": "required"}})
	if len(cfg.Entries) != 1 || len(problems) != 1 || !problems[0].Warning {
		t.Errorf("array config: %+v %v", cfg, problems)
	}
}

func TestJSHelpers(t *testing.T) {
	floats := map[string]float64{
		"12": 12, " 12.5abc": 12.5, "-.5": -0.5, "1e3x": 1000, "1e": 1, "1.e2": 100, "+3": 3,
		"Infinityx": math.Inf(1), "-Infinity": math.Inf(-1), "0x10": 0, "\u00a0 7": 7, "1e400": math.Inf(1),
	}
	for s, want := range floats {
		if got := parseFloat(s); got != want {
			t.Errorf("parseFloat(%q) = %v; want %v", s, got, want)
		}
	}
	for _, s := range []string{"", "abc", ".", "-", "e5", "+-1"} {
		if got := parseFloat(s); !math.IsNaN(got) {
			t.Errorf("parseFloat(%q) = %v; want NaN", s, got)
		}
	}
	ints := map[string]float64{"12": 12, "12.9": 12, " -7x": -7, "007": 7, "1e21": 1}
	for s, want := range ints {
		if got := parseInt10(s); got != want {
			t.Errorf("parseInt(%q) = %v; want %v", s, got, want)
		}
	}
	if !math.IsNaN(parseInt10("x1")) || !math.IsNaN(parseInt10(true)) {
		t.Error("parseInt should be NaN")
	}
	if utf16Len("a😀é") != 4 {
		t.Error("utf16Len")
	}
	if jsLower("İA") != "i\u0307a" {
		t.Error("jsLower")
	}
}

func TestDurations(t *testing.T) {
	base := time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{"1 second", base.Add(time.Second)},
		{"2 minutes", base.Add(2 * time.Minute)},
		{"1.5 hours", base.Add(90 * time.Minute)},
		{"1 day", base.AddDate(0, 0, 1)},
		{"1.5 days", base.AddDate(0, 0, 2)},
		{"2 weeks", base.AddDate(0, 0, 14)},
		{"1 month", time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)},
		{"13 months", time.Date(2025, 2, 28, 10, 0, 0, 0, time.UTC)},
		{"1 year", time.Date(2025, 1, 31, 10, 0, 0, 0, time.UTC)},
		{"-1 month", time.Date(2023, 12, 31, 10, 0, 0, 0, time.UTC)},
		{" 3   Days ", base.AddDate(0, 0, 3)},
	}
	for _, tc := range cases {
		d, ok := parseDuration(tc.in)
		if !ok {
			t.Errorf("parseDuration(%q) failed", tc.in)
			continue
		}
		if got := d.addTo(base, 1); !got.Equal(tc.want) {
			t.Errorf("%q: %v; want %v", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{"", "1", "day", "1 fortnight", "x days", "1 day ago", "1e9 years", "0x1 days"} {
		if _, ok := parseDuration(in); ok {
			t.Errorf("parseDuration(%q) should fail", in)
		}
	}
}

func TestConcurrentValidate(t *testing.T) {
	cfg, _ := ParseConfig(map[string]any{"list": []any{
		map[string]any{"property": "x", "rule": "regex('^[a-z]+$', 'i') && lenMin(2)"},
		map[string]any{"property": "p", "rule": "validPhone('p') && uniquePhone('p')"},
		map[string]any{"property": "x", "rule": "isAfter('1 day') || unique('x')"},
	}})
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- true }()
			for i := 0; i < 50; i++ {
				doc := map[string]any{"_id": "d", "reported_date": testReported, "fields": map[string]any{"x": "Abc", "p": "0712345678"}}
				if _, err := Validate(context.Background(), cfg, doc, testEnv(&fakeStore{})); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}
