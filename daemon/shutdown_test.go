package daemon_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sentinel-go/couch/couchtest"
	"sentinel-go/daemon"
)

// stallProxy is an HTTP proxy in front of the test server that holds the
// requests hold picks until their client gives up (a server stuck on a big
// scan, a slow bulk write), and answers fail's with a 500.
type stallProxy struct {
	addr    string
	hold    func(*http.Request) bool
	fail    func(*http.Request) bool
	stalled atomic.Int32
	failed  atomic.Int32
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{hold: func(*http.Request) bool { return false }, fail: func(*http.Request) bool { return false }}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case p.hold(r):
			p.stalled.Add(1)
			<-r.Context().Done()
		case p.fail(r):
			p.failed.Add(1)
			http.Error(w, `{"error":"unknown_error","reason":"injected"}`, http.StatusInternalServerError)
		default:
			rp.ServeHTTP(w, r)
		}
	})}
	ln := listen(t)
	p.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// TestStopsWithinFiveSecondsInEveryState: SIGTERM (the Run context ending)
// stops the daemon within 5 s whatever it is doing: scanning for the
// lookup index, waiting between retries, running a job, writing a batch,
// evaluating an expression that never ends.
func TestStopsWithinFiveSecondsInEveryState(t *testing.T) {
	person := func(id string) map[string]any { return map[string]any{"_id": id, "type": "person", "name": id} }
	report := map[string]any{"_id": "r1", "type": "data_record", "form": "V", "from": "+254712000010",
		"reported_date": float64(time.Now().UnixMilli()), "fields": map[string]any{}}
	for _, c := range []struct {
		name     string
		settings map[string]any
		docs     []map[string]any
		hold     func(*http.Request) bool
		fail     func(*http.Request) bool
		edit     func(*daemon.Options)
		// reached tells when the daemon is in the state.
		reached func(p *stallProxy, r *running) bool
		trigger func(r *running)
	}{
		{name: "index scan", settings: map[string]any{"generate_shortcode_on_contacts": true}, docs: []map[string]any{person("p1")},
			hold: func(r *http.Request) bool {
				return strings.HasSuffix(r.URL.Path, "/_all_docs") && r.URL.Query().Get("include_docs") == "true"
			},
			reached: func(p *stallProxy, _ *running) bool { return p.stalled.Load() > 0 }},
		{name: "backoff wait", settings: map[string]any{"generate_shortcode_on_contacts": true}, docs: []map[string]any{person("p1")},
			fail: func(r *http.Request) bool {
				return strings.HasSuffix(r.URL.Path, "/_changes") && r.URL.Query().Get("include_docs") == "true"
			},
			edit:    func(o *daemon.Options) { o.MaxBackoff = time.Minute },
			reached: func(p *stallProxy, _ *running) bool { return p.failed.Load() >= 3 }},
		{name: "job run", settings: map[string]any{"generate_shortcode_on_contacts": true}, docs: []map[string]any{person("p1")},
			hold:    func(r *http.Request) bool { return strings.Contains(r.URL.Path, "scheduled_tasks_by_due") },
			reached: func(p *stallProxy, _ *running) bool { return p.stalled.Load() > 0 },
			trigger: func(r *running) { r.d.RunJobs() }},
		{name: "bulk write", settings: map[string]any{"generate_shortcode_on_contacts": true}, docs: []map[string]any{person("p1"), person("p2")},
			hold: func(r *http.Request) bool {
				return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/_bulk_docs")
			},
			reached: func(p *stallProxy, _ *running) bool { return p.stalled.Load() > 0 }},
		{name: "endless expression", settings: map[string]any{"conditional_alerts": true}, docs: []map[string]any{report},
			edit: func(o *daemon.Options) { o.ExprTimeout = time.Minute },
			reached: func(_ *stallProxy, r *running) bool {
				time.Sleep(time.Second) // the report's condition is running
				return true
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := couchtest.NewPrivate(t)
			s := settings(c.settings)
			inner := s["settings"].(map[string]any)
			inner["forms"] = map[string]any{"V": map[string]any{"public_form": true}}
			inner["alerts"] = []any{map[string]any{"form": "V", "condition": "(function(){ while (true) {} })()", "message": "m", "recipient": "+254712000011"}}
			env.Save(t, env.MainDB, append([]map[string]any{s}, c.docs...)...)
			p := newStallProxy(t, env.Server)
			if c.hold != nil {
				p.hold = c.hold
			}
			if c.fail != nil {
				p.fail = c.fail
			}
			via := *env
			via.URL = fmt.Sprintf("http://admin:pass@%s/%s", p.addr, env.MainDB)
			r := startWith(t, &via, c.edit)
			if c.trigger != nil {
				time.Sleep(500 * time.Millisecond)
				c.trigger(r)
			}
			r.waitFor(t, c.name, func() bool { return c.reached(p, r) })
			if took := r.stop(t); took > 5*time.Second {
				t.Errorf("stopped %s after SIGTERM, want within 5 s", took.Round(100*time.Millisecond))
			} else {
				t.Logf("stopped in %s", took.Round(10*time.Millisecond))
			}
		})
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
