package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/schedule/jobs"
	"sentinel-go/schedule/jobs/archiving"
	"sentinel-go/schedule/jobs/purging"
	"sentinel-go/schedule/jobs/usermeta"
)

// runJobs runs every job at start, every JobInterval and whenever RunJobs
// is called. Jobs run one at a time in this goroutine, so a job is never run
// twice at once; a failing job is logged and never stops the daemon.
func (d *Daemon) runJobs(ctx context.Context) {
	// The first run waits until the feed has caught up with the backlog
	// found at start (at most one job interval): the jobs' view builds and
	// the catch-up's writes compete for the server (PouchDB Server is single-
	// threaded), and due messages are better found once the backlog has
	// scheduled them. SIGUSR2 runs them at once.
	trigger := "start"
	select {
	case <-ctx.Done():
		return
	case <-d.caughtUp:
	case <-d.jobsNow:
		trigger = "SIGUSR2"
	case <-time.After(d.opts.JobInterval):
	}
	tick := time.NewTicker(d.opts.JobInterval)
	defer tick.Stop()
	for run := 1; ; run++ {
		d.runAllJobs(ctx, run, trigger)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			trigger = "interval"
		case <-d.jobsNow:
			trigger = "SIGUSR2"
		}
	}
}

func (d *Daemon) runAllJobs(ctx context.Context, run int, trigger string) {
	log := d.log.With().Str("component", "jobs").Logger()
	if cfg := d.cfg.Load(); cfg != nil && !cfg.Valid() {
		log.Error().Msg(disabledMessage(cfg.Problems))
	}
	cfg := d.cfg.Load()
	if cfg == nil {
		return
	}
	env := &jobs.Env{Main: d.client.Main, Sentinel: d.client.Sentinel, Client: d.client,
		Settings: cfg.Settings, Translations: cfg.Translations, Location: d.opts.Location, Log: log, Dups: d.dups, JS: jsexpr.NewSandbox(jsexpr.Options{Timeout: d.opts.ExprTimeout}),
		Secrets: d.secrets, Outbound: d.outbox, Started: d.started, Run: run, Clock: d.opts.Clock,
		Counts: map[string]int{}}
	began := time.Now()
	failed := 0
	// One line per run says what it did (also after SIGUSR2).
	defer func() {
		ev := log.Info().Int("run", run).Str("trigger", trigger).Int("failed_jobs", failed).
			Int64("took_ms", time.Since(began).Milliseconds())
		for k, n := range env.Counts {
			ev = ev.Int(k, n)
		}
		ev.Msg("Jobs ran")
	}()
	for _, j := range d.opts.Jobs {
		if ctx.Err() != nil || d.Fence() != nil {
			return
		}
		start := time.Now()
		err := safeJob(ctx, env, j)
		// A job that met an unreachable server runs again once it is back
		// (jobs are idempotent): an outage does not cost a job interval.
		for err != nil && couch.Unreachable(err) && d.awaitServer(ctx, err) == nil {
			err = safeJob(ctx, env, j)
		}
		ev := log.Debug()
		if err != nil {
			ev = log.Error().Err(err)
		}
		ev.Str("job", j.Name()).Dur("took_ms", time.Since(start)).Msg("Job finished")
		d.metrics.jobs.WithLabelValues(j.Name()).Observe(time.Since(start).Seconds())
		if err != nil {
			failed++
			d.metrics.jobErrors.WithLabelValues(j.Name()).Inc()
		}
	}
}

func safeJob(ctx context.Context, env *jobs.Env, j jobs.Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job %s panicked: %v", j.Name(), r)
		}
	}()
	return j.Run(ctx, env)
}

// DefaultJobs is the daemon's job registry, in run order: the tick jobs,
// then those that a tick only arms on their own timer. Each call makes new
// job values (the timed ones hold their timer).
func DefaultJobs() []jobs.Job {
	return append(jobs.Default(), purging.New(), archiving.New(), usermeta.New())
}

// FakeClock is the test clock of SENTINEL_FAKE_NOW: iso at start, running
// on in real time.
func FakeClock(iso string) (func() time.Time, error) { return jobs.FakeClock(iso, time.Now) }

// disabledMessage is the line each tick logs while no valid config runs
// (jobs.md §4): "Transitions are disabled" and the last load error, in the
// reference's words for an unknown transition and a transition that failed
// to load.
func disabledMessage(problems []config.Problem) string {
	var last *config.Problem
	for i := range problems {
		if problems[i].Severity == config.Error {
			last = &problems[i]
		}
	}
	const prefix = "Transitions are disabled"
	if last == nil {
		return prefix
	}
	key, isKey := strings.CutPrefix(last.Path, "transitions.")
	switch {
	case strings.HasPrefix(last.Message, "Unknown transition"):
		return prefix + ". " + last.Message
	case isKey && key != "" && !strings.Contains(key, "."):
		return fmt.Sprintf("%s. Failed loading transition %q. This is likely due to an error in the transition configuration. Please check your configuration.. %s",
			prefix, key, last.Message)
	case last.Path != "":
		return prefix + ". " + last.Path + ": " + last.Message
	}
	return prefix + ". " + last.Message
}

// CheckJobs reports the problems of the jobs' settings, as check-config
// shows them: reminders, the purge function and schedule, the archive block.
func CheckJobs(s *config.Settings) []config.Problem {
	_, problems := jobs.ParseReminders(s)
	problems = append(problems, purging.Check(s)...)
	return append(problems, archiving.Check(s)...)
}
