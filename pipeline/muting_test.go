package pipeline

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"sentinel-go/infodoc"
	"sentinel-go/jsv"
	"sentinel-go/transitions"
)

func TestMutingMuteAndUnmutePerson(t *testing.T) {
	w := newMutingWorld(t, mutingSettings(nil), mutingHierarchy()...)
	w.save(mutingReport("mute1", "mute", "patient_id", "99999"))
	person := w.doc("person")
	muted, _ := person["muted"].(string)
	if muted == "" || w.doc("person3")["muted"] != nil || w.doc("clinic")["muted"] != nil {
		t.Fatalf("after mute: person %v, person3 %v, clinic %v", person["muted"], w.doc("person3")["muted"], w.doc("clinic")["muted"])
	}
	if h := w.history("person"); !reflect.DeepEqual(h, []string{"true/mute1"}) {
		t.Fatalf("history %v", h)
	}
	if d := jsv.Map(jsv.Slice(w.info("person")["muting_history"])[0])["date"]; d != muted {
		t.Fatalf("history date %v != muted %v", d, muted)
	}
	if rec := jsv.Map(jsv.Map(w.info("mute1")["transitions"])["muting"]); rec["ok"] != true {
		t.Fatalf("mute1 record %v", rec)
	}
	if got := mutingTaskTexts(w.doc("mute1")); !reflect.DeepEqual(got, []string{"Contact muted"}) {
		t.Fatalf("mute1 tasks %v", got)
	}
	if w.main.Puts("mute1") != 2 {
		t.Fatalf("mute1 written %d times, want once by the daemon", w.main.Puts("mute1")-1)
	}

	w.save(mutingReport("mute2", "mute", "patient_id", "99999"))
	if w.doc("person")["muted"] != muted || len(w.history("person")) != 1 {
		t.Fatalf("second mute changed the person: %v %v", w.doc("person")["muted"], w.history("person"))
	}
	if got := mutingTaskTexts(w.doc("mute2")); !reflect.DeepEqual(got, []string{"Already muted"}) {
		t.Fatalf("mute2 tasks %v", got)
	}

	w.save(mutingReport("unmute1", "unmute", "patient_id", "99999"))
	if _, ok := w.doc("person")["muted"]; ok {
		t.Fatal("person still muted")
	}
	if h := w.history("person"); !reflect.DeepEqual(h, []string{"true/mute1", "false/unmute1"}) {
		t.Fatalf("history %v", h)
	}
	w.save(mutingReport("unmute2", "unmute", "patient_id", "99999"))
	if got := mutingTaskTexts(w.doc("unmute2")); !reflect.DeepEqual(got, []string{"Already unmuted"}) || len(w.history("person")) != 2 {
		t.Fatalf("unmute2 tasks %v, history %v", got, w.history("person"))
	}
}

func TestMutingContactNotFoundAndValidation(t *testing.T) {
	s := mutingSettings(nil)
	mc := s["muting"].(map[string]any)
	mc["validations"] = map[string]any{"join_responses": false, "list": []any{map[string]any{
		"property": "somefield", "rule": "lenMin(5) && lenMax(10)", "message": "somefield id incorrect"}}}
	w := newMutingWorld(t, s, mutingHierarchy()...)
	w.save(mutingReport("unknown", "mute", "patient_id", "nobody"))
	d := w.doc("unknown")
	errs := jsv.Slice(d["errors"])
	if len(errs) != 1 || jsv.Map(errs[0])["message"] != "Contact not found" || jsv.Map(errs[0])["code"] != "invalid_report" {
		t.Fatalf("errors %v", errs)
	}
	if got := mutingTaskTexts(d); !reflect.DeepEqual(got, []string{"Contact not found"}) {
		t.Fatalf("tasks %v", got)
	}
	r := mutingReport("invalid", "mute", "patient_id", "99999")
	r["fields"].(map[string]any)["somefield"] = "this will not pass"
	w.save(r)
	d = w.doc("invalid")
	if errs := jsv.Slice(d["errors"]); len(errs) != 1 || jsv.Map(errs[0])["code"] != "invalid_somefield" {
		t.Fatalf("errors %v", errs)
	}
	if w.doc("person")["muted"] != nil {
		t.Fatal("invalid report muted the person")
	}
	if rec := jsv.Map(jsv.Map(w.info("invalid")["transitions"])["muting"]); rec["ok"] != true {
		t.Fatalf("record %v", rec)
	}

	// without a contact_not_found message: the "misconfigured" error, no task
	w2 := newMutingWorld(t, map[string]any{"transitions": map[string]any{"muting": true},
		"muting": map[string]any{"mute_forms": []any{"mute"}}}, mutingHierarchy()...)
	w2.save(mutingReport("unknown", "mute", "patient_id", "nobody"))
	d = w2.doc("unknown")
	if errs := jsv.Slice(d["errors"]); len(errs) != 1 || !strings.Contains(jsv.String(jsv.Map(errs[0])["message"]), `"contact_not_found" misconfigured`) {
		t.Fatalf("errors %v", errs)
	}
	if len(jsv.Slice(d["tasks"])) != 0 {
		t.Fatalf("tasks %v", d["tasks"])
	}
}

func TestMutingClinicCascadeAndRegistrations(t *testing.T) {
	s := mutingSettings(map[string]any{"registrations": []any{map[string]any{"form": "REG"}}})
	future := mutingT0.AddDate(0, 0, 30).Format("2006-01-02T15:04:05.000Z")
	past := mutingT0.AddDate(0, 0, -30).Format("2006-01-02T15:04:05.000Z")
	reg := func(id, key, subject string) transitions.Doc {
		return transitions.Doc{"_id": id, "type": "data_record", "form": "REG", "content_type": "xml", "fields": map[string]any{key: subject},
			"scheduled_tasks": []any{map[string]any{"state": "scheduled", "due": future}, map[string]any{"state": "pending", "due": past},
				map[string]any{"state": "sent", "due": past}}}
	}
	docs := append(mutingHierarchy(), reg("reg_person", "patient_id", "99999"), reg("reg_clinic", "place_id", "the_clinic"),
		reg("reg_person2", "patient_uuid", "person2"))
	w := newMutingWorld(t, s, docs...)
	w.save(mutingReport("mute_person", "mute", "patient_id", "99999"))
	personMuted := w.doc("person")["muted"]
	w.now = w.now.Add(time.Hour)
	w.save(mutingReport("mute_clinic", "mute", "place_id", "clinic"))
	clinicMuted := w.doc("clinic")["muted"]
	if clinicMuted == nil || w.doc("person3")["muted"] != clinicMuted || w.doc("person")["muted"] != personMuted || personMuted == clinicMuted {
		t.Fatalf("muted: clinic %v person %v (was %v) person3 %v", clinicMuted, w.doc("person")["muted"], personMuted, w.doc("person3")["muted"])
	}
	if w.doc("clinic2")["muted"] != nil || w.doc("person2")["muted"] != nil || w.doc("hc")["muted"] != nil {
		t.Fatal("cascade went outside the clinic")
	}
	if h := w.history("person"); !reflect.DeepEqual(h, []string{"true/mute_person", "true/mute_clinic"}) {
		t.Fatalf("person history %v", h)
	}
	if d := jsv.Map(jsv.Slice(w.info("person")["muting_history"])[1])["date"]; d != clinicMuted {
		t.Fatalf("person's second entry date %v, want the clinic's %v", d, clinicMuted)
	}
	states := func(id string) string {
		var out []string
		for _, t := range jsv.Slice(w.doc(id)["scheduled_tasks"]) {
			out = append(out, jsv.String(jsv.Map(t)["state"]))
		}
		return strings.Join(out, ",")
	}
	for id, want := range map[string]string{"reg_person": "muted,muted,sent", "reg_clinic": "muted,muted,sent", "reg_person2": "scheduled,pending,sent"} {
		if got := states(id); got != want {
			t.Errorf("after mute %s: %s, want %s", id, got, want)
		}
	}
	w.save(mutingReport("unmute_person", "unmute", "patient_id", "99999"))
	for _, id := range []string{"clinic", "person", "person3"} {
		if _, ok := w.doc(id)["muted"]; ok {
			t.Errorf("%s still muted", id)
		}
	}
	if h := w.history("clinic"); !reflect.DeepEqual(h, []string{"true/mute_clinic", "false/unmute_person"}) {
		t.Fatalf("clinic history %v", h)
	}
	for id, want := range map[string]string{"reg_person": "scheduled,muted,sent", "reg_clinic": "scheduled,muted,sent"} {
		if got := states(id); got != want {
			t.Errorf("after unmute %s: %s, want %s", id, got, want)
		}
	}
	if w.info("hc")["muting_history"] != nil || w.info("person2")["muting_history"] != nil {
		t.Fatal("history written outside the cascade")
	}
}

func TestMutingUnmuteFromHighestMutedAncestor(t *testing.T) {
	w := newMutingWorld(t, mutingSettings(nil), mutingHierarchy()...)
	w.save(mutingReport("mute_person", "mute", "patient_id", "99999"))
	w.save(mutingReport("mute_hc", "mute", "place_id", "hc"))
	for _, id := range []string{"hc", "clinic", "clinic2", "person", "person2", "person3"} {
		if w.doc(id)["muted"] == nil {
			t.Fatalf("%s not muted", id)
		}
	}
	w.save(mutingReport("unmute_person", "unmute", "patient_id", "99999"))
	for _, id := range []string{"hc", "clinic", "clinic2", "person", "person2", "person3"} {
		if w.doc(id)["muted"] != nil {
			t.Fatalf("%s still muted", id)
		}
	}
	if h := w.history("hc"); !reflect.DeepEqual(h, []string{"true/mute_hc", "false/unmute_person"}) {
		t.Fatalf("hc history %v", h)
	}
	if w.info("dh")["muting_history"] != nil {
		t.Fatal("district got a history")
	}
}

func TestMutingNewContactUnderMutedPlace(t *testing.T) {
	s := mutingSettings(map[string]any{"registrations": []any{map[string]any{"form": "REG"}}})
	w := newMutingWorld(t, s, mutingHierarchy()...)
	w.save(mutingReport("mute_clinic", "mute", "place_id", "clinic"))
	clinic := map[string]any{"_id": "clinic", "parent": map[string]any{"_id": "hc", "parent": map[string]any{"_id": "dh"}}}
	w.save(transitions.Doc{"_id": "reg_new", "type": "data_record", "form": "REG", "content_type": "xml", "fields": map[string]any{"patient_id": "55555"},
		"scheduled_tasks": []any{map[string]any{"state": "scheduled", "due": "2099-01-01T00:00:00.000Z"}}})
	w.save(transitions.Doc{"_id": "new_person", "type": "person", "contact_type": "stray", "patient_id": "55555", "parent": clinic})
	d := w.doc("new_person")
	if d["muted"] == nil {
		t.Fatal("new person not muted")
	}
	if h := w.history("new_person"); !reflect.DeepEqual(h, []string{"true/mute_clinic"}) {
		t.Fatalf("history %v", h)
	}
	if st := jsv.Map(jsv.Slice(w.doc("reg_new")["scheduled_tasks"])[0])["state"]; st != "muted" {
		t.Fatalf("registration task %v", st)
	}
	if rec := jsv.Map(jsv.Map(w.info("new_person")["transitions"])["muting"]); rec["ok"] != true {
		t.Fatalf("record %v", rec)
	}
	// a contact replicated before its place was muted is not "new"
	w.sentinel.Load(transitions.Doc{"_id": infodoc.ID("old_person"), "type": "info", "doc_id": "old_person",
		"initial_replication_date": "2000-01-01T00:00:00.000Z", "_rev": "1-x"})
	w.save(transitions.Doc{"_id": "old_person", "type": "person", "parent": clinic})
	if w.doc("old_person")["muted"] != nil {
		t.Fatal("contact replicated before the mute was muted")
	}
}

func TestMutingClientSideContact(t *testing.T) {
	s := mutingSettings(map[string]any{"registrations": []any{map[string]any{"form": "REG"}}})
	w := newMutingWorld(t, s, mutingHierarchy()...)
	clinic := map[string]any{"_id": "clinic", "parent": map[string]any{"_id": "hc"}}
	w.save(transitions.Doc{"_id": "reg_cs", "type": "data_record", "form": "REG", "content_type": "xml", "fields": map[string]any{"patient_id": "77777"},
		"scheduled_tasks": []any{map[string]any{"state": "scheduled", "due": "2099-01-01T00:00:00.000Z"}}})
	w.save(transitions.Doc{"_id": "cs", "type": "person", "patient_id": "77777", "parent": clinic, "muted": 1000.0,
		"muting_history": map[string]any{"last_update": "client_side", "server_side": map[string]any{"muted": false},
			"client_side": []any{map[string]any{"muted": true, "date": 1000.0, "report_id": "r1"}}}})
	d := w.doc("cs")
	muted, _ := d["muted"].(string)
	if muted == "" {
		t.Fatalf("muted = %v, want the server's date", d["muted"])
	}
	mh := jsv.Map(d["muting_history"])
	if mh["last_update"] != "server_side" || !reflect.DeepEqual(mh["server_side"], map[string]any{"muted": true, "date": muted}) {
		t.Fatalf("muting_history %v", mh)
	}
	if h := w.history("cs"); !reflect.DeepEqual(h, []string{"true/r1"}) {
		t.Fatalf("history %v", h)
	}
	if st := jsv.Map(jsv.Slice(w.doc("reg_cs")["scheduled_tasks"])[0])["state"]; st != "muted" {
		t.Fatalf("registration task %v", st)
	}
	// the unmuted variant schedules future tasks again
	d = jsv.CloneMap(w.doc("cs"))
	delete(d, "muted")
	d["muting_history"] = map[string]any{"last_update": "client_side", "server_side": map[string]any{"muted": true},
		"client_side": []any{map[string]any{"muted": true, "date": 1000.0, "report_id": "r1"}, map[string]any{"muted": false, "date": 2000.0, "report_id": "r2"}}}
	w.save(d)
	if st := jsv.Map(jsv.Slice(w.doc("reg_cs")["scheduled_tasks"])[0])["state"]; st != "scheduled" {
		t.Fatalf("registration task %v", st)
	}
	if h := w.history("cs"); !reflect.DeepEqual(h, []string{"true/r1", "false/r2"}) {
		t.Fatalf("history %v", h)
	}
}

func TestMutingClientSideReplay(t *testing.T) {
	s := mutingSettings(nil)
	w := newMutingWorld(t, s, mutingHierarchy()...)
	hc := map[string]any{"_id": "hc", "parent": map[string]any{"_id": "dh"}}
	newClinic := map[string]any{"_id": "new_clinic", "parent": hc}
	history := []any{map[string]any{"report_id": "mutes_clinic", "muted": true, "date": 1000.0},
		map[string]any{"report_id": "unmutes_person", "muted": false, "date": 2000.0},
		map[string]any{"report_id": "mutes_clinic", "muted": true, "date": 4000.0}}
	unmute := mutingReport("unmutes_person", "unmute", "patient_id", "the_new_person")
	unmute["client_side_transitions"] = map[string]any{"muting": true}
	w.save(transitions.Doc{"_id": "new_clinic", "type": "clinic", "place_id": "the_new_clinic", "parent": hc,
		"muting_history": map[string]any{"server_side": map[string]any{"muted": false}, "client_side": history, "last_update": "client_side"}},
		transitions.Doc{"_id": "new_person", "type": "person", "patient_id": "the_new_person", "parent": newClinic, "muted": 3000.0,
			"muting_history": map[string]any{"client_side": history, "last_update": "client_side"}},
		unmute)
	if w.doc("new_clinic")["muted"] != nil || w.doc("new_person")["muted"] != nil {
		t.Fatalf("after step 1: clinic %v, person %v", w.doc("new_clinic")["muted"], w.doc("new_person")["muted"])
	}
	unmuteRev := w.doc("unmutes_person")["_rev"]
	mute := mutingReport("mutes_clinic", "mute", "place_id", "the_new_clinic")
	mute["client_side_transitions"] = map[string]any{"muting": true}
	w.save(mute)
	if w.doc("new_clinic")["muted"] == nil || w.doc("new_person")["muted"] == nil {
		t.Fatalf("after replay: clinic %v, person %v", w.doc("new_clinic")["muted"], w.doc("new_person")["muted"])
	}
	if h := w.history("new_clinic"); !reflect.DeepEqual(h[len(h)-3:], []string{"true/mutes_clinic", "false/unmutes_person", "true/mutes_clinic"}) {
		t.Fatalf("clinic history %v", h)
	}
	// the replayed report was saved once and recorded; its new revision did not re-run muting
	if w.doc("unmutes_person")["_rev"] == unmuteRev {
		t.Fatal("replayed report not saved")
	}
	if rec := jsv.Map(jsv.Map(w.info("unmutes_person")["transitions"])["muting"]); rec["ok"] != true {
		t.Fatalf("replayed record %v", rec)
	}
	// the change's own report, replayed in memory: saved once by the pipeline, message not duplicated
	if w.main.Puts("mutes_clinic") != 2 {
		t.Fatalf("mutes_clinic written %d times by the daemon", w.main.Puts("mutes_clinic")-1)
	}
	if got := mutingTaskTexts(w.doc("mutes_clinic")); !reflect.DeepEqual(got, []string{"Contact muted"}) {
		t.Fatalf("mutes_clinic tasks %v", got)
	}
	if got := mutingTaskTexts(w.doc("unmutes_person")); !reflect.DeepEqual(got, []string{"Contact unmuted"}) {
		t.Fatalf("unmutes_person tasks %v", got)
	}
}

func TestMutingSideEffectConflictsAreReRead(t *testing.T) {
	w := newMutingWorld(t, mutingSettings(nil), mutingHierarchy()...)
	fired := map[string]bool{}
	w.main.BeforeWrite = func(id string) {
		// someone else edits person3 and the clinic just before the cascade writes them
		if (id == "person3" || id == "clinic") && !fired[id] {
			fired[id] = true
			if ok, err := w.main.Edit(id, func(d transitions.Doc) bool { d["edited"] = true; return true }); !ok || err != nil {
				t.Errorf("edit %s: %v %v", id, ok, err)
			}
		}
	}
	w.save(mutingReport("mute_clinic", "mute", "place_id", "clinic"))
	if !fired["clinic"] || !fired["person3"] {
		t.Fatalf("the cascade did not write both docs: %v", fired)
	}
	for _, id := range []string{"clinic", "person3"} {
		d := w.doc(id)
		if d["edited"] != true || d["muted"] == nil {
			t.Fatalf("%s lost a write: %v", id, d)
		}
	}
	if errs := w.doc("mute_clinic")["errors"]; errs != nil {
		t.Fatalf("errors %v", errs)
	}
}
