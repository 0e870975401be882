package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch/couchtest"
	"sentinel-go/daemon"
)

type running struct {
	d      *daemon.Daemon
	cancel context.CancelFunc
	done   chan struct{}
	logs   *couchtest.LogBuffer
}

func start(t *testing.T, env *couchtest.Env) *running {
	t.Helper()
	return startWith(t, env, nil)
}

// startWith starts a daemon on env with the test options, changed by edit.
func startWith(t *testing.T, env *couchtest.Env, edit func(*daemon.Options)) *running {
	t.Helper()
	logs := &couchtest.LogBuffer{}
	opts := daemon.Options{CouchURL: env.URL, Log: zerolog.New(logs), PollTimeout: 2 * time.Second,
		MaxBackoff: time.Second, Jobs: daemon.DefaultJobs()}
	if edit != nil {
		edit(&opts)
	}
	d, err := daemon.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan struct{}), logs: logs}
	go func() {
		defer close(r.done)
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) time.Duration {
	t.Helper()
	begin := time.Now()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop within 10 s")
	}
	return time.Since(begin)
}

// settings are the tests' app_settings. The sending window is the whole day
// (by default it ends at 23:00, and a test run between 23:00 and midnight
// would release no due message).
func settings(transitions map[string]any) map[string]any {
	return map[string]any{"_id": "settings", "settings": map[string]any{
		"schedule_evening_hours": 23, "schedule_evening_minutes": 59,
		"transitions": transitions,
		"contact_types": []any{
			map[string]any{"id": "clinic"},
			map[string]any{"id": "person", "parents": []any{"clinic"}, "person": true},
		},
	}}
}

// waitFor polls cond for up to 15 s, failing with the daemon's logs.
func (r *running) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Log(r.logs.String())
	t.Fatalf("timed out waiting for %s", what)
}

func infoTransitions(t *testing.T, env *couchtest.Env, id string) map[string]any {
	info := env.Get(t, env.MainDB+"-sentinel", id+"-info")
	if info == nil {
		return nil
	}
	ts, _ := info["transitions"].(map[string]any)
	return ts
}

func TestProcessesResumesAndStops(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}),
		map[string]any{"_id": "p1", "type": "person", "name": "One"},
		map[string]any{"_id": "c1", "type": "clinic", "name": "Clinic"})
	r := start(t, env)
	r.waitFor(t, "p1 processed", func() bool { return infoTransitions(t, env, "p1")["generate_shortcode_on_contacts"] != nil })
	r.waitFor(t, "c1 processed", func() bool { return infoTransitions(t, env, "c1")["generate_shortcode_on_contacts"] != nil })
	if id, _ := env.Get(t, env.MainDB, "p1")["patient_id"].(string); len(id) != 5 {
		t.Fatalf("p1 patient_id = %q", id)
	}
	if id, _ := env.Get(t, env.MainDB, "c1")["place_id"].(string); len(id) != 5 {
		t.Fatalf("c1 place_id = %q", id)
	}
	// settings is processed like any doc and gets an info doc with transitions {}.
	r.waitFor(t, "settings info doc", func() bool { return infoTransitions(t, env, "settings") != nil })
	if took := r.stop(t); took > 5*time.Second {
		t.Fatalf("stop took %s", took)
	}
	cp := env.Get(t, env.MainDB+"-sentinel", "_local/transitions-seq")
	if cp == nil || cp["value"] == nil {
		t.Fatalf("no checkpoint after stop: %v", cp)
	}
	p1 := env.Get(t, env.MainDB, "p1")

	// A second daemon carries on from the checkpoint: only new work is done.
	env.Save(t, env.MainDB, map[string]any{"_id": "p2", "type": "person", "name": "Two"})
	r2 := start(t, env)
	r2.waitFor(t, "p2 processed", func() bool { return infoTransitions(t, env, "p2")["generate_shortcode_on_contacts"] != nil })
	r2.waitFor(t, "backlog drained", func() bool { return r2.d.Processed() >= 2 })
	time.Sleep(300 * time.Millisecond)
	if again := env.Get(t, env.MainDB, "p1"); again["_rev"] != p1["_rev"] {
		t.Fatalf("p1 was written again after restart: %v -> %v", p1["_rev"], again["_rev"])
	}
	// The first daemon's own last writes may be processed by the second one
	// (they came after its checkpoint); what matters is that no work is redone.
}

func TestLiveReloadAndInvalidConfig(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{}))
	r := start(t, env)
	env.Save(t, env.MainDB, map[string]any{"_id": "p1", "type": "person"})
	r.waitFor(t, "p1 processed", func() bool { return infoTransitions(t, env, "p1") != nil })
	if _, has := env.Get(t, env.MainDB, "p1")["patient_id"]; has {
		t.Fatal("disabled transition ran")
	}

	// An unknown transition disables everything: the feed pauses, nothing is lost.
	cur := env.Get(t, env.MainDB, "settings")
	bad := settings(map[string]any{"generate_shortcode_on_contacts": true, "not_a_transition": true})
	bad["_rev"] = cur["_rev"]
	env.Save(t, env.MainDB, bad)
	r.waitFor(t, "config error logged", func() bool {
		return bytes.Contains([]byte(r.logs.String()), []byte(`Unknown transition \"not_a_transition\"`))
	})
	// The previous valid config stays in force.
	if !r.d.Config().Valid() {
		t.Fatal("a bad reload replaced the valid config")
	}

	// Fix it: the new transition applies to new docs.
	cur = env.Get(t, env.MainDB, "settings")
	good := settings(map[string]any{"generate_shortcode_on_contacts": true})
	good["_rev"] = cur["_rev"]
	env.Save(t, env.MainDB, good)
	r.waitFor(t, "config reloaded", func() bool { return len(r.d.Config().Transitions) == 1 })
	env.Save(t, env.MainDB, map[string]any{"_id": "p2", "type": "person"})
	r.waitFor(t, "p2 has a shortcode", func() bool { return env.Get(t, env.MainDB, "p2")["patient_id"] != nil })
}

func TestInvalidConfigAtStartHoldsTheFeed(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"death_reporting": true}), // no mark_deceased_forms
		map[string]any{"_id": "p1", "type": "person"})
	r := start(t, env)
	r.waitFor(t, "config error logged", func() bool {
		return bytes.Contains([]byte(r.logs.String()), []byte("mark_deceased_forms"))
	})
	time.Sleep(500 * time.Millisecond)
	if infoTransitions(t, env, "p1") != nil || env.Get(t, env.MainDB+"-sentinel", "_local/transitions-seq") != nil {
		t.Fatal("changes were processed with an invalid config")
	}
	cur := env.Get(t, env.MainDB, "settings")
	good := settings(map[string]any{"generate_shortcode_on_contacts": true})
	good["_rev"] = cur["_rev"]
	env.Save(t, env.MainDB, good)
	r.waitFor(t, "p1 processed after the fix", func() bool { return env.Get(t, env.MainDB, "p1")["patient_id"] != nil })
}

func TestUnreachableServerIsRetried(t *testing.T) {
	logs := &couchtest.LogBuffer{}
	d, err := daemon.New(daemon.Options{CouchURL: "http://admin:s3cret@127.0.0.1:1/medic", Log: zerolog.New(logs), MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_ = d.Run(ctx) // returns when ctx ends, never panics
	out := logs.String()
	// One line says the server is away, not one per failed try.
	if n := strings.Count(out, "CouchDB is unreachable; waiting"); n != 1 {
		t.Fatalf("the outage was logged %d times: %s", n, out)
	}
	if bytes.Contains([]byte(out), []byte("s3cret")) {
		t.Fatalf("password leaked into logs: %s", out)
	}
}

func TestMalformedURL(t *testing.T) {
	for _, u := range []string{"", "localhost:5984/medic", "http://admin:pw@localhost:5984"} {
		if _, err := daemon.New(daemon.Options{CouchURL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	_ = http.StatusOK
}

// A reload that fails while a valid config runs says that the previous
// configuration is kept (not that transitions are disabled), and a wrong
// shape is reported with its path.
func TestBadReloadKeepsThePreviousConfiguration(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}))
	r := start(t, env)
	r.waitFor(t, "config loaded", func() bool { return r.d.Config() != nil && len(r.d.Config().Transitions) == 1 })

	// The wrong shape: a string where the transitions object belongs.
	cur := env.Get(t, env.MainDB, "settings")
	bad := settings(nil)
	bad["settings"].(map[string]any)["transitions"] = "registration"
	bad["_rev"] = cur["_rev"]
	env.Save(t, env.MainDB, bad)
	r.waitFor(t, "keeping the previous configuration", func() bool {
		return strings.Contains(r.logs.String(), "keeping the previous configuration")
	})
	out := r.logs.String()
	if !strings.Contains(out, `"path":"transitions"`) || !strings.Contains(out, "must be an object") {
		t.Fatalf("the wrong shape is not reported with its path:\n%s", out)
	}
	if strings.Contains(out, "Transitions are disabled") {
		t.Fatalf("a bad reload with a valid config running says transitions are disabled:\n%s", out)
	}
	if cfg := r.d.Config(); !cfg.Valid() || len(cfg.Transitions) != 1 {
		t.Fatalf("the previous config was not kept: %v", cfg.Problems)
	}
	// It still runs: a new contact gets its shortcode.
	env.Save(t, env.MainDB, map[string]any{"_id": "p1", "type": "person"})
	r.waitFor(t, "p1 has a shortcode", func() bool { return env.Get(t, env.MainDB, "p1")["patient_id"] != nil })

	// A settings doc that cannot be read as settings at all: the same.
	before := strings.Count(r.logs.String(), "keeping the previous configuration")
	cur = env.Get(t, env.MainDB, "settings")
	env.Save(t, env.MainDB, map[string]any{"_id": "settings", "_rev": cur["_rev"], "settings": "oops"})
	r.waitFor(t, "read failure keeps the previous configuration", func() bool {
		return strings.Count(r.logs.String(), "keeping the previous configuration") > before
	})
	if cfg := r.d.Config(); !cfg.Valid() || len(cfg.Transitions) != 1 {
		t.Fatalf("the previous config was not kept: %v", cfg.Problems)
	}
}

// TestConfigWatchReadsOnlyConfigDocs: the settings watch asks the server
// for the changes of the config docs only (a busy database's other writes
// are not read twice), and still sees a settings change at once, a
// translation doc created after the start, and its edits.
func TestConfigWatchReadsOnlyConfigDocs(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{}))
	r := start(t, env)
	var docs []map[string]any
	for i := 0; i < 100; i++ {
		docs = append(docs, map[string]any{"_id": fmt.Sprintf("d%03d", i), "type": "thing"})
	}
	env.Save(t, env.MainDB, docs...)
	r.waitFor(t, "the docs processed", func() bool { return infoTransitions(t, env, "d099") != nil })

	translated := func(code, key string) string { return r.d.Config().Translations[code][key] }
	env.Save(t, env.MainDB, map[string]any{"_id": "messages-sw", "code": "sw", "generic": map[string]any{"hello": "Habari"}})
	r.waitFor(t, "a new translation doc loaded", func() bool { return translated("sw", "hello") == "Habari" })
	cur := env.Get(t, env.MainDB, "messages-sw")
	cur["generic"] = map[string]any{"hello": "Jambo"}
	env.Save(t, env.MainDB, cur)
	r.waitFor(t, "its edit loaded", func() bool { return translated("sw", "hello") == "Jambo" })
	cur = env.Get(t, env.MainDB, "settings")
	next := settings(map[string]any{"generate_shortcode_on_contacts": true})
	next["_rev"] = cur["_rev"]
	env.Save(t, env.MainDB, next)
	r.waitFor(t, "the settings change loaded", func() bool { return len(r.d.Config().Transitions) == 1 })

	// The only longpolls are the feed's (with docs) and the watch's (config docs only).
	for _, line := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(line, `/_changes"`) && strings.Contains(line, "feed=longpoll") &&
			!strings.Contains(line, "include_docs=true") && !strings.Contains(line, "filter=_doc_ids") {
			t.Errorf("the settings watch read every change: %s", line)
			break
		}
	}
}
