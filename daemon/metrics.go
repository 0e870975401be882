package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the daemon's Prometheus metrics, on a registry of its own (no
// process-wide default registry: tests start several daemons).
type metrics struct {
	reg         *prometheus.Registry
	backlog     prometheus.Gauge
	changes     *prometheus.CounterVec
	transitions *prometheus.HistogramVec
	transErrors *prometheus.CounterVec
	checkpoint  prometheus.Gauge
	reloads     *prometheus.CounterVec
	jobs        *prometheus.HistogramVec
	jobErrors   *prometheus.CounterVec
	messages    *prometheus.CounterVec
	couchUp     prometheus.Gauge
	leaseHolder prometheus.Gauge
	leaseToken  prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_backlog_changes",
			Help: "Changes of the main db not processed yet (the feed's `pending`)."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_changes_total",
			Help: "Changes handled, by outcome: changed, unchanged, ignored, skipped, failed."}, []string{"outcome"}),
		transitions: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sentinel_transition_duration_seconds",
			Help: "Time of each transition run.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}, []string{"transition"}),
		transErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_transition_errors_total",
			Help: "Transition runs that failed (recorded on the doc)."}, []string{"transition"}),
		checkpoint: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_checkpoint_timestamp_seconds",
			Help: "When the checkpoint was last written (Unix time)."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_config_reloads_total",
			Help: "Settings loads, by result: valid, invalid, failed (unreadable)."}, []string{"result"}),
		jobs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sentinel_job_duration_seconds",
			Help: "Time of each scheduled job run.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}, []string{"job"}),
		jobErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_job_errors_total",
			Help: "Scheduled job runs that failed."}, []string{"job"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sentinel_messages_queued_total",
			Help: "Outgoing messages added to docs by the transitions, by initial state."}, []string{"state"}),
		couchUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_couchdb_up",
			Help: "1 while CouchDB answers the daemon's requests, 0 while it cannot be reached."}),
		leaseHolder: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_lease_holder",
			Help: "1 while this instance is the active one (holds the lease, or runs without one), 0 on standby."}),
		leaseToken: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_lease_token",
			Help: "The fencing token of the lease this instance last acquired (0: never, or no lease)."}),
	}
	bi := ReadBuildInfo()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sentinel_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion}})
	build.Set(1)
	m.reg.MustRegister(build, m.backlog, m.changes, m.transitions, m.transErrors, m.checkpoint, m.reloads, m.jobs, m.jobErrors, m.messages, m.couchUp, m.leaseHolder, m.leaseToken,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// BuildInfo says which build is running (--version, sentinel_build_info).
type BuildInfo struct {
	Version   string // module version: a tag, a pseudo-version, or "(devel)"
	Revision  string // VCS revision ("unknown" when not built from a checkout)
	Modified  bool   // the checkout had uncommitted changes
	GoVersion string
}

// ReadBuildInfo reads the build info the Go toolchain stamps in the binary.
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: "(devel)", Revision: "unknown", GoVersion: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if info.Main.Version != "" {
		b.Version = info.Main.Version
	}
	if info.GoVersion != "" {
		b.GoVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// ObserveTransition implements transitions.Observer.
func (m *metrics) ObserveTransition(name string, took time.Duration, failed bool) {
	m.transitions.WithLabelValues(name).Observe(took.Seconds())
	if failed {
		m.transErrors.WithLabelValues(name).Inc()
	}
}

// ObserveMessage implements transitions.Observer.
func (m *metrics) ObserveMessage(state string) { m.messages.WithLabelValues(state).Inc() }

// health is what /healthz and /readyz report.
type health struct {
	// lastProgress is when the feed last completed a change or found the
	// feed empty (Unix nanoseconds).
	lastProgress atomic.Int64
	pending      atomic.Int64
	// problem is what the server answered last time a retry loop failed
	// (refused credentials, a missing database); "" when none.
	problem atomic.Pointer[string]
	// configKept is set while the latest configuration is invalid and the
	// previous one keeps running.
	configKept atomic.Bool
	// api is the CHT API the daemon waits for before following the feed,
	// "" when it does not (any more).
	api atomic.Pointer[apiWait]
}

// apiWait is a wait for CHT API in progress.
type apiWait struct {
	url   string
	since time.Time
}

// waitingFor records that the daemon waits for the API at url ("" once it
// does not).
func (h *health) waitingFor(url string) {
	if url == "" {
		h.api.Store(nil)
		return
	}
	h.api.Store(&apiWait{url: url, since: time.Now()})
}

// apiWaiting says what the daemon waits for ("" when not waiting for API).
func (h *health) apiWaiting() string {
	w := h.api.Load()
	if w == nil {
		return ""
	}
	return "waiting for CHT API at " + w.url + " to answer /setup/poll (for " + time.Since(w.since).Round(time.Second).String() + ")"
}

func (h *health) setProblem(p string) { h.problem.Store(&p) }

func (h *health) currentProblem() string {
	if p := h.problem.Load(); p != nil {
		return *p
	}
	return ""
}

func (h *health) progressed(pending int64) {
	h.lastProgress.Store(time.Now().UnixNano())
	h.pending.Store(pending)
}

// serveHTTP serves /metrics, /healthz and /readyz on ln until ctx ends.
func (d *Daemon) serveHTTP(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if wait := d.health.apiWaiting(); wait != "" {
			http.Error(w, wait, http.StatusServiceUnavailable)
			return
		}
		if !d.ready.Load() {
			http.Error(w, "no valid config loaded yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if wait := d.health.apiWaiting(); wait != "" {
			// Alive and doing what it must: API's migrations can take
			// minutes, and a liveness probe failing meanwhile would only
			// restart the wait.
			_, _ = w.Write([]byte("ok; " + wait + "\n"))
			return
		}
		if msg := d.unhealthy(); msg != "" {
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		status := "ok"
		if sb := d.standby(); sb != "" {
			status = sb
		}
		if d.health.configKept.Load() {
			status += "; the latest configuration is invalid, the previous one keeps running"
		}
		_, _ = w.Write([]byte(status + "\n" + d.auditStatus() + "\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	d.log.Info().Str("component", "http").Str("addr", ln.Addr().String()).Msg("Serving /metrics, /healthz, /readyz")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// unhealthy explains why the daemon is not healthy ("" when it is): no valid
// config, or work pending while the feed has not advanced for HealthStall.
func (d *Daemon) unhealthy() string {
	if since := d.client.Reach.DownSince(); !since.IsZero() {
		return "CouchDB unreachable for " + time.Since(since).Round(time.Second).String() + "; waiting for it"
	}
	if p := d.health.currentProblem(); p != "" {
		return p
	}
	cfg := d.cfg.Load()
	if cfg == nil || !cfg.Valid() {
		return "no valid config: transitions are disabled until the configuration errors are fixed"
	}
	if d.standby() != "" {
		return "" // a standby follows no feed: it cannot stall
	}
	last := time.Unix(0, d.health.lastProgress.Load())
	if d.health.pending.Load() > 0 && time.Since(last) > d.opts.HealthStall {
		return "the feed has not advanced for " + time.Since(last).Round(time.Second).String() + " with changes pending"
	}
	return ""
}
