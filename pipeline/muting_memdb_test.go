package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/infodoc"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/memdb"
	"sentinel-go/transitions"
)

// mutingWorld is a main and a sentinel db with a processor, fed like the
// daemon's feed: every write to the main db is processed in order.
type mutingWorld struct {
	t              *testing.T
	main, sentinel *memdb.DB
	proc           *Engine
	cfg            *transitions.Config
	now            time.Time
	done           int // seq of the main db's changes already processed
}

var mutingT0 = time.Date(2024, 5, 10, 9, 0, 0, 0, time.UTC)

func newMutingWorld(t *testing.T, settings map[string]any, docs ...Doc) *mutingWorld {
	t.Helper()
	w := &mutingWorld{t: t, main: memdb.New("medic"), sentinel: memdb.New("medic-sentinel"), now: mutingT0}
	w.cfg = transitions.Load(settings, config.Translations{"en": {}})
	if !w.cfg.Valid() {
		t.Fatalf("settings invalid: %s", w.cfg.ErrorSummary())
	}
	w.proc = &Engine{Main: w.main, Sentinel: w.sentinel, Log: zerolog.Nop(), Location: time.UTC,
		Clock: func() time.Time { return w.now }, JS: jsexpr.NewSandbox(jsexpr.Options{})}
	w.save(docs...)
	return w
}

// save writes docs (at their current rev) and processes every change.
func (w *mutingWorld) save(docs ...Doc) {
	w.t.Helper()
	for _, d := range docs {
		if err := w.main.Save(d); err != nil {
			w.t.Fatal(err)
		}
	}
	w.drain()
}

// drain processes the pending changes (latest revision per change, as the
// feed delivers them) until none is left.
func (w *mutingWorld) drain() {
	w.t.Helper()
	for n := 0; ; n++ {
		if n > 500 {
			w.t.Fatal("changes never settle: a transition keeps re-triggering itself")
		}
		// The next change, skipping writes superseded by a later one of the
		// same doc (the feed only reports the latest revision).
		b := w.main.Changes(w.done, 1)
		if len(b.Changes) == 0 {
			return
		}
		ch := b.Changes[0]
		w.done, _ = strconv.Atoi(ch.Seq)
		w.now = w.now.Add(time.Second)
		if _, err := w.proc.Process(context.Background(), w.cfg, couch.Change{ID: ch.ID, Seq: ch.Seq}); err != nil {
			w.t.Fatalf("process %s: %v", ch.ID, err)
		}
	}
}

func (w *mutingWorld) doc(id string) transitions.Doc {
	w.t.Helper()
	d := w.main.Peek(id)
	if d == nil {
		w.t.Fatalf("no doc %s", id)
	}
	return d
}

func (w *mutingWorld) info(id string) transitions.Doc { return w.sentinel.Peek(infodoc.ID(id)) }

// history returns "muted/report_id" per muting_history entry of id's info doc.
func (w *mutingWorld) history(id string) []string {
	var out []string
	for _, e := range jsv.Slice(w.info(id)["muting_history"]) {
		m := jsv.Map(e)
		out = append(out, fmt.Sprintf("%v/%v", m["muted"], m["report_id"]))
	}
	return out
}

// mutingHierarchy is district → hc → clinic → person (+ person3), and
// clinic2 → person2 under the same health center.
func mutingHierarchy() []transitions.Doc {
	dh := map[string]any{"_id": "dh"}
	hc := map[string]any{"_id": "hc", "parent": dh}
	clinic := map[string]any{"_id": "clinic", "parent": hc}
	clinic2 := map[string]any{"_id": "clinic2", "parent": hc}
	return []transitions.Doc{
		{"_id": "dh", "type": "district_hospital", "name": "D"},
		{"_id": "hc", "type": "health_center", "name": "HC", "parent": dh},
		{"_id": "clinic", "type": "clinic", "name": "C", "place_id": "the_clinic", "parent": hc,
			"contact": map[string]any{"_id": "person", "parent": clinic}},
		{"_id": "person", "type": "person", "name": "P", "patient_id": "99999", "phone": "+444999", "parent": clinic},
		{"_id": "person3", "type": "person", "name": "P3", "patient_id": "88888", "phone": "+444888", "parent": clinic},
		{"_id": "clinic2", "type": "clinic", "name": "C2", "parent": hc},
		{"_id": "person2", "type": "person", "name": "P2", "phone": "+444777", "parent": clinic2},
	}
}

func mutingSettings(extra map[string]any) map[string]any {
	s := map[string]any{
		"transitions": map[string]any{"muting": true},
		"muting": map[string]any{"mute_forms": []any{"mute"}, "unmute_forms": []any{"unmute"},
			"messages": []any{
				map[string]any{"event_type": "mute", "recipient": "reporting_unit", "message": "Contact muted"},
				map[string]any{"event_type": "unmute", "recipient": "reporting_unit", "message": "Contact unmuted"},
				map[string]any{"event_type": "already_muted", "recipient": "reporting_unit", "message": "Already muted"},
				map[string]any{"event_type": "already_unmuted", "recipient": "reporting_unit", "message": "Already unmuted"},
				map[string]any{"event_type": "contact_not_found", "recipient": "reporting_unit", "message": "Contact not found"},
			}},
		"forms": map[string]any{"mute": map[string]any{}, "unmute": map[string]any{}},
	}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

// mutingReport is an xform mute/unmute report about subject.
func mutingReport(id, form, key, subject string) transitions.Doc {
	return transitions.Doc{"_id": id, "type": "data_record", "form": form, "content_type": "xml", "from": "+444999",
		"reported_date": float64(mutingT0.UnixMilli()), "fields": map[string]any{key: subject}}
}

// mutingTaskTexts lists the texts of a doc's tasks.
func mutingTaskTexts(d transitions.Doc) []string {
	var out []string
	for _, t := range jsv.Slice(d["tasks"]) {
		for _, m := range jsv.Slice(jsv.Map(t)["messages"]) {
			out = append(out, jsv.String(jsv.Map(m)["message"]))
		}
	}
	return out
}
