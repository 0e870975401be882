package couch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		raw, sentinel string
		wantMain      string
		wantSentinel  string
		wantErr       string
	}{
		{"http://admin:secret@localhost:5984/medic", "", "medic", "medic-sentinel", ""},
		{"https://u:p@example.org/db/", "other", "db", "other", ""},
		{"http://admin:secret@localhost:5984", "", "", "", "must name the main database"},
		{"ftp://admin:secret@localhost/medic", "", "", "", "must start with http"},
		{"http:///medic", "", "", "", "no host"},
	}
	for _, c := range cases {
		loc, err := couch.ParseURL(c.raw, c.sentinel)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err = %v, want %q", c.raw, err, c.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: error leaks the password: %v", c.raw, err)
			}
			continue
		}
		if err != nil || loc.MainDB != c.wantMain || loc.SentinelDB != c.wantSentinel {
			t.Errorf("%s: got %+v, %v", c.raw, loc, err)
		}
	}
}

func TestSeqValue(t *testing.T) {
	if v := couch.SeqValue("42"); v != 42.0 {
		t.Errorf("numeric seq stored as %#v", v)
	}
	opaque := "42-g1AAAABteJzLYWBgYMpgTmHgz8tPSTV0MDQy1zMAQsMckEQiQ1L9____szKYE"
	if v := couch.SeqValue(opaque); v != opaque {
		t.Errorf("opaque seq changed: %#v", v)
	}
	if s := couch.SeqString(42.0); s != "42" {
		t.Errorf("SeqString = %q", s)
	}
}

func TestCheckpointAndFeed(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	cp := couch.NewCheckpoint(env.Client.Sentinel)
	seq, err := cp.Read(ctx, env.Client.Main)
	if err != nil || seq != "0" {
		t.Fatalf("fresh checkpoint = %q, %v", seq, err)
	}
	env.Save(t, env.MainDB, map[string]any{"_id": "a", "x": 1}, map[string]any{"_id": "b"})
	b, err := env.Client.Main.Changes(ctx, couch.FeedOptions{Since: "0", Limit: 10, IncludeDocs: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Changes) != 2 || b.Changes[0].Doc == nil || b.LastSeq == "" {
		t.Fatalf("batch = %+v", b)
	}
	if err := cp.Write(ctx, b.LastSeq); err != nil {
		t.Fatal(err)
	}
	if err := couch.NewCheckpoint(env.Client.Sentinel).Write(ctx, b.LastSeq); err != nil {
		t.Fatalf("second writer: %v", err)
	}
	got, err := couch.NewCheckpoint(env.Client.Sentinel).Read(ctx, env.Client.Main)
	if err != nil || got != b.LastSeq {
		t.Fatalf("read back %q, %v; want %q", got, err, b.LastSeq)
	}
	// Nothing new: the longpoll returns empty after its timeout.
	b2, err := env.Client.Main.Changes(ctx, couch.FeedOptions{Since: got, Limit: 10, Timeout: 200 * time.Millisecond})
	if err != nil || len(b2.Changes) != 0 {
		t.Fatalf("idle batch = %+v, %v", b2, err)
	}
	if _, err := env.Client.Main.Get(ctx, "missing"); !errors.Is(err, couch.ErrNotFound) {
		t.Fatalf("missing doc err = %v", err)
	}
	doc, _ := env.Client.Main.Get(ctx, "a")
	stale := couch.Doc{"_id": "a", "_rev": doc["_rev"]}
	if err := env.Client.Main.Put(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Main.Put(ctx, stale); !errors.Is(err, couch.ErrConflict) {
		t.Fatalf("stale put err = %v", err)
	}
}

func TestCheckpointFencing(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	old := couch.NewCheckpoint(env.Client.Sentinel)
	old.Token = 1
	if _, err := old.Read(ctx, env.Client.Main); err != nil {
		t.Fatal(err)
	}
	if err := old.Write(ctx, "5"); err != nil {
		t.Fatal(err)
	}
	next := couch.NewCheckpoint(env.Client.Sentinel)
	next.Token = 2
	if _, err := next.Read(ctx, env.Client.Main); err != nil {
		t.Fatal(err)
	}
	if err := next.Write(ctx, "5"); err != nil {
		t.Fatal(err)
	}
	if err := old.Write(ctx, "7"); !errors.Is(err, couch.ErrFenced) {
		t.Fatalf("stale holder's write: %v, want ErrFenced", err)
	}
	if err := next.Write(ctx, "9"); err != nil {
		t.Fatal(err)
	}
	// Without a lease (token 0), a writer takes over as before.
	if err := couch.NewCheckpoint(env.Client.Sentinel).Write(ctx, "11"); err != nil {
		t.Fatal(err)
	}
	got, err := couch.NewCheckpoint(env.Client.Sentinel).Read(ctx, env.Client.Main)
	if err != nil || got != "11" {
		t.Fatalf("read back %q, %v", got, err)
	}
}
