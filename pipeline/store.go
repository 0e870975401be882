package pipeline

import (
	"context"

	"sentinel-go/couch"
	"sentinel-go/infodoc"
	"sentinel-go/jsv"
	"sentinel-go/transitions"
)

// batchStore is the main db as the transitions of a batch see it: held-back
// writes are read back, every write refreshes the hydration cache, anything
// the held-back writes must precede commits them first, and every failed
// call is recorded (failed), which alone makes the change fail and be
// retried, however the transition wraps or handles the error.
//
// Fail closed: it implements each method of Store itself (no embedding), so
// a method added to Store does not compile until it is decided here.
type batchStore struct {
	main transitions.Store
	b    *Batch
}

var _ transitions.Store = (*batchStore)(nil)

// failed records err when it says the database failed: not a missing doc
// nor a conflict, which are answers the transitions act on.
func (b *Batch) failed(err error) error {
	if err != nil && !transitions.IsNotFound(err) && !transitions.IsConflict(err) && b.dbErr == nil {
		b.dbErr = err
	}
	return err
}

// Get reads a doc, the held-back version first.
func (s *batchStore) Get(ctx context.Context, id string) (transitions.Doc, error) {
	if d, ok := s.b.overlay[id]; ok {
		return jsv.CloneMap(d), nil
	}
	d, err := s.main.Get(ctx, id)
	return d, s.b.failed(err)
}

// GetMany reads docs, the held-back versions first.
func (s *batchStore) GetMany(ctx context.Context, ids []string) (map[string]transitions.Doc, error) {
	if len(s.b.overlay) == 0 {
		got, err := s.main.GetMany(ctx, ids)
		return got, s.b.failed(err)
	}
	out := map[string]transitions.Doc{}
	var rest []string
	for _, id := range ids {
		if d, ok := s.b.overlay[id]; ok {
			out[id] = jsv.CloneMap(d)
		} else {
			rest = append(rest, id)
		}
	}
	if len(rest) > 0 {
		got, err := s.main.GetMany(ctx, rest)
		if err != nil {
			return nil, s.b.failed(err)
		}
		for id, d := range got {
			out[id] = d
		}
	}
	return out, nil
}

// The indexed lookups see held-back writes (they were Observe'd).

func (s *batchStore) ContactsByShortcode(ctx context.Context, code string) ([]transitions.Doc, error) {
	d, err := s.main.ContactsByShortcode(ctx, code)
	return d, s.b.failed(err)
}

func (s *batchStore) ContactsByPhone(ctx context.Context, phone string) ([]transitions.Doc, error) {
	d, err := s.main.ContactsByPhone(ctx, phone)
	return d, s.b.failed(err)
}

func (s *batchStore) ContactsByRCCode(ctx context.Context, code string) ([]transitions.Doc, error) {
	d, err := s.main.ContactsByRCCode(ctx, code)
	return d, s.b.failed(err)
}

func (s *batchStore) UsedShortcodes(ctx context.Context, codes []string) (map[string]bool, error) {
	d, err := s.main.UsedShortcodes(ctx, codes)
	return d, s.b.failed(err)
}

func (s *batchStore) Put(ctx context.Context, doc transitions.Doc) error {
	if err := s.b.writeThrough(ctx); err != nil {
		return s.b.failed(err)
	}
	err := s.main.Put(ctx, doc)
	if id, _ := doc["_id"].(string); id != "" {
		s.b.hydrator.Forget(id)
		s.b.written[id] = true
	}
	return s.b.failed(err)
}

func (s *batchStore) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	if err := s.b.writeThrough(ctx); err != nil {
		return nil, s.b.failed(err)
	}
	res, err := s.main.BulkDocs(ctx, docs)
	for _, d := range docs {
		if id, _ := d["_id"].(string); id != "" {
			s.b.hydrator.Forget(id)
			s.b.written[id] = true
		}
	}
	return res, s.b.failed(err)
}

// Create holds a new doc with its own id back when the change may; it
// cannot conflict then (ids of created docs derive from the report's id and
// revision, and a change replayed after a crash writes through).
func (s *batchStore) Create(ctx context.Context, doc transitions.Doc) (string, error) {
	if id, _ := doc["_id"].(string); id != "" && s.b.holding() {
		s.b.cur.creates = append(s.b.cur.creates, doc)
		s.b.written[id] = true
		s.b.overlay[id] = jsv.CloneMap(doc)
		s.b.hydrator.Forget(id)
		s.b.deferring.Observe(doc)
		return id, nil
	}
	if err := s.b.writeThrough(ctx); err != nil {
		return "", s.b.failed(err)
	}
	id, err := s.main.Create(ctx, doc)
	if id != "" {
		s.b.hydrator.Forget(id)
		s.b.written[id] = true
	}
	return id, s.b.failed(err)
}

// The view queries below are not answered by the index: the held-back
// writes are committed first, so that the view sees them.

func (s *batchStore) ReportsBySubject(ctx context.Context, ids []string) ([]transitions.Doc, error) {
	if err := s.b.writeThrough(ctx); err != nil {
		return nil, s.b.failed(err)
	}
	d, err := s.main.ReportsBySubject(ctx, ids)
	return d, s.b.failed(err)
}

func (s *batchStore) ReportsByFreetext(ctx context.Context, term string) ([]couch.FreetextReport, error) {
	if err := s.b.writeThrough(ctx); err != nil {
		return nil, s.b.failed(err)
	}
	d, err := s.main.ReportsByFreetext(ctx, term)
	return d, s.b.failed(err)
}

func (s *batchStore) DescendantIDs(ctx context.Context, ancestorID string) ([]string, error) {
	if err := s.b.writeThrough(ctx); err != nil {
		return nil, s.b.failed(err)
	}
	d, err := s.main.DescendantIDs(ctx, ancestorID)
	return d, s.b.failed(err)
}

func (s *batchStore) ReportsByDate(ctx context.Context, forms []string, start, end float64) ([]transitions.Doc, error) {
	if err := s.b.writeThrough(ctx); err != nil {
		return nil, s.b.failed(err)
	}
	d, err := s.main.ReportsByDate(ctx, forms, start, end)
	return d, s.b.failed(err)
}

func (s *batchStore) ReportsByFormAndParent(ctx context.Context, form, parentID string) ([]transitions.Doc, error) {
	if err := s.b.writeThrough(ctx); err != nil {
		return nil, s.b.failed(err)
	}
	d, err := s.main.ReportsByFormAndParent(ctx, form, parentID)
	return d, s.b.failed(err)
}

// batchInfoStore is the sentinel db as the transitions of a batch see it: an
// info doc a transition writes (muting's history, a replayed report's record)
// replaces the batch's preloaded copy, so a later change of the batch reads
// it. Like batchStore it implements every method itself and records failures.
type batchInfoStore struct {
	sentinel transitions.InfoStore
	b        *Batch
}

var _ transitions.InfoStore = (*batchInfoStore)(nil)

func (s *batchInfoStore) Get(ctx context.Context, id string) (transitions.Doc, error) {
	d, err := s.sentinel.Get(ctx, id)
	return d, s.b.failed(err)
}

func (s *batchInfoStore) Put(ctx context.Context, doc transitions.Doc) error {
	if err := s.b.writeThrough(ctx); err != nil {
		return s.b.failed(err)
	}
	err := s.sentinel.Put(ctx, doc)
	id, _ := doc["_id"].(string)
	if docID, ok := infodoc.DocID(id); ok {
		s.b.p.recent.forget(docID)
		if err == nil {
			s.b.infos[docID] = jsvClone(doc)
		} else {
			delete(s.b.infos, docID)
		}
	}
	return s.b.failed(err)
}
