// Command sentinel is the sentinel-go daemon: a drop-in replacement for the
// CHT Sentinel. It follows the CouchDB `_changes` feed of COUCH_URL and runs
// the transitions configured in app_settings on every document.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"sentinel-go/daemon"
	"sentinel-go/transitions"
)

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `sentinel-go: runs CHT Sentinel transitions on a CouchDB database.

Usage:
  sentinel [flags]                      run the daemon
  sentinel check-config [--json] [--translations DIR_OR_FILE] FILE
                                        validate an app_settings file offline (exit 0 valid, 1 not)
  sentinel explain [--json] DOCID       show what the transitions would do to a doc, writing nothing
  sentinel healthcheck [--listen ADDR]  exit 0 if the daemon's /healthz answers 200, else 1 (container probes)
  sentinel --version                    print the version and VCS revision

Environment:
  Every flag can be set by the environment variable named on its line below:
  SENTINEL_ and the flag in upper snake case (SENTINEL_JOB_INTERVAL=10m), but
  COUCH_URL and SENTINEL_DB, the names the CHT Sentinel reads. A flag given on
  the command line wins over its variable. Also read:
  TZ                      time zone of date arithmetic (offsets, windows, day boundaries)
  SENTINEL_SECRET_<KEY>   a credential of outbound pushes or SMS aggregators (e.g. SENTINEL_SECRET_RAPIDPRO_OUTGOING)
  SENTINEL_SECRETS_FILE   a JSON file of credentials {"<key>": "<secret>"}
  API_HOST, API_PORT      CHT API (port 5988 by default): when API_HOST is set, wait
                          for its /setup/poll to answer before following changes
  LOG_LEVEL               CHT's name for the log level (winston's names), below
                          --log-level and SENTINEL_LOG_LEVEL

Signals:
  SIGTERM, SIGINT  finish the change in hand, write the checkpoint, exit 0
  SIGUSR2          run the scheduled jobs now

Flags:
`

// flagSet reports whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// dbFlags declares --couch-url and --sentinel-db. Their environment
// variables are read after parsing (fromEnv), never shown as the flags'
// defaults: --help and usage errors would print the password of COUCH_URL.
func dbFlags(fs *flag.FlagSet) (couchURL, sentinelDB *string) {
	couchURL = fs.String("couch-url", "", "main database URL with credentials, e.g. http://admin:pass@localhost:5984/medic")
	sentinelDB = fs.String("sentinel-db", "", "sentinel database (default <db>-sentinel, created if missing)")
	return couchURL, sentinelDB
}

// DefaultListen is the default --listen address. Not 9090 (Prometheus
// itself), nor 9091-9999 (the Prometheus ecosystem and its exporters, a
// range the Prometheus default port allocations list has filled) or the
// allocations that went on above 10000: a Prometheus server or an exporter
// on the same host must not keep the daemon's metrics from starting.
const DefaultListen = "127.0.0.1:7988"

// run is the command line. ctx ending stops the daemon as SIGTERM does.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check-config" {
		return checkConfig(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "explain" {
		return explainCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("sentinel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	couchURL, sentinelDB := dbFlags(fs)
	logFormat := fs.String("log-format", "", "log format: json or console (default: console on a terminal, else json)")
	logLevel := fs.String("log-level", "info", "log level: error, warn, info (http), debug (verbose), or silly (trace); winston's names, as LOG_LEVEL")
	exprTimeout := fs.Duration("expr-timeout", 100*time.Millisecond, "time bound of each config expression evaluation")
	jobInterval := fs.Duration("job-interval", 5*time.Minute, "how often the scheduled jobs run")
	listen := fs.String("listen", DefaultListen, "address of /metrics, /healthz and /readyz (empty disables)")
	phoneOwner := fs.String("phone-owner", "smallest-id", "who a phone number shared by contacts belongs to: smallest-id (CHT) or first-registrant (earliest reported_date)")
	healthStall := fs.Duration("health-stall", 10*time.Minute, "/healthz fails when the feed has not advanced for this long with changes pending")
	var smsf smsFlags
	fs.StringVar(&smsf.listen, "sms-listen", "", "address of the SMS API for CHT Gateway, RapidPro and Africa's Talking (empty: off)")
	fs.BoolVar(&smsf.send, "sms-send", false, "send pending messages through sms.outgoing_service (rapidpro, africas-talking) and poll their statuses")
	auditOn := fs.Bool("audit", true, "record the daemon's writes to the main db in <db>-audit when that db exists")
	leaseOn := fs.Bool("lease", false, "active/standby: only the instance holding the lease doc of the sentinel db follows changes, runs jobs and sends (set on every instance)")
	leaseTTL := fs.Duration("lease-ttl", 15*time.Second, "with --lease: how long an unrenewed lease lasts before a standby takes over")
	leaseRenew := fs.Duration("lease-renew", 5*time.Second, "with --lease: how often the holder renews the lease and standbys read it (below --lease-ttl)")
	leaseID := fs.String("lease-id", "", "with --lease: a stable id of this instance, unique among the instances (e.g. the pod name): its own lease is taken back at once after a crash")
	showVersion := fs.Bool("version", false, "print the version and VCS revision, and exit")
	// Every flag but --version, which is an action, not a setting.
	settings := []string{"couch-url", "sentinel-db", "log-format", "log-level", "expr-timeout", "job-interval",
		"listen", "phone-owner", "health-stall", "sms-listen", "sms-send", "audit", "lease", "lease-ttl", "lease-renew", "lease-id"}
	withEnv(fs, settings...)
	if code, ok := parseArgs(fs, usage, args, stdout, stderr); !ok {
		return code
	}
	if *showVersion {
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	if fs.NArg() > 0 {
		// A mistyped subcommand must never start the daemon on a live db.
		fmt.Fprintf(stderr, "sentinel: unknown command or argument %q (commands: check-config, explain, healthcheck; see --help)\n", fs.Arg(0))
		return 2
	}
	from, err := fromEnv(fs, settings...)
	if err != nil {
		fmt.Fprintln(stderr, "sentinel:", err)
		return 2
	}
	chtLogLevel(fs, from)
	log, err := newLogger(*logFormat, *logLevel, from, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sentinel:", err)
		return 2
	}
	if flagSet(fs, "log-level") {
		// Which of the three ways to set it won, for an operator who set two.
		log.Debug().Str("component", "daemon").Str("log_level", *logLevel).Str("set_by", from.label("log-level")).Msg("Log level")
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"job-interval", *jobInterval}, {"expr-timeout", *exprTimeout}, {"health-stall", *healthStall},
		{"lease-ttl", *leaseTTL}, {"lease-renew", *leaseRenew}} {
		if err := positive(from.label(f.name), f.v); err != nil {
			fmt.Fprintln(stderr, "sentinel:", err)
			return 2
		}
	}
	if *leaseRenew >= *leaseTTL {
		fmt.Fprintf(stderr, "sentinel: %s (%s) must be shorter than %s (%s)\n", from.label("lease-renew"), *leaseRenew, from.label("lease-ttl"), *leaseTTL)
		return 2
	}
	if *couchURL == "" {
		fmt.Fprintln(stderr, "sentinel: COUCH_URL is not set (e.g. http://admin:pass@localhost:5984/medic); see --help")
		return 2
	}
	owner, err := transitions.ParsePhoneOwner(*phoneOwner)
	if err != nil {
		fmt.Fprintf(stderr, "sentinel: %s: %v\n", from.label("phone-owner"), err)
		return 2
	}
	apiURL, err := chtAPIURL()
	if err != nil {
		fmt.Fprintln(stderr, "sentinel:", err)
		return 2
	}
	var clock func() time.Time
	if fake := os.Getenv("SENTINEL_FAKE_NOW"); fake != "" {
		// The conformance runner's test clock (jobs.md §0).
		c, err := daemon.FakeClock(fake)
		if err != nil {
			fmt.Fprintln(stderr, "sentinel:", err)
			return 2
		}
		clock = c
	}
	d, err := daemon.New(daemon.Options{
		CouchURL: *couchURL, SentinelDB: *sentinelDB, Log: log,
		ExprTimeout: *exprTimeout, JobInterval: *jobInterval, Jobs: daemon.DefaultJobs(),
		// Set on the command line or in the environment, the address is
		// required; the default is not (several daemons on one machine).
		Listen: *listen, ListenOptional: !flagSet(fs, "listen"), HealthStall: *healthStall, PhoneOwner: owner,
		Clock: clock, NoAudit: !*auditOn, APIURL: apiURL,
		Lease: *leaseOn, LeaseTTL: *leaseTTL, LeaseRenew: *leaseRenew, LeaseID: *leaseID,
	})
	if err != nil {
		fmt.Fprintln(stderr, "sentinel:", err)
		return 2
	}
	if path := os.Getenv("SENTINEL_CPUPROFILE"); path != "" {
		// A CPU profile of the whole run, for throughput work (make bench).
		if f, err := os.Create(path); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	if os.Getenv("GOGC") == "" {
		// The live heap is small (the lookup index, one batch) and throughput
		// is bound by the server, not the CPU: a tighter heap target (1.5×
		// live instead of 2×) costs little and keeps the peak RSS of a
		// 100,000-doc catch-up under 100 MiB. GOGC and GOMEMLIMIT override.
		debug.SetGCPercent(50)
	}
	if path := os.Getenv("SENTINEL_MEMPROFILE"); path != "" {
		// A heap profile when the daemon stops, for memory work.
		defer func() {
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	go func() {
		for {
			var s os.Signal
			select {
			case <-ctx.Done():
				return
			case s = <-sigs:
			}
			if s == syscall.SIGUSR2 {
				log.Info().Str("component", "daemon").Msg("SIGUSR2: running scheduled jobs now")
				d.RunJobs()
				continue
			}
			log.Info().Str("component", "daemon").Str("signal", s.String()).Msg("Stopping")
			cancel()
		}
	}()
	closeSMS, err := addSMS(d, smsf, *couchURL, log)
	if err != nil {
		// Not a usage error: mostly an address in use (another instance).
		fmt.Fprintln(stderr, "sentinel:", err)
		return 1
	}
	defer closeSMS()
	if err := d.Run(ctx); err != nil && ctx.Err() == nil {
		// A --listen or --sms-listen address in use ends here, before
		// anything started.
		log.Error().Str("component", "daemon").Err(err).Msg("Daemon failed")
		fmt.Fprintln(stderr, "sentinel:", err)
		return 1
	}
	return 0
}

// parseArgs parses args with fs. --help (-h) prints the usage on stdout and
// exits 0; a usage error prints the message and the usage on stderr and
// exits 2. ok is false when the command must return code now. Afterwards
// fs.Usage prints the usage on stderr (for later usage errors).
func parseArgs(fs *flag.FlagSet, head string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, on the right stream
	err := fs.Parse(args)
	fs.Usage = func() { printUsage(fs, head, stderr) }
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		printUsage(fs, head, stdout)
		return 0, false
	default:
		fs.Usage() // after the error message flag has printed
		return 2, false
	}
}

func printUsage(fs *flag.FlagSet, head string, w io.Writer) {
	fmt.Fprint(w, head)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// versionLine is what --version prints: the module version and the VCS
// revision the binary was built from.
func versionLine() string {
	b := daemon.ReadBuildInfo()
	rev := b.Revision
	if b.Modified {
		rev += " (modified)"
	}
	return fmt.Sprintf("sentinel-go %s revision %s %s", b.Version, rev, b.GoVersion)
}

// positive rejects a zero or negative duration at start; label names the
// flag (origins.label).
func positive(label string, v time.Duration) error {
	if v <= 0 {
		return fmt.Errorf("%s must be a positive duration such as 5m or 100ms (got %s)", label, v)
	}
	return nil
}

// newLogger is the daemon's logger; from names the flags in its errors.
func newLogger(format, level string, from origins, w io.Writer) (zerolog.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("bad %s %q (%s)", from.label("log-level"), level, levelList)
	}
	var out io.Writer = w
	switch format {
	case "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
		}
	case "console":
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: true}
	case "json":
	default:
		return zerolog.Logger{}, fmt.Errorf("bad %s %q (json or console)", from.label("log-format"), format)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}
