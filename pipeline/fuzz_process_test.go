package pipeline

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/memdb"
	"sentinel-go/transitions"
)

// fuzzSettings enables every transition that takes a doc from the feed, with
// configs that exercise most branches.
var fuzzSettings = map[string]any{
	"transitions": map[string]any{
		"update_clinics": true, "self_report": true, "registration": true, "generate_shortcode_on_contacts": true,
		"default_responses": true, "update_sent_by": true, "death_reporting": true, "resolve_pending": true,
	},
	"contact_types":     []any{map[string]any{"id": "clinic"}, map[string]any{"id": "person", "parents": []any{"clinic"}, "person": true}},
	"forms":             map[string]any{"P": map[string]any{"fields": map[string]any{"phone": map[string]any{"type": "phone_number"}}}, "D": map[string]any{"public_form": true}},
	"self_report":       []any{map[string]any{"form": "S"}},
	"default_responses": map[string]any{"start_date": "2000-01-01"},
	"death_reporting":   map[string]any{"mark_deceased_forms": []any{"D"}, "date_field": "fields.when"},
	"registrations": []any{map[string]any{"form": "P",
		"events": []any{
			map[string]any{"name": "on_create", "trigger": "add_patient", "params": `{"patient_id_field": "ext"}`},
			map[string]any{"name": "on_create", "trigger": "add_birth_date"},
			map[string]any{"name": "on_create", "trigger": "add_expected_date"},
			map[string]any{"name": "on_create", "trigger": "assign_schedule", "params": "S", "bool_expr": "doc.lmp > 2"},
			map[string]any{"name": "on_create", "trigger": "clear_schedule", "params": "S"}},
		"validations": map[string]any{"list": []any{map[string]any{"property": "name", "rule": "lenMin(1) || regex('^x')", "message": "{{name}} bad"}}},
		"messages":    []any{map[string]any{"recipient": []any{"parent", "reporting_unit"}, "message": "Hi {{patient_name}} {{#date}}{{reported_date}}{{/date}} {{fields.0}}"}}}},
	"schedules": []any{map[string]any{"name": "S", "start_from": []any{"fields.lmp_date", "reported_date"},
		"messages": []any{map[string]any{"group": 1.0, "offset": "2 weeks", "send_day": "monday", "send_time": "09:00 +03:00", "message": "Visit {{name}}"}}}},
}

// FuzzProcess runs the pipeline on arbitrary docs against an in-memory
// store: a malformed doc is recorded or skipped, and never crashes the daemon.
func FuzzProcess(f *testing.F) {
	seeds := []string{
		`{"type": "data_record", "form": "P", "from": "+254712345678", "fields": {"name": "A", "lmp": 4, "ext": "x1", "phone": "07"}}`,
		`{"type": "data_record", "form": "P", "contact": {"_id": "chw", "parent": {"_id": "clinic"}}, "fields": {"name": "", "patient_id": 5}}`,
		`{"type": "data_record", "form": "D", "fields": {"patient_id": "11111", "when": [1]}, "reported_date": "x"}`,
		`{"type": "data_record", "form": "S", "from": 5, "errors": [{"code": "sys.empty"}], "reported_date": 1e300}`,
		`{"type": "person", "parent": {"_id": "clinic", "parent": 7}, "contact": "x", "linked_docs": {"a": 1}}`,
		`{"type": "clinic", "tasks": [{"state": "pending", "messages": [{"to": "a", "message": "b"}]}, 3, null], "scheduled_tasks": "x"}`,
		`{"type": "data_record", "refid": {"a": 1}, "from": ["x"], "sent_by": null}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	cfg := transitions.Load(fuzzSettings, config.Translations{"en": {"messages.generic.registration_not_found": "nf {{patient_id}}"}})
	if !cfg.Valid() {
		f.Fatalf("fuzz settings invalid: %v", cfg.Problems)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var doc map[string]any
		if json.Unmarshal([]byte(s), &doc) != nil || doc == nil {
			return
		}
		doc["_id"] = "r1"
		main := memdb.New("medic").Load(
			transitions.Doc{"_id": "clinic", "type": "clinic", "name": "C", "contact": map[string]any{"_id": "chw"}},
			transitions.Doc{"_id": "chw", "type": "person", "name": "W", "phone": "+254712345678", "parent": map[string]any{"_id": "clinic"}},
			transitions.Doc{"_id": "pat", "type": "person", "name": "P", "patient_id": "11111", "parent": map[string]any{"_id": "clinic"}},
			doc)
		p := &Engine{Main: main, Sentinel: memdb.New("medic-sentinel"), Log: zerolog.Nop(),
			JS: jsexpr.NewSandbox(jsexpr.Options{Timeout: 50 * time.Millisecond}), Location: time.UTC}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = p.Process(ctx, cfg, couch.Change{ID: "r1", Seq: "1"})
	})
}
