package transitions

import (
	"testing"
	"time"
)

func TestParseParams(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{nil, "map[]"}, {"", "map[]"}, {"ANC, PNC", "[ANC PNC]"}, {`{"patient_id_field":"ext"}`, "map[patient_id_field:ext]"},
		{`["a","b"]`, "[a b]"}, {map[string]any{"contact_type": "chw"}, "map[contact_type:chw]"},
	}
	for _, c := range cases {
		got, err := parseParams(c.in)
		if err != nil {
			t.Fatalf("%v: %v", c.in, err)
		}
		if s := fmtAny(got); s != c.want {
			t.Errorf("parseParams(%#v) = %s, want %s", c.in, s, c.want)
		}
	}
	if _, err := parseParams("{bad json"); err == nil {
		t.Error("bad JSON params accepted")
	}
}

func fmtAny(v any) string {
	switch x := v.(type) {
	case []any:
		s := "["
		for i, e := range x {
			if i > 0 {
				s += " "
			}
			s += e.(string)
		}
		return s + "]"
	case map[string]any:
		s := "map["
		for k, v := range x {
			s += k + ":" + v.(string)
		}
		return s + "]"
	}
	return "?"
}

func TestFormMatching(t *testing.T) {
	if !formMatchesLoose("P", " p! ") || formMatchesLoose("P", "PX") || formMatchesLoose("", "") {
		t.Error("loose form matching wrong")
	}
}

func TestBirthAndExpectedDates(t *testing.T) {
	env := &Env{Location: time.UTC}
	reported := float64(time.Date(2024, 5, 20, 15, 0, 0, 0, time.UTC).UnixMilli())
	doc := Doc{"reported_date": reported, "fields": map[string]any{"weeks_since_lmp": "2", "age_in_months": 3.0}}
	addExpectedDate(env, doc)
	addBirthDate(env, doc)
	if doc["lmp_date"] != "2024-05-06T00:00:00.000Z" || doc["expected_date"] != "2025-02-10T00:00:00.000Z" {
		t.Errorf("expected date: %v %v", doc["lmp_date"], doc["expected_date"])
	}
	if doc["birth_date"] != "2024-02-20T00:00:00.000Z" {
		t.Errorf("birth date: %v", doc["birth_date"])
	}
	none := Doc{"reported_date": reported, "fields": map[string]any{"lmp": 0.0}}
	addExpectedDate(env, none)
	if v, ok := none["lmp_date"]; !ok || v != nil {
		t.Errorf("no LMP: %v", none)
	}
}
