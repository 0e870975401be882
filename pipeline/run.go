package pipeline

import (
	"context"
	"errors"
	"time"

	"sentinel-go/couch"
	"sentinel-go/internal/graceful"
	"sentinel-go/transitions"
)

// BatchControl is how the caller of RunBatch steers a batch: which config
// is in force, what happens when a change fails, and what it is told.
type BatchControl struct {
	// Config returns the config in force; it is read at each attempt of a
	// change, so a reload applies to the next attempt.
	Config func() *transitions.Config
	// Failed is told that an attempt of a change failed (attempt counts
	// from 1; an attempt that met an unreachable server is not counted: the
	// next try has the same number). It waits as it sees fit and returns true to try the change
	// again (its doc read anew), false to pass over it (the change counts
	// as completed: the caller has logged why). Nil: RunBatch stops at the
	// first failure and returns it.
	Failed func(ctx context.Context, ch couch.Change, attempt int, err error) bool
	// Done is told each change completed, in order.
	Done func(ch couch.Change, out Outcome)
	// Retry runs one of the batch's writes until it succeeds or ctx ends
	// (the daemon retries while the server is unreachable). Nil: once.
	Retry func(ctx context.Context, what string, write func(context.Context) error) error
	// Grace bounds the attempt in hand once ctx is done: a change that has
	// started finishes after a stop request, within Grace (default 4 s).
	Grace time.Duration
	// Bound bounds one attempt while running (default 2 minutes).
	Bound time.Duration
	// Durable, when set, is told while the batch runs, at most every
	// DurableEvery, the seq up to which every change is completed and
	// written (the batch's writes so far are committed first): the caller
	// may checkpoint there, so that a crash in a long batch costs about
	// DurableEvery of work, not the whole batch. An error stops the batch.
	Durable      func(ctx context.Context, seq string) error
	DurableEvery time.Duration
	// Fence, when set, is asked right before each commit of the batch's
	// writes: an error (this instance is no longer the active one) stops
	// the batch with it, the writes uncommitted.
	Fence func() error
}

// BatchResult says how far a batch got.
type BatchResult struct {
	// Done is the seq of the last change completed with everything it did
	// written: the checkpoint may move there. "" when none.
	Done string
	// Stopped is true when ctx ended before every change completed.
	Stopped bool
	// Told is true when Durable was already told Done.
	Told bool
	// Wrote holds the ids of the main-db docs the batch wrote or deleted:
	// bodies of those docs read before the batch ended (a feed batch read
	// ahead) are stale.
	Wrote map[string]bool
}

// RunBatch processes changes in feed order as one batch and writes what
// they did: the batch lifecycle of the daemon's feed loop, of Process and of
// the tests. Each change is processed on its doc as it is when its turn
// comes (see ProcessIn); a failed change is handed to c.Failed; the writes
// held back are committed (with c.Retry), changes whose held-back writes
// failed are processed again one at a time, and only then is Done set.
// Design docs, info docs and deleted docs complete at once (Outcome.Ignored).
func (p *Engine) RunBatch(ctx context.Context, changes []couch.Change, c BatchControl) (BatchResult, error) {
	if p.Known != nil && c.Config != nil {
		p.Known.use(c.Config())
	}
	b := p.NewBatch(ctx, changes)
	res := BatchResult{Wrote: b.written}
	// A change whose held-back save fails when a later change commits the
	// batch (before a view query, a write to another doc) is processed
	// again right then, before that later change reads anything: one at a
	// time, its save came first.
	b.redoNow = func(ctx context.Context) error {
		ok, err := p.redoChanges(ctx, b, c)
		if err == nil && !ok {
			err = errStopping
		}
		return err
	}
	done, durable := "", ""
	lastDurable := time.Now()
	for _, ch := range changes {
		if ctx.Err() != nil {
			res.Stopped = true
			break
		}
		ok, retried, err := p.runChange(ctx, b, ch, c)
		if err != nil {
			return res, err
		}
		if !ok {
			res.Stopped = true // stopping before this change completed
			break
		}
		done = ch.Seq
		if retried {
			// The change waited (an outage, a failure): what was done before
			// it is written now, not a second later.
			lastDurable = time.Time{}
		}
		if c.Durable != nil && c.DurableEvery > 0 && time.Since(lastDurable) >= c.DurableEvery {
			ok, err := p.settle(ctx, b, c)
			if err != nil {
				return res, err
			}
			if !ok {
				res.Stopped = true
				return res, nil
			}
			if err := c.Durable(ctx, done); err != nil {
				return res, err
			}
			durable, lastDurable = done, time.Now()
		}
	}
	if done == "" {
		return res, nil
	}
	if done == durable {
		res.Done, res.Told = done, true // nothing completed since
		return res, nil
	}
	ok, err := p.settle(ctx, b, c)
	if err != nil {
		return res, err
	}
	if !ok {
		res.Stopped = true
		return res, nil // not checkpointed: processed again on restart
	}
	res.Done = done
	return res, nil
}

// settle writes what b holds back and processes again, one at a time, the
// changes whose held-back writes failed: afterwards every change completed
// so far is written. It returns false when stopping before that.
func (p *Engine) settle(ctx context.Context, b *Batch, c BatchControl) (bool, error) {
	// The changes handed back are processed here, after the whole flush,
	// not from inside it.
	redoNow := b.redoNow
	b.redoNow = nil
	defer func() { b.redoNow = redoNow }()
	if err := p.flushBatch(ctx, b, c); err != nil {
		return false, err
	}
	return p.redoChanges(ctx, b, c)
}

// errStopping fails the change in hand when the daemon stops while changes
// handed back by a commit are processed again.
var errStopping = errors.New("stopping before the changes to redo were processed")

// redoChanges processes the changes b handed back, one at a time, and
// writes them. Those not completed (the daemon stops, an error) stay in b's
// Redo list, so that the batch is never checkpointed past them. It returns
// false when stopping.
func (p *Engine) redoChanges(ctx context.Context, b *Batch, c BatchControl) (bool, error) {
	redo := b.Redo()
	if len(redo) == 0 {
		return true, nil
	}
	rb := p.NewBatch(ctx, redo)
	rb.OneByOne()
	defer func() {
		for id := range rb.written {
			b.written[id] = true
		}
	}()
	for i, ch := range redo {
		ok, _, err := p.runChange(ctx, rb, ch, c)
		if err != nil || !ok {
			b.redo = append(redo[i:], b.redo...)
			return ok, err
		}
		// Written one at a time: what b knows of the doc is stale.
		b.forget(ch.ID)
		b.written[ch.ID] = true
	}
	if err := p.flushBatch(ctx, rb, c); err != nil {
		b.redo = append(redo, b.redo...)
		return false, err
	}
	return true, nil
}

// runChange processes one change of a batch until it completes, is passed
// over, or the daemon stops (ok false); retried says that it was tried more
// than once (after a failure or an outage).
func (p *Engine) runChange(ctx context.Context, b *Batch, ch couch.Change, c BatchControl) (ok, retried bool, err error) {
	if Ignored(ch.ID) || ch.Deleted {
		// Deleted docs: their info docs go in background cleanup.
		if c.Done != nil {
			c.Done(ch, Outcome{Ignored: true})
		}
		return true, false, nil
	}
	grace, bound := c.limits()
	for attempt := 1; ; {
		// The change in hand finishes even when a stop arrives meanwhile,
		// within grace of the stop (a long expression, a stalled request
		// are cut there), within bound otherwise.
		pctx, done := graceful.Context(ctx, bound, grace)
		out, err := p.ProcessIn(pctx, b, c.Config(), ch)
		done()
		if err == nil {
			if c.Done != nil {
				c.Done(ch, out)
			}
			return true, retried, nil
		}
		if ctx.Err() != nil {
			p.Log.Warn().Str("doc_id", ch.ID).Err(err).Msg("Stopping before this change completed; it will be processed again on restart")
			return false, retried, nil
		}
		if c.Failed == nil {
			return false, retried, err
		}
		if !c.Failed(ctx, ch, attempt, err) {
			if ctx.Err() != nil {
				return false, retried, nil
			}
			return true, retried, nil
		}
		retried = true
		if !couch.Unreachable(err) {
			attempt++ // waiting for the server is not a failed attempt
		}
		ch.Doc = nil // re-read the doc on retry
	}
}

// flushBatch writes what b holds back: at once, then with c.Retry.
func (p *Engine) flushBatch(ctx context.Context, b *Batch, c BatchControl) error {
	grace, bound := c.limits()
	// Started, the write completes even when a stop arrives meanwhile
	// (within grace of it): the changes it holds are then checkpointed.
	fence := c.Fence
	if fence == nil {
		fence = func() error { return nil }
	}
	if err := fence(); err != nil {
		return err
	}
	pctx, done := graceful.Context(ctx, bound, grace)
	err := p.Flush(pctx, b)
	done()
	if err == nil {
		return nil
	}
	if c.Retry == nil {
		return err
	}
	return c.Retry(ctx, "write the batch", func(ctx context.Context) error {
		if err := fence(); err != nil {
			return err
		}
		return p.Flush(ctx, b)
	})
}

// limits are the control's grace and bound, defaulted.
func (c BatchControl) limits() (grace, bound time.Duration) {
	grace, bound = c.Grace, c.Bound
	if grace <= 0 {
		grace = 4 * time.Second
	}
	if bound <= 0 {
		bound = 2 * time.Minute
	}
	return grace, bound
}
