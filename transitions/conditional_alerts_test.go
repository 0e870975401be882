package transitions

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"sentinel-go/config"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/memdb"
)

func caSettings(alerts any) map[string]any {
	return map[string]any{
		"transitions": map[string]any{"conditional_alerts": true},
		"forms":       map[string]any{"TEMP": map[string]any{}, "O": map[string]any{}},
		"alerts":      alerts,
	}
}

func TestConditionalAlertsConfig(t *testing.T) {
	cases := []struct {
		name     string
		alerts   any
		nAlerts  int
		wantErr  string
		wantWarn string
	}{
		{"array", []any{map[string]any{"form": "TEMP", "condition": "doc.fields.temp > 38", "message": "x"}}, 1, "", ""},
		{"object values, keys ignored", map[string]any{"b": map[string]any{"form": "TEMP", "condition": "true", "message": "b"},
			"a": map[string]any{"form": "O", "condition": "true", "message": "a"}}, 2, "", ""},
		{"not a list", "TEMP", 0, "alerts: must be an array", ""},
		{"syntax error", []any{map[string]any{"form": "TEMP", "condition": "doc.fields.temp >", "message": "x"}}, 0, "alerts[0].condition", ""},
		{"non-string condition warns", []any{map[string]any{"form": "TEMP", "condition": true, "message": "x"}}, 1, "", "alerts[0].condition: must be a string"},
		{"no text warns", []any{map[string]any{"form": "TEMP", "condition": "true"}}, 1, "", "neither message nor translation_key"},
		{"form code that cannot name a function", []any{map[string]any{"form": "new", "condition": "new Date() > 0", "message": "x"}}, 1, "", "cannot name a JavaScript function"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Load(caSettings(c.alerts), config.Translations{})
			errs := strings.Join(problemStrings(cfg.Problems, config.Error), "\n")
			warns := strings.Join(problemStrings(cfg.Problems, config.Warning), "\n")
			if (c.wantErr == "") != cfg.Valid() || c.wantErr != "" && !strings.Contains(errs, c.wantErr) {
				t.Fatalf("Valid = %v, errors %q, want %q", cfg.Valid(), errs, c.wantErr)
			}
			if c.wantWarn != "" && !strings.Contains(warns, c.wantWarn) {
				t.Errorf("warnings %q lack %q", warns, c.wantWarn)
			}
			if cfg.Valid() {
				if n := len(cfg.Transitions[0].(*conditionalAlerts).alerts); n != c.nAlerts {
					t.Errorf("%d alerts, want %d", n, c.nAlerts)
				}
			}
		})
	}
	cfg := Load(caSettings(map[string]any{"b": map[string]any{"form": "TEMP", "condition": "true", "message": "b"},
		"a": map[string]any{"form": "O", "condition": "true", "message": "a"}}), nil)
	if a := cfg.Transitions[0].(*conditionalAlerts).alerts; a[0].form != "O" {
		t.Errorf("object alerts not in key order: %v", a[0].form)
	}
}

func TestHistoryFunc(t *testing.T) {
	list := []Doc{{"_id": "a"}, {"_id": "b"}}
	f := historyFunc(list)
	cases := []struct {
		arg  any
		want any
	}{
		{0.0, "a"}, {1.0, "b"}, {2.0, nil}, {-1.0, nil}, {0.5, nil}, {"1", "b"}, {"01", nil}, {"x", nil}, {nil, nil},
	}
	for _, c := range cases {
		got := f(c.arg)
		var id any
		if got != nil {
			id = got.(Doc)["_id"]
		}
		if id != c.want {
			t.Errorf("FORM(%#v) = %v, want %v", c.arg, id, c.want)
		}
	}
	if f() != nil {
		t.Error("FORM() should be undefined")
	}
}

func caWorld(reports ...Doc) *memdb.DB {
	docs := []Doc{
		{"_id": "clinic", "type": "clinic", "name": "Clinic", "contact": map[string]any{"_id": "nurse"}},
		{"_id": "nurse", "type": "person", "name": "Nurse", "phone": "+254700000010", "parent": map[string]any{"_id": "clinic"}},
		{"_id": "clinic2", "type": "clinic", "name": "Other clinic"},
		{"_id": "nurse2", "type": "person", "name": "Nurse 2", "phone": "+254700000020", "parent": map[string]any{"_id": "clinic2"}},
	}
	return memdb.New("medic").Load(append(docs, reports...)...)
}

func caReport(id, nurse string, reported float64, temp float64) Doc {
	parent := map[string]string{"nurse": "clinic", "nurse2": "clinic2"}[nurse]
	return Doc{"_id": id, "type": "data_record", "form": "TEMP", "reported_date": reported,
		"from":    map[string]string{"nurse": "+254700000010", "nurse2": "+254700000020"}[nurse],
		"contact": map[string]any{"_id": nurse, "parent": map[string]any{"_id": parent}}, "fields": map[string]any{"temp": temp}}
}

func TestConditionalAlertsRun(t *testing.T) {
	alerts := []any{
		map[string]any{"form": "TEMP", "recipient": "reporting_unit", "message": "Fever increased at {{contact.parent.name}}",
			"condition": "TEMP(1) && TEMP(0).fields.temp > TEMP(1).fields.temp && 1000 < TEMP(0).reported_date - TEMP(1).reported_date < 10000"},
		map[string]any{"form": "TEMP", "recipient": "reporting_unit", "message": "Fever",
			"condition": "TEMP(0).fields.temp > 37 && (TEMP(1) === undefined || TEMP(0).reported_date - TEMP(1).reported_date > 10000)"},
		map[string]any{"form": "O", "recipient": "reporting_unit", "message": "never", "condition": "true"},
	}
	now := 1714557600000.0
	cases := []struct {
		name    string
		reports []Doc
		doc     string
		want    []string // message texts, in order
	}{
		{"first report: fever", []Doc{caReport("r1", "nurse", now, 38)}, "r1", []string{"Fever"}},
		{"second report shortly after: increased", []Doc{caReport("r1", "nurse", now-1200, 38), caReport("r0", "nurse", now, 39)}, "r0", []string{"Fever increased at Clinic"}},
		{"other clinic's history is not used", []Doc{caReport("r1", "nurse2", now-1200, 38), caReport("r0", "nurse", now, 39)}, "r0", []string{"Fever"}},
		{"no fever", []Doc{caReport("r1", "nurse", now, 36)}, "r1", nil},
		// TEMP(0) is the newest report (r1, 38), not doc; TEMP(1) is doc.
		{"an older report processed late is not TEMP(0)", []Doc{caReport("r1", "nurse", now, 38), caReport("r0", "nurse", now-2000, 39)}, "r0", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := alertsEnv(t, caSettings(alerts), caWorld(c.reports...), time.Second)
			tr := env.Config.Transitions[0]
			ch := &Change{ID: c.doc, Doc: hydrated(t, env, c.doc), Info: Doc{}}
			if !tr.Filter(env, ch) {
				t.Fatal("filter refused")
			}
			changed, err := tr.Run(context.Background(), env, ch)
			if err != nil || changed != (len(c.want) > 0) {
				t.Fatalf("Run = %v, %v", changed, err)
			}
			var got []string
			for _, tk := range jsv.Slice(ch.Doc["tasks"]) {
				m := jsv.Map(jsv.Slice(jsv.Map(tk)["messages"])[0])
				got = append(got, jsv.String(m["message"]))
				if m["to"] != ch.Doc["from"] || jsv.Map(tk)["state"] != "pending" {
					t.Errorf("task = %v", tk)
				}
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("messages = %q, want %q", got, c.want)
			}
		})
	}
}

func TestConditionalAlertsFailures(t *testing.T) {
	now := 1714557600000.0
	cases := []struct {
		name    string
		alerts  []any
		doc     Doc
		wantErr string
		timeout bool
	}{
		{"condition throws", []any{
			map[string]any{"form": "TEMP", "message": "first", "condition": "true"},
			map[string]any{"form": "TEMP", "message": "x", "condition": "doc.fields.nothing.deeper"}},
			caReport("r1", "nurse", now, 38), "TypeError", false},
		{"runaway condition", []any{map[string]any{"form": "TEMP", "message": "x", "condition": "while (true) {}"}},
			caReport("r1", "nurse", now, 38), "timed out", true},
		{"history without a parent", []any{map[string]any{"form": "TEMP", "message": "x", "condition": "TEMP(0)"}},
			Doc{"_id": "r1", "type": "data_record", "form": "TEMP", "reported_date": now, "content_type": "xml", "contact": map[string]any{"_id": "ghost"}},
			"has no parent", false},
		{"non-string condition", []any{map[string]any{"form": "TEMP", "message": "x", "condition": true}},
			caReport("r1", "nurse", now, 38), "alerts[0].condition must be a string", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := alertsEnv(t, caSettings(c.alerts), caWorld(c.doc), 50*time.Millisecond)
			if !env.Config.Valid() {
				t.Fatal(env.Config.Problems)
			}
			ch := &Change{ID: "r1", Doc: hydrated(t, env, "r1"), Info: Doc{}}
			changed, err := env.Config.Transitions[0].Run(context.Background(), env, ch)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || changed {
				t.Fatalf("Run = %v, %v; want an error with %q", changed, err, c.wantErr)
			}
			var ce *ChangedError
			if errors.As(err, &ce) {
				t.Error("a conditional_alerts failure must not count as a change")
			}
			if errors.Is(err, jsexpr.ErrTimeout) != c.timeout {
				t.Errorf("timeout = %v, want %v", !c.timeout, c.timeout)
			}
			if len(jsv.Slice(ch.Doc["tasks"])) != 0 {
				t.Errorf("a failed run left tasks: %v", ch.Doc["tasks"])
			}
		})
	}
}
