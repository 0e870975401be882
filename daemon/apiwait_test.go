package daemon_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
	"sentinel-go/daemon"
)

// fakeAPI is CHT API as Sentinel sees it at start: /setup/poll answers 503
// (or nothing useful) until up is set, as while API runs its migrations.
type fakeAPI struct {
	srv   *httptest.Server
	up    atomic.Bool
	polls atomic.Int32
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	a := &fakeAPI{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/setup/poll" {
			http.NotFound(w, r)
			return
		}
		a.polls.Add(1)
		if !a.up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"ready":true}`))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// TestWaitsForCHTAPI: with an API to wait for (API_HOST), nothing is
// processed until /setup/poll answers; meanwhile the wait is logged and
// reported: STATUS=, /readyz fails and says why, /healthz passes (waiting for API's
// migrations is no reason for Kubernetes to restart the daemon) and says
// so too. Once API answers, the feed starts.
func TestWaitsForCHTAPI(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}),
		map[string]any{"_id": "p1", "type": "person"})
	api := newFakeAPI(t)
	addr := freeAddr(t)
	notes := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "1000000") // pings at least every 0.5 s
	from := time.Now()
	r := startWith(t, env, func(o *daemon.Options) {
		o.APIURL = api.srv.URL
		o.APIPollInterval = 50 * time.Millisecond
		o.Listen = addr
	})
	r.waitFor(t, "polls for 1.5 s", func() bool { return api.polls.Load() >= 30 })
	r.waitFor(t, "the wait logged", func() bool { return strings.Contains(r.logs.String(), "Waiting for CHT API") })
	if code, body := get("http://" + addr + "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for CHT API at "+api.srv.URL) {
		t.Errorf("/readyz while waiting = %d %q, want 503 naming the API", code, body)
	}
	if code, body := get("http://" + addr + "/healthz"); code != http.StatusOK || !strings.Contains(body, "waiting for CHT API") {
		t.Errorf("/healthz while waiting = %d %q, want 200 saying it waits", code, body)
	}
	if infoTransitions(t, env, "p1") != nil {
		t.Fatal("p1 processed before CHT API answered")
	}
	if gap := notes.longestGap("WATCHDOG=1", from, time.Now()); gap > time.Second {
		t.Errorf("no WATCHDOG=1 for %s while waiting for API (WatchdogSec=1s)", gap.Round(10*time.Millisecond))
	}
	notes.mu.Lock()
	status := strings.Join(notes.msgs, "\n")
	notes.mu.Unlock()
	if !strings.Contains(status, "STATUS=Waiting for CHT API at "+api.srv.URL) {
		t.Errorf("STATUS= never said the daemon waits for CHT API: %s", status)
	}
	api.up.Store(true)
	r.waitFor(t, "p1 processed", func() bool { return infoTransitions(t, env, "p1")["generate_shortcode_on_contacts"] != nil })
	r.waitFor(t, "ready", func() bool { code, _ := get("http://" + addr + "/readyz"); return code == http.StatusOK })
	if code, body := get("http://" + addr + "/healthz"); code != http.StatusOK || strings.Contains(body, "waiting") {
		t.Errorf("/healthz after the wait = %d %q", code, body)
	}
	if !strings.Contains(r.logs.String(), "CHT API is ready") {
		t.Errorf("the end of the wait is not logged:\n%s", r.logs.String())
	}
}

// TestAPIWaitStopsAtOnce: SIGTERM while API never answers (nothing listens
// on its port) stops the daemon at once, not after a poll interval.
func TestAPIWaitStopsAtOnce(t *testing.T) {
	env := couchtest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	r := startWith(t, env, func(o *daemon.Options) { o.APIURL = dead; o.APIPollInterval = time.Hour })
	r.waitFor(t, "the wait logged", func() bool { return strings.Contains(r.logs.String(), "Waiting for CHT API") })
	if took := r.stop(t); took > time.Second {
		t.Errorf("stopped %s after the signal, want at once", took)
	}
}

// TestNoAPIWaitWithoutAPIHost: a standalone deployment (no API_HOST) never
// polls an API.
func TestNoAPIWaitWithoutAPIHost(t *testing.T) {
	env := couchtest.New(t)
	env.Save(t, env.MainDB, settings(map[string]any{"generate_shortcode_on_contacts": true}),
		map[string]any{"_id": "p1", "type": "person"})
	r := start(t, env)
	r.waitFor(t, "p1 processed", func() bool { return infoTransitions(t, env, "p1")["generate_shortcode_on_contacts"] != nil })
	if logs := r.logs.String(); strings.Contains(logs, "Waiting for CHT API") || strings.Contains(logs, `"component":"api"`) {
		t.Errorf("logs mention a wait for CHT API without one configured:\n%s", r.logs.String())
	}
}
