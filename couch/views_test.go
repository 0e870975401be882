package couch_test

import (
	"context"
	"testing"

	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
)

// TestDesignDocsSplitByUse: the daemon installs one design doc per group of
// views used together (on CouchDB a design doc is one index build: a query
// waits for every view of its design doc), every view answers through
// View, a second start rewrites nothing, and the legacy single design doc
// of earlier versions is deleted.
func TestDesignDocsSplitByUse(t *testing.T) {
	e := couchtest.New(t)
	ctx := context.Background()
	e.Save(t, e.MainDB, map[string]any{"_id": couch.LegacyDesignDocID, "views": map[string]any{
		"old": map[string]any{"map": "function (doc) { emit(doc._id, null); }"}}})
	e.Save(t, e.MainDB, map[string]any{"_id": "c1", "type": "person", "phone": "+254700000001", "patient_id": "12345",
		"parent": map[string]any{"_id": "hc"}})
	db := e.Client.Main
	if err := db.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.Get(t, e.MainDB, couch.LegacyDesignDocID); got != nil {
		t.Errorf("legacy design doc still there: %v", got)
	}
	ids := couch.DesignDocIDs()
	if len(ids) < 2 {
		t.Fatalf("design docs %v: the views are not split", ids)
	}
	revs := map[string]any{}
	for _, id := range ids {
		d := e.Get(t, e.MainDB, id)
		if d == nil {
			t.Fatalf("%s not installed", id)
		}
		revs[id] = d["_rev"]
	}
	if rows, err := db.ContactsByPhone(ctx, "+254700000001"); err != nil || len(rows) != 1 {
		t.Errorf("contacts_by_phone: %v, %v", rows, err)
	}
	if got, err := db.DescendantIDs(ctx, "hc"); err != nil || len(got) != 1 {
		t.Errorf("contacts_by_ancestor: %v, %v", got, err)
	}
	for _, view := range []string{"reports_by_subject", "reports_by_freetext", "reports_by_date", "scheduled_tasks_by_due"} {
		if _, err := db.View(ctx, view, map[string]any{"limit": 1}); err != nil {
			t.Errorf("view %s: %v", view, err)
		}
	}
	if _, err := db.View(ctx, "nope", nil); err == nil {
		t.Error("an unknown view answered")
	}
	if err := db.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if d := e.Get(t, e.MainDB, id); d["_rev"] != revs[id] {
			t.Errorf("%s rewritten at the second start: %v → %v", id, revs[id], d["_rev"])
		}
	}
}
