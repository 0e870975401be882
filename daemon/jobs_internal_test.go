package daemon

import (
	"testing"

	"sentinel-go/config"
)

func TestDisabledMessage(t *testing.T) {
	for _, c := range []struct {
		name     string
		problems []config.Problem
		want     string
	}{
		{"unknown transition", []config.Problem{config.Warnf("x", "w"), config.Errorf("transitions.foo", `Unknown transition "foo"`)},
			`Transitions are disabled. Unknown transition "foo"`},
		{"the last error only", []config.Problem{config.Errorf("transitions.foo", `Unknown transition "foo"`),
			config.Errorf("transitions.create_user_for_contacts", "Configuration error. The app_url must be defined.")},
			`Transitions are disabled. Failed loading transition "create_user_for_contacts". This is likely due to an error in the transition configuration. Please check your configuration.. Configuration error. The app_url must be defined.`},
		{"a path inside a config", []config.Problem{config.Errorf("registrations[0].events[0].bool_expr", "JavaScript syntax error")},
			"Transitions are disabled. registrations[0].events[0].bool_expr: JavaScript syntax error"},
	} {
		if got := disabledMessage(c.problems); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}
