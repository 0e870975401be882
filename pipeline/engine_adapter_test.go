package pipeline_test

// This file is the only one of the differential and fault tests that calls
// the pipeline engine: both strategies go through Engine.RunBatch, the
// lifecycle the daemon's feed loop uses.

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/memdb"
	"sentinel-go/pipeline"
	"sentinel-go/transitions"
)

// engine is one daemon's pipeline over a main and a sentinel memdb.
type engine struct {
	main, sentinel *memdb.DB
	cfg            *transitions.Config
	p              *pipeline.Engine
}

// newEngine loads settings and makes the pipeline; the clock is fixed, and
// each attempt at a change draws from a random source seeded from seed and
// the change, so that two engines draw the same shortcodes and uuids for it.
func newEngine(main, sentinel *memdb.DB, settings map[string]any, translations config.Translations, now time.Time, seed uint64) (*engine, error) {
	cfg := transitions.Load(settings, translations)
	if !cfg.Valid() {
		return nil, fmt.Errorf("settings: %s", cfg.ErrorSummary())
	}
	p := &pipeline.Engine{Main: main, Sentinel: sentinel, Log: zerolog.Nop(), Location: time.UTC,
		Clock: func() time.Time { return now }, JS: jsexpr.NewSandbox(jsexpr.Options{}),
		RandFor: func(ch couch.Change) io.Reader { return newSeededRand(changeSeed(seed, ch)) }}
	return &engine{main: main, sentinel: sentinel, cfg: cfg, p: p}, nil
}

// hooks lets a test act around each change of a batch.
type hooks struct {
	// after is called after the i-th change of the batch (first round,
	// before the batch's writes are committed): another writer meanwhile.
	after func(i int)
}

// maxAttempts is how often a failing change is tried, as the daemon does
// for errors that are not temporary (without its sleeps).
const maxAttempts = 5

// batchResult is what running a batch reported.
type batchResult struct {
	// errs holds every error returned for a change (each attempt) or a flush.
	errs []error
	// gaveUp lists the changes that still failed after maxAttempts.
	gaveUp []string
	// flushed is false when the batch's writes kept failing: no checkpoint.
	flushed bool
}

func (r *batchResult) failed() bool { return len(r.errs) > 0 }

// run is RunBatch with the daemon's policy (a failed change tried again,
// its doc read anew, at most maxAttempts times; the batch's writes retried
// as often) and the test's hooks.
func (e *engine) run(ctx context.Context, changes []couch.Change, h hooks) batchResult {
	var res batchResult
	n := 0 // changes of the first round completed or passed over
	next := func() {
		if h.after != nil && n < len(changes) {
			h.after(n)
		}
		n++
	}
	out, err := e.p.RunBatch(ctx, changes, pipeline.BatchControl{
		Config: func() *transitions.Config { return e.cfg },
		Done:   func(couch.Change, pipeline.Outcome) { next() },
		Failed: func(_ context.Context, ch couch.Change, attempt int, err error) bool {
			res.errs = append(res.errs, fmt.Errorf("%s: %w", ch.ID, err))
			if attempt >= maxAttempts {
				res.gaveUp = append(res.gaveUp, ch.ID)
				next()
				return false
			}
			return true
		},
		Retry: func(ctx context.Context, _ string, write func(context.Context) error) error {
			var err error
			for attempt := 1; attempt <= maxAttempts; attempt++ {
				if err = write(ctx); err == nil {
					return nil
				}
				res.errs = append(res.errs, fmt.Errorf("flush: %w", err))
			}
			return err
		},
	})
	if err != nil {
		res.errs = append(res.errs, err)
		return res
	}
	res.flushed = out.Done != "" || len(changes) == 0
	return res
}

// runGrouped processes one feed batch as the daemon's feed loop does, group
// commit on (the main db must be Deferring): every doc of the batch is
// observed by the lookup index first, then RunBatch.
func (e *engine) runGrouped(ctx context.Context, changes []couch.Change, h hooks) batchResult {
	for _, ch := range changes {
		switch {
		case ch.Deleted:
			e.main.Observe(couch.Doc{"_id": ch.ID, "_deleted": true})
		case ch.Doc != nil && !pipeline.Ignored(ch.ID):
			e.main.Observe(ch.Doc)
		}
	}
	return e.run(ctx, changes, h)
}

// runOneAtATime processes the same changes each on its own (a batch of one,
// group commit off: the main db must not report Indexed()), the doc read
// when its turn comes. The lookup index, when the db keeps one, sees the
// batch's docs first, as in runGrouped.
func (e *engine) runOneAtATime(ctx context.Context, changes []couch.Change, h hooks) batchResult {
	var res batchResult
	for _, ch := range changes {
		if d := e.main.Peek(ch.ID); d != nil && !pipeline.Ignored(ch.ID) {
			e.main.Observe(d)
		} else if d == nil {
			e.main.Observe(couch.Doc{"_id": ch.ID, "_deleted": true})
		}
	}
	res.flushed = true
	for i, ch := range changes {
		ch.Doc = nil
		r := e.run(ctx, []couch.Change{ch}, hooks{})
		res.errs = append(res.errs, r.errs...)
		res.gaveUp = append(res.gaveUp, r.gaveUp...)
		res.flushed = res.flushed && r.flushed
		if h.after != nil {
			h.after(i)
		}
	}
	return res
}
