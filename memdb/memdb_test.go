package memdb_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"sentinel-go/couch"
	"sentinel-go/memdb"
	"sentinel-go/pipeline"
	"sentinel-go/transitions"
)

var (
	_ transitions.Store       = (*memdb.DB)(nil)
	_ transitions.InfoStore   = (*memdb.DB)(nil)
	_ pipeline.DeferringStore = (*memdb.DB)(nil)
)

var ctx = context.Background()

func TestRevisionsConflictsAndNotFound(t *testing.T) {
	db := memdb.New("main")
	doc := memdb.Doc{"_id": "a", "n": 1}
	if err := db.Put(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if rev := doc["_rev"].(string); !strings.HasPrefix(rev, "1-") {
		t.Fatalf("rev %s", rev)
	}
	got, err := db.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, isFloat := got["n"].(float64); !isFloat {
		t.Errorf("numbers must come back as float64, got %T", got["n"])
	}
	got["n"] = 2.0
	if err := db.Put(ctx, got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got["_rev"].(string), "2-") {
		t.Errorf("second rev %v", got["_rev"])
	}
	// Stale revision, and a new doc with a rev: conflicts.
	if err := db.Put(ctx, doc); !errors.Is(err, couch.ErrConflict) {
		t.Errorf("stale put: %v", err)
	}
	if err := db.Put(ctx, memdb.Doc{"_id": "b", "_rev": "1-x"}); !errors.Is(err, couch.ErrConflict) {
		t.Errorf("put with a rev of a missing doc: %v", err)
	}
	if _, err := db.Get(ctx, "nope"); !errors.Is(err, couch.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	// Delete, then write again over the tombstone: the count goes on.
	if err := db.Delete(ctx, "a", got["_rev"].(string)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get(ctx, "a"); !errors.Is(err, couch.ErrNotFound) {
		t.Errorf("deleted: %v", err)
	}
	again := memdb.Doc{"_id": "a"}
	if _, err := db.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(again["_rev"].(string), "4-") {
		t.Errorf("rev over a tombstone %v", again["_rev"])
	}
	if _, err := db.Create(ctx, memdb.Doc{"_id": "a"}); !errors.Is(err, couch.ErrConflict) {
		t.Errorf("create of an existing doc: %v", err)
	}
	gen := memdb.Doc{"x": 1}
	id, err := db.Create(ctx, gen)
	if err != nil || id == "" || gen["_id"] != id {
		t.Errorf("generated id %q %v", id, err)
	}
}

func TestBulkDocsPerDocResults(t *testing.T) {
	db := memdb.New("main")
	if err := db.Save(memdb.Doc{"_id": "a"}, memdb.Doc{"_id": "b"}); err != nil {
		t.Fatal(err)
	}
	b := db.Peek("b")
	docs := []couch.Doc{{"_id": "a", "_rev": "1-stale"}, {"_id": "b", "_rev": b["_rev"], "_deleted": true}, {"_id": "c"}}
	res, err := db.BulkDocs(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, couch.ErrConflict) || res[1].Err != nil || res[2].Err != nil {
		t.Fatalf("results %+v", res)
	}
	if docs[2]["_rev"] != res[2].Rev || res[2].Rev == "" {
		t.Errorf("written doc's _rev not set")
	}
	if db.Peek("b") != nil || db.Peek("c") == nil {
		t.Errorf("bulk delete or create not applied")
	}
}

func TestChangesGiveEachDocOnceAtItsLatestRevision(t *testing.T) {
	db := memdb.New("main")
	_ = db.Save(memdb.Doc{"_id": "a"}, memdb.Doc{"_id": "b"}, memdb.Doc{"_id": "c"})
	_, _ = db.Edit("a", func(d memdb.Doc) bool { d["x"] = 1; return true })
	_, _ = db.Remove("b")
	b := db.Changes(0, 0)
	var got []string
	for _, ch := range b.Changes {
		s := ch.ID
		if ch.Deleted {
			s += "(deleted)"
		} else if ch.Doc == nil || ch.Doc["_rev"] != ch.Rev {
			t.Errorf("%s: doc missing or not at the change's rev", ch.ID)
		}
		got = append(got, s)
	}
	if strings.Join(got, ",") != "c,a,b(deleted)" || b.LastSeq != "5" {
		t.Errorf("changes %v last %s", got, b.LastSeq)
	}
	first := db.Changes(0, 2)
	if len(first.Changes) != 2 || first.Pending != 1 {
		t.Errorf("limited batch: %d changes, pending %d", len(first.Changes), first.Pending)
	}
	if rest := db.Changes(5, 0); len(rest.Changes) != 0 || rest.LastSeq != "5" {
		t.Errorf("after the end: %+v", rest)
	}
}

func ids(docs []memdb.Doc) string {
	var out []string
	for _, d := range docs {
		out = append(out, d["_id"].(string))
	}
	return strings.Join(out, ",")
}

func world(deferring bool) *memdb.DB {
	db := memdb.New("main")
	db.Deferring = deferring
	_ = db.Save(
		memdb.Doc{"_id": "hc", "type": "health_center"},
		memdb.Doc{"_id": "c2", "type": "clinic", "place_id": "77", "parent": memdb.Doc{"_id": "hc"}},
		memdb.Doc{"_id": "c1", "type": "clinic", "rc_code": "ab1", "parent": memdb.Doc{"_id": "hc"}},
		memdb.Doc{"_id": "p2", "type": "person", "phone": "+1", "patient_id": "12", "parent": memdb.Doc{"_id": "c1", "parent": memdb.Doc{"_id": "hc"}}},
		memdb.Doc{"_id": "p1", "type": "person", "phone": "+1", "patient_id": "", "parent": memdb.Doc{"_id": "c1", "parent": memdb.Doc{"_id": "hc"}}},
		memdb.Doc{"_id": "u", "type": "user-settings", "phone": "+1", "patient_id": "13"},
		memdb.Doc{"_id": "r3", "type": "data_record", "form": "F", "reported_date": 30, "fields": memdb.Doc{"patient_id": "12", "year": 2020}, "contact": memdb.Doc{"_id": "p2", "parent": memdb.Doc{"_id": "c1"}}},
		memdb.Doc{"_id": "r1", "type": "data_record", "form": "F", "reported_date": 10, "patient_id": "12", "case_id": "99", "contact": memdb.Doc{"_id": "p2", "parent": memdb.Doc{"_id": "c1"}}},
		memdb.Doc{"_id": "r2", "type": "data_record", "form": "G", "reported_date": 30, "fields": memdb.Doc{"place_id": "77"}},
		memdb.Doc{"_id": "r4", "type": "data_record", "reported_date": 30, "fields": memdb.Doc{"patient_id": "12"}},
	)
	return db
}

func TestViewLookups(t *testing.T) {
	for _, deferring := range []bool{false, true} {
		db := world(deferring)
		check := func(what, got, want string) {
			t.Helper()
			if got != want {
				t.Errorf("deferring=%v %s: %q, want %q", deferring, what, got, want)
			}
		}
		ds, _ := db.ContactsByPhone(ctx, "+1")
		check("by phone", ids(ds), "p1,p2")
		ds, _ = db.ContactsByShortcode(ctx, "77")
		check("by shortcode", ids(ds), "c2")
		ds, _ = db.ContactsByShortcode(ctx, "")
		check("empty shortcode", ids(ds), "")
		ds, _ = db.ContactsByRCCode(ctx, "AB1")
		check("by rc code", ids(ds), "c1")
		used, _ := db.UsedShortcodes(ctx, []string{"12", "13", "99", "14"})
		check("used", strings.Join(sortedKeys(used), ","), "12,13,99")
		ds, _ = db.ReportsBySubject(ctx, []string{"77", "12"})
		check("by subject", ids(ds), "r2,r1,r3")
		desc, _ := db.DescendantIDs(ctx, "hc")
		check("descendants", strings.Join(desc, ","), "c1,c2,p1,p2")
		ds, _ = db.ReportsByDate(ctx, nil, 10, 30)
		check("by date", ids(ds), "r3,r2,r1")
		ds, _ = db.ReportsByDate(ctx, []string{"F", "G"}, 0, 20)
		check("by forms and date", ids(ds), "r1")
		ds, _ = db.ReportsByFormAndParent(ctx, "F", "c1")
		check("by form and parent", ids(ds), "r1,r3")
		ft, _ := db.ReportsByFreetext(ctx, "year:2020")
		if len(ft) != 1 || ft[0].ID != "r3" || ft[0].Form != "F" || ft[0].ReportedDate != 30 {
			t.Errorf("freetext %+v", ft)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestObserveIsSeenByIndexedLookupsOnly(t *testing.T) {
	db := world(true)
	if !db.Indexed() {
		t.Fatal("Deferring db not indexed")
	}
	_, _ = db.ContactsByPhone(ctx, "+1") // index built
	// A held-back write: seen by the indexed lookups before it is written.
	db.Observe(memdb.Doc{"_id": "p3", "type": "person", "phone": "+2", "patient_id": "55"})
	ds, _ := db.ContactsByPhone(ctx, "+2")
	if ids(ds) != "p3" {
		t.Errorf("observed contact not found by phone: %q", ids(ds))
	}
	if used, _ := db.UsedShortcodes(ctx, []string{"55"}); !used["55"] {
		t.Error("observed shortcode not taken")
	}
	// Another writer's edit is not seen until observed (as the feed does).
	_, _ = db.Edit("p2", func(d memdb.Doc) bool { d["phone"] = "+9"; return true })
	ds, _ = db.ContactsByPhone(ctx, "+9")
	if ids(ds) != "" {
		t.Errorf("unobserved edit seen: %q", ids(ds))
	}
	db.Observe(db.Peek("p2"))
	ds, _ = db.ContactsByPhone(ctx, "+9")
	if ids(ds) != "p2" {
		t.Errorf("observed edit not seen: %q", ids(ds))
	}
	// A deleted doc leaves the lookups; its shortcode stays taken.
	db.Observe(memdb.Doc{"_id": "p3", "_deleted": true})
	ds, _ = db.ContactsByPhone(ctx, "+2")
	if ids(ds) != "" {
		t.Errorf("removed contact found: %q", ids(ds))
	}
	if used, _ := db.UsedShortcodes(ctx, []string{"55"}); !used["55"] {
		t.Error("shortcode of a removed doc freed")
	}
	plain := world(false)
	plain.Observe(memdb.Doc{"_id": "p3", "type": "person", "phone": "+2"})
	if ds, _ := plain.ContactsByPhone(ctx, "+2"); len(ds) != 0 || plain.Indexed() {
		t.Error("a db without Deferring must ignore Observe")
	}
}

func TestFailHookAndClone(t *testing.T) {
	db := world(false)
	var calls []string
	boom := &couch.Error{What: "get", Status: 503, Msg: "down"}
	db.Fail = func(op, id string) error {
		calls = append(calls, op+" "+id)
		if op == "Get" {
			return boom
		}
		return nil
	}
	if _, err := db.Get(ctx, "p1"); !errors.Is(err, boom) {
		t.Errorf("Get: %v", err)
	}
	_, _ = db.ReportsBySubject(ctx, []string{"a", "b"})
	if !reflect.DeepEqual(calls, []string{"Get p1", "ReportsBySubject a,b"}) {
		t.Errorf("calls %v", calls)
	}
	c := db.Clone()
	_, _ = c.Remove("p1")
	if db.Peek("p1") == nil || c.Peek("p1") != nil || c.Fail != nil {
		t.Error("clone shares state or hooks")
	}
}

func TestLoadKeepsValidRevisionsAndPutsCountWrites(t *testing.T) {
	db := memdb.New("main").Load(memdb.Doc{"_id": "a", "_rev": "3-abc", "n": 1}, memdb.Doc{"_id": "b"}, memdb.Doc{"_id": "c", "_rev": "junk"})
	if rev := db.Peek("a")["_rev"]; rev != "3-abc" {
		t.Errorf("a loaded at %v, want its own 3-abc", rev)
	}
	if _, isFloat := db.Peek("a")["n"].(float64); !isFloat {
		t.Errorf("a loaded doc is not cloned as through JSON: %T", db.Peek("a")["n"])
	}
	for _, id := range []string{"b", "c"} {
		if rev, _ := db.Peek(id)["_rev"].(string); !strings.HasPrefix(rev, "1-") || rev == "junk" {
			t.Errorf("%s loaded at %q, want a first revision", id, rev)
		}
	}
	// The loaded revision is the current one: a write at it succeeds and
	// continues its generation; one at another is a conflict.
	if err := db.Put(ctx, memdb.Doc{"_id": "a", "_rev": "1-abc"}); !errors.Is(err, couch.ErrConflict) {
		t.Errorf("put at a wrong rev: %v", err)
	}
	a := memdb.Doc{"_id": "a", "_rev": "3-abc"}
	if err := db.Put(ctx, a); err != nil || !strings.HasPrefix(a["_rev"].(string), "4-") {
		t.Errorf("put at the loaded rev: %v, rev %v", err, a["_rev"])
	}
	// Loads are writes: in the feed, and counted.
	if ch := db.Changes(0, 0); len(ch.Changes) != 3 || ch.LastSeq != "4" {
		t.Errorf("changes after load %+v", ch)
	}
	_, _ = db.Edit("b", func(d memdb.Doc) bool { d["x"] = 1; return true })
	_ = db.Delete(ctx, "b", db.Peek("b")["_rev"].(string))
	if got := []int{db.Puts("a"), db.Puts("b"), db.Puts("c"), db.Puts("none")}; !reflect.DeepEqual(got, []int{2, 3, 1, 0}) {
		t.Errorf("puts a, b, c, none = %v, want [2 3 1 0]", got)
	}
	// A failed write is not counted.
	_ = db.Put(ctx, memdb.Doc{"_id": "c", "_rev": "9-zzz"})
	if db.Puts("c") != 1 {
		t.Errorf("a conflict was counted: %d", db.Puts("c"))
	}
}

func TestBeforeWriteRunsBeforeEachWriteOutsideTheLock(t *testing.T) {
	db := memdb.New("main").Load(memdb.Doc{"_id": "a"}, memdb.Doc{"_id": "b"})
	var calls []string
	db.BeforeWrite = func(id string) {
		calls = append(calls, id)
		// Another writer edits the doc just before the daemon's write: this
		// runs outside the lock (it would deadlock otherwise).
		_, _ = db.Edit(id, func(d memdb.Doc) bool { d["edited"] = true; return true })
	}
	a := db.Peek("a")
	if err := db.Put(ctx, a); !errors.Is(err, couch.ErrConflict) {
		t.Errorf("put after another writer's edit: %v, want a conflict", err)
	}
	if db.Peek("a")["edited"] != true {
		t.Error("the edit was lost")
	}
	b := db.Peek("b")
	res, err := db.BulkDocs(ctx, []couch.Doc{b, {"_id": "new"}})
	if err != nil || !errors.Is(res[0].Err, couch.ErrConflict) || res[1].Err != nil {
		t.Errorf("bulk: %+v %v", res, err)
	}
	if _, err := db.Create(ctx, memdb.Doc{"_id": "made"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Create(ctx, memdb.Doc{"x": 1}); err != nil { // generated id: not reported
		t.Fatal(err)
	}
	// Fail refusing a call: BeforeWrite is not called.
	db.Fail = func(op, _ string) error {
		if op == "Put" {
			return errors.New("down")
		}
		return nil
	}
	_ = db.Put(ctx, memdb.Doc{"_id": "refused"})
	// The Writer methods are not hooked.
	_ = db.Save(memdb.Doc{"_id": "saved"})
	if want := []string{"a", "b", "new", "made"}; !reflect.DeepEqual(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
}
