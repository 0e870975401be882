package audit

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

func entry(id, rev string) Entry {
	return Entry{ID: id, Rev: rev, User: "admin", Date: "2024-05-01T08:00:00.000Z"}
}

func hist(revs ...string) []any {
	out := make([]any, len(revs))
	for i, r := range revs {
		out[i] = entry("x", r).value()
	}
	return out
}

func TestApply(t *testing.T) {
	api := map[string]any{"rev": "1-a", "request_id": "req-1", "user": "chw", "date": "2024-04-01T00:00:00.000Z", "service": "api"}
	archived := map[string]any{"date": "2024-04-02T00:00:00.000Z", "archived": true}
	ten := hist("1-a", "2-a", "3-a", "4-a", "5-a", "6-a", "7-a", "8-a", "9-a", "10-a")
	cases := []struct {
		name        string
		doc         map[string]any
		entries     []Entry
		wantHistory []any
		wantRotated []map[string]any
		unchanged   bool
	}{
		{name: "missing audit doc is created",
			entries: []Entry{entry("x", "2-b")}, wantHistory: hist("2-b")},
		{name: "CHT API entries are kept untouched",
			doc:         map[string]any{"_id": "x", "_rev": "1-z", "history": []any{api}},
			entries:     []Entry{entry("x", "2-b")},
			wantHistory: []any{api, entry("x", "2-b").value()}},
		{name: "entries of one id in write order",
			entries: []Entry{entry("x", "2-b"), entry("x", "3-c")}, wantHistory: hist("2-b", "3-c")},
		{name: "an entry already recorded is not written twice",
			doc: map[string]any{"_id": "x", "history": hist("2-b")}, entries: []Entry{entry("x", "2-b")}, unchanged: true},
		{name: "at ten entries the history is rotated before appending",
			doc:         map[string]any{"_id": "x", "_rev": "10-z", "history": ten},
			entries:     []Entry{entry("x", "11-a")},
			wantHistory: hist("11-a"),
			wantRotated: []map[string]any{{"_id": "x:10-a", "history": ten}}},
		{name: "nine entries: the tenth is appended, no rotation",
			doc:         map[string]any{"_id": "x", "history": ten[:9]},
			entries:     []Entry{entry("x", "10-a")},
			wantHistory: ten},
		{name: "a rotated copy is named after the last entry with a revision",
			doc:         map[string]any{"_id": "x", "history": append(append([]any{}, ten[:9]...), archived)},
			entries:     []Entry{entry("x", "11-a")},
			wantHistory: hist("11-a"),
			wantRotated: []map[string]any{{"_id": "x:9-a", "history": append(append([]any{}, ten[:9]...), archived)}}},
		{name: "an archiving entry is added once",
			doc:     map[string]any{"_id": "x", "history": []any{api, archived}},
			entries: []Entry{{ID: "x", Date: "2024-05-01T00:00:00.000Z", Archived: true}}, unchanged: true},
		{name: "an archiving entry has no revision, user or service",
			doc:         map[string]any{"_id": "x", "history": []any{api}},
			entries:     []Entry{{ID: "x", Date: "2024-05-01T00:00:00.000Z", Archived: true}},
			wantHistory: []any{api, map[string]any{"date": "2024-05-01T00:00:00.000Z", "archived": true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := json.Marshal(c.doc)
			doc, rotated := Apply("x", c.doc, c.entries)
			after, _ := json.Marshal(c.doc)
			if string(before) != string(after) {
				t.Errorf("Apply changed its input: %s → %s", before, after)
			}
			if c.unchanged {
				if doc != nil || rotated != nil {
					t.Errorf("got %v, %v; want nothing to write", doc, rotated)
				}
				return
			}
			if doc["_id"] != "x" || !reflect.DeepEqual(doc["history"], c.wantHistory) {
				t.Errorf("doc = %v\nwant history %v", doc, c.wantHistory)
			}
			if c.doc != nil && doc["_rev"] != c.doc["_rev"] {
				t.Errorf("_rev = %v, want %v", doc["_rev"], c.doc["_rev"])
			}
			if !reflect.DeepEqual(rotated, c.wantRotated) {
				t.Errorf("rotated = %v\nwant %v", rotated, c.wantRotated)
			}
		})
	}
}

func TestApplyNeverHoldsMoreThanTen(t *testing.T) {
	var doc map[string]any
	var copies []map[string]any
	for i := 1; i <= 25; i++ {
		next, rotated := Apply("x", doc, []Entry{entry("x", fmt.Sprintf("%d-a", i))})
		doc, copies = next, append(copies, rotated...)
		if n := len(doc["history"].([]any)); n > MaxHistory {
			t.Fatalf("after %d writes the history holds %d entries", i, n)
		}
	}
	if len(copies) != 2 || copies[0]["_id"] != "x:10-a" || copies[1]["_id"] != "x:20-a" {
		t.Errorf("rotated copies: %v", copies)
	}
	if got := len(doc["history"].([]any)); got != 5 {
		t.Errorf("history holds %d entries, want 5", got)
	}
}

func TestAudited(t *testing.T) {
	for id, want := range map[string]bool{
		"r1": true, "person-1": true, "settings": true, "": false,
		"_local/transitions-seq": false, "_design/medic": false, "service-worker-meta": false,
	} {
		if got := Audited(id); got != want {
			t.Errorf("Audited(%q) = %v, want %v", id, got, want)
		}
	}
}
