package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
	"sentinel-go/jsexpr"
	"sentinel-go/transitions"
)

// TestRegistrationAgainstServer runs a whole registration through the
// processor against the real server: a person is created under the
// submitter's clinic, schedules are assigned and a reply is queued.
func TestRegistrationAgainstServer(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	if err := env.Client.Main.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	env.Save(t, env.MainDB,
		map[string]any{"_id": "clinic", "type": "clinic", "name": "Clinic"},
		map[string]any{"_id": "chw", "type": "person", "name": "Carol", "phone": "+254712000010", "parent": map[string]any{"_id": "clinic"}},
		map[string]any{"_id": "r1", "type": "data_record", "form": "P", "from": "+254712000010",
			"reported_date": float64(time.Now().UnixMilli()), "fields": map[string]any{"patient_name": "Jane"},
			"contact": map[string]any{"_id": "chw", "parent": map[string]any{"_id": "clinic"}}})
	settings := map[string]any{
		"transitions":   map[string]any{"registration": true},
		"contact_types": []any{map[string]any{"id": "clinic"}, map[string]any{"id": "person", "parents": []any{"clinic"}, "person": true}},
		"forms":         map[string]any{"P": map[string]any{}},
		"registrations": []any{map[string]any{"form": "P",
			"events": []any{
				map[string]any{"name": "on_create", "trigger": "add_patient"},
				map[string]any{"name": "on_create", "trigger": "assign_schedule", "params": "S", "bool_expr": "doc.patient_name"}},
			"messages": []any{map[string]any{"recipient": "reporting_unit", "message": "Registered {{patient_name}} ({{patient_id}}) by {{contact.name}}, next in {{next_msg.weeks}} weeks"}}}},
		"schedules": []any{map[string]any{"name": "S", "messages": []any{
			map[string]any{"group": 1.0, "offset": "2 weeks", "message": "Visit {{patient_name}}", "recipient": "reporting_unit"}}}},
	}
	cfg := transitions.Load(settings, config.Translations{})
	if !cfg.Valid() {
		t.Fatalf("config: %v", cfg.Problems)
	}
	p := &Engine{Main: env.Client.Main, Sentinel: env.Client.Sentinel, Log: zerolog.Nop(), JS: jsexpr.NewSandbox(jsexpr.Options{})}
	out, err := p.Process(ctx, cfg, couch.Change{ID: "r1", Seq: "3"})
	if err != nil || !out.Changed {
		t.Fatalf("Process = %+v, %v", out, err)
	}
	r1 := env.Get(t, env.MainDB, "r1")
	pid, _ := r1["patient_id"].(string)
	if len(pid) != 5 || r1["patient"] != nil {
		t.Fatalf("report after registration: %v", r1)
	}
	msg := r1["tasks"].([]any)[0].(map[string]any)["messages"].([]any)[0].(map[string]any)
	if msg["message"] != "Registered Jane ("+pid+") by Carol, next in 1 weeks" || msg["to"] != "+254712000010" {
		t.Errorf("reply = %v", msg)
	}
	if n := len(r1["scheduled_tasks"].([]any)); n != 1 {
		t.Errorf("scheduled tasks = %d", n)
	}
	people, err := env.Client.Main.ContactsByShortcode(ctx, pid)
	if err != nil || len(people) != 1 {
		t.Fatalf("created person: %v %v", people, err)
	}
	person := people[0]
	if person["name"] != "Jane" || person["source_id"] != "r1" || person["created_by"] != "chw" || person["type"] != "person" {
		t.Errorf("person = %v", person)
	}
	if parent, _ := person["parent"].(map[string]any); parent["_id"] != "clinic" {
		t.Errorf("person parent = %v", person["parent"])
	}
}

// TestRegistrationReplayReusesCreatedPerson replays a registration whose
// first run created the person and then crashed before saving the report:
// the replay finds that person (same deterministic id) and creates no other.
func TestRegistrationReplayReusesCreatedPerson(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	if err := env.Client.Main.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	env.Save(t, env.MainDB,
		map[string]any{"_id": "clinic", "type": "clinic", "name": "Clinic"},
		map[string]any{"_id": "chw", "type": "person", "name": "Carol", "parent": map[string]any{"_id": "clinic"}},
		map[string]any{"_id": "r1", "type": "data_record", "form": "P", "reported_date": float64(time.Now().UnixMilli()),
			"fields": map[string]any{"patient_name": "Jane"}, "contact": map[string]any{"_id": "chw", "parent": map[string]any{"_id": "clinic"}}})
	// What the crashed run left behind.
	env.Save(t, env.MainDB, map[string]any{"_id": transitions.CreatedContactID("r1", "patient"),
		"type": "person", "name": "Jane", "patient_id": "77777", "source_id": "r1", "parent": map[string]any{"_id": "clinic"}})
	cfg := transitions.Load(map[string]any{
		"transitions":   map[string]any{"registration": true},
		"contact_types": []any{map[string]any{"id": "clinic"}, map[string]any{"id": "person", "parents": []any{"clinic"}, "person": true}},
		"forms":         map[string]any{"P": map[string]any{"public_form": true}},
		"registrations": []any{map[string]any{"form": "P", "events": []any{map[string]any{"name": "on_create", "trigger": "add_patient"}}}},
	}, config.Translations{})
	p := &Engine{Main: env.Client.Main, Sentinel: env.Client.Sentinel, Log: zerolog.Nop(), JS: jsexpr.NewSandbox(jsexpr.Options{})}
	if _, err := p.Process(ctx, cfg, couch.Change{ID: "r1", Seq: "2"}); err != nil {
		t.Fatal(err)
	}
	if got := env.Get(t, env.MainDB, "r1")["patient_id"]; got != "77777" {
		t.Errorf("report patient_id = %v, want the replayed person's 77777", got)
	}
	all, err := env.Client.Main.AllDocs(ctx, map[string]any{"include_docs": true})
	if err != nil {
		t.Fatal(err)
	}
	persons := 0
	for _, row := range all {
		if row.Doc["type"] == "person" {
			persons++
		}
	}
	if persons != 2 { // the CHW and the one registered person
		t.Errorf("%d persons, want 2", persons)
	}
}
