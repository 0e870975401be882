package daemon

import (
	"runtime"
	"testing"
)

// TestBuildInfoMetric: /metrics has sentinel_build_info{version,revision,goversion} 1.
func TestBuildInfoMetric(t *testing.T) {
	mfs, err := newMetrics().reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sentinel_build_info" {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%d series", len(mf.GetMetric()))
		}
		m := mf.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["version"] == "" || labels["revision"] == "" || labels["goversion"] != runtime.Version() {
			t.Errorf("labels %v (want version, revision, goversion %s)", labels, runtime.Version())
		}
		if v := m.GetGauge().GetValue(); v != 1 {
			t.Errorf("value %v, want 1", v)
		}
		return
	}
	t.Fatal("no sentinel_build_info metric")
}
