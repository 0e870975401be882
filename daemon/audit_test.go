package daemon_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"sentinel-go/couch/couchtest"
)

// createAuditDB makes the `<db>-audit` that CHT API would have created.
func createAuditDB(t *testing.T, env *couchtest.Env) string {
	t.Helper()
	db := env.MainDB + "-audit"
	if err := couchtest.Request(http.MethodPut, env.Server+"/"+db, nil, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = couchtest.Request(http.MethodDelete, env.Server+"/"+db, nil, nil) })
	return db
}

// Every change the daemon saves is in the audit db once Run has returned,
// however soon after the work the stop comes: what the background writer
// had not written yet is flushed at stop.
func TestAuditEntriesAreWrittenBeforeStopReturns(t *testing.T) {
	env := couchtest.New(t)
	auditDB := createAuditDB(t, env)
	docs := []map[string]any{settings(map[string]any{"generate_shortcode_on_contacts": true})}
	for i := range 40 {
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("p%02d", i), "type": "person", "name": "P"})
	}
	env.Save(t, env.MainDB, docs...)
	r := start(t, env)
	r.waitFor(t, "all processed", func() bool { return infoTransitions(t, env, "p39")["generate_shortcode_on_contacts"] != nil })
	r.stop(t)
	for i := range 40 {
		id := fmt.Sprintf("p%02d", i)
		doc := env.Get(t, env.MainDB, id)
		a := env.Get(t, auditDB, id)
		h, _ := a["history"].([]any)
		if len(h) != 1 {
			t.Fatalf("%s: audit doc %v", id, a)
		}
		e := h[0].(map[string]any)
		if e["rev"] != doc["_rev"] || e["user"] != "admin" || e["service"] != "sentinel" {
			t.Errorf("%s at %v: entry %v", id, doc["_rev"], e)
		}
	}
	if !strings.Contains(r.logs.String(), "Auditing is on") {
		t.Error("auditing on not logged")
	}
}

// Without `<db>-audit` auditing is off, said once, and the db is never
// created; a config reload finds the db once CHT API has created it.
func TestAuditDBMissingThenCreatedIsFoundAtReload(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}),
		map[string]any{"_id": "p1", "type": "person", "name": "One"})
	r := start(t, env)
	r.waitFor(t, "p1 processed", func() bool { return infoTransitions(t, env, "p1")["generate_shortcode_on_contacts"] != nil })
	if n := strings.Count(r.logs.String(), "Auditing is off"); n != 1 {
		t.Errorf("auditing off logged %d times", n)
	}
	var info map[string]any
	if err := couchtest.Request(http.MethodGet, env.Server+"/"+env.MainDB+"-audit", nil, &info); err == nil {
		t.Fatalf("the daemon created the audit db: %v", info)
	}
	auditDB := createAuditDB(t, env)
	s := env.Get(t, env.MainDB, "settings")
	s["settings"].(map[string]any)["reload"] = 1
	env.Save(t, env.MainDB, s)
	r.waitFor(t, "auditing on after reload", func() bool { return strings.Contains(r.logs.String(), "Auditing is on") })
	env.Save(t, env.MainDB, map[string]any{"_id": "p2", "type": "person", "name": "Two"})
	r.waitFor(t, "p2 audited", func() bool { return env.Get(t, auditDB, "p2") != nil })
	if env.Get(t, auditDB, "p1") != nil {
		t.Error("p1, saved while auditing was off, is audited")
	}
}
