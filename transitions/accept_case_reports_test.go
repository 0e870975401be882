package transitions

import (
	"strings"
	"testing"
)

func TestCaseIDOf(t *testing.T) {
	cases := []struct {
		doc  Doc
		want string
	}{
		{Doc{"case_id": "123", "fields": map[string]any{"case_id": "456"}}, "123"},
		{Doc{"case_id": "", "fields": map[string]any{"case_id": "456"}}, "456"},
		{Doc{"fields": map[string]any{"case_id": 789.0}}, "789"},
		{Doc{"fields": map[string]any{}}, ""},
		{Doc{}, ""},
	}
	for _, c := range cases {
		if got := caseIDOf(c.doc); got != c.want {
			t.Errorf("caseIDOf(%v) = %q, want %q", c.doc, got, c.want)
		}
	}
}

func TestCaseRegistrations(t *testing.T) {
	regs := []Doc{
		{"_id": "top", "case_id": "C1"},
		{"_id": "field", "fields": map[string]any{"case_id": "C1"}},
		{"_id": "patient", "fields": map[string]any{"patient_id": "C1"}}, // same value, not a case id
		{"_id": "other", "case_id": "C2"},
	}
	var ids []string
	for _, r := range caseRegistrations(regs, "C1") {
		ids = append(ids, r["_id"].(string))
	}
	if strings.Join(ids, ",") != "top,field" {
		t.Errorf("case registrations = %v", ids)
	}
}

func TestBuildAcceptReportTransitions(t *testing.T) {
	cfg := Load(map[string]any{
		"transitions":         map[string]any{"accept_patient_reports": true, "accept_case_reports": true},
		"patient_reports":     []any{map[string]any{"form": "V"}},
		"accept_case_reports": []any{map[string]any{"form": "SIGNOFF", "silence_type": "case reminders", "silence_for": ""}},
	}, nil)
	if !cfg.Valid() {
		t.Fatalf("config invalid: %v", cfg.Problems)
	}
	var names []string
	for _, tr := range cfg.Transitions {
		names = append(names, tr.Name())
	}
	if strings.Join(names, ",") != "accept_patient_reports,accept_case_reports" {
		t.Errorf("transitions = %v", names)
	}
	bad := Load(map[string]any{
		"transitions":         map[string]any{"accept_case_reports": true},
		"accept_case_reports": []any{map[string]any{"form": "SIGNOFF"}, map[string]any{"silence_type": "x"}},
	}, nil)
	if bad.Valid() || !strings.Contains(bad.ErrorSummary(), "accept_case_reports[1].form") {
		t.Errorf("want an error at accept_case_reports[1].form, got %q", bad.ErrorSummary())
	}
}
