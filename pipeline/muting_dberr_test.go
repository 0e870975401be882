package pipeline

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"sentinel-go/couch"
	"sentinel-go/jsv"
	"sentinel-go/memdb"
)

// descendantsDown is the main db with its descendants query failing.
type descendantsDown struct {
	*memdb.DB
	err error
}

func (s descendantsDown) DescendantIDs(context.Context, string) ([]string, error) {
	return nil, s.err
}

// A database failure inside the muting cascade is not "nothing to do": the
// change must not be completed (so that it is retried and the mute is not
// lost), and no info doc may record it as processed.
func TestMutingDatabaseFailureIsRetried(t *testing.T) {
	ctx := context.Background()
	w := newMutingWorld(t, mutingSettings(nil), mutingHierarchy()...)
	down := &couch.Error{What: "query descendants of clinic", Status: 503, Msg: "Service Unavailable"}
	if !down.Temporary() {
		t.Fatal("a 503 should be temporary")
	}
	w.proc.Main = descendantsDown{DB: w.main, err: down}

	if err := w.main.Put(ctx, mutingReport("mute1", "mute", "patient_id", "99999")); err != nil {
		t.Fatal(err)
	}
	_, err := w.proc.Process(ctx, w.cfg, couch.Change{ID: "mute1", Seq: fmt.Sprint(w.main.Seq())})
	if err == nil {
		t.Fatal("Process returned nil on a 503 from the database: the change would be checkpointed and the mute lost")
	}
	var dbErr *couch.Error
	if !errors.As(err, &dbErr) || dbErr.Status != 503 {
		t.Errorf("error %q does not wrap the database error", err)
	}
	if info := w.info("mute1"); info != nil {
		if _, ok := info["transitions"]; ok {
			t.Errorf("info doc records the change as processed: transitions = %v", info["transitions"])
		}
	}
	if jsv.Truthy(w.doc("person")["muted"]) {
		t.Error("person muted although the cascade failed")
	}

	// The database is back: the change, processed again, mutes.
	w.proc.Main = w.main
	w.drain()
	if !jsv.Truthy(w.doc("person")["muted"]) {
		t.Error("person not muted once the database is back")
	}
	if rec := jsv.Map(jsv.Map(w.info("mute1")["transitions"])["muting"]); rec == nil || rec["ok"] != true {
		t.Errorf("no successful muting record: %v", w.info("mute1")["transitions"])
	}
}
