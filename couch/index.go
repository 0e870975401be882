package couch

import (
	"context"
	"fmt"
	"hash/maphash"
	"sort"
	"strings"
	"sync"

	"sentinel-go/jsv"
)

// Index answers the lookups of the hot path (contacts by phone, by shortcode
// and by rc_code; which shortcodes are taken) from memory, with the results
// of the design doc's views contacts_by_phone, contacts_by_reference and
// docs_by_shortcode: the map functions below are their Go twins.
//
// Why not the views: PouchDB Server (and CouchDB, less so) updates a view
// index on the query that follows writes, at about a millisecond per doc
// and per view, so a lookup after each registration cost more than the
// registration itself. The index is built once by a paged `_all_docs` scan
// (Bootstrap), then kept current by every doc the feed delivers (Observe)
// and by the daemon's own writes. It therefore sees the database as of the
// scan plus every change the feed has reached: a contact edited by someone
// else after the scan is seen once the feed reaches that edit, a window of
// at most the backlog. Taken shortcodes are never forgotten (a freed code
// stays reserved), which can only make ids more unique.
//
// Contact docs themselves are kept in a bounded cache (contacts are few and
// read by every report of a batch); other docs are always read from the
// server. An Index is safe for concurrent use.
type Index struct {
	mu    sync.RWMutex
	ready bool
	// phones: phone → contact ids; refs: "s:"+shortcode or "e:"+RC code → contact ids.
	phones map[string]map[string]struct{}
	refs   map[string]map[string]struct{}
	// keysOf remembers a contact's keys, to drop them when it changes.
	keysOf map[string]contactKeys
	used   map[string]struct{}
	docs   *docCache
	// ids holds a hash of every doc id seen, so that reads of docs that do
	// not exist (shortcodes tried as ids, the shortcode length doc) need no
	// request. A collision only costs a read; deleted ids stay (same reason).
	ids  map[uint64]struct{}
	seed maphash.Seed
}

type contactKeys struct {
	phone string
	refs  []string
}

// docCacheSize bounds the cached contact docs: CHWs and their places, read
// by every report, fit many times over.
const docCacheSize = 5000

// NewIndex returns an empty index; it answers nothing until Bootstrap.
func NewIndex() *Index {
	return &Index{
		phones: map[string]map[string]struct{}{},
		refs:   map[string]map[string]struct{}{},
		keysOf: map[string]contactKeys{},
		used:   map[string]struct{}{},
		docs:   newDocCache(docCacheSize),
		ids:    map[uint64]struct{}{},
		seed:   maphash.MakeSeed(),
	}
}

// viewContactTypes are the contact types the views know (CONTACT_TYPES).
var viewContactTypes = map[string]bool{"contact": true, "person": true, "clinic": true, "health_center": true, "district_hospital": true}

// isViewContact is the views' contact test.
func isViewContact(doc Doc) bool {
	t, _ := doc["type"].(string)
	return viewContactTypes[t]
}

// emitsShortcode is the views' test of a shortcode value: defined, not null, not ”.
func emitsShortcode(v any) bool {
	if v == nil {
		return false
	}
	s, isStr := v.(string)
	return !isStr || s != ""
}

// contactKeysOf is the Go twin of contacts_by_phone and contacts_by_reference.
func contactKeysOf(doc Doc) (contactKeys, bool) {
	if !isViewContact(doc) {
		return contactKeys{}, false
	}
	var k contactKeys
	if jsv.Truthy(doc["phone"]) {
		k.phone = jsv.String(doc["phone"])
	}
	for _, f := range []string{"patient_id", "place_id"} {
		if v, ok := doc[f]; ok && emitsShortcode(v) {
			k.refs = append(k.refs, "s:"+jsv.String(v))
		}
	}
	if jsv.Truthy(doc["rc_code"]) {
		k.refs = append(k.refs, "e:"+strings.ToUpper(jsv.String(doc["rc_code"])))
	}
	return k, true
}

// shortcodesOf is the Go twin of docs_by_shortcode.
func shortcodesOf(doc Doc) []string {
	var out []string
	for _, f := range []string{"patient_id", "place_id", "case_id"} {
		if v, ok := doc[f]; ok && emitsShortcode(v) {
			out = append(out, jsv.String(v))
		}
	}
	return out
}

// cachedDoc reports whether a doc's body is kept: contacts, and the
// shortcode length doc that every new id reads.
func cachedDoc(doc Doc) bool {
	return isViewContact(doc) || doc["_id"] == ShortcodeLengthID
}

// ShortcodeLengthID is the main-db doc holding the current shortcode length.
const ShortcodeLengthID = "shortcode-id-length"

// Ready reports whether Bootstrap completed.
func (x *Index) Ready() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.ready
}

// bootstrapPage is the page size of the startup scan.
const bootstrapPage = 1000

// Bootstrap builds the index with a paged `_all_docs?include_docs=true`
// scan of db. Docs are decoded a page at a time and only their keys kept.
func (x *Index) Bootstrap(ctx context.Context, db *DB) error {
	params := map[string]any{"include_docs": true, "limit": bootstrapPage}
	for {
		rows, err := db.AllDocs(ctx, params)
		if err != nil {
			return fmt.Errorf("index scan: %w", err)
		}
		for _, r := range rows {
			if r.Doc != nil && !strings.HasPrefix(r.ID, "_design/") {
				x.Observe(r.Doc)
			}
		}
		if len(rows) < bootstrapPage {
			break
		}
		params["startkey"] = rows[len(rows)-1].ID
		params["skip"] = 1
	}
	x.mu.Lock()
	x.ready = true
	x.mu.Unlock()
	return nil
}

// Observe records the current version of a doc (from the feed, a read or
// an own write).
func (x *Index) Observe(doc Doc) {
	id, _ := doc["_id"].(string)
	if id == "" {
		return
	}
	if del, _ := doc["_deleted"].(bool); del {
		x.Remove(id)
		return
	}
	codes := shortcodesOf(doc)
	keys, isContact := contactKeysOf(doc)
	h := maphash.String(x.seed, id)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ids[h] = struct{}{}
	for _, c := range codes {
		x.used[c] = struct{}{}
	}
	x.dropKeys(id)
	if isContact {
		if keys.phone != "" {
			addKey(x.phones, keys.phone, id)
		}
		for _, r := range keys.refs {
			addKey(x.refs, r, id)
		}
		if keys.phone != "" || len(keys.refs) > 0 {
			x.keysOf[id] = keys
		}
	}
	if cachedDoc(doc) {
		x.docs.put(id, jsv.CloneMap(doc))
	} else {
		x.docs.drop(id)
	}
}

// Remove forgets a deleted doc (its shortcodes stay taken).
func (x *Index) Remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.dropKeys(id)
	x.docs.drop(id)
}

// Forget drops the cached body of a doc (after a 409 on it: the cache was
// stale), so that the next read goes to the server.
func (x *Index) Forget(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.docs.drop(id)
}

func (x *Index) dropKeys(id string) {
	old, ok := x.keysOf[id]
	if !ok {
		return
	}
	if old.phone != "" {
		dropKey(x.phones, old.phone, id)
	}
	for _, r := range old.refs {
		dropKey(x.refs, r, id)
	}
	delete(x.keysOf, id)
}

func addKey(m map[string]map[string]struct{}, key, id string) {
	ids := m[key]
	if ids == nil {
		ids = map[string]struct{}{}
		m[key] = ids
	}
	ids[id] = struct{}{}
}

func dropKey(m map[string]map[string]struct{}, key, id string) {
	if ids := m[key]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(m, key)
		}
	}
}

// sortedIDs returns the ids of a key in view order (by doc id).
func sortedIDs(ids map[string]struct{}) []string {
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// PhoneIDs returns the ids of contacts whose phone is phone.
func (x *Index) PhoneIDs(phone string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return sortedIDs(x.phones[phone])
}

// ShortcodeIDs returns the ids of contacts whose patient_id or place_id is code.
func (x *Index) ShortcodeIDs(code string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return sortedIDs(x.refs["s:"+code])
}

// RCCodeIDs returns the ids of contacts whose upper-cased rc_code is code.
func (x *Index) RCCodeIDs(code string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return sortedIDs(x.refs["e:"+code])
}

// MayExist reports whether a doc with this id may exist: false only when the
// index is ready and has never seen the id.
func (x *Index) MayExist(id string) bool {
	h := maphash.String(x.seed, id)
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.ready {
		return true
	}
	_, ok := x.ids[h]
	return ok
}

// Used returns which of codes a doc holds as patient_id, place_id or case_id.
func (x *Index) Used(codes []string) map[string]bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := map[string]bool{}
	for _, c := range codes {
		if _, ok := x.used[c]; ok {
			out[c] = true
		}
	}
	return out
}

// Doc returns a copy of a cached doc.
func (x *Index) Doc(id string) (Doc, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, ok := x.docs.get(id)
	if !ok {
		return nil, false
	}
	return jsv.CloneMap(d), true
}

// docCache is a bounded map of doc bodies; when full, the oldest entry
// goes (insertion order: contacts are re-inserted when they change).
type docCache struct {
	max   int
	docs  map[string]Doc
	order []string
}

func newDocCache(max int) *docCache { return &docCache{max: max, docs: map[string]Doc{}} }

func (c *docCache) get(id string) (Doc, bool) {
	d, ok := c.docs[id]
	return d, ok
}

func (c *docCache) put(id string, d Doc) {
	if _, ok := c.docs[id]; !ok {
		c.order = append(c.order, id)
	}
	c.docs[id] = d
	for len(c.docs) > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		delete(c.docs, old)
	}
	if len(c.order) > 2*c.max {
		c.compact()
	}
}

func (c *docCache) drop(id string) { delete(c.docs, id) }

// compact drops order entries of docs no longer cached.
func (c *docCache) compact() {
	kept := c.order[:0]
	for _, id := range c.order {
		if _, ok := c.docs[id]; ok {
			kept = append(kept, id)
		}
	}
	c.order = kept
}
