package config

import (
	"sort"

	"sentinel-go/jsv"
)

// IsEnabled applies the enabling rule to one value of settings.transitions:
// truthy and not an object whose `disable` is truthy. So `true`, `{}`,
// `{"disable": false}` and even the string "false" enable; `false`, `null`,
// `{"disable": true}` and `{"disable": "false"}` disable.
func IsEnabled(v any) bool {
	if !jsv.Truthy(v) {
		return false
	}
	if m, ok := v.(map[string]any); ok && jsv.Truthy(m["disable"]) {
		return false
	}
	return true
}

// TransitionKeys returns the keys of settings.transitions whose value
// enables them, sorted, and all keys present (enabled or not).
func (s *Settings) TransitionKeys() (enabled, all []string) {
	m := jsv.Map(s.Raw["transitions"])
	for k, v := range m {
		all = append(all, k)
		if IsEnabled(v) {
			enabled = append(enabled, k)
		}
	}
	sort.Strings(enabled)
	sort.Strings(all)
	return enabled, all
}
