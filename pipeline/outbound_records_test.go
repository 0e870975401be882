package pipeline

import (
	"sync"
	"testing"

	"sentinel-go/jsv"
	"sentinel-go/outbound"
)

// recordsOutbox is an outbox that has delivered every push enqueued and
// hands their records out once (as outbound.Queue.TakeRecords does).
type recordsOutbox struct {
	mu       sync.Mutex
	enqueued map[string]bool
	written  map[string]bool // doc id → what done was told
}

func (o *recordsOutbox) Enqueue(docID string, _ []outbound.Item) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.enqueued[docID] = true
}

func (o *recordsOutbox) TakeRecords(docID string) ([]any, func(bool)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.enqueued[docID] {
		return nil, func(bool) {}
	}
	delete(o.enqueued, docID)
	rec := map[string]any{"type": "outbound", "name": "p", "timestamp": float64(1), "hash": "h-" + docID}
	return []any{rec}, func(ok bool) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.written[docID] = ok
	}
}

func outboundSettings() map[string]any {
	s := registrationSettings()
	s["transitions"].(map[string]any)["mark_for_outbound"] = true
	s["outbound"] = map[string]any{"p": map[string]any{"relevant_to": "doc.form === 'P'",
		"destination": map[string]any{"base_url": "http://127.0.0.1:9", "path": "/p"},
		"mapping":     map[string]any{"id": "doc._id"}}}
	return s
}

// The records of pushes delivered while a batch ran are written with the
// batch's final info docs (no second write of each info doc), and the
// outbox is told so; an info doc whose write conflicts is re-applied
// without them, and the outbox is told to record them itself.
func TestGroupCommitCarriesOutboundRecords(t *testing.T) {
	for _, conflict := range []bool{false, true} {
		t.Run(map[bool]string{false: "written", true: "conflict"}[conflict], func(t *testing.T) {
			docs := append(submitter(),
				report("r1", "P", map[string]any{"patient_name": "Jane", "ext_id": "P-1"}),
				report("r2", "P", map[string]any{"patient_name": "Joan", "ext_id": "P-2"}))
			w := newGroupWorld(t, outboundSettings(), docs...)
			box := &recordsOutbox{enqueued: map[string]bool{}, written: map[string]bool{}}
			w.p.Outbox = box
			sdb := w.env.MainDB + "-sentinel"
			var meanwhile func()
			if conflict {
				meanwhile = func() { // another writer touches r1's info doc (journaled by now)
					info := w.env.Get(t, sdb, "r1-info")
					info["touched"] = true
					w.env.Save(t, sdb, info)
				}
			}
			if redo := w.batch(t, meanwhile); len(redo) != 0 {
				t.Fatalf("redone: %v", redo)
			}
			for _, id := range []string{"r1", "r2"} {
				info := w.env.Get(t, sdb, id+"-info")
				tasks := jsv.Slice(info["completed_tasks"])
				regs, _ := info["transitions"].(map[string]any)
				if regs["registration"] == nil || info[pendingKey] != nil {
					t.Errorf("%s info = %v", id, info)
				}
				want := !(conflict && id == "r1")
				if got := len(tasks) == 1 && jsv.Map(tasks[0])["hash"] == "h-"+id; got != want {
					t.Errorf("%s completed_tasks = %v, want the record: %v", id, tasks, want)
				}
				box.mu.Lock()
				told, ok := box.written[id]
				box.mu.Unlock()
				if !ok || told != want {
					t.Errorf("%s: outbox told written=%v (told: %v), want %v", id, told, ok, want)
				}
			}
		})
	}
}
