package couch

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// TestIndexKeysMatchViews: the Go twins of the views' map functions.
func TestIndexKeysMatchViews(t *testing.T) {
	cases := []struct {
		name  string
		doc   Doc
		keys  []string
		codes []string
	}{
		{"person with phone and patient_id", Doc{"_id": "a", "type": "person", "phone": "+254700000001", "patient_id": "12345"},
			[]string{"p:+254700000001", "s:12345"}, []string{"12345"}},
		{"numeric ids are String()ed", Doc{"_id": "b", "type": "clinic", "place_id": 4567.0, "phone": 254700.0},
			[]string{"p:254700", "s:4567"}, []string{"4567"}},
		{"rc_code upper-cased", Doc{"_id": "c", "type": "health_center", "rc_code": "ab1"}, []string{"e:AB1"}, nil},
		{"empty values emit nothing", Doc{"_id": "d", "type": "person", "phone": "", "patient_id": "", "rc_code": ""}, nil, nil},
		{"zero is a shortcode but not a phone", Doc{"_id": "e", "type": "person", "phone": 0.0, "patient_id": 0.0}, []string{"s:0"}, []string{"0"}},
		{"reports hold shortcodes but are not contacts", Doc{"_id": "f", "type": "data_record", "patient_id": "111", "case_id": "222", "phone": "+1"},
			nil, []string{"111", "222"}},
		{"unknown contact type", Doc{"_id": "g", "type": "contact_type_x", "phone": "+1"}, nil, nil},
		{"generic contact", Doc{"_id": "h", "type": "contact", "phone": "+2"}, []string{"p:+2"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, _ := contactKeysOf(c.doc)
			if !reflect.DeepEqual(keys, c.keys) {
				t.Errorf("keys = %v, want %v", keys, c.keys)
			}
			if codes := shortcodesOf(c.doc); !reflect.DeepEqual(codes, c.codes) {
				t.Errorf("shortcodes = %v, want %v", codes, c.codes)
			}
		})
	}
}

func TestIndexFollowsChanges(t *testing.T) {
	x := NewIndex()
	if !x.MayExist("anything") {
		t.Error("an index not ready must not deny existence")
	}
	x.Observe(Doc{"_id": "b", "type": "person", "phone": "+1", "patient_id": "111", "_rev": "1-a"})
	x.Observe(Doc{"_id": "a", "type": "person", "phone": "+1", "_rev": "1-a"})
	x.mu.Lock()
	x.ready = true
	x.mu.Unlock()
	if got := x.candidates("p:+1"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("phone +1 = %v, want [a b] (doc id order)", got)
	}
	// b changes phone and shortcode: its old keys go, the old code stays taken.
	x.Observe(Doc{"_id": "b", "type": "person", "phone": "+2", "patient_id": "222", "_rev": "2-a"})
	if got := x.candidates("p:+1"); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("phone +1 after change = %v", got)
	}
	if got := x.candidates("s:222"); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("shortcode 222 = %v", got)
	}
	if used := x.Used([]string{"111", "222", "333"}); !used["111"] || !used["222"] || used["333"] {
		t.Errorf("used = %v", used)
	}
	// Deleted: no longer found; may still "exist" (hashes stay).
	x.Observe(Doc{"_id": "b", "_deleted": true})
	if got := x.candidates("s:222"); len(got) != 0 {
		t.Errorf("deleted contact still found: %v", got)
	}
	if _, ok := x.Doc("b"); ok {
		t.Error("deleted contact still cached")
	}
	if x.MayExist("never-seen") || !x.MayExist("a") {
		t.Error("MayExist wrong")
	}
	// Cached bodies are copies.
	d, ok := x.Doc("a")
	if !ok || d["phone"] != "+1" {
		t.Fatalf("Doc(a) = %v, %v", d, ok)
	}
	d["phone"] = "changed"
	if d2, _ := x.Doc("a"); d2["phone"] != "+1" {
		t.Error("cached body was modified through a returned copy")
	}
	// Reports are not cached.
	x.Observe(Doc{"_id": "r", "type": "data_record", "patient_id": "333"})
	if _, ok := x.Doc("r"); ok {
		t.Error("report cached")
	}
}

func TestDocCacheIsBounded(t *testing.T) {
	c := newDocCache(3)
	for _, id := range []string{"a", "b", "c", "d", "b", "e"} {
		c.put(id, []byte(`{}`))
	}
	if len(c.docs) != 3 {
		t.Errorf("cache holds %d docs, want 3", len(c.docs))
	}
	if _, ok := c.get("e"); !ok {
		t.Error("newest entry evicted")
	}
}

// TestIndexScanDoesNotOverwriteFresherDocs: while the start scan runs beside
// the feed, a doc the feed (or an own write) observed wins over the scan's
// older page, and a deletion is not resurrected.
func TestIndexScanDoesNotOverwriteFresherDocs(t *testing.T) {
	x := NewIndex()
	if err := x.WaitReady(context.Background()); !errors.Is(err, ErrNotBuilding) {
		t.Fatalf("WaitReady before any build = %v", err)
	}
	x.mu.Lock()
	x.building, x.fresh = true, map[string]struct{}{}
	x.mu.Unlock()
	if !x.InUse() {
		t.Error("an index being built is not in use")
	}
	x.Observe(Doc{"_id": "c", "type": "person", "phone": "+2", "_rev": "2-b"})
	x.observe(Doc{"_id": "c", "type": "person", "phone": "+1", "_rev": "1-a"}, true)
	x.Remove("gone")
	x.observe(Doc{"_id": "gone", "type": "person", "phone": "+3", "_rev": "1-a"}, true)
	x.observe(Doc{"_id": "old", "type": "person", "phone": "+4", "_rev": "1-a"}, true)
	if got := x.candidates("p:+1"); len(got) != 0 {
		t.Errorf("the scan's older version won: %v", got)
	}
	if got := x.candidates("p:+2"); len(got) != 1 {
		t.Errorf("the fresher version is lost: %v", got)
	}
	if got := x.candidates("p:+3"); len(got) != 0 {
		t.Errorf("a deleted doc came back from the scan: %v", got)
	}
	if got := x.candidates("p:+4"); len(got) != 1 {
		t.Errorf("a scanned doc is missing: %v", got)
	}
}
