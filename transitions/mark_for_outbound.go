package transitions

import "sentinel-go/config"

// newMarkForOutbound is a placeholder until the transition lands.
func newMarkForOutbound(s *config.Settings, path string) (Transition, []config.Problem) {
	return nil, []config.Problem{config.Errorf(path, "transition %q is not supported by this version of sentinel-go", "mark_for_outbound")}
}
