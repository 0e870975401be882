package transitions

import (
	"context"
	"fmt"

	"sentinel-go/couch"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
)

func jsvClone(d Doc) Doc { return jsv.CloneMap(d) }

// Batch is the state shared by the changes of one feed batch: their info
// docs read in one request, the info docs to write together before the
// batch is checkpointed, and a hydration cache that the batch's own writes
// keep current.
type Batch struct {
	infos    map[string]Doc // doc id → info doc as last read or written; nil: none exists
	pending  []Doc          // info docs to write at Flush
	hydrator *lineage.Hydrator
	store    *batchStore
	sentinel *batchInfoStore
}

// infoGetter and infoBulk are the sentinel-db calls that make batches cheap;
// stores without them (test fakes) are read and written one doc at a time.
type infoGetter interface {
	GetMany(ctx context.Context, ids []string) (map[string]Doc, error)
}

type infoBulk interface {
	BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error)
}

// NewBatch prepares a batch: the info docs of its changes are read in one
// request (when the store can), and the docs read with the feed seed the
// hydration cache. A failed preload only costs reads later.
func (p *Processor) NewBatch(ctx context.Context, changes []couch.Change) *Batch {
	b := &Batch{infos: map[string]Doc{}}
	b.store = &batchStore{Store: p.Main, b: b}
	b.sentinel = &batchInfoStore{InfoStore: p.Sentinel, b: b}
	b.hydrator = lineage.New(b.store)
	var ids []string
	for _, ch := range changes {
		if Ignored(ch.ID) || ch.Deleted {
			continue
		}
		ids = append(ids, InfoID(ch.ID))
		if ch.Doc != nil {
			b.hydrator.Prime(ch.Doc)
		}
	}
	if g, ok := p.Sentinel.(infoGetter); ok && len(ids) > 0 {
		if got, err := g.GetMany(ctx, ids); err == nil {
			for _, ch := range changes {
				if Ignored(ch.ID) || ch.Deleted {
					continue
				}
				b.infos[ch.ID] = got[InfoID(ch.ID)] // nil when missing
			}
		}
	}
	return b
}

func (b *Batch) queueInfo(info Doc) {
	id, _ := info["doc_id"].(string)
	b.infos[id] = info
	b.pending = append(b.pending, info)
}

// forget drops what the batch knows of a doc that changed behind its back.
func (b *Batch) forget(id string) {
	b.hydrator.Forget(id)
	delete(b.infos, id)
}

// Flush writes the queued info docs (one bulk request when the store can);
// a conflicting one is re-read and re-applied. The batch may be checkpointed
// only after Flush succeeds.
func (p *Processor) Flush(ctx context.Context, b *Batch) error {
	pending := b.pending
	b.pending = nil
	if len(pending) == 0 {
		return nil
	}
	var retry []Doc
	if bulk, ok := p.Sentinel.(infoBulk); ok {
		res, err := bulk.BulkDocs(ctx, pending)
		if err != nil {
			b.pending = pending
			return fmt.Errorf("write info docs: %w", err)
		}
		for i, r := range res {
			if r.Err != nil && i < len(pending) {
				retry = append(retry, pending[i])
			}
		}
	} else {
		retry = pending
	}
	for _, info := range retry {
		id, _ := info["doc_id"].(string)
		records, _ := info["transitions"].(map[string]any)
		cur, err := p.readInfo(ctx, id)
		if err != nil {
			return fmt.Errorf("write info doc %s: %w", id, err)
		}
		if _, has := cur["transitions"]; has && cur["_rev"] != info["_rev"] {
			continue // processed meanwhile: its record stands
		}
		if err := p.saveInfo(ctx, b, id, cur, records); err != nil {
			return err
		}
	}
	return nil
}

// batchStore is the main db as the transitions of a batch see it: every
// write also refreshes the batch's hydration cache, so that a later change
// of the batch hydrates with what an earlier one wrote.
type batchStore struct {
	Store
	b *Batch
}

func (s *batchStore) Put(ctx context.Context, doc Doc) error {
	err := s.Store.Put(ctx, doc)
	if id, _ := doc["_id"].(string); id != "" {
		s.b.hydrator.Forget(id)
	}
	return err
}

func (s *batchStore) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	res, err := s.Store.BulkDocs(ctx, docs)
	for _, d := range docs {
		if id, _ := d["_id"].(string); id != "" {
			s.b.hydrator.Forget(id)
		}
	}
	return res, err
}

func (s *batchStore) Create(ctx context.Context, doc Doc) (string, error) {
	id, err := s.Store.Create(ctx, doc)
	if id != "" {
		s.b.hydrator.Forget(id)
	}
	return id, err
}

// batchInfoStore is the sentinel db as the transitions of a batch see it: an
// info doc a transition writes (muting's history, a replayed report's record)
// replaces the batch's preloaded copy, so a later change of the batch reads it.
type batchInfoStore struct {
	InfoStore
	b *Batch
}

func (s *batchInfoStore) Put(ctx context.Context, doc Doc) error {
	err := s.InfoStore.Put(ctx, doc)
	if id, _ := doc["_id"].(string); len(id) > len("-info") && id[len(id)-len("-info"):] == "-info" {
		docID := id[:len(id)-len("-info")]
		if err == nil {
			s.b.infos[docID] = jsvClone(doc)
		} else {
			delete(s.b.infos, docID)
		}
	}
	return err
}
