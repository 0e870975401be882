package transitions

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/outbound"
)

// InfoStore is the sentinel db as the pipeline uses it. *couch.DB implements it.
type InfoStore interface {
	Get(ctx context.Context, id string) (Doc, error)
	Put(ctx context.Context, doc Doc) error
}

// Processor runs the pipeline on one change at a time. It is not safe for
// concurrent use (it owns a JS sandbox); make one per worker.
type Processor struct {
	Main     Store
	Sentinel InfoStore
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
	PhoneOwner PhoneOwner
	// Outbox queues outbound pushes (nil: sent inline).
	Outbox Outbox

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
}

// Ignored reports whether a change id is never processed: design docs, info
// docs and tombstones.
func Ignored(id string) bool {
	return strings.HasPrefix(id, "_design/") || strings.HasSuffix(id, "-info") ||
		strings.HasSuffix(id, "____tombstone")
}

// InfoID is the id of a doc's info doc in the sentinel db.
func InfoID(id string) string { return id + "-info" }

func (p *Processor) now(cfg *Config) time.Time {
	if t, ok := cfg.Settings.SyntheticDate(p.location()); ok {
		return t
	}
	if p.Clock != nil {
		return p.Clock()
	}
	return time.Now()
}

func (p *Processor) location() *time.Location {
	if p.Location != nil {
		return p.Location
	}
	return time.Local
}

// Process runs the enabled transitions on the doc of change ch and saves the
// result, as a batch of one change. See ProcessIn.
func (p *Processor) Process(ctx context.Context, cfg *Config, ch couch.Change) (Outcome, error) {
	b := p.NewBatch(ctx, []couch.Change{ch})
	out, err := p.ProcessIn(ctx, b, cfg, ch)
	if err != nil {
		return out, err
	}
	if err := p.Flush(ctx, b); err != nil {
		return out, err
	}
	for _, r := range b.Redo() {
		rb := p.NewBatch(ctx, []couch.Change{r})
		rb.OneByOne()
		if out, err = p.ProcessIn(ctx, rb, cfg, r); err != nil {
			return out, err
		}
		if err := p.Flush(ctx, rb); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ProcessIn runs the enabled transitions on the doc of change ch (the doc
// read with the feed, or read now when ch.Doc is nil) and saves the result.
// A returned error means the change was not completed and must not be
// checkpointed; transition failures are not errors here: they are recorded
// on the doc as the spec says. Info docs of changes that changed nothing are
// written by Flush, before the batch is checkpointed.
func (p *Processor) ProcessIn(ctx context.Context, b *Batch, cfg *Config, ch couch.Change) (Outcome, error) {
	retries := p.Retries
	if retries <= 0 {
		retries = 5
	}
	doc := ch.Doc
	var lastErr error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 || doc == nil {
			d, err := p.Main.Get(ctx, ch.ID)
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
		if !IsConflict(err) {
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

func (p *Processor) processOnce(ctx context.Context, b *Batch, cfg *Config, ch couch.Change, raw Doc) (Outcome, error) {
	out, err := p.processHeld(ctx, b, cfg, ch, raw)
	if err != nil {
		b.abandon()
	}
	b.cur = nil
	return out, err
}

func (p *Processor) processHeld(ctx context.Context, b *Batch, cfg *Config, ch couch.Change, raw Doc) (Outcome, error) {
	doc := jsv.CloneMap(raw)
	rev, _ := doc["_rev"].(string)
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
	b.begin(ch.ID, replay)
	_, hadTransitions := info["transitions"]
	h := b.hydrator
	if err := h.Hydrate(ctx, doc); err != nil {
		return Outcome{}, fmt.Errorf("hydrate %s: %w", ch.ID, err)
	}
	if p.Dups == nil {
		p.Dups = messages.NewDuplicates()
	}
	env := &Env{Config: cfg, Store: b.store, Sentinel: b.sentinel, JS: p.JS, Hydrator: h, Log: p.Log, Now: p.now(cfg), Location: p.location(), Dups: p.Dups, Secrets: p.Secrets, PhoneOwner: p.PhoneOwner, Outbox: p.Outbox}
	c := &Change{ID: ch.ID, Seq: ch.Seq, Rev: rev, Doc: doc, Info: info}
	records := jsv.CloneMap(jsv.Map(info["transitions"]))
	if records == nil {
		records = map[string]any{}
	}
	var out Outcome
	for _, t := range cfg.Transitions {
		name := t.Name()
		if alreadyRan(name, info, doc, rev) || !safeFilter(env, t, c) {
			continue
		}
		started := time.Now()
		changed, err := safeRun(ctx, env, t, c)
		if p.Observer != nil {
			p.Observer.ObserveTransition(name, time.Since(started), err != nil)
		}
		if err != nil && ctx.Err() != nil {
			return Outcome{}, ctx.Err()
		}
		if err != nil && IsConflict(err) {
			return Outcome{}, err
		}
		var dbErr *couch.Error
		if err != nil && errors.As(err, &dbErr) {
			// The database failed (unreachable, 5xx, a request cut short): the
			// change is not done and is retried, never recorded as the
			// transition's failure, which would lose its work.
			return Outcome{}, fmt.Errorf("transition %s: %w", name, err)
		}
		ok := true
		if err != nil {
			var ce *ChangedError
			if errors.As(err, &ce) {
				changed, ok = true, false
			}
			messages.AddError(doc, name+"_error", "Transition error on "+name+": "+err.Error())
			p.Log.Warn().Str("doc_id", ch.ID).Str("transition", name).Err(err).Msg("Transition failed")
		}
		if changed {
			records[name] = map[string]any{"last_rev": rev, "seq": couch.SeqValue(ch.Seq), "ok": ok, "run_date": isoNow(env.Now)}
			out.Ran = append(out.Ran, name)
			out.Changed = true
		}
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
			b.queueInfo(withTransitions(info, map[string]any{}))
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
	journaled, err := p.writeInfo(ctx, b, ch.ID, info, func(d Doc) {
		d[pendingKey] = map[string]any{"rev": rev, "transitions": records}
	})
	if err != nil {
		return Outcome{}, err
	}
	if err := b.store.Put(ctx, saved); err != nil && !p.savedAnyway(ctx, saved) {
		// Not saved: the journal must not be taken for done work.
		if _, cerr := p.writeInfo(ctx, b, ch.ID, journaled, func(d Doc) { delete(d, pendingKey) }); cerr != nil {
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

// observeMessages reports the tasks the transitions added to the doc.
func (p *Processor) observeMessages(before, after Doc) {
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
const pendingKey = "sentinel_go_pending"

// resolvePending settles a journal left by a run that stopped between the
// journal and the info doc's final write. When the doc is still at the
// journaled revision, its save never happened: the journal is dropped and
// the transitions run again. Otherwise the save happened: the journaled
// records become the doc's transitions (so once-only transitions do not run
// twice). A concurrent writer changing the doc inside that crash window is
// the one case this cannot tell apart from a save.
func (p *Processor) resolvePending(ctx context.Context, b *Batch, id string, info Doc, rev string) (Doc, error) {
	pending := jsv.Map(info[pendingKey])
	if pending == nil {
		return info, nil
	}
	if pending["rev"] == rev {
		return p.writeInfo(ctx, b, id, info, func(d Doc) { delete(d, pendingKey) })
	}
	records := jsv.Map(pending["transitions"])
	return p.writeInfo(ctx, b, id, info, func(d Doc) {
		if records != nil {
			d["transitions"] = records
		}
		delete(d, pendingKey)
	})
}

// writeInfo applies edit to the info doc and saves it; on a 409 it re-reads
// and re-applies. It returns the saved version.
func (p *Processor) writeInfo(ctx context.Context, b *Batch, id string, info Doc, edit func(Doc)) (Doc, error) {
	p.recent.forget(id)
	for attempt := 0; attempt < 10; attempt++ {
		next := jsv.CloneMap(info)
		edit(next)
		err := p.Sentinel.Put(ctx, next)
		if err == nil {
			b.infos[id] = next
			return next, nil
		}
		if !IsConflict(err) {
			return nil, fmt.Errorf("save info doc: %w", err)
		}
		cur, gerr := p.readInfo(ctx, id)
		if gerr != nil {
			return nil, fmt.Errorf("save info doc: %w", gerr)
		}
		info = cur
	}
	return nil, fmt.Errorf("save info doc %s: %w", InfoID(id), couch.ErrConflict)
}

// alreadyRan is the revision rule: info (or legacy doc) records a run of
// name at the same revision generation as the doc now.
func alreadyRan(name string, info, doc Doc, rev string) bool {
	gen := revGeneration(rev)
	if gen < 0 {
		return false
	}
	for _, holder := range []Doc{info, doc} {
		ts := jsv.Map(holder["transitions"])
		rec := jsv.Map(ts[name])
		if lr, _ := rec["last_rev"].(string); lr != "" && revGeneration(lr) == gen {
			return true
		}
	}
	return false
}

func revGeneration(rev string) int {
	n, _, ok := strings.Cut(rev, "-")
	if !ok {
		return -1
	}
	g, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return g
}

func safeFilter(env *Env, t Transition, c *Change) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			env.Log.Error().Str("doc_id", c.ID).Str("transition", t.Name()).Interface("panic", r).Msg("Transition filter panicked; treated as false")
			ok = false
		}
	}()
	return t.Filter(env, c)
}

func safeRun(ctx context.Context, env *Env, t Transition, c *Change) (changed bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			env.Log.Error().Str("doc_id", c.ID).Str("transition", t.Name()).Interface("panic", r).Str("stack", string(debug.Stack())).Msg("Transition panicked")
			changed, err = false, fmt.Errorf("internal error: %v", r)
		}
	}()
	return t.Run(ctx, env, c)
}

func isoNow(t time.Time) string { return ISO(t) }

// ISO formats t as the daemon writes dates: UTC with milliseconds.
func ISO(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// newInfo is the info doc of a doc seen for the first time.
func newInfo(id string) Doc {
	return Doc{"_id": InfoID(id), "type": "info", "doc_id": id,
		"initial_replication_date": "unknown", "latest_replication_date": "unknown"}
}

// info returns the doc's info doc: preloaded with the batch, else read, else
// a new one (saved with the doc's transitions at the end of processing).
func (p *Processor) info(ctx context.Context, b *Batch, id string) (Doc, error) {
	if info, ok := b.infos[id]; ok {
		if info == nil {
			return newInfo(id), nil
		}
		return jsv.CloneMap(info), nil
	}
	info, err := p.Sentinel.Get(ctx, InfoID(id))
	if err != nil {
		if IsNotFound(err) {
			return newInfo(id), nil
		}
		return nil, fmt.Errorf("read info doc: %w", err)
	}
	return info, nil
}

// withTransitions is info with its transitions set and CHT API's marker dropped.
func withTransitions(info Doc, records map[string]any) Doc {
	out := jsv.CloneMap(info)
	out["transitions"] = records
	delete(out, "transitions_started")
	return out
}

// saveInfo writes the info doc's transitions starting from the version read
// (info); on a 409 (another writer, e.g. muting_history) it re-reads and
// re-applies, keeping every other field.
func (p *Processor) saveInfo(ctx context.Context, b *Batch, id string, info Doc, records map[string]any) error {
	_, err := p.writeInfo(ctx, b, id, info, func(d Doc) {
		d["transitions"] = records
		delete(d, "transitions_started")
		delete(d, pendingKey)
	})
	return err
}

// waitForAPI handles CHT API's `transitions_started` marker: a stale marker
// (≥ 2 minutes) is removed; a fresh one is re-read up to 5 times 100 ms
// apart. It returns nil when the change must be skipped.
func (p *Processor) waitForAPI(ctx context.Context, id string, info Doc) (Doc, error) {
	for i := 0; ; i++ {
		started, ok := info["transitions_started"]
		if !ok {
			return info, nil
		}
		if ts, ok := parseTime(started); !ok || time.Since(ts) >= 2*time.Minute {
			delete(info, "transitions_started")
			if err := p.Sentinel.Put(ctx, info); err != nil {
				if IsConflict(err) {
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
func (p *Processor) readInfo(ctx context.Context, id string) (Doc, error) {
	info, err := p.Sentinel.Get(ctx, InfoID(id))
	if IsNotFound(err) {
		return newInfo(id), nil
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
