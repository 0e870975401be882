package jobs

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Timer holds the one-shot timer of a job that a tick only arms (jobs.md
// §0): purging, archiving and the user-meta replication do their work at
// the next occurrence of their schedule, not at the tick. Each tick cancels
// the pending timer and arms a new one, so config changes apply at the
// next tick; a run still going when the timer fires makes it do nothing.
// The zero Timer is ready to use.
type Timer struct {
	mu      sync.Mutex
	timer   *time.Timer
	running bool
	// fired is the last instant a timer fired for: a tick just after it
	// must not arm the same instant again.
	fired time.Time
	// wg counts running work, for Wait.
	wg sync.WaitGroup
}

// Arm cancels the pending timer and arms one that calls work at instant at
// (now is the caller's clock, which may be a test clock: only the
// difference is used). An instant that already fired is not armed again.
func (t *Timer) Arm(ctx context.Context, at, now time.Time, work func(ctx context.Context)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	if !t.fired.IsZero() && !at.After(t.fired) {
		return
	}
	delay := max(at.Sub(now), 0)
	t.timer = time.AfterFunc(delay, func() {
		if ctx.Err() != nil {
			return
		}
		t.mu.Lock()
		t.fired = at
		if t.running {
			t.mu.Unlock()
			return
		}
		t.running = true
		t.wg.Add(1)
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			t.running = false
			t.mu.Unlock()
			t.wg.Done()
		}()
		work(ctx)
	})
}

// Stop cancels the pending timer.
func (t *Timer) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
}

// Wait returns when no work is running (tests; shutdown).
func (t *Timer) Wait() { t.wg.Wait() }

// Detached returns a copy of env for work that runs on its own timer,
// beside the jobs of later ticks: its own expression sandbox (a sandbox
// serves one goroutine) and logger fields.
func (e *Env) Detached(job string) *Env {
	c := *e
	if e.JS != nil {
		c.JS = e.JS.Fork()
	}
	c.Log = e.Log.With().Str("job", job).Logger()
	return &c
}

// FakeClock returns a clock that reads iso (RFC 3339, SENTINEL_FAKE_NOW)
// at the first call of now and runs on in real time from there: the test
// clock of the conformance runner (jobs.md §0).
func FakeClock(iso string, now func() time.Time) (func() time.Time, error) {
	start, err := time.Parse(time.RFC3339Nano, iso)
	if err != nil {
		return nil, fmt.Errorf("SENTINEL_FAKE_NOW %q is not an ISO-8601 instant: %w", iso, err)
	}
	offset := start.Sub(now())
	return func() time.Time { return now().Add(offset) }, nil
}

// Wall is the daemon's clock (a test clock included), never the
// synthetic_date setting: timers wait in real time.
func (e *Env) Wall() time.Time {
	if e.Clock != nil {
		return e.Clock()
	}
	return time.Now()
}
