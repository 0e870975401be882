package couch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"sentinel-go/jsv"
)

// Index answers the lookups of the hot path (contacts by phone, by shortcode
// and by rc_code; which shortcodes are taken; whether a doc exists) from
// memory, with the results of the design doc's views contacts_by_phone,
// contacts_by_reference and docs_by_shortcode: the map functions below are
// their Go twins.
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
// Keys are stored as 64-bit hashes to keep the index small (about 80 bytes
// per contact; the ids and shortcodes of other docs in hashSets, about 8
// bytes each): a collision can only add a candidate, and candidates are
// checked against their docs (IndexedDB does), make a free shortcode look
// taken, or cost a read of a doc that does not exist.
//
// A restart need not scan: the index is saved now and then as a snapshot
// with the feed sequence it covers (SaveSnapshot), and Bootstrap loads it
// and reads `_changes` from that sequence, falling back to the scan when
// there is no usable snapshot (see snapshot.go).
//
// Contact docs themselves are kept in a bounded cache (contacts are few and
// read by every report of a batch); other docs are always read from the
// server. An Index is safe for concurrent use.
type Index struct {
	mu    sync.RWMutex
	ready bool
	// While Bootstrap runs (building), lookups wait for it (readyCh), and
	// the ids observed from elsewhere (fresh: the feed, own writes) are not
	// overwritten by the scan, whose pages may be older.
	building bool
	readyCh  chan struct{}
	fresh    map[string]struct{}
	// scanFrom is the last doc id of the last page the scan finished, and
	// scanned how many docs it had seen: where an interrupted scan resumes.
	scanFrom string
	scanned  int
	// loaded: a snapshot was loaded, and Bootstrap catches up from
	// catchFrom (where an interrupted catch-up resumes) instead of scanning.
	loaded    bool
	catchFrom string
	// seq is a feed sequence the index is known to cover: every change
	// after it is to be read again to bring a snapshot of it up to date.
	// Each seq set here is such a lower bound (the scan's start, the end of
	// a catch-up, the last feed batch observed), so the last one set is
	// kept, even when the feed rewinds to an older one.
	seq string
	// changed counts the docs observed since the last snapshot; snapRev is
	// the snapshot doc's revision.
	changed int
	snapRev string
	// byKey: hash of "p:"+phone, "s:"+shortcode or "e:"+RC code → contact
	// ids; keysOf: hash of a contact id → hashes of its keys, to drop them
	// when it changes. Most keys have one contact and most contacts one key:
	// the "1" maps hold those without a slice, the "N" maps the others.
	byKey1  map[uint64]string
	byKeyN  map[uint64][]string
	keysOf1 map[uint64]uint64
	keysOfN map[uint64][]uint64
	// used: hashes of the shortcodes any doc holds.
	used *hashSet
	// ids: hashes of every doc id seen (deleted ones stay: "may exist").
	ids  *hashSet
	docs *docCache
	// Progress, when set, is called after each page of the Bootstrap scan
	// with the number of docs read so far (logs, the systemd watchdog).
	Progress func(scanned int)
}

// docCacheSize bounds the cached contact docs: CHWs and their places, read
// by every report, fit many times over.
const docCacheSize = 5000

// NewIndex returns an empty index; it answers nothing until Bootstrap.
func NewIndex() *Index {
	return &Index{
		readyCh: make(chan struct{}),
		byKey1:  map[uint64]string{},
		byKeyN:  map[uint64][]string{},
		keysOf1: map[uint64]uint64{},
		keysOfN: map[uint64][]uint64{},
		used:    newHashSet(),
		ids:     newHashSet(),
		docs:    newDocCache(docCacheSize),
	}
}

func (x *Index) hash(s string) uint64 { return keyHash(s) }

// viewContactTypes are the contact types the views know (CONTACT_TYPES).
var viewContactTypes = map[string]bool{"contact": true, "person": true, "clinic": true, "health_center": true, "district_hospital": true}

// isViewContact is the views' contact test.
func isViewContact(doc Doc) bool {
	t, _ := doc["type"].(string)
	return viewContactTypes[t]
}

// emitsShortcode is the views' test of a shortcode value: defined, not null, not the empty string.
func emitsShortcode(v any) bool {
	if v == nil {
		return false
	}
	s, isStr := v.(string)
	return !isStr || s != ""
}

// Key prefixes of contact lookups.
const (
	phoneKey     = "p:"
	shortcodeKey = "s:"
	rcCodeKey    = "e:"
)

// contactKeysOf is the Go twin of contacts_by_phone and contacts_by_reference;
// ok is false for docs that are not contacts.
func contactKeysOf(doc Doc) (keys []string, ok bool) {
	if !isViewContact(doc) {
		return nil, false
	}
	if jsv.Truthy(doc["phone"]) {
		keys = append(keys, phoneKey+jsv.String(doc["phone"]))
	}
	for _, f := range []string{"patient_id", "place_id"} {
		if v, ok := doc[f]; ok && emitsShortcode(v) {
			keys = append(keys, shortcodeKey+jsv.String(v))
		}
	}
	if jsv.Truthy(doc["rc_code"]) {
		keys = append(keys, rcCodeKey+strings.ToUpper(jsv.String(doc["rc_code"])))
	}
	return keys, true
}

// hasKey reports whether doc is a contact filed under key.
func hasKey(doc Doc, key string) bool {
	keys, _ := contactKeysOf(doc)
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
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

// ErrNotBuilding is WaitReady's answer when no Bootstrap has started.
var ErrNotBuilding = errors.New("lookup index not built")

// WaitReady waits until the index is ready. It returns ErrNotBuilding at once
// when no Bootstrap has started (the caller then uses the views).
func (x *Index) WaitReady(ctx context.Context) error {
	x.mu.RLock()
	ready, building := x.ready, x.building
	x.mu.RUnlock()
	switch {
	case ready:
		return nil
	case !building:
		return ErrNotBuilding
	}
	select {
	case <-x.readyCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready reports whether the index is built: lookups are then answered
// from memory.
func (x *Index) Ready() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.ready
}

// InUse reports whether the index is ready or being built.
func (x *Index) InUse() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.ready || x.building
}

// bootstrapPage is the page size of the startup scan.
const bootstrapPage = 1000

// Bootstrap builds the index: from a loaded snapshot (Load), by reading
// `_changes` from the snapshot's sequence to the end of the feed; otherwise
// with a paged `_all_docs?include_docs=true` scan of db. Docs are decoded a
// page at a time and only their keys kept.
//
// It may run while the feed is processed: lookups wait for it, and what the
// feed and own writes observe meanwhile wins over the scan's pages.
func (x *Index) Bootstrap(ctx context.Context, db *DB) error {
	x.mu.Lock()
	if x.ready {
		x.mu.Unlock()
		return nil
	}
	x.begin()
	loaded, since := x.loaded, x.catchFrom
	x.mu.Unlock()
	var err error
	if loaded {
		err = x.catchUp(ctx, db, since)
	} else {
		err = x.scan(ctx, db)
	}
	if err != nil {
		return err
	}
	x.mu.Lock()
	x.ready, x.building, x.fresh = true, false, nil
	close(x.readyCh)
	x.mu.Unlock()
	return nil
}

// begin marks the index as being built (must hold x.mu): lookups wait for
// it from then on.
func (x *Index) begin() {
	x.building = true
	if x.fresh == nil {
		x.fresh = map[string]struct{}{}
	}
}

// Begin marks the index as being built before Bootstrap runs, so that no
// lookup made meanwhile goes to the views (see IndexedDB.Prepare).
func (x *Index) Begin() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.ready {
		x.begin()
	}
}

// scan reads every doc of db into the index.
func (x *Index) scan(ctx context.Context, db *DB) error {
	x.mu.Lock()
	// A scan cut by an outage (or any error) resumes after the last page it
	// finished: its docs are in the index, and what changed since comes
	// through the feed, which wins over the scan anyway.
	after, scanned, first := x.scanFrom, x.scanned, x.scanFrom == "" && x.scanned == 0
	x.mu.Unlock()
	if first {
		// Every change up to the feed's current end is seen by the pages
		// read after it: a snapshot catches up from here at worst.
		seq, err := db.CurrentSeq(ctx)
		if err != nil {
			return fmt.Errorf("index scan: %w", err)
		}
		x.SetSeq(seq)
	}
	// Uncompressed: the server's compression of the pages cost more than
	// their transfer (see Uncompressed).
	err := db.AllDocsPages(ctx, map[string]any{"include_docs": true}, bootstrapPage, after, func(rows []Row) error {
		for _, r := range rows {
			if r.Doc != nil && !strings.HasPrefix(r.ID, "_design/") {
				x.observe(r.Doc, true)
			}
		}
		scanned += len(rows)
		if len(rows) > 0 {
			x.mu.Lock()
			x.scanFrom, x.scanned = rows[len(rows)-1].ID, scanned
			x.mu.Unlock()
		}
		if x.Progress != nil {
			x.Progress(scanned)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index scan: %w", err)
	}
	return nil
}

// catchUp brings a loaded snapshot up to date: every change after since,
// with its doc, to the end of the feed. A rewound feed only delivers more
// changes again, which observing twice leaves as they were.
func (x *Index) catchUp(ctx context.Context, db *DB, since string) error {
	read := 0
	for {
		b, err := db.Changes(ctx, FeedOptions{Since: since, Limit: bootstrapPage, IncludeDocs: true, Normal: true})
		if err != nil {
			return fmt.Errorf("index catch-up: %w", err)
		}
		x.catchUpBatch(b.Changes)
		if len(b.Changes) > 0 {
			since = b.Changes[len(b.Changes)-1].Seq
		}
		if len(b.Changes) < bootstrapPage && b.LastSeq != "" {
			since = b.LastSeq
		}
		read += len(b.Changes)
		x.mu.Lock()
		x.catchFrom = since
		x.mu.Unlock()
		if x.Progress != nil {
			x.Progress(read)
		}
		if len(b.Changes) < bootstrapPage {
			x.SetSeq(since)
			return nil
		}
	}
}

// catchUpBatch observes one batch of the catch-up; like the scan's pages,
// it loses to what the feed and own writes observed since the build began.
func (x *Index) catchUpBatch(changes []Change) {
	for _, ch := range changes {
		switch {
		case strings.HasPrefix(ch.ID, "_design/"):
		case ch.Deleted:
			x.remove(ch.ID, true)
		case ch.Doc != nil:
			x.observe(ch.Doc, true)
		}
	}
}

// SetSeq records that the index covers the changes up to seq (the feed
// loop calls it after observing a batch).
func (x *Index) SetSeq(seq string) {
	x.mu.Lock()
	x.seq = seq
	x.mu.Unlock()
}

// Load fills an index not yet built from the snapshot stored in store (the
// sentinel db), taken of the main db named mainDB: Bootstrap then catches
// up from its sequence instead of scanning. It returns ErrNotFound when
// there is no snapshot, an error wrapping errSnapshot when it is unusable
// (another version, db or a corrupt one), the read's error otherwise; the
// index is then left empty.
func (x *Index) Load(ctx context.Context, store *DB, mainDB string) error {
	s, err := readSnapshot(ctx, store)
	if err == nil && s.DB != mainDB {
		err = fmt.Errorf("%w: taken of db %q", errSnapshot, s.DB)
	}
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.loaded:
		return nil
	case x.ready || x.scanned > 0:
		return fmt.Errorf("%w: the index is already built or being scanned", errSnapshot)
	}
	x.load(s)
	return nil
}

// load fills the index from s (must hold x.mu).
func (x *Index) load(s snapshot) {
	x.ids, x.used = hashSetOf(s.IDs), hashSetOf(s.Used)
	for _, p := range s.Keys {
		x.addID(p.Key, p.ID)
		h := x.hash(p.ID)
		if k, ok := x.keysOf1[h]; ok {
			delete(x.keysOf1, h)
			x.keysOfN[h] = []uint64{k, p.Key}
		} else if ks, ok := x.keysOfN[h]; ok {
			x.keysOfN[h] = append(ks, p.Key)
		} else {
			x.keysOf1[h] = p.Key
		}
	}
	x.loaded, x.catchFrom, x.seq = true, seqOrZero(s.Seq), seqOrZero(s.Seq)
}

// take returns the index's state as a snapshot of the main db named mainDB
// (must hold x.mu; its sets are the index's own, to encode before unlocking).
func (x *Index) take(mainDB string) snapshot {
	s := snapshot{Seq: x.seq, DB: mainDB, IDs: x.ids.members(), Used: x.used.members()}
	s.Keys = make([]keyPair, 0, len(x.byKey1)+2*len(x.byKeyN))
	for k, id := range x.byKey1 {
		s.Keys = append(s.Keys, keyPair{k, id})
	}
	for k, ids := range x.byKeyN {
		for _, id := range ids {
			s.Keys = append(s.Keys, keyPair{k, id})
		}
	}
	return s
}

// SnapshotDue reports whether the index is built and enough has changed
// since the last snapshot to write another: a snapshot costs about as much
// as the catch-up of a fiftieth of the docs (at least minSnapshotChanges);
// the first after a scan is due at once.
func (x *Index) SnapshotDue() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.ready || x.seq == "" {
		return false
	}
	// A scan is what a snapshot saves the next start: keep it at once.
	return x.snapRev == "" && !x.loaded && x.changed > 0 || x.changed >= max(minSnapshotChanges, x.ids.len()/50)
}

// minSnapshotChanges is the fewest changes between two snapshots.
const minSnapshotChanges = 200

// Changed is the number of docs observed since the last snapshot.
func (x *Index) Changed() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.changed
}

// SaveSnapshot writes the built index as a snapshot of mainDB to store (the
// sentinel db). The index is encoded under its lock (tens of ms for a
// million docs), then written without holding it.
func (x *Index) SaveSnapshot(ctx context.Context, store *DB, mainDB string) error {
	var buf bytes.Buffer
	x.mu.Lock()
	if !x.ready || x.seq == "" {
		x.mu.Unlock()
		return nil
	}
	changed, rev := x.changed, x.snapRev
	s := x.take(mainDB)
	buf.Grow(s.size())
	err := s.encode(&buf)
	x.mu.Unlock()
	if err != nil {
		return err
	}
	rev, err = writeSnapshot(ctx, store, rev, buf.Bytes())
	if err != nil {
		return err
	}
	x.mu.Lock()
	x.snapRev = rev
	x.changed -= changed
	x.mu.Unlock()
	return nil
}

// Observe records the current version of a doc (from the feed, a read or
// an own write).
func (x *Index) Observe(doc Doc) { x.observe(doc, false) }

// observe records doc; a scanned doc is dropped when a fresher version was
// observed since the scan began.
func (x *Index) observe(doc Doc, scanned bool) {
	id, _ := doc["_id"].(string)
	if id == "" {
		return
	}
	if del, _ := doc["_deleted"].(bool); del {
		x.remove(id, scanned)
		return
	}
	codes := x.hashes(shortcodesOf(doc))
	keys, _ := contactKeysOf(doc)
	keyHs := x.hashes(keys)
	var body []byte
	if cachedDoc(doc) {
		body, _ = json.Marshal(doc)
	}
	h := x.hash(id)
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.building {
		if _, seen := x.fresh[id]; seen && scanned {
			return
		}
		if !scanned {
			x.fresh[id] = struct{}{}
		}
	}
	if !x.holds(h, codes, keyHs) {
		// Only what changes the index makes a snapshot due: a rewound
		// feed, which brings unchanged docs again, saves none.
		x.changed++
	}
	x.ids.add(h)
	for _, c := range codes {
		x.used.add(c)
	}
	x.dropKeys(h, id)
	switch len(keyHs) {
	case 0:
	case 1:
		x.addID(keyHs[0], id)
		x.keysOf1[h] = keyHs[0]
	default:
		for _, k := range keyHs {
			x.addID(k, id)
		}
		x.keysOfN[h] = keyHs
	}
	if body != nil {
		x.docs.put(id, body)
	} else {
		x.docs.drop(id)
	}
}

// Remove forgets a deleted doc (its shortcodes stay taken).
func (x *Index) Remove(id string) { x.remove(id, false) }

// remove forgets a deleted doc; a deletion read by the scan or the catch-up
// is dropped when a fresher version was observed since the build began.
func (x *Index) remove(id string, scanned bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.building {
		if _, seen := x.fresh[id]; seen && scanned {
			return
		}
		if !scanned {
			x.fresh[id] = struct{}{}
		}
	}
	h := x.hash(id)
	if _, one := x.keysOf1[h]; one || len(x.keysOfN[h]) > 0 {
		x.changed++
	}
	x.dropKeys(h, id)
	x.docs.drop(id)
}

// holds reports whether the index already has id h with these shortcode
// hashes taken and these contact key hashes (x.mu held).
func (x *Index) holds(h uint64, codes, keys []uint64) bool {
	if !x.ids.has(h) {
		return false
	}
	for _, c := range codes {
		if !x.used.has(c) {
			return false
		}
	}
	switch len(keys) {
	case 0:
		_, one := x.keysOf1[h]
		return !one && len(x.keysOfN[h]) == 0
	case 1:
		k, ok := x.keysOf1[h]
		return ok && k == keys[0]
	default:
		return slices.Equal(x.keysOfN[h], keys)
	}
}

// hashes are the index's hashes of ss (nil for none).
func (x *Index) hashes(ss []string) []uint64 {
	if len(ss) == 0 {
		return nil
	}
	out := make([]uint64, len(ss))
	for i, s := range ss {
		out[i] = x.hash(s)
	}
	return out
}

// Forget drops the cached body of a doc (after a failed write to it: the
// cache may be stale), so that the next read goes to the server.
func (x *Index) Forget(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.docs.drop(id)
}

func (x *Index) dropKeys(h uint64, id string) {
	if k, ok := x.keysOf1[h]; ok {
		x.dropID(k, id)
		delete(x.keysOf1, h)
		return
	}
	for _, k := range x.keysOfN[h] {
		x.dropID(k, id)
	}
	delete(x.keysOfN, h)
}

// addID files id under key hash k.
func (x *Index) addID(k uint64, id string) {
	if ids, ok := x.byKeyN[k]; ok {
		x.byKeyN[k] = appendID(ids, id)
		return
	}
	if one, ok := x.byKey1[k]; ok {
		if one != id {
			delete(x.byKey1, k)
			x.byKeyN[k] = []string{one, id}
		}
		return
	}
	x.byKey1[k] = id
}

// dropID removes id from key hash k.
func (x *Index) dropID(k uint64, id string) {
	if one, ok := x.byKey1[k]; ok {
		if one == id {
			delete(x.byKey1, k)
		}
		return
	}
	switch ids := removeID(x.byKeyN[k], id); len(ids) {
	case 0:
		delete(x.byKeyN, k)
	case 1:
		delete(x.byKeyN, k)
		x.byKey1[k] = ids[0]
	default:
		x.byKeyN[k] = ids
	}
}

func appendID(ids []string, id string) []string {
	for _, have := range ids {
		if have == id {
			return ids
		}
	}
	return append(ids, id)
}

func removeID(ids []string, id string) []string {
	for i, have := range ids {
		if have == id {
			return append(ids[:i:i], ids[i+1:]...)
		}
	}
	return ids
}

// candidates returns the ids filed under key (or a colliding key), sorted:
// view rows with equal keys come in doc id order.
func (x *Index) candidates(key string) []string {
	h := x.hash(key)
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	if one, ok := x.byKey1[h]; ok {
		out = []string{one}
	} else {
		out = append(out, x.byKeyN[h]...)
	}
	sort.Strings(out)
	return out
}

// MayExist reports whether a doc with this id may exist: false only when the
// index is ready and has never seen the id.
func (x *Index) MayExist(id string) bool {
	h := x.hash(id)
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.ready {
		return true
	}
	return x.ids.has(h)
}

// Used returns which of codes a doc holds as patient_id, place_id or case_id.
func (x *Index) Used(codes []string) map[string]bool {
	out := map[string]bool{}
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, c := range codes {
		if x.used.has(x.hash(c)) {
			out[c] = true
		}
	}
	return out
}

// Doc returns a copy of a cached doc.
func (x *Index) Doc(id string) (Doc, bool) {
	x.mu.RLock()
	body, ok := x.docs.get(id)
	x.mu.RUnlock()
	if !ok {
		return nil, false
	}
	var d Doc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, false
	}
	return d, true
}

// docCache is a bounded map of doc bodies, kept as JSON (compact, and
// immutable: every read decodes a fresh copy); when full, the oldest entry
// goes (contacts are re-inserted when they change).
type docCache struct {
	max   int
	docs  map[string][]byte
	order []string
}

func newDocCache(max int) *docCache { return &docCache{max: max, docs: map[string][]byte{}} }

func (c *docCache) get(id string) ([]byte, bool) {
	d, ok := c.docs[id]
	return d, ok
}

func (c *docCache) put(id string, body []byte) {
	if _, ok := c.docs[id]; !ok {
		c.order = append(c.order, id)
	}
	c.docs[id] = body
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
	kept := make([]string, 0, len(c.docs))
	for _, id := range c.order {
		if _, ok := c.docs[id]; ok {
			kept = append(kept, id)
		}
	}
	c.order = kept
}
