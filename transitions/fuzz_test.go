package transitions

import (
	"encoding/json"
	"testing"

	"sentinel-go/config"
)

// FuzzLoad feeds arbitrary app_settings to the config loader: whatever a
// config author writes, loading reports problems and never panics.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		`{}`, `{"transitions": {"registration": true}}`,
		`{"transitions": {"registration": true}, "registrations": [{"form": "P", "events": [{"name": "on_create", "trigger": "add_patient", "params": "{\"contact_type\": 5}"}]}]}`,
		`{"transitions": {"death_reporting": {"disable": false}}, "death_reporting": {"mark_deceased_forms": "DEAD"}}`,
		`{"transitions": {"update_clinics": true, "self_report": true, "default_responses": true}, "update_clinics": 3, "self_report": [null, {"form": 1}], "default_responses": {"start_date": 7}}`,
		`{"transitions": {"registration": 1}, "registrations": [{"form": "R", "validations": {"list": [{"property": "x", "rule": "regex(\\d"}]}, "messages": [{"bool_expr": "doc.(", "message": "{{#a}}"}]}], "contact_types": "x"}`,
		`{"transitions": {"accept_patient_reports": true, "accept_case_reports": true}, "patient_reports": [{"form": "V", "silence_for": "x"}], "accept_case_reports": {}}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var raw map[string]any
		if json.Unmarshal([]byte(s), &raw) != nil {
			return
		}
		cfg := Load(raw, config.Translations{})
		_ = cfg.Valid()
		_ = cfg.ErrorSummary()
	})
}
