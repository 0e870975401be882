package outbound

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"sentinel-go/config"
	"sentinel-go/jsexpr"
)

func mustParse(t *testing.T, raw map[string]any) *Config {
	t.Helper()
	cfg, problems := Parse(raw, nil)
	if config.HasErrors(problems) {
		t.Fatalf("problems: %v", problems)
	}
	return cfg
}

func push(mapping map[string]any) map[string]any {
	return map[string]any{
		"relevant_to": "doc.type === 'data_record'",
		"destination": map[string]any{"base_url": "http://example.org", "path": "/x"},
		"mapping":     mapping,
	}
}

func TestPayload(t *testing.T) {
	doc := map[string]any{"_id": "r1", "_rev": "2-b", "type": "data_record",
		"fields": map[string]any{"patient_id": "12345", "temp_f": 98.6, "empty": nil, "list": []any{"a", "b"}}}
	cases := []struct {
		name    string
		mapping map[string]any
		want    map[string]any
		wantErr string
	}{
		{"paths and nesting", map[string]any{"id": "doc._id", "patient.id": "doc.fields.patient_id", "patient.rev": "doc._rev"},
			map[string]any{"id": "r1", "patient": map[string]any{"id": "12345", "rev": "2-b"}}, ""},
		{"path object", map[string]any{"p": map[string]any{"path": "doc.fields.patient_id"}}, map[string]any{"p": "12345"}, ""},
		{"array index in path", map[string]any{"first": "doc.fields.list.1"}, map[string]any{"first": "b"}, ""},
		{"null is a value", map[string]any{"e": "doc.fields.empty"}, map[string]any{"e": nil}, ""},
		{"expr", map[string]any{"temp_c": map[string]any{"expr": "((doc.fields.temp_f - 32) * 5 / 9).toFixed(1)"}}, map[string]any{"temp_c": "37.0"}, ""},
		{"expr object", map[string]any{"o": map[string]any{"expr": "({a: doc._id, u: undefined})"}}, map[string]any{"o": map[string]any{"a": "r1"}}, ""},
		{"expr null", map[string]any{"n": map[string]any{"expr": "null"}}, map[string]any{"n": nil}, ""},
		{"optional missing path skipped", map[string]any{"id": "doc._id", "notes": map[string]any{"path": "doc.fields.notes", "optional": true}},
			map[string]any{"id": "r1"}, ""},
		{"optional undefined expr skipped", map[string]any{"x": map[string]any{"expr": "doc.nothing", "optional": true}}, map[string]any{}, ""},
		{"missing path", map[string]any{"id": "doc._idx"}, nil, "doc._idx"},
		{"missing path without doc prefix", map[string]any{"id": "_id"}, nil, `"id"`},
		{"undefined expr", map[string]any{"x": map[string]any{"expr": "doc.fields.nope"}}, nil, "doc.fields.nope"},
		{"undefined expr with semicolon", map[string]any{"x": map[string]any{"expr": "doc.fields.nope;"}}, nil, "undefined"},
		{"throwing expr", map[string]any{"x": map[string]any{"expr": "doc.a.b.c"}}, nil, "TypeError"},
		{"bad entry", map[string]any{"x": 42.0}, nil, "neither a path nor an object"},
		{"entry without path or expr", map[string]any{"x": map[string]any{"optional": true}}, nil, "neither path nor expr"},
	}
	js := jsexpr.NewSandbox(jsexpr.Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustParse(t, map[string]any{"p": push(c.mapping)})
			got, err := cfg.Get("p").Payload(context.Background(), js, doc)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("payload = %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestPayloadUnsendable(t *testing.T) {
	cfg := mustParse(t, map[string]any{"p": map[string]any{"relevant_to": "true"}})
	_, err := cfg.Get("p").Payload(context.Background(), nil, map[string]any{"_id": "x"})
	if err == nil || !strings.Contains(err.Error(), "no usable destination") || !strings.Contains(err.Error(), "no mapping") {
		t.Errorf("err = %v", err)
	}
}

func TestParseProblems(t *testing.T) {
	cases := []struct {
		name      string
		raw       any
		wantError bool
		path      string
	}{
		{"not an object", []any{1.0}, true, "outbound"},
		{"push not an object", map[string]any{"p": "x"}, true, "outbound.p"},
		{"relevant_to syntax", map[string]any{"p": map[string]any{"relevant_to": "doc.("}}, true, "outbound.p.relevant_to"},
		{"relevant_to not a string", map[string]any{"p": map[string]any{"relevant_to": true}}, true, "outbound.p.relevant_to"},
		{"expr syntax", map[string]any{"p": push(map[string]any{"x": map[string]any{"expr": "1 +"}})}, true, "outbound.p.mapping.x.expr"},
		{"bad cron warns", map[string]any{"p": map[string]any{"relevant_to": "true", "cron": "not a cron", "destination": map[string]any{"base_url": "http://x"}, "mapping": map[string]any{}}}, false, "outbound.p.cron"},
		{"unknown auth warns", map[string]any{"p": map[string]any{"relevant_to": "true", "destination": map[string]any{"base_url": "http://x", "auth": map[string]any{"type": "oauth"}}, "mapping": map[string]any{}}}, false, "outbound.p.destination.auth.type"},
		{"bad header name warns", map[string]any{"p": map[string]any{"relevant_to": "true", "destination": map[string]any{"base_url": "http://x", "auth": map[string]any{"type": "header", "name": "X-Key", "value_key": "k"}}, "mapping": map[string]any{}}}, false, "outbound.p.destination.auth.name"},
		{"no destination warns", map[string]any{"p": map[string]any{"relevant_to": "true", "mapping": map[string]any{}}}, false, "outbound.p.destination"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, problems := Parse(c.raw, nil)
			if config.HasErrors(problems) != c.wantError {
				t.Errorf("errors = %v, want %v: %v", config.HasErrors(problems), c.wantError, problems)
			}
			found := false
			for _, p := range problems {
				found = found || p.Path == c.path
			}
			if !found {
				t.Errorf("no problem at %s: %v", c.path, problems)
			}
		})
	}
}

func TestRelevant(t *testing.T) {
	cfg := mustParse(t, map[string]any{
		"yes":   map[string]any{"relevant_to": "doc.type === 'data_record' && doc.form === 'test'"},
		"no":    map[string]any{"relevant_to": "doc.type === 'person'"},
		"none":  map[string]any{},
		"blank": map[string]any{"relevant_to": "  "},
		"throw": map[string]any{"relevant_to": "doc.a.b"},
	})
	doc := map[string]any{"_id": "r", "type": "data_record", "form": "test"}
	js := jsexpr.NewSandbox(jsexpr.Options{})
	for name, want := range map[string]bool{"yes": true, "no": false, "none": false, "blank": false} {
		got, err := cfg.Get(name).Relevant(context.Background(), js, doc)
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := cfg.Get("throw").Relevant(context.Background(), js, doc); err == nil {
		t.Error("a throwing relevant_to must be an error")
	}
}

func TestCronDue(t *testing.T) {
	loc := time.UTC
	now := time.Date(2024, 5, 1, 10, 30, 20, 0, loc)
	cases := []struct {
		cron string
		want bool
	}{
		{"30 10 * * *", true},  // now
		{"35 10 * * *", true},  // in 4m40s
		{"36 10 * * *", false}, // in 5m40s
		{"26 10 * * *", true},  // 4m20s ago
		{"25 10 * * *", false}, // 5m20s ago
		{"30 11 * * *", false}, // an hour away
		{"*/15 * * * *", true}, // 10:30
		{"0 0 * * *", false},
		{"30 10 * * 3", true},  // Wednesday
		{"30 10 * * 4", false}, // Thursday
		{"28 10 * * 0-7", true},
		{"@hourly", false},
	}
	for _, c := range cases {
		s, err := ParseCron(c.cron)
		if err != nil {
			t.Fatalf("%s: %v", c.cron, err)
		}
		if got := CronDue(s, now, loc); got != c.want {
			t.Errorf("CronDue(%q, %s) = %v, want %v", c.cron, now.Format("15:04:05"), got, c.want)
		}
	}
	// Across midnight and in the daemon's zone.
	s, _ := ParseCron("2 0 * * *")
	if !CronDue(s, time.Date(2024, 5, 1, 23, 58, 0, 0, loc), loc) {
		t.Error("00:02 is due at 23:58 the day before")
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err == nil {
		s, _ := ParseCron("30 12 * * *")
		if !CronDue(s, time.Date(2024, 5, 1, 10, 31, 0, 0, time.UTC), paris) {
			t.Error("12:30 Paris is 10:30 UTC in May")
		}
	}
	for _, bad := range []string{"", "* * *", "61 * * * *", "@every 5m", "a b c d e"} {
		if _, err := ParseCron(bad); err == nil {
			t.Errorf("ParseCron(%q) should fail", bad)
		}
	}
}

func TestPushDue(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	cfg, _ := Parse(map[string]any{
		"plain": map[string]any{},
		"due":   map[string]any{"cron": "30 10 * * *"},
		"later": map[string]any{"cron": "30 11 * * *"},
		"bad":   map[string]any{"cron": "nope"},
	}, nil)
	for name, want := range map[string]bool{"plain": true, "due": true, "later": false, "bad": false} {
		got, err := cfg.Get(name).Due(now, time.UTC)
		if got != want || (name == "bad") != (err != nil) {
			t.Errorf("%s: %v, %v", name, got, err)
		}
	}
}

func TestKeyOrder(t *testing.T) {
	cases := []struct {
		name, json string
		want       []string
	}{
		{"insertion order", `{"transitions":{"x":true},"outbound":{"working":{},"also_working":{"a":[1,{"b":2}]},"broken":{}},"z":1}`,
			[]string{"working", "also_working", "broken"}},
		{"index keys first", `{"outbound":{"b":{},"10":{},"a":{},"2":{}}}`, []string{"2", "10", "b", "a"}},
		{"repeated key keeps first place", `{"outbound":{"b":{},"a":{},"b":{"x":1}}}`, []string{"b", "a"}},
		{"last outbound wins", `{"outbound":{"a":{}},"outbound":{"c":{},"b":{}}}`, []string{"c", "b"}},
		{"no outbound", `{"transitions":{}}`, nil},
		{"outbound not an object", `{"outbound":[{"a":1}],"b":2}`, nil},
		{"empty", `{"outbound":{}}`, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := KeyOrder([]byte(c.json))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"outbound":{"a":}}`, `{"outbound":`} {
		if _, err := KeyOrder([]byte(bad)); err == nil {
			t.Errorf("KeyOrder(%q) should fail", bad)
		}
	}
}

func TestOrderNames(t *testing.T) {
	got := OrderNames([]string{"c", "a", "working", "also_working", "b"}, []string{"working", "gone", "also_working"})
	want := []string{"working", "also_working", "a", "b", "c"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
