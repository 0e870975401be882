package transitions

import "sentinel-go/config"

// newUpdateScheduledReports is a placeholder until the transition lands.
func newUpdateScheduledReports(s *config.Settings, path string) (Transition, []config.Problem) {
	return nil, []config.Problem{config.Errorf(path, "transition %q is not supported by this version of sentinel-go", "update_scheduled_reports")}
}
