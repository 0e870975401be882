package transitions_test

// This file is the only one of the differential and fault tests that calls
// the pipeline engine (Processor, Batch). When the engine moves to its own
// package with a new API, only this file changes.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/memdb"
	"sentinel-go/transitions"
)

// engine is one daemon's pipeline over a main and a sentinel memdb.
type engine struct {
	main, sentinel *memdb.DB
	cfg            *transitions.Config
	p              *transitions.Processor
}

// newEngine loads settings and makes the pipeline; the clock is fixed.
func newEngine(main, sentinel *memdb.DB, settings map[string]any, translations config.Translations, now time.Time) (*engine, error) {
	cfg := transitions.Load(settings, translations)
	if !cfg.Valid() {
		return nil, fmt.Errorf("settings: %s", cfg.ErrorSummary())
	}
	p := &transitions.Processor{Main: main, Sentinel: sentinel, Log: zerolog.Nop(), Location: time.UTC,
		Clock: func() time.Time { return now }, JS: jsexpr.NewSandbox(jsexpr.Options{})}
	return &engine{main: main, sentinel: sentinel, cfg: cfg, p: p}, nil
}

// hooks lets a test act around each change of a batch.
type hooks struct {
	// before is called before each attempt at a change (e.g. to seed the
	// random source from the change, so that both strategies draw the same
	// shortcodes and message uuids for it).
	before func(ch couch.Change)
	// after is called after the i-th change of the batch (first attempt
	// round, before the batch is flushed): another writer acting meanwhile.
	after func(i int)
}

// maxAttempts is how often a failing change is tried, as the daemon's
// handle() does for errors that are not temporary (without its sleeps).
const maxAttempts = 5

// batchResult is what running a batch reported.
type batchResult struct {
	// errs holds every error returned for a change (each attempt) or a flush.
	errs []error
	// gaveUp lists the changes that still failed after maxAttempts.
	gaveUp []string
	// flushed is false when Flush kept failing: no checkpoint.
	flushed bool
}

func (r *batchResult) failed() bool { return len(r.errs) > 0 }

// runGrouped processes one feed batch as the daemon's feed loop does, group
// commit on (the main db must be Deferring): every doc of the batch is
// observed by the lookup index, then each change goes through ProcessIn in
// one Batch (a failed one retried with its doc read again), then Flush, then
// the changes handed back by Redo are processed one at a time.
func (e *engine) runGrouped(ctx context.Context, changes []couch.Change, h hooks) batchResult {
	var res batchResult
	for _, ch := range changes {
		switch {
		case ch.Deleted:
			e.main.Observe(couch.Doc{"_id": ch.ID, "_deleted": true})
		case ch.Doc != nil && !transitions.Ignored(ch.ID):
			e.main.Observe(ch.Doc)
		}
	}
	b := e.p.NewBatch(ctx, changes)
	for i, ch := range changes {
		e.handle(ctx, b, ch, h, &res)
		if h.after != nil {
			h.after(i)
		}
	}
	if !e.flush(ctx, b, &res) {
		return res
	}
	if redo := b.Redo(); len(redo) > 0 {
		rb := e.p.NewBatch(ctx, redo)
		rb.OneByOne()
		for _, ch := range redo {
			e.handle(ctx, rb, ch, h, &res)
		}
		if !e.flush(ctx, rb, &res) {
			return res
		}
	}
	res.flushed = true
	return res
}

// handle is the daemon's handle(): ProcessIn until it succeeds, the doc read
// again before each retry, at most maxAttempts times.
func (e *engine) handle(ctx context.Context, b *transitions.Batch, ch couch.Change, h hooks, res *batchResult) {
	if transitions.Ignored(ch.ID) || ch.Deleted {
		return
	}
	for attempt := 1; ; attempt++ {
		if h.before != nil {
			h.before(ch)
		}
		_, err := e.p.ProcessIn(ctx, b, e.cfg, ch)
		if err == nil {
			return
		}
		res.errs = append(res.errs, fmt.Errorf("%s: %w", ch.ID, err))
		if attempt >= maxAttempts {
			res.gaveUp = append(res.gaveUp, ch.ID)
			return
		}
		ch.Doc = nil
	}
}

func (e *engine) flush(ctx context.Context, b *transitions.Batch, res *batchResult) bool {
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err := e.p.Flush(ctx, b)
		if err == nil {
			return true
		}
		res.errs = append(res.errs, fmt.Errorf("flush: %w", err))
	}
	return false
}

// runOneAtATime processes the same changes each on its own (Process, a
// batch of one, group commit off: the main db must not report Indexed()),
// the doc read when its turn comes. A doc deleted meanwhile is skipped (its
// deletion is a later change of the feed). The lookup index, when the db
// keeps one, sees the batch's docs first, as in runGrouped.
func (e *engine) runOneAtATime(ctx context.Context, changes []couch.Change, h hooks) batchResult {
	var res batchResult
	for _, ch := range changes {
		if d := e.main.Peek(ch.ID); d != nil && !transitions.Ignored(ch.ID) {
			e.main.Observe(d)
		} else if d == nil {
			e.main.Observe(couch.Doc{"_id": ch.ID, "_deleted": true})
		}
	}
	for i, ch := range changes {
		if transitions.Ignored(ch.ID) || ch.Deleted {
			continue
		}
		ch.Doc = nil
		for attempt := 1; ; attempt++ {
			if h.before != nil {
				h.before(ch)
			}
			_, err := e.p.Process(ctx, e.cfg, ch)
			if err == nil || attempt == 1 && errors.Is(err, couch.ErrNotFound) && e.main.Peek(ch.ID) == nil {
				break
			}
			res.errs = append(res.errs, fmt.Errorf("%s: %w", ch.ID, err))
			if attempt >= maxAttempts {
				res.gaveUp = append(res.gaveUp, ch.ID)
				break
			}
		}
		if h.after != nil {
			h.after(i)
		}
	}
	res.flushed = true
	return res
}
