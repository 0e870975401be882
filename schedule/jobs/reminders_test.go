package jobs

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch/couchtest"
	"sentinel-go/messages"
	"sentinel-go/templates"
)

func TestParseReminders(t *testing.T) {
	s := config.NewSettings(map[string]any{
		"contact_types": []any{
			map[string]any{"id": "region"},
			map[string]any{"id": "village", "parents": []any{"region"}},
			map[string]any{"id": "chw", "parents": []any{"village"}, "person": true},
		},
		"reminders": []any{
			map[string]any{"form": "A", "message": "hi", "cron": "0 9 * * 1"},
			map[string]any{"form": "B", "translation_key": "k", "text_expression": "at 9:00 am on Mon", "cron": "bad",
				"contact_types": []any{"village"}, "mute_after_form_for": "3 days"},
			map[string]any{"form": "", "message": "hi", "cron": "0 9 * * 1"},
			map[string]any{"form": "D", "cron": "0 9 * * 1"},
			map[string]any{"form": "E", "message": "hi"},
			map[string]any{"form": "F", "message": "hi", "text_expression": "sometimes"},
			map[string]any{"form": "G", "message": "hi", "cron": "0 9 * * 1", "contact_types": []any{}},
			map[string]any{"form": "H", "message": "hi", "cron": "0 9 * * 1", "contact_types": []any{"village", "nowhere"}},
			map[string]any{"form": "I", "message": "hi", "cron": "0 9 * * 1", "mute_after_form_for": "soon"},
			"not an object",
			map[string]any{"form": "K", "message": []any{map[string]any{"locale": "en", "content": "x"}}, "cron": 5},
		},
	})
	rs, problems := ParseReminders(s)
	var forms []string
	for _, r := range rs {
		forms = append(forms, r.Form)
	}
	if got := strings.Join(forms, ","); got != "A,B,I" {
		t.Fatalf("valid reminders %s, want A,B,I; problems %v", got, problems)
	}
	if rs[1].Schedule.String() != "at 9:00 am on Mon" || rs[1].MuteFor == nil || rs[1].MuteFor.N != 3 ||
		len(rs[1].Types) != 1 || rs[1].Types[0] != "village" || rs[1].Spec.Recipient != "reporting_unit" {
		t.Errorf("B parsed as %+v", rs[1])
	}
	if rs[0].Types != nil || rs[2].MuteFor != nil {
		t.Errorf("defaults wrong: %+v %+v", rs[0], rs[2])
	}
	want := []string{
		"reminders[2].form", "reminders[3]: needs a translation_key", "reminders[4]: needs a text_expression or a cron",
		"reminders[5].text_expression", "reminders[6].contact_types", `reminders[7].contact_types: unknown contact type "nowhere"`,
		"reminders[8].mute_after_form_for", "reminders[9]: must be an object", "reminders[10].cron: must be a string",
	}
	all := ""
	for _, p := range problems {
		if p.Severity != config.Warning {
			t.Errorf("problem %v is not a warning", p)
		}
		all += p.String() + "\n"
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no problem %q in:\n%s", w, all)
		}
	}
	if _, ps := ParseReminders(config.NewSettings(map[string]any{"reminders": "x"})); len(ps) != 1 {
		t.Errorf("non-array reminders: %v", ps)
	}
}

func TestReminderWeek(t *testing.T) {
	// moment's locale week ("en": weeks start on Sunday, week 1 holds Jan 1).
	cases := map[string]string{"2024-05-06": "19", "2024-01-01": "1", "2023-12-31": "1", "2022-12-31": "53"}
	for day, want := range cases {
		d, _ := time.Parse("2006-01-02", day)
		if got := templates.FormatMoment(d, "w", "en"); got != want {
			t.Errorf("week of %s = %s, want %s", day, got, want)
		}
	}
}

// TestRemindersJob runs the job against the real server (skipped without one).
func TestRemindersJob(t *testing.T) {
	ce := couchtest.New(t)
	ctx := context.Background()
	if err := ce.Client.Main.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	main := ce.MainDB
	// Monday 2024-05-06 09:00 UTC is the occurrence; now is 09:20.
	occ := time.Date(2024, 5, 6, 9, 0, 0, 0, time.UTC)
	now := occ.Add(20 * time.Minute)
	ms := func(t time.Time) float64 { return float64(t.UnixMilli()) }
	place := func(id string, extra map[string]any) map[string]any {
		d := map[string]any{"_id": id, "type": "contact", "contact_type": "village", "name": "Village " + id,
			"parent": map[string]any{"_id": "r1"}, "contact": map[string]any{"_id": "chw-" + id, "parent": map[string]any{"_id": id, "parent": map[string]any{"_id": "r1"}}}}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	chw := func(id, phone string) map[string]any {
		return map[string]any{"_id": "chw-" + id, "type": "contact", "contact_type": "chw", "name": "CHW " + id, "phone": phone,
			"parent": map[string]any{"_id": id, "parent": map[string]any{"_id": "r1"}}}
	}
	ce.Save(t, main,
		map[string]any{"_id": "r1", "type": "contact", "contact_type": "region", "name": "Region"},
		place("v1", nil), chw("v1", "+254700000001"),
		place("v2", nil), chw("v2", "+254700000002"),
		place("v3", map[string]any{"muted": "2024-05-01T00:00:00.000Z"}), chw("v3", "+254700000003"),
		place("v4", map[string]any{"contact": nil}),
		place("v5", map[string]any{"tasks": []any{map[string]any{"form": "STCK", "timestamp": "2024-05-06T09:00:00.000Z"}}}), chw("v5", "+254700000005"),
		place("v6", nil), chw("v6", "+254700000006"),
		place("v7", nil), // primary contact doc missing
		place("v8", nil), chw("v8", "+254700000008"),
		// v6 sent STCK 2 days before the occurrence: muted for 3 days.
		map[string]any{"_id": "rep1", "type": "data_record", "form": "STCK", "reported_date": ms(occ.Add(-48 * time.Hour)),
			"contact": map[string]any{"_id": "chw-v6", "parent": map[string]any{"_id": "v6", "parent": map[string]any{"_id": "r1"}}}},
		// v8 sent it 4 days before: not muted.
		map[string]any{"_id": "rep2", "type": "data_record", "form": "STCK", "reported_date": ms(occ.Add(-96 * time.Hour)),
			"contact": map[string]any{"_id": "chw-v8", "parent": map[string]any{"_id": "v8", "parent": map[string]any{"_id": "r1"}}}},
		// v2's reminder was written by an interrupted run.
		map[string]any{"_id": ReminderID("STCK", occ, "v2"), "type": "reminder", "form": "STCK", "note": "from the interrupted run"},
	)
	settings := map[string]any{
		"contact_types": []any{
			map[string]any{"id": "region"},
			map[string]any{"id": "village", "parents": []any{"region"}},
			map[string]any{"id": "chw", "parents": []any{"village", "region"}, "person": true},
		},
		"reminders": []any{
			map[string]any{"form": "STCK", "translation_key": "sms.reminder.stock", "text_expression": "at 9:00 am on Mon",
				"mute_after_form_for": "3 days"},
			map[string]any{"form": "NONE", "message": "never", "cron": "0 9 * * 2"},
			map[string]any{"form": "BAD", "message": "x", "text_expression": "whenever"},
		},
	}
	translations := config.Translations{"en": {"sms.reminder.stock": "{{name}}: {{contact.name}}, send stock for week {{week}} of {{year}}"}}
	clock := now
	env := &Env{Main: ce.Client.Main, Sentinel: ce.Client.Sentinel, Client: ce.Client,
		Settings: config.NewSettings(settings), Translations: translations, Location: time.UTC, Log: zerolog.Nop(),
		Clock: func() time.Time { return clock }, Dups: messages.NewDuplicates()}
	job := Reminders{PageSize: 2} // several pages (PouchDB Server ignores startkey_docid)
	if err := job.Run(ctx, env); err != nil {
		t.Fatal(err)
	}
	var all struct {
		Rows []struct {
			ID  string         `json:"id"`
			Doc map[string]any `json:"doc"`
		} `json:"rows"`
	}
	list := func(db, prefix string) map[string]map[string]any {
		t.Helper()
		u := ce.Server + "/" + db + `/_all_docs?include_docs=true&startkey="` + prefix + `"&endkey="` + prefix + `%EF%BF%B0"`
		if err := couchtest.Request(http.MethodGet, u, nil, &all); err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]any{}
		for _, r := range all.Rows {
			out[r.ID] = r.Doc
		}
		return out
	}
	rems := list(main, "reminder:")
	if len(rems) != 3 {
		t.Fatalf("reminders %v, want v1, v2 (old), v8", keys(rems))
	}
	v1 := rems[ReminderID("STCK", occ, "v1")]
	if v1 == nil || rems[ReminderID("STCK", occ, "v8")] == nil {
		t.Fatalf("reminders %v", keys(rems))
	}
	if old := rems[ReminderID("STCK", occ, "v2")]; old["note"] == nil || !strings.HasPrefix(old["_rev"].(string), "1-") {
		t.Errorf("the interrupted run's reminder was rewritten: %v", old)
	}
	if v1["type"] != "reminder" || v1["form"] != "STCK" || v1["reported_date"] != ms(now) {
		t.Errorf("reminder doc %v", v1)
	}
	if got := jsonString(v1["contact"]); got != `{"_id":"chw-v1","parent":{"_id":"v1","parent":{"_id":"r1"}}}` {
		t.Errorf("contact %s", got)
	}
	if got := jsonString(v1["place"]); got != `{"_id":"v1","parent":{"_id":"r1"}}` {
		t.Errorf("place %s", got)
	}
	tasks, _ := v1["tasks"].([]any)
	if len(tasks) != 1 {
		t.Fatalf("tasks %v", v1["tasks"])
	}
	task := tasks[0].(map[string]any)
	if task["state"] != "pending" || task["form"] != "STCK" || task["type"] != "reminder" || task["timestamp"] != "2024-05-06T09:00:00.000Z" {
		t.Errorf("task %v", task)
	}
	msg := task["messages"].([]any)[0].(map[string]any)
	if msg["to"] != "+254700000001" || msg["message"] != "Village v1: CHW v1, send stock for week 19 of 2024" || msg["uuid"] == nil {
		t.Errorf("message %v", msg)
	}
	if hist := task["state_history"].([]any); len(hist) != 1 || hist[0].(map[string]any)["timestamp"] != "2024-05-06T09:20:00.000Z" {
		t.Errorf("state_history %v", task["state_history"])
	}
	logs := list(main+"-sentinel", "reminderlog:")
	lg := logs["reminderlog:STCK:"+itoa(occ.UnixMilli())]
	if len(logs) != 1 || lg == nil {
		t.Fatalf("reminderlogs %v", keys(logs))
	}
	if lg["type"] != "reminderlog" || lg["reported_date"] != ms(now) || jsonString(lg["reminder"]) != jsonString(settings["reminders"].([]any)[0]) {
		t.Errorf("reminderlog %v", lg)
	}
	if _, ok := lg["duration"].(float64); !ok {
		t.Errorf("reminderlog duration %v", lg["duration"])
	}

	// A rerun (same or later time, same occurrence) writes nothing new.
	clock = now.Add(2 * time.Hour)
	if err := job.Run(ctx, env); err != nil {
		t.Fatal(err)
	}
	if n := len(list(main, "reminder:")); n != 3 {
		t.Errorf("rerun: %d reminders, want 3", n)
	}
	if n := len(list(main+"-sentinel", "reminderlog:")); n != 1 {
		t.Errorf("rerun: %d reminderlogs, want 1", n)
	}

	// The next week's occurrence is sent again (its reminderlog is older than a day).
	clock = now.Add(7 * 24 * time.Hour)
	if err := job.Run(ctx, env); err != nil {
		t.Fatal(err)
	}
	next := occ.Add(7 * 24 * time.Hour)
	rems = list(main, "reminder:")
	for _, id := range []string{"v1", "v2", "v5", "v6", "v8"} {
		if rems[ReminderID("STCK", next, id)] == nil {
			t.Errorf("week 2: no reminder for %s (have %v)", id, keys(rems))
		}
	}
	if len(rems) != 8 {
		t.Errorf("week 2: reminders %v", keys(rems))
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
