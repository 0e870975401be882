package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/memdb"
	"sentinel-go/outbound"
	"sentinel-go/transitions"
)

// mfoSink is an HTTP destination recording the JSON bodies per path.
type mfoSink struct {
	mu     sync.Mutex
	bodies map[string][]map[string]any
	srv    *httptest.Server
}

func newMFOSink(t *testing.T) *mfoSink {
	s := &mfoSink{bodies: map[string][]map[string]any{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		s.mu.Lock()
		s.bodies[r.URL.Path] = append(s.bodies[r.URL.Path], body)
		s.mu.Unlock()
		if r.URL.Path == "/broken" {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(200)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *mfoSink) got(path string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies[path]...)
}

func mfoPush(base, path, relevant string, mapping map[string]any, extra map[string]any) map[string]any {
	p := map[string]any{"relevant_to": relevant,
		"destination": map[string]any{"base_url": base, "path": path}, "mapping": mapping}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

type mfoWorld struct {
	t        *testing.T
	main     *memdb.DB
	sentinel *memdb.DB
	proc     *Engine
	cfg      *transitions.Config
	seq      int
}

func newMFOWorld(t *testing.T, out map[string]any, now time.Time, order ...string) *mfoWorld {
	t.Helper()
	settings := config.NewSettings(map[string]any{"transitions": map[string]any{"mark_for_outbound": true}, "outbound": out})
	settings.OutboundOrder = order
	cfg := transitions.LoadSettings(settings, config.Translations{})
	if !cfg.Valid() {
		t.Fatal(cfg.Problems)
	}
	w := &mfoWorld{t: t, main: memdb.New("medic"), sentinel: memdb.New("medic-sentinel"), cfg: cfg}
	w.proc = &Engine{Main: w.main, Sentinel: w.sentinel, Log: zerolog.Nop(), Location: time.UTC,
		JS: jsexpr.NewSandbox(jsexpr.Options{}), Clock: func() time.Time { return now }}
	return w
}

// save writes doc to the main db (as a client would) and processes it.
func (w *mfoWorld) save(doc transitions.Doc) Outcome {
	w.t.Helper()
	id := doc["_id"].(string)
	if cur, err := w.main.Get(context.Background(), id); err == nil {
		doc["_rev"] = cur["_rev"]
	}
	if err := w.main.Put(context.Background(), doc); err != nil {
		w.t.Fatal(err)
	}
	w.seq++
	out, err := w.proc.Process(context.Background(), w.cfg, couch.Change{ID: id, Seq: fmt.Sprint(w.seq)})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *mfoWorld) task(id string) transitions.Doc {
	d, _ := w.sentinel.Get(context.Background(), "task:outbound:"+id)
	return d
}

func (w *mfoWorld) completed(id string) []string {
	info, _ := w.sentinel.Get(context.Background(), id+"-info")
	var names []string
	for _, e := range jsv.Slice(info["completed_tasks"]) {
		names = append(names, jsv.GetString(e, "name"))
	}
	return names
}

func TestMarkForOutbound(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)
	sink := newMFOSink(t)
	base := sink.srv.URL
	isTest := "doc.type === 'data_record' && doc.form === 'test'"
	idRev := map[string]any{"id": "doc._id", "rev": "doc._rev"}

	t.Run("sends at once, no task, doc unchanged", func(t *testing.T) {
		w := newMFOWorld(t, map[string]any{"test": mfoPush(base, "/one", isTest, idRev, nil)}, now)
		out := w.save(transitions.Doc{"_id": "r1", "type": "data_record", "form": "test"})
		if out.Changed {
			t.Error("the doc must not change")
		}
		rev := w.main.Peek("r1")["_rev"]
		if got := sink.got("/one"); !reflect.DeepEqual(got, []map[string]any{{"id": "r1", "rev": rev}}) {
			t.Errorf("bodies = %v", got)
		}
		if w.task("r1") != nil {
			t.Error("no task expected")
		}
		if got := w.completed("r1"); !reflect.DeepEqual(got, []string{"test"}) {
			t.Errorf("completed = %v", got)
		}
	})

	t.Run("irrelevant docs are ignored", func(t *testing.T) {
		w := newMFOWorld(t, map[string]any{"test": mfoPush(base, "/irrelevant", isTest, idRev, nil)}, now)
		w.save(transitions.Doc{"_id": "p1", "type": "person"})
		if len(sink.got("/irrelevant")) != 0 || w.task("p1") != nil || w.completed("p1") != nil {
			t.Error("nothing expected")
		}
	})

	t.Run("two pushes in config order", func(t *testing.T) {
		order, err := outbound.KeyOrder([]byte(`{"outbound": {"zeta": {}, "alpha": {}}}`))
		if err != nil {
			t.Fatal(err)
		}
		w := newMFOWorld(t, map[string]any{
			"alpha": mfoPush(base, "/two", isTest, map[string]any{"data": "doc.a"}, nil),
			"zeta":  mfoPush(base, "/two", isTest, map[string]any{"data": "doc.z"}, nil),
		}, now, order...)
		w.save(transitions.Doc{"_id": "r2", "type": "data_record", "form": "test", "a": "A", "z": "Z"})
		if got := sink.got("/two"); !reflect.DeepEqual(got, []map[string]any{{"data": "Z"}, {"data": "A"}}) {
			t.Errorf("bodies = %v", got)
		}
		if got := w.completed("r2"); !reflect.DeepEqual(got, []string{"zeta", "alpha"}) {
			t.Errorf("completed = %v", got)
		}
	})

	t.Run("edits: same payload not resent, changed payload resent", func(t *testing.T) {
		w := newMFOWorld(t, map[string]any{"test": mfoPush(base, "/edit", "doc.hello === 'there'", map[string]any{"id": "doc._id", "form": "doc.form"}, nil)}, now)
		w.save(transitions.Doc{"_id": "r3", "hello": "there", "form": "a"})
		w.save(transitions.Doc{"_id": "r3", "hello": "there", "form": "a", "other": 1.0})
		w.save(transitions.Doc{"_id": "r3", "hello": "there", "form": "b"})
		want := []map[string]any{{"id": "r3", "form": "a"}, {"id": "r3", "form": "b"}}
		if got := sink.got("/edit"); !reflect.DeepEqual(got, want) {
			t.Errorf("bodies = %v", got)
		}
		if got := w.completed("r3"); len(got) != 2 {
			t.Errorf("completed = %v", got)
		}
	})

	t.Run("failure queues a task once", func(t *testing.T) {
		w := newMFOWorld(t, map[string]any{
			"test":  mfoPush(base, "/broken", isTest, idRev, nil),
			"test2": map[string]any{"relevant_to": "doc.secondTime"},
		}, now)
		w.save(transitions.Doc{"_id": "r4", "type": "data_record", "form": "test"})
		task := w.task("r4")
		if task == nil || task["type"] != "task:outbound" || task["doc_id"] != "r4" ||
			!reflect.DeepEqual(task["queue"], []any{"test"}) || task["created"] != float64(now.UnixMilli()) {
			t.Fatalf("task = %v", task)
		}
		if len(sink.got("/broken")) != 1 || w.completed("r4") != nil {
			t.Error("one request, nothing completed")
		}
		// A later edit making another push relevant leaves the task alone.
		w.save(transitions.Doc{"_id": "r4", "type": "data_record", "form": "test", "secondTime": true})
		again := w.task("r4")
		if again["_rev"] != task["_rev"] || !reflect.DeepEqual(again["queue"], []any{"test"}) {
			t.Errorf("task changed: %v", again)
		}
	})

	t.Run("cron", func(t *testing.T) {
		w := newMFOWorld(t, map[string]any{
			"due":   mfoPush(base, "/cron", isTest, idRev, map[string]any{"cron": "32 10 * * *"}),
			"later": mfoPush(base, "/cron", isTest, idRev, map[string]any{"cron": "30 11 * * *"}),
		}, now)
		w.save(transitions.Doc{"_id": "r5", "type": "data_record", "form": "test"})
		if len(sink.got("/cron")) != 1 {
			t.Errorf("requests = %v", sink.got("/cron"))
		}
		if task := w.task("r5"); task == nil || !reflect.DeepEqual(task["queue"], []any{"later"}) {
			t.Errorf("task = %v", task)
		}
	})

	t.Run("no destination nor mapping: queued", func(t *testing.T) {
		w := newMFOWorld(t, map[string]any{"test": map[string]any{"relevant_to": isTest}}, now)
		w.save(transitions.Doc{"_id": "r6", "type": "data_record", "form": "test"})
		if task := w.task("r6"); task == nil || !reflect.DeepEqual(task["queue"], []any{"test"}) {
			t.Errorf("task = %v", task)
		}
	})

	t.Run("a throwing relevant_to fails the transition, nothing sent", func(t *testing.T) {
		w := newMFOWorld(t, map[string]any{
			"a": mfoPush(base, "/throw", "true", idRev, nil),
			"b": mfoPush(base, "/throw", "doc.x.y", idRev, nil),
		}, now)
		tr := w.cfg.Transitions[0]
		doc := transitions.Doc{"_id": "r7", "_rev": "1-a"}
		changed, err := tr.Run(context.Background(), &transitions.Env{Config: w.cfg, Sentinel: w.sentinel, JS: jsexpr.NewSandbox(jsexpr.Options{}),
			Log: zerolog.Nop(), Now: now, Location: time.UTC}, &transitions.Change{ID: "r7", Doc: doc})
		if changed || err == nil {
			t.Errorf("changed %v, err %v", changed, err)
		}
		if len(sink.got("/throw")) != 0 || w.task("r7") != nil {
			t.Error("nothing may be sent or queued")
		}
	})

}
