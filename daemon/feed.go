package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/transitions"
)

// stopGrace bounds finishing the change in hand after a stop request, so
// that the process exits within 5 s of SIGTERM.
const stopGrace = 4 * time.Second

// maxAttempts is how often a change that fails for a reason other than an
// unreachable server is tried before it is logged and passed over.
const maxAttempts = 5

// follow is the processing loop: longpoll batches of `_changes` from the
// checkpoint, each change through the pipeline, the checkpoint written after
// each finished change. It pauses while no valid config is loaded.
func (d *Daemon) follow(ctx context.Context) {
	log := d.log.With().Str("component", "feed").Logger()
	main := couch.NewIndexedDB(d.client.Main)
	proc := &transitions.Processor{
		Main: main, Sentinel: d.client.Sentinel, Log: d.log.With().Str("component", "transitions").Logger(),
		Location: d.opts.Location, JS: jsexpr.NewSandbox(jsexpr.Options{Timeout: d.opts.ExprTimeout}), Dups: d.dups, Secrets: d.secrets, Observer: d.metrics,
		PhoneOwner: d.opts.PhoneOwner, Outbox: d.outbox,
	}
	cp := couch.NewCheckpoint(d.client.Sentinel)
	var indexOnce sync.Once
	var indexing sync.WaitGroup
	defer indexing.Wait()
	for ctx.Err() == nil {
		cfg := d.cfg.Load()
		if cfg == nil || !cfg.Valid() {
			d.markCaughtUp()
			// Paused on purpose: still alive for systemd's watchdog.
			d.watchdogPing()
			select {
			case <-ctx.Done():
				return
			case <-d.cfgChanged:
			case <-time.After(10 * time.Second):
			}
			continue
		}
		var since string
		if err := d.retry(ctx, "read the checkpoint", func(ctx context.Context) error {
			s, err := cp.Read(ctx, d.client.Main)
			since = s
			return err
		}); err != nil {
			return
		}
		// The lookup index is built beside the feed (once): lookups wait for
		// it, changes that need none go ahead.
		indexOnce.Do(func() {
			indexing.Go(func() { d.buildIndex(ctx, log, main) })
		})
		log.Info().Str("seq", since).Msg("Following changes")
		d.followFrom(ctx, log, proc, main, cp, since)
	}
}

// buildIndex builds the lookup index, retrying while the server fails.
func (d *Daemon) buildIndex(ctx context.Context, log zerolog.Logger, main *couch.IndexedDB) {
	started := time.Now()
	lastLog := started
	main.Index.Progress = func(scanned int) {
		// A large database takes a while: say how far the scan is.
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			log.Info().Int("docs", scanned).Msg("Building the lookup index")
		}
	}
	if err := d.retry(ctx, "build the lookup index", main.Bootstrap); err != nil {
		return
	}
	log.Info().Dur("took", time.Since(started)).Msg("Lookup index built (contacts, shortcodes)")
}

// followFrom reads batches until ctx ends or the config becomes invalid.
func (d *Daemon) followFrom(ctx context.Context, log zerolog.Logger, proc *transitions.Processor, main *couch.IndexedDB, cp *couch.Checkpoint, since string) {
	wait := time.Second
	prog := newProgress(log)
	for ctx.Err() == nil {
		if cfg := d.cfg.Load(); cfg == nil || !cfg.Valid() {
			log.Warn().Msg("Transitions are disabled: the feed is paused, the checkpoint is kept")
			return
		}
		b, err := d.client.Main.Changes(ctx, couch.FeedOptions{
			Since: since, Limit: d.opts.BatchSize, IncludeDocs: true, Timeout: d.opts.PollTimeout})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error().Err(err).Dur("retry_in", wait).Msg("Changes feed failed; reconnecting from the checkpoint")
			if !sleep(ctx, wait) {
				return
			}
			wait = min(wait*2, d.opts.MaxBackoff)
			continue
		}
		wait = time.Second
		// The index sees every doc of the batch before any is processed, as a
		// view queried then would.
		for _, ch := range b.Changes {
			switch {
			case ch.Deleted:
				main.Index.Remove(ch.ID)
			case ch.Doc != nil && !transitions.Ignored(ch.ID):
				main.Observe(ch.Doc)
			}
		}
		pb, done, stopped := d.processBatch(ctx, log, proc, b, prog)
		if done != "" {
			// The info docs of the batch are written before its checkpoint.
			if err := d.flushAndCheckpoint(ctx, log, proc, pb, cp, done); err != nil {
				return
			}
			since = done
		}
		// Caught up: the batch was not full (PouchDB Server sends no
		// `pending`, which then reads as 0: it cannot be trusted).
		if !stopped && len(b.Changes) < d.opts.BatchSize {
			d.markCaughtUp()
		}
		if stopped {
			return
		}
		if len(b.Changes) == 0 {
			d.metrics.backlog.Set(0)
			d.health.progressed(0)
			d.watchdogPing()
			if b.LastSeq != "" && b.LastSeq != since {
				since = b.LastSeq
			}
		}
		prog.idle(len(b.Changes) == 0)
	}
}

// processBatch runs the changes of one feed batch in order. It returns the
// pipeline batch, the seq of the last completed change ("" when none) and
// whether the daemon is stopping.
func (d *Daemon) processBatch(ctx context.Context, log zerolog.Logger, proc *transitions.Processor, b couch.Batch, prog *progress) (*transitions.Batch, string, bool) {
	pb := proc.NewBatch(ctx, b.Changes)
	done := ""
	for i, ch := range b.Changes {
		if ctx.Err() != nil {
			return pb, done, true
		}
		if !d.handle(ctx, log, proc, pb, ch) {
			return pb, done, true // stopping before this change completed: not checkpointed
		}
		done = ch.Seq
		d.processed.Add(1)
		left := b.Pending + int64(len(b.Changes)-i-1)
		prog.tick(left)
		d.metrics.backlog.Set(float64(max(left, 0)))
		d.health.progressed(left)
		d.watchdogPing()
	}
	return pb, done, false
}

// flushAndCheckpoint writes the batch's pending info docs, then the checkpoint.
// Changes whose held-back writes failed (Redo) are processed again one at a
// time before the checkpoint.
func (d *Daemon) flushAndCheckpoint(ctx context.Context, log zerolog.Logger, proc *transitions.Processor, pb *transitions.Batch, cp *couch.Checkpoint, seq string) error {
	if err := d.flush(ctx, proc, pb); err != nil {
		return err
	}
	if redo := pb.Redo(); len(redo) > 0 {
		rb := proc.NewBatch(ctx, redo)
		rb.OneByOne()
		for _, ch := range redo {
			if !d.handle(ctx, log, proc, rb, ch) {
				return ctx.Err()
			}
		}
		if err := d.flush(ctx, proc, rb); err != nil {
			return err
		}
	}
	if err := d.syncOutbound(ctx); err != nil {
		return err
	}
	return d.writeCheckpoint(ctx, cp, seq)
}

// flush writes what a batch holds back, retrying while the server fails.
func (d *Daemon) flush(ctx context.Context, proc *transitions.Processor, pb *transitions.Batch) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
	err := proc.Flush(pctx, pb)
	cancel()
	if err != nil {
		return d.retry(ctx, "write the batch", func(ctx context.Context) error { return proc.Flush(ctx, pb) })
	}
	return nil
}

// writeCheckpoint stores seq, retrying on server errors; it only gives up
// when the daemon stops (the change is then processed again on restart,
// which the already-ran rules make harmless).
func (d *Daemon) writeCheckpoint(ctx context.Context, cp *couch.Checkpoint, seq string) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
	defer cancel()
	err := cp.Write(pctx, seq)
	if err == nil {
		d.metrics.checkpoint.SetToCurrentTime()
		return nil
	}
	return d.retry(ctx, "write the checkpoint", func(ctx context.Context) error { return cp.Write(ctx, seq) })
}

// handle processes one change. It returns false only when the daemon is
// stopping before the change was completed.
func (d *Daemon) handle(ctx context.Context, log zerolog.Logger, proc *transitions.Processor, b *transitions.Batch, ch couch.Change) bool {
	if transitions.Ignored(ch.ID) || ch.Deleted {
		// Deleted docs: their info docs go in background cleanup.
		d.metrics.changes.WithLabelValues("ignored").Inc()
		return true
	}
	wait := 500 * time.Millisecond
	attempts := 0
	for {
		cfg := d.cfg.Load()
		// The change in hand finishes even when a stop arrives meanwhile.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGraceOr(ctx))
		out, err := proc.ProcessIn(pctx, b, cfg, ch)
		cancel()
		if err == nil {
			ev := log.Debug()
			if out.Changed {
				ev = log.Info()
			}
			ev.Str("doc_id", ch.ID).Str("seq", ch.Seq).Strs("transitions", out.Ran).Str("skipped", out.Skipped).Msg("Processed")
			outcome := "unchanged"
			switch {
			case out.Skipped != "":
				outcome = "skipped"
			case out.Changed:
				outcome = "changed"
			}
			d.metrics.changes.WithLabelValues(outcome).Inc()
			return true
		}
		attempts++
		var cerr *couch.Error
		temporary := errors.As(err, &cerr) && cerr.Temporary() || errors.Is(err, context.DeadlineExceeded)
		if ctx.Err() != nil {
			log.Warn().Str("doc_id", ch.ID).Err(err).Msg("Stopping before this change completed; it will be processed again on restart")
			return false
		}
		if !temporary && attempts >= maxAttempts {
			log.Error().Str("doc_id", ch.ID).Str("seq", ch.Seq).Err(err).Int("attempts", attempts).
				Msg("Giving up on this change; it is processed again when the doc changes")
			d.metrics.changes.WithLabelValues("failed").Inc()
			return true
		}
		log.Warn().Str("doc_id", ch.ID).Err(err).Int("attempt", attempts).Dur("retry_in", wait).Msg("Change failed; retrying")
		if !sleep(ctx, wait) {
			return false
		}
		wait = min(wait*2, d.opts.MaxBackoff)
		ch.Doc = nil // re-read the doc on retry
	}
}

// stopGraceOr is the processing bound: generous while running, stopGrace
// once a stop is requested.
func stopGraceOr(ctx context.Context) time.Duration {
	if ctx.Err() != nil {
		return stopGrace
	}
	return 2 * time.Minute
}

// progress logs catch-up progress every 10 seconds.
type progress struct {
	log       zerolog.Logger
	start     time.Time
	last      time.Time
	count     int64
	lastCount int64
	pending   int64
}

func newProgress(log zerolog.Logger) *progress {
	now := time.Now()
	return &progress{log: log, start: now, last: now}
}

func (p *progress) tick(pending int64) {
	p.count++
	p.pending = pending
	if time.Since(p.last) >= 10*time.Second {
		p.report()
	}
}

func (p *progress) idle(empty bool) {
	if empty && p.count > p.lastCount {
		p.report()
	}
}

func (p *progress) report() {
	el := time.Since(p.last).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.count-p.lastCount) / el
	}
	p.log.Info().Int64("processed", p.count).Int64("backlog", max(p.pending, 0)).Float64("rate_per_s", rate).Msg("Progress")
	p.last = time.Now()
	p.lastCount = p.count
}
