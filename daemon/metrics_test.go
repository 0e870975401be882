package daemon_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch/couchtest"
	"sentinel-go/daemon"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func startListening(t *testing.T, env *couchtest.Env, addr string) *running {
	t.Helper()
	logs := &couchtest.LogBuffer{}
	d, err := daemon.New(daemon.Options{CouchURL: env.URL, Log: zerolog.New(logs), PollTimeout: 2 * time.Second,
		MaxBackoff: time.Second, Jobs: daemon.DefaultJobs(), Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan struct{}), logs: logs}
	go func() { defer close(r.done); _ = d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func TestMetricsAndHealth(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}),
		map[string]any{"_id": "p1", "type": "person"})
	addr := freeAddr(t)
	r := startListening(t, env, addr)
	r.waitFor(t, "p1 processed", func() bool { return infoTransitions(t, env, "p1")["generate_shortcode_on_contacts"] != nil })
	r.waitFor(t, "metrics served", func() bool {
		code, body := get("http://" + addr + "/metrics")
		return code == 200 && strings.Contains(body, `sentinel_changes_total{outcome="changed"}`) &&
			strings.Contains(body, `sentinel_transition_duration_seconds_count{transition="generate_shortcode_on_contacts"}`) &&
			strings.Contains(body, `sentinel_config_reloads_total{result="valid"}`) &&
			strings.Contains(body, "sentinel_checkpoint_timestamp_seconds")
	})
	if code, body := get("http://" + addr + "/readyz"); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if code, body := get("http://" + addr + "/healthz"); code != 200 {
		t.Errorf("/healthz = %d %s", code, body)
	}
}

func TestHealthWithInvalidConfig(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"no_such_transition": true}))
	addr := freeAddr(t)
	r := startListening(t, env, addr)
	r.waitFor(t, "health served", func() bool { code, _ := get("http://" + addr + "/healthz"); return code != 0 })
	if code, body := get("http://" + addr + "/healthz"); code != 503 || !strings.Contains(body, "no valid config") {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, _ := get("http://" + addr + "/readyz"); code != 503 {
		t.Errorf("/readyz = %d", code)
	}
}

// TestListenInUse: an address that cannot be bound (a second instance on
// the same port) makes Run return an error at once, before CouchDB is
// contacted, instead of running without /metrics and /healthz.
func TestListenInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	// Nothing listens on port 1: the daemon would retry it forever.
	d, err := daemon.New(daemon.Options{CouchURL: "http://admin:pass@127.0.0.1:1/medic", Log: zerolog.Nop(), Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Run(context.Background()) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("Run = %v, want an error naming %s and the cause", err, addr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still running after 5 s with its listen address taken")
	}
}

// TestDefaultListenInUseIsNotFatal: when --listen was not given, the default
// address in use (the conformance runner's parallel daemons, a second
// instance on one machine) is logged and the daemon runs on without the
// endpoints.
func TestDefaultListenInUseIsNotFatal(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	d, err := daemon.New(daemon.Options{CouchURL: "http://admin:pass@127.0.0.1:1/medic", Log: zerolog.Nop(),
		Listen: taken.Addr().String(), ListenOptional: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	select {
	case err := <-errc:
		t.Fatalf("Run returned %v; want it to run on without the endpoints", err)
	case <-time.After(time.Second):
	}
	cancel()
	select {
	case <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// TestHealthNamesTheCause: a wrong password and a missing database are
// told apart, in /healthz and in the logs, from each other and from an
// unreachable server (all said "Could not reach CouchDB" before).
func TestHealthNamesTheCause(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}))
	u, _ := url.Parse(env.URL)
	wrongPassword := *u
	wrongPassword.User = url.UserPassword("admin", "not-the-password")
	missingDB := *u
	missingDB.Path = "/no-such-db"
	for _, c := range []struct {
		name, url, health, log string
	}{
		{"wrong password", wrongPassword.String(), "refused the credentials", "refused the credentials"},
		{"missing database", missingDB.String(), "does not exist", "does not exist"},
		{"unreachable", "http://admin:pass@127.0.0.1:1/medic", "CouchDB unreachable", "CouchDB is unreachable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := *env
			e.URL = c.url
			addr := freeAddr(t)
			r := startListening(t, &e, addr)
			r.waitFor(t, "the cause in /healthz", func() bool {
				code, body := get("http://" + addr + "/healthz")
				return code == 503 && strings.Contains(body, c.health)
			})
			if !strings.Contains(r.logs.String(), c.log) {
				t.Errorf("logs do not say %q:\n%s", c.log, r.logs.String())
			}
		})
	}
}
