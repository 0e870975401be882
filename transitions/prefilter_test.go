package transitions

import (
	"fmt"
	"testing"

	"sentinel-go/config"
	"sentinel-go/jsv"
)

// prefilterSettings enable every transition with a Prefilter, with forms
// that the docs below use.
func prefilterSettings() map[string]any {
	return map[string]any{
		"transitions": map[string]any{
			"update_clinics": true, "self_report": true, "registration": true, "accept_patient_reports": true,
			"accept_case_reports": true, "generate_shortcode_on_contacts": true, "default_responses": true,
			"update_sent_by": true, "death_reporting": true, "conditional_alerts": true, "multi_report_alerts": true,
			"update_notifications": true, "update_scheduled_reports": true, "resolve_pending": true, "muting": true,
		},
		"contact_types":       []any{map[string]any{"id": "clinic"}, map[string]any{"id": "person", "parents": []any{"clinic"}, "person": true}},
		"forms":               map[string]any{"P": map[string]any{"public_form": true}, "V": map[string]any{"public_form": true}, "D": map[string]any{"public_form": true}, "M": map[string]any{"public_form": true}},
		"registrations":       []any{map[string]any{"form": "P", "events": []any{map[string]any{"name": "on_create", "trigger": "add_patient"}}}},
		"patient_reports":     []any{map[string]any{"form": "V"}},
		"accept_case_reports": []any{map[string]any{"form": "V"}},
		"self_report":         []any{map[string]any{"form": "P"}},
		"default_responses":   map[string]any{"start_date": "2000-01-01"},
		"death_reporting":     map[string]any{"mark_deceased_forms": []any{"D"}},
		"muting":              map[string]any{"mute_forms": []any{"M"}},
		"alerts":              []any{map[string]any{"form": "V", "condition": "true", "message": "x", "recipient": "+254700000000"}},
		"multi_report_alerts": []any{map[string]any{"name": "a", "is_report_counted": "function() { return true; }", "num_reports_threshold": 2, "message": "m", "recipients": []any{"+254700000000"}, "time_window_in_days": 7, "forms": []any{"V"}}},
		"notifications":       map[string]any{"off_form": "OFF", "on_form": "ON"},
	}
}

// TestPrefilterImpliesFilter: whenever a transition refuses a change on the
// doc as stored, its Filter is false on the hydrated doc, whatever
// hydration added: the engine's shortcut decides what running them would.
func TestPrefilterImpliesFilter(t *testing.T) {
	cfg := Load(prefilterSettings(), config.Translations{})
	if !cfg.Valid() {
		t.Fatalf("settings: %v", cfg.Problems)
	}
	env := &Env{Config: cfg}
	var docs []Doc
	for _, typ := range []any{"data_record", "person", "clinic", "settings", nil} {
		for _, form := range []any{"P", "V", "D", "M", "ON", "X", "", nil} {
			for _, from := range []any{"+254712345678", nil} {
				for _, extra := range []Doc{{}, {"sent_by": "x"}, {"patient_id": "12345"}, {"kujua_message": true},
					{"tasks": []any{map[string]any{"state": "pending", "messages": []any{map[string]any{"to": "+1", "message": "m"}}}}},
					{"fields": map[string]any{"year": 2024, "month": 3, "patient_id": "1"}},
					{"muted": "2024-03-01T00:00:00.000Z"}, {"muting_history": map[string]any{"last_update": "client_side"}},
					{"parent": map[string]any{"_id": "clinic"}}} {
					d := Doc{"_id": "d", "_rev": "2-x", "reported_date": 1.7e12}
					if typ != nil {
						d["type"] = typ
					}
					if form != nil {
						d["form"] = form
					}
					if from != nil {
						d["from"] = from
					}
					for k, v := range extra {
						d[k] = v
					}
					docs = append(docs, d)
				}
			}
		}
	}
	infos := []Doc{{}, {"transitions": map[string]any{}}}
	all := map[string]any{}
	for _, tr := range cfg.Transitions {
		all[tr.Name()] = map[string]any{"ok": true, "last_rev": "1-a", "seq": "1"}
	}
	infos = append(infos, Doc{"transitions": all},
		Doc{"transitions": map[string]any{}, "muting_history": []any{map[string]any{"muted": false}}},
		Doc{"transitions": map[string]any{}, "muting_history": []any{map[string]any{"muted": true}}, "initial_replication_date": "2024-01-01T00:00:00.000Z"})
	refused := 0
	for i, raw := range docs {
		for j, info := range infos {
			for _, tr := range cfg.Transitions {
				p, ok := tr.(Prefilter)
				if !ok || !p.RefusesUnhydrated(env, &Change{ID: "d", Rev: "2-x", Doc: raw, Info: info}) {
					continue
				}
				refused++
				// Hydration adds the contact lineage, the patient and the place.
				h := jsv.CloneMap(raw)
				h["contact"] = map[string]any{"_id": "chw", "phone": "+254712345678", "parent": map[string]any{"_id": "clinic"}}
				h["patient"] = map[string]any{"_id": "pat", "patient_id": "12345", "type": "person"}
				h["place"] = map[string]any{"_id": "clinic", "type": "clinic"}
				// and the parents of a contact, here a muted clinic.
				if _, ok := raw["parent"]; ok || raw["type"] == "person" || raw["type"] == "clinic" {
					h["parent"] = map[string]any{"_id": "clinic", "type": "clinic", "muted": "2023-01-01T00:00:00.000Z"}
				}
				if filterSafely(env, tr, &Change{ID: "d", Rev: "2-x", Doc: h, Info: info}) {
					t.Errorf("%s refuses doc %d (info %d) early but its filter accepts it: %s", tr.Name(), i, j, fmt.Sprint(raw))
				}
			}
		}
	}
	if refused == 0 {
		t.Fatal("no early refusal exercised")
	}
}

// filterSafely is Filter with a panic counted as false, as the engine does.
func filterSafely(env *Env, tr Transition, c *Change) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return tr.Filter(env, c)
}
