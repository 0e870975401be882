package transitions

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
)

// mutingMemDB is an in-memory database with CouchDB's revision rule (a
// write at a stale _rev is a 409) and the lookups the transitions use. It
// records a changes feed so that tests can process side-effect writes the
// way the daemon's feed would.
type mutingMemDB struct {
	docs    map[string]Doc
	seq     int
	changes []mutingMemChange
	// beforePut, when set, runs before each Put (e.g. a concurrent writer).
	beforePut func(id string)
	puts      map[string]int
}

type mutingMemChange struct {
	seq int
	id  string
}

func newMutingMemDB() *mutingMemDB {
	return &mutingMemDB{docs: map[string]Doc{}, puts: map[string]int{}}
}

// mutingJSONClone deep-copies a doc through JSON, so numbers are float64 as
// from a real server.
func mutingJSONClone(d Doc) Doc {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	var out Doc
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func (m *mutingMemDB) Get(_ context.Context, id string) (Doc, error) {
	d, ok := m.docs[id]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", id, couch.ErrNotFound)
	}
	return mutingJSONClone(d), nil
}

func (m *mutingMemDB) Put(_ context.Context, doc Doc) error {
	id, _ := doc["_id"].(string)
	if m.beforePut != nil {
		m.beforePut(id)
	}
	cur, exists := m.docs[id]
	rev, _ := doc["_rev"].(string)
	if exists && cur["_rev"] != rev || !exists && rev != "" {
		return fmt.Errorf("put %s: %w", id, couch.ErrConflict)
	}
	gen := 0
	if exists {
		gen = revGeneration(rev)
	}
	doc["_rev"] = fmt.Sprintf("%d-x", gen+1)
	m.docs[id] = mutingJSONClone(doc)
	m.puts[id]++
	m.seq++
	m.changes = append(m.changes, mutingMemChange{m.seq, id})
	return nil
}

func (m *mutingMemDB) Create(ctx context.Context, doc Doc) (string, error) {
	if _, ok := doc["_id"].(string); !ok {
		doc["_id"] = fmt.Sprintf("gen%d", m.seq+1)
	}
	return doc["_id"].(string), m.Put(ctx, doc)
}

func (m *mutingMemDB) GetMany(_ context.Context, ids []string) (map[string]Doc, error) {
	out := map[string]Doc{}
	for _, id := range ids {
		if d, ok := m.docs[id]; ok {
			out[id] = mutingJSONClone(d)
		}
	}
	return out, nil
}

func (m *mutingMemDB) sortedIDs() []string {
	ids := make([]string, 0, len(m.docs))
	for id := range m.docs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (m *mutingMemDB) ContactsByShortcode(_ context.Context, code string) ([]Doc, error) {
	var out []Doc
	for _, id := range m.sortedIDs() {
		d := m.docs[id]
		if !config.IsContact(d) {
			continue
		}
		for _, k := range []string{"patient_id", "place_id"} {
			if v, ok := d[k]; ok && v != nil && jsv.String(v) == code {
				out = append(out, mutingJSONClone(d))
				break
			}
		}
	}
	return out, nil
}

func (m *mutingMemDB) ContactsByPhone(_ context.Context, phone string) ([]Doc, error) {
	var out []Doc
	for _, id := range m.sortedIDs() {
		if d := m.docs[id]; config.IsContact(d) && d["phone"] == phone {
			out = append(out, mutingJSONClone(d))
		}
	}
	return out, nil
}

func (m *mutingMemDB) ContactsByRCCode(context.Context, string) ([]Doc, error) { return nil, nil }

func (m *mutingMemDB) UsedShortcodes(context.Context, []string) (map[string]bool, error) {
	return map[string]bool{}, nil
}

func (m *mutingMemDB) ReportsBySubject(_ context.Context, ids []string) ([]Doc, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var out []Doc
	for _, id := range m.sortedIDs() {
		d := m.docs[id]
		if d["type"] != "data_record" || d["form"] == nil {
			continue
		}
		f := jsv.Map(d["fields"])
		for _, v := range []any{d["patient_id"], d["place_id"], d["case_id"], f["patient_id"], f["place_id"],
			f["case_id"], f["patient_uuid"], f["place_uuid"]} {
			if v != nil && want[jsv.String(v)] {
				out = append(out, mutingJSONClone(d))
				break
			}
		}
	}
	return out, nil
}

func (m *mutingMemDB) ReportsByFreetext(context.Context, string) ([]couch.FreetextReport, error) {
	return nil, nil
}

func (m *mutingMemDB) DescendantIDs(_ context.Context, ancestorID string) ([]string, error) {
	var out []string
	for _, id := range m.sortedIDs() {
		d := m.docs[id]
		if !config.IsContact(d) {
			continue
		}
		for p, i := jsv.Map(d["parent"]), 0; p != nil && i < 20; p, i = jsv.Map(p["parent"]), i+1 {
			if p["_id"] == ancestorID {
				out = append(out, id)
				break
			}
		}
	}
	return out, nil
}

var _ Store = (*mutingMemDB)(nil)

// mutingWorld is a main and a sentinel db with a processor, fed like the
// daemon's feed: every write to the main db is processed in order.
type mutingWorld struct {
	t              *testing.T
	main, sentinel *mutingMemDB
	proc           *Processor
	cfg            *Config
	now            time.Time
	done           int // index into main.changes already processed
}

var mutingT0 = time.Date(2024, 5, 10, 9, 0, 0, 0, time.UTC)

func newMutingWorld(t *testing.T, settings map[string]any, docs ...Doc) *mutingWorld {
	t.Helper()
	w := &mutingWorld{t: t, main: newMutingMemDB(), sentinel: newMutingMemDB(), now: mutingT0}
	w.cfg = Load(settings, config.Translations{"en": {}})
	if !w.cfg.Valid() {
		t.Fatalf("settings invalid: %s", w.cfg.ErrorSummary())
	}
	w.proc = &Processor{Main: w.main, Sentinel: w.sentinel, Log: zerolog.Nop(), Location: time.UTC,
		Clock: func() time.Time { return w.now }, JS: jsexpr.NewSandbox(jsexpr.Options{})}
	w.save(docs...)
	return w
}

// save writes docs (at their current rev) and processes every change.
func (w *mutingWorld) save(docs ...Doc) {
	w.t.Helper()
	for _, d := range docs {
		d = mutingJSONClone(d)
		if cur, ok := w.main.docs[d["_id"].(string)]; ok {
			d["_rev"] = cur["_rev"]
		}
		if err := w.main.Put(context.Background(), d); err != nil {
			w.t.Fatal(err)
		}
	}
	w.drain()
}

// drain processes the pending changes (latest revision per change, as the
// feed delivers them) until none is left.
func (w *mutingWorld) drain() {
	w.t.Helper()
	for n := 0; w.done < len(w.main.changes); n++ {
		if n > 500 {
			w.t.Fatal("changes never settle: a transition keeps re-triggering itself")
		}
		ch := w.main.changes[w.done]
		w.done++
		if w.superseded(ch) {
			continue
		}
		w.now = w.now.Add(time.Second)
		if _, err := w.proc.Process(context.Background(), w.cfg, couch.Change{ID: ch.id, Seq: fmt.Sprint(ch.seq)}); err != nil {
			w.t.Fatalf("process %s: %v", ch.id, err)
		}
	}
}

// superseded: a later change of the same doc is pending (the feed only
// reports the latest revision).
func (w *mutingWorld) superseded(ch mutingMemChange) bool {
	for _, later := range w.main.changes[w.done:] {
		if later.id == ch.id {
			return true
		}
	}
	return false
}

func (w *mutingWorld) doc(id string) Doc {
	w.t.Helper()
	d, ok := w.main.docs[id]
	if !ok {
		w.t.Fatalf("no doc %s", id)
	}
	return d
}

func (w *mutingWorld) info(id string) Doc { return w.sentinel.docs[InfoID(id)] }

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
func mutingHierarchy() []Doc {
	dh := map[string]any{"_id": "dh"}
	hc := map[string]any{"_id": "hc", "parent": dh}
	clinic := map[string]any{"_id": "clinic", "parent": hc}
	clinic2 := map[string]any{"_id": "clinic2", "parent": hc}
	return []Doc{
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
func mutingReport(id, form, key, subject string) Doc {
	return Doc{"_id": id, "type": "data_record", "form": form, "content_type": "xml", "from": "+444999",
		"reported_date": float64(mutingT0.UnixMilli()), "fields": map[string]any{key: subject}}
}

// mutingTaskTexts lists the texts of a doc's tasks.
func mutingTaskTexts(d Doc) []string {
	var out []string
	for _, t := range jsv.Slice(d["tasks"]) {
		for _, m := range jsv.Slice(jsv.Map(t)["messages"]) {
			out = append(out, jsv.String(jsv.Map(m)["message"]))
		}
	}
	return out
}

func (m *mutingMemDB) ReportsByDate(context.Context, []string, float64, float64) ([]Doc, error) {
	return nil, nil
}

func (m *mutingMemDB) ReportsByFormAndParent(context.Context, string, string) ([]Doc, error) {
	return nil, nil
}

func (m *mutingMemDB) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	return bulkViaPut(ctx, m, docs), nil
}
