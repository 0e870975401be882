package transitions

import (
	"strings"
	"testing"

	"sentinel-go/config"
)

// A settings.transitions that is not an object is an invalid config reported
// at its path, never read as "nothing enabled".
func TestTransitionsWrongShape(t *testing.T) {
	for _, v := range []any{"registration", []any{"registration"}, 1.0, true} {
		cfg := Load(map[string]any{"transitions": v}, nil)
		if cfg.Valid() {
			t.Errorf("transitions=%#v: valid config, want an error", v)
			continue
		}
		if len(cfg.Problems) != 1 || cfg.Problems[0].Path != "transitions" ||
			!strings.Contains(cfg.Problems[0].Message, "must be an object") {
			t.Errorf("transitions=%#v: problems %v, want one error at path transitions", v, cfg.Problems)
		}
		found := false
		for _, p := range Check(map[string]any{"transitions": v}, nil) {
			found = found || p.Path == "transitions"
		}
		if !found {
			t.Errorf("transitions=%#v: check-config does not report it", v)
		}
	}
	// Absent or null: no transitions configured, a valid (idle) config.
	for _, raw := range []map[string]any{{}, {"transitions": nil}, {"transitions": map[string]any{}}} {
		if cfg := Load(raw, nil); !cfg.Valid() {
			t.Errorf("%v: problems %v, want a valid config", raw, cfg.Problems)
		}
	}
}

// Keys of the wrong type or format are check-config errors at their full
// path, whether or not their transition is enabled.
func TestCheckWrongShapes(t *testing.T) {
	sched := func(msg map[string]any) map[string]any {
		return map[string]any{"schedules": []any{map[string]any{"name": "S", "messages": []any{msg}}}}
	}
	reg := func(ev map[string]any) map[string]any {
		return map[string]any{"registrations": []any{map[string]any{"form": "P", "events": []any{ev}}}}
	}
	for _, c := range []struct {
		name string
		raw  map[string]any
		path string
		msg  string
	}{
		{"events not an array", map[string]any{"registrations": []any{map[string]any{"form": "P", "events": "oops"}}},
			"registrations[0].events", `must be an array, got "oops"`},
		{"offset misspelt", sched(map[string]any{"offset": "4 weekz"}),
			"schedules[0].messages[0].offset", `"4 weekz" is not a duration`},
		{"offset a number", sched(map[string]any{"offset": 4.0}),
			"schedules[0].messages[0].offset", "must be a string, got 4"},
		{"send_time out of range", sched(map[string]any{"offset": "1 day", "send_time": "25:99"}),
			"schedules[0].messages[0].send_time", `"25:99" is not a time of day`},
		{"send_time no colon", sched(map[string]any{"offset": "1 day", "send_time": "0900"}),
			"schedules[0].messages[0].send_time", "is not a time of day"},
		{"send_day unknown", sched(map[string]any{"offset": "1 day", "send_day": "mon"}),
			"schedules[0].messages[0].send_day", "is not an English weekday"},
		{"group not an integer", sched(map[string]any{"offset": "1 day", "group": "one"}),
			"schedules[0].messages[0].group", "must be an integer"},
		{"event name", reg(map[string]any{"name": "on_update", "trigger": "add_patient"}),
			"registrations[0].events[0].name", `"on_update" is not one of "on_create"`},
		{"trigger unknown", reg(map[string]any{"name": "on_create", "trigger": "add_patientt"}),
			"registrations[0].events[0].trigger", `"add_patientt" is not one of`},
		{"bool_expr syntax", reg(map[string]any{"name": "on_create", "trigger": "add_patient", "bool_expr": "doc.x ==="}),
			"registrations[0].events[0].bool_expr", "JavaScript syntax error at line 1, column 10"},
		{"message bool_expr syntax", map[string]any{"patient_reports": []any{map[string]any{"form": "V",
			"messages": []any{map[string]any{"event_type": "report_accepted", "bool_expr": "(("}}}}},
			"patient_reports[0].messages[0].bool_expr", "JavaScript syntax error at line 1"},
		{"silence_for", map[string]any{"patient_reports": []any{map[string]any{"form": "V", "silence_for": "8 dayz"}}},
			"patient_reports[0].silence_for", "is not a duration"},
		{"recipient not a string", map[string]any{"self_report": []any{map[string]any{"form": "S",
			"messages": []any{map[string]any{"recipient": 12.0}}}}},
			"self_report[0].messages[0].recipient", "must be a string or an array, got 12"},
		{"message content", map[string]any{"update_clinics": []any{map[string]any{"form": "V",
			"messages": []any{map[string]any{"message": []any{map[string]any{"locale": "en", "content": 1.0}}}}}}},
			"update_clinics[0].messages[0].message[0].content", "must be a string"},
		{"alerts condition not a string", map[string]any{"alerts": []any{map[string]any{"form": "F", "condition": true}}},
			"alerts[0].condition", "must be a string, got true"},
		{"alerts condition syntax, object form", map[string]any{"alerts": map[string]any{"a": map[string]any{"form": "F", "condition": "doc.x ==="}}},
			"alerts.a.condition", "JavaScript syntax error at line 1, column 10"},
		{"is_report_counted syntax", map[string]any{"multi_report_alerts": []any{map[string]any{"is_report_counted": "function(r) { return ( }"}}},
			"multi_report_alerts[0].is_report_counted", "JavaScript syntax error at line 1"},
		{"mra recipient syntax", map[string]any{"multi_report_alerts": []any{map[string]any{"recipients": []any{"new_report.("}}}},
			"multi_report_alerts[0].recipients[0]", "JavaScript syntax error"},
		{"outbound relevant_to", map[string]any{"outbound": map[string]any{"p": map[string]any{"relevant_to": "doc.("}}},
			"outbound.p.relevant_to", "JavaScript syntax error"},
		{"outbound mapping expr", map[string]any{"outbound": map[string]any{"p": map[string]any{"mapping": map[string]any{"k": map[string]any{"expr": "1 +"}}}}},
			"outbound.p.mapping.k.expr", "JavaScript syntax error"},
		{"outbound cron", map[string]any{"outbound": map[string]any{"p": map[string]any{"cron": "every day"}}},
			"outbound.p.cron", "expected exactly 5 fields"},
		{"outbound auth type", map[string]any{"outbound": map[string]any{"p": map[string]any{"destination": map[string]any{"base_url": "http://x", "auth": map[string]any{"type": "digest"}}}}},
			"outbound.p.destination.auth.type", `"digest" is not one of`},
		{"mute_forms entry", map[string]any{"muting": map[string]any{"mute_forms": []any{"M", 1.0}}},
			"muting.mute_forms[1]", "must be a string, got 1"},
		{"death_reporting not an object", map[string]any{"death_reporting": []any{"DEAD"}},
			"death_reporting", "must be an object"},
		{"start_date", map[string]any{"default_responses": map[string]any{"start_date": "01/02/2018"}},
			"default_responses.start_date", "is not a date"},
		{"forms_only_mode", map[string]any{"forms_only_mode": "false"},
			"forms_only_mode", `must be a boolean, got "false"`},
		{"evening hours", map[string]any{"schedule_evening_hours": 24.0},
			"schedule_evening_hours", "must be between 0 and 23"},
		{"public_form", map[string]any{"forms": map[string]any{"V": map[string]any{"public_form": "yes"}}},
			"forms.V.public_form", "must be a boolean"},
		{"validations list", map[string]any{"registrations": []any{map[string]any{"form": "P", "events": []any{},
			"validations": map[string]any{"list": map[string]any{}}}}},
			"registrations[0].validations.list", "must be an array"},
		{"synthetic_date", map[string]any{"synthetic_date": "2024-05-01"},
			"synthetic_date", "is not a date"},
		{"sms service", map[string]any{"sms": map[string]any{"outgoing_service": "twilio"}},
			"sms.outgoing_service", `"twilio" is not one of`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, p := range Check(c.raw, nil) {
				if p.Path == c.path && p.Severity == config.Error && strings.Contains(p.Message, c.msg) {
					return
				}
				got = append(got, p.String())
			}
			t.Errorf("no error at %s containing %q; got:\n%s", c.path, c.msg, strings.Join(got, "\n"))
		})
	}
}

// Values of the right shape, including the spec's optional and empty forms,
// give no error.
func TestCheckRightShapes(t *testing.T) {
	raw := map[string]any{
		"locale": "en", "default_country_code": "254", "multipart_sms_limit": "10",
		"synthetic_date": "202405011230", "outgoing_deny_list": []any{"+1", "555"},
		"default_responses": map[string]any{"start_date": ""},
		"schedules": []any{map[string]any{"name": "S", "start_from": []any{"lmp", "reported_date"}, "messages": []any{
			map[string]any{"group": "1", "offset": "1 Week", "send_day": "Monday", "send_time": "09:00 +03:00", "recipient": []any{"clinic", "reporting_unit"},
				"message": []any{map[string]any{"locale": "en", "content": "hi"}}},
			map[string]any{"group": 2.0, "offset": "2 months", "send_day": "", "send_time": "", "translation_key": "k"},
		}}},
		"patient_reports": []any{map[string]any{"form": "V", "silence_type": []any{"S"}, "silence_for": ""}},
		"alerts":          map[string]any{"x": map[string]any{"form": "F", "condition": "F(0).fields.t > 38", "message": "m"}},
		"outbound": map[string]any{"p": map[string]any{"relevant_to": "doc.x", "cron": "0 9 * * *",
			"mapping": map[string]any{"a": "doc._id", "b": map[string]any{"expr": "doc.x + 1", "optional": true}}}},
		"transitions": map[string]any{"registration": true},
		"registrations": []any{map[string]any{"form": "P", "events": []any{
			map[string]any{"name": "on_create", "trigger": "add_patient_id", "params": map[string]any{"patient_name_field": "n"}, "bool_expr": ""},
			map[string]any{"name": "on_create", "trigger": "assign_schedule", "params": []any{"S"}},
		}}},
	}
	for _, p := range Check(raw, nil) {
		if p.Severity == config.Error {
			t.Errorf("unexpected error %s", p)
		}
	}
}
