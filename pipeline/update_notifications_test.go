package pipeline

import (
	"reflect"
	"testing"

	"sentinel-go/jsv"
)

func updateNotificationsSettings(messages []any) map[string]any {
	return map[string]any{
		"transitions":   map[string]any{"update_notifications": true},
		"notifications": map[string]any{"on_form": "on", "off_form": "off", "messages": messages},
	}
}

func TestUpdateNotificationsMuteAndUnmute(t *testing.T) {
	msgs := []any{
		map[string]any{"event_type": "on_mute", "recipient": "reporting_unit", "message": "Contact muted"},
		map[string]any{"event_type": "on_unmute", "recipient": "reporting_unit", "message": "Contact unmuted"},
		map[string]any{"event_type": "patient_not_found", "recipient": "reporting_unit", "message": "Patient not found"},
	}
	w := newMutingWorld(t, updateNotificationsSettings(msgs), mutingHierarchy()...)
	record := func(id string) map[string]any {
		return jsv.Map(jsv.Map(w.info(id)["transitions"])["update_notifications"])
	}

	w.save(mutingReport("other", "xyz", "patient_id", "99999"))
	if record("other") != nil || w.doc("other")["tasks"] != nil {
		t.Fatal("other forms must be left alone")
	}

	w.save(mutingReport("nf", "off", "patient_id", "nobody"))
	nf := w.doc("nf")
	if errs := jsv.Slice(nf["errors"]); len(errs) != 1 || jsv.Map(errs[0])["message"] != "Patient not found" || jsv.Map(errs[0])["code"] != "invalid_report" {
		t.Fatalf("errors %v", errs)
	}
	if got := mutingTaskTexts(nf); !reflect.DeepEqual(got, []string{"Patient not found"}) || record("nf")["ok"] != true {
		t.Fatalf("tasks %v, record %v", got, record("nf"))
	}

	w.save(mutingReport("mute1", "OFF", "patient_id", "99999"))
	muted := w.doc("person")["muted"]
	if muted == nil || w.doc("person3")["muted"] != nil || w.doc("clinic")["muted"] != nil {
		t.Fatal("off form did not mute just the person")
	}
	if h := w.history("person"); !reflect.DeepEqual(h, []string{"true/mute1"}) {
		t.Fatalf("history %v", h)
	}
	if got := mutingTaskTexts(w.doc("mute1")); !reflect.DeepEqual(got, []string{"Contact muted"}) || w.doc("mute1")["errors"] != nil {
		t.Fatalf("tasks %v errors %v", got, w.doc("mute1")["errors"])
	}

	w.save(mutingReport("mute2", "off", "patient_id", "99999"))
	if w.doc("person")["muted"] != muted || len(w.history("person")) != 1 {
		t.Fatal("second off form changed the person")
	}
	if got := mutingTaskTexts(w.doc("mute2")); !reflect.DeepEqual(got, []string{"Contact muted"}) {
		t.Fatalf("tasks %v", got)
	}

	w.save(mutingReport("unmute1", "on", "patient_id", "99999"))
	if w.doc("person")["muted"] != nil {
		t.Fatal("on form did not unmute")
	}
	if h := w.history("person"); !reflect.DeepEqual(h, []string{"true/mute1", "false/unmute1"}) {
		t.Fatalf("history %v", h)
	}
	w.save(mutingReport("unmute2", "on", "patient_id", "99999"))
	if got := mutingTaskTexts(w.doc("unmute2")); !reflect.DeepEqual(got, []string{"Contact unmuted"}) || len(w.history("person")) != 2 {
		t.Fatalf("tasks %v history %v", got, w.history("person"))
	}
}

func TestUpdateNotificationsMisconfigured(t *testing.T) {
	w := newMutingWorld(t, updateNotificationsSettings(nil), mutingHierarchy()...)
	w.save(mutingReport("mute1", "off", "place_id", "clinic"))
	if w.doc("clinic")["muted"] == nil || w.doc("person")["muted"] == nil {
		t.Fatal("off form did not mute the clinic and its people")
	}
	errs := jsv.Slice(w.doc("mute1")["errors"])
	if len(errs) != 1 || jsv.Map(errs[0])["message"] != `Failed to complete notification request, event type "on_mute" misconfigured.` {
		t.Fatalf("errors %v", errs)
	}
	w.save(mutingReport("nf", "off", "patient_id", "nobody"))
	errs = jsv.Slice(w.doc("nf")["errors"])
	if len(errs) != 1 || jsv.Map(errs[0])["message"] != `Failed to complete notification request, event type "patient_not_found" misconfigured.` {
		t.Fatalf("errors %v", errs)
	}
}
