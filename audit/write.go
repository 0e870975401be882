package audit

import (
	"context"
	"errors"
	"fmt"

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
// err is a failure of the database (unreachable, down, missing: nothing
// may have been written, and writing the same entries again is safe);
// lost are the entries it gave up on: a conflict that outlasted the
// attempts, an audit doc the server rejected.
func Write(ctx context.Context, store Store, entries []Entry) (lost []Entry, err error) {
	var ids []string
	byID := map[string][]Entry{}
	for _, e := range entries {
		if _, ok := byID[e.ID]; !ok {
			ids = append(ids, e.ID)
		}
		byID[e.ID] = append(byID[e.ID], e)
	}
	for attempt := 1; len(ids) > 0; attempt++ {
		current, err := store.GetMany(ctx, ids)
		if err != nil {
			return lost, fmt.Errorf("read audit docs: %w", err)
		}
		var docs []couch.Doc
		var docOf []string // main-db id of each doc; "" for a rotated copy
		for _, id := range ids {
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
			switch {
			case errors.Is(res[i].Err, couch.ErrConflict) && attempt < maxAttempts:
				again = append(again, id)
			case couch.Unreachable(res[i].Err):
				return lost, fmt.Errorf("write audit doc %s: %w", id, res[i].Err)
			default:
				lost = append(lost, byID[id]...)
			}
		}
		ids = again
	}
	return lost, nil
}
