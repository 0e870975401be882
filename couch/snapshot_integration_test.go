package couch_test

import (
	"context"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
)

// restartIndex is a daemon's start: a fresh IndexedDB, prepared from the
// snapshot, then built.
func restartIndex(t *testing.T, env *couchtest.Env) (*couch.IndexedDB, bool, error) {
	t.Helper()
	ctx := context.Background()
	d := couch.NewIndexedDB(env.Client.Main)
	loaded, unusable, err := d.Prepare(ctx, env.Client.Sentinel)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	return d, loaded, unusable
}

func phoneIDs(t *testing.T, d *couch.IndexedDB, phone string) []string {
	t.Helper()
	docs, err := d.ContactsByPhone(context.Background(), phone)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, doc := range docs {
		ids = append(ids, doc["_id"].(string))
	}
	sort.Strings(ids)
	return ids
}

// TestSnapshotRestart: a snapshot is taken, the daemon stops, docs are
// written, deleted and edited meanwhile; the next start loads the snapshot,
// catches up, and answers as a full scan would. A corrupt snapshot, or one
// whose seq is older than what it holds (a rewound feed), gives the same
// answers.
func TestSnapshotRestart(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	env.Save(t, env.MainDB,
		map[string]any{"_id": "p1", "type": "person", "phone": "+1", "patient_id": "11111"},
		map[string]any{"_id": "p2", "type": "person", "phone": "+2", "patient_id": "22222"},
		map[string]any{"_id": "doomed", "type": "person", "phone": "+9", "patient_id": "99999"},
		map[string]any{"_id": "r1", "type": "data_record", "case_id": "c-1"},
	)
	first, loaded, _ := restartIndex(t, env)
	if loaded {
		t.Fatal("a snapshot loaded before any was taken")
	}
	if err := first.Index.SaveSnapshot(ctx, env.Client.Sentinel, env.MainDB); err != nil {
		t.Fatal(err)
	}
	// While the daemon is down.
	p2 := env.Get(t, env.MainDB, "p2")
	p2["phone"] = "+3"
	doomed := env.Get(t, env.MainDB, "doomed")
	doomed["_deleted"] = true
	env.Save(t, env.MainDB, p2, doomed,
		map[string]any{"_id": "p4", "type": "clinic", "phone": "+1", "place_id": "44444"},
		map[string]any{"_id": "r2", "type": "data_record", "case_id": "c-2"},
	)
	// kept: the deleted contact's shortcode is still taken (an index that
	// saw it keeps it; a scan never sees deleted docs).
	check := func(t *testing.T, d *couch.IndexedDB, kept bool) {
		t.Helper()
		for phone, want := range map[string][]string{"+1": {"p1", "p4"}, "+2": nil, "+3": {"p2"}, "+9": nil} {
			if got := phoneIDs(t, d, phone); !reflect.DeepEqual(got, want) {
				t.Errorf("phone %s: %v, want %v", phone, got, want)
			}
		}
		used, err := d.UsedShortcodes(ctx, []string{"11111", "44444", "99999", "c-1", "c-2", "55555"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"11111": true, "44444": true, "c-1": true, "c-2": true}
		if kept {
			want["99999"] = true
		}
		if !reflect.DeepEqual(used, want) {
			t.Errorf("used = %v, want %v", used, want)
		}
		if _, err := d.Get(ctx, "r2"); err != nil {
			t.Errorf("a doc written while down: %v", err)
		}
		if d.Index.MayExist("never-written") {
			t.Error("an id never written may exist")
		}
	}
	t.Run("caught up from the snapshot", func(t *testing.T) {
		d, loaded, unusable := restartIndex(t, env)
		if !loaded || unusable != nil {
			t.Fatalf("loaded = %v, unusable = %v", loaded, unusable)
		}
		check(t, d, true)
		// Its own snapshot, taken after the catch-up, loads in turn.
		if err := d.Index.SaveSnapshot(ctx, env.Client.Sentinel, env.MainDB); err != nil {
			t.Fatal(err)
		}
		again, loaded, _ := restartIndex(t, env)
		if !loaded {
			t.Fatal("second snapshot not loaded")
		}
		check(t, again, true)
	})
	t.Run("rewound feed", func(t *testing.T) {
		d, _, _ := restartIndex(t, env)
		d.Index.SetSeq("0") // the feed rewound to its start
		if err := d.Index.SaveSnapshot(ctx, env.Client.Sentinel, env.MainDB); err != nil {
			t.Fatal(err)
		}
		again, loaded, _ := restartIndex(t, env)
		if !loaded {
			t.Fatal("snapshot not loaded")
		}
		check(t, again, true)
	})
	t.Run("corrupt snapshot: full scan", func(t *testing.T) {
		doc := env.Get(t, env.Client.Sentinel.Name(), couch.SnapshotID)
		url := env.Server + "/" + env.Client.Sentinel.Name() + "/" + couch.SnapshotID + "/index.bin?rev=" + doc["_rev"].(string)
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader("SGIDX\x01garbage"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("corrupting the snapshot: %d", resp.StatusCode)
		}
		d, loaded, unusable := restartIndex(t, env)
		if loaded || unusable == nil {
			t.Fatalf("loaded = %v, unusable = %v", loaded, unusable)
		}
		check(t, d, false)
	})
	t.Run("snapshot of another db: full scan", func(t *testing.T) {
		first, _, _ := restartIndex(t, env)
		if err := first.Index.SaveSnapshot(ctx, env.Client.Sentinel, "other"); err != nil {
			t.Fatal(err)
		}
		d, loaded, unusable := restartIndex(t, env)
		if loaded || unusable == nil {
			t.Fatalf("loaded = %v, unusable = %v", loaded, unusable)
		}
		check(t, d, false)
	})
}
