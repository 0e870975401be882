// Package lease elects one active instance among daemons sharing a
// database: the holder of a lease document renews it every few seconds,
// the others watch it and take it over once it has not been renewed for a
// TTL. Only the holder follows the feed, runs the jobs and sends.
//
// # What decides
//
// Every change of the lease is a write with the document's revision, so
// CouchDB's optimistic concurrency (one winner, the others get 409) decides
// between contenders, and a holder whose renewal meets a 409 knows at once
// that it lost. A contender takes over when the revision it read has stayed
// the same for a TTL measured on its own monotonic clock, or, sooner, when
// its wall clock is past the lease's `expires` by more than Safety (a
// contender that has just started need not watch a long-dead lease for a
// whole TTL). A holder gives up, on its own monotonic clock, Safety before a
// TTL has passed since it sent its last successful renewal. The renewal was
// stored after it was sent, and read by a contender after it was stored, so
// the holder stops before any contender may start: by the monotonic rule
// whatever the wall clocks say, by the wall clock rule as long as two hosts'
// clocks differ by less than 2×Safety (6 s by default; NTP keeps them within
// milliseconds). Clock rates are assumed to agree within Safety per TTL.
//
// # What the fencing token guards, and what it cannot
//
// Each acquisition increments Token. A holder checks its lease (Check) before
// each batch commit, checkpoint, outbound push and SMS send, and the feed's
// checkpoint carries the token: a checkpoint write that finds a larger token
// stored is refused, so a paused old holder can never move the new holder's
// checkpoint (backwards or forwards). CouchDB has no multi-document
// transactions, so the token cannot guard the other writes: a holder paused
// between its Check and its write (a GC pause, SIGSTOP, a partition that
// delays the request) may still land that one write after a successor took
// over. What keeps such a late write harmless is the rest of the daemon's
// design: documents are saved with their revision (a late save of a doc the
// new holder has written meets 409), ids of created docs are deterministic
// (a late create of one the new holder made meets 409), and every transition
// and push is idempotent against what is recorded (info docs, push hashes),
// so a change processed by both is processed once in effect. An HTTP push or
// an SMS already handed to the network cannot be recalled: the window for a
// duplicate there is the time between the Check and the request, not a TTL.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Record is the lease document's content.
type Record struct {
	// Holder is the id of the instance that holds (or last held) the lease.
	Holder string `json:"holder"`
	// Instance is the holding process (host/pid/random): unique even when
	// Holder is a stable id given by the operator.
	Instance string `json:"instance"`
	// Token is the fencing token: one more at each acquisition.
	Token int64 `json:"token"`
	// Expires is the holder's wall clock plus the TTL at its last renewal
	// (read after the renewal's monotonic start): a lease past it by more
	// than Safety on a contender's wall clock is taken over.
	Expires time.Time `json:"expires"`
	// TTLSeconds is the TTL the holder renews with.
	TTLSeconds float64 `json:"ttl_s"`
	// Released is set by a holder that stopped cleanly: anyone may take the
	// lease at once.
	Released bool `json:"released,omitempty"`
}

// Store keeps the lease document.
type Store interface {
	// Get returns the record and its revision, or ErrNotFound.
	Get(ctx context.Context) (Record, string, error)
	// Put writes r over revision rev ("" creates the document) and returns
	// the new revision, or ErrConflict when rev is not the current one.
	Put(ctx context.Context, r Record, rev string) (string, error)
}

var (
	// ErrNotFound is a Store's answer when there is no lease document.
	ErrNotFound = errors.New("lease: no lease document")
	// ErrConflict is a Store's answer to a Put over a revision that is not
	// the current one.
	ErrConflict = errors.New("lease: revision conflict")
	// ErrLost says the lease is not held (any more): what was about to be
	// written must not be.
	ErrLost = errors.New("lease: not the lease holder")
)

// Defaults of Options.
const (
	DefaultTTL   = 15 * time.Second
	DefaultRenew = 5 * time.Second
)

// Options configure a Lease.
type Options struct {
	// Store keeps the lease document.
	Store Store
	// Holder is this instance's id. With Stable, a lease found held by
	// Holder is a previous run of this instance (crashed before it could
	// release it) and is taken over at once; the operator must then never
	// give one id to two running instances. Without Stable, Holder is
	// Instance.
	Holder string
	Stable bool
	// Instance identifies this process (host/pid/random).
	Instance string
	// TTL is how long an unrenewed lease lasts (default 15 s).
	TTL time.Duration
	// Renew is the renewal interval of the holder and the polling interval
	// of the others (default 5 s).
	Renew time.Duration
	// Safety is how much before a TTL the holder gives up when it could not
	// renew (default TTL/5).
	Safety time.Duration
	// Now is the monotonic clock and Wall the wall clock (expires); nil:
	// time.Now for both.
	Now, Wall func() time.Time
	Log       zerolog.Logger
	// OnChange is told each time the lease is acquired or lost (token is
	// the held token, 0 when lost). It must not call the Lease.
	OnChange func(held bool, token int64)
	// OnStep is told after each step of Run whether the lease is held (a
	// standby's sign of life: systemd's watchdog).
	OnStep func(held bool)
	// Floor, when set, returns the largest token used so far elsewhere (the
	// checkpoint's): a lease document created anew (deleted by hand)
	// starts above it, so that its holders are not refused as stale.
	Floor func(ctx context.Context) (int64, error)
}

// Lease is one instance's side of the election. Its methods are safe for
// concurrent use; Step and Run must not run concurrently.
type Lease struct {
	opts Options

	mu       sync.Mutex
	held     bool
	token    int64
	rev      string
	deadline time.Time // monotonic: the holder stops here unless it renews
	// seenRev is the revision a contender last read, seenAt when it first
	// read it: a revision unchanged for a TTL is a dead holder's.
	seenRev string
	seenAt  time.Time
	// holder is the current holder as last read ("" none), for logs.
	holder string
}

// New returns the lease of one instance; opts.Store and opts.Instance are
// required.
func New(opts Options) (*Lease, error) {
	if opts.Store == nil || opts.Instance == "" {
		return nil, errors.New("lease: a store and an instance id are required")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Renew <= 0 {
		opts.Renew = DefaultRenew
	}
	if opts.Renew >= opts.TTL {
		return nil, fmt.Errorf("lease: the renewal interval (%s) must be shorter than the TTL (%s)", opts.Renew, opts.TTL)
	}
	if opts.Safety <= 0 {
		opts.Safety = opts.TTL / 5
	}
	if opts.Safety >= opts.TTL-opts.Renew {
		// A holder must be able to renew at least once before it gives up.
		opts.Safety = (opts.TTL - opts.Renew) / 2
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Wall == nil {
		opts.Wall = time.Now
	}
	if !opts.Stable || opts.Holder == "" {
		opts.Holder, opts.Stable = opts.Instance, false
	}
	return &Lease{opts: opts}, nil
}

// Check returns nil while this instance holds the lease and its local
// deadline has not passed, ErrLost otherwise. Call it right before a write
// that only the holder may make.
func (l *Lease) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.validLocked() {
		return ErrLost
	}
	return nil
}

// Token is the fencing token held (0 when not holding).
func (l *Lease) Token() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.validLocked() {
		return 0
	}
	return l.token
}

// Holder is the current holder as last read ("" when unknown or none).
func (l *Lease) Holder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder
}

func (l *Lease) validLocked() bool {
	return l.held && l.opts.Now().Before(l.deadline)
}

// Step does what is due now: a holder renews (or finds it lost the lease),
// a contender reads the lease and takes it over when it may. It returns
// whether the lease is held afterwards and when the next step is due.
// Errors of the store are returned with held telling the state: a holder
// keeps the lease through failed renewals until its local deadline.
func (l *Lease) Step(ctx context.Context) (held bool, next time.Duration, err error) {
	l.mu.Lock()
	holding := l.held
	l.mu.Unlock()
	if holding {
		return l.renew(ctx)
	}
	return l.campaign(ctx)
}

// renew extends the lease held.
func (l *Lease) renew(ctx context.Context) (bool, time.Duration, error) {
	l.mu.Lock()
	now := l.opts.Now()
	if !now.Before(l.deadline) {
		l.loseLocked("the lease could not be renewed in time")
		l.mu.Unlock()
		return false, 0, nil
	}
	rev, token, deadline := l.rev, l.token, l.deadline
	l.mu.Unlock()
	// The request may not outlast the deadline: after it, its answer is of
	// no use.
	rctx, cancel := context.WithTimeout(ctx, deadline.Sub(now))
	defer cancel()
	sent := l.opts.Now()
	rec := l.record(token, false) // its wall clock read after sent: expires errs late
	newRev, err := l.opts.Store.Put(rctx, rec, rev)
	if errors.Is(err, ErrConflict) {
		// The last renewal may have been stored though its answer was lost:
		// the lease is still ours if the document says so.
		cur, curRev, gerr := l.opts.Store.Get(rctx)
		if gerr == nil && cur.Instance == l.opts.Instance && cur.Token == token && !cur.Released {
			newRev, err = l.opts.Store.Put(rctx, l.record(token, false), curRev)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.rev, l.deadline = newRev, sent.Add(l.opts.TTL-l.opts.Safety)
		return true, l.opts.Renew, nil
	case errors.Is(err, ErrConflict):
		l.loseLocked("another instance took the lease over")
		return false, 0, nil
	case !l.opts.Now().Before(l.deadline):
		l.loseLocked("the lease could not be renewed in time")
		return false, 0, fmt.Errorf("renew the lease: %w", err)
	}
	// Try again soon, well before the deadline.
	return true, min(time.Second, l.deadline.Sub(l.opts.Now())/2), fmt.Errorf("renew the lease: %w", err)
}

func (l *Lease) loseLocked(why string) {
	l.opts.Log.Warn().Str("component", "lease").Int64("token", l.token).Msg("Lease lost: " + why + "; standing by")
	l.held, l.rev, l.seenRev = false, "", ""
	if l.opts.OnChange != nil {
		l.opts.OnChange(false, 0)
	}
}

// campaign reads the lease and takes it when it is free, released, expired
// (unchanged for a TTL) or this instance's own.
func (l *Lease) campaign(ctx context.Context) (bool, time.Duration, error) {
	cur, rev, err := l.opts.Store.Get(ctx)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, l.opts.Renew, fmt.Errorf("read the lease: %w", err)
	}
	if errors.Is(err, ErrNotFound) && l.opts.Floor != nil {
		floor, ferr := l.opts.Floor(ctx)
		if ferr != nil {
			return false, l.opts.Renew, fmt.Errorf("read the last token used: %w", ferr)
		}
		cur.Token = floor
	}
	now := l.opts.Now()
	l.mu.Lock()
	var why string
	switch {
	case errors.Is(err, ErrNotFound):
		why, rev = "no lease yet", ""
	case cur.Released:
		why = "released by its holder"
	case cur.Instance == l.opts.Instance:
		why = "this process's own"
	case l.opts.Stable && cur.Holder == l.opts.Holder:
		why = "held by this instance's previous run"
	case rev == l.seenRev && !now.Before(l.seenAt.Add(l.opts.TTL)):
		why = "not renewed for " + l.opts.TTL.String()
	case !cur.Expires.IsZero() && l.opts.Wall().After(cur.Expires.Add(l.opts.Safety)):
		why = "expired at " + cur.Expires.Format(time.RFC3339)
	case rev != l.seenRev:
		l.seenRev, l.seenAt = rev, now
	}
	l.holder = cur.Holder
	if why == "" {
		wait := min(l.opts.Renew, l.seenAt.Add(l.opts.TTL).Sub(now))
		l.mu.Unlock()
		return false, max(wait, 0), nil
	}
	l.mu.Unlock()
	token := cur.Token + 1
	sent := l.opts.Now()
	rec := l.record(token, false)
	newRev, err := l.opts.Store.Put(ctx, rec, rev)
	if errors.Is(err, ErrConflict) {
		return false, 0, nil // another contender was first: read again now
	}
	if err != nil {
		return false, l.opts.Renew, fmt.Errorf("take the lease: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held, l.token, l.rev, l.holder = true, token, newRev, l.opts.Holder
	l.deadline = sent.Add(l.opts.TTL - l.opts.Safety)
	l.opts.Log.Info().Str("component", "lease").Int64("token", token).Str("holder", l.opts.Holder).
		Str("previous_holder", cur.Holder).Str("reason", why).Msg("Lease acquired: this instance is active")
	if l.opts.OnChange != nil {
		l.opts.OnChange(true, token)
	}
	return true, l.opts.Renew, nil
}

func (l *Lease) record(token int64, released bool) Record {
	exp := l.opts.Wall().Add(l.opts.TTL)
	if released {
		exp = l.opts.Wall()
	}
	return Record{Holder: l.opts.Holder, Instance: l.opts.Instance, Token: token,
		Expires: exp.UTC().Round(time.Millisecond), TTLSeconds: l.opts.TTL.Seconds(), Released: released}
}

// Release gives the lease up for anyone to take at once (a clean stop).
// It does nothing when the lease is not held.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	if !l.validLocked() {
		l.mu.Unlock()
		return nil
	}
	rev, token := l.rev, l.token
	l.held = false
	if l.opts.OnChange != nil {
		l.opts.OnChange(false, 0)
	}
	l.mu.Unlock()
	if _, err := l.opts.Store.Put(ctx, l.record(token, true), rev); err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("release the lease: %w", err)
	}
	l.opts.Log.Info().Str("component", "lease").Int64("token", token).Msg("Lease released")
	return nil
}

// Run campaigns for the lease until ctx ends. Each time it acquires the
// lease it calls hold with a context that ends as soon as the lease is lost
// (a renewal met another holder, or could not be made before the local
// deadline), and waits for hold to return before campaigning again. When
// ctx ends it waits for hold and releases the lease. When hold returns on
// its own, Run releases the lease and returns. Store errors are logged and
// retried.
func (l *Lease) Run(ctx context.Context, hold func(ctx context.Context)) {
	log := l.opts.Log.With().Str("component", "lease").Logger()
	var h *holding
	stopHold := func() {
		if h != nil {
			h.stop()
			h = nil
		}
	}
	defer func() {
		stopHold()
		rctx, c := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer c()
		if err := l.Release(rctx); err != nil {
			log.Warn().Err(err).Msg("Could not release the lease; another instance takes it over after its TTL")
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	// deadline wakes the loop at the local deadline even if a renewal is
	// late; it only runs while holding.
	deadline := time.NewTimer(time.Hour)
	deadline.Stop()
	defer deadline.Stop()
	failing := false
	for {
		var finished <-chan struct{}
		if h != nil {
			finished = h.done
			l.mu.Lock()
			deadline.Reset(max(l.deadline.Sub(l.opts.Now()), 0))
			l.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-finished:
			return
		case <-deadline.C:
		case <-timer.C:
		}
		deadline.Stop()
		held, next, err := l.Step(ctx)
		if ctx.Err() != nil {
			return
		}
		if l.opts.OnStep != nil {
			l.opts.OnStep(held)
		}
		switch {
		case err != nil && !failing:
			failing = true
			log.Warn().Err(err).Bool("held", held).Msg("Lease request failed; retrying")
		case err == nil && failing:
			failing = false
			log.Info().Bool("held", held).Msg("Lease requests succeed again")
		}
		if !held {
			stopHold()
		}
		if held && h == nil {
			h = startHolding(ctx, hold)
		}
		timer.Reset(next)
	}
}

// holding is a run of Run's hold function.
type holding struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startHolding(ctx context.Context, hold func(context.Context)) *holding {
	hctx, cancel := context.WithCancel(ctx)
	h := &holding{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		hold(hctx)
	}()
	return h
}

// stop ends the run and waits for hold to return.
func (h *holding) stop() {
	h.cancel()
	<-h.done
}
