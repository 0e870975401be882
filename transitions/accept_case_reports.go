package transitions

import "sentinel-go/config"

// newAcceptCaseReports is a placeholder until the transition lands.
func newAcceptCaseReports(s *config.Settings, path string) (Transition, []config.Problem) {
	return nil, []config.Problem{config.Errorf(path, "transition %q is not supported by this version of sentinel-go", "accept_case_reports")}
}
