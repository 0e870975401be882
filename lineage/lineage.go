// Package lineage hydrates documents before the transitions run and minifies
// them before they are saved.
//
// In CouchDB a report's submitter and a contact's ancestors are stored
// minified, as nested ids: {"_id": "chw", "parent": {"_id": "clinic", ...}}.
// Hydration replaces each stub by the full document (ancestors, each
// ancestor's primary contact one level deep, linked_docs) and gives reports
// their subjects, `patient` and `place`. Minify reverses it on save and drops
// `patient`/`place` from data_records.
package lineage

import (
	"context"
	"fmt"

	"sentinel-go/config"
	"sentinel-go/jsv"
)

// Doc is a JSON document.
type Doc = map[string]any

// Store is what hydration reads.
type Store interface {
	// GetMany returns the docs that exist among ids.
	GetMany(ctx context.Context, ids []string) (map[string]Doc, error)
	// ContactsByShortcode returns contacts whose patient_id or place_id is code.
	ContactsByShortcode(ctx context.Context, code string) ([]Doc, error)
}

// maxDepth bounds ancestor walks, so that a cycle in bad data cannot loop.
const maxDepth = 20

// Hydrator hydrates docs, caching what it read for its own lifetime; make
// one per change (or per batch, when the batch's docs cannot change each
// other's lineage).
type Hydrator struct {
	store Store
	cache map[string]Doc // nil value: known missing
}

// New returns a Hydrator reading from store.
func New(store Store) *Hydrator {
	return &Hydrator{store: store, cache: map[string]Doc{}}
}

// Prime adds already-read docs to the cache.
func (h *Hydrator) Prime(docs ...Doc) {
	for _, d := range docs {
		if id, _ := d["_id"].(string); id != "" {
			h.cache[id] = d
		}
	}
}

// Forget drops a doc from the cache (it changed).
func (h *Hydrator) Forget(id string) { delete(h.cache, id) }

func (h *Hydrator) load(ctx context.Context, ids []string) error {
	var need []string
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		if _, ok := h.cache[id]; !ok {
			need = append(need, id)
		}
	}
	if len(need) == 0 {
		return nil
	}
	got, err := h.store.GetMany(ctx, need)
	if err != nil {
		return fmt.Errorf("hydrate: %w", err)
	}
	for _, id := range need {
		h.cache[id] = got[id] // nil when missing
	}
	return nil
}

func (h *Hydrator) get(ctx context.Context, id string) (Doc, error) {
	if err := h.load(ctx, []string{id}); err != nil {
		return nil, err
	}
	return h.cache[id], nil
}

// stubIDs lists the ids of a nested stub chain.
func stubIDs(stub any) []string {
	var ids []string
	for i := 0; i < maxDepth; i++ {
		m := jsv.Map(stub)
		if m == nil {
			break
		}
		if id, _ := m["_id"].(string); id != "" {
			ids = append(ids, id)
		}
		stub = m["parent"]
	}
	return ids
}

// Hydrate hydrates doc in place: its `parent` chain, its `contact` (with the
// contact's lineage), `linked_docs`, and for data_records `patient` and
// `place`. Unknown ids stay stubs.
func (h *Hydrator) Hydrate(ctx context.Context, doc Doc) error {
	// Read everything the stubs name in one request.
	ids := stubIDs(doc["parent"])
	ids = append(ids, stubIDs(doc["contact"])...)
	for _, v := range jsv.Map(doc["linked_docs"]) {
		if id := linkedID(v); id != "" {
			ids = append(ids, id)
		}
	}
	isReport := doc["type"] == "data_record"
	var patientKey, placeKey string
	if isReport {
		patientKey, placeKey = SubjectKeys(doc)
		ids = append(ids, patientKey, placeKey)
	}
	if err := h.load(ctx, ids); err != nil {
		return err
	}
	if p, ok := doc["parent"]; ok && p != nil {
		hp, err := h.lineage(ctx, p, 0)
		if err != nil {
			return err
		}
		doc["parent"] = hp
	}
	if c, ok := doc["contact"]; ok && c != nil {
		hc, err := h.contact(ctx, c)
		if err != nil {
			return err
		}
		doc["contact"] = hc
	}
	if ld := jsv.Map(doc["linked_docs"]); ld != nil {
		out := make(map[string]any, len(ld))
		for k, v := range ld {
			out[k] = v
			if id := linkedID(v); id != "" {
				if d, err := h.get(ctx, id); err != nil {
					return err
				} else if d != nil {
					out[k] = jsv.CloneMap(d)
				}
			}
		}
		doc["linked_docs"] = out
	}
	if isReport {
		if patientKey != "" {
			p, err := h.Subject(ctx, patientKey)
			if err != nil {
				return err
			}
			if p != nil {
				doc["patient"] = p
			}
		}
		if placeKey != "" {
			p, err := h.Subject(ctx, placeKey)
			if err != nil {
				return err
			}
			if p != nil {
				doc["place"] = p
			}
		}
	}
	return nil
}

func linkedID(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		id, _ := x["_id"].(string)
		return id
	}
	return ""
}

// SubjectKeys returns the keys naming a report's patient (fields.patient_id,
// else fields.patient_uuid, else patient_id) and place (fields.place_id, else
// place_id): the first non-empty of each.
func SubjectKeys(doc Doc) (patient, place string) {
	fields := jsv.Map(doc["fields"])
	patient = firstKey(fields["patient_id"], fields["patient_uuid"], doc["patient_id"])
	place = firstKey(fields["place_id"], doc["place_id"])
	return
}

func firstKey(vs ...any) string {
	for _, v := range vs {
		switch x := v.(type) {
		case string:
			if x != "" {
				return x
			}
		case float64:
			return jsv.NumberString(x)
		}
	}
	return ""
}

// Subject finds a contact by shortcode, else by _id, and returns it hydrated
// (nil when there is none).
func (h *Hydrator) Subject(ctx context.Context, key string) (Doc, error) {
	found, err := h.store.ContactsByShortcode(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("find subject %s: %w", key, err)
	}
	var c Doc
	if len(found) > 0 {
		c = found[0]
		h.Prime(c)
	} else {
		d, err := h.get(ctx, key)
		if err != nil {
			return nil, err
		}
		if d == nil || !config.IsContact(d) {
			return nil, nil
		}
		c = d
	}
	return h.HydrateContact(ctx, c)
}

// HydrateContact returns a copy of contact c with its lineage hydrated.
func (h *Hydrator) HydrateContact(ctx context.Context, c Doc) (Doc, error) {
	out := jsv.CloneMap(c)
	if err := h.load(ctx, stubIDs(c["parent"])); err != nil {
		return nil, err
	}
	if p, ok := c["parent"]; ok && p != nil {
		hp, err := h.lineage(ctx, p, 0)
		if err != nil {
			return nil, err
		}
		out["parent"] = hp
	}
	if err := h.fillPrimaryContact(ctx, out, c); err != nil {
		return nil, err
	}
	return out, nil
}

// fillPrimaryContact replaces out's `contact` by the full doc of src's
// primary contact, when it exists (one level deep: its own lineage stays minified).
func (h *Hydrator) fillPrimaryContact(ctx context.Context, out, src Doc) error {
	pc := jsv.Map(src["contact"])
	id, _ := pc["_id"].(string)
	if id == "" {
		return nil
	}
	d, err := h.get(ctx, id)
	if err != nil {
		return err
	}
	if d != nil {
		out["contact"] = jsv.CloneMap(d)
	}
	return nil
}

// FetchHydrated reads a contact by id and hydrates it (nil when missing).
func (h *Hydrator) FetchHydrated(ctx context.Context, id string) (Doc, error) {
	d, err := h.get(ctx, id)
	if err != nil || d == nil {
		return nil, err
	}
	return h.HydrateContact(ctx, d)
}

// resolve reads the full doc of stub m (nil when it has no id or is
// missing) and returns the copy to hydrate (the full doc, else the stub) and
// the parent to follow: the stub's own chain, else the doc's.
func (h *Hydrator) resolve(ctx context.Context, m Doc) (out, full Doc, next any, err error) {
	if id, _ := m["_id"].(string); id != "" {
		if full, err = h.get(ctx, id); err != nil {
			return nil, nil, nil, err
		}
	}
	next = m["parent"]
	if full != nil {
		out = jsv.CloneMap(full)
		if next == nil {
			next = full["parent"]
		}
	} else {
		out = jsv.CloneMap(m)
	}
	return out, full, next, nil
}

// contact hydrates a report's or place's `contact` stub: the full contact doc
// whose parent is the hydrated chain of the stub (or of the doc itself).
func (h *Hydrator) contact(ctx context.Context, stub any) (any, error) {
	m := jsv.Map(stub)
	if m == nil {
		return stub, nil
	}
	out, _, parent, err := h.resolve(ctx, m)
	if err != nil {
		return nil, err
	}
	if parent != nil {
		if err := h.load(ctx, stubIDs(parent)); err != nil {
			return nil, err
		}
		hp, err := h.lineage(ctx, parent, 0)
		if err != nil {
			return nil, err
		}
		out["parent"] = hp
	}
	return out, nil
}

// lineage hydrates an ancestor chain: each level the full doc (when found)
// with its primary contact, and its parent hydrated likewise.
func (h *Hydrator) lineage(ctx context.Context, stub any, depth int) (any, error) {
	m := jsv.Map(stub)
	if m == nil || depth >= maxDepth {
		return stub, nil
	}
	out, full, next, err := h.resolve(ctx, m)
	if err != nil {
		return nil, err
	}
	if next != nil {
		hp, err := h.lineage(ctx, next, depth+1)
		if err != nil {
			return nil, err
		}
		out["parent"] = hp
	}
	if full != nil {
		if err := h.fillPrimaryContact(ctx, out, full); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Minify returns a shallow copy of doc as it is stored: lineage as nested
// ids, `contact` as {_id, parent}, linked_docs as ids, and for data_records
// without `patient` and `place`.
func Minify(doc Doc) Doc {
	out := make(Doc, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	if p, ok := doc["parent"]; ok && p != nil {
		out["parent"] = MinifyLineage(p)
	}
	if c := jsv.Map(doc["contact"]); c != nil {
		out["contact"] = minifyContact(c)
	}
	if ld := jsv.Map(doc["linked_docs"]); ld != nil {
		m := make(map[string]any, len(ld))
		for k, v := range ld {
			if lm := jsv.Map(v); lm != nil {
				if id, _ := lm["_id"].(string); id != "" {
					m[k] = id
					continue
				}
			}
			m[k] = v
		}
		out["linked_docs"] = m
	}
	if doc["type"] == "data_record" {
		delete(out, "patient")
		delete(out, "place")
	}
	return out
}

func minifyContact(c Doc) any {
	out := Doc{}
	if id, ok := c["_id"]; ok {
		out["_id"] = id
	}
	if p, ok := c["parent"]; ok && p != nil {
		out["parent"] = MinifyLineage(p)
	}
	if len(out) == 0 {
		return c
	}
	return out
}

// MinifyLineage turns a hydrated ancestor chain into nested id stubs.
func MinifyLineage(p any) any {
	m := jsv.Map(p)
	if m == nil {
		return p
	}
	id, ok := m["_id"]
	if !ok {
		return p
	}
	out := Doc{"_id": id}
	if next, ok := m["parent"]; ok && next != nil {
		if mn := MinifyLineage(next); jsv.Map(mn) != nil {
			out["parent"] = mn
		}
	}
	return out
}

// Ancestors returns the hydrated ancestor docs of a hydrated contact, nearest first.
func Ancestors(c Doc) []Doc {
	var out []Doc
	p := jsv.Map(c["parent"])
	for i := 0; p != nil && i < maxDepth; i++ {
		out = append(out, p)
		p = jsv.Map(p["parent"])
	}
	return out
}
