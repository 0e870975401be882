package smsparse

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// eat is a fixed zone so that "local midnight" is not UTC in the tests.
var eat = time.FixedZone("EAT", 3*3600)

func loadForms(t testing.TB) *Forms {
	t.Helper()
	raw, err := os.ReadFile("testdata/forms.json")
	if err != nil {
		t.Fatal(err)
	}
	forms, err := ParseForms(raw)
	if err != nil {
		t.Fatal(err)
	}
	return forms
}

func ms(y int, m time.Month, d int) float64 {
	return float64(time.Date(y, m, d, 0, 0, 0, 0, eat).UnixMilli())
}

// jsonValue round-trips v through JSON so that expectations can be written
// as JSON text.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func parseJSON(t *testing.T, s string) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("bad expectation %s: %v", s, err)
	}
	return out
}

func errorCodes(errs []map[string]any) []string {
	codes := []string{}
	for _, e := range errs {
		codes = append(codes, e["code"].(string))
	}
	return codes
}

func fakeTranslate(locale, key string) string {
	table := map[string]string{
		"en|form.c.severe":       "Severe",
		"fr|form.c.severe":       "Grave",
		"sw|n":                   "maelezo",
		"en|sys.missing_fields":  "Missing: {{fields}}",
		"en|sys.form_not_found":  "Unknown form",
		"fr|sys.incorrect_type":  "Type incorrect",
		"en|form.v.notes.ignore": "",
	}
	return table[locale+"|"+key]
}

func TestParseFormsOrderAndShape(t *testing.T) {
	forms := loadForms(t)
	keys := func(code string) []string {
		var out []string
		for _, f := range forms.Get(code).Fields {
			out = append(out, f.Key)
		}
		return out
	}
	tests := []struct {
		code string
		want []string
	}{
		// Written order, not alphabetical (lmp < patient_name) nor `position`.
		{"P", []string{"patient_name", "lmp"}},
		{"V", []string{"patient_id", "notes"}},
		{"N", []string{"mother.name", "mother.age", "child.weight"}},
		// JavaScript order: array-index keys first, ascending.
		{"Z", []string{"2", "10", "b", "a"}},
	}
	for _, tt := range tests {
		if got := keys(tt.code); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s fields = %v, want %v", tt.code, got, tt.want)
		}
	}
	if got, want := forms.Codes(), []string{"P", "V", "C", "D", "R", "N", "B", "Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Codes() = %v, want %v", got, want)
	}
	if forms.Get("p") != nil {
		t.Error("Get must match the key exactly")
	}
	v := forms.Get("V")
	if v.FacilityReference != "clinic_code" || v.PublicForm || v.Meta["label"] != "Visit" {
		t.Errorf("V = %+v", v)
	}
	if !forms.Get("D").PublicForm {
		t.Error("D is public")
	}
	f := v.Fields[0]
	if f.Type != "string" || !f.Required || f.Labels["tiny"] != "id" || f.Raw["type"] != "string" {
		t.Errorf("V.patient_id = %+v", f)
	}
	c := forms.Get("C").Fields[1]
	if len(c.List) != 3 || c.List[0][0] != float64(1) || c.List[2][1] != "Critical" {
		t.Errorf("C.severity list = %v", c.List)
	}
	var nilForms *Forms
	if nilForms.Get("V") != nil || nilForms.Codes() != nil {
		t.Error("nil Forms holds nothing")
	}
}

func TestParseFormsEdges(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr bool
		codes   []string
	}{
		{"no forms", `{"locale": "en"}`, false, nil},
		{"null forms", `{"forms": null}`, false, nil},
		{"non-object form skipped", `{"forms": {"A": 1, "B": {"fields": {}}}}`, false, []string{"B"}},
		{"invalid json", `{"forms": {`, true, nil},
		{"trailing data", `{"forms": {}} {}`, true, nil},
		{"not an object", `[{"forms": {}}]`, true, nil},
		{"empty", ``, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forms, err := ParseForms([]byte(tt.json))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(forms.Codes(), tt.codes) {
				t.Errorf("codes = %v, want %v", forms.Codes(), tt.codes)
			}
		})
	}

	// A repeated key keeps its first position and its last value, as
	// JSON.parse does.
	forms, err := ParseForms([]byte(`{"forms": {"A": {"fields": {"x": {"type": "string"}, "y": {}, "x": {"type": "integer"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	a := forms.Get("A")
	if len(a.Fields) != 2 || a.Fields[0].Key != "x" || a.Fields[0].Type != "integer" || a.Fields[1].Key != "y" {
		t.Errorf("fields = %+v", a.Fields)
	}
}

func TestFormCode(t *testing.T) {
	forms := loadForms(t)
	tests := []struct{ text, want string }{
		{"V 12345", "V"},
		{"v 12345", "V"},
		{"  V 12345", "V"},
		{"V#ID 1", "V"},
		{"V-1", "V"},
		{"V,1", "V"},
		{"V:1", "V"},
		{"V", "V"},
		{"1!V!12345#x", "V"},
		{"J1!p!Mary#12", "P"},
		{"1! V !x", "V"},
		{"\u200bV 12345", "V"},
		{"V\u200b 12345", "V"},
		{"\ufeffv\u200d#id 1", "V"},
		{"hello world", "HELLO"},
		{"V12345", "V12345"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := FormCode(tt.text, forms); got != tt.want {
			t.Errorf("FormCode(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	forms := loadForms(t)
	base := Options{Locale: "en", DefaultCountryCode: "254", Location: eat}
	withTranslate := base
	withTranslate.Translate = fakeTranslate
	french := withTranslate
	french.Locale = "fr"
	swahili := withTranslate
	swahili.Locale = "sw"
	formsOnly := base
	formsOnly.FormsOnlyMode = true

	tests := []struct {
		name   string
		text   string
		opts   *Options
		form   string
		fields string // JSON
		errs   []string
		refid  string
	}{
		// compact
		{name: "compact order from JSON", text: "P Mary 12", form: "P",
			fields: `{"patient_name": "Mary", "lmp": 12}`},
		{name: "compact quotes group", text: `P "Mary Jane" 12`, form: "P",
			fields: `{"patient_name": "Mary Jane", "lmp": 12}`},
		{name: "compact unquoted two words shift", text: "P Mary Jane 12", form: "P",
			fields: `{"patient_name": "Mary", "lmp": null}`, errs: []string{"sys.incorrect_type"}},
		{name: "compact unterminated quote", text: `P "Mary 12`, form: "P",
			fields: `{"patient_name": "Mary 12", "lmp": null}`, errs: []string{"sys.missing_fields"}},
		{name: "compact last string takes rest", text: "V 12345 feeling  much better ", form: "V",
			fields: `{"patient_id": "12345", "notes": "feeling  much better"}`},
		{name: "compact last string quoted", text: `V 12345 "feeling better"`, form: "V",
			fields: `{"patient_id": "12345", "notes": "feeling better"}`},
		{name: "compact lower-case code", text: "v 12345", form: "V",
			fields: `{"patient_id": "12345", "notes": null}`},
		{name: "compact code delimiter dash", text: "V-12345 ok", form: "V",
			fields: `{"patient_id": "12345", "notes": "ok"}`},
		{name: "compact code delimiter colon", text: "V:12345", form: "V",
			fields: `{"patient_id": "12345", "notes": null}`},
		{name: "compact surplus ignored", text: "P Mary 12 13 14", form: "P",
			fields: `{"patient_name": "Mary", "lmp": 12}`},
		{name: "code alone missing required", text: "V", form: "V",
			fields: `{"patient_id": null, "notes": null}`, errs: []string{"sys.missing_fields"}},
		{name: "incorrect integer", text: "P Mary twelve", form: "P",
			fields: `{"patient_name": "Mary", "lmp": null}`, errs: []string{"sys.incorrect_type"}},
		{name: "decimal is not an integer", text: "P Mary 12.5", form: "P",
			fields: `{"patient_name": "Mary", "lmp": null}`, errs: []string{"sys.incorrect_type"}},
		{name: "negative integer", text: "P Mary -3", form: "P",
			fields: `{"patient_name": "Mary", "lmp": -3}`},
		{name: "json field order numeric keys", text: "Z 1 2 x y z", form: "Z",
			fields: `{"2": 1, "10": 2, "b": "x", "a": "y z"}`},

		// textforms
		{name: "textforms", text: "V #ID 12345 #N feeling better", form: "V",
			fields: `{"patient_id": "12345", "notes": "feeling better"}`},
		{name: "textforms case-insensitive, no spaces", text: "v#id 12345#n ok", form: "V",
			fields: `{"patient_id": "12345", "notes": "ok"}`},
		{name: "textforms field keys", text: "V #Patient_ID 7 #NOTES x", form: "V",
			fields: `{"patient_id": "7", "notes": "x"}`},
		{name: "textforms repeats become arrays", text: "V #n a #id 1 #N b", form: "V",
			fields: `{"patient_id": "1", "notes": ["a", "b"]}`},
		{name: "textforms repeated integers", text: "R #cc x #st 1 #st two", form: "R",
			fields: `{"clinic_code": "x", "stock": [1, null], "comment": null}`, errs: []string{"sys.incorrect_type"}, refid: "X"},
		{name: "textforms unknown keys ignored", text: "V #foo bar #id 1", form: "V",
			fields: `{"patient_id": "1", "notes": null}`},
		{name: "textforms starting with tiny label, no #", text: "V id 12345", form: "V",
			fields: `{"patient_id": "12345", "notes": null}`},
		{name: "textforms starting with short label", text: "V patient id 12345", form: "V",
			fields: `{"patient_id": "12345", "notes": null}`},
		{name: "label needs a word boundary", text: "V identity", form: "V",
			fields: `{"patient_id": "identity", "notes": null}`},
		{name: "textforms tiny label of another locale", text: "P #nom Sita #lmp 4", form: "P",
			fields: `{"patient_name": "Sita", "lmp": 4}`},
		{name: "textforms translated tiny label", text: "V #id 1 #maelezo habari", opts: &swahili, form: "V",
			fields: `{"patient_id": "1", "notes": "habari"}`},
		{name: "textforms blank value", text: "V #id #n x", form: "V",
			fields: `{"patient_id": null, "notes": "x"}`, errs: []string{"sys.missing_fields"}},
		{name: "textforms dotted keys nest", text: "N #mn Jane #cw 3100", form: "N",
			fields: `{"mother": {"name": "Jane", "age": null}, "child": {"weight": 3100}}`},

		// muvuku
		{name: "muvuku", text: "1!V!12345#feeling better", form: "V",
			fields: `{"patient_id": "12345", "notes": "feeling better"}`},
		{name: "muvuku J1 prefix", text: "J1!P!Mary#12", form: "P",
			fields: `{"patient_name": "Mary", "lmp": 12}`},
		{name: "muvuku surplus", text: "1!V!1#x#surplus", form: "V",
			fields: `{"patient_id": "1", "notes": "x"}`, errs: []string{"extra_fields"}},
		{name: "muvuku trailing separator is not surplus", text: "1!V!1#x#", form: "V",
			fields: `{"patient_id": "1", "notes": "x"}`},
		{name: "muvuku wrong type", text: "1!P!Mary#abc", form: "P",
			fields: `{"patient_name": "Mary", "lmp": null}`, errs: []string{"sys.incorrect_type"}},
		{name: "muvuku unknown form", text: "1!XX!1#2", fields: `{}`},

		// values
		{name: "devanagari integer", text: "P Sita १२", form: "P",
			fields: `{"patient_name": "Sita", "lmp": 12}`},
		{name: "devanagari patient_id", text: "V १२३४५ ठीक छ", form: "V",
			fields: `{"patient_id": "12345", "notes": "ठीक छ"}`},
		{name: "list labels", text: "C 123 1 ok", form: "C",
			fields: `{"patient_id": "123", "severity": "Mild", "outcome": "Recovered"}`},
		{name: "list string code matches number", text: "C 123 3 DEAD", form: "C",
			fields: `{"patient_id": "123", "severity": "Critical", "outcome": "Died"}`},
		{name: "list label key untranslated", text: "C 123 2", form: "C",
			fields: `{"patient_id": "123", "severity": "form.c.severe", "outcome": null}`},
		{name: "list label translated", text: "C 123 2", opts: &withTranslate, form: "C",
			fields: `{"patient_id": "123", "severity": "Severe", "outcome": null}`},
		{name: "list label locale", text: "C १२३ १ dead", opts: &french, form: "C",
			fields: `{"patient_id": "123", "severity": "Léger", "outcome": "Décédé"}`},
		{name: "list value not in list", text: "C 123 9 maybe", form: "C",
			fields: `{"patient_id": "123", "severity": 9, "outcome": "maybe"}`},
		{name: "date phone boolean month", text: "D 2024-05-01 0712345678 1 5", form: "D",
			fields: `{"delivery_date": 1714510800000, "phone": "+254712345678", "healthy": true, "month": 5}`},
		{name: "invalid phone kept raw, boolean 0", text: "D 2024-05-01 12ab 0", form: "D",
			fields: `{"delivery_date": 1714510800000, "phone": "12ab", "healthy": false, "month": null}`},
		{name: "impossible date", text: "D 2024-02-30", form: "D",
			fields: `{"delivery_date": null, "phone": null, "healthy": null, "month": null}`, errs: []string{"sys.incorrect_type"}},
		{name: "bad boolean", text: "D 2024-05-01 +254712345678 yes", form: "D",
			fields: `{"delivery_date": 1714510800000, "phone": "+254712345678", "healthy": null, "month": null}`, errs: []string{"sys.incorrect_type"}},
		{name: "missing and incorrect together", text: "D #h maybe", form: "D",
			fields: `{"delivery_date": null, "phone": null, "healthy": null, "month": null}`, errs: []string{"sys.missing_fields", "sys.incorrect_type"}},
		{name: "facility reference", text: "R cl7 10 all good", form: "R",
			fields: `{"clinic_code": "cl7", "stock": 10, "comment": "all good"}`, refid: "CL7"},
		{name: "facility reference field not in form", text: "V 1", form: "V",
			fields: `{"patient_id": "1", "notes": null}`},
		{name: "dotted keys nest", text: "N Jane 25 3200", form: "N",
			fields: `{"mother": {"name": "Jane", "age": 25}, "child": {"weight": 3200}}`},
		{name: "bs without converter", text: "B 1 2080 5 15 2080-06-01", form: "B",
			fields: `{"patient_id": "1", "lmp_year": 2080, "lmp_month": 5, "lmp_day": 15, "lmp_date": null, "edd": null}`},

		// zero-width characters
		{name: "zero-width before code", text: "\u200bV 12345", form: "V",
			fields: `{"patient_id": "12345", "notes": null}`},
		{name: "zero-width in code and values", text: "P\u200c Mary 1\u200b2", form: "P",
			fields: `{"patient_name": "Mary", "lmp": 12}`},

		// plain messages and errors
		{name: "empty", text: "", fields: `{}`, errs: []string{"sys.empty"}},
		{name: "blank", text: " \t\n ", fields: `{}`, errs: []string{"sys.empty"}},
		{name: "only zero-width", text: "\u200b\ufeff", fields: `{}`, errs: []string{"sys.empty"}},
		{name: "empty in forms-only mode", text: "", opts: &formsOnly, fields: `{}`, errs: []string{"sys.empty"}},
		{name: "unknown code is a plain message", text: "hello, how are you", fields: `{}`},
		{name: "unknown code in forms-only mode", text: "hello, how are you", opts: &formsOnly, fields: `{}`, errs: []string{"sys.form_not_found"}},
		{name: "known code in forms-only mode", text: "V 1", opts: &formsOnly, form: "V",
			fields: `{"patient_id": "1", "notes": null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base
			if tt.opts != nil {
				opts = *tt.opts
			}
			got := Parse(tt.text, forms, opts)
			if got.Form != tt.form {
				t.Errorf("Form = %q, want %q", got.Form, tt.form)
			}
			if g, w := jsonValue(t, got.Fields), parseJSON(t, tt.fields); !reflect.DeepEqual(g, w) {
				gb, _ := json.Marshal(got.Fields)
				t.Errorf("Fields = %s, want %s", gb, tt.fields)
			}
			wantErrs := tt.errs
			if wantErrs == nil {
				wantErrs = []string{}
			}
			if g := errorCodes(got.Errors); !reflect.DeepEqual(g, wantErrs) {
				t.Errorf("Errors = %v, want %v", got.Errors, wantErrs)
			}
			for _, e := range got.Errors {
				if m, _ := e["message"].(string); m == "" {
					t.Errorf("error without message: %v", e)
				}
			}
			if got.Refid != tt.refid {
				t.Errorf("Refid = %q, want %q", got.Refid, tt.refid)
			}
			if got.Fields == nil || got.Errors == nil {
				t.Error("Fields and Errors must not be nil")
			}
		})
	}
}

func TestParseErrorDetails(t *testing.T) {
	forms := loadForms(t)
	opts := Options{Location: eat, Translate: fakeTranslate}
	res := Parse("P", forms, opts)
	if len(res.Errors) != 1 {
		t.Fatalf("errors = %v", res.Errors)
	}
	e := res.Errors[0]
	if e["code"] != "sys.missing_fields" || e["message"] != "Missing: {{fields}}" ||
		!reflect.DeepEqual(e["fields"], []any{"patient_name", "lmp"}) {
		t.Errorf("missing error = %v", e)
	}
	opts.Locale = "fr"
	res = Parse("P Mary x", forms, opts)
	if e := res.Errors[0]; e["message"] != "Type incorrect" || !reflect.DeepEqual(e["fields"], []any{"lmp"}) {
		t.Errorf("incorrect error = %v", e)
	}
	res = Parse("xyz", forms, Options{FormsOnlyMode: true, Translate: fakeTranslate})
	if e := res.Errors[0]; e["message"] != "Unknown form" {
		t.Errorf("form_not_found error = %v", e)
	}
}

func TestParsePhoneNormalizer(t *testing.T) {
	forms := loadForms(t)
	opts := Options{Location: eat, Normalize: func(s string) (string, bool) {
		return "norm:" + s, true
	}}
	res := Parse("D #dd 2024-05-01 #ph 0712", forms, opts)
	if res.Fields["phone"] != "norm:0712" {
		t.Errorf("phone = %v", res.Fields["phone"])
	}
}

func TestParseDateLocation(t *testing.T) {
	forms := loadForms(t)
	res := Parse("D 2024-05-01", forms, Options{Location: time.UTC})
	if got, want := res.Fields["delivery_date"], float64(1714521600000); got != want {
		t.Errorf("UTC midnight = %v, want %v", got, want)
	}
	res = Parse("D 2024-05-01", forms, Options{Location: eat})
	if got, want := res.Fields["delivery_date"], ms(2024, time.May, 1); got != want {
		t.Errorf("EAT midnight = %v, want %v", got, want)
	}
}

func TestParseBikramSambat(t *testing.T) {
	forms := loadForms(t)
	old := BSToAD
	defer func() { BSToAD = old }()
	// A fake conversion: the real table is wired by the daemon.
	BSToAD = func(y, m, d int) (time.Time, bool) {
		if m < 1 || m > 12 || d < 1 || d > 32 {
			return time.Time{}, false
		}
		return time.Date(y-57, time.Month(m), d, 12, 0, 0, 0, time.UTC), true
	}
	opts := Options{Location: eat}
	tests := []struct {
		text   string
		fields string
		errs   []string
	}{
		{"B 1 2080 5 15 2080-06-01", `{"patient_id": "1", "lmp_year": 2080, "lmp_month": 5, "lmp_day": 15,
			"lmp_date": ` + jsonNum(ms(2023, 5, 15)) + `, "edd": ` + jsonNum(ms(2023, 6, 1)) + `}`, []string{}},
		{"B 1 २०८०", `{"patient_id": "1", "lmp_year": 2080, "lmp_month": null, "lmp_day": null,
			"lmp_date": ` + jsonNum(ms(2023, 1, 1)) + `, "edd": null}`, []string{}},
		{"B #id 1 #y 2080 #mo 13", `{"patient_id": "1", "lmp_year": 2080, "lmp_month": 13, "lmp_day": null,
			"lmp_date": null, "edd": null}`, []string{"sys.incorrect_type"}},
		{"B #id 1 #e २०८०-०६-०१", `{"patient_id": "1", "lmp_year": null, "lmp_month": null, "lmp_day": null,
			"lmp_date": null, "edd": ` + jsonNum(ms(2023, 6, 1)) + `}`, []string{}},
		{"B #id 1 #e 2080/13/01", `{"patient_id": "1", "lmp_year": null, "lmp_month": null, "lmp_day": null,
			"lmp_date": null, "edd": null}`, []string{"sys.incorrect_type"}},
	}
	for _, tt := range tests {
		res := Parse(tt.text, forms, opts)
		if g, w := jsonValue(t, res.Fields), parseJSON(t, tt.fields); !reflect.DeepEqual(g, w) {
			gb, _ := json.Marshal(res.Fields)
			t.Errorf("%q: Fields = %s, want %s", tt.text, gb, tt.fields)
		}
		if g := errorCodes(res.Errors); !reflect.DeepEqual(g, tt.errs) {
			t.Errorf("%q: Errors = %v, want %v", tt.text, g, tt.errs)
		}
	}
}

func jsonNum(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func TestParseJSONRecord(t *testing.T) {
	forms := loadForms(t)
	opts := Options{Location: eat}
	tests := []struct {
		name    string
		body    string
		err     error
		form    string
		fields  string
		errs    []string
		meta    string
		refid   string
		nilMeta bool
	}{
		{name: "converts and lower-cases",
			body: `{"_meta": {"form": "d", "from": "+254712345678", "reported_date": "1714550400000", "locale": "sw"},
				"Delivery_Date": "2024-05-01", "HEALTHY": 1, "phone": "0712", "Extra_Thing": {"a": 1}}`,
			form:   "D",
			fields: `{"delivery_date": 1714510800000, "healthy": true, "phone": "0712", "month": null, "extra_thing": {"a": 1}}`,
			errs:   []string{},
			meta:   `{"form": "D", "from": "+254712345678", "reported_date": 1714550400000, "locale": "sw"}`},
		{name: "numbers kept, boolean 0, date ms",
			body:   `{"_meta": {"form": "D", "reported_date": 1714550400000}, "delivery_date": 1714510800000, "healthy": 0, "month": 7}`,
			form:   "D",
			fields: `{"delivery_date": 1714510800000, "healthy": false, "phone": null, "month": 7}`,
			errs:   []string{},
			meta:   `{"form": "D", "reported_date": 1714550400000}`},
		{name: "iso date-time reported date and field",
			body:   `{"_meta": {"form": "D", "reported_date": "2024-05-01T09:00:00.000Z"}, "delivery_date": "2024-05-01T00:00:00Z", "healthy": true}`,
			form:   "D",
			fields: `{"delivery_date": 1714521600000, "healthy": true, "phone": null, "month": null}`,
			errs:   []string{},
			meta:   `{"form": "D", "reported_date": 1714554000000}`},
		{name: "unreadable values and missing required",
			body:   `{"_meta": {"form": "D", "reported_date": "yesterday"}, "healthy": "yes"}`,
			form:   "D",
			fields: `{"delivery_date": null, "healthy": null, "phone": null, "month": null}`,
			errs:   []string{"sys.missing_fields", "sys.incorrect_type"},
			meta:   `{"form": "D"}`},
		{name: "lower-case name wins",
			body:   `{"_meta": {"form": "r"}, "CLINIC_CODE": "a", "clinic_code": "b7", "Stock": 3}`,
			form:   "R",
			fields: `{"clinic_code": "b7", "stock": 3, "comment": null}`,
			errs:   []string{},
			meta:   `{"form": "R"}`,
			refid:  "B7"},
		{name: "dotted keys nest",
			body:   `{"_meta": {"form": "N"}, "mother.name": "Jane", "child.weight": 3000}`,
			form:   "N",
			fields: `{"mother": {"name": "Jane", "age": null}, "child": {"weight": 3000}}`,
			errs:   []string{},
			meta:   `{"form": "N"}`},
		{name: "no meta", body: `{"form": "D"}`, err: ErrNoMeta, fields: `{}`, errs: []string{}, nilMeta: true},
		{name: "no form", body: `{"_meta": {"from": "+1"}}`, err: ErrNoForm, fields: `{}`, errs: []string{}, meta: `{"from": "+1"}`},
		{name: "unknown form", body: `{"_meta": {"form": "xx"}, "a": 1}`, err: ErrFormNotFound, fields: `{}`, errs: []string{}, meta: `{"form": "XX"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body map[string]any
			if err := json.Unmarshal([]byte(tt.body), &body); err != nil {
				t.Fatal(err)
			}
			res, meta, err := ParseJSONRecord(body, forms, opts)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if res.Form != tt.form {
				t.Errorf("Form = %q, want %q", res.Form, tt.form)
			}
			if g, w := jsonValue(t, res.Fields), parseJSON(t, tt.fields); !reflect.DeepEqual(g, w) {
				gb, _ := json.Marshal(res.Fields)
				t.Errorf("Fields = %s, want %s", gb, tt.fields)
			}
			if g := errorCodes(res.Errors); !reflect.DeepEqual(g, tt.errs) {
				t.Errorf("Errors = %v, want %v", g, tt.errs)
			}
			if tt.nilMeta {
				if meta != nil {
					t.Errorf("meta = %v, want nil", meta)
				}
			} else if g, w := jsonValue(t, meta), parseJSON(t, tt.meta); !reflect.DeepEqual(g, w) {
				t.Errorf("meta = %v, want %s", meta, tt.meta)
			}
			if res.Refid != tt.refid {
				t.Errorf("Refid = %q, want %q", res.Refid, tt.refid)
			}
		})
	}
}

func TestParseJSONRecordDoesNotAlias(t *testing.T) {
	forms := loadForms(t)
	body := map[string]any{"_meta": map[string]any{"form": "N"}, "extra": map[string]any{"k": "v"}}
	res, _, err := ParseJSONRecord(body, forms, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res.Fields["extra"].(map[string]any)["k"] = "changed"
	if body["extra"].(map[string]any)["k"] != "v" {
		t.Error("result shares maps with the body")
	}
}

func TestReportedDate(t *testing.T) {
	tests := []struct {
		in   any
		want float64
		ok   bool
	}{
		{float64(1714550400000), 1714550400000, true},
		{json.Number("1714550400000"), 1714550400000, true},
		{"1714550400000", 1714550400000, true},
		{"171455040", 0, false},
		{"2024-05-01", 1714521600000, true},
		{"Wed, 01 May 2024 09:00:00 GMT", 1714554000000, true},
		{true, 0, false},
		{nil, 0, false},
	}
	for _, tt := range tests {
		got, ok := ReportedDate(tt.in, time.UTC)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ReportedDate(%#v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	raw, err := os.ReadFile("testdata/forms.json")
	if err != nil {
		f.Fatal(err)
	}
	forms, err := ParseForms(raw)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"", "V 12345 feeling better", `P "Mary Jane" 12`, "V #ID 1 #N x #n y", "1!V!1#2#3",
		"J1!P!a#b", "\u200bV 1", "C १२३ १ dead", "D 2024-05-01 0712345678 1 5", "B 1 2080 5 15 2080-06-01",
		"N #mn Jane #cw 3100", "V \"", "!!", "V-", "Z 1 2 x y z", "V patient id 1", "\xff\xfe V",
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, text string, formsOnly bool) {
		opts := Options{Location: eat, FormsOnlyMode: formsOnly, Translate: fakeTranslate,
			Normalize: func(s string) (string, bool) { return s, false }}
		res := Parse(text, forms, opts)
		if res.Fields == nil || res.Errors == nil {
			t.Fatal("nil Fields or Errors")
		}
		if res.Form != "" && forms.Get(res.Form) == nil {
			t.Fatalf("Form %q is not configured", res.Form)
		}
		if res.Form == "" && len(res.Fields) != 0 {
			t.Fatalf("plain message with fields %v", res.Fields)
		}
		if _, err := json.Marshal(res.Fields); err != nil {
			t.Fatalf("fields not JSON: %v", err)
		}
		if strings.TrimSpace(text) == "" && (len(res.Errors) != 1 || res.Errors[0]["code"] != ErrCodeEmpty) {
			t.Fatalf("blank text %q gave %v", text, res.Errors)
		}
	})
}

func BenchmarkParseCompact(b *testing.B) {
	forms := loadForms(b)
	opts := Options{Locale: "en", Location: eat}
	b.ReportAllocs()
	for b.Loop() {
		res := Parse("V 12345 feeling much better today", forms, opts)
		if res.Form != "V" {
			b.Fatal(res)
		}
	}
}
