package lineage

import (
	"context"
	"testing"
)

// BenchmarkHydrateReport hydrates a report (submitter, two ancestors with
// their contacts, the patient) with a fresh hydrator each time, as the
// first change of a batch does.
func BenchmarkHydrateReport(b *testing.B) {
	store := fixture()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		doc := Doc{"_id": "r1", "type": "data_record", "form": "V",
			"contact": map[string]any{"_id": "chw", "parent": map[string]any{"_id": "clinic", "parent": map[string]any{"_id": "hc"}}},
			"fields":  map[string]any{"patient_id": "12345"}}
		if err := New(store).Hydrate(ctx, doc); err != nil {
			b.Fatal(err)
		}
		_ = Minify(doc)
	}
}
