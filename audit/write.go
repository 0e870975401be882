package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"sentinel-go/couch"
)

// Store is the audit database.
type Store interface {
	GetMany(ctx context.Context, ids []string) (map[string]couch.Doc, error)
	BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error)
}

// maxAttempts bounds the re-reads of an audit doc that another writer
// (CHT API recording a user's write) keeps changing under us.
const maxAttempts = 5

// Write appends entries to their audit docs in store: one read (`_all_docs`
// with the docs) and one bulk write, then, for the audit docs another
// writer changed in between, a re-read and a write again, at most
// maxAttempts in all. Entries of one id go into one update, in order.
//
// The audit doc of a doc the daemon created (its first entry here is at a
// revision `1-…`) is not read: it cannot exist yet, short of a purge or a
// replicated revision, and then the write is refused with a conflict and
// the doc read and written again, as for a concurrent writer.
//
// err is a failure of the database (unreachable, down, missing: nothing
// may have been written, and writing the same entries again is safe);
// lost are the entries it gave up on: a conflict that outlasted the
// attempts, an audit doc the server rejected.
func Write(ctx context.Context, store Store, entries []Entry) (lost []Entry, err error) {
	return write(ctx, store, entries, nil)
}

// Guesses of whether an audit doc exists, for the two kinds of docs the
// daemon writes: those it created (first entry at `1-…`), and the others.
const (
	kindNew = iota
	kindOld
)

// predictor learns whether the audit docs of the daemon's writes tend to
// exist, so that a Log skips reading them while they do not: on a server
// where only the daemon writes audit entries (no CHT API in front of the
// users' writes), or for docs the daemon keeps creating, every read finds
// nothing and costs the audit db as much as half the write. Guessing wrong
// costs one refused write (a 409 per doc, then the read and the write), so
// the guess follows what the last writes found.
type predictor struct {
	mu sync.Mutex
	// found is the smoothed share of audit docs found to exist, per kind.
	found [2]float64
}

// readAbove is the share of existing audit docs above which reading first
// is cheaper than writing blind: on PouchDB Server a refused write costs
// about a write, a read about half of one, so blind writes pay while at
// most about a third of the docs exist.
const readAbove = 0.25

func newPredictor() *predictor {
	// Start by reading the docs that are not new, as CHT API's entries are
	// the common case on a CHT server.
	return &predictor{found: [2]float64{kindNew: 0, kindOld: 0.5}}
}

// read reports whether audit docs of kind k should be read before writing.
// A nil predictor reads all but the new docs'.
func (p *predictor) read(k int) bool {
	if p == nil {
		return k == kindOld
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.found[k] >= readAbove
}

// observe records that existing of n audit docs of kind k were found to
// exist (by a read, or by a refused blind write).
func (p *predictor) observe(k, existing, n int) {
	if p == nil || n == 0 {
		return
	}
	// A few docs say less than a batch: their weight grows with their number.
	w := 0.7 * min(1, float64(n)/50)
	p.mu.Lock()
	p.found[k] = (1-w)*p.found[k] + w*float64(existing)/float64(n)
	p.mu.Unlock()
}

// kindOf is the kind of the audit doc that entries (of one id, in write
// order) update.
func kindOf(entries []Entry) int {
	if len(entries) > 0 && !entries[0].Archived && strings.HasPrefix(entries[0].Rev, "1-") {
		return kindNew
	}
	return kindOld
}

// write is Write with guesses from p of which audit docs exist.
func write(ctx context.Context, store Store, entries []Entry, p *predictor) (lost []Entry, err error) {
	var ids []string
	byID := map[string][]Entry{}
	for _, e := range entries {
		if _, ok := byID[e.ID]; !ok {
			ids = append(ids, e.ID)
		}
		byID[e.ID] = append(byID[e.ID], e)
	}
	// blind holds the ids whose audit doc is written without reading it:
	// it is guessed missing. Only the first attempt guesses; a conflict
	// means the doc exists, so it is read.
	blind := map[string]bool{}
	var blindN, readN [2]int
	for _, id := range ids {
		k := kindOf(byID[id])
		if p.read(k) {
			readN[k]++
		} else {
			blind[id] = true
			blindN[k]++
		}
	}
	for attempt := 1; len(ids) > 0; attempt++ {
		var toRead []string
		for _, id := range ids {
			if !blind[id] {
				toRead = append(toRead, id)
			}
		}
		current := map[string]couch.Doc{}
		if len(toRead) > 0 {
			current, err = store.GetMany(ctx, toRead)
			if err != nil {
				return lost, fmt.Errorf("read audit docs: %w", err)
			}
		}
		var found [2]int
		var docs []couch.Doc
		var docOf []string // main-db id of each doc; "" for a rotated copy
		for _, id := range ids {
			if attempt == 1 && current[id] != nil {
				found[kindOf(byID[id])]++
			}
			doc, rotated := Apply(id, current[id], byID[id])
			if doc == nil {
				continue
			}
			for _, r := range rotated {
				docs, docOf = append(docs, r), append(docOf, "")
			}
			docs, docOf = append(docs, doc), append(docOf, id)
		}
		if len(docs) == 0 {
			return lost, nil
		}
		res, err := store.BulkDocs(ctx, docs)
		if err != nil {
			return lost, fmt.Errorf("write audit docs: %w", err)
		}
		var again []string
		for i, id := range docOf {
			if id == "" || i >= len(res) || res[i].Err == nil {
				// A rotated copy that exists already was written by an
				// earlier attempt: same name, same history.
				continue
			}
			conflict := errors.Is(res[i].Err, couch.ErrConflict)
			if conflict && blind[id] {
				// Guessed missing, but there: read it (not an attempt
				// lost to another writer).
				delete(blind, id)
				found[kindOf(byID[id])]++
			}
			switch {
			case conflict && attempt < maxAttempts:
				again = append(again, id)
			case couch.Unreachable(res[i].Err):
				return lost, fmt.Errorf("write audit doc %s: %w", id, res[i].Err)
			default:
				lost = append(lost, byID[id]...)
			}
		}
		if attempt == 1 {
			for k := range found {
				p.observe(k, found[k], readN[k]+blindN[k])
			}
		}
		ids = again
	}
	return lost, nil
}
