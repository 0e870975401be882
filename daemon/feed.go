package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/internal/graceful"
	"sentinel-go/jsexpr"
	"sentinel-go/pipeline"
)

// stopGrace bounds finishing the change in hand after a stop request, so
// that the process exits within 5 s of SIGTERM.
const stopGrace = 3 * time.Second

// maxAttempts is how often a change that fails for a reason other than an
// unreachable server is tried before it is logged and passed over.
const maxAttempts = 5

// follow is the processing loop: longpoll batches of `_changes` from the
// checkpoint, each change through the pipeline, the checkpoint written after
// each finished change. It pauses while no valid config is loaded.
func (d *Daemon) follow(ctx context.Context) {
	log := d.log.With().Str("component", "feed").Logger()
	main := couch.NewIndexedDB(d.client.Main)
	proc := &pipeline.Engine{
		Main: main, Sentinel: d.client.Sentinel, Log: d.log.With().Str("component", "transitions").Logger(),
		Location: d.opts.Location, JS: jsexpr.NewSandbox(jsexpr.Options{Timeout: d.opts.ExprTimeout}), Dups: d.dups, Secrets: d.secrets, Observer: d.metrics,
		PhoneOwner: d.opts.PhoneOwner, Outbox: d.outbox, Users: d.client.Users(), Clock: d.opts.Clock,
		// A feed that rewinds (a cluster node lost) brings done changes
		// again: their revisions are passed over without a read.
		Known: pipeline.NewKnown(0),
	}
	cp := couch.NewCheckpoint(d.client.Sentinel)
	if d.lease != nil {
		cp.Token = d.lease.Token()
	}
	known := newKnownStore(d.client.Sentinel, log)
	var knownOnce sync.Once
	defer func() {
		// What was found done serves the next start (bounded: the stop
		// must end within 5 s, after the last batch's grace).
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		known.save(sctx, proc.Known)
		cancel()
	}()
	var indexOnce sync.Once
	var indexing sync.WaitGroup
	defer indexing.Wait()
	for ctx.Err() == nil {
		if d.Fence() != nil {
			// The lease is lost, and ctx ends with this term, or its
			// renewal is just late: either way, nothing is read meanwhile.
			sleep(ctx, time.Second)
			continue
		}
		cfg := d.cfg.Load()
		if cfg == nil || !cfg.Valid() {
			d.markCaughtUp()
			// Paused on purpose: still alive for systemd's watchdog; the
			// backlog metric keeps telling how much waits.
			d.watchdogPing()
			d.measureBacklog(ctx, cp)
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
		if cp.Token > 0 {
			// The new holder's token goes on the checkpoint before any
			// work: from now on, a write of the previous holder's is refused.
			if err := d.writeCheckpoint(ctx, cp, since); err != nil {
				// Refused: a later holder wrote it, and this term is ending.
				sleep(ctx, time.Second)
				continue
			}
		}
		// The lookup index is built beside the feed (once): lookups wait for
		// it, changes that need none go ahead.
		indexOnce.Do(func() {
			d.prepareIndex(ctx, log, main)
			indexing.Go(func() { d.buildIndex(ctx, log, main) })
		})
		knownOnce.Do(func() { known.load(ctx, proc.Known, cfg) })
		log.Info().Str("seq", since).Msg("Following changes")
		d.followFrom(ctx, log, proc, main, cp, known, since)
	}
}

// measureBacklog sets the backlog metric from the feed's `pending` after
// the checkpoint, while the feed is held (CouchDB says it; PouchDB Server
// does not, and the metric then keeps its last value).
func (d *Daemon) measureBacklog(ctx context.Context, cp *couch.Checkpoint) {
	since, err := cp.Read(ctx, d.client.Main)
	if err != nil {
		return
	}
	b, err := d.client.Main.Changes(ctx, couch.FeedOptions{Since: since, Limit: 1, Normal: true})
	if err != nil || b.Pending < 0 {
		return
	}
	d.metrics.backlog.Set(float64(b.Pending + int64(len(b.Changes))))
}

// prepareIndex loads the lookup index's snapshot (the build then only
// catches up; without one it scans, see couch.IndexedDB.Prepare).
func (d *Daemon) prepareIndex(ctx context.Context, log zerolog.Logger, main *couch.IndexedDB) {
	loaded, unusable, err := main.Prepare(ctx, d.client.Sentinel)
	if err != nil && d.awaitServer(ctx, err) == nil {
		loaded, unusable, err = main.Prepare(ctx, d.client.Sentinel) // the server is back
	}
	switch {
	case loaded:
		log.Info().Msg("Lookup index snapshot loaded; catching up from its sequence")
	case err != nil:
		log.Warn().Err(err).Msg("Could not read the lookup index snapshot; scanning the database")
	case unusable != nil:
		log.Warn().Err(unusable).Msg("Lookup index snapshot unusable; scanning the database")
	}
}

// buildIndex builds the lookup index, retrying while the server fails,
// then keeps its snapshot.
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
	log.Info().Int64("took_ms", time.Since(started).Milliseconds()).Msg("Lookup index built (contacts, shortcodes)")
	main.KeepSnapshots(ctx, d.client.Sentinel, 2*time.Second, func(err error) {
		log.Warn().Err(err).Msg("Could not save the lookup index snapshot; trying again later")
	})
}

// followFrom reads batches until ctx ends or the config becomes invalid.
func (d *Daemon) followFrom(ctx context.Context, log zerolog.Logger, proc *pipeline.Engine, main *couch.IndexedDB, cp *couch.Checkpoint, known *knownStore, since string) {
	failures := 0
	prog := newProgress(log)
	ahead := &readAhead{}
	defer ahead.drop()
	var stale map[string]bool // ids the last batch wrote: their read-ahead bodies are old
	for ctx.Err() == nil {
		if cfg := d.cfg.Load(); cfg == nil || !cfg.Valid() {
			log.Warn().Msg("Transitions are disabled: the feed is paused, the checkpoint is kept")
			return
		}
		opts := couch.FeedOptions{Since: since, Limit: d.opts.BatchSize, IncludeDocs: true, Timeout: d.opts.PollTimeout}
		b, early, err := ahead.take(since)
		if !early {
			b, err = d.client.Main.Changes(ctx, opts)
		}
		if early && err == nil {
			for i := range b.Changes {
				if stale[b.Changes[i].ID] {
					b.Changes[i].Doc = nil // read again when its turn comes
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if d.awaitServer(ctx, err) == nil {
				continue // an outage, over: read on from where the feed was
			}
			failures++
			wait := jitter(changeBackoff(failures, d.opts.MaxBackoff))
			log.Error().Err(err).Int64("retry_in_ms", wait.Milliseconds()).Msg("Changes feed failed; reconnecting from the checkpoint")
			d.watchdogPing()
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		failures = 0
		// The index sees every doc of the batch before any is processed, as a
		// view queried then would; it then covers the batch (its snapshot's
		// sequence).
		for _, ch := range b.Changes {
			switch {
			case ch.Deleted && !(early && stale[ch.ID]):
				main.Index.Remove(ch.ID)
			case ch.Doc != nil && !pipeline.Ignored(ch.ID):
				main.Observe(ch.Doc)
			}
		}
		if n := len(b.Changes); n > 0 {
			main.Index.SetSeq(b.Changes[n-1].Seq)
		}
		// While this batch is processed, the next one is read: a backlog
		// does not wait for the feed between batches.
		if len(b.Changes) == d.opts.BatchSize {
			next := opts
			next.Since = b.Changes[len(b.Changes)-1].Seq // where the checkpoint goes
			ahead.start(ctx, d.client.Main, next)
		}
		res, err := proc.RunBatch(ctx, b.Changes, d.batchControl(ctx, log, b, prog, cp))
		if err != nil {
			return
		}
		stale = res.Wrote
		stopped := res.Stopped
		if res.Done != "" && !res.Told {
			// Queued outbound pushes are made durable before the checkpoint.
			if err := d.syncOutbound(ctx); err != nil {
				return
			}
			if err := d.writeCheckpoint(ctx, cp, res.Done); err != nil {
				return
			}
		}
		if res.Done != "" {
			since = res.Done
		}
		known.saveIfDue(ctx, proc.Known)
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

// batchControl is how the feed loop steers a batch: the config in force at
// each attempt, backoff and give-up rules for failed changes, metrics,
// progress and watchdog pings per completed change, and retries of the
// batch's writes while the server fails.
func (d *Daemon) batchControl(ctx context.Context, log zerolog.Logger, b couch.Batch, prog *progress, cp *couch.Checkpoint) pipeline.BatchControl {
	left := b.Pending + int64(len(b.Changes))
	return pipeline.BatchControl{
		Config: d.cfg.Load,
		Grace:  stopGrace,
		Done: func(ch couch.Change, out pipeline.Outcome) {
			outcome := "unchanged"
			switch {
			case out.Ignored:
				outcome = "ignored"
			case out.Skipped != "":
				outcome = "skipped"
			case out.Changed:
				outcome = "changed"
			}
			d.metrics.changes.WithLabelValues(outcome).Inc()
			if !out.Ignored {
				ev := log.Debug()
				if out.Changed {
					ev = log.Info()
				}
				ev.Str("doc_id", ch.ID).Str("seq", ch.Seq).Strs("transitions", out.Ran).Str("skipped", out.Skipped).Msg("Processed")
			}
			d.processed.Add(1)
			left--
			prog.tick(left)
			d.metrics.backlog.Set(float64(max(left, 0)))
			d.health.progressed(left)
			d.watchdogPing()
		},
		Failed: func(ctx context.Context, ch couch.Change, attempt int, err error) bool {
			if d.awaitServer(ctx, err) == nil {
				return true // waiting is not failing: the attempt is not counted
			}
			if ctx.Err() != nil {
				return false
			}
			var cerr *couch.Error
			temporary := errors.As(err, &cerr) && cerr.Temporary() || errors.Is(err, context.DeadlineExceeded)
			if !temporary && attempt >= maxAttempts {
				log.Error().Str("doc_id", ch.ID).Str("seq", ch.Seq).Err(err).Int("attempts", attempt).
					Msg("Giving up on this change; it is processed again when the doc changes")
				d.metrics.changes.WithLabelValues("failed").Inc()
				return false
			}
			wait := changeBackoff(attempt, d.opts.MaxBackoff)
			log.Warn().Str("doc_id", ch.ID).Err(err).Int("attempt", attempt).Int64("retry_in_ms", wait.Milliseconds()).Msg("Change failed; retrying")
			d.watchdogPing()
			return sleep(ctx, wait)
		},
		Retry: d.retry,
		Fence: d.Fence,
		// A long batch is made durable and checkpointed every second: a
		// crash then costs about a second of work, not the whole batch.
		Durable: func(ctx context.Context, seq string) error {
			if err := d.syncOutbound(ctx); err != nil {
				return err
			}
			return d.writeCheckpoint(ctx, cp, seq)
		},
		DurableEvery: time.Second,
	}
}

// changeBackoff is the wait after a change's attempt failed: 500 ms after
// the first, then doubling, at most maxBackoff (which does not bound the
// first).
func changeBackoff(attempt int, maxBackoff time.Duration) time.Duration {
	wait := 500 * time.Millisecond
	for i := 1; i < attempt; i++ {
		if wait = min(wait*2, maxBackoff); wait == maxBackoff {
			break
		}
	}
	return wait
}

// writeCheckpoint stores seq, retrying on server errors; it only gives up
// when the daemon stops (the change is then processed again on restart,
// which the already-ran rules make harmless).
func (d *Daemon) writeCheckpoint(ctx context.Context, cp *couch.Checkpoint, seq string) error {
	if err := d.Fence(); err != nil {
		return err
	}
	pctx, done := graceful.Context(ctx, couch.DefaultRequestTimeout, stopGrace)
	defer done()
	err := cp.Write(pctx, seq)
	if err == nil {
		d.metrics.checkpoint.SetToCurrentTime()
		return nil
	}
	return d.retry(ctx, "write the checkpoint", func(ctx context.Context) error {
		if err := d.Fence(); err != nil {
			return err
		}
		return cp.Write(ctx, seq)
	})
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

// readAhead is the next feed batch, read while the current one is
// processed. Its request runs under its own cancel, and drop waits for it:
// no read outlives the feed loop.
type readAhead struct {
	since  string
	done   chan struct{}
	cancel context.CancelFunc
	batch  couch.Batch
	err    error
}

// start reads the batch after opts.Since in the background.
func (r *readAhead) start(ctx context.Context, db *couch.DB, opts couch.FeedOptions) {
	r.drop()
	rctx, cancel := context.WithCancel(ctx)
	r.since, r.done, r.cancel = opts.Since, make(chan struct{}), cancel
	go func() {
		defer close(r.done)
		r.batch, r.err = db.Changes(rctx, opts)
	}()
}

// take returns the batch read ahead from since (ok false when there is
// none: another since, or none started).
func (r *readAhead) take(since string) (b couch.Batch, ok bool, err error) {
	if r.done == nil {
		return couch.Batch{}, false, nil
	}
	if r.since != since {
		r.drop()
		return couch.Batch{}, false, nil
	}
	<-r.done
	b, err = r.batch, r.err
	r.drop() // over: releases its context
	return b, true, err
}

// drop cancels the read in flight, if any, and waits for it to end.
func (r *readAhead) drop() {
	if r.done == nil {
		return
	}
	r.cancel()
	<-r.done
	r.done, r.cancel = nil, nil
}
