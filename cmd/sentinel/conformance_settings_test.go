package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sentinel-go/config"
)

// conformanceDir holds the shared conformance scenarios, beside the checkout.
const conformanceDir = "../../../shared/conformance"

// invalidScenarios are the conformance scenarios whose settings are meant to
// be refused (or to carry what check-config calls an error), with why.
var invalidScenarios = map[string]string{
	"conditional_alerts :: should be skipped when transition is disabled": "a condition that is not a string (true)",
	"conditional_alerts :: should be skipped when no matching config":     "a condition that is not a string (true)",
	"messages :: outgoing_deny_with_alphas must be boolean true":          `outgoing_deny_with_alphas is the string "true", which the daemon reads as false`,
}

// TestCheckConfigConformanceSettings runs check-config's checks over the
// settings of every conformance scenario (laid over base-settings.json as
// the runner does): a config the daemon runs must give no error, so that
// the shape checks never refuse what deployments rely on.
func TestCheckConfigConformanceSettings(t *testing.T) {
	base := map[string]any{}
	data, err := os.ReadFile(filepath.Join(conformanceDir, "base-settings.json"))
	if err != nil {
		t.Skipf("no conformance scenarios beside the checkout: %v", err)
	}
	if err := json.Unmarshal(data, &base); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(conformanceDir, "scenarios", "*.json"))
	seen := map[string]bool{}
	for _, f := range files {
		var suite struct {
			Suite     string `json:"suite"`
			Scenarios []struct {
				Name         string         `json:"name"`
				Settings     map[string]any `json:"settings"`
				BaseSettings *bool          `json:"base_settings"`
			} `json:"scenarios"`
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &suite); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, sc := range suite.Scenarios {
			id := suite.Suite + " :: " + sc.Name
			raw := map[string]any{}
			if sc.BaseSettings == nil || *sc.BaseSettings {
				for k, v := range base {
					raw[k] = v
				}
			}
			for k, v := range sc.Settings {
				raw[k] = v
			}
			raw = expandDynamic(raw).(map[string]any)
			var errs []string
			for _, p := range checkSettings(raw, config.Translations{}) {
				if p.Severity == config.Error {
					errs = append(errs, p.String())
				}
			}
			if why, invalid := invalidScenarios[id]; invalid {
				seen[id] = true
				if len(errs) == 0 {
					t.Errorf("%s: no error, want one (%s)", id, why)
				}
				continue
			}
			if len(errs) > 0 {
				t.Errorf("%s:\n  %s", id, strings.Join(errs, "\n  "))
			}
		}
	}
	for id := range invalidScenarios {
		if !seen[id] {
			t.Errorf("%s: listed as invalid but not found", id)
		}
	}
}

// expandDynamic replaces the runner's dynamic values ({"$now": …},
// {"$sink": …}, {"$base64": …}) with values of the type they become.
func expandDynamic(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) > 0 && len(x) <= 4 {
			if _, ok := x["$now"]; ok {
				switch x["as"] {
				case "iso":
					return "2024-05-01T09:00:00.000Z"
				case "date":
					return "2024-05-01"
				}
				if f, ok := x["format"].(string); ok {
					return strings.NewReplacer("%-M", "5", "%-H", "9", "%M", "05", "%H", "09", "%a", "Wed").Replace(f)
				}
				return 1714554000000.0
			}
			if _, ok := x["$sink"]; ok {
				return "http://127.0.0.1:9"
			}
			if _, ok := x["$base64"]; ok {
				return "cjE="
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = expandDynamic(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = expandDynamic(e)
		}
		return out
	}
	return v
}
