package config

import "testing"

func TestIsEnabled(t *testing.T) {
	cases := []struct {
		v    any
		want bool
	}{
		{true, true}, {map[string]any{}, true}, {map[string]any{"disable": false}, true},
		{"false", true}, {map[string]any{"client_side": false}, true},
		{false, false}, {nil, false}, {map[string]any{"disable": true}, false},
		{map[string]any{"disable": "false"}, false}, {0.0, false}, {"", false},
	}
	for _, c := range cases {
		if got := IsEnabled(c.v); got != c.want {
			t.Errorf("IsEnabled(%#v) = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestTranslations(t *testing.T) {
	tr := ParseTranslations([]map[string]any{
		{"_id": "messages-en", "code": "en", "generic": map[string]any{"a": " Hello ", "b": "${a} world", "n": 5.0}},
		{"_id": "messages-fr", "code": "fr", "generic": map[string]any{"a": "Bonjour"}, "custom": map[string]any{"a": "Salut"}},
		{"_id": "messages-sw", "code": "sw"}, // no generic: still loads
		{"_id": "messages-pt", "code": "pt",
			"generic": map[string]any{"a": "", "b": "Olá", "blank": "   "},
			"custom":  map[string]any{"b": nil, "e": ""}},
		{"_id": "messages-en2", "code": "en", "generic": map[string]any{"e": "", "blank": "Blank"}},
	})
	cases := []struct{ locale, key, want string }{
		{"en", "a", "Hello"}, {"fr", "a", "Salut"}, {"fr", "b", "Hello  world"},
		{"sw", "a", "Hello"}, {"xx", "missing.key", "missing.key"}, {"en", "n", "5"},
		// Empty and null fall through to English, then to the key; a
		// whitespace-only text is chosen, then trimmed (feed.md §3).
		{"pt", "a", "Hello"}, {"pt", "b", "Hello  world"}, {"pt", "e", "e"}, {"pt", "blank", ""},
	}
	for _, c := range cases {
		if got := tr.Lookup(c.locale, c.key); got != c.want {
			t.Errorf("Lookup(%s, %s) = %q, want %q", c.locale, c.key, got, c.want)
		}
	}
}

func TestSettingsDefaults(t *testing.T) {
	s := NewSettings(map[string]any{"schedule_evening_hours": 0.0, "sms": map[string]any{"duplicate_limit": 50.0}})
	if from, to := s.SendWindow(); from != 0 || to != 23*60 {
		t.Errorf("SendWindow = %d, %d", from, to)
	}
	if s.DuplicateLimit() != 20 || s.MultipartSMSLimit() != 10 || !s.DefaultToSender() {
		t.Errorf("defaults wrong: %d %d %v", s.DuplicateLimit(), s.MultipartSMSLimit(), s.DefaultToSender())
	}
	if s.LocaleOutgoing() != "en" || s.DateFormat() != DefaultDateFormat {
		t.Errorf("locale/date defaults wrong")
	}
	if s.ContactTypes.Configured() || !s.ContactTypes.IsPerson("person") || !s.ContactTypes.IsPlace("clinic") {
		t.Errorf("hardcoded hierarchy wrong")
	}
}
