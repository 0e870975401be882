package transitions

import (
	"testing"

	"sentinel-go/config"
)

func TestMarkForOutboundFilter(t *testing.T) {
	empty, problems := newMarkForOutbound(config.NewSettings(map[string]any{}), "transitions.mark_for_outbound")
	if config.HasErrors(problems) || empty.Filter(&Env{}, &Change{Doc: Doc{"_id": "x"}}) {
		t.Error("no outbound config: filter false, warning only")
	}
	_, problems = newMarkForOutbound(config.NewSettings(map[string]any{"outbound": "x"}), "transitions.mark_for_outbound")
	if !config.HasErrors(problems) {
		t.Error("outbound must be an object")
	}
}
