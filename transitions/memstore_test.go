package transitions

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"sentinel-go/couch"
	"sentinel-go/jsv"
)

// memStore is an in-memory main or sentinel db for unit tests that must not
// need a server (fuzzing the pipeline). Views are answered by scanning.
type memStore struct {
	mu   sync.Mutex
	docs map[string]Doc
	seq  int
}

func newMemStore(docs ...Doc) *memStore {
	m := &memStore{docs: map[string]Doc{}}
	for _, d := range docs {
		d = jsv.CloneMap(d)
		d["_rev"] = "1-a"
		m.docs[d["_id"].(string)] = d
	}
	return m
}

func (m *memStore) Get(_ context.Context, id string) (Doc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[id]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", id, couch.ErrNotFound)
	}
	return jsv.CloneMap(d), nil
}

func (m *memStore) Put(_ context.Context, doc Doc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, _ := doc["_id"].(string)
	if id == "" {
		return fmt.Errorf("no id")
	}
	cur, exists := m.docs[id]
	if exists && cur["_rev"] != doc["_rev"] || !exists && doc["_rev"] != nil && doc["_rev"] != "" {
		return fmt.Errorf("put %s: %w", id, couch.ErrConflict)
	}
	m.seq++
	doc["_rev"] = strconv.Itoa(m.seq+1) + "-x"
	m.docs[id] = jsv.CloneMap(doc)
	return nil
}

func (m *memStore) Create(ctx context.Context, doc Doc) (string, error) {
	if _, ok := doc["_id"]; !ok {
		m.mu.Lock()
		m.seq++
		doc["_id"] = "gen" + strconv.Itoa(m.seq)
		m.mu.Unlock()
	}
	delete(doc, "_rev")
	return doc["_id"].(string), m.Put(ctx, doc)
}

func (m *memStore) GetMany(_ context.Context, ids []string) (map[string]Doc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Doc{}
	for _, id := range ids {
		if d, ok := m.docs[id]; ok {
			out[id] = jsv.CloneMap(d)
		}
	}
	return out, nil
}

func (m *memStore) filter(pred func(Doc) bool) []Doc {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Doc
	for _, d := range m.docs {
		if pred(d) {
			out = append(out, jsv.CloneMap(d))
		}
	}
	return out
}

func isContactDoc(d Doc) bool {
	switch d["type"] {
	case "contact", "person", "clinic", "health_center", "district_hospital":
		return true
	}
	return false
}

func (m *memStore) ContactsByPhone(_ context.Context, phone string) ([]Doc, error) {
	return m.filter(func(d Doc) bool { return isContactDoc(d) && d["phone"] == phone }), nil
}

func (m *memStore) ContactsByShortcode(_ context.Context, code string) ([]Doc, error) {
	return m.filter(func(d Doc) bool {
		return isContactDoc(d) && (jsv.String(d["patient_id"]) == code || jsv.String(d["place_id"]) == code)
	}), nil
}

func (m *memStore) ContactsByRCCode(_ context.Context, code string) ([]Doc, error) {
	return m.filter(func(d Doc) bool { return isContactDoc(d) && d["rc_code"] != nil && jsv.String(d["rc_code"]) == code }), nil
}

func (m *memStore) UsedShortcodes(_ context.Context, codes []string) (map[string]bool, error) {
	used := map[string]bool{}
	for _, c := range codes {
		if len(m.filter(func(d Doc) bool {
			return jsv.String(d["patient_id"]) == c || jsv.String(d["place_id"]) == c || jsv.String(d["case_id"]) == c
		})) > 0 {
			used[c] = true
		}
	}
	return used, nil
}

func (m *memStore) ReportsBySubject(_ context.Context, ids []string) ([]Doc, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	return m.filter(func(d Doc) bool {
		if d["type"] != "data_record" || d["form"] == nil {
			return false
		}
		f := jsv.Map(d["fields"])
		for _, v := range []any{d["patient_id"], d["place_id"], d["case_id"], f["patient_id"], f["place_id"], f["case_id"], f["patient_uuid"], f["place_uuid"]} {
			if v != nil && want[jsv.String(v)] {
				return true
			}
		}
		return false
	}), nil
}

func (m *memStore) ReportsByFreetext(context.Context, string) ([]couch.FreetextReport, error) {
	return nil, nil
}

func (m *memStore) DescendantIDs(_ context.Context, ancestor string) ([]string, error) {
	var out []string
	for _, d := range m.filter(isContactDoc) {
		for p, i := jsv.Map(d["parent"]), 0; p != nil && i < 20; p, i = jsv.Map(p["parent"]), i+1 {
			if p["_id"] == ancestor {
				out = append(out, d["_id"].(string))
				break
			}
		}
	}
	return out, nil
}

func (m *memStore) ReportsByDate(_ context.Context, forms []string, start, end float64) ([]Doc, error) {
	want := map[string]bool{}
	for _, f := range forms {
		want[f] = true
	}
	return m.filter(func(d Doc) bool {
		rd, ok := d["reported_date"].(float64)
		f, _ := d["form"].(string)
		return d["type"] == "data_record" && f != "" && ok && rd >= start && rd <= end && (len(forms) == 0 || want[f])
	}), nil
}

func (m *memStore) ReportsByFormAndParent(_ context.Context, form, parentID string) ([]Doc, error) {
	return m.filter(func(d Doc) bool {
		p, _ := jsv.Get(d, "contact.parent._id")
		return d["type"] == "data_record" && d["form"] == form && p == parentID
	}), nil
}

func (m *memStore) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	return bulkViaPut(ctx, m, docs), nil
}

// bulkViaPut writes docs one by one, for test stores.
func bulkViaPut(ctx context.Context, s interface {
	Put(context.Context, Doc) error
}, docs []couch.Doc) []couch.BulkResult {
	out := make([]couch.BulkResult, len(docs))
	for i, d := range docs {
		id, _ := d["_id"].(string)
		err := s.Put(ctx, d)
		rev, _ := d["_rev"].(string)
		out[i] = couch.BulkResult{ID: id, Rev: rev, Err: err}
	}
	return out
}
