package transitions

import (
	"strings"
	"testing"

	"sentinel-go/config"
)

// One problem of a config entry never hides another of the same entry: the
// daemon's loaders check every key, so that the log (and check-config)
// shows every problem at once.
func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	for _, c := range []struct {
		name  string
		raw   map[string]any
		paths []string
	}{
		{"multi_report_alerts threshold out of range and is_report_counted syntax error", map[string]any{
			"transitions": map[string]any{"multi_report_alerts": true},
			"multi_report_alerts": []any{map[string]any{"name": "a", "is_report_counted": "function(r, l) { return ( }",
				"num_reports_threshold": 500.0, "time_window_in_days": 3.0, "recipients": []any{"+254700000001"}, "message": "x"}},
		}, []string{"multi_report_alerts[0].num_reports_threshold", "multi_report_alerts[0].is_report_counted"}},
		{"multi_report_alerts missing keys and is_report_counted syntax error", map[string]any{
			"transitions": map[string]any{"multi_report_alerts": true},
			"multi_report_alerts": []any{map[string]any{"name": "a", "is_report_counted": "function(r, l) { return ( }",
				"num_reports_threshold": 0.0, "recipients": "nobody"}},
		}, []string{"multi_report_alerts[0].num_reports_threshold", "multi_report_alerts[0].time_window_in_days",
			"multi_report_alerts[0].message", "multi_report_alerts[0].recipients", "multi_report_alerts[0].is_report_counted"}},
		{"registration params unparsable and bool_expr syntax error", map[string]any{
			"transitions": map[string]any{"registration": true},
			"registrations": []any{map[string]any{"form": "P", "events": []any{map[string]any{
				"name": "on_create", "trigger": "add_patient", "params": "{not json", "bool_expr": "doc.x ==="}}}},
		}, []string{"registrations[0].events[0].params", "registrations[0].events[0].bool_expr"}},
		{"patient report without form and a bool_expr syntax error", map[string]any{
			"transitions":     map[string]any{"accept_patient_reports": true},
			"patient_reports": []any{map[string]any{"messages": []any{map[string]any{"event_type": "report_accepted", "bool_expr": "(("}}}},
		}, []string{"patient_reports[0].form", "patient_reports[0].messages[0].bool_expr"}},
		{"muting without mute_forms and a bad validation rule", map[string]any{
			"transitions": map[string]any{"muting": true},
			"muting":      map[string]any{"validations": map[string]any{"list": []any{map[string]any{"property": "x", "rule": "regex(^1$)"}}}},
		}, []string{"muting.mute_forms", "muting.validations.list[0].rule"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Load(c.raw, nil)
			at := map[string]bool{}
			for _, p := range cfg.Problems {
				at[p.Path] = true
			}
			for _, path := range c.paths {
				if !at[path] {
					t.Errorf("no problem at %s; got %v", path, cfg.Problems)
				}
			}
		})
	}
}

// Every kind of expression reports a syntax error the same way in
// check-config: an error, `path: JavaScript syntax error at line L, column
// C: …`, the path said once.
func TestCheckJavaScriptSyntaxErrorsAreErrorsInOneFormat(t *testing.T) {
	const bad = "doc.x ==="
	for _, c := range []struct {
		name string
		raw  map[string]any
		path string
	}{
		{"registration event bool_expr", map[string]any{"transitions": map[string]any{"registration": true},
			"registrations": []any{map[string]any{"form": "P", "events": []any{map[string]any{"name": "on_create", "trigger": "add_patient", "bool_expr": bad}}}}},
			"registrations[0].events[0].bool_expr"},
		{"registration message bool_expr", map[string]any{"transitions": map[string]any{"registration": true},
			"registrations": []any{map[string]any{"form": "P", "events": []any{}, "messages": []any{map[string]any{"event_type": "report_accepted", "bool_expr": bad}}}}},
			"registrations[0].messages[0].bool_expr"},
		{"accept_patient_reports message bool_expr", map[string]any{"transitions": map[string]any{"accept_patient_reports": true},
			"patient_reports": []any{map[string]any{"form": "V", "messages": []any{map[string]any{"event_type": "report_accepted", "bool_expr": bad}}}}},
			"patient_reports[0].messages[0].bool_expr"},
		{"conditional_alerts condition", map[string]any{"transitions": map[string]any{"conditional_alerts": true},
			"alerts": map[string]any{"1": map[string]any{"form": "P", "condition": bad, "message": "hi", "recipient": "reporting_unit"}}},
			"alerts.1.condition"},
		{"multi_report_alerts is_report_counted", map[string]any{"transitions": map[string]any{"multi_report_alerts": true},
			"multi_report_alerts": []any{map[string]any{"name": "a", "is_report_counted": "function(r, l) { return " + bad + " }",
				"num_reports_threshold": 2.0, "time_window_in_days": 3.0, "recipients": []any{"+254700000001"}, "message": "x"}}},
			"multi_report_alerts[0].is_report_counted"},
		{"multi_report_alerts recipient", map[string]any{"transitions": map[string]any{"multi_report_alerts": true},
			"multi_report_alerts": []any{map[string]any{"name": "a", "is_report_counted": "function(r, l) { return true }",
				"num_reports_threshold": 2.0, "time_window_in_days": 3.0, "recipients": []any{bad}, "message": "x"}}},
			"multi_report_alerts[0].recipients[0]"},
		{"mark_for_outbound relevant_to", map[string]any{"transitions": map[string]any{"mark_for_outbound": true},
			"outbound": map[string]any{"p": map[string]any{"relevant_to": bad, "destination": map[string]any{"base_url": "http://x", "path": "/"}, "mapping": map[string]any{"id": "doc._id"}}}},
			"outbound.p.relevant_to"},
		{"mark_for_outbound mapping expr", map[string]any{"transitions": map[string]any{"mark_for_outbound": true},
			"outbound": map[string]any{"p": map[string]any{"relevant_to": "true", "destination": map[string]any{"base_url": "http://x", "path": "/"}, "mapping": map[string]any{"id": map[string]any{"expr": bad}}}}},
			"outbound.p.mapping.id.expr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var at []config.Problem
			for _, p := range Check(c.raw, nil) {
				if p.Path == c.path {
					at = append(at, p)
				}
			}
			if len(at) != 1 || at[0].Severity != config.Error ||
				!strings.HasPrefix(at[0].Message, "JavaScript syntax error at line 1, column ") || strings.Contains(at[0].Message, c.path) {
				t.Errorf("problems at %s: %v; want one error `JavaScript syntax error at line 1, column …`", c.path, at)
			}
		})
	}
}
