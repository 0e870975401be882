package transitions

import (
	"strings"
	"testing"
	"time"

	"sentinel-go/config"
	"sentinel-go/schedule"
)

// day is midnight UTC of 2024-05-<n> (days past 31 roll over into June).
func day(n int) time.Time { return time.Date(2024, 5, n, 0, 0, 0, 0, time.UTC) }

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func task(typ string, group any, due time.Time, state string) map[string]any {
	t := map[string]any{"type": typ, "due": iso(due), "state": state}
	if group != nil {
		t["group"] = group
	}
	return t
}

func reg(id string, tasks ...map[string]any) Doc {
	ts := make([]any, len(tasks))
	for i, t := range tasks {
		ts[i] = t
	}
	return Doc{"_id": id, "scheduled_tasks": ts}
}

func states(d Doc) []string {
	var out []string
	for _, t := range d["scheduled_tasks"].([]any) {
		out = append(out, t.(map[string]any)["state"].(string))
	}
	return out
}

func TestFindRespondedTo(t *testing.T) {
	eight := schedule.Duration{N: 8, Unit: "day"}
	none := schedule.Duration{}
	cases := []struct {
		name       string
		regs       []Doc
		visit      time.Time
		silenceFor schedule.Duration
		wantReg    string
		wantTask   int // index in the registration's scheduled_tasks
	}{
		{"visit after a sent group-1 reminder answers it",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent"), task("anc", 2.0, day(20), "scheduled"))},
			day(3), eight, "r1", 0},
		{"delivered counts too",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "delivered"))},
			day(3), none, "r1", 0},
		{"the latest sent task before the visit wins",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent"), task("anc", 1.0, day(2), "sent"), task("anc", 1.0, day(9), "sent"))},
			day(5), none, "r1", 1},
		{"tasks are sorted by due first",
			[]Doc{reg("r1", task("anc", 1.0, day(2), "sent"), task("anc", 1.0, day(1), "sent"))},
			day(5), none, "r1", 0},
		{"pending and scheduled tasks are not answers",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "pending"), task("anc", 1.0, day(2), "scheduled"))},
			day(5), none, "", -1},
		{"a task due at the visit is not before it",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent"), task("anc", 1.0, day(5), "sent"))},
			day(5), none, "r1", 0},
		{"visit within silence_for of a newly cleared next group answers nothing",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent"), task("anc", 2.0, day(10), "cleared"), task("anc", 2.0, day(25), "cleared"))},
			day(5), eight, "", -1},
		{"a cleared task in the same group does not stop the walk",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent"), task("anc", 1.0, day(10), "cleared"))},
			day(5), eight, "r1", 0},
		{"a cleared next group beyond silence_for does not stop the walk",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent"), task("anc", 2.0, day(20), "cleared"))},
			day(5), eight, "r1", 0},
		{"without silence_for only cleared tasks already due can stop the walk",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent"), task("anc", 2.0, day(10), "cleared"))},
			day(5), none, "r1", 0},
		{"a cleared group already due stops the walk",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent"), task("anc", 2.0, day(3), "cleared"))},
			day(5), none, "", -1},
		{"tasks without group are one group",
			[]Doc{reg("r1", task("anc", nil, day(1), "sent"), task("anc", nil, day(3), "cleared"))},
			day(5), none, "r1", 0},
		{"visit before the first due skips the registration, the next one answers",
			[]Doc{reg("r1", task("anc", 1.0, day(10), "sent")), reg("r2", task("pnc", 1.0, day(2), "sent"))},
			day(5), none, "r2", 0},
		{"a stopped registration passes to the next one",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent"), task("anc", 2.0, day(6), "cleared")), reg("r2", task("pnc", 1.0, day(2), "sent"))},
			day(5), eight, "r2", 0},
		{"the first registration in lookup order wins",
			[]Doc{reg("r1", task("anc", 1.0, day(1), "sent")), reg("r2", task("pnc", 1.0, day(4), "sent"))},
			day(5), none, "r1", 0},
		{"registrations without tasks are skipped",
			[]Doc{{"_id": "r0"}, reg("r1", task("anc", 1.0, day(1), "sent"))},
			day(5), none, "r1", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gotReg, gotTask := findRespondedTo(c.regs, c.visit, c.silenceFor, time.UTC)
			if c.wantReg == "" {
				if gotTask != nil {
					t.Fatalf("found %v in %v, want nothing", gotTask, gotReg["_id"])
				}
				return
			}
			if gotReg == nil || gotReg["_id"] != c.wantReg {
				t.Fatalf("registration %v, want %s", gotReg["_id"], c.wantReg)
			}
			want := gotReg["scheduled_tasks"].([]any)[c.wantTask].(map[string]any)
			if gotTask == nil || gotTask["due"] != want["due"] {
				t.Fatalf("task %v, want %v", gotTask, want)
			}
		})
	}
}

func TestAddRespondedToBy(t *testing.T) {
	task := map[string]any{}
	if !addRespondedToBy(task, "v1") || !addRespondedToBy(task, "v2") || addRespondedToBy(task, "v1") {
		t.Fatal("wrong change reports")
	}
	got := task["responded_to_by"].([]any)
	if len(got) != 2 || got[0] != "v1" || got[1] != "v2" {
		t.Errorf("responded_to_by = %v", got)
	}
}

func TestSilenceRegistrations(t *testing.T) {
	reported := day(1)
	oneDay := &schedule.Duration{N: 1, Unit: "day"}
	zero := &schedule.Duration{N: 0, Unit: "day"}
	fresh := func() []Doc {
		return []Doc{
			reg("a",
				task("type1", 1.0, day(2), "scheduled"), // group 1 due within the window
				task("type1", 1.0, day(20), "pending"),  // same group, later: cleared too
				task("type1", 2.0, day(30), "scheduled"),
				task("type2", 1.0, day(30), "scheduled"), // type2 group 1 not due in the window
				task("type3", 1.0, day(2), "scheduled"),  // not a silenced type
				task("type1", 1.0, day(1), "sent"),       // never cleared
			),
			reg("b", task("type2", 1.0, day(1), "muted"), task("type2", 1.0, day(9), "scheduled")),
			reg("report", task("type1", 1.0, day(1), "scheduled")),
		}
	}
	cases := []struct {
		name       string
		silenceFor *schedule.Duration
		want       map[string][]string
		changed    []string
	}{
		{"silence_for groups per (group, type)", oneDay, map[string][]string{
			"a":      {"cleared", "cleared", "scheduled", "scheduled", "scheduled", "sent"},
			"b":      {"cleared", "cleared"},
			"report": {"scheduled"},
		}, []string{"a", "b"}},
		{"no silence_for clears every clearable task of the types (muted included)", nil, map[string][]string{
			"a":      {"cleared", "cleared", "cleared", "cleared", "scheduled", "sent"},
			"b":      {"cleared", "cleared"},
			"report": {"scheduled"},
		}, []string{"a", "b"}},
		// until = reported: only the (group, type) pairs with a task due by
		// then, in any state (a's sent type1 task of group 1), are cleared.
		{"an unparseable silence_for acts as 0", zero, map[string][]string{
			"a":      {"cleared", "cleared", "scheduled", "scheduled", "scheduled", "sent"},
			"b":      {"cleared", "cleared"},
			"report": {"scheduled"},
		}, []string{"a", "b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			regs := fresh()
			changed := silenceRegistrations(regs, "report", []string{"type1", "type2"}, c.silenceFor, reported, day(1), time.UTC)
			var ids []string
			for _, r := range changed {
				ids = append(ids, r["_id"].(string))
			}
			if strings.Join(ids, ",") != strings.Join(c.changed, ",") {
				t.Errorf("changed %v, want %v", ids, c.changed)
			}
			for _, r := range regs {
				got := states(r)
				if strings.Join(got, ",") != strings.Join(c.want[r["_id"].(string)], ",") {
					t.Errorf("%v states %v, want %v", r["_id"], got, c.want[r["_id"].(string)])
				}
				for _, tk := range r["scheduled_tasks"].([]any) {
					tm := tk.(map[string]any)
					if tm["state"] == "cleared" && tm["cleared_by"] != "report" {
						t.Errorf("%v: cleared task without cleared_by: %v", r["_id"], tm)
					}
				}
			}
		})
	}
}

func TestLatestReported(t *testing.T) {
	cases := []struct {
		name string
		docs []Doc
		want any
	}{
		{"none", nil, nil},
		{"numbers", []Doc{{"_id": "a", "reported_date": 1000.0}, {"_id": "b", "reported_date": 3000.0}, {"_id": "c", "reported_date": 2000.0}}, "b"},
		{"ties keep the first", []Doc{{"_id": "a", "reported_date": 1000.0}, {"_id": "b", "reported_date": 1000.0}}, "a"},
		{"ISO strings and numbers", []Doc{{"_id": "a", "reported_date": iso(day(3))}, {"_id": "b", "reported_date": float64(day(2).UnixMilli())}}, "a"},
		{"a missing date loses", []Doc{{"_id": "a"}, {"_id": "b", "reported_date": 5.0}}, "b"},
		{"all missing: the first", []Doc{{"_id": "a"}, {"_id": "b"}}, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := latestReported(c.docs, time.UTC)
			if (got == nil) != (c.want == nil) || (got != nil && got["_id"] != c.want) {
				t.Errorf("latest = %v, want %v", got, c.want)
			}
		})
	}
}

func TestUniqueDocsAndWithout(t *testing.T) {
	a, b, a2 := Doc{"_id": "a"}, Doc{"_id": "b"}, Doc{"_id": "a", "copy": true}
	u := uniqueDocs([]Doc{a, b, a2})
	if len(u) != 2 || u[0]["copy"] != nil || u[1]["_id"] != "b" {
		t.Errorf("uniqueDocs = %v", u)
	}
	w := without(u, "a")
	if len(w) != 1 || w[0]["_id"] != "b" {
		t.Errorf("without = %v", w)
	}
}

func TestParseReportEntries(t *testing.T) {
	cases := []struct {
		name     string
		value    any
		wantErr  []string // paths of errors
		wantWarn []string // paths of warnings
		check    func(t *testing.T, es []reportEntry)
	}{
		{"missing is only a warning", nil, nil, []string{"patient_reports"}, nil},
		{"not an array", map[string]any{"form": "V"}, []string{"patient_reports"}, nil, nil},
		{"entries must be objects with a string form",
			[]any{map[string]any{"form": "V"}, "W", map[string]any{"form": 3.0}, map[string]any{}},
			[]string{"patient_reports[1]", "patient_reports[2].form", "patient_reports[3].form"}, nil, nil},
		{"silence settings", []any{map[string]any{"form": "V", "silence_type": " ANC Reminders, ANC Reminders LMP ,", "silence_for": "8 days"}}, nil, nil,
			func(t *testing.T, es []reportEntry) {
				e := es[0]
				if strings.Join(e.silenceTypes, "|") != "ANC Reminders|ANC Reminders LMP" {
					t.Errorf("silenceTypes = %q", e.silenceTypes)
				}
				if e.silenceFor == nil || *e.silenceFor != (schedule.Duration{N: 8, Unit: "day"}) {
					t.Errorf("silenceFor = %v", e.silenceFor)
				}
			}},
		{"empty silence_for means none", []any{map[string]any{"form": "V", "silence_type": "x", "silence_for": ""}}, nil, nil,
			func(t *testing.T, es []reportEntry) {
				if es[0].silenceFor != nil {
					t.Errorf("silenceFor = %v, want nil", es[0].silenceFor)
				}
			}},
		{"a bad silence_for warns and acts as 0", []any{map[string]any{"form": "V", "silence_for": "a fortnight"}}, nil, []string{"patient_reports[0].silence_for"},
			func(t *testing.T, es []reportEntry) {
				if es[0].silenceFor == nil || es[0].silenceFor.N != 0 {
					t.Errorf("silenceFor = %v, want 0", es[0].silenceFor)
				}
			}},
		{"bool_expr syntax errors are errors",
			[]any{map[string]any{"form": "V", "messages": []any{
				map[string]any{"event_type": "report_accepted", "bool_expr": "doc.fields.x === true"},
				map[string]any{"event_type": "report_accepted", "bool_expr": "doc.fields.x ==="}}}},
			[]string{"patient_reports[0].messages[1].bool_expr"}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := map[string]any{}
			if c.value != nil {
				raw["patient_reports"] = c.value
			}
			es, ps := parseReportEntries(config.NewSettings(raw), "patient_reports")
			var errs, warns []string
			for _, p := range ps {
				if p.Severity == config.Error {
					errs = append(errs, p.Path)
				} else {
					warns = append(warns, p.Path)
				}
			}
			if strings.Join(errs, ",") != strings.Join(c.wantErr, ",") {
				t.Errorf("errors at %v, want %v (%v)", errs, c.wantErr, ps)
			}
			if strings.Join(warns, ",") != strings.Join(c.wantWarn, ",") {
				t.Errorf("warnings at %v, want %v (%v)", warns, c.wantWarn, ps)
			}
			if c.check != nil {
				c.check(t, es)
			}
		})
	}
}

func TestFilterReport(t *testing.T) {
	env := &Env{Config: Load(map[string]any{"forms": map[string]any{"V": map[string]any{}, "P": map[string]any{"public_form": true}}}, nil)}
	entries := []reportEntry{{form: "V"}, {form: "P"}, {form: "X"}}
	withPhone := map[string]any{"phone": "+1"}
	ran := Doc{"transitions": map[string]any{"accept_patient_reports": map[string]any{"ok": true}}}
	cases := []struct {
		name string
		doc  Doc
		info Doc
		want bool
	}{
		{"sms from a known contact", Doc{"type": "data_record", "form": "V", "reported_date": 1.0, "contact": withPhone}, nil, true},
		{"public form", Doc{"type": "data_record", "form": "P", "reported_date": 1.0}, nil, true},
		{"xform not in settings.forms", Doc{"type": "data_record", "form": "X", "reported_date": 1.0, "content_type": "xml"}, nil, true},
		{"form match is exact", Doc{"type": "data_record", "form": "v", "reported_date": 1.0, "contact": withPhone}, nil, false},
		{"unknown sender", Doc{"type": "data_record", "form": "V", "reported_date": 1.0}, nil, false},
		{"no reported_date", Doc{"type": "data_record", "form": "P"}, nil, false},
		{"zero reported_date", Doc{"type": "data_record", "form": "P", "reported_date": 0.0}, nil, false},
		{"not a report", Doc{"type": "person", "form": "P", "reported_date": 1.0}, nil, false},
		{"already ran", Doc{"type": "data_record", "form": "P", "reported_date": 1.0}, ran, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := &Change{Doc: c.doc, Info: c.info}
			if got := filterReport(env, ch, "accept_patient_reports", entries); got != c.want {
				t.Errorf("filter = %v, want %v", got, c.want)
			}
		})
	}
}
