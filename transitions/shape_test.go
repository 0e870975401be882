package transitions

import (
	"strings"
	"testing"
)

// A settings.transitions that is not an object is an invalid config reported
// at its path, never read as "nothing enabled".
func TestTransitionsWrongShape(t *testing.T) {
	for _, v := range []any{"registration", []any{"registration"}, 1.0, true} {
		cfg := Load(map[string]any{"transitions": v}, nil)
		if cfg.Valid() {
			t.Errorf("transitions=%#v: valid config, want an error", v)
			continue
		}
		if len(cfg.Problems) != 1 || cfg.Problems[0].Path != "transitions" ||
			!strings.Contains(cfg.Problems[0].Message, "must be an object") {
			t.Errorf("transitions=%#v: problems %v, want one error at path transitions", v, cfg.Problems)
		}
		found := false
		for _, p := range Check(map[string]any{"transitions": v}, nil) {
			found = found || p.Path == "transitions"
		}
		if !found {
			t.Errorf("transitions=%#v: check-config does not report it", v)
		}
	}
	// Absent or null: no transitions configured, a valid (idle) config.
	for _, raw := range []map[string]any{{}, {"transitions": nil}, {"transitions": map[string]any{}}} {
		if cfg := Load(raw, nil); !cfg.Valid() {
			t.Errorf("%v: problems %v, want a valid config", raw, cfg.Problems)
		}
	}
}
