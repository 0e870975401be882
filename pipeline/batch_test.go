package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
	"sentinel-go/jsexpr"
	"sentinel-go/transitions"
)

// groupWorld is a main db behind a bootstrapped index (group commit on) and
// a processor, as the daemon runs them.
type groupWorld struct {
	env  *couchtest.Env
	main *couch.IndexedDB
	p    *Engine
	cfg  *transitions.Config
	// order is each saved doc's place in the bulk write that saved it.
	order map[string]int
}

func newGroupWorld(t *testing.T, settings map[string]any, docs ...map[string]any) *groupWorld {
	t.Helper()
	env := couchtest.New(t)
	ctx := context.Background()
	if err := env.Client.Main.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	env.Save(t, env.MainDB, docs...)
	main := couch.NewIndexedDB(env.Client.Main)
	if err := main.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := transitions.Load(settings, config.Translations{})
	if !cfg.Valid() {
		t.Fatalf("config: %v", cfg.Problems)
	}
	order := map[string]int{}
	for i, d := range docs {
		order[fmt.Sprint(d["_id"])] = i
	}
	return &groupWorld{env: env, main: main, cfg: cfg, order: order,
		p: &Engine{Main: main, Sentinel: env.Client.Sentinel, Log: zerolog.Nop(), JS: jsexpr.NewSandbox(jsexpr.Options{})}}
}

// meanwhileDB runs meanwhile (another writer) once, just before the first
// bulk write of the batch's held-back docs.
type meanwhileDB struct {
	*couch.IndexedDB
	meanwhile func()
}

func (m *meanwhileDB) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	if m.meanwhile != nil {
		f := m.meanwhile
		m.meanwhile = nil
		f()
	}
	return m.IndexedDB.BulkDocs(ctx, docs)
}

// feed reads the whole feed as one batch, and the index sees its docs, as
// the daemon's feed loop does. The batch is put in the order the docs were
// saved: a sharded CouchDB (q > 1) lists one bulk write's changes shard by
// shard, and these tests mean the order they saved.
func (w *groupWorld) feed(t *testing.T) []couch.Change {
	t.Helper()
	b, err := w.main.Changes(context.Background(), couch.FeedOptions{Limit: 500, IncludeDocs: true})
	if err != nil {
		t.Fatal(err)
	}
	place := func(id string) int {
		if i, ok := w.order[id]; ok {
			return i
		}
		return len(w.order) // design docs and the like: after the saved docs
	}
	sort.SliceStable(b.Changes, func(i, j int) bool { return place(b.Changes[i].ID) < place(b.Changes[j].ID) })
	for _, ch := range b.Changes {
		if !Ignored(ch.ID) && !ch.Deleted {
			w.main.Observe(ch.Doc)
		}
	}
	return b.Changes
}

// batch reads the feed from the start and runs it as one batch; before the
// batch's first bulk write, meanwhile runs (another writer). It returns the
// ids of the changes processed after the batch's commit (redone).
func (w *groupWorld) batch(t *testing.T, meanwhile func()) []string {
	t.Helper()
	changes := w.feed(t)
	if !w.p.NewBatch(context.Background(), changes).group {
		t.Fatal("group commit is off")
	}
	w.p.Main = &meanwhileDB{IndexedDB: w.main, meanwhile: meanwhile}
	defer func() { w.p.Main = w.main }()
	seen := map[string]bool{}
	var redone []string
	res, err := w.p.RunBatch(context.Background(), changes, BatchControl{
		Config: func() *transitions.Config { return w.cfg },
		Done: func(ch couch.Change, out Outcome) {
			if seen[ch.ID] && !out.Ignored {
				redone = append(redone, ch.ID)
			}
			seen[ch.ID] = true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != changes[len(changes)-1].Seq {
		t.Fatalf("batch done at %q, want %q", res.Done, changes[len(changes)-1].Seq)
	}
	return redone
}

func registrationSettings() map[string]any {
	return map[string]any{
		"transitions":   map[string]any{"registration": true, "accept_patient_reports": true},
		"contact_types": []any{map[string]any{"id": "clinic"}, map[string]any{"id": "person", "parents": []any{"clinic"}, "person": true}},
		"forms":         map[string]any{"P": map[string]any{"public_form": true}, "V": map[string]any{"public_form": true}},
		"registrations": []any{map[string]any{"form": "P", "events": []any{
			map[string]any{"name": "on_create", "trigger": "add_patient", "params": map[string]any{"patient_id_field": "ext_id"}}}}},
		"patient_reports": []any{map[string]any{"form": "V",
			"messages": []any{map[string]any{"event_type": "report_accepted", "recipient": "reporting_unit", "message": "Visit for {{patient_name}} recorded"}}}},
	}
}

func submitter() []map[string]any {
	return []map[string]any{
		{"_id": "clinic", "type": "clinic", "name": "Clinic"},
		{"_id": "chw", "type": "person", "name": "Carol", "phone": "+254712000010", "parent": map[string]any{"_id": "clinic"}},
	}
}

func report(id, form string, fields map[string]any) map[string]any {
	return map[string]any{"_id": id, "type": "data_record", "form": form, "from": "+254712000010",
		"reported_date": float64(time.Now().UnixMilli()), "fields": fields,
		"contact": map[string]any{"_id": "chw", "parent": map[string]any{"_id": "clinic"}}}
}

// TestGroupCommitSeesEarlierChanges: a registration and a visit for the
// patient it registers, in one batch: the visit finds the registration and
// the created person (held back, then committed before the view query), as
// it would one change at a time.
func TestGroupCommitSeesEarlierChanges(t *testing.T) {
	docs := append(submitter(),
		report("r1", "P", map[string]any{"patient_name": "Jane", "ext_id": "P-1"}),
		report("r2", "V", map[string]any{"patient_id": "P-1"}))
	w := newGroupWorld(t, registrationSettings(), docs...)
	if redo := w.batch(t, nil); len(redo) != 0 {
		t.Fatalf("redone: %v", redo)
	}
	r1 := w.env.Get(t, w.env.MainDB, "r1")
	if r1["patient_id"] != "P-1" {
		t.Fatalf("r1 = %v", r1)
	}
	r2 := w.env.Get(t, w.env.MainDB, "r2")
	tasks, _ := r2["tasks"].([]any)
	if len(tasks) != 1 || r2["errors"] != nil && len(r2["errors"].([]any)) > 0 {
		t.Fatalf("visit did not find the registration: %v", r2)
	}
	msg := tasks[0].(map[string]any)["messages"].([]any)[0].(map[string]any)["message"]
	if msg != "Visit for Jane recorded" {
		t.Errorf("visit reply = %v", msg)
	}
	for _, id := range []string{"r1", "r2"} {
		info := w.env.Get(t, w.env.MainDB+"-sentinel", id+"-info")
		if info[pendingKey] != nil || info["transitions"] == nil {
			t.Errorf("%s info = %v", id, info)
		}
	}
}

// TestGroupCommitConflictIsRedone: another writer edits a doc after the
// batch processed it and before the commit: the held-back save fails, the
// change is processed again on its own, and both writes are kept.
func TestGroupCommitConflictIsRedone(t *testing.T) {
	docs := append(submitter(), report("r1", "P", map[string]any{"patient_name": "Jane", "ext_id": "P-9"}))
	w := newGroupWorld(t, registrationSettings(), docs...)
	redo := w.batch(t, func() {
		r1 := w.env.Get(t, w.env.MainDB, "r1")
		r1["verified"] = true
		w.env.Save(t, w.env.MainDB, r1)
	})
	if len(redo) != 1 || redo[0] != "r1" {
		t.Fatalf("redo = %v", redo)
	}
	r1 := w.env.Get(t, w.env.MainDB, "r1")
	if r1["verified"] != true || r1["patient_id"] != "P-9" {
		t.Errorf("r1 = %v", r1)
	}
	info := w.env.Get(t, w.env.MainDB+"-sentinel", "r1-info")
	if info[pendingKey] != nil || info["transitions"].(map[string]any)["registration"] == nil {
		t.Errorf("info = %v", info)
	}
}

// TestGroupCommitReusesPersonLeftByACrash: a person created by a run that
// crashed before its journal exists already; the held-back create fails and
// the change is redone one at a time, which adopts that person's id.
func TestGroupCommitReusesPersonLeftByACrash(t *testing.T) {
	settings := registrationSettings()
	settings["registrations"] = []any{map[string]any{"form": "P", "events": []any{map[string]any{"name": "on_create", "trigger": "add_patient"}}}}
	w := newGroupWorld(t, settings, append(submitter(), report("r1", "P", map[string]any{"patient_name": "Jane"}))...)
	w.env.Save(t, w.env.MainDB, map[string]any{"_id": transitions.CreatedContactID("r1", "patient"),
		"type": "person", "name": "Jane", "patient_id": "77777", "source_id": "r1", "parent": map[string]any{"_id": "clinic"}})
	w.batch(t, nil)
	if got := w.env.Get(t, w.env.MainDB, "r1")["patient_id"]; got != "77777" {
		t.Errorf("report patient_id = %v, want the existing person's 77777", got)
	}
}

// refusingDB refuses (400) any write of the doc with id bad, as a server
// refuses a doc it cannot take.
type refusingDB struct {
	*couch.IndexedDB
	bad string
}

func (r refusingDB) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	for _, d := range docs {
		if d["_id"] == r.bad {
			return nil, &couch.Error{What: "bulk write", Status: 400, Msg: "bad request"}
		}
	}
	return r.IndexedDB.BulkDocs(ctx, docs)
}

func (r refusingDB) Put(ctx context.Context, doc couch.Doc) error {
	if doc["_id"] == r.bad {
		return &couch.Error{What: "put", Status: 400, Msg: "bad request"}
	}
	return r.IndexedDB.Put(ctx, doc)
}

// TestGroupCommitRefusedBulkGoesOneByOne: a bulk request the server refuses
// (one doc it cannot take) does not hold the feed: the batch's changes are
// processed one at a time, the bad one fails alone, the others are saved.
func TestGroupCommitRefusedBulkGoesOneByOne(t *testing.T) {
	docs := append(submitter(),
		report("r1", "P", map[string]any{"patient_name": "A", "ext_id": "E-1"}),
		report("r2", "P", map[string]any{"patient_name": "B", "ext_id": "E-2"}),
		report("r3", "P", map[string]any{"patient_name": "C", "ext_id": "E-3"}))
	w := newGroupWorld(t, registrationSettings(), docs...)
	changes := w.feed(t)
	w.p.Main = refusingDB{IndexedDB: w.main, bad: "r2"}
	var failed []string
	runs := map[string]int{}
	_, err := w.p.RunBatch(context.Background(), changes, BatchControl{
		Config: func() *transitions.Config { return w.cfg },
		Done:   func(ch couch.Change, _ Outcome) { runs[ch.ID]++ },
		Failed: func(_ context.Context, ch couch.Change, _ int, _ error) bool {
			failed = append(failed, ch.ID)
			return false // passed over, as the daemon does after its attempts
		},
	})
	if err != nil {
		t.Fatalf("RunBatch: %v", err)
	}
	if len(failed) != 1 || failed[0] != "r2" {
		t.Errorf("failed = %v, want r2 alone", failed)
	}
	if runs["r1"] != 2 || runs["r3"] != 2 {
		t.Errorf("runs = %v, want r1 and r3 processed again one at a time", runs)
	}
	for id, want := range map[string]any{"r1": "E-1", "r2": nil, "r3": "E-3"} {
		if got := w.env.Get(t, w.env.MainDB, id)["patient_id"]; got != want {
			t.Errorf("%s patient_id = %v, want %v", id, got, want)
		}
		if info := w.env.Get(t, w.env.MainDB+"-sentinel", id+"-info"); info[pendingKey] != nil {
			t.Errorf("%s info keeps a journal: %v", id, info)
		}
	}
}

func TestRecentWrites(t *testing.T) {
	r := recentWrites{}
	r.put("a", "2-x", transitions.Doc{"_id": "a-info", "transitions": map[string]any{}})
	r.put("p", "1-y", nil)
	if _, ok := r.take("a", "3-z"); ok {
		t.Error("an entry for another revision was used")
	}
	if _, ok := r.take("a", "2-x"); ok {
		t.Error("an entry was used after a miss dropped it")
	}
	if info, ok := r.take("p", "1-y"); !ok || info != nil {
		t.Errorf("created doc: %v, %v (want no info doc, found)", info, ok)
	}
	if _, ok := r.take("p", "1-y"); ok {
		t.Error("an entry was used twice")
	}
	r.put("b", "1-a", nil)
	r.forget("b")
	if _, ok := r.take("b", "1-a"); ok {
		t.Error("a forgotten entry was used")
	}
	var none recentWrites
	none.put("x", "1-a", nil) // nil map: no-op, no panic
}

// TestBatchSeesDocsDeletedByEarlierChanges: three duplicates of a periodic
// report saved in one bulk write arrive in one feed batch (as CouchDB sends
// them). One at a time, the first deletes the other two, which are then
// skipped as deletions. The batch must do the same: never run a transition
// on the feed's body of a doc an earlier change deleted (it would delete the
// survivor), and a doc found deleted is a deletion, not a failure.
func TestBatchSeesDocsDeletedByEarlierChanges(t *testing.T) {
	settings := registrationSettings()
	settings["transitions"] = map[string]any{"update_scheduled_reports": true}
	var docs []map[string]any
	docs = append(docs, submitter()...)
	for _, id := range []string{"m1", "m2", "m3"} {
		docs = append(docs, report(id, "MR", map[string]any{"year": 2026.0, "month": 3.0}))
	}
	w := newGroupWorld(t, settings, docs...)
	ctx := context.Background()
	changes := w.feed(t)
	skipped := map[string]string{}
	res, err := w.p.RunBatch(ctx, changes, BatchControl{
		Config: func() *transitions.Config { return w.cfg },
		Done:   func(ch couch.Change, out Outcome) { skipped[ch.ID] = out.Skipped },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Done == "" || skipped["m2"] != "deleted" || skipped["m3"] != "deleted" {
		t.Errorf("done %q, skipped %v: want m2 and m3 skipped as deleted", res.Done, skipped)
	}
	alive := 0
	for _, id := range []string{"m1", "m2", "m3"} {
		if _, err := w.env.Client.Main.Get(ctx, id); err == nil {
			alive++
		} else if !transitions.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	if _, err := w.env.Client.Main.Get(ctx, "m1"); alive != 1 || err != nil {
		t.Errorf("%d of 3 duplicates left (m1: %v); want m1 alone", alive, err)
	}
}

// failingDeletes fails (503) the first bulk write that deletes a doc.
type failingDeletes struct {
	*couch.IndexedDB
	failed bool
}

func (f *failingDeletes) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	for _, d := range docs {
		if d["_deleted"] == true && !f.failed {
			f.failed = true
			return nil, &couch.Error{What: "bulk write", Status: 503, Msg: "service unavailable"}
		}
	}
	return f.IndexedDB.BulkDocs(ctx, docs)
}

// TestSwallowedDatabaseFailureRetriesTheChange: update_scheduled_reports logs
// a failed delete of the duplicates and reports nothing done; the engine
// still sees that a database call failed during the change and fails it
// (to be retried) instead of recording "nothing to do", which would lose
// the deletion for good.
func TestSwallowedDatabaseFailureRetriesTheChange(t *testing.T) {
	settings := registrationSettings()
	settings["transitions"] = map[string]any{"update_scheduled_reports": true}
	docs := append(submitter(),
		report("m1", "MR", map[string]any{"year": 2026.0, "month": 4.0}),
		report("m2", "MR", map[string]any{"year": 2026.0, "month": 4.0}))
	w := newGroupWorld(t, settings, docs...)
	f := &failingDeletes{IndexedDB: w.main}
	w.p.Main = f
	ctx := context.Background()
	m2 := w.env.Get(t, w.env.MainDB, "m2")
	ch := couch.Change{ID: "m2", Seq: "1", Rev: m2["_rev"].(string), Doc: m2}
	if _, err := w.p.Process(ctx, w.cfg, ch); err == nil {
		t.Fatal("Process succeeded although the delete failed")
	}
	if info, err := w.env.Client.Sentinel.Get(ctx, "m2-info"); err == nil && info["transitions"] != nil {
		t.Fatalf("info doc records the change as done: %v", info)
	}
	ch.Doc = nil
	if _, err := w.p.Process(ctx, w.cfg, ch); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := w.env.Client.Main.Get(ctx, "m1"); !transitions.IsNotFound(err) {
		t.Errorf("m1 not deleted after the retry: %v", err)
	}
}

// TestDurableDuringBatch: a long batch is committed and reported durable
// while it runs (the daemon checkpoints there), each time with everything
// up to the reported change written, so that a crash costs the work since.
func TestDurableDuringBatch(t *testing.T) {
	docs := submitter()
	for i := 0; i < 6; i++ {
		id := fmt.Sprintf("r%d", i)
		docs = append(docs, report(id, "P", map[string]any{"patient_name": "Jane", "ext_id": "P-" + id}))
	}
	w := newGroupWorld(t, registrationSettings(), docs...)
	changes := w.feed(t)
	var told []string
	res, err := w.p.RunBatch(context.Background(), changes, BatchControl{
		Config:       func() *transitions.Config { return w.cfg },
		DurableEvery: time.Nanosecond,
		Durable: func(ctx context.Context, seq string) error {
			// Every change up to seq is written: its doc and its info doc.
			for _, ch := range changes {
				if ch.ID[0] == 'r' {
					if d := w.env.Get(t, w.env.MainDB, ch.ID); d["patient_id"] == nil {
						t.Errorf("told %s durable, %s not written: %v", seq, ch.ID, d)
					}
				}
				if ch.Seq == seq {
					break
				}
			}
			told = append(told, seq)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(told) != len(changes) {
		t.Fatalf("durable told %d times for %d changes: %v", len(told), len(changes), told)
	}
	last := changes[len(changes)-1].Seq
	if res.Done != last || !res.Told {
		t.Fatalf("result %+v, want Done %s already told", res, last)
	}
}

// TestFenceStopsTheCommit: once the fence refuses (the lease is lost), the
// batch's held-back writes are not committed and RunBatch returns its error.
func TestFenceStopsTheCommit(t *testing.T) {
	docs := submitter()
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("r%d", i)
		docs = append(docs, report(id, "P", map[string]any{"patient_name": "Jane", "ext_id": "P-" + id}))
	}
	w := newGroupWorld(t, registrationSettings(), docs...)
	lost := errors.New("lost the lease")
	res, err := w.p.RunBatch(context.Background(), w.feed(t), BatchControl{
		Config: func() *transitions.Config { return w.cfg },
		Fence:  func() error { return lost },
	})
	if !errors.Is(err, lost) {
		t.Fatalf("RunBatch = %+v, %v; want the fence's error", res, err)
	}
	for i := 0; i < 3; i++ {
		if d := w.env.Get(t, w.env.MainDB, fmt.Sprintf("r%d", i)); d["patient_id"] != nil {
			t.Errorf("r%d written past the fence: %v", i, d)
		}
	}
}
