package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"sentinel-go/couch"
	"sentinel-go/infodoc"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/transitions"
)

func jsvClone(d transitions.Doc) transitions.Doc { return jsv.CloneMap(d) }

// Batch is the state shared by the changes of one feed batch: their info
// docs read in one request, a hydration cache that the batch's own writes
// keep current, and the writes held back to be sent in bulk.
//
// Group commit. When the main store answers its hot lookups from an index
// that sees held-back writes (DeferringStore), the save of each changed doc
// and the docs its transitions create are held back, and Flush writes them
// for the whole batch in four bulk requests, in the order the one-change
// path uses: the journals (info docs with the pending record), the created
// docs, the changed docs, the final info docs. Until then the batch's reads
// (Get, GetMany, the indexed lookups) see the held-back versions; anything
// that would let the server see a different state first commits what is
// held back: another write, a sentinel-db write, a view query. So every
// change reads exactly what it would read if each change had been saved
// before the next one started. A change whose held-back save fails (a 409
// from a concurrent writer, a rejected doc) has its journal cleared and is
// handed back by Redo, to be processed again one at a time; a change replayed
// after a crash (its journal found) is processed one at a time from the start.
type Batch struct {
	p        *Engine
	infos    map[string]transitions.Doc // doc id → info doc as last read or written; nil: none exists
	pending  []transitions.Doc          // info docs to write at Flush
	hydrator *lineage.Hydrator
	store    *batchStore
	sentinel *batchInfoStore

	group   bool                       // writes may be held back
	cur     *current                   // the change being processed
	overlay map[string]transitions.Doc // id → held-back version (what reads see)
	held    []*heldChange              // changes whose save is held back, in order
	redo    []couch.Change             // changes to process again, one at a time
	// redoNow, when set, processes the changes handed back by a commit at
	// once (RunBatch sets it while the batch's changes run; commit calls it).
	redoNow func(ctx context.Context) error
	// written holds the ids of main-db docs the batch wrote, deleted or
	// holds back: the feed's body of such a doc is stale when its own
	// change comes, which must then read the doc as it is now.
	written map[string]bool
	// doneOnWrite holds the revisions that are known done once their
	// queued info doc is written (Known).
	doneOnWrite map[string]knownRev
	// deferring and infoBulk are the stores' group-commit abilities (set
	// when group is).
	deferring DeferringStore
	infoBulk  infoBulk
	// dbErr is the first database failure of the change in hand.
	dbErr error
}

// current is what the batch knows of the change in hand.
type current struct {
	id       string
	dups     *messages.Duplicates // this attempt's duplicate counts
	oneByOne bool                 // write through (replayed change, or a commit happened mid-change)
	creates  []transitions.Doc    // created docs held back
}

// heldChange is a changed doc whose writes are held back.
type heldChange struct {
	change   couch.Change
	info     transitions.Doc // info doc as read (before the journal)
	records  map[string]any  // transitions records to write
	rev      string          // revision processed
	doc      transitions.Doc // minified doc to save (with _rev = rev)
	raw      transitions.Doc // doc as read, for the observer's message count
	creates  []transitions.Doc
	dups     *messages.Duplicates // the attempt's duplicate counts
	state    heldState
	savedRev string // revision of the doc's save
}

type heldState int

const (
	heldNew       heldState = iota // nothing written
	heldJournaled                  // journal written
	heldCreated                    // created docs written
	heldSaved                      // doc saved
	heldDone                       // final info written
	heldRedo                       // handed back to Redo
)

// DeferringStore is a main store whose hot lookups (contacts by phone,
// shortcode or rc_code, taken shortcodes, doc existence) see a doc once it
// is Observe'd, before it is written: the batch can then hold writes back.
type DeferringStore interface {
	Indexed() bool
	Observe(doc transitions.Doc)
}

// infoGetter and infoBulk are the sentinel-db calls that make batches cheap;
// stores without them (test fakes) are read and written one doc at a time.
type infoGetter interface {
	GetMany(ctx context.Context, ids []string) (map[string]transitions.Doc, error)
}

type infoBulk interface {
	BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error)
}

// NewBatch prepares a batch: the info docs of its changes are read in one
// request (when the store can), and the docs read with the feed seed the
// hydration cache. A failed preload only costs reads later.
func (p *Engine) NewBatch(ctx context.Context, changes []couch.Change) *Batch {
	if p.recent == nil {
		p.recent = recentWrites{}
	}
	b := &Batch{p: p, infos: map[string]transitions.Doc{}, overlay: map[string]transitions.Doc{}, written: map[string]bool{},
		doneOnWrite: map[string]knownRev{}}
	b.store = &batchStore{main: p.Main, b: b}
	b.sentinel = &batchInfoStore{sentinel: p.Sentinel, b: b}
	b.hydrator = lineage.New(b.store)
	if ds, ok := p.Main.(DeferringStore); ok && ds.Indexed() {
		if bulk, ok := p.Sentinel.(infoBulk); ok {
			b.group, b.deferring, b.infoBulk = true, ds, bulk
		}
	}
	var ids []string
	var read []string // doc ids whose info doc is read
	for _, ch := range changes {
		if Ignored(ch.ID) || ch.Deleted {
			continue
		}
		if ch.Doc != nil {
			b.hydrator.Prime(ch.Doc)
		}
		if info, ok := p.recent.take(ch.ID, ch.Rev); ok {
			b.infos[ch.ID] = info
			continue
		}
		if p.Known != nil && p.Known.mayHave(ch.ID, ch.Rev) {
			continue // passed over when its turn comes, without its info doc
		}
		ids = append(ids, infodoc.ID(ch.ID))
		read = append(read, ch.ID)
	}
	if g, ok := p.Sentinel.(infoGetter); ok && len(ids) > 0 {
		if got, err := g.GetMany(ctx, ids); err == nil {
			for _, id := range read {
				b.infos[id] = got[infodoc.ID(id)] // nil when missing
			}
		}
	}
	if b.group {
		p.resolveJournals(ctx, b, changes)
	}
	return b
}

// resolveJournals settles in one bulk write the journals that a crash left
// on the info docs of the batch's changes (settleJournal), as
// resolvePending does for one. A kill in the middle of a commit leaves one on
// every change of the batch: settled one by one, each change then replayed
// one write at a time, they cost about 40 ms each after the restart. A
// change processed again with group commit reuses the docs its first run
// created (same content), or is handed to the one-at-a-time redo.
func (p *Engine) resolveJournals(ctx context.Context, b *Batch, changes []couch.Change) {
	var docs []transitions.Doc
	var ids []string
	for _, ch := range changes {
		info := b.infos[ch.ID]
		pending := jsv.Map(info[pendingKey])
		if pending == nil || ch.Rev == "" || ch.Deleted || Ignored(ch.ID) || b.written[ch.ID] {
			continue
		}
		next := jsv.CloneMap(info)
		settleJournal(next, pending, ch.Rev)
		docs = append(docs, next)
		ids = append(ids, ch.ID)
	}
	if len(docs) == 0 {
		return
	}
	for _, id := range ids {
		p.recent.forget(id)
	}
	res, err := b.infoBulk.BulkDocs(ctx, docs)
	if err != nil {
		return // settled one by one when each change comes
	}
	for i, id := range ids {
		if i < len(res) && res[i].Err == nil {
			b.infos[id] = docs[i]
		}
	}
}

// recentWrites remembers, for the docs a group commit just wrote (saved or
// created), the revision written and the info doc as written (nil: none),
// so that the change each write comes back as in the feed needs no info
// read. An entry is used once, only for that exact revision, and dropped
// whenever the daemon writes that info doc another way.
type recentWrites map[string]recentWrite

type recentWrite struct {
	rev  string
	info transitions.Doc
}

// recentMax bounds the entries kept for changes that never came back.
const recentMax = 20000

func (r recentWrites) put(id, rev string, info transitions.Doc) {
	if r == nil || rev == "" {
		return
	}
	if len(r) >= recentMax {
		clear(r)
	}
	r[id] = recentWrite{rev: rev, info: info}
}

// take returns (and forgets) the info doc written with revision rev of id.
func (r recentWrites) take(id, rev string) (transitions.Doc, bool) {
	w, ok := r[id]
	if !ok {
		return nil, false
	}
	delete(r, id)
	if w.rev != rev || rev == "" {
		return nil, false
	}
	return w.info, true
}

func (r recentWrites) forget(id string) { delete(r, id) }

// OneByOne makes every change of the batch write through (no group commit).
func (b *Batch) OneByOne() { b.group = false }

// Redo returns (and forgets) the changes whose held-back writes failed at
// Flush: they must be processed again, one at a time, before the batch's
// checkpoint.
func (b *Batch) Redo() []couch.Change {
	r := b.redo
	b.redo = nil
	return r
}

// begin starts a change; oneByOne forces it to write through.
func (b *Batch) begin(id string, oneByOne bool) {
	b.cur = &current{id: id, oneByOne: oneByOne || !b.group}
	b.dbErr = nil
}

// holding reports whether the change in hand may hold its writes back.
func (b *Batch) holding() bool { return b.cur != nil && !b.cur.oneByOne }

// abandon drops what the change in hand held back (it failed and is retried).
func (b *Batch) abandon() {
	if b.cur == nil {
		return
	}
	b.cur.dups.Revert()
	for _, d := range b.cur.creates {
		delete(b.overlay, jsv.String(d["_id"]))
	}
	b.cur = nil
}

// hold records the change in hand's save, to be written at Flush.
func (b *Batch) hold(h *heldChange) {
	h.creates = b.cur.creates
	h.dups = b.cur.dups
	b.cur = nil
	b.held = append(b.held, h)
	b.written[h.change.ID] = true
	b.overlay[h.change.ID] = h.doc // never modified: reads get copies
	b.hydrator.Forget(h.change.ID)
	if b.deferring != nil {
		b.deferring.Observe(h.doc)
	}
}

func (b *Batch) queueInfo(info transitions.Doc) {
	id, _ := info["doc_id"].(string)
	b.infos[id] = info
	b.pending = append(b.pending, info)
}

// forget drops what the batch knows of a doc that changed behind its back.
func (b *Batch) forget(id string) {
	b.hydrator.Forget(id)
	delete(b.infos, id)
}

// writeThrough is called before any write or query the held-back writes
// must precede: it commits them, and the change in hand writes through
// from now on (its held-back creates are written now, as they would have
// been one change at a time).
func (b *Batch) writeThrough(ctx context.Context) error {
	if err := b.p.commit(ctx, b); err != nil {
		return err
	}
	if b.cur == nil || b.cur.oneByOne {
		return nil
	}
	creates := b.cur.creates
	b.cur.creates = nil
	b.cur.oneByOne = true
	for _, d := range creates {
		delete(b.overlay, jsv.String(d["_id"]))
		if _, err := b.p.Main.Create(ctx, d); err != nil && !transitions.IsConflict(err) {
			return fmt.Errorf("create %v: %w", d["_id"], err)
		}
	}
	return nil
}

// Flush writes what the batch holds back and the queued info docs (bulk
// requests when the stores can); a conflicting info doc is re-read and
// re-applied. The batch may be checkpointed only after Flush succeeds and
// the changes of Redo are processed.
func (p *Engine) Flush(ctx context.Context, b *Batch) error {
	if err := p.commit(ctx, b); err != nil {
		return err
	}
	return p.writeInfos(ctx, b, nil)
}

// commit writes the held-back changes: journals, created docs, saved docs,
// final info docs (each step in one bulk request). It can be called again
// after a failure: each change carries how far it got.
func (p *Engine) commit(ctx context.Context, b *Batch) error {
	held := b.held
	if len(held) == 0 {
		return nil
	}
	// The commit's bulk writes are audited together: one read and one
	// write of the audit db per commit.
	ctx, flushAudit := couch.DeferAudit(ctx)
	defer flushAudit()
	started := time.Now()
	if err := p.commitJournals(ctx, b, held); err != nil {
		return err
	}
	journaled := time.Now()
	if err := p.commitDocs(ctx, b, held); err != nil {
		return err
	}
	saved := time.Now()
	defer func() {
		p.Log.Debug().Int("changes", len(held)).Dur("journals_ms", journaled.Sub(started)).Dur("docs_ms", saved.Sub(journaled)).
			Dur("infos_ms", time.Since(saved)).Msg("Batch committed")
	}()
	var finals []transitions.Doc
	var finalOf []*heldChange
	for _, h := range held {
		if h.state == heldSaved {
			finals = append(finals, withTransitions(b.infos[h.change.ID], h.records))
			delete(finals[len(finals)-1], pendingKey)
			finalOf = append(finalOf, h)
		}
	}
	if err := p.writeInfos(ctx, b, finals); err != nil {
		return err
	}
	for _, h := range finalOf {
		h.state = heldDone
		p.recent.put(h.change.ID, h.savedRev, b.infos[h.change.ID])
		p.observeMessages(h.raw, h.doc)
	}
	// Every change is now done or handed to Redo; one that is neither
	// would be tried again by the next commit rather than dropped.
	var left []*heldChange
	for _, h := range held {
		if h.state != heldDone && h.state != heldRedo {
			left = append(left, h)
		}
	}
	b.held = left
	if len(left) > 0 {
		return fmt.Errorf("commit: %d changes not written", len(left))
	}
	if len(b.redo) > 0 && b.redoNow != nil {
		// In the middle of the batch: the changes handed back are processed
		// again now, before whatever made this commit reads anything.
		return b.redoNow(ctx)
	}
	return nil
}

// commitJournals writes the journal of each held change not yet journaled.
func (p *Engine) commitJournals(ctx context.Context, b *Batch, held []*heldChange) error {
	var docs []transitions.Doc
	var of []*heldChange
	for _, h := range held {
		if h.state == heldNew {
			j := jsv.CloneMap(h.info)
			j[pendingKey] = map[string]any{"rev": h.rev, "transitions": h.records}
			docs = append(docs, j)
			of = append(of, h)
		}
	}
	if len(docs) == 0 {
		return nil
	}
	res, err := b.infoBulk.BulkDocs(ctx, docs)
	if err != nil {
		if refused(err) {
			return p.oneByOne(ctx, b, of, err)
		}
		return fmt.Errorf("write journals: %w", err)
	}
	var again []*heldChange
	byID := map[string]*heldChange{}
	for i, h := range of {
		if i < len(res) && res[i].Err == nil {
			b.infos[h.change.ID] = docs[i]
			h.state = heldJournaled
			continue
		}
		again = append(again, h)
		byID[h.change.ID] = h
	}
	// Another writer touched these info docs, or an earlier attempt of
	// this commit wrote them and its answer was lost: re-read and re-apply.
	left, err := p.rewriteInfos(ctx, b, heldIDs(again), func(id string, cur transitions.Doc) transitions.Doc {
		h := byID[id]
		journal := map[string]any{"rev": h.rev, "transitions": h.records}
		if sameJSON(cur[pendingKey], journal) {
			return nil
		}
		j := jsv.CloneMap(cur)
		j[pendingKey] = journal
		return j
	})
	if err != nil {
		return err
	}
	for _, id := range left {
		h := byID[id]
		j, err := p.writeInfo(ctx, b, id, h.info, func(d transitions.Doc) {
			d[pendingKey] = map[string]any{"rev": h.rev, "transitions": h.records}
		})
		if err != nil {
			return err
		}
		b.infos[id] = j
	}
	for _, h := range again {
		h.state = heldJournaled
	}
	return nil
}

func heldIDs(held []*heldChange) []string {
	ids := make([]string, len(held))
	for i, h := range held {
		ids[i] = h.change.ID
	}
	return ids
}

// rewriteInfos applies edit to the info doc of each of ids as the server
// has it now and writes the results: one read of them all and one bulk
// write a round, where re-reading and rewriting each would cost two round
// trips per doc (a bulk write retried after its answer was cut finds every
// doc of it already written: hundreds of conflicts at once). edit returns
// the doc to write, or nil when the one stored needs no write. It returns
// the ids still conflicting after a few rounds, or all of them when the
// store cannot read or write in bulk: the caller writes those one by one.
func (p *Engine) rewriteInfos(ctx context.Context, b *Batch, ids []string, edit func(id string, cur transitions.Doc) transitions.Doc) ([]string, error) {
	g, canRead := p.Sentinel.(infoGetter)
	bulk, canWrite := p.Sentinel.(infoBulk)
	if !canRead || !canWrite {
		return ids, nil
	}
	for round := 0; round < 3 && len(ids) > 0; round++ {
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = infodoc.ID(id)
			p.recent.forget(id)
		}
		got, err := g.GetMany(ctx, keys)
		if err != nil {
			return nil, fmt.Errorf("read info docs: %w", err)
		}
		var docs []transitions.Doc
		var of []string
		for _, id := range ids {
			cur := got[infodoc.ID(id)]
			if cur == nil {
				cur = infodoc.New(id)
			}
			next := edit(id, cur)
			if next == nil {
				b.infos[id] = cur
				continue
			}
			docs = append(docs, next)
			of = append(of, id)
		}
		if len(docs) == 0 {
			return nil, nil
		}
		res, err := bulk.BulkDocs(ctx, docs)
		if err != nil {
			return nil, fmt.Errorf("write info docs: %w", err)
		}
		ids = nil
		for i, id := range of {
			switch {
			case i < len(res) && res[i].Err == nil:
				b.infos[id] = docs[i]
			case i < len(res) && !transitions.IsConflict(res[i].Err):
				return nil, fmt.Errorf("write info doc %s: %w", infodoc.ID(id), res[i].Err)
			default:
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// sameJSON reports whether a and b encode to the same JSON (maps encode
// with sorted keys): a value as this daemon built it and as read back.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// commitDocs writes the created docs, then the saved docs of the changes
// whose creates all succeeded. A failed write hands its change to Redo.
func (p *Engine) commitDocs(ctx context.Context, b *Batch, held []*heldChange) error {
	var creates []transitions.Doc
	var createOf []*heldChange
	for _, h := range held {
		if h.state == heldJournaled {
			for _, d := range h.creates {
				creates = append(creates, d)
				createOf = append(createOf, h)
			}
		}
	}
	if len(creates) > 0 {
		res, err := p.Main.BulkDocs(ctx, creates)
		if err != nil && !refused(err) {
			return fmt.Errorf("write created docs: %w", err)
		}
		if err != nil {
			if err := p.oneByOne(ctx, b, createOf, err); err != nil {
				return err
			}
			res = nil
		}
		var conflicted []int
		for i := range createOf {
			// Written (or failed): reads go to the store from now on, which
			// has the revision the write gave it; the held copy has none.
			delete(b.overlay, jsv.String(creates[i]["_id"]))
			b.hydrator.Forget(jsv.String(creates[i]["_id"]))
			if i < len(res) && res[i].Err == nil {
				// Created now: it has no info doc yet.
				p.recent.put(jsv.String(creates[i]["_id"]), res[i].Rev, nil)
				continue
			}
			if i < len(res) && transitions.IsConflict(res[i].Err) {
				conflicted = append(conflicted, i)
			}
		}
		// A 409 with our content is an earlier attempt of this commit.
		landed := p.savedAnywayAll(ctx, pick(creates, conflicted))
		for k, i := range conflicted {
			if landed[k] != "" {
				p.recent.put(jsv.String(creates[i]["_id"]), landed[k], nil)
			}
		}
		for i, h := range createOf {
			if i >= len(res) || res[i].Err == nil || h.state == heldRedo {
				continue
			}
			if k := slices.Index(conflicted, i); k >= 0 && landed[k] != "" {
				continue
			}
			// A doc left by a run that crashed before its journal, or any
			// other failure: the change is processed again one at a time,
			// which reuses what exists.
			p.Log.Warn().Str("doc_id", h.change.ID).Err(res[i].Err).Msg("Could not create a doc; processing the change again")
			if err := p.unjournal(ctx, b, h); err != nil {
				return err
			}
		}
	}
	var docs []transitions.Doc
	var of []*heldChange
	for _, h := range held {
		if h.state == heldJournaled {
			h.state = heldCreated
		}
		if h.state == heldCreated {
			// The bulk write sets _rev on success only; h.doc is not read after.
			docs = append(docs, h.doc)
			of = append(of, h)
		}
	}
	if len(docs) == 0 {
		return nil
	}
	res, err := p.Main.BulkDocs(ctx, docs)
	if err != nil {
		if refused(err) {
			return p.oneByOne(ctx, b, of, err)
		}
		return fmt.Errorf("write changed docs: %w", err)
	}
	var failed []int
	for i, h := range of {
		delete(b.overlay, h.change.ID)
		if i < len(res) && res[i].Err == nil {
			h.state = heldSaved
			h.savedRev = res[i].Rev
			continue
		}
		failed = append(failed, i)
	}
	landed := p.savedAnywayAll(ctx, pick(docs, failed))
	for k, i := range failed {
		h := of[i]
		if landed[k] != "" {
			h.state = heldSaved // an earlier attempt's answer was lost
			h.savedRev = landed[k]
			continue
		}
		var rerr error
		if i < len(res) {
			rerr = res[i].Err
		}
		p.Log.Info().Str("doc_id", h.change.ID).AnErr("error", rerr).Msg("Held-back save failed; processing the change again")
		if err := p.unjournal(ctx, b, h); err != nil {
			return err
		}
	}
	return nil
}

func pick(docs []transitions.Doc, at []int) []transitions.Doc {
	out := make([]transitions.Doc, len(at))
	for k, i := range at {
		out[k] = docs[i]
	}
	return out
}

// savedAnywayAll is savedAnyway for several docs, in one read when the
// store can: the revision the server holds each doc's content at, or ""
// when it does not (then the save is taken as not done).
func (p *Engine) savedAnywayAll(ctx context.Context, docs []transitions.Doc) []string {
	out := make([]string, len(docs))
	g, ok := p.Main.(infoGetter)
	if !ok || len(docs) < 2 {
		for i, doc := range docs {
			out[i] = p.savedAnyway(ctx, doc)
		}
		return out
	}
	ids := make([]string, len(docs))
	for i, doc := range docs {
		ids[i], _ = doc["_id"].(string)
	}
	cur, err := g.GetMany(ctx, ids)
	if err != nil {
		return out
	}
	for i, doc := range docs {
		if c := cur[ids[i]]; c != nil && c["_rev"] != doc["_rev"] && sameContent(c, doc) {
			out[i], _ = c["_rev"].(string)
		}
	}
	return out
}

// savedAnyway returns the revision at which the server holds doc's
// content, newer than doc's: a save whose answer was lost (connection cut)
// or that a retry reported as a 409. Only then ("" otherwise) is a failed
// save taken for done.
func (p *Engine) savedAnyway(ctx context.Context, doc transitions.Doc) string {
	id, _ := doc["_id"].(string)
	cur, err := p.Main.Get(ctx, id)
	if err != nil || cur["_rev"] == doc["_rev"] || !sameContent(cur, doc) {
		return ""
	}
	rev, _ := cur["_rev"].(string)
	return rev
}

// sameContent compares two docs without their revisions.
func sameContent(a, b transitions.Doc) bool {
	strip := func(d transitions.Doc) ([]byte, error) {
		c := make(transitions.Doc, len(d))
		for k, v := range d {
			if k != "_rev" && k != "_revisions" {
				c[k] = v
			}
		}
		return json.Marshal(c)
	}
	ja, err1 := strip(a)
	jb, err2 := strip(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// refused reports whether a bulk request failed for good (a 4xx, or a doc
// that cannot be encoded): retrying it would hold the feed forever.
func refused(err error) bool {
	var ce *couch.Error
	return errors.As(err, &ce) && !ce.Temporary()
}

// oneByOne hands the changes of a refused bulk request to Redo (journals
// cleared), so that they are processed one at a time: the one bad doc then
// fails on its own, is logged and passed over, and the others are saved.
func (p *Engine) oneByOne(ctx context.Context, b *Batch, held []*heldChange, cause error) error {
	p.Log.Warn().Err(cause).Int("changes", len(held)).Msg("A bulk write was refused; processing these changes one at a time")
	for _, h := range held {
		switch h.state {
		case heldRedo, heldSaved, heldDone:
			continue
		case heldNew:
			b.handBack(h)
		default:
			if err := p.unjournal(ctx, b, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// unjournal clears the journal of a change whose save did not happen and
// hands the change to Redo.
func (p *Engine) unjournal(ctx context.Context, b *Batch, h *heldChange) error {
	if _, err := p.writeInfo(ctx, b, h.change.ID, b.infos[h.change.ID], func(d transitions.Doc) { delete(d, pendingKey) }); err != nil {
		return err
	}
	b.handBack(h)
	return nil
}

// handBack hands a held change to Redo: its doc is read again there.
func (b *Batch) handBack(h *heldChange) {
	h.state = heldRedo
	h.dups.Revert() // the redo counts its own messages
	delete(b.overlay, h.change.ID)
	b.hydrator.Forget(h.change.ID)
	ch := h.change
	ch.Doc = nil
	b.redo = append(b.redo, ch)
}

// writeInfos writes docs and the queued info docs in one bulk request when
// the store can; a conflicting one is re-read and its transitions re-applied.
func (p *Engine) writeInfos(ctx context.Context, b *Batch, docs []transitions.Doc) error {
	queued := b.pending
	pending := append(append(make([]transitions.Doc, 0, len(docs)+len(queued)), docs...), queued...)
	b.pending = nil
	if len(pending) == 0 {
		return nil
	}
	var retry []transitions.Doc
	if bulk, ok := p.Sentinel.(infoBulk); ok {
		folded := p.foldRecords(pending)
		defer func() {
			for _, done := range folded {
				if done != nil {
					done(false)
				}
			}
		}()
		res, err := bulk.BulkDocs(ctx, pending)
		if err != nil {
			// Only the queued infos wait here: the next commit builds the
			// final infos of its held changes again.
			b.pending = queued
			return fmt.Errorf("write info docs: %w", err)
		}
		for i, r := range res {
			if i >= len(pending) {
				break
			}
			if r.Err != nil {
				retry = append(retry, pending[i])
			} else if id, _ := pending[i]["doc_id"].(string); id != "" {
				b.infos[id] = pending[i]
				if kr, ok := b.doneOnWrite[id]; ok && p.Known != nil {
					p.Known.addUnder(kr.fp, id, kr.rev)
					delete(b.doneOnWrite, id)
				}
			}
			if r.Err == nil && i < len(folded) && folded[i] != nil {
				folded[i](true)
				folded[i] = nil
			}
		}
	} else {
		retry = pending
	}
	byID := map[string]transitions.Doc{}
	var ids []string
	for _, info := range retry {
		id, _ := info["doc_id"].(string)
		byID[id] = info
		ids = append(ids, id)
	}
	// A conflicting info doc: another writer's, or this very write's whose
	// answer was lost. Re-read and re-apply, all of them at once.
	left, err := p.rewriteInfos(ctx, b, ids, func(id string, cur transitions.Doc) transitions.Doc {
		info := byID[id]
		if _, has := cur["transitions"]; has && cur["_rev"] != info["_rev"] && cur[pendingKey] == nil {
			return nil // processed meanwhile: its record stands
		}
		records, _ := info["transitions"].(map[string]any)
		d := withTransitions(cur, records)
		delete(d, pendingKey)
		return d
	})
	if err != nil {
		return err
	}
	retry = retry[:0]
	for _, id := range left {
		retry = append(retry, byID[id])
	}
	for _, info := range retry {
		id, _ := info["doc_id"].(string)
		records, _ := info["transitions"].(map[string]any)
		cur, err := p.readInfo(ctx, id)
		if err != nil {
			return fmt.Errorf("write info doc %s: %w", id, err)
		}
		if _, has := cur["transitions"]; has && cur["_rev"] != info["_rev"] && cur[pendingKey] == nil {
			continue // processed meanwhile: its record stands
		}
		if err := p.saveInfo(ctx, b, id, cur, records); err != nil {
			return err
		}
	}
	return nil
}

// recordTaker is an outbox that lets the records of delivered pushes ride
// on the batch's info-doc writes (*outbound.Queue).
type recordTaker interface {
	TakeRecords(docID string) (records []any, done func(written bool))
}

// foldRecords appends to each info doc of pending the completed_tasks
// records of the pushes the outbox has delivered for its doc, so that they
// are written with it rather than by a second write of the same info doc
// (the queue's). pending[i] is replaced by a copy: a doc kept for a later
// attempt (b.pending) stays without them. done[i], when not nil, must be
// told whether pending[i] was written as given: a conflict re-applies only
// the transitions, and the queue then records its pushes itself.
func (p *Engine) foldRecords(pending []transitions.Doc) (done []func(written bool)) {
	rt, ok := p.Outbox.(recordTaker)
	if !ok {
		return nil
	}
	done = make([]func(bool), len(pending))
	for i, info := range pending {
		id, _ := info["doc_id"].(string)
		if id == "" || info[pendingKey] != nil {
			continue
		}
		records, ack := rt.TakeRecords(id)
		if len(records) == 0 {
			continue
		}
		c := make(transitions.Doc, len(info)+1)
		for k, v := range info {
			c[k] = v
		}
		c["completed_tasks"] = append(append([]any{}, jsv.Slice(info["completed_tasks"])...), records...)
		pending[i], done[i] = c, ack
	}
	return done
}
