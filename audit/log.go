package audit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
)

// DefaultMaxQueued bounds the entries waiting for an audit db that does not
// answer: about a day of a busy deployment's writes at a few bytes each.
const DefaultMaxQueued = 100000

// maxChunk is the most entries written in one read and one bulk write: a
// group commit's batch (500 changes and the docs they create) fits.
const maxChunk = 5000

// Backoff bounds of the writer while the audit db fails.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Log queues the entries of the writes it is told about (it is the main
// db's couch.Auditor) and writes them to the audit db in the background
// (Run): a failing audit db never fails, repeats or holds the main write.
// What the queue cannot hold while the audit db fails is dropped, counted
// and logged once per outage; Flush writes what is left at stop.
type Log struct {
	store Store
	user  string
	log   zerolog.Logger
	max   int
	now   func() time.Time

	enabled atomic.Bool
	wake    chan struct{}

	mu      sync.Mutex
	queue   []Entry
	failing bool // the last write failed: an outage is going on
	dropped bool // overflow was logged in this outage

	// guess learns which audit docs exist, to skip reading those that
	// do not (see predictor).
	guess *predictor

	metrics *metrics
}

// Options configure a Log.
type Options struct {
	// User is the name the entries give as author (COUCH_URL's user).
	User string
	Log  zerolog.Logger
	// MaxQueued bounds the queue (default DefaultMaxQueued).
	MaxQueued int
	// Now is the clock of the entries' dates (default time.Now).
	Now func() time.Time
}

// New returns a Log writing to store, off until SetEnabled(true).
func New(store Store, o Options) *Log {
	if o.MaxQueued <= 0 {
		o.MaxQueued = DefaultMaxQueued
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Log{store: store, user: o.User, log: o.Log, max: o.MaxQueued, now: o.Now, wake: make(chan struct{}, 1), guess: newPredictor()}
	l.metrics = newMetrics(l)
	return l
}

// SetEnabled turns auditing on or off. Turned off, entries still queued
// are dropped: the audit db is gone or unwanted.
func (l *Log) SetEnabled(on bool) {
	l.enabled.Store(on)
	if !on {
		l.mu.Lock()
		l.queue = nil
		l.mu.Unlock()
	}
}

// Enabled reports whether writes are audited.
func (l *Log) Enabled() bool { return l.enabled.Load() }

// Queued is the number of entries waiting to be written.
func (l *Log) Queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// Audit queues an entry for each write (couch.Auditor). It never blocks.
func (l *Log) Audit(writes []couch.Write) {
	if !l.enabled.Load() {
		return
	}
	date := DateOf(l.now())
	entries := make([]Entry, 0, len(writes))
	for _, w := range writes {
		if Audited(w.ID) && w.Rev != "" {
			entries = append(entries, Entry{ID: w.ID, Rev: w.Rev, User: l.user, Date: date})
		}
	}
	l.enqueue(entries)
}

// enqueue adds entries to the queue, dropping what overflows its bound.
func (l *Log) enqueue(entries []Entry) {
	if len(entries) == 0 {
		return
	}
	l.mu.Lock()
	room := l.max - len(l.queue)
	over := 0
	if len(entries) > room {
		over = len(entries) - max(room, 0)
		entries = entries[:max(room, 0)]
	}
	l.queue = append(l.queue, entries...)
	l.mu.Unlock()
	l.overflow(over)
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// take removes up to n entries from the head of the queue.
func (l *Log) take(n int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, len(l.queue))
	out := make([]Entry, n)
	copy(out, l.queue)
	l.queue = l.queue[n:]
	if len(l.queue) == 0 {
		l.queue = nil // let the backing array go after an outage
	}
	return out
}

// requeue puts entries back at the head of the queue (their write failed),
// keeping the newest within the bound: older ones are dropped first.
func (l *Log) requeue(entries []Entry) {
	l.mu.Lock()
	q := append(entries, l.queue...)
	over := len(q) - l.max
	if over > 0 {
		// As when enqueueing, what overflows is the newest: the entries in
		// hand were queued first.
		q = q[:l.max]
	}
	l.queue = q
	l.mu.Unlock()
	l.overflow(over)
}

// overflow counts n entries dropped from a full queue, and says so once
// per outage.
func (l *Log) overflow(n int) {
	if n <= 0 {
		return
	}
	l.metrics.dropped.Add(float64(n))
	l.mu.Lock()
	first := !l.dropped
	l.dropped = true
	l.mu.Unlock()
	if first {
		l.log.Error().Str("component", "audit").Int("max_queued", l.max).
			Msg("The audit queue is full while the audit db fails; dropping entries until it answers again (counted in sentinel_audit_entries_total{result=\"dropped\"})")
	}
}

// Run writes queued entries until ctx ends, backing off while the audit
// db fails. What is still queued then is for Flush.
func (l *Log) Run(ctx context.Context) {
	backoff := minBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		}
		for ctx.Err() == nil {
			err := l.writeChunk(ctx)
			if errors.Is(err, errEmpty) {
				break
			}
			if err == nil {
				backoff = minBackoff
				continue
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, maxBackoff)
		}
	}
}

var errEmpty = errors.New("nothing queued")

// writeChunk writes the entries at the head of the queue (requeued when
// the audit db fails).
func (l *Log) writeChunk(ctx context.Context) error {
	chunk := l.take(maxChunk)
	if len(chunk) == 0 {
		return errEmpty
	}
	if !l.enabled.Load() {
		return nil
	}
	lost, err := write(ctx, l.store, chunk, l.guess)
	if err != nil {
		if errors.Is(err, couch.ErrNotFound) {
			// CHT API owns the audit db: it is never created here.
			l.SetEnabled(false)
			l.metrics.lost.Add(float64(len(chunk)))
			l.log.Warn().Str("component", "audit").Err(err).Msg("The audit db is gone; auditing is off until it exists again (checked at each config reload)")
			return nil
		}
		l.requeue(chunk)
		if ctx.Err() != nil {
			return err // stopping: Flush takes over
		}
		l.mu.Lock()
		first := !l.failing
		l.failing = true
		l.mu.Unlock()
		if first {
			l.log.Error().Str("component", "audit").Err(err).Int("queued", l.Queued()).
				Msg("Cannot write the audit log; queueing entries and retrying")
		}
		return err
	}
	written := len(chunk) - len(lost)
	l.metrics.written.Add(float64(written))
	if len(lost) > 0 {
		l.metrics.lost.Add(float64(len(lost)))
		l.log.Warn().Str("component", "audit").Int("entries", len(lost)).Str("doc_id", lost[0].ID).
			Msg("Audit entries lost: their audit doc kept conflicting or was rejected")
	}
	l.mu.Lock()
	recovered := l.failing
	l.failing, l.dropped = false, false
	l.mu.Unlock()
	if recovered {
		l.log.Info().Str("component", "audit").Msg("The audit log is written again")
	}
	return nil
}

// Flush writes everything queued, retrying a failing audit db until ctx
// ends (the daemon's stop budget); it returns how many entries are left
// unwritten, which are lost.
func (l *Log) Flush(ctx context.Context) int {
	backoff := minBackoff / 5
	for ctx.Err() == nil {
		err := l.writeChunk(ctx)
		if errors.Is(err, errEmpty) {
			return 0
		}
		if err != nil {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			backoff = min(backoff*2, time.Second)
		}
	}
	left := l.Queued()
	if left > 0 {
		l.metrics.lost.Add(float64(left))
		l.log.Error().Str("component", "audit").Int("entries", left).Msg("Stopping with audit entries unwritten; they are lost")
	}
	return left
}
