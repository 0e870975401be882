package daemon_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
)

// registrationSettings is bench.py's registration workload: form P registers
// a patient and schedules two messages.
func registrationSettings() map[string]any {
	s := settings(map[string]any{"registration": true})
	inner := s["settings"].(map[string]any)
	inner["forms"] = map[string]any{"P": map[string]any{"meta": map[string]any{"code": "P"}, "public_form": true,
		"fields": map[string]any{"patient_name": map[string]any{"type": "string"}}}}
	inner["registrations"] = []any{map[string]any{
		"form": "P",
		"events": []any{
			map[string]any{"name": "on_create", "trigger": "add_patient", "params": "", "bool_expr": ""},
			map[string]any{"name": "on_create", "trigger": "assign_schedule", "params": "ANC", "bool_expr": ""},
		},
		"messages": []any{},
	}}
	msg := func(group int, offset string) map[string]any {
		return map[string]any{"group": group, "offset": offset, "send_time": "09:00", "recipient": "reporting_unit",
			"message": []any{map[string]any{"locale": "en", "content": "Visit for {{patient_name}} ({{patient_id}})"}}}
	}
	inner["schedules"] = []any{map[string]any{"name": "ANC", "start_from": "reported_date",
		"messages": []any{msg(1, "1 weeks"), msg(2, "2 weeks")}}}
	return s
}

// registrationBacklog is the settings, a clinic, a CHW and n form P reports
// of the CHW, to be saved in one bulk write.
func registrationBacklog(n int) []map[string]any {
	docs := []map[string]any{registrationSettings(),
		{"_id": "clinic1", "type": "clinic", "name": "Clinic"},
		{"_id": "chw1", "type": "person", "name": "CHW", "phone": "+254700000001", "parent": map[string]any{"_id": "clinic1"}}}
	for i := 0; i < n; i++ {
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("report-%03d", i), "type": "data_record", "form": "P",
			"from": "+254700000001", "reported_date": time.Now().UnixMilli() + int64(i), "fields": map[string]any{"patient_name": fmt.Sprintf("P%d", i)}})
	}
	return docs
}

// waitRegistered waits until the n reports of registrationBacklog record
// their registration.
func (r *running) waitRegistered(t *testing.T, env *couchtest.Env, n int) {
	t.Helper()
	r.waitFor(t, "every report registered", func() bool {
		for i := 0; i < n; i++ {
			if infoTransitions(t, env, fmt.Sprintf("report-%03d", i))["registration"] == nil {
				return false
			}
		}
		return true
	})
}

// marker saves a doc no transition touches and waits until r processed it:
// every change before it in the feed is processed then.
func (r *running) marker(t *testing.T, env *couchtest.Env, id string) {
	t.Helper()
	env.Save(t, env.MainDB, map[string]any{"_id": id, "type": "marker"})
	r.waitFor(t, id+" processed", func() bool { return env.Get(t, env.MainDB+"-sentinel", id+"-info") != nil })
}

// TestClusterFeedRewindsAndOpaqueSeqs runs a registration backlog through
// a feed that behaves like a CouchDB 3 cluster's (opaque string seqs, every
// doc of a _bulk_docs in one longpoll answer), then rewinds the feed to its
// start under the running daemon, as a cluster does when a node dies: every
// unchanged doc comes again and is passed over without a single write, the
// checkpoint is the server's opaque string, and nothing is done twice.
func TestClusterFeedRewindsAndOpaqueSeqs(t *testing.T) {
	env := couchtest.New(t)
	proxy := couchtest.NewClusterProxy(t, env.Server)
	const n = 120
	docs := registrationBacklog(n)
	env.Save(t, env.MainDB, docs...) // one _bulk_docs: one batch through the proxy
	viaProxy := *env
	viaProxy.URL = proxy.Server + "/" + env.MainDB
	r := start(t, &viaProxy)
	r.waitRegistered(t, env, n)
	// Caught up, including the changes of its own writes: a marker doc no
	// transition touches is processed last.
	r.marker(t, env, "marker-1")
	// The lookup index's first snapshot is written once (within 2 s of its
	// build): not during the rewind measured below.
	r.waitFor(t, "the lookup index snapshot", func() bool { return env.Get(t, env.MainDB+"-sentinel", couch.SnapshotID) != nil })
	cp := env.Get(t, env.MainDB+"-sentinel", "_local/transitions-seq")
	if v, ok := cp["value"].(string); !ok || !strings.Contains(v, "-g1AAAA") {
		t.Errorf("checkpoint %v: want the server's opaque string seq, kept as is", cp["value"])
	}
	before := updateSeqs(t, env)
	revs := map[string]any{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("report-%03d", i)
		revs[id] = env.Get(t, env.MainDB, id)["_rev"]
	}

	proxy.RewindNext()
	r.marker(t, env, "marker-2") // its change wakes the longpoll; the read after it starts over
	r.waitFor(t, "the feed rewound", func() bool { return proxy.Rewinds() == 1 })
	r.marker(t, env, "marker-3") // processed after the whole rewound feed: it is in feed order

	after := updateSeqs(t, env)
	// Only the markers: the test's 2 saves, the daemon's 2 info docs.
	if got, want := after[0]-before[0], 2; got != want {
		t.Errorf("main db: %d writes during the rewind, want %d (the markers)", got, want)
	}
	if got, want := after[1]-before[1], 2; got != want {
		t.Errorf("sentinel db: %d writes during the rewind, want %d (the markers' info docs)", got, want)
	}
	for id, rev := range revs {
		d := env.Get(t, env.MainDB, id)
		if d["_rev"] != rev {
			t.Errorf("%s written again: %v → %v", id, rev, d["_rev"])
		}
		if tasks, _ := d["scheduled_tasks"].([]any); len(tasks) != 2 {
			t.Errorf("%s: %d scheduled tasks, want 2", id, len(tasks))
		}
	}
	if strings.Contains(r.logs.String(), `"level":"error"`) {
		t.Errorf("errors logged:\n%s", r.logs.String())
	}
}

// updateSeqs returns the update_seq of the main and sentinel dbs as numbers
// (read from PouchDB Server directly, not through the proxy).
func updateSeqs(t *testing.T, env *couchtest.Env) [2]int {
	t.Helper()
	var out [2]int
	for i, db := range []string{env.MainDB, env.MainDB + "-sentinel"} {
		var info map[string]any
		if err := couchtest.Request("GET", env.Server+"/"+db, nil, &info); err != nil {
			t.Fatal(err)
		}
		var n int
		if _, err := fmt.Sscanf(fmt.Sprint(info["update_seq"]), "%d", &n); err != nil {
			t.Skipf("update_seq %v is not a number: this test counts writes on PouchDB Server", info["update_seq"])
		}
		out[i] = n
	}
	return out
}

// TestKnownSurvivesRestart: the revisions found done are saved at stop and
// loaded at start, so that a restart from a lost checkpoint re-reads the
// feed without reading the info docs of what was done.
func TestKnownSurvivesRestart(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, registrationBacklog(60)...)
	first := start(t, env)
	first.waitRegistered(t, env, 60)
	first.marker(t, env, "marker-1") // after the changes of the daemon's own writes
	first.stop(t)
	saved := env.Get(t, env.MainDB+"-sentinel", "_local/sentinel-go-known")
	if n, _ := saved["count"].(float64); n < 120 {
		t.Fatalf("saved %v revisions known done, want every report and patient", saved["count"])
	}
	cp := env.Get(t, env.MainDB+"-sentinel", "_local/transitions-seq")
	if err := couchtest.Request("DELETE", fmt.Sprintf("%s/%s-sentinel/_local/transitions-seq?rev=%s", env.Server, env.MainDB, cp["_rev"]), nil, nil); err != nil {
		t.Fatal(err)
	}
	before := updateSeqs(t, env)
	second := start(t, env)
	second.marker(t, env, "marker-2")
	if after := updateSeqs(t, env); after[0]-before[0] != 1 || after[1]-before[1] != 1 {
		t.Errorf("writes during the rewound re-read: main %d, sentinel %d; want only the marker and its info doc",
			after[0]-before[0], after[1]-before[1])
	}
	reads := 0
	for _, line := range strings.Split(second.logs.String(), "\n") {
		if strings.Contains(line, `"method":"POST","path":"/`+env.MainDB+`-sentinel/_all_docs"`) {
			reads++
		}
	}
	if reads > 1 {
		t.Errorf("the re-read feed read info docs %d times, want at most once (the marker's)", reads)
	}
	if !strings.Contains(second.logs.String(), "Loaded the revisions known done") {
		t.Error("the saved revisions were not loaded")
	}
}
