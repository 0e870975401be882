package transitions

import (
	"reflect"
	"testing"

	"sentinel-go/config"
)

func TestConfiguredLocales(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     []string
	}{
		{"default", map[string]any{}, []string{"en"}},
		{"locale and outgoing", map[string]any{"locale": "fr", "locale_outgoing": "sw"}, []string{"fr", "sw"}},
		{"locales strings", map[string]any{"locales": []any{"en", "ne", "en"}}, []string{"en", "ne"}},
		{"languages objects, disabled skipped", map[string]any{"languages": []any{
			map[string]any{"locale": "es", "enabled": true}, map[string]any{"locale": "fr", "enabled": false}, map[string]any{"code": "hi"}}},
			[]string{"en", "es", "hi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ConfiguredLocales(config.NewSettings(tt.settings)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckTranslations(t *testing.T) {
	settings := map[string]any{
		"locale_outgoing": "sw",
		"transitions":     map[string]any{"default_responses": true},
		"forms":           map[string]any{"P": map[string]any{"meta": map[string]any{"translation_key": "form.p"}}},
		"registrations": []any{map[string]any{"form": "P", "messages": []any{
			map[string]any{"event_type": "report_accepted", "translation_key": "reg.ok"}}}},
	}
	tr := config.Translations{
		"en": {"reg.ok": "OK", "sms_received": "Received", "empty": "Empty"},
		"sw": {"sms_received": "Imepokelewa", "empty": "Tupu"},
	}
	tests := []struct {
		name string
		tr   config.Translations
		want []string
	}{
		{"no translations: nothing checked", nil, nil},
		{"missing in one locale", tr, []string{
			`warning: registrations[0].messages[0].translation_key: translation key "reg.ok" has no text in locale "sw" (English is sent instead)`}},
		{"default_responses keys", config.Translations{"en": {"reg.ok": "x"}, "sw": {"reg.ok": "y", "empty": "z"}}, []string{
			`warning: transitions.default_responses: translation key "empty" has no text in locale "en" (the message would have no text)`,
			`warning: transitions.default_responses: translation key "sms_received" has no text in locale "en" (the message would have no text)`,
			`warning: transitions.default_responses: translation key "sms_received" has no text in locale "sw" (the message would have no text)`}},
	}
	// Empty and null texts, templates that do not parse, validation texts
	// (whose key is the text when none exists).
	settings2 := map[string]any{
		"locale_outgoing": "fr",
		"registrations": []any{map[string]any{"form": "P",
			"messages": []any{
				map[string]any{"event_type": "report_accepted", "translation_key": "reg.ok"},
				map[string]any{"event_type": "report_accepted", "translation_key": "reg.broken"}},
			"validations": map[string]any{"list": []any{
				map[string]any{"property": "a", "rule": "lenMin(1)", "translation_key": "v.a"}}}}},
	}
	tr2 := config.ParseTranslations([]map[string]any{
		{"code": "en", "generic": map[string]any{"reg.ok": "OK", "reg.broken": "{{#a}}x", "v.a": ""}},
		{"code": "fr", "generic": map[string]any{"reg.ok": ""}, "custom": map[string]any{"v.a": nil}},
	})
	tests = append(tests, struct {
		name string
		tr   config.Translations
		want []string
	}{"empty, null, unparsable", tr2, []string{
		`warning: registrations[0].messages[0].translation_key: translation key "reg.ok" has an empty or null text in locale "fr" (English is sent instead)`,
		`warning: registrations[0].messages[1].translation_key: translation key "reg.broken" in locale "en": template does not parse: Unclosed section "a" at 7 (no message is sent)`,
		`warning: registrations[0].messages[1].translation_key: translation key "reg.broken" has no text in locale "fr" (English is sent instead)`,
		`warning: registrations[0].validations.list[0].translation_key: translation key "v.a" has an empty or null text in locale "en" (the key itself is sent)`,
		`warning: registrations[0].validations.list[0].translation_key: translation key "v.a" has an empty or null text in locale "fr" (the key itself is sent)`,
	}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			s := settings
			if tt.name == "empty, null, unparsable" {
				s = settings2
			}
			for _, p := range CheckTranslations(config.NewSettings(s), tt.tr) {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
	// The daemon's path: warnings in the loaded config, which stays valid.
	cfg := Load(settings, tr)
	if !cfg.Valid() || len(cfg.Problems) == 0 || cfg.Problems[len(cfg.Problems)-1].Severity != config.Warning {
		t.Errorf("load: valid %v, problems %v", cfg.Valid(), cfg.Problems)
	}
}
