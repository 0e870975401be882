package pipeline_test

import (
	"fmt"
	"strings"
	"testing"

	"sentinel-go/couch"
	"sentinel-go/pipeline"
	"sentinel-go/transitions"
)

// TestKnownRewindReadsNothing: once a backlog is processed (its own writes'
// changes included), a feed that rewinds to its start brings every change
// again; with Known, not one info doc is read and nothing is written, and
// the docs are those of a run without it. A config change forgets.
func TestKnownRewindReadsNothing(t *testing.T) {
	w := newFaultWorld(t, true)
	w.e.p.Known = pipeline.NewKnown(0)
	var docs []couch.Doc
	for i := range 20 {
		docs = append(docs, smsReport(fmt.Sprintf("reg-%02d", i), "REG", chwPhone("c2", 1), map[string]any{"patient_name": fmt.Sprintf("P%d", i)}))
	}
	save(w, docs...)
	w.drain()
	before := w.state()
	if w.e.p.Known.Len() == 0 {
		t.Fatal("nothing known after the backlog")
	}
	rewind := func() (map[string]int, []string) {
		calls := map[string]int{}
		var infoReads []string
		record(w, func(c call) error {
			calls[c.db+"."+c.op]++
			if c.db == "sentinel" && (c.op == "Get" || c.op == "GetMany") {
				infoReads = append(infoReads, c.id)
			}
			return nil
		})
		defer unrecord(w)
		w.since = 0
		w.drain()
		return calls, infoReads
	}
	calls, reads := rewind()
	for op, n := range calls {
		switch op {
		case "sentinel.Put", "sentinel.BulkDocs", "main.Put", "main.BulkDocs", "main.Create":
			t.Errorf("rewound feed: %d %s calls, want none", n, op)
		}
	}
	// The reports are known done (so are the contacts processed with
	// nothing to do, once their info doc is written; but with muting on, a
	// new contact's prefilter needs its ancestors).
	for _, ids := range reads {
		if strings.Contains(ids, "reg-") {
			t.Errorf("rewound feed read the info docs of known reports: %s", ids)
		}
	}
	if d := sameSnapshot(w.state(), before); d != nil {
		t.Errorf("the rewind changed docs: %v", d)
	}
	// The same config loaded again: still known.
	w.e.cfg = transitions.Load(diffSettings(), diffTranslations)
	if _, reads := rewind(); strings.Contains(strings.Join(reads, ","), "reg-") {
		t.Errorf("the same config reloaded: the rewound feed read reports' info docs: %v", reads)
	}
	// Another config: nothing is known any more, the info docs are read.
	other := diffSettings()
	other["forms_only_mode"] = true
	w.e.cfg = transitions.Load(other, diffTranslations)
	if _, reads := rewind(); !strings.Contains(strings.Join(reads, ","), "reg-") {
		t.Errorf("after a config change the rewound feed read no report's info doc: %v", reads)
	}
}

// TestKnownExportImportAndBound: a set exported by one run and imported by
// the next serves under the same config only; a full set starts over.
func TestKnownExportImportAndBound(t *testing.T) {
	cfg := transitions.Load(diffSettings(), diffTranslations)
	k := pipeline.NewKnown(3)
	for i := range 3 {
		k.Import(cfg.Fingerprint, []uint64{pipeline.KnownKey(fmt.Sprint("d", i), "1-a")})
	}
	keys, fp := k.Export()
	if len(keys) != 3 || fp != cfg.Fingerprint {
		t.Fatalf("export: %d keys under %q", len(keys), fp)
	}
	next := pipeline.NewKnown(3)
	next.Import(fp, keys)
	if next.Len() != 3 {
		t.Errorf("import: %d entries, want 3", next.Len())
	}
	next.Import("another config", keys[:1])
	if next.Len() != 1 {
		t.Errorf("import under another config: %d entries, want only its own 1", next.Len())
	}
	for i := range 5 {
		next.Import("another config", []uint64{uint64(100 + i)})
	}
	if next.Len() > 3 {
		t.Errorf("bound 3 exceeded: %d entries", next.Len())
	}
}

// TestKnownAfterFirstInfoWrite: a doc that no transition applies to
// (processed once: its info doc is created with no transition) is known
// done once that info doc is written, so that a rewind does not read it.
func TestKnownAfterFirstInfoWrite(t *testing.T) {
	w := newFaultWorld(t, true)
	w.e.p.Known = pipeline.NewKnown(0)
	save(w, couch.Doc{"_id": "thing-1", "type": "thing"}, couch.Doc{"_id": "thing-2", "type": "thing"})
	w.drain()
	var reads []string
	record(w, func(c call) error {
		if c.db == "sentinel" && (c.op == "Get" || c.op == "GetMany") {
			reads = append(reads, c.id)
		}
		return nil
	})
	w.since = 0
	w.drain()
	unrecord(w)
	if strings.Contains(strings.Join(reads, ","), "thing-") {
		t.Errorf("a rewind read the info docs of docs known done: %v", reads)
	}
}

// TestRestartAfterAKillMidCommit: a kill after the journals of a batch were
// written (its docs not saved) leaves a journal on every change's info doc;
// the next run settles them in one bulk write and processes the batch with
// group commit again, not each change one write at a time, and ends as a
// run without the kill.
func TestRestartAfterAKillMidCommit(t *testing.T) {
	base := newFaultWorld(t, true)
	var docs []couch.Doc
	for i := range 30 {
		docs = append(docs, smsReport(fmt.Sprintf("reg-%02d", i), "REG", chwPhone("c2", 1), map[string]any{"patient_name": fmt.Sprintf("P%d", i)}))
	}
	save(base, docs...)
	_, want := cleanRun(t, base)

	w := base.clone()
	journaled := false
	record(w, func(c call) error {
		if c.db == "sentinel" && c.op == "BulkDocs" && !journaled {
			journaled = true
			return nil
		}
		if journaled {
			return &couch.Error{What: "killed", Status: 502, Msg: "connection reset by peer"}
		}
		return nil
	})
	w.batch() // the kill: every call after the journals fails, nothing is checkpointed
	unrecord(w)
	restarted := w.clone() // a new process: nothing in memory
	puts := 0
	record(restarted, func(c call) error {
		if c.op == "Put" {
			puts++
		}
		return nil
	})
	restarted.since = 0
	restarted.drain()
	unrecord(restarted)
	// As a run without the kill, but for the shortcodes: those the killed
	// run drew are taken, so the restart draws others, as one at a time.
	_ = want
	patients := map[string][]string{}
	for _, d := range restarted.e.main.All() {
		if d["type"] == "person" && d["source_id"] != nil {
			patients[fmt.Sprint(d["source_id"])] = append(patients[fmt.Sprint(d["source_id"])], fmt.Sprint(d["patient_id"]))
		}
	}
	for i := range 30 {
		id := fmt.Sprintf("reg-%02d", i)
		r := restarted.e.main.Peek(id)
		tasks, _ := r["scheduled_tasks"].([]any)
		if r["patient_id"] == nil || len(tasks) != 3 || len(patients[id]) != 1 || patients[id][0] != fmt.Sprint(r["patient_id"]) {
			t.Errorf("%s after the restart: patient_id %v, %d scheduled tasks, patients %v", id, r["patient_id"], len(tasks), patients[id])
		}
		if infoOf(restarted, id)["registration"] == nil {
			t.Errorf("%s: no registration recorded", id)
		}
	}
	if puts > 5 {
		t.Errorf("the restart wrote %d docs one at a time, want the batch's writes in bulk", puts)
	}
}

func infoOf(w *faultWorld, id string) map[string]any {
	info := w.e.sentinel.Peek(id + "-info")
	ts, _ := info["transitions"].(map[string]any)
	return ts
}
