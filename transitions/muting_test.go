package transitions

import (
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
		// A rule that does not parse fails its reports, not the config.
		{"bad validation rule", map[string]any{"mute_forms": []any{"m"}, "validations": map[string]any{
			"list": []any{map[string]any{"property": "x", "rule": "lenMin(", "message": "bad"}}}}, "", "muting.validations.list[0].rule"},
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
		{"info has only the entry of an interrupted run", Doc{"parent": parent("2024-05-01T00:00:00.000Z")},
			Doc{"muting_history": []any{map[string]any{"muted": true, "date": "2024-05-01T00:00:00.000Z", "report_id": "r"}}}, true},
		{"info has an unmute entry", Doc{"parent": parent("2024-05-01T00:00:00.000Z")},
			Doc{"muting_history": []any{map[string]any{"muted": false, "report_id": "r"}}}, false},
		{"info has two entries", Doc{"parent": parent("2024-05-01T00:00:00.000Z")},
			Doc{"muting_history": []any{map[string]any{"muted": true}, map[string]any{"muted": false}, map[string]any{"muted": true}}}, false},
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

func TestMutingAnchor(t *testing.T) {
	e := func(muted bool, id string) any { return map[string]any{"muted": muted, "report_id": id} }
	cases := []struct {
		name   string
		hist   []any
		wanted bool
		report string
		want   int
	}{
		{"no history", nil, true, "r", -1},
		{"first entry of the report", []any{e(false, "a"), e(true, "r"), e(false, "b"), e(true, "r")}, true, "r", 1},
		{"other state is not the report's entry", []any{e(false, "r")}, true, "r", -1},
		{"entries that are not objects skipped", []any{"x", nil, e(true, "r")}, true, "r", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mutingAnchor(c.hist, c.wanted, c.report); got != c.want {
				t.Fatalf("got %d, want %d", got, c.want)
			}
		})
	}
}
