package couch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// IndexedDB is the main database with the hot lookups answered by an
// Index once it is bootstrapped (before that, by the views). Its writes keep
// the index current; a failed write drops the cached body of the doc.
type IndexedDB struct {
	*DB
	Index *Index
	// WaitForBuild makes lookups wait for an index being built (true for a
	// new IndexedDB, see Prepare); false sends them to the views until it
	// is ready.
	WaitForBuild bool
}

// NewIndexedDB wraps db with a fresh (not yet bootstrapped) index.
func NewIndexedDB(db *DB) *IndexedDB {
	return &IndexedDB{DB: db, Index: NewIndex(), WaitForBuild: true}
}

// Prepare readies the index's build, before lookups begin: it loads the
// snapshot kept in store (the sentinel db), after which Bootstrap only
// catches up. Without a usable snapshot Bootstrap scans, and lookups wait
// for the scan whatever the database's size: the views would answer them
// only once built, and on a database whose views were never built (the
// daemon's first start on it, when there is no snapshot) the first query
// builds them over every doc, which took PouchDB Server far longer than the
// scan (on a million docs, the scan fell from thousands of docs a second to
// about 200 while the views were being built). unusable says why a snapshot
// that exists was not used (the scan then replaces it); err is a failure to
// read it (the caller may retry once the server answers, or go on).
func (d *IndexedDB) Prepare(ctx context.Context, store *DB) (loaded bool, unusable, err error) {
	err = d.Index.Load(ctx, store, d.Name())
	d.Index.Begin()
	switch {
	case err == nil:
		return true, nil, nil
	case errors.Is(err, errSnapshot):
		return false, err, nil
	case errors.Is(err, ErrNotFound):
		return false, nil, nil
	}
	return false, nil, err
}

// KeepSnapshots saves a snapshot of the index to store (the sentinel db)
// whenever one is due (see Index.SnapshotDue), checking every interval,
// and, when anything changed at all, at least every idleSnapshot, until
// ctx ends. A failed save is handed to failed and tried again later: a
// snapshot is only ever an optimisation of the next start.
func (d *IndexedDB) KeepSnapshots(ctx context.Context, store *DB, interval time.Duration, failed func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			// At a stop, what changed since the last snapshot is saved
			// (bounded: the stop must end within 5 s), so that the next
			// start has nothing to catch up.
			if d.Index.Ready() && d.Index.Changed() > 0 {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopSnapshot)
				if err := d.Index.SaveSnapshot(sctx, store, d.Name()); err != nil && failed != nil {
					failed(err)
				}
				cancel()
			}
			return
		case <-t.C:
		}
		if !d.Index.SnapshotDue() && !(d.Index.Ready() && d.Index.Changed() > 0 && time.Since(last) >= idleSnapshot) {
			continue
		}
		if err := d.Index.SaveSnapshot(ctx, store, d.Name()); err != nil {
			if ctx.Err() == nil && failed != nil {
				failed(err)
			}
			continue
		}
		last = time.Now()
	}
}

// stopSnapshot bounds the snapshot saved at a stop.
const stopSnapshot = 2 * time.Second

// idleSnapshot is the longest a change waits for a snapshot that covers it.
const idleSnapshot = 5 * time.Minute

// Bootstrap builds the index (see Index.Bootstrap).
func (d *IndexedDB) Bootstrap(ctx context.Context) error { return d.Index.Bootstrap(ctx, d.DB) }

// Indexed reports whether lookups are answered from memory (the index is
// built or being built: lookups wait for it): writes the caller holds back
// are then visible to them once Observe'd.
func (d *IndexedDB) Indexed() bool {
	return d.Index.Ready() || d.WaitForBuild && d.Index.InUse()
}

// fromIndex reports whether the index answers a lookup: once built, or
// while built when WaitForBuild (the lookup then waits for it); otherwise
// the views answer.
func (d *IndexedDB) fromIndex(ctx context.Context) (bool, error) {
	if d.Index.Ready() {
		return true, nil
	}
	if !d.WaitForBuild {
		return false, nil
	}
	err := d.Index.WaitReady(ctx)
	if errors.Is(err, ErrNotBuilding) {
		return false, nil
	}
	return err == nil, err
}

// Observe records a doc's new version in the index (e.g. a write that is
// held back to be sent in bulk).
func (d *IndexedDB) Observe(doc Doc) { d.Index.Observe(doc) }

// contacts returns the contacts filed under key, in view order: cached
// bodies, the rest read in one request; candidates whose doc does not carry
// the key (a hash collision) or no longer exists are left out.
func (d *IndexedDB) contacts(ctx context.Context, key string) ([]Doc, error) {
	ids := d.Index.candidates(key)
	if len(ids) == 0 {
		return nil, nil
	}
	got, err := d.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Doc, 0, len(ids))
	for _, id := range ids {
		if doc, ok := got[id]; ok && hasKey(doc, key) {
			out = append(out, doc)
		}
	}
	return out, nil
}

// contactsBy answers a contact lookup from the index under key, or with
// view when no index is being built.
func (d *IndexedDB) contactsBy(ctx context.Context, key string, view func() ([]Doc, error)) ([]Doc, error) {
	ok, err := d.fromIndex(ctx)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return view()
	}
	return d.contacts(ctx, key)
}

// ContactsByPhone returns contacts whose phone is exactly phone.
func (d *IndexedDB) ContactsByPhone(ctx context.Context, phone string) ([]Doc, error) {
	return d.contactsBy(ctx, phoneKey+phone, func() ([]Doc, error) { return d.DB.ContactsByPhone(ctx, phone) })
}

// ContactsByShortcode returns contacts whose patient_id or place_id is code.
func (d *IndexedDB) ContactsByShortcode(ctx context.Context, code string) ([]Doc, error) {
	return d.contactsBy(ctx, shortcodeKey+code, func() ([]Doc, error) { return d.DB.ContactsByShortcode(ctx, code) })
}

// ContactsByRCCode returns contacts whose upper-cased rc_code is code.
func (d *IndexedDB) ContactsByRCCode(ctx context.Context, code string) ([]Doc, error) {
	return d.contactsBy(ctx, rcCodeKey+code, func() ([]Doc, error) { return d.DB.ContactsByRCCode(ctx, code) })
}

// UsedShortcodes returns which of codes any doc holds.
func (d *IndexedDB) UsedShortcodes(ctx context.Context, codes []string) (map[string]bool, error) {
	ok, err := d.fromIndex(ctx)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return d.DB.UsedShortcodes(ctx, codes)
	}
	return d.Index.Used(codes), nil
}

// Get reads a doc, from the cache when it holds it.
func (d *IndexedDB) Get(ctx context.Context, id string) (Doc, error) {
	if doc, ok := d.Index.Doc(id); ok {
		return doc, nil
	}
	if !d.Index.MayExist(id) {
		return nil, fmt.Errorf("get %s (db %s): %w", id, d.Name(), ErrNotFound)
	}
	doc, err := d.DB.Get(ctx, id)
	if err == nil && cachedDoc(doc) {
		d.Index.Observe(doc)
	}
	return doc, err
}

// GetMany reads docs by id, cached ones from memory.
func (d *IndexedDB) GetMany(ctx context.Context, ids []string) (map[string]Doc, error) {
	out := make(map[string]Doc, len(ids))
	var missing []string
	for _, id := range ids {
		if doc, ok := d.Index.Doc(id); ok {
			out[id] = doc
		} else if d.Index.MayExist(id) {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	got, err := d.DB.GetMany(ctx, missing)
	if err != nil {
		return nil, err
	}
	for id, doc := range got {
		if cachedDoc(doc) {
			d.Index.Observe(doc)
		}
		out[id] = doc
	}
	return out, nil
}

// Put writes doc and records it.
func (d *IndexedDB) Put(ctx context.Context, doc Doc) error {
	err := d.DB.Put(ctx, doc)
	d.afterWrite(doc, err)
	return err
}

// Create saves a new doc and records it.
func (d *IndexedDB) Create(ctx context.Context, doc Doc) (string, error) {
	id, err := d.DB.Create(ctx, doc)
	d.afterWrite(doc, err)
	return id, err
}

// BulkDocs writes docs in one request and records those written.
func (d *IndexedDB) BulkDocs(ctx context.Context, docs []Doc) ([]BulkResult, error) {
	res, err := d.DB.BulkDocs(ctx, docs)
	if err != nil {
		return res, err
	}
	for i, r := range res {
		if i < len(docs) {
			d.afterWrite(docs[i], r.Err)
		}
	}
	return res, nil
}

func (d *IndexedDB) afterWrite(doc Doc, err error) {
	id, _ := doc["_id"].(string)
	switch {
	case err == nil:
		d.Index.Observe(doc)
	case id != "":
		// A 409 means the cached body was stale; any other failure leaves
		// the doc's state unknown (the write may have happened).
		d.Index.Forget(id)
	}
}
