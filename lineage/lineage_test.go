package lineage

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
)

type memStore map[string]Doc

func (m memStore) GetMany(_ context.Context, ids []string) (map[string]Doc, error) {
	out := map[string]Doc{}
	for _, id := range ids {
		if d, ok := m[id]; ok {
			out[id] = d
		}
	}
	return out, nil
}

func (m memStore) ContactsByShortcode(_ context.Context, code string) ([]Doc, error) {
	var out []Doc
	for _, d := range m {
		if d["patient_id"] == code || d["place_id"] == code {
			out = append(out, d)
		}
	}
	return out, nil
}

func fixture() memStore {
	return memStore{
		"hc":     {"_id": "hc", "type": "health_center", "name": "HC", "contact": map[string]any{"_id": "nurse"}},
		"clinic": {"_id": "clinic", "type": "clinic", "name": "Clinic", "parent": map[string]any{"_id": "hc"}, "contact": map[string]any{"_id": "chw", "parent": map[string]any{"_id": "clinic"}}},
		"chw":    {"_id": "chw", "type": "person", "name": "CHW", "phone": "+254700000001", "parent": map[string]any{"_id": "clinic", "parent": map[string]any{"_id": "hc"}}},
		"nurse":  {"_id": "nurse", "type": "person", "name": "Nurse"},
		"pat":    {"_id": "pat", "type": "person", "name": "Pat", "patient_id": "12345", "parent": map[string]any{"_id": "clinic", "parent": map[string]any{"_id": "hc"}}},
	}
}

func TestHydrateReport(t *testing.T) {
	doc := Doc{"_id": "r1", "type": "data_record", "form": "V",
		"contact": map[string]any{"_id": "chw", "parent": map[string]any{"_id": "clinic", "parent": map[string]any{"_id": "hc"}}},
		"fields":  map[string]any{"patient_id": "12345"}}
	orig := clone(doc)
	if err := New(fixture()).Hydrate(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
	checks := map[string]any{
		"contact.name":                       "CHW",
		"contact.parent.name":                "Clinic",
		"contact.parent.contact.name":        "CHW",
		"contact.parent.parent.name":         "HC",
		"contact.parent.parent.contact.name": "Nurse",
		"patient.name":                       "Pat",
		"patient.parent.parent.name":         "HC",
	}
	for path, want := range checks {
		if got := get(doc, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if got := Minify(doc); !reflect.DeepEqual(got, orig) {
		t.Errorf("Minify(Hydrate(doc)) = %v, want %v", got, orig)
	}
}

func TestHydrateUnknownStaysStub(t *testing.T) {
	doc := Doc{"_id": "p", "type": "person", "parent": map[string]any{"_id": "gone", "parent": map[string]any{"_id": "hc"}}}
	if err := New(fixture()).Hydrate(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
	if get(doc, "parent._id") != "gone" || get(doc, "parent.parent.name") != "HC" {
		t.Errorf("unexpected hydration: %v", doc)
	}
}

func TestMinifyPseudoContact(t *testing.T) {
	doc := Doc{"type": "data_record", "contact": map[string]any{"parent": map[string]any{"_id": "clinic", "name": "x", "parent": map[string]any{"_id": "hc", "name": "y"}}},
		"patient": map[string]any{"_id": "pat"}}
	got := Minify(doc)
	want := Doc{"type": "data_record", "contact": Doc{"parent": Doc{"_id": "clinic", "parent": Doc{"_id": "hc"}}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Minify = %v", got)
	}
}

func get(v any, path string) any {
	cur := v
	for _, seg := range splitDots(path) {
		m, _ := cur.(map[string]any)
		cur = m[seg]
	}
	return cur
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func clone(d Doc) Doc {
	b, _ := json.Marshal(d)
	var out Doc
	_ = json.Unmarshal(b, &out)
	return out
}
