package couch_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
)

// TestReplicationCalls runs the calls of the moving jobs against the test
// server: a revision-exact copy (written once), current revisions, leaf
// revisions of live and deleted docs, attachments, databases on demand.
func TestReplicationCalls(t *testing.T) {
	e := couchtest.New(t)
	ctx := context.Background()
	src := e.Client.Main
	e.Save(t, e.MainDB, map[string]any{"_id": "telemetry-a", "v": 1.0,
		"_attachments": map[string]any{"ids": map[string]any{"content_type": "text/plain", "data": "cjEKcjI="}}})
	d, err := src.Get(ctx, "telemetry-a")
	if err != nil {
		t.Fatal(err)
	}
	d["v"] = 2.0
	if err := src.Put(ctx, d); err != nil {
		t.Fatal(err)
	}
	if b, err := src.Attachment(ctx, "telemetry-a", "ids"); err != nil || string(b) != "r1\nr2" {
		t.Fatalf("attachment %q, %v", b, err)
	}
	if _, err := src.Attachment(ctx, "telemetry-a", "nope"); !errors.Is(err, couch.ErrNotFound) {
		t.Fatalf("missing attachment: %v", err)
	}
	full, err := src.GetFull(ctx, "telemetry-a")
	if err != nil || full["_revisions"] == nil {
		t.Fatalf("GetFull %v, %v", full, err)
	}
	target := e.MainDB + "-copy"
	if err := e.Client.EnsureDB(ctx, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = couchtest.Request(http.MethodDelete, e.Server+"/"+target, nil, nil) })
	if err := e.Client.EnsureDB(ctx, target); err != nil {
		t.Fatalf("second EnsureDB: %v", err)
	}
	tdb := e.Client.DB(target)
	for range 2 {
		if err := tdb.PutReplicated(ctx, []couch.Doc{full}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tdb.Get(ctx, "telemetry-a")
	if err != nil || got["_rev"] != d["_rev"] || got["v"] != 2.0 {
		t.Fatalf("copy %v, %v (want rev %v)", got, err, d["_rev"])
	}
	revs, err := tdb.Revs(ctx, []string{"telemetry-a", "missing"})
	if err != nil || len(revs) != 1 || revs["telemetry-a"] != d["_rev"] {
		t.Fatalf("Revs %v, %v", revs, err)
	}
	leaves, err := src.LeafRevs(ctx, "telemetry-a")
	if err != nil || len(leaves) != 1 || leaves[0] != d["_rev"] {
		t.Fatalf("LeafRevs %v, %v", leaves, err)
	}
	if err := src.Delete(ctx, "telemetry-a", d["_rev"].(string)); err != nil {
		t.Fatal(err)
	}
	if leaves, err := src.LeafRevs(ctx, "telemetry-a"); err != nil || len(leaves) != 1 || couch.RevGeneration(leaves[0]) != 3 {
		t.Fatalf("LeafRevs of a deleted doc %v, %v", leaves, err)
	}
	if _, err := src.LeafRevs(ctx, "never"); !errors.Is(err, couch.ErrNotFound) {
		t.Fatalf("LeafRevs of a missing doc: %v", err)
	}
	if ok, err := e.Client.Users().IsServerAdmin(ctx, "admin"); err != nil || !ok {
		t.Fatalf("IsServerAdmin(admin) = %v, %v", ok, err)
	}
	if ok, err := e.Client.Users().IsServerAdmin(ctx, "chw"); err != nil || ok {
		t.Fatalf("IsServerAdmin(chw) = %v, %v", ok, err)
	}
}
