// Package pipeline is the engine that runs the transitions on the changes of
// the feed: one batch lifecycle (RunBatch: each change on its doc as it is
// when its turn comes, the enabled transitions in reference order with the
// revision rule, one save per changed doc, info docs with their journal,
// group commit of the batch's writes, redo of failed ones one at a time),
// the store wrappers that decide "retry this change" from any failed
// database call, and Explain, which runs the same per-transition step on a
// dry-run store. The transitions themselves live in package transitions
// behind the Transition interface; the engine knows none of them by name.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/infodoc"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/outbound"
	"sentinel-go/transitions"
)

// Doc is a JSON document.
type Doc = transitions.Doc

// Engine runs the pipeline on one change at a time. It is not safe for
// concurrent use (it owns a JS sandbox); make one per worker.
type Engine struct {
	Main     transitions.Store
	Sentinel transitions.InfoStore
	Log      zerolog.Logger
	Location *time.Location
	// Clock returns the wall time; nil means time.Now.
	Clock func() time.Time
	JS    *jsexpr.Sandbox
	// Retries bounds re-runs after a 409 on the doc save (default 5).
	Retries int
	// Dups counts identical outgoing messages; nil makes one on first use.
	Dups *messages.Duplicates
	// Secrets holds the credentials of outbound pushes.
	Secrets outbound.SecretStore
	// Observer, when set, is told about each transition run and each new
	// outgoing message (metrics).
	Observer Observer
	// PhoneOwner picks the contact a shared phone number is attributed to.
	PhoneOwner transitions.PhoneOwner
	// Outbox queues outbound pushes (nil: sent inline).
	Outbox transitions.Outbox
	// Rand is the source of random bytes of shortcodes and message uuids;
	// nil means crypto/rand (tests give a seeded one).
	Rand io.Reader
	// RandFor, when set, gives each attempt at a change a source of its own
	// instead of Rand (tests seed it from the change, so that two runs draw
	// the same codes even when a change is processed in the middle of
	// another one).
	RandFor func(ch couch.Change) io.Reader
	// Users is the server's `_users` database (create_user_for_contacts).
	Users transitions.UserStore
	// Known, when set, remembers the revisions found done, so that they are
	// passed over without a read when they come again (see Known).
	Known *Known

	recent recentWrites // info docs of the last group commits' writes
}

// Observer receives what the pipeline did, for metrics.
type Observer interface {
	ObserveTransition(name string, took time.Duration, failed bool)
	ObserveMessage(state string)
}

// Outcome says what processing a change did.
type Outcome struct {
	// Changed is true when the doc was saved.
	Changed bool
	// Ran lists the transitions that changed the doc.
	Ran []string
	// Skipped gives the reason when the change was deliberately not processed.
	Skipped string
	// Ignored is true for changes never processed: design docs, info docs,
	// tombstones and deleted docs.
	Ignored bool
}

// Ignored reports whether a change id is never processed: design docs, info
// docs and tombstones.
func Ignored(id string) bool {
	return strings.HasPrefix(id, "_design/") || infodoc.IsID(id) ||
		strings.HasSuffix(id, "____tombstone")
}

func (p *Engine) now(cfg *transitions.Config) time.Time {
	if t, ok := cfg.Settings.SyntheticDate(p.location()); ok {
		return t
	}
	if p.Clock != nil {
		return p.Clock()
	}
	return time.Now()
}

func (p *Engine) location() *time.Location {
	if p.Location != nil {
		return p.Location
	}
	return time.Local
}

// Process runs the enabled transitions on the doc of change ch and saves the
// result: RunBatch on a batch of one change, which stops at a failure.
func (p *Engine) Process(ctx context.Context, cfg *transitions.Config, ch couch.Change) (Outcome, error) {
	var out Outcome
	_, err := p.RunBatch(ctx, []couch.Change{ch}, BatchControl{
		Config: func() *transitions.Config { return cfg },
		Done:   func(_ couch.Change, o Outcome) { out = o },
	})
	return out, err
}

// ProcessIn runs the enabled transitions on the doc of change ch (the doc
// read with the feed, or read now when ch.Doc is nil) and saves the result.
// A returned error means the change was not completed and must not be
// checkpointed; transition failures are not errors here: they are recorded
// on the doc as the spec says. Info docs of changes that changed nothing are
// written by Flush, before the batch is checkpointed.
func (p *Engine) ProcessIn(ctx context.Context, b *Batch, cfg *transitions.Config, ch couch.Change) (Outcome, error) {
	retries := p.Retries
	if retries <= 0 {
		retries = 5
	}
	doc := ch.Doc
	if b.written[ch.ID] {
		// An earlier change of the batch wrote or deleted this doc: the
		// feed's body is stale. One at a time, the doc would be read when
		// its turn comes: commit what is held back and read it.
		if err := p.commit(ctx, b); err != nil {
			return Outcome{}, err
		}
		doc = nil
	}
	var lastErr error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 || doc == nil {
			d, err := p.Main.Get(ctx, ch.ID)
			if transitions.IsNotFound(err) {
				// Deleted since the change was read (by an earlier change of
				// the batch or another writer): a deletion, nothing to retry.
				b.forget(ch.ID)
				return Outcome{Skipped: "deleted"}, nil
			}
			if err != nil {
				return Outcome{}, fmt.Errorf("read doc %s: %w", ch.ID, err)
			}
			doc = d
			b.forget(ch.ID)
		}
		out, err := p.processOnce(ctx, b, cfg, ch, doc)
		if err == nil {
			return out, nil
		}
		if !transitions.IsConflict(err) {
			return Outcome{}, err
		}
		lastErr = err
		p.Log.Debug().Str("doc_id", ch.ID).Int("attempt", attempt+1).Msg("Doc changed while it was processed; re-reading")
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Outcome{}, ctx.Err()
			case <-time.After(time.Duration(attempt*50) * time.Millisecond):
			}
		}
	}
	return Outcome{}, fmt.Errorf("save %s: gave up after %d conflicts: %w", ch.ID, retries, lastErr)
}

func (p *Engine) processOnce(ctx context.Context, b *Batch, cfg *transitions.Config, ch couch.Change, raw transitions.Doc) (Outcome, error) {
	out, err := p.processHeld(ctx, b, cfg, ch, raw)
	if err != nil {
		b.abandon()
	}
	b.cur = nil
	return out, err
}

func (p *Engine) processHeld(ctx context.Context, b *Batch, cfg *transitions.Config, ch couch.Change, raw transitions.Doc) (Outcome, error) {
	rev, _ := raw["_rev"].(string)
	if p.Known != nil && p.Known.has(cfg, ch.ID, rev) {
		return Outcome{}, nil // what the prefilter decided at this very revision
	}
	info, err := p.info(ctx, b, ch.ID)
	if err != nil {
		return Outcome{}, err
	}
	if _, marked := info["transitions_started"]; marked {
		info, err = p.waitForAPI(ctx, ch.ID, info)
		if err != nil {
			return Outcome{}, err
		}
		if info == nil {
			return Outcome{Skipped: "CHT API is still running transitions on this doc"}, nil
		}
	}
	// A journal at this very revision means a crash interrupted a save: the
	// change is replayed one write at a time (its created docs may exist).
	replay := jsv.Map(info[pendingKey]) != nil && jsv.Map(info[pendingKey])["rev"] == rev
	if info, err = p.resolvePending(ctx, b, ch.ID, info, rev); err != nil {
		return Outcome{}, err
	}
	_, hadTransitions := info["transitions"]
	if hadTransitions && !replay && transitions.RefusedUnhydrated(&transitions.Env{Config: cfg},
		&transitions.Change{ID: ch.ID, Seq: ch.Seq, Rev: rev, Doc: raw, Info: info},
		func(name string) bool { return alreadyRan(name, info, raw, rev) }) {
		// Every transition refuses it on the doc as stored (work done: a
		// replay, a rewound feed, the echo of an own write): exactly what
		// running them would decide, without hydrating or looking up
		// anything, and nothing to write.
		if p.Known != nil {
			p.Known.add(cfg, ch.ID, rev)
		}
		return Outcome{}, nil
	}
	doc := jsv.CloneMap(raw)
	b.begin(ch.ID, replay)
	h := b.hydrator
	if err := h.Hydrate(ctx, doc); err != nil {
		return Outcome{}, fmt.Errorf("hydrate %s: %w", ch.ID, err)
	}
	if p.Dups == nil {
		p.Dups = messages.NewDuplicates()
	}
	// The duplicate counter sees this attempt's messages at once; an
	// abandoned attempt takes them back (Batch.abandon, handBack).
	b.cur.dups = p.Dups.Attempt()
	env := &transitions.Env{Config: cfg, Store: b.store, Sentinel: b.sentinel, JS: p.JS, Hydrator: h, Log: p.Log, Now: p.now(cfg), Location: p.location(), Dups: b.cur.dups, Secrets: p.Secrets, PhoneOwner: p.PhoneOwner, Outbox: p.Outbox, Rand: p.rand(ch), Users: p.Users}
	c := &transitions.Change{ID: ch.ID, Seq: ch.Seq, Rev: rev, Doc: doc, Info: info}
	records := jsv.CloneMap(jsv.Map(info["transitions"]))
	if records == nil {
		records = map[string]any{}
	}
	out, err := runTransitions(ctx, env, c, records, stepHooks{
		seq:      ch.Seq,
		dbFailed: func() error { return b.dbErr },
		ran: func(t transitions.Transition, took time.Duration, _ bool, err error) {
			if p.Observer != nil {
				p.Observer.ObserveTransition(t.Name(), took, err != nil)
			}
		},
	})
	if err != nil {
		return Outcome{}, err
	}
	if !out.Changed {
		if b.cur != nil && len(b.cur.creates) > 0 {
			// Created docs without a doc save: written now, as one at a time.
			if err := b.writeThrough(ctx); err != nil {
				return Outcome{}, err
			}
		}
		if !hadTransitions {
			// "Processed, nothing applied": written with the batch, before its checkpoint.
			written := withTransitions(info, map[string]any{})
			b.queueInfo(written)
			if p.Known != nil && transitions.RefusedUnhydrated(&transitions.Env{Config: cfg},
				&transitions.Change{ID: ch.ID, Seq: ch.Seq, Rev: rev, Doc: raw, Info: written},
				func(name string) bool { return alreadyRan(name, written, raw, rev) }) {
				// Once that info doc is written, this revision is one the
				// prefilter passes over.
				b.doneOnWrite[ch.ID] = knownRev{rev: rev, fp: cfg.Fingerprint}
			}
		}
		return out, nil
	}
	saved := lineage.Minify(doc)
	saved["_rev"] = rev
	if b.holding() {
		b.hold(&heldChange{change: ch, info: info, records: records, rev: rev, doc: saved, raw: raw})
		return out, nil
	}
	// Journal first: a crash between the doc's save and the info doc's would
	// otherwise run once-only transitions again on the replayed change
	// (duplicate schedules and messages). The pending record says "these
	// transitions ran on rev R"; resolvePending settles it on the next read.
	journaled, err := p.writeInfo(ctx, b, ch.ID, info, func(d transitions.Doc) {
		d[pendingKey] = map[string]any{"rev": rev, "transitions": records}
	})
	if err != nil {
		return Outcome{}, err
	}
	if err := b.store.Put(ctx, saved); err != nil && p.savedAnyway(ctx, saved) == "" {
		// Not saved: the journal must not be taken for done work.
		if _, cerr := p.writeInfo(ctx, b, ch.ID, journaled, func(d transitions.Doc) { delete(d, pendingKey) }); cerr != nil {
			p.Log.Warn().Str("doc_id", ch.ID).Err(cerr).Msg("Could not clear the pending record of an unsaved change")
		}
		return Outcome{}, err
	}
	if err := p.saveInfo(ctx, b, ch.ID, journaled, records); err != nil {
		return Outcome{}, err
	}
	p.observeMessages(raw, doc)
	return out, nil
}

// stepHooks let the caller of runTransitions watch and steer it: the
// engine records metrics, Explain records every decision and dry-runs
// transitions with effects outside the databases.
type stepHooks struct {
	// seq is recorded with each run unless noSeq (Explain).
	seq   string
	noSeq bool
	// dbFailed returns the first database failure of the change, if any.
	dbFailed func() error
	// skipped is told a transition that did not run: alreadyRan is the
	// recorded revision that stopped it, else its filter was false.
	skipped func(t transitions.Transition, alreadyRan string)
	// run replaces Run when set; handled false means Run is called.
	run func(ctx context.Context, env *transitions.Env, t transitions.Transition, c *transitions.Change) (handled bool, err error)
	// ran is told each transition run (changed: it changed the doc).
	ran func(t transitions.Transition, took time.Duration, changed bool, err error)
}

// runTransitions is the per-transition step of a change, shared by the
// engine and Explain: each enabled transition in reference order, unless
// the revision rule says it already ran or its filter is false; a failure
// is recorded on the doc (and the run recorded with ok false when the
// transition says the doc changed anyway); records gains the runs that
// changed the doc. An error means the change is not done and must be
// retried: the context ended, a conflict, or a database call failed.
func runTransitions(ctx context.Context, env *transitions.Env, c *transitions.Change, records map[string]any, h stepHooks) (Outcome, error) {
	var out Outcome
	for _, t := range env.Config.Transitions {
		name := t.Name()
		if alreadyRan(name, c.Info, c.Doc, c.Rev) {
			if h.skipped != nil {
				h.skipped(t, ranAt(name, c.Info, c.Doc))
			}
			continue
		}
		if !safeFilter(env, t, c) {
			if h.skipped != nil {
				h.skipped(t, "")
			}
			continue
		}
		started := time.Now()
		var changed bool
		var err error
		handled := false
		if h.run != nil {
			handled, err = h.run(ctx, env, t, c)
		}
		if !handled {
			changed, err = safeRun(ctx, env, t, c)
		}
		if h.ran != nil {
			h.ran(t, time.Since(started), changed, err)
		}
		if err != nil && ctx.Err() != nil {
			return Outcome{}, ctx.Err()
		}
		if err != nil && transitions.IsConflict(err) {
			return Outcome{}, err
		}
		if h.dbFailed != nil {
			if dbErr := h.dbFailed(); dbErr != nil {
				// A database call failed during the run (unreachable, 5xx,
				// a request cut short), whatever the transition made of it:
				// the change is not done and is retried, never recorded as
				// the transition's failure or as nothing to do, which would
				// lose its work.
				return Outcome{}, fmt.Errorf("transition %s: database call failed: %w", name, dbErr)
			}
		}
		var dbErr *couch.Error
		if err != nil && errors.As(err, &dbErr) {
			return Outcome{}, fmt.Errorf("transition %s: %w", name, err)
		}
		ok := true
		if err != nil {
			var ce *transitions.ChangedError
			if errors.As(err, &ce) {
				changed, ok = true, false
			}
			messages.AddError(c.Doc, name+"_error", "Transition error on "+name+": "+err.Error())
			env.Log.Warn().Str("doc_id", c.ID).Str("transition", name).Err(err).Msg("Transition failed")
		}
		if changed {
			rec := map[string]any{"last_rev": c.Rev, "ok": ok, "run_date": transitions.ISO(env.Now)}
			if !h.noSeq {
				rec["seq"] = couch.SeqValue(h.seq)
			}
			records[name] = rec
			out.Ran = append(out.Ran, name)
			out.Changed = true
		}
	}
	return out, nil
}

// rand is the random source of an attempt at ch.
func (p *Engine) rand(ch couch.Change) io.Reader {
	if p.RandFor != nil {
		return p.RandFor(ch)
	}
	return p.Rand
}

// observeMessages reports the tasks the transitions added to the doc.
func (p *Engine) observeMessages(before, after transitions.Doc) {
	if p.Observer == nil {
		return
	}
	for _, key := range []string{"tasks", "scheduled_tasks"} {
		old := len(jsv.Slice(before[key]))
		for i, t := range jsv.Slice(after[key]) {
			if i < old {
				continue
			}
			if st, ok := jsv.Map(t)["state"].(string); ok {
				p.Observer.ObserveMessage(st)
			}
		}
	}
}

// pendingKey holds, in an info doc, the transitions recorded just before the
// doc's save: {rev, transitions}.
const pendingKey = infodoc.PendingKey

// resolvePending settles a journal left by a run that stopped between the
// journal and the info doc's final write. When the doc is still at the
// journaled revision, its save never happened: the journal is dropped and
// the transitions run again. Otherwise the save happened: the journaled
// records become the doc's transitions (so once-only transitions do not run
// twice). A concurrent writer changing the doc inside that crash window is
// the one case this cannot tell apart from a save.
func (p *Engine) resolvePending(ctx context.Context, b *Batch, id string, info transitions.Doc, rev string) (transitions.Doc, error) {
	pending := jsv.Map(info[pendingKey])
	if pending == nil {
		return info, nil
	}
	return p.writeInfo(ctx, b, id, info, func(d transitions.Doc) { settleJournal(d, pending, rev) })
}

// settleJournal applies journal pending to info doc d of a doc now at rev:
// a journal at that revision means its save did not happen (it is only
// dropped), at another one that it did (its records become the
// transitions').
func settleJournal(d transitions.Doc, pending map[string]any, rev string) {
	if pending["rev"] != rev {
		if records := jsv.Map(pending["transitions"]); records != nil {
			d["transitions"] = records
		}
	}
	delete(d, pendingKey)
}

// writeInfo applies edit to the info doc and saves it; on a 409 it re-reads
// and re-applies. It returns the saved version.
func (p *Engine) writeInfo(ctx context.Context, b *Batch, id string, info transitions.Doc, edit func(transitions.Doc)) (transitions.Doc, error) {
	p.recent.forget(id)
	for attempt := 0; attempt < 10; attempt++ {
		next := jsv.CloneMap(info)
		edit(next)
		err := p.Sentinel.Put(ctx, next)
		if err == nil {
			b.infos[id] = next
			return next, nil
		}
		if !transitions.IsConflict(err) {
			return nil, fmt.Errorf("save info doc: %w", err)
		}
		cur, gerr := p.readInfo(ctx, id)
		if gerr != nil {
			return nil, fmt.Errorf("save info doc: %w", gerr)
		}
		info = cur
	}
	return nil, fmt.Errorf("save info doc %s: %w", infodoc.ID(id), couch.ErrConflict)
}

// alreadyRan is the revision rule: info (or legacy doc) records a run of
// name at the same revision generation as the doc now.
func alreadyRan(name string, info, doc transitions.Doc, rev string) bool {
	gen := couch.RevGeneration(rev)
	if gen < 0 {
		return false
	}
	for _, holder := range []transitions.Doc{info, doc} {
		ts := jsv.Map(holder["transitions"])
		rec := jsv.Map(ts[name])
		if lr, _ := rec["last_rev"].(string); lr != "" && couch.RevGeneration(lr) == gen {
			return true
		}
	}
	return false
}

func safeFilter(env *transitions.Env, t transitions.Transition, c *transitions.Change) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			env.Log.Error().Str("doc_id", c.ID).Str("transition", t.Name()).Interface("panic", r).Msg("Transition filter panicked; treated as false")
			ok = false
		}
	}()
	return t.Filter(env, c)
}

func safeRun(ctx context.Context, env *transitions.Env, t transitions.Transition, c *transitions.Change) (changed bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			env.Log.Error().Str("doc_id", c.ID).Str("transition", t.Name()).Interface("panic", r).Str("stack", string(debug.Stack())).Msg("Transition panicked")
			changed, err = false, fmt.Errorf("internal error: %v", r)
		}
	}()
	return t.Run(ctx, env, c)
}

// info returns the doc's info doc: preloaded with the batch, else read, else
// a new one (saved with the doc's transitions at the end of processing).
func (p *Engine) info(ctx context.Context, b *Batch, id string) (transitions.Doc, error) {
	if info, ok := b.infos[id]; ok {
		if info == nil {
			return infodoc.New(id), nil
		}
		return jsv.CloneMap(info), nil
	}
	info, err := p.Sentinel.Get(ctx, infodoc.ID(id))
	if err != nil {
		if transitions.IsNotFound(err) {
			return infodoc.New(id), nil
		}
		return nil, fmt.Errorf("read info doc: %w", err)
	}
	return info, nil
}

// withTransitions is info with its transitions set and CHT API's marker dropped.
func withTransitions(info transitions.Doc, records map[string]any) transitions.Doc {
	out := jsv.CloneMap(info)
	out["transitions"] = records
	delete(out, "transitions_started")
	return out
}

// saveInfo writes the info doc's transitions starting from the version read
// (info); on a 409 (another writer, e.g. muting_history) it re-reads and
// re-applies, keeping every other field.
func (p *Engine) saveInfo(ctx context.Context, b *Batch, id string, info transitions.Doc, records map[string]any) error {
	_, err := p.writeInfo(ctx, b, id, info, func(d transitions.Doc) {
		d["transitions"] = records
		delete(d, "transitions_started")
		delete(d, pendingKey)
	})
	return err
}

// waitForAPI handles CHT API's `transitions_started` marker: a stale marker
// (≥ 2 minutes) is removed; a fresh one is re-read up to 5 times 100 ms
// apart. It returns nil when the change must be skipped.
func (p *Engine) waitForAPI(ctx context.Context, id string, info transitions.Doc) (transitions.Doc, error) {
	for i := 0; ; i++ {
		started, ok := info["transitions_started"]
		if !ok {
			return info, nil
		}
		if ts, ok := parseTime(started); !ok || time.Since(ts) >= 2*time.Minute {
			delete(info, "transitions_started")
			if err := p.Sentinel.Put(ctx, info); err != nil {
				if transitions.IsConflict(err) {
					if info, err = p.readInfo(ctx, id); err != nil {
						return nil, err
					}
					continue
				}
				return nil, fmt.Errorf("clear transitions_started: %w", err)
			}
			return info, nil
		}
		if i >= 5 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		var err error
		if info, err = p.readInfo(ctx, id); err != nil {
			return nil, err
		}
	}
}

// readInfo reads an info doc from the server (a new one when missing).
func (p *Engine) readInfo(ctx context.Context, id string) (transitions.Doc, error) {
	info, err := p.Sentinel.Get(ctx, infodoc.ID(id))
	if transitions.IsNotFound(err) {
		return infodoc.New(id), nil
	}
	return info, err
}

func parseTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		return t, err == nil
	case float64:
		return time.UnixMilli(int64(x)), true
	}
	return time.Time{}, false
}
