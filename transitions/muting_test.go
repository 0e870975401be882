package transitions

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"sentinel-go/config"
	"sentinel-go/jsv"
)

func TestMutingConfigProblems(t *testing.T) {
	cases := []struct {
		name     string
		muting   any
		wantErr  string // path of the expected error ("" = valid)
		wantWarn string
	}{
		{"missing config", nil, "muting.mute_forms", ""},
		{"not an object", "mute", "muting", ""},
		{"mute_forms missing", map[string]any{"unmute_forms": []any{"u"}}, "muting.mute_forms", ""},
		{"mute_forms empty", map[string]any{"mute_forms": []any{}}, "muting.mute_forms", ""},
		{"mute_forms a string", map[string]any{"mute_forms": "mute"}, "muting.mute_forms", ""},
		{"valid", map[string]any{"mute_forms": []any{"mute"}, "unmute_forms": []any{"unmute"}}, "", ""},
		{"unmute_forms not an array", map[string]any{"mute_forms": []any{"m"}, "unmute_forms": "u"}, "", "muting.unmute_forms"},
		{"form in both lists", map[string]any{"mute_forms": []any{"m"}, "unmute_forms": []any{"M!"}}, "", "muting.unmute_forms"},
		{"unknown event", map[string]any{"mute_forms": []any{"m"}, "messages": []any{map[string]any{"event_type": "muted"}}}, "", "muting.messages[0].event_type"},
		{"bad validation rule", map[string]any{"mute_forms": []any{"m"}, "validations": map[string]any{
			"list": []any{map[string]any{"property": "x", "rule": "lenMin(", "message": "bad"}}}}, "muting.", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := map[string]any{"transitions": map[string]any{"muting": true}}
			if c.muting != nil {
				raw["muting"] = c.muting
			}
			cfg := Load(raw, nil)
			var errs, warns []string
			for _, p := range cfg.Problems {
				if p.Severity == config.Error {
					errs = append(errs, p.Path)
				} else {
					warns = append(warns, p.Path)
				}
			}
			if c.wantErr == "" {
				if len(errs) > 0 || !cfg.Valid() || len(cfg.Transitions) != 1 {
					t.Fatalf("unexpected errors %v", cfg.Problems)
				}
			} else if cfg.Valid() || !strings.HasPrefix(strings.Join(errs, ","), c.wantErr) {
				t.Fatalf("errors at %v, want %s (problems %v)", errs, c.wantErr, cfg.Problems)
			}
			if c.wantWarn != "" && !strings.Contains(strings.Join(warns, ","), c.wantWarn) {
				t.Fatalf("warnings at %v, want %s", warns, c.wantWarn)
			}
		})
	}
}

func TestMutingFormWants(t *testing.T) {
	tr := &muting{muteForms: []string{"MUTE", "both"}, unmuteForms: []string{"unmute", "both"}}
	cases := []struct {
		form         string
		wanted, isOK bool
	}{
		{"mute", true, true}, {" Mute! ", true, true}, {"unmute", false, true}, {"UNMUTE", false, true},
		{"both", true, true}, {"mutex", false, false}, {"", false, false},
	}
	for _, c := range cases {
		w, ok := tr.formWants(c.form)
		if w != c.wanted || ok != c.isOK {
			t.Errorf("formWants(%q) = %v, %v; want %v, %v", c.form, w, ok, c.wanted, c.isOK)
		}
	}
}

func TestMutingUpdateContact(t *testing.T) {
	const now = "2024-05-10T09:00:00.000Z"
	cases := []struct {
		name        string
		contact     Doc
		wanted      bool
		wantChanged bool
		want        Doc
	}{
		{"mute plain contact", Doc{}, true, true, Doc{"muted": now}},
		{"mute keeps an earlier date", Doc{"muted": "2024-01-01T00:00:00.000Z"}, true, false,
			Doc{"muted": "2024-01-01T00:00:00.000Z"}},
		{"unmute removes muted", Doc{"muted": "x"}, false, true, Doc{}},
		{"unmute unmuted: nothing", Doc{}, false, false, Doc{}},
		{"client-side muted date is overwritten",
			Doc{"muted": 3000.0, "muting_history": map[string]any{"last_update": "client_side", "client_side": []any{}}}, true, true,
			Doc{"muted": now, "muting_history": map[string]any{"last_update": "server_side", "client_side": []any{},
				"server_side": map[string]any{"muted": true, "date": now}}}},
		{"server-side history in the other state",
			Doc{"muted": "old", "muting_history": map[string]any{"last_update": "server_side", "server_side": map[string]any{"muted": false}}}, true, true,
			Doc{"muted": now, "muting_history": map[string]any{"last_update": "server_side", "server_side": map[string]any{"muted": true, "date": now}}}},
		{"server-side history up to date keeps the date",
			Doc{"muted": "old", "muting_history": map[string]any{"last_update": "server_side", "server_side": map[string]any{"muted": true, "date": "old"}}}, true, false,
			Doc{"muted": "old", "muting_history": map[string]any{"last_update": "server_side", "server_side": map[string]any{"muted": true, "date": "old"}}}},
		{"client-side unmute",
			Doc{"muting_history": map[string]any{"last_update": "client_side"}}, false, true,
			Doc{"muting_history": map[string]any{"last_update": "server_side", "server_side": map[string]any{"muted": false, "date": now}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			changed := mutingUpdateContact(c.contact, c.wanted, now)
			if changed != c.wantChanged || !reflect.DeepEqual(c.contact, c.want) {
				t.Fatalf("got %v %v, want %v %v", changed, c.contact, c.wantChanged, c.want)
			}
		})
	}
}

func TestMutingUpdateTasks(t *testing.T) {
	now := time.Date(2024, 5, 10, 15, 0, 0, 0, time.UTC)
	today := time.Date(2024, 5, 10, 0, 0, 0, 0, time.UTC)
	reg := func() Doc {
		return Doc{"reported_date": float64(now.AddDate(0, 0, -100).UnixMilli()), "scheduled_tasks": []any{
			map[string]any{"state": "scheduled", "due": "2024-06-01T00:00:00.000Z"},
			map[string]any{"state": "pending", "due": "2024-04-01T00:00:00.000Z"},
			map[string]any{"state": "sent", "due": "2024-06-01T00:00:00.000Z"},
			map[string]any{"state": "cleared", "due": "2024-06-01T00:00:00.000Z"},
		}}
	}
	states := func(d Doc) string {
		var s []string
		for _, t := range jsv.Slice(d["scheduled_tasks"]) {
			s = append(s, jsv.String(jsv.Map(t)["state"]))
		}
		return strings.Join(s, ",")
	}
	r := reg()
	if !mutingUpdateTasks(r, true, today, now, time.UTC) || states(r) != "muted,muted,sent,cleared" {
		t.Fatalf("mute: %s", states(r))
	}
	hist := jsv.Slice(jsv.Map(jsv.Slice(r["scheduled_tasks"])[0])["state_history"])
	if len(hist) != 1 || jsv.Map(hist[0])["state"] != "muted" {
		t.Fatalf("state history: %v", hist)
	}
	if mutingUpdateTasks(r, true, today, now, time.UTC) {
		t.Fatal("re-muting changed something")
	}
	if !mutingUpdateTasks(r, false, today, now, time.UTC) || states(r) != "scheduled,muted,sent,cleared" {
		t.Fatalf("unmute: %s", states(r))
	}
	// due today (earlier than now) is not past-due
	r = Doc{"scheduled_tasks": []any{map[string]any{"state": "muted", "due": "2024-05-10T01:00:00.000Z"},
		map[string]any{"state": "muted", "due": float64(today.Add(-time.Millisecond).UnixMilli())}}}
	mutingUpdateTasks(r, false, today, now, time.UTC)
	if states(r) != "scheduled,muted" {
		t.Fatalf("unmute around midnight: %s", states(r))
	}
}

func TestMutingAppendHistory(t *testing.T) {
	info := Doc{}
	steps := []struct {
		entry map[string]any
		add   bool
	}{
		{mutingHistoryEntry(true, "d1", "r1"), true},
		{mutingHistoryEntry(true, "d2", "r1"), false},
		{mutingHistoryEntry(false, "d3", "r1"), true},
		{mutingHistoryEntry(true, "d4", "r2"), true},
		{mutingHistoryEntry(true, "d5", ""), true},
		{mutingHistoryEntry(true, "d6", ""), false},
	}
	for i, s := range steps {
		if got := mutingAppendHistory(info, s.entry); got != s.add {
			t.Fatalf("step %d: appended %v, want %v", i, got, s.add)
		}
	}
	if n := len(jsv.Slice(info["muting_history"])); n != 4 {
		t.Fatalf("history length %d", n)
	}
	if _, ok := jsv.Map(jsv.Slice(info["muting_history"])[3])["report_id"]; ok {
		t.Fatal("entry without report id carries report_id")
	}
}

func TestMutingReplayOrder(t *testing.T) {
	hist := func(entries ...map[string]any) Doc {
		cs := make([]any, len(entries))
		for i, e := range entries {
			cs[i] = e
		}
		return Doc{"muting_history": map[string]any{"client_side": cs}}
	}
	e := func(id string, date any) map[string]any {
		m := map[string]any{"muted": true}
		if id != "" {
			m["report_id"] = id
		}
		if date != nil {
			m["date"] = date
		}
		return m
	}
	circular := hist(e("mutes_clinic", 1000.0), e("unmutes_person", 2000.0), e("mutes_clinic", 4000.0))
	cases := []struct {
		name     string
		contacts []Doc
		report   string
		want     []string
	}{
		{"after the first entry of the report", []Doc{circular}, "mutes_clinic", []string{"unmutes_person", "mutes_clinic"}},
		{"last entry: nothing after", []Doc{circular}, "x", nil},
		{"report not in history", []Doc{hist(e("a", 1.0), e("b", 2.0))}, "z", nil},
		{"no history", []Doc{{}}, "a", nil},
		{"entries without id or date ignored", []Doc{hist(e("r", 1.0), e("", 2.0), e("x", nil), e("y", 3.0))}, "r", []string{"y"}},
		{"merged across contacts, sorted as strings, first occurrence kept",
			[]Doc{hist(e("r", 1.0), e("c", "2024-05-03"), e("a", "2024-05-01")), hist(e("r", 1.0), e("b", "2024-05-02"), e("a", "2024-05-04"))},
			"r", []string{"a", "b", "c"}},
		{"numbers compare as strings", []Doc{hist(e("r", 1.0), e("late", 10000.0), e("early", 2000.0))}, "r", []string{"late", "early"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mutingReplayOrder(c.contacts, c.report); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestMutingRoot(t *testing.T) {
	dh := Doc{"_id": "dh"}
	hc := Doc{"_id": "hc", "muted": "x", "parent": dh}
	clinic := Doc{"_id": "clinic", "parent": hc}
	person := Doc{"_id": "p", "muted": "y", "parent": clinic}
	if r := mutingRoot(person, true); r["_id"] != "p" {
		t.Errorf("mute root = %v", r["_id"])
	}
	if r := mutingRoot(person, false); r["_id"] != "hc" {
		t.Errorf("unmute root = %v", r["_id"])
	}
	if r := mutingRoot(Doc{"_id": "q", "parent": dh}, false); r["_id"] != "q" {
		t.Errorf("unmute root without muted ancestor = %v", r["_id"])
	}
}

func TestMutingNewUnderMuted(t *testing.T) {
	env := &Env{Location: time.UTC}
	parent := func(muted any) Doc {
		p := Doc{"_id": "clinic"}
		if muted != nil {
			p["muted"] = muted
		}
		return Doc{"_id": "hc", "parent": p}
	}
	cases := []struct {
		name    string
		contact Doc
		info    Doc
		want    bool
	}{
		{"muted ancestor, unknown replication", Doc{"parent": parent("2024-05-01T00:00:00.000Z")}, Doc{"initial_replication_date": "unknown"}, true},
		{"grand-parent muted", Doc{"parent": Doc{"_id": "x", "parent": parent("2024-05-01T00:00:00.000Z")}}, Doc{}, true},
		{"no muted ancestor", Doc{"parent": parent(nil)}, Doc{}, false},
		{"contact already muted", Doc{"muted": "x", "parent": parent("2024-05-01T00:00:00.000Z")}, Doc{}, false},
		{"info has history", Doc{"parent": parent("2024-05-01T00:00:00.000Z")}, Doc{"muting_history": []any{}}, false},
		{"client side", Doc{"muting_history": map[string]any{"last_update": "client_side"}, "parent": parent("2024-05-01T00:00:00.000Z")}, Doc{}, false},
		{"muted before replication", Doc{"parent": parent("2024-05-01T00:00:00.000Z")}, Doc{"initial_replication_date": "2024-05-02T00:00:00.000Z"}, true},
		{"muted at replication", Doc{"parent": parent("2024-05-02T00:00:00.000Z")}, Doc{"initial_replication_date": "2024-05-02T00:00:00.000Z"}, true},
		{"muted after replication", Doc{"parent": parent("2024-05-03T00:00:00.000Z")}, Doc{"initial_replication_date": "2024-05-02T00:00:00.000Z"}, false},
		{"replication as epoch ms", Doc{"parent": parent(1000.0)}, Doc{"initial_replication_date": 2000.0}, true},
		{"muted after replication (ms)", Doc{"parent": parent(3000.0)}, Doc{"initial_replication_date": 2000.0}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mutingNewUnderMuted(env, c.contact, c.info); got != c.want {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

// --- behaviour, against an in-memory database fed like the daemon's feed ---

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
	if w.main.puts["mute1"] != 2 {
		t.Fatalf("mute1 written %d times, want once by the daemon", w.main.puts["mute1"]-1)
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
	reg := func(id, key, subject string) Doc {
		return Doc{"_id": id, "type": "data_record", "form": "REG", "content_type": "xml", "fields": map[string]any{key: subject},
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
	w.save(Doc{"_id": "reg_new", "type": "data_record", "form": "REG", "content_type": "xml", "fields": map[string]any{"patient_id": "55555"},
		"scheduled_tasks": []any{map[string]any{"state": "scheduled", "due": "2099-01-01T00:00:00.000Z"}}})
	w.save(Doc{"_id": "new_person", "type": "person", "contact_type": "stray", "patient_id": "55555", "parent": clinic})
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
	w.sentinel.docs[InfoID("old_person")] = Doc{"_id": InfoID("old_person"), "type": "info", "doc_id": "old_person",
		"initial_replication_date": "2000-01-01T00:00:00.000Z", "_rev": "1-x"}
	w.save(Doc{"_id": "old_person", "type": "person", "parent": clinic})
	if w.doc("old_person")["muted"] != nil {
		t.Fatal("contact replicated before the mute was muted")
	}
}

func TestMutingClientSideContact(t *testing.T) {
	s := mutingSettings(map[string]any{"registrations": []any{map[string]any{"form": "REG"}}})
	w := newMutingWorld(t, s, mutingHierarchy()...)
	clinic := map[string]any{"_id": "clinic", "parent": map[string]any{"_id": "hc"}}
	w.save(Doc{"_id": "reg_cs", "type": "data_record", "form": "REG", "content_type": "xml", "fields": map[string]any{"patient_id": "77777"},
		"scheduled_tasks": []any{map[string]any{"state": "scheduled", "due": "2099-01-01T00:00:00.000Z"}}})
	w.save(Doc{"_id": "cs", "type": "person", "patient_id": "77777", "parent": clinic, "muted": 1000.0,
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
	w.save(Doc{"_id": "new_clinic", "type": "clinic", "place_id": "the_new_clinic", "parent": hc,
		"muting_history": map[string]any{"server_side": map[string]any{"muted": false}, "client_side": history, "last_update": "client_side"}},
		Doc{"_id": "new_person", "type": "person", "patient_id": "the_new_person", "parent": newClinic, "muted": 3000.0,
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
	if w.main.puts["mutes_clinic"] != 2 {
		t.Fatalf("mutes_clinic written %d times by the daemon", w.main.puts["mutes_clinic"]-1)
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
	w.main.beforePut = func(id string) {
		// someone else edits person3 and the clinic just before the cascade writes them
		if (id == "person3" || id == "clinic") && !fired[id] {
			fired[id] = true
			d := w.main.docs[id]
			d["edited"] = true
			d["_rev"] = fmt.Sprintf("%d-y", revGeneration(d["_rev"].(string))+1)
		}
	}
	w.save(mutingReport("mute_clinic", "mute", "place_id", "clinic"))
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
