package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/outbound"
)

// obDB is an in-memory database with CouchDB's revision rule and the
// calls the outbound job makes.
type obDB struct {
	mu   sync.Mutex
	docs map[string]map[string]any
	seq  int
}

func newOBDB(docs ...map[string]any) *obDB {
	d := &obDB{docs: map[string]map[string]any{}}
	for _, doc := range docs {
		if err := d.Put(context.Background(), jsv.CloneMap(doc)); err != nil {
			panic(err)
		}
	}
	return d
}

func (d *obDB) Get(_ context.Context, id string) (map[string]any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	doc, ok := d.docs[id]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", id, couch.ErrNotFound)
	}
	return jsv.CloneMap(doc), nil
}

func (d *obDB) Put(_ context.Context, doc map[string]any) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, _ := doc["_id"].(string)
	cur, exists := d.docs[id]
	if exists && cur["_rev"] != doc["_rev"] || !exists && doc["_rev"] != nil {
		return fmt.Errorf("put %s: %w", id, couch.ErrConflict)
	}
	d.seq++
	doc["_rev"] = strconv.Itoa(d.seq) + "-x"
	d.docs[id] = jsv.CloneMap(doc)
	return nil
}

func (d *obDB) Delete(_ context.Context, id, rev string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, ok := d.docs[id]
	if !ok {
		return fmt.Errorf("delete %s: %w", id, couch.ErrNotFound)
	}
	if cur["_rev"] != rev {
		return fmt.Errorf("delete %s: %w", id, couch.ErrConflict)
	}
	delete(d.docs, id)
	return nil
}

func (d *obDB) AllDocs(_ context.Context, p map[string]any) ([]couch.Row, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id := range d.docs {
		if id >= p["startkey"].(string) && id <= p["endkey"].(string) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if s, _ := p["skip"].(int); s > 0 {
		ids = ids[min(s, len(ids)):]
	}
	if l, _ := p["limit"].(int); l > 0 && len(ids) > l {
		ids = ids[:l]
	}
	rows := make([]couch.Row, len(ids))
	for i, id := range ids {
		rows[i] = couch.Row{ID: id, Doc: jsv.CloneMap(d.docs[id])}
	}
	return rows, nil
}

func (d *obDB) GetMany(ctx context.Context, ids []string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	for _, id := range ids {
		if doc, err := d.Get(ctx, id); err == nil {
			out[id] = doc
		}
	}
	return out, nil
}

func (d *obDB) ContactsByShortcode(context.Context, string) ([]map[string]any, error) {
	return nil, nil
}

func task(id string, queue ...any) map[string]any {
	return map[string]any{"_id": "task:outbound:" + id, "type": "task:outbound", "created": 1.0, "doc_id": id, "queue": queue}
}

func TestOutboundJob(t *testing.T) {
	var mu sync.Mutex
	received := map[string][]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		mu.Lock()
		received[r.URL.Path] = append(received[r.URL.Path], jsv.String(body["id"]))
		mu.Unlock()
		if r.URL.Path == "/broken" {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	dest := func(path string) map[string]any { return map[string]any{"base_url": srv.URL, "path": path} }
	raw := map[string]any{
		"a_ok":      map[string]any{"relevant_to": "true", "destination": dest("/ok"), "mapping": map[string]any{"id": "doc._id"}},
		"b_broken":  map[string]any{"relevant_to": "true", "destination": dest("/broken"), "mapping": map[string]any{"id": "doc._id"}},
		"c_cron":    map[string]any{"relevant_to": "true", "destination": dest("/ok"), "mapping": map[string]any{"id": "doc._id"}, "cron": "28 10 * * *"},
		"d_later":   map[string]any{"relevant_to": "true", "destination": dest("/ok"), "mapping": map[string]any{"id": "doc._id"}, "cron": "0 3 * * *"},
		"e_mapping": map[string]any{"relevant_to": "true", "destination": dest("/ok"), "mapping": map[string]any{"id": "doc.nope"}},
		"f_invalid": "not an object",
	}
	cfg, _ := outbound.Parse(raw, nil)
	now := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	dupHash, _ := outbound.Hash(map[string]any{"id": "dup"})
	main := newOBDB(
		map[string]any{"_id": "all-ok", "type": "data_record"},
		map[string]any{"_id": "mixed"},
		map[string]any{"_id": "dup"},
		map[string]any{"_id": "skipped"},
	)
	sentinel := newOBDB(
		task("all-ok", "a_ok", "c_cron"),
		task("mixed", "gone", "d_later", "b_broken", "e_mapping", "a_ok", "f_invalid"),
		task("missing-doc", "a_ok"),
		task("dup", "a_ok"),
		task("empty"),
		task("skipped", "a_ok"),
		map[string]any{"_id": "all-ok-info", "type": "info", "doc_id": "all-ok", "transitions": map[string]any{}},
		map[string]any{"_id": "dup-info", "type": "info", "doc_id": "dup",
			"completed_tasks": []any{map[string]any{"type": "outbound", "name": "a_ok", "timestamp": 1.0, "hash": dupHash}}},
	)
	r := &outboundRun{main: main, sentinel: sentinel, cfg: cfg, raw: raw, now: now, loc: time.UTC, log: zerolog.New(zerolog.NewTestWriter(t)), page: 2,
		skip:   func(task map[string]any) bool { return task["_id"] == "task:outbound:skipped" },
		pusher: &outbound.Pusher{Sentinel: sentinel, JS: jsexpr.NewSandbox(jsexpr.Options{}), Log: zerolog.Nop(), Now: now}}
	if err := r.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, gone := range []string{"all-ok", "missing-doc", "dup", "empty"} {
		if d, _ := sentinel.Get(ctx, "task:outbound:"+gone); d != nil {
			t.Errorf("task %s should be deleted: %v", gone, d)
		}
	}
	mixed, _ := sentinel.Get(ctx, "task:outbound:mixed")
	if !reflect.DeepEqual(mixed["queue"], []any{"d_later", "b_broken", "e_mapping", "f_invalid"}) || mixed["created"] != 1.0 {
		t.Errorf("mixed task = %v", mixed)
	}
	if d, _ := sentinel.Get(ctx, "task:outbound:skipped"); d == nil {
		t.Error("a skipped task stays")
	}
	sort.Strings(received["/ok"])
	if !reflect.DeepEqual(received["/ok"], []string{"all-ok", "all-ok", "mixed"}) || !reflect.DeepEqual(received["/broken"], []string{"mixed"}) {
		t.Errorf("received = %v", received)
	}
	info, _ := sentinel.Get(ctx, "all-ok-info")
	var names []string
	for _, e := range jsv.Slice(info["completed_tasks"]) {
		names = append(names, jsv.GetString(e, "name"))
	}
	if !reflect.DeepEqual(names, []string{"a_ok", "c_cron"}) || info["transitions"] == nil {
		t.Errorf("info = %v", info)
	}
	mixedInfo, _ := sentinel.Get(ctx, "mixed-info")
	if n := len(jsv.Slice(mixedInfo["completed_tasks"])); n != 1 {
		t.Errorf("mixed info = %v", mixedInfo)
	}

	// Second run: only the failing ones are retried.
	received = map[string][]string{}
	r.skip = nil
	if err := r.run(ctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(received["/broken"], []string{"mixed"}) || !reflect.DeepEqual(received["/ok"], []string{"skipped"}) {
		t.Errorf("second run received = %v", received)
	}
}

func TestOutboundJobName(t *testing.T) {
	found := false
	for _, j := range Default() {
		found = found || j.Name() == "outbound"
	}
	if !found {
		t.Error("the outbound job is not registered")
	}
}
