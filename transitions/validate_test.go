package transitions

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"sentinel-go/config"
	"sentinel-go/messages"
)

// TestValidateReplies: the errors and the one reply of a failed validation
// list (validations.md §4), for each way its texts can come out.
func TestValidateReplies(t *testing.T) {
	tr := config.ParseTranslations([]map[string]any{
		{"code": "en", "generic": map[string]any{
			"v.broken": "{{^a}}Missing{{/a}}{{#a}}Bad {{a}}", "v.b": "B is too short",
			"v.blank": "   ", "v.ws": "{{#a}}Bad value {{a}}.{{/a}} {{^a}}Send a value.{{/a}}",
			"v.false": "{{#zz}}never{{/zz}}", "v.field": "Got {{c}}",
		}},
		{"code": "fr", "generic": map[string]any{"v.b": ""}},
	})
	entry := func(prop string, kv ...any) any {
		m := map[string]any{"property": prop, "rule": "lenMin(5)"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name    string
		join    bool
		list    []any
		fields  map[string]any
		wantErr []errT
		want    []string // texts of the tasks' messages; "<empty>" for a text-less one
	}{
		{"missing everywhere: the key is the text", true,
			[]any{entry("a", "translation_key", "v.missing")}, nil,
			[]errT{{"code": "invalid_a", "message": "v.missing"}}, []string{"v.missing"}},
		{"empty in the locale falls back to English", true,
			[]any{entry("a", "translation_key", "v.b")}, nil,
			[]errT{{"code": "invalid_a", "message": "B is too short"}}, []string{"B is too short"}},
		{"no text configured", true,
			[]any{entry("a", "message", "")}, nil,
			[]errT{{"code": "invalid_a", "message": `Error: {"code":"invalid_a"}`}}, []string{`Error: {"code":"invalid_a"}`}},
		{"a text that comes out empty", true,
			[]any{entry("a", "translation_key", "v.blank")}, nil,
			[]errT{{"code": "invalid_a", "message": `Error: {"code":"invalid_a","message":""}`}}, []string{`Error: {"code":"invalid_a","message":""}`}},
		{"empty legacy array", true,
			[]any{entry("a", "message", []any{})}, nil,
			[]errT{{"code": "invalid_a", "message": `Error: {"code":"invalid_a","message":""}`}}, []string{`Error: {"code":"invalid_a","message":""}`}},
		{"unparsable text: parse_error and no reply", true,
			[]any{entry("a", "translation_key", "v.broken")}, nil,
			[]errT{{"code": "parse_error", "message": `Unclosed section "a" at 34: {"code":"invalid_a","message":"{{^a}}Missing{{/a}}{{#a}}Bad {{a}}"}`}}, nil},
		{"unparsable text loses the whole joined reply", true,
			[]any{entry("a", "translation_key", "v.broken"), entry("b", "translation_key", "v.b")}, nil,
			[]errT{{"code": "parse_error", "message": `Unclosed section "a" at 34: {"code":"invalid_a","message":"{{^a}}Missing{{/a}}{{#a}}Bad {{a}}"}`},
				{"code": "invalid_b", "message": "B is too short"}}, nil},
		{"whitespace a template leaves is kept", true,
			[]any{entry("a", "translation_key", "v.ws")}, nil,
			[]errT{{"code": "invalid_a", "message": "Bad value x. "}}, []string{"Bad value x. "}},
		{"a text rendering to nothing is dropped", true,
			[]any{entry("a", "translation_key", "v.false"), entry("b", "translation_key", "v.b")}, nil,
			[]errT{{"code": "invalid_b", "message": "B is too short"}}, []string{"B is too short"}},
		{"nothing left: a text-less reply", false,
			[]any{entry("a", "translation_key", "v.false")}, nil,
			nil, []string{"<empty>"}},
		{"two failures on one property: one error, both texts", true,
			[]any{entry("a", "translation_key", "v.b"), entry("a", "message", "A not int")}, nil,
			[]errT{{"code": "invalid_a", "message": "B is too short"}}, []string{"B is too short  A not int"}},
		{"a field value's tags are rendered by the reply", true,
			[]any{entry("a", "translation_key", "v.field")}, map[string]any{"c": "{{from}}"},
			[]errT{{"code": "invalid_a", "message": "Got {{from}}"}}, []string{"Got +254712345678"}},
		{"a field value that breaks the reply loses it", true,
			[]any{entry("a", "translation_key", "v.field")}, map[string]any{"c": "{{#x"},
			[]errT{{"code": "invalid_a", "message": "Got {{#x"}, {"code": "parse_error", "message": "Unclosed tag at 8: undefined"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Load(map[string]any{}, tr)
			env := &Env{Config: cfg, Location: time.UTC, Now: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Dups: messages.NewDuplicates()}
			v, problems := compileValidations(map[string]any{"join_responses": c.join, "list": c.list}, "registrations[0]")
			if config.HasErrors(problems) {
				t.Fatalf("problems: %v", problems)
			}
			fields := map[string]any{"a": "x", "b": "y"}
			for k, f := range c.fields {
				fields[k] = f
			}
			doc := Doc{"_id": "r1", "type": "data_record", "form": "V", "from": "+254712345678", "locale": "fr", "fields": fields}
			failed, err := validate(context.Background(), env, doc, v, nil)
			if err != nil || !failed {
				t.Fatalf("validate = %v, %v", failed, err)
			}
			gotErr, _ := json.Marshal(doc["errors"])
			wantErr, _ := json.Marshal(c.wantErr)
			if c.wantErr == nil {
				wantErr = []byte("null")
			}
			if string(gotErr) != string(wantErr) {
				t.Errorf("errors %s\nwant   %s", gotErr, wantErr)
			}
			tasks, ok := doc["tasks"].([]any)
			if !ok {
				t.Fatalf("tasks = %#v, want an array", doc["tasks"])
			}
			var got []string
			for _, task := range tasks {
				m := task.(map[string]any)["messages"].([]any)[0].(map[string]any)
				if s, ok := m["message"].(string); ok {
					got = append(got, s)
				} else {
					got = append(got, "<empty>")
				}
			}
			if g, w := jsonOf(got), jsonOf(c.want); g != w {
				t.Errorf("replies %s, want %s", g, w)
			}
		})
	}
}

// errT is an expected doc error.
type errT = map[string]any

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRejectionText: the error of a rejection carries the looked-up text,
// rendered, even when the message itself gets none (transitions README,
// Rejection).
func TestRejectionText(t *testing.T) {
	tr := config.ParseTranslations([]map[string]any{
		{"code": "en", "generic": map[string]any{"apr.en_only": "No patient {{patient_id}}", "apr.blank": " "}},
		{"code": "fr", "generic": map[string]any{"other": "Autre"}},
	})
	cases := []struct {
		name    string
		entries []map[string]any
		want    []errT
		reply   string
	}{
		{"English when the locale lacks it", []map[string]any{{"event_type": "registration_not_found", "translation_key": "apr.en_only"}},
			[]errT{{"code": "registration_not_found", "message": "No patient 99999"}}, "No patient 99999"},
		{"the configured key when no locale has it", []map[string]any{{"event_type": "registration_not_found", "translation_key": "apr.nowhere"}},
			[]errT{{"code": "registration_not_found", "message": "apr.nowhere"}}, "<empty>"},
		{"the generic key by default", nil,
			[]errT{{"code": "registration_not_found", "message": "messages.generic.registration_not_found"}}, "<empty>"},
		{"a text that comes out empty", []map[string]any{{"event_type": "registration_not_found", "translation_key": "apr.blank"}},
			[]errT{{"code": "registration_not_found", "message": `Error: {"message":"","code":"registration_not_found"}`}}, "<empty>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := &Env{Config: Load(map[string]any{"locale_outgoing": "fr"}, tr), Location: time.UTC, Dups: messages.NewDuplicates()}
			doc := Doc{"_id": "p1", "type": "data_record", "from": "+254712345678", "fields": map[string]any{"patient_id": "99999"}}
			addRejection(env, doc, c.entries, "registration_not_found", nil)
			if g, w := jsonOf(doc["errors"]), jsonOf(c.want); g != w {
				t.Errorf("errors %s\nwant   %s", g, w)
			}
			m := doc["tasks"].([]any)[0].(map[string]any)["messages"].([]any)[0].(map[string]any)
			got, ok := m["message"].(string)
			if !ok {
				got = "<empty>"
			}
			if got != c.reply {
				t.Errorf("reply %q, want %q", got, c.reply)
			}
		})
	}
}

// TestUnparsableRuleIsNoLoadError: a rule that does not parse fails the
// reports validated with it, never the config (validations.md §2): a
// warning with its path, and the transitions stay enabled.
func TestUnparsableRuleIsNoLoadError(t *testing.T) {
	cfg := Load(map[string]any{
		"transitions": map[string]any{"registration": true},
		"registrations": []any{map[string]any{"form": "BAD", "events": []any{}, "validations": map[string]any{
			"list": []any{map[string]any{"property": "n", "rule": "regex(^[0-9]{5}$)"}}}}},
	}, nil)
	if !cfg.Valid() {
		t.Fatalf("config invalid: %s", cfg.ErrorSummary())
	}
	var found bool
	for _, p := range cfg.Problems {
		found = found || p.Severity == config.Warning && p.Path == "registrations[0].validations.list[0].rule"
	}
	if !found {
		t.Errorf("no warning at the rule's path: %v", cfg.Problems)
	}
}
