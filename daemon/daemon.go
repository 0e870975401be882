// Package daemon wires the daemon together: it connects to CouchDB, loads
// and live-reloads the config, follows the `_changes` feed through the
// transition pipeline with a checkpoint, and runs the scheduled jobs. Tests
// start and stop it in-process; cmd/sentinel only adds flags and signals.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/audit"
	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/lease"
	"sentinel-go/messages"
	"sentinel-go/outbound"
	"sentinel-go/schedule/jobs"
	"sentinel-go/transitions"
)

// Options configure a Daemon.
type Options struct {
	// CouchURL is COUCH_URL (main db with credentials).
	CouchURL string
	// SentinelDB is SENTINEL_DB (default "<main>-sentinel").
	SentinelDB string
	Log        zerolog.Logger
	// Location is the zone of date arithmetic; nil means time.Local (TZ).
	Location *time.Location
	// JobInterval is how often jobs run (default 5 minutes).
	JobInterval time.Duration
	// ExprTimeout bounds each expression evaluation (default 100 ms).
	ExprTimeout time.Duration
	// PhoneOwner picks the contact a shared phone number is attributed to.
	PhoneOwner transitions.PhoneOwner
	// BatchSize is the number of changes read per longpoll (default 500).
	BatchSize int
	// PollTimeout is the longpoll timeout (default 30 s).
	PollTimeout time.Duration
	// MaxBackoff caps the wait between retries after errors (default 60 s).
	MaxBackoff time.Duration
	// Jobs are the scheduled jobs, run at start, every JobInterval and on RunJobs.
	Jobs []jobs.Job
	// Listen is the address of /metrics, /healthz and /readyz ("" disables).
	Listen string
	// ListenOptional is set when Listen is only the default address: one in
	// use (another instance on this machine, the conformance runner's
	// parallel daemons) is then logged and the daemon runs without the
	// endpoints. An address asked for explicitly must be served.
	ListenOptional bool
	// HealthStall is how long the feed may not advance, with work pending,
	// before /healthz fails (default 10 minutes).
	HealthStall time.Duration
	// Clock is the wall clock of jobs and transitions; nil means time.Now
	// (SENTINEL_FAKE_NOW gives a test clock).
	Clock func() time.Time
	// NoAudit turns off the audit log of the daemon's writes (on by default
	// when `<db>-audit` exists).
	NoAudit bool
	// APIURL is CHT API (http://$API_HOST:$API_PORT): when set, the feed
	// starts only once its /setup/poll answers (daemon/apiwait.go).
	APIURL string
	// APIPollInterval is how often /setup/poll is asked (default 1 s).
	APIPollInterval time.Duration
	// Lease turns on the active/standby mode: only the instance holding
	// the lease document of the sentinel db follows the feed, runs the
	// jobs and sends (lease/, daemon/lease.go).
	Lease bool
	// LeaseTTL is how long an unrenewed lease lasts (default 15 s);
	// LeaseRenew how often it is renewed, and read by the others (5 s).
	LeaseTTL, LeaseRenew time.Duration
	// LeaseID is a stable id of this instance ("" none): a lease held under
	// it is this instance's previous run's, taken over at once after a
	// crash. Never give one id to two running instances.
	LeaseID string
}

// Daemon is the running service.
type Daemon struct {
	opts   Options
	log    zerolog.Logger
	client *couch.Client
	cfg    atomic.Pointer[transitions.Config]
	// cfgChanged wakes the feed loop when a new config is swapped in.
	cfgChanged chan struct{}
	jobsNow    chan struct{}
	// caughtUp is closed once the feed has worked through the backlog it
	// found at start, or found it has nothing to follow (no valid config);
	// both are set anew at each term of activity (runActive).
	caughtUp     chan struct{}
	caughtUpOnce *sync.Once
	processed    atomic.Int64
	// dups is shared by the pipeline and the jobs: the duplicate limit is per process.
	dups *messages.Duplicates
	// secrets holds outbound credentials: environment, then CHT's vault.
	secrets outbound.SecretStore
	// outbox sends the outbound pushes off the feed path (one per term of
	// activity, runActive).
	outbox *outbound.Queue
	// components run in the daemon's group beside its own loops (Add);
	// active ones only while this instance is the active one (AddActive).
	components []component
	active     []component
	// lease elects the active instance (nil: no lease, always active).
	lease   *lease.Lease
	started time.Time
	metrics *metrics
	health  health
	sd      *notifier
	// lastWatchdog is when WATCHDOG=1 was last sent (Unix nanoseconds).
	lastWatchdog atomic.Int64
	ready        atomic.Bool
	stopOnce     sync.Once
	// audit records the daemon's writes to the main db (daemon/audit.go);
	// auditState is its last checked state, auditLogged the last logged.
	audit       *audit.Log
	auditState  atomic.Value
	auditLogged atomic.Value
}

// New validates the options (a malformed COUCH_URL fails here, at once).
func New(opts Options) (*Daemon, error) {
	loc, err := couch.ParseURL(opts.CouchURL, opts.SentinelDB)
	if err != nil {
		return nil, err
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.JobInterval <= 0 {
		opts.JobInterval = 5 * time.Minute
	}
	if opts.ExprTimeout <= 0 {
		opts.ExprTimeout = jsexpr.DefaultTimeout
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = 30 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 60 * time.Second
	}
	if opts.APIPollInterval <= 0 {
		opts.APIPollInterval = time.Second
	}
	if opts.HealthStall <= 0 {
		opts.HealthStall = 10 * time.Minute
	}
	sd := newNotifier()
	opts.MaxBackoff = pairBackoff(opts.MaxBackoff, sd.watchdog)
	// Every request is bounded; the feed's longpolls, bounded by
	// PollTimeout, must fit well inside.
	client, err := couch.OpenTimeout(loc, max(couch.DefaultRequestTimeout, opts.PollTimeout+10*time.Second))
	if err != nil {
		return nil, err
	}
	client.TraceRequests(opts.Log.With().Str("component", "couchdb").Logger())
	d := &Daemon{opts: opts, log: opts.Log, client: client,
		cfgChanged: make(chan struct{}, 1), jobsNow: make(chan struct{}, 1), dups: messages.NewDuplicates(),
		caughtUp: make(chan struct{}), caughtUpOnce: &sync.Once{}, secrets: outbound.NewSecrets(loc.Server, loc.MainDB), started: time.Now(),
		metrics: newMetrics(), sd: sd}
	if opts.Clock != nil {
		d.started = opts.Clock()
	}
	d.audit = d.newAudit()
	if d.lease, err = d.newLease(); err != nil {
		return nil, err
	}
	if d.lease == nil {
		d.metrics.leaseHolder.Set(1) // alone, always the active one
	}
	client.Reach.OnChange(d.reachChanged)
	d.metrics.couchUp.Set(1)
	return d, nil
}

// component is a part of the service that the daemon runs and stops with
// its own loops.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// Add makes run a component of the daemon (the SMS API, the SMS sender):
// Run starts it with the daemon's loops and returns only after it has
// stopped; it must return when ctx ends. Call before Run.
func (d *Daemon) Add(name string, run func(ctx context.Context) error) {
	d.components = append(d.components, component{name: name, run: run})
}

// AddActive makes run a component that runs only while this instance is
// the active one (the SMS sender): without a lease, as Add; with one, it is
// started at each acquisition and its ctx ends as soon as the lease is lost.
// Call before Run.
func (d *Daemon) AddActive(name string, run func(ctx context.Context) error) {
	d.active = append(d.active, component{name: name, run: run})
}

// Client is the CouchDB connection (for jobs).
func (d *Daemon) Client() *couch.Client { return d.client }

// Config returns the config in force (nil before the first load).
func (d *Daemon) Config() *transitions.Config { return d.cfg.Load() }

// Log is the daemon's logger.
func (d *Daemon) Log() zerolog.Logger { return d.log }

// Location is the daemon's time zone.
func (d *Daemon) Location() *time.Location { return d.opts.Location }

// RunJobs asks for the scheduled jobs to run now (SIGUSR2).
func (d *Daemon) RunJobs() {
	select {
	case d.jobsNow <- struct{}{}:
	default:
	}
}

// Processed returns the number of changes handled since start.
func (d *Daemon) Processed() int64 { return d.processed.Load() }

// Run runs until ctx is cancelled. When ctx ends, the change in hand is
// finished and checkpointed (bounded by a few seconds) before Run returns.
// Every component the daemon starts (the HTTP and SMS listeners, the SMS
// sender, the config watch, the jobs, the feed, the outbound workers) runs
// in one group: Run returns when all of them have stopped.
func (d *Daemon) Run(ctx context.Context) error {
	loc := d.client.Location()
	d.log.Info().Str("component", "daemon").Str("db", loc.MainDB).Str("sentinel_db", loc.SentinelDB).
		Str("server", couch.RedactURL(loc.Server)).Msg("Starting")
	d.health.progressed(0)
	// Listeners are bound here, before anything starts: an address in use
	// (a second instance) is an error of Run, not a log line of a
	// half-blind daemon, unless it is only the default address.
	httpLn, err := d.bindHTTP()
	if err != nil {
		return err
	}
	var group sync.WaitGroup
	defer func() {
		group.Wait()
		d.log.Info().Str("component", "daemon").Int64("processed", d.processed.Load()).Int64("max_rss_kib", maxRSSKiB()).Msg("Stopped")
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // whatever ends Run stops the group first
	if httpLn != nil {
		group.Go(func() {
			if err := d.serveHTTP(ctx, httpLn); err != nil {
				d.log.Error().Str("component", "http").Err(err).Msg("Cannot serve metrics and health checks")
			}
		})
	}
	for _, c := range d.components {
		group.Go(func() {
			if err := c.run(ctx); err != nil {
				d.log.Error().Str("component", c.name).Err(err).Msg("Component failed")
			}
		})
	}
	if err := d.waitForAPI(ctx); err != nil {
		return err
	}
	if err := d.connect(ctx); err != nil {
		return err
	}
	if err := d.loadConfig(ctx); err != nil {
		return err
	}
	var loops sync.WaitGroup
	loops.Go(func() { d.watchConfig(ctx) })
	if d.lease == nil {
		d.warnUnleased(ctx)
		loops.Go(func() { d.runActive(ctx) })
	} else {
		loops.Go(func() { d.lease.Run(ctx, d.runActive) })
	}
	auditDone := make(chan struct{})
	group.Go(func() { defer close(auditDone); d.audit.Run(ctx) })
	// STOPPING=1 only once the stop has begun: systemd takes it from a
	// running Type=notify service for the start of a stop.
	done := make(chan struct{})
	group.Go(func() { loops.Wait(); close(done) })
	select {
	case <-ctx.Done():
	case <-done:
	}
	d.sd.send("STOPPING=1")
	stopping := time.Now()
	<-done
	<-auditDone
	d.flushAudit(stopping)
	return nil
}

// bindHTTP binds the address of /metrics, /healthz and /readyz (nil when
// none is asked for, or the default address is taken).
func (d *Daemon) bindHTTP() (net.Listener, error) {
	if d.opts.Listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", d.opts.Listen)
	switch {
	case err != nil && !d.opts.ListenOptional:
		return nil, fmt.Errorf("cannot serve /metrics, /healthz, /readyz on %s: %w", d.opts.Listen, err)
	case err != nil:
		d.log.Warn().Str("component", "http").Err(err).
			Msg("Cannot serve /metrics, /healthz, /readyz on the default address; running without them (set --listen)")
		return nil, nil
	}
	return ln, nil
}

// connect waits for CouchDB with capped backoff, then prepares the sentinel
// db and the design doc.
func (d *Daemon) connect(ctx context.Context) error {
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"reach CouchDB", d.client.Ping},
		{"prepare sentinel db", d.client.EnsureSentinelDB},
		{"install design doc", d.client.Main.EnsureDesignDoc},
	}
	for _, s := range steps {
		if err := d.retry(ctx, s.what, s.fn); err != nil {
			return err
		}
	}
	return nil
}

// retry calls fn until it succeeds or ctx ends. An unreachable server is
// waited for (Reach.Wait: a probe a second, nothing logged per try, no
// backoff growing meanwhile); any other error is logged and retried after a
// capped exponential backoff with jitter.
func (d *Daemon) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	failures := 0
	for {
		err := fn(ctx)
		if err == nil {
			if failures > 0 {
				d.health.setProblem("") // what this loop reported is over
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, lease.ErrLost) || errors.Is(err, couch.ErrFenced) {
			return err // another instance is the active one now
		}
		if d.awaitServer(ctx, err) == nil {
			continue // the server was unreachable and answers again
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failures++
		wait := jitter(changeBackoff(failures, d.opts.MaxBackoff))
		cause := describe(err)
		d.health.setProblem(cause)
		d.log.Error().Str("component", "daemon").Err(err).Int64("retry_in_ms", wait.Milliseconds()).Msgf("Could not %s: %s; retrying", what, cause)
		// Retrying is being alive: waiting for the server is no reason for
		// systemd to kill the daemon (the wait is capped by pairBackoff).
		d.watchdogPing()
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// reachChanged says once that the server went away and once that it is
// back (with how long it was gone), instead of a line per failed request;
// the metric, /healthz and systemd's STATUS follow.
func (d *Daemon) reachChanged(t couch.Transition) {
	log := d.log.With().Str("component", "couchdb").Logger()
	if t.Up {
		d.metrics.couchUp.Set(1)
		log.Info().Float64("down_s", t.DownFor.Seconds()).Msgf("CouchDB is reachable again after %s; resuming", t.DownFor.Round(100*time.Millisecond))
		if d.ready.Load() {
			d.sd.send("STATUS=Following changes")
		}
		return
	}
	d.metrics.couchUp.Set(0)
	log.Error().Str("cause", t.Cause).Msg("CouchDB is unreachable; waiting for it (probing every second)")
	d.sd.send("STATUS=Waiting for CouchDB: unreachable (" + t.Cause + ")")
}

// describe names what is wrong with the server when a request failed,
// distinctly for the causes an operator fixes differently.
func describe(err error) string {
	switch {
	case couch.Refused(err):
		return "CouchDB refused the credentials of COUCH_URL (check the user, the password and its roles)"
	case errors.Is(err, couch.ErrDatabaseMissing):
		return "the database of COUCH_URL does not exist on the server (check its name)"
	case couch.Unreachable(err):
		return "CouchDB is unreachable"
	}
	return "CouchDB answered with an error"
}

// awaitServer waits until the server answers again when err says it could
// not be reached (nil then); for any other error it returns err at once.
// Waiting pings the watchdog: the daemon is alive and doing what it should.
func (d *Daemon) awaitServer(ctx context.Context, err error) error {
	if !couch.Unreachable(err) {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go d.pingWhile(wctx)
	return d.client.Reach.Wait(ctx, err)
}

// pingWhile pings the watchdog until ctx ends: a loop parked on an outage
// is responsive, only waiting.
func (d *Daemon) pingWhile(ctx context.Context) {
	if d.sd.watchdog <= 0 {
		return
	}
	t := time.NewTicker(d.sd.watchdog / 2)
	defer t.Stop()
	for {
		d.watchdogPing()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// jitter spreads a wait over [w/2, w], so that retries of several loops
// (or several daemons) after one failure do not all land at once.
func jitter(w time.Duration) time.Duration {
	if w <= time.Millisecond {
		return w
	}
	return w/2 + time.Duration(rand.Int64N(int64(w/2)))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// loadConfig reads settings and translations and swaps the new config in
// when it is valid. The first load retries until the settings doc can be
// read (the reference exits instead; a service manager would only restart it).
func (d *Daemon) loadConfig(ctx context.Context) error {
	return d.retry(ctx, "load settings", func(ctx context.Context) error {
		return d.reload(ctx)
	})
}

// reload builds a config from the db, validates it, then swaps it in. A bad
// config keeps the previous one (if any) and logs every problem.
func (d *Daemon) reload(ctx context.Context) error {
	d.checkAudit(ctx)
	settings, err := d.readSettings(ctx)
	if err != nil {
		d.metrics.reloads.WithLabelValues("failed").Inc()
		return err
	}
	tr, err := d.readTranslations(ctx)
	if err != nil {
		return err
	}
	cfg := transitions.LoadSettings(settings, tr)
	log := d.log.With().Str("component", "config").Logger()
	for _, p := range cfg.Problems {
		ev := log.Warn()
		if p.Severity == config.Error {
			ev = log.Error()
		}
		ev.Str("path", p.Path).Msg(p.Message)
	}
	// Lint problems (template syntax, misspelled disabled keys) do not stop
	// the pipeline: the reference records a bad template on the doc at run time.
	_, reminderProblems := jobs.ParseReminders(settings)
	for _, p := range append(transitions.Lint(settings.Raw), reminderProblems...) {
		log.Warn().Str("path", p.Path).Msg(p.Message)
	}
	if !cfg.Valid() {
		d.metrics.reloads.WithLabelValues("invalid").Inc()
		if old := d.cfg.Load(); old != nil && old.Valid() {
			// The previous valid config keeps running: say so, nothing is disabled.
			log.Error().Strs("transitions", transitionNames(old)).
				Msg("The new configuration is invalid (see the errors above); keeping the previous configuration")
			d.health.configKept.Store(true)
			return nil
		}
		// Nothing valid to keep: transitions stay disabled, the feed waits.
		d.cfg.Store(cfg)
		log.Error().Msg("Transitions are disabled until the above configuration errors are fixed.")
		d.notify()
		return nil
	}
	d.metrics.reloads.WithLabelValues("valid").Inc()
	d.health.configKept.Store(false)
	d.cfg.Store(cfg)
	log.Info().Strs("transitions", transitionNames(cfg)).Int("locales", len(tr)).Msg("Config loaded")
	if !d.ready.Swap(true) {
		d.sd.send("READY=1\nSTATUS=Following changes")
	}
	d.notify()
	return nil
}

// transitionNames lists the transitions a config runs, in order.
func transitionNames(cfg *transitions.Config) []string {
	names := make([]string, len(cfg.Transitions))
	for i, t := range cfg.Transitions {
		names[i] = t.Name()
	}
	return names
}

// maxRSSKiB is the process's peak resident memory (0 when unknown).
func maxRSSKiB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) // KiB on Linux
}

// pairBackoff caps the retry backoff under systemd's watchdog (interval is
// half of WatchdogSec; zero without a watchdog): one backoff wait is at most
// WatchdogSec/4, as is the time between two pings (watchdogPing), and the
// feed loop pings after each failed try. So between pings there is at most
// WatchdogSec/4 + WatchdogSec/4 + one request (a longpoll: PollTimeout+2 s =
// 32 s), well under WatchdogSec=120 of packaging/sentinel.service.
func pairBackoff(maxBackoff, interval time.Duration) time.Duration {
	if interval > 0 && maxBackoff > interval/2 {
		return interval / 2
	}
	return maxBackoff
}

// watchdogPing tells systemd the daemon is alive (at most every WatchdogSec/4);
// called from the feed loop and after each failed try of a retry loop, never
// from a timer, so a stuck loop stops it.
func (d *Daemon) watchdogPing() {
	if d.sd.watchdog <= 0 {
		return
	}
	now := time.Now().UnixNano()
	if time.Duration(now-d.lastWatchdog.Load()) < d.sd.watchdog/2 {
		return
	}
	d.lastWatchdog.Store(now)
	d.sd.send("WATCHDOG=1")
}

func (d *Daemon) markCaughtUp() {
	once, ch := d.caughtUpOnce, d.caughtUp
	once.Do(func() { close(ch) })
}

func (d *Daemon) notify() {
	select {
	case d.cfgChanged <- struct{}{}:
	default:
	}
}

func (d *Daemon) readSettings(ctx context.Context) (*config.Settings, error) {
	return ReadSettings(ctx, d.client.Main)
}

func (d *Daemon) readTranslations(ctx context.Context) (config.Translations, error) {
	return ReadTranslations(ctx, d.client.Main)
}

// isConfigDoc reports whether a change to id must reload the config.
func isConfigDoc(id string) bool {
	return id == "settings" || strings.HasPrefix(id, "messages-")
}

// watchConfig follows the main db from "now", independently of the
// processing feed, so that a backlog never delays a config change and a
// fixed config restarts a stopped feed. It asks the server for the config
// docs' changes only (`_doc_ids`: settings and the messages-* docs there
// are): reading every change of a busy database to find them cost the
// server as much as a tenth of the daemon's own work. A messages-* doc
// created later is found when the id list is read again, after each answer
// of the watch (at most PollTimeout apart), and reloads the config then.
func (d *Daemon) watchConfig(ctx context.Context) {
	log := d.log.With().Str("component", "config").Logger()
	// failed waits after a failed request: for the server when it is
	// unreachable (with every other component), else 5 s.
	failed := func(err error, msg string) {
		if ctx.Err() == nil && d.awaitServer(ctx, err) != nil {
			log.Warn().Err(err).Msg(msg)
			sleep(ctx, jitter(5*time.Second))
		}
	}
	var since string
	var ids []string
	for ctx.Err() == nil {
		if since == "" {
			s, err := d.client.Main.CurrentSeq(ctx)
			if err != nil {
				failed(err, "Cannot watch settings; retrying")
				continue
			}
			since = s
		}
		now, err := configDocIDs(ctx, d.client.Main)
		if err != nil {
			failed(err, "Settings watch interrupted; retrying")
			continue
		}
		// A translation doc created since the last look: its change came
		// before this watch asked for it.
		changed := ids != nil && !slices.Equal(ids, now)
		ids = now
		if !changed {
			b, err := d.client.Main.Changes(ctx, couch.FeedOptions{Since: since, Limit: 500, Timeout: d.opts.PollTimeout, DocIDs: ids})
			if err != nil {
				failed(err, "Settings watch interrupted; retrying")
				continue
			}
			for _, c := range b.Changes {
				changed = changed || isConfigDoc(c.ID)
			}
			if b.LastSeq != "" {
				since = b.LastSeq
			}
		}
		if changed {
			log.Info().Msg("Settings or translations changed; reloading")
			if err := d.reload(ctx); err != nil && ctx.Err() == nil {
				if cfg := d.cfg.Load(); cfg != nil && cfg.Valid() {
					log.Error().Err(err).Msg("Reload failed; keeping the previous configuration")
				} else {
					log.Error().Err(err).Msg("Reload failed; transitions stay disabled until a valid configuration is loaded")
				}
			}
		}
	}
}

// configDocIDs lists the ids of the docs the config is read from:
// settings and the messages-* docs that exist now.
func configDocIDs(ctx context.Context, db *couch.DB) ([]string, error) {
	rows, err := db.IDRange(ctx, "messages-", "messages-\ufff0", 0, false)
	if err != nil {
		return nil, fmt.Errorf("list translation docs: %w", err)
	}
	ids := []string{"settings"}
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids, nil
}
