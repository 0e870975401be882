// Package jobs holds the scheduled jobs of schedules.md: due tasks,
// reminders, outbound retries, background cleanup and the others. The daemon
// runs every job at start, every 5 minutes and on SIGUSR2, one at a time.
package jobs

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/messages"
	"sentinel-go/outbound"
)

// Env is what a job run may use.
type Env struct {
	Main     *couch.DB
	Sentinel *couch.DB
	Client   *couch.Client
	// Settings and Translations are the config in force (it may be invalid
	// for the transitions, which are then disabled: jobs still run). A nil
	// Settings means no config: the jobs that need one do nothing.
	Settings     *config.Settings
	Translations config.Translations
	Location     *time.Location
	Log          zerolog.Logger
	// Clock returns the wall time; nil means time.Now.
	Clock func() time.Time
	Dups  *messages.Duplicates
	JS    *jsexpr.Sandbox
	// Secrets holds the credentials of outbound pushes.
	Secrets outbound.SecretStore
	// Outbound, when set, sends the queued outbound pushes from its own
	// workers: the outbound job only asks it to retry them.
	Outbound OutboundRetrier
	// Started is when the daemon started; Run counts the job runs since (1: the first).
	Started time.Time
	Run     int
	// Counts gathers what the jobs of a run did ("due_tasks.released": 3),
	// for the run's summary line; nil: not counted.
	Counts map[string]int
}

// Count adds n to what job did (released, created, cleared, retried).
func (e *Env) Count(job, what string, n int) {
	if e.Counts != nil && n > 0 {
		e.Counts[job+"."+what] += n
	}
}

// Now is the job's "now": synthetic_date when configured, else the clock.
func (e *Env) Now() time.Time {
	if e.Settings != nil {
		if t, ok := e.Settings.SyntheticDate(e.Location); ok {
			return t
		}
	}
	if e.Clock != nil {
		return e.Clock()
	}
	return time.Now()
}

// Generator returns a message generator for the config in force.
func (e *Env) Generator(now time.Time) *messages.Generator {
	return &messages.Generator{Settings: e.Settings, Translations: e.Translations,
		Location: e.Location, Now: now, Dups: e.Dups}
}

// Job is one scheduled job.
type Job interface {
	Name() string
	Run(ctx context.Context, env *Env) error
}

// Default is the job registry, in run order.
func Default() []Job {
	return []Job{DueTasks{}, Reminders{}, Outbound{}, BackgroundCleanup{}}
}
