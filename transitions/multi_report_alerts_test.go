package transitions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch/couchtest"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/memdb"
	"sentinel-go/messages"
)

// alertsEnv is an Env over store with settings raw and a sandbox bounded by timeout.
func alertsEnv(t *testing.T, raw map[string]any, store Store, timeout time.Duration) *Env {
	t.Helper()
	cfg := Load(raw, config.Translations{})
	return &Env{Config: cfg, Store: store, JS: jsexpr.NewSandbox(jsexpr.Options{Timeout: timeout}),
		Hydrator: lineage.New(store), Log: zerolog.Nop(), Now: time.UnixMilli(1714557600000).UTC(),
		Location: time.UTC, Dups: messages.NewDuplicates()}
}

// hydrated reads id from store and hydrates it as the pipeline would.
func hydrated(t *testing.T, env *Env, id string) Doc {
	t.Helper()
	d, err := env.Store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Hydrator.Hydrate(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d
}

func mraSettings(alerts ...any) map[string]any {
	return map[string]any{
		"transitions":         map[string]any{"multi_report_alerts": true},
		"forms":               map[string]any{"C": map[string]any{}, "D": map[string]any{}, "PUB": map[string]any{"public_form": true}},
		"multi_report_alerts": alerts,
	}
}

func mraAlertCfg(over map[string]any) map[string]any {
	a := map[string]any{
		"name": "cholera", "is_report_counted": "function(r, l) { return true; }",
		"num_reports_threshold": 2.0, "time_window_in_days": 7.0, "forms": []any{"C"},
		"recipients": []any{"new_report.from"}, "message": "{{num_counted_reports}} {{alert_name}} in {{time_window_in_days}} days (threshold {{num_reports_threshold}}): {{new_reports.0.contact.name}}, {{new_reports.1.contact.name}}.",
	}
	for k, v := range over {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return a
}

func problemStrings(ps []config.Problem, sev config.Severity) []string {
	var out []string
	for _, p := range ps {
		if p.Severity == sev {
			out = append(out, p.Path+": "+p.Message)
		}
	}
	return out
}

func TestMultiReportAlertsConfig(t *testing.T) {
	cases := []struct {
		name     string
		alerts   []any
		wantErr  []string // substrings of "path: message", each must appear
		wantWarn []string
	}{
		{"valid", []any{mraAlertCfg(nil)}, nil, nil},
		{"numeric strings parse", []any{mraAlertCfg(map[string]any{"num_reports_threshold": "3", "time_window_in_days": "7 days"})}, nil, nil},
		{"threshold over 100", []any{mraAlertCfg(nil), mraAlertCfg(map[string]any{"name": "b", "num_reports_threshold": 101.0})},
			[]string{"multi_report_alerts[1].num_reports_threshold: must be between 1 and 100"}, nil},
		{"threshold 100 is fine", []any{mraAlertCfg(map[string]any{"num_reports_threshold": "100"})}, nil, nil},
		{"threshold 0 is missing", []any{mraAlertCfg(map[string]any{"num_reports_threshold": 0.0})},
			[]string{"multi_report_alerts[0].num_reports_threshold: required key"}, nil},
		{"negative threshold", []any{mraAlertCfg(map[string]any{"num_reports_threshold": -2.0})},
			[]string{"multi_report_alerts[0].num_reports_threshold: must be between 1 and 100"}, nil},
		{"non-integer threshold", []any{mraAlertCfg(map[string]any{"num_reports_threshold": "many"})},
			[]string{`multi_report_alerts[0].num_reports_threshold: must be an integer, got "many"`}, nil},
		{"boolean window", []any{mraAlertCfg(map[string]any{"time_window_in_days": true})},
			[]string{"multi_report_alerts[0].time_window_in_days: must be an integer"}, nil},
		{"missing keys", []any{mraAlertCfg(map[string]any{"name": nil, "message": "", "is_report_counted": nil})},
			[]string{"multi_report_alerts[0].name: required", "multi_report_alerts[0].message: required", "multi_report_alerts[0].is_report_counted: required"}, nil},
		{"recipients not an array", []any{mraAlertCfg(map[string]any{"recipients": "new_report.from"})},
			[]string{"multi_report_alerts[0].recipients: must be an array"}, nil},
		{"duplicate names", []any{mraAlertCfg(nil), mraAlertCfg(nil)},
			[]string{`multi_report_alerts[1].name: alert name "cholera" is already used`}, nil},
		{"not an object", []any{"x"}, []string{"multi_report_alerts[0]: must be an object"}, nil},
		{"forms not an array only warns", []any{mraAlertCfg(map[string]any{"forms": "C"})}, nil,
			[]string{"multi_report_alerts[0].forms: is not an array"}},
		{"function that does not compile only warns", []any{mraAlertCfg(map[string]any{"is_report_counted": "function(r, l) { return r.x ", "name": "a"}),
			mraAlertCfg(map[string]any{"is_report_counted": "r.magic", "name": "b"})}, nil,
			[]string{"multi_report_alerts[0].is_report_counted", "multi_report_alerts[1].is_report_counted"}},
		{"bad recipient expression only warns", []any{mraAlertCfg(map[string]any{"recipients": []any{"new_report.(", 5.0}})}, nil,
			[]string{"multi_report_alerts[0].recipients[0]", "multi_report_alerts[0].recipients[1]: must be a non-empty string"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Load(mraSettings(c.alerts...), config.Translations{})
			errs := strings.Join(problemStrings(cfg.Problems, config.Error), "\n")
			warns := strings.Join(problemStrings(cfg.Problems, config.Warning), "\n")
			if (len(c.wantErr) == 0) != cfg.Valid() {
				t.Fatalf("Valid = %v; errors:\n%s", cfg.Valid(), errs)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(errs, w) {
					t.Errorf("errors lack %q:\n%s", w, errs)
				}
			}
			for _, w := range c.wantWarn {
				if !strings.Contains(warns, w) {
					t.Errorf("warnings lack %q:\n%s", w, warns)
				}
			}
		})
	}
	// Absent config only warns; a non-array is an error.
	if cfg := Load(map[string]any{"transitions": map[string]any{"multi_report_alerts": true}}, nil); !cfg.Valid() {
		t.Errorf("absent multi_report_alerts: %v", cfg.Problems)
	}
	if cfg := Load(map[string]any{"transitions": map[string]any{"multi_report_alerts": true}, "multi_report_alerts": map[string]any{}}, nil); cfg.Valid() {
		t.Error("object multi_report_alerts accepted")
	}
}

func TestParseLeadingInt(t *testing.T) {
	cases := []struct {
		in   any
		want int
		ok   bool
	}{
		{"7", 7, true}, {" 12abc", 12, true}, {"-3", -3, true}, {"+4", 4, true}, {7.9, 7, true}, {100.0, 100, true},
		{"abc", 0, false}, {"", 0, false}, {true, 0, false}, {nil, 0, false}, {[]any{1.0}, 0, false}, {"1e3", 1, true},
	}
	for _, c := range cases {
		got, ok := parseLeadingInt(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("parseLeadingInt(%#v) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestNewReports(t *testing.T) {
	alert := func(name string, ids ...any) any {
		return map[string]any{"type": "alert", "alert_name": name, "counted_reports": ids}
	}
	counted := []Doc{
		{"_id": "r9"},
		{"_id": "r7", "tasks": []any{alert("cholera", "r7", "r4"), alert("other", "r9")}},
		{"_id": "r5"},
		{"_id": "r4"},
	}
	var ids []string
	for _, r := range newReports(counted, "cholera") {
		ids = append(ids, r["_id"].(string))
	}
	if strings.Join(ids, ",") != "r9,r5" {
		t.Errorf("new reports = %v, want r9,r5", ids)
	}
	if n := len(newReports(counted, "none")); n != 4 {
		t.Errorf("no earlier alert: %d new, want 4", n)
	}
}

func TestMultiReportRecipients(t *testing.T) {
	env := alertsEnv(t, mraSettings(), memdb.New("medic"), 200*time.Millisecond)
	compile := func(srcs ...any) mraAlert {
		a, ps := parseMultiAlert(mraAlertCfg(map[string]any{"recipients": srcs}), "multi_report_alerts[0]")
		if a == nil {
			t.Fatalf("config: %v", ps)
		}
		return *a
	}
	fresh := []Doc{
		{"_id": "a", "from": "+254700000001", "phones": []any{"+1", "+2"}, "contact": map[string]any{"phone": "+254700000001"}},
		{"_id": "b", "from": "+256 41 9867538", "phones": []any{"+2", 3.0}},
	}
	cases := []struct {
		name       string
		recipients []any
		fresh      []Doc
		want       []string
		problem    string
	}{
		{"literal and dedupe", []any{"+254700000009", "new_report.from", "+254700000009"}, fresh, []string{"+254700000009", "+254700000001", "+256 41 9867538"}, ""},
		{"no new reports, no phones", []any{"+254700000009"}, nil, nil, ""},
		{"array, non-string element", []any{"new_report.phones"}, fresh, []string{"+1", "+2"},
			`multi_report_alerts : one of the phone numbers for "new_report.phones" is not a string. Message will not be sent. Found : 3`},
		{"not a string", []any{"new_report.contact"}, fresh[1:], nil,
			`multi_report_alerts : phone number for "new_report.contact" is not a string or array of strings. Message will not be sent. Found : undefined`},
		{"throws", []any{"new_report.contact.parent.phone"}, fresh[1:], nil,
			`multi_report_alerts : Could not find a phone number for "new_report.contact.parent.phone". Message will not be sent.`},
		{"expression over the report", []any{"new_report._id === 'a' ? new_report.from : []"}, fresh, []string{"+254700000001"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := compile(c.recipients...)
			phones, problems, err := a.phones(context.Background(), env, c.fresh)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(phones, "|") != strings.Join(c.want, "|") {
				t.Errorf("phones = %q, want %q", phones, c.want)
			}
			if c.problem == "" && len(problems) > 0 || c.problem != "" && (len(problems) == 0 || problems[0] != c.problem) {
				t.Errorf("problems = %q, want %q", problems, c.problem)
			}
		})
	}
	// A runaway recipient expression fails the alert.
	a := compile("(function(){ while (true) {} })()")
	if _, _, err := a.phones(context.Background(), env, fresh); !errors.Is(err, jsexpr.ErrTimeout) {
		t.Errorf("runaway recipient: err = %v, want a timeout", err)
	}
}

// mraWorld is a small district: two CHWs under one health centre, and a
// stranger elsewhere.
func mraWorld(reports ...Doc) *memdb.DB {
	docs := []Doc{
		{"_id": "district", "type": "district_hospital", "name": "District"},
		{"_id": "hc", "type": "health_center", "name": "HC", "parent": map[string]any{"_id": "district"}},
		{"_id": "chw1", "type": "person", "name": "Ann", "phone": "+254700000001", "parent": map[string]any{"_id": "hc", "parent": map[string]any{"_id": "district"}}},
		{"_id": "chw2", "type": "person", "name": "Bob", "phone": "+254700000002", "parent": map[string]any{"_id": "hc", "parent": map[string]any{"_id": "district"}}},
		{"_id": "other", "type": "person", "name": "Cid", "phone": "+254700000003"},
	}
	return memdb.New("medic").Load(append(docs, reports...)...)
}

func mraReport(id, form, chw string, reportedMs float64, extra map[string]any) Doc {
	r := Doc{"_id": id, "_rev": "1-a", "type": "data_record", "form": form, "reported_date": reportedMs,
		"from":    map[string]string{"chw1": "+254700000001", "chw2": "+254700000002", "other": "+254700000003"}[chw],
		"contact": map[string]any{"_id": chw, "parent": map[string]any{"_id": "hc", "parent": map[string]any{"_id": "district"}}}}
	if chw == "other" {
		r["contact"] = map[string]any{"_id": chw}
	}
	for k, v := range extra {
		r[k] = v
	}
	return r
}

const mraDay = 86400000.0

func TestMultiReportAlertsRun(t *testing.T) {
	now := 1714557600000.0
	store := mraWorld(
		mraReport("old", "C", "chw2", now-8*mraDay, nil),     // outside the 7-day window
		mraReport("r1", "C", "chw2", now-2*mraDay, nil),      // counted
		mraReport("r2", "D", "chw2", now-mraDay, nil),        // form not listed
		mraReport("same", "C", "chw2", now, nil),             // same reported_date as L: not counted
		mraReport("L", "C", "chw1", now, nil),                // the latest report
		mraReport("strange", "C", "other", now-3600000, nil), // counted by form, rejected by is_report_counted
		mraReport("anon", "C", "nobody", now-7200000, nil),   // unknown sender: not a valid submission
	)
	counted := "function(r, l) { return r.contact.parent && r.contact.parent._id === l.contact.parent._id; }"
	env := alertsEnv(t, mraSettings(mraAlertCfg(map[string]any{"is_report_counted": counted})), store, time.Second)
	if !env.Config.Valid() {
		t.Fatal(env.Config.Problems)
	}
	tr := env.Config.Transitions[0]
	c := &Change{ID: "L", Doc: hydrated(t, env, "L"), Info: Doc{}}
	if !tr.Filter(env, c) {
		t.Fatal("filter refused a valid report")
	}
	changed, err := tr.Run(context.Background(), env, c)
	if err != nil || !changed {
		t.Fatalf("Run = %v, %v", changed, err)
	}
	tasks := jsv.Slice(c.Doc["tasks"])
	if len(tasks) != 2 {
		t.Fatalf("tasks = %v", tasks)
	}
	wantTo := []string{"+254700000001", "+254700000002"}
	for i, tk := range tasks {
		task := jsv.Map(tk)
		msg := jsv.Map(jsv.Slice(task["messages"])[0])
		if msg["to"] != wantTo[i] || msg["message"] != "2 cholera in 7 days (threshold 2): Ann, Bob." {
			t.Errorf("task %d message = %v", i, msg)
		}
		if task["type"] != "alert" || task["alert_name"] != "cholera" || task["state"] != "pending" ||
			fmt.Sprint(task["counted_reports"]) != "[L r1]" {
			t.Errorf("task %d = %v", i, task)
		}
	}

	// A third counted report: the threshold is met by all counted reports,
	// but only its own sender is new.
	c.Doc["_rev"] = "2-b"
	store.Load(lineage.Minify(c.Doc))
	if ok, err := store.Remove("same"); !ok || err != nil { // it would be counted (and new) for L3
		t.Fatalf("remove same: %v %v", ok, err)
	}
	store.Load(mraReport("L3", "C", "chw1", now+1000, nil))
	c3 := &Change{ID: "L3", Doc: hydrated(t, env, "L3"), Info: Doc{}}
	if changed, err := tr.Run(context.Background(), env, c3); err != nil || !changed {
		t.Fatalf("Run L3 = %v, %v", changed, err)
	}
	tasks = jsv.Slice(c3.Doc["tasks"])
	if len(tasks) != 1 || fmt.Sprint(jsv.Map(tasks[0])["counted_reports"]) != "[L3 L r1]" {
		t.Fatalf("L3 tasks = %v", tasks)
	}
	if msg := jsv.Map(jsv.Slice(jsv.Map(tasks[0])["messages"])[0]); msg["to"] != "+254700000001" || msg["message"] != "3 cholera in 7 days (threshold 2): Ann, ." {
		t.Errorf("L3 message = %v", msg)
	}

	// Under the threshold nothing changes.
	env2 := alertsEnv(t, mraSettings(mraAlertCfg(map[string]any{"is_report_counted": counted, "num_reports_threshold": 4.0})), store, time.Second)
	cL := &Change{ID: "L", Doc: hydrated(t, env2, "r1"), Info: Doc{}}
	if changed, err := env2.Config.Transitions[0].Run(context.Background(), env2, cL); err != nil || changed {
		t.Errorf("under threshold: Run = %v, %v", changed, err)
	}
}

func TestMultiReportAlertsFailures(t *testing.T) {
	now := 1714557600000.0
	cases := []struct {
		name     string
		counted  string
		wantErr  string // "" means no error
		changed  bool
		timeouts bool
	}{
		{"throw on the latest report skips the alert", "function(r, l) { throw new Error('boom'); }", "", false, false},
		{"throw on a candidate does not count it", "function(r, l) { if (r._id !== l._id) { throw new Error('boom'); } return true; }", "", false, false},
		{"function that does not compile fails the alert", "function(r, l) { return ", "is_report_counted", true, false},
		{"runaway on the latest report", "function(r, l) { while (true) {} }", "timed out", true, true},
		{"runaway on a candidate", "function(r, l) { while (r._id !== l._id) {} return true; }", "timed out", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store := mraWorld(mraReport("r1", "C", "chw2", now-mraDay, nil), mraReport("L", "C", "chw1", now, nil))
			second := mraAlertCfg(map[string]any{"name": "second", "num_reports_threshold": 1.0, "message": "second alert"})
			env := alertsEnv(t, mraSettings(mraAlertCfg(map[string]any{"is_report_counted": c.counted}), second), store, 50*time.Millisecond)
			c2 := &Change{ID: "L", Doc: hydrated(t, env, "L"), Info: Doc{}}
			changed, err := env.Config.Transitions[0].Run(context.Background(), env, c2)
			var ce *ChangedError
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			} else if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.wantErr) || !strings.HasPrefix(err.Error(), "multi_report_alerts threw errors") {
				t.Fatalf("err = %v, want a ChangedError with %q", err, c.wantErr)
			}
			if c.timeouts != errors.Is(err, jsexpr.ErrTimeout) {
				t.Errorf("timeout = %v, want %v", errors.Is(err, jsexpr.ErrTimeout), c.timeouts)
			}
			// The other alert (threshold 1, both reports counted, both
			// senders new) ran anyway.
			if !changed || len(jsv.Slice(c2.Doc["tasks"])) != 2 {
				t.Errorf("changed = %v, tasks = %v: the second alert must still run", changed, c2.Doc["tasks"])
			}
		})
	}
}

// TestAlertViewsAgainstServer checks the window and history lookups on the
// real server: ranges are inclusive, pages of 100 join up, forms filter.
func TestAlertViewsAgainstServer(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	db := env.Client.Main
	if err := db.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	for i := 0; i < 250; i++ {
		form := []string{"C", "D", "E"}[i%3]
		parent := []string{"clinic1", "clinic2"}[i%2]
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("r%03d", i), "type": "data_record", "form": form,
			"reported_date": float64(1000 + i*10), "contact": map[string]any{"_id": "p", "parent": map[string]any{"_id": parent}}})
	}
	docs = append(docs, map[string]any{"_id": "person", "type": "person", "reported_date": 1500.0},
		map[string]any{"_id": "noform", "type": "data_record", "reported_date": 1500.0})
	env.Save(t, env.MainDB, docs...)

	all, err := db.ReportsByDate(ctx, nil, 1000, 3490)
	if err != nil || len(all) != 250 {
		t.Fatalf("all forms: %d reports, %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1]["reported_date"].(float64) <= all[i]["reported_date"].(float64) {
			t.Fatalf("not newest first at %d", i)
		}
	}
	window, err := db.ReportsByDate(ctx, []string{"C", "D", "C"}, 1010, 2000) // r001..r100, inclusive
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range window {
		if d["form"] == "E" {
			t.Errorf("form E returned: %v", d["_id"])
		}
		ids = append(ids, d["_id"].(string))
	}
	if len(ids) != 67 || ids[0] != "r100" || ids[len(ids)-1] != "r001" {
		t.Errorf("window = %d reports %v…", len(ids), ids[:3])
	}
	if empty, err := db.ReportsByDate(ctx, nil, 2000, 1000); err != nil || len(empty) != 0 {
		t.Errorf("reversed range: %v, %v", empty, err)
	}
	hist, err := db.ReportsByFormAndParent(ctx, "C", "clinic2")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 42 || hist[0]["_id"] != "r003" || hist[41]["_id"] != "r249" {
		t.Errorf("history = %d reports, first %v", len(hist), hist[0]["_id"])
	}
}
