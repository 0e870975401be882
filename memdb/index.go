package memdb

import (
	"sort"

	"sentinel-go/couch"
)

// index is the twin of couch.Index for a Deferring DB: the version of each
// doc the daemon has seen (bootstrap scan, Observe, its own writes, its
// reads of contacts), the shortcodes ever seen, and the docs whose cached
// body was dropped after a failed write (read from the store again). Its
// docs are never modified in place: a stored version is shared with the
// store's entry, and every doc leaves the index as a copy.
type index struct {
	docs  map[string]Doc
	used  map[string]bool
	stale map[string]bool
}

func (x *index) clone() *index {
	c := &index{docs: make(map[string]Doc, len(x.docs)), used: make(map[string]bool, len(x.used)), stale: map[string]bool{}}
	for id, d := range x.docs {
		c.docs[id] = d
	}
	for k := range x.used {
		c.used[k] = true
	}
	for k := range x.stale {
		c.stale[k] = true
	}
	return c
}

// ix returns the index (must hold d.mu), built from the stored docs on
// first use, as couch.Index.Bootstrap scans _all_docs.
func (d *DB) ix() *index {
	if d.idx == nil {
		d.idx = &index{docs: map[string]Doc{}, used: map[string]bool{}, stale: map[string]bool{}}
		for _, doc := range d.live() {
			d.idx.observe(doc)
		}
	}
	return d.idx
}

func (x *index) observe(doc Doc) {
	id, _ := doc["_id"].(string)
	if id == "" {
		return
	}
	if del, _ := doc["_deleted"].(bool); del {
		delete(x.docs, id) // its shortcodes stay taken
		delete(x.stale, id)
		return
	}
	for _, c := range shortcodes(doc) {
		x.used[c] = true
	}
	x.docs[id] = doc
	delete(x.stale, id)
}

// cachedBody reports whether couch.Index keeps the body of doc.
func cachedBody(doc Doc) bool {
	return isViewContact(doc) || doc["_id"] == couch.ShortcodeLengthID
}

// Indexed reports whether the lookup index is on (Deferring) and not hidden.
func (d *DB) Indexed() bool { return d.Deferring && !d.HideIndex }

// Observe records a doc's new version in the index (a doc of the feed, or a
// write the pipeline holds back); a doc with `_deleted: true` is removed
// (its shortcodes stay taken). Without Deferring it does nothing.
func (d *DB) Observe(doc Doc) {
	if !d.Deferring || doc == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ix().observe(clone(doc))
}

// cached returns the index's body of a contact (must hold d.mu), as
// couch.IndexedDB's Get answers from its cache.
func (d *DB) cached(id string) (Doc, bool) {
	if !d.Deferring {
		return nil, false
	}
	x := d.ix()
	doc, ok := x.docs[id]
	if !ok || x.stale[id] || !cachedBody(doc) {
		return nil, false
	}
	return clone(doc), true
}

// afterWrite keeps the index current after an own write (must hold d.mu):
// a written doc is observed; a failed write drops the cached body.
func (d *DB) afterWrite(doc Doc, err error) {
	if !d.Deferring {
		return
	}
	x := d.ix()
	id, _ := doc["_id"].(string)
	switch {
	case err == nil:
		if e := d.docs[id]; e != nil && !e.deleted {
			x.observe(e.doc) // the version just stored
		} else {
			x.observe(Doc{"_id": id, "_deleted": true})
		}
	case id != "":
		x.stale[id] = true
	}
}

// contacts answers a contact lookup from the index (must hold d.mu): the
// ids filed under key, sorted, with their cached bodies (a stale one read
// from the store again, and kept only when it still has the key).
func (x *index) contacts(d *DB, key string) []Doc {
	var ids []string
	for id, doc := range x.docs {
		if hasKey(doc, key) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []Doc
	for _, id := range ids {
		if !x.stale[id] {
			out = append(out, clone(x.docs[id]))
			continue
		}
		e := d.docs[id]
		if e == nil || e.deleted {
			continue
		}
		x.observe(e.doc)
		if hasKey(e.doc, key) {
			out = append(out, clone(e.doc))
		}
	}
	return out
}

// observeRead records a contact read from the store (must hold d.mu), as
// couch.IndexedDB caches the contacts it reads.
func (d *DB) observeRead(doc Doc) {
	if d.Deferring && cachedBody(doc) {
		d.ix().observe(doc)
	}
}
