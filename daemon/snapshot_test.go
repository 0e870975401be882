package daemon_test

import (
	"strings"
	"testing"

	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
)

// TestRestartLoadsIndexSnapshot: the lookup index built by the first start's
// scan is kept as a snapshot; the next start loads it, catches up with what
// was written meanwhile, and processes it.
func TestRestartLoadsIndexSnapshot(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}),
		map[string]any{"_id": "p1", "type": "person", "name": "One"})
	r := start(t, env)
	r.waitFor(t, "p1 processed", func() bool { return infoTransitions(t, env, "p1")["generate_shortcode_on_contacts"] != nil })
	r.waitFor(t, "index snapshot", func() bool { return env.Get(t, env.MainDB+"-sentinel", couch.SnapshotID) != nil })
	r.stop(t)
	if strings.Contains(r.logs.String(), "snapshot loaded") {
		t.Fatal("a first start loaded a snapshot")
	}
	env.Save(t, env.MainDB, map[string]any{"_id": "p2", "type": "person", "name": "Two"})
	r2 := start(t, env)
	r2.waitFor(t, "p2 processed", func() bool { return infoTransitions(t, env, "p2")["generate_shortcode_on_contacts"] != nil })
	logs := r2.logs.String()
	if !strings.Contains(logs, "Lookup index snapshot loaded") || strings.Contains(logs, "scanning") {
		t.Fatalf("the restart did not use the snapshot:\n%s", logs)
	}
	if p1, p2 := env.Get(t, env.MainDB, "p1")["patient_id"], env.Get(t, env.MainDB, "p2")["patient_id"]; p1 == p2 || p2 == nil {
		t.Fatalf("patient_ids %v, %v", p1, p2)
	}
}
