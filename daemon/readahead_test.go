package daemon_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
	"sentinel-go/daemon"
)

// TestReadAheadBodiesOfDocsTheBatchWroteAreReadAgain: the feed's next batch
// is read while the current one runs, so its bodies of docs that the
// current batch then writes or deletes are old. Three duplicate
// update_scheduled_reports reports over two batches: processing the first
// deletes the other two, whose read-ahead bodies must not be processed
// (they would delete the first: all three gone).
func TestReadAheadBodiesOfDocsTheBatchWroteAreReadAgain(t *testing.T) {
	env := couchtest.New(t)
	s := settings(map[string]any{"update_scheduled_reports": true})
	docs := []map[string]any{s,
		{"_id": "clinic", "type": "clinic", "name": "Clinic"},
		{"_id": "chw", "type": "person", "name": "Carol", "phone": "+254712000010", "parent": map[string]any{"_id": "clinic"}},
	}
	now := float64(time.Now().UnixMilli())
	for _, id := range []string{"m1", "m2", "m3"} {
		docs = append(docs, map[string]any{"_id": id, "type": "data_record", "form": "MR", "from": "+254712000010",
			"reported_date": now, "fields": map[string]any{"year": 2026.0, "month": 3.0},
			"contact": map[string]any{"_id": "chw", "parent": map[string]any{"_id": "clinic"}}})
	}
	env.Save(t, env.MainDB, docs...)
	r := startWith(t, env, func(o *daemon.Options) { o.BatchSize = 4 })
	ctx := context.Background()
	r.waitFor(t, "every report handled", func() bool {
		for _, id := range []string{"m1", "m2", "m3"} {
			if _, err := env.Client.Main.Get(ctx, id); err == nil && infoTransitions(t, env, id) == nil {
				return false
			}
		}
		return r.d.Processed() >= 6
	})
	alive := 0
	for _, id := range []string{"m1", "m2", "m3"} {
		if _, err := env.Client.Main.Get(ctx, id); err == nil {
			alive++
		} else if !errors.Is(err, couch.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if alive != 1 {
		t.Fatalf("%d of the 3 duplicates left, want 1: logs\n%s", alive, r.logs.String())
	}
}
