package transitions

import (
	"strings"
	"testing"

	"sentinel-go/config"
)

func TestUpdateNotificationsConfig(t *testing.T) {
	cases := []struct {
		name      string
		raw       map[string]any
		wantWarns []string
	}{
		{"deprecated", map[string]any{"transitions": map[string]any{"update_notifications": true},
			"notifications": map[string]any{"on_form": "ON", "off_form": "OFF"}},
			[]string{`deprecated since 3.2.x. Please use "muting" transition instead.`}},
		{"no forms", map[string]any{"transitions": map[string]any{"update_notifications": true}},
			[]string{"deprecated", "neither on_form nor off_form"}},
		{"same forms as muting", map[string]any{"transitions": map[string]any{"update_notifications": true, "muting": true},
			"notifications": map[string]any{"on_form": "ON", "off_form": "OFF"},
			"muting":        map[string]any{"mute_forms": []any{"off"}}},
			[]string{"deprecated", `"OFF" is handled by both`}},
		{"bad form type", map[string]any{"transitions": map[string]any{"update_notifications": true},
			"notifications": map[string]any{"on_form": 1.0, "off_form": "OFF"}},
			[]string{"on_form must be a form code"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Load(c.raw, nil)
			if !cfg.Valid() {
				t.Fatalf("invalid: %s", cfg.ErrorSummary())
			}
			var warns []string
			for _, p := range cfg.Problems {
				if p.Severity != config.Error {
					warns = append(warns, p.String())
				}
			}
			all := strings.Join(warns, "\n")
			for _, w := range c.wantWarns {
				if !strings.Contains(all, w) {
					t.Errorf("warnings %q lack %q", all, w)
				}
			}
		})
	}
}

func TestUpdateNotificationsFormWants(t *testing.T) {
	tr := &updateNotifications{onForm: "ON", offForm: "off"}
	for form, want := range map[string][2]bool{"on": {false, true}, " OFF.": {true, true}, "x": {false, false}, "": {false, false}} {
		w, ok := tr.formWants(form)
		if [2]bool{w, ok} != want {
			t.Errorf("formWants(%q) = %v %v, want %v", form, w, ok, want)
		}
	}
	both := &updateNotifications{onForm: "X", offForm: "x"}
	if w, ok := both.formWants("x"); w || !ok {
		t.Error("on_form must be checked first")
	}
}

func updateNotificationsSettings(messages []any) map[string]any {
	return map[string]any{
		"transitions":   map[string]any{"update_notifications": true},
		"notifications": map[string]any{"on_form": "on", "off_form": "off", "messages": messages},
	}
}
