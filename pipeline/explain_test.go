package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsv"
	"sentinel-go/memdb"
	"sentinel-go/transitions"
)

func TestDryStoreKeepsWritesInMemory(t *testing.T) {
	ctx := context.Background()
	mem := memdb.New("medic").Load(transitions.Doc{"_id": "a", "n": 1.0})
	rev1 := mem.Peek("a")["_rev"]
	dry := newDryStore(mem)

	a, err := dry.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	a["n"] = 2.0
	if err := dry.Put(ctx, a); err != nil {
		t.Fatalf("put: %v", err)
	}
	if a["_rev"] != "2-dry-run" {
		t.Errorf("put did not set the next revision on the doc: %v", a["_rev"])
	}
	if got, _ := dry.Get(ctx, "a"); got["n"] != 2.0 {
		t.Errorf("a later read does not see the write: %v", got)
	}
	if got, _ := mem.Get(ctx, "a"); got["n"] != 1.0 || got["_rev"] != rev1 {
		t.Errorf("the write reached the store: %v", got)
	}
	stale := transitions.Doc{"_id": "a", "_rev": rev1, "n": 3.0}
	if err := dry.Put(ctx, stale); !transitions.IsConflict(err) {
		t.Errorf("stale put: got %v, want a conflict", err)
	}
	if _, err := dry.Create(ctx, transitions.Doc{"_id": "b", "type": "person"}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := dry.Create(ctx, transitions.Doc{"_id": "b"}); !transitions.IsConflict(err) {
		t.Errorf("second create: got %v, want a conflict", err)
	}
	id, err := dry.Create(ctx, transitions.Doc{"type": "person"})
	if err != nil || id == "" {
		t.Fatalf("create without id: %q %v", id, err)
	}
	res, err := dry.BulkDocs(ctx, []couch.Doc{{"_id": "c"}, {"_id": "a", "_rev": rev1}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || !transitions.IsConflict(res[1].Err) {
		t.Errorf("bulk results: %+v", res)
	}
	many, err := dry.GetMany(ctx, []string{"a", "b", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(many) != 2 || many["a"]["n"] != 2.0 {
		t.Errorf("GetMany: %v", many)
	}
	if _, err := mem.Get(ctx, "b"); !transitions.IsNotFound(err) {
		t.Errorf("created doc reached the store: %v", err)
	}
	writes := dry.writes("medic")
	var got []string
	for _, w := range writes {
		got = append(got, w.Action+" "+w.ID)
	}
	want := []string{"update a", "create b", "create " + id, "create c"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("writes: got %v, want %v", got, want)
	}
	if d := writes[0].Diff; len(d) != 1 || d[0].Path != "n" || d[0].Op != "changed" {
		t.Errorf("update diff: %+v", d)
	}
}

func TestDiffDocs(t *testing.T) {
	tests := []struct {
		name          string
		before, after transitions.Doc
		want          []DiffEntry
	}{
		{"same", transitions.Doc{"a": 1.0, "b": []any{"x"}}, transitions.Doc{"a": 1.0, "b": []any{"x"}}, []DiffEntry{}},
		{"changed scalar", transitions.Doc{"a": 1.0}, transitions.Doc{"a": 2.0}, []DiffEntry{{Path: "a", Op: "changed", Old: 1.0, New: 2.0}}},
		{"added and removed keys", transitions.Doc{"a": 1.0}, transitions.Doc{"b": map[string]any{"c": true}},
			[]DiffEntry{{Path: "a", Op: "removed", Old: 1.0}, {Path: "b", Op: "added", New: map[string]any{"c": true}}}},
		{"nested change", transitions.Doc{"f": map[string]any{"x": "a", "y": "b"}}, transitions.Doc{"f": map[string]any{"x": "a", "y": "c"}},
			[]DiffEntry{{Path: "f.y", Op: "changed", Old: "b", New: "c"}}},
		{"array grows and changes", transitions.Doc{"t": []any{1.0, 2.0}}, transitions.Doc{"t": []any{1.0, 3.0, 4.0}},
			[]DiffEntry{{Path: "t[1]", Op: "changed", Old: 2.0, New: 3.0}, {Path: "t[2]", Op: "added", New: 4.0}}},
		{"array shrinks", transitions.Doc{"t": []any{1.0, 2.0}}, transitions.Doc{"t": []any{1.0}},
			[]DiffEntry{{Path: "t[1]", Op: "removed", Old: 2.0}}},
		{"type change", transitions.Doc{"a": "1"}, transitions.Doc{"a": 1.0}, []DiffEntry{{Path: "a", Op: "changed", Old: "1", New: 1.0}}},
		{"indexes sort numerically",
			transitions.Doc{"t": []any{}},
			transitions.Doc{"t": []any{0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0}},
			func() []DiffEntry {
				var out []DiffEntry
				for i := 0; i <= 10; i++ {
					out = append(out, DiffEntry{Path: "t[" + jsv.NumberString(float64(i)) + "]", Op: "added", New: float64(i)})
				}
				return out
			}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DiffDocs(tt.before, tt.after); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestExplainWritesNothing explains a registration whose bool_expr is false
// on in-memory stores: the trace, the reasons and the diff are reported and
// neither store changes.
func TestExplainWritesNothing(t *testing.T) {
	ctx := context.Background()
	settings := map[string]any{
		"synthetic_date": "20260115",
		"transitions":    map[string]any{"update_clinics": true, "registration": true, "muting": true},
		"forms":          map[string]any{"R": map[string]any{"meta": map[string]any{"code": "R"}}},
		"muting":         map[string]any{"mute_forms": []any{"M"}},
		"registrations": []any{map[string]any{"form": "R", "events": []any{map[string]any{
			"name": "on_create", "trigger": "add_patient", "params": "", "bool_expr": "doc.fields.ok === true"}}}},
	}
	cfg := transitions.Load(settings, config.Translations{})
	if !cfg.Valid() {
		t.Fatal(cfg.ErrorSummary())
	}
	main := memdb.New("medic").Load(
		transitions.Doc{"_id": "chw", "type": "person", "phone": "+254712345678", "name": "CHW"},
		transitions.Doc{"_id": "r1", "type": "data_record", "form": "R", "from": "+254712345678", "reported_date": 1.0, "fields": map[string]any{"ok": false}},
	)
	rev1 := main.Peek("r1")["_rev"]
	sentinel := memdb.New("medic-sentinel")
	ex, err := Explain(ctx, ExplainOptions{Config: cfg, Main: main, Sentinel: sentinel, DocID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]TransitionOutcome{}
	for _, o := range ex.Transitions {
		byName[o.Name] = o
	}
	if o := byName["update_clinics"]; !o.Changed {
		t.Errorf("update_clinics: %+v", o)
	}
	reg := byName["registration"]
	if len(reg.Exprs) != 1 || reg.Exprs[0].Value || reg.Exprs[0].Expr != "doc.fields.ok === true" {
		t.Errorf("registration bool_exprs: %+v", reg.Exprs)
	}
	if o := byName["muting"]; o.Filter == nil || *o.Filter || o.WhyNot == "" {
		t.Errorf("muting: %+v", o)
	}
	if o := byName["self_report"]; o.Enabled {
		t.Errorf("self_report: %+v", o)
	}
	if !ex.Changed || len(ex.Diff) == 0 || ex.Now != "2026-01-15T12:00:00.000Z" {
		t.Errorf("explanation: changed %v, diff %+v, now %s", ex.Changed, ex.Diff, ex.Now)
	}
	if got, _ := main.Get(ctx, "r1"); got["_rev"] != rev1 || got["contact"] != nil {
		t.Errorf("the doc was written: %v", got)
	}
	if _, err := sentinel.Get(ctx, "r1-info"); !transitions.IsNotFound(err) {
		t.Errorf("the info doc was written: %v", err)
	}
	if len(ex.Writes) != 1 || ex.Writes[0].ID != "r1-info" || ex.Writes[0].Action != "create" {
		t.Errorf("writes: %+v", ex.Writes)
	}
}

func TestExplainMissingDoc(t *testing.T) {
	cfg := transitions.Load(map[string]any{"transitions": map[string]any{"update_clinics": true}}, nil)
	_, err := Explain(context.Background(), ExplainOptions{Config: cfg, Main: memdb.New("medic"), Sentinel: memdb.New("medic-sentinel"), DocID: "nope"})
	if !transitions.IsNotFound(err) {
		t.Errorf("got %v, want not found", err)
	}
}

// TestExplainSendsNoOutboundPush: mark_for_outbound is described, never run.
func TestExplainSendsNoOutboundPush(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
	}))
	defer srv.Close()
	cfg := transitions.Load(map[string]any{"transitions": map[string]any{"mark_for_outbound": true},
		"outbound": map[string]any{
			"yes": mfoPush(srv.URL, "/in", "doc.form === 'test'", map[string]any{"id": "doc._id"}, nil),
			"no":  mfoPush(srv.URL, "/in", "false", map[string]any{"id": "doc._id"}, nil),
		}}, config.Translations{})
	if !cfg.Valid() {
		t.Fatal(cfg.ErrorSummary())
	}
	main := memdb.New("medic").Load(transitions.Doc{"_id": "r1", "type": "data_record", "form": "test"})
	sentinel := memdb.New("medic-sentinel")
	ex, err := Explain(context.Background(), ExplainOptions{Config: cfg, Main: main, Sentinel: sentinel, DocID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 0 {
		t.Errorf("explain sent %d requests", hits.Load())
	}
	var would []string
	for _, o := range ex.Transitions {
		if o.Name == "mark_for_outbound" {
			would = o.Would
		}
	}
	if len(would) != 2 || !strings.Contains(strings.Join(would, "\n"), `"yes": relevant; would be sent now`) {
		t.Errorf("would: %q", would)
	}
	if _, err := sentinel.Get(context.Background(), "task:outbound:r1"); !transitions.IsNotFound(err) {
		t.Errorf("an outbound task was written: %v", err)
	}
}

func TestWhyNot(t *testing.T) {
	settings := map[string]any{
		"transitions": map[string]any{"update_clinics": true, "registration": true, "accept_patient_reports": true,
			"default_responses": true, "muting": true, "update_notifications": true, "multi_report_alerts": true,
			"conditional_alerts": true},
		"forms":                map[string]any{"R": map[string]any{}, "V": map[string]any{}},
		"registrations":        []any{map[string]any{"form": "R"}},
		"patient_reports":      []any{map[string]any{"form": "V"}},
		"default_responses":    map[string]any{"start_date": "2025-01-01"},
		"muting":               map[string]any{"mute_forms": []any{"M"}},
		"notifications":        map[string]any{"on_form": "ON", "off_form": "OFF"},
		"multi_report_alerts":  []any{},
		"alerts":               []any{},
		"contact_types":        []any{map[string]any{"id": "person", "person": true}},
		"update_notifications": map[string]any{},
	}
	cfg := transitions.Load(settings, nil)
	if !cfg.Valid() {
		t.Fatal(cfg.ErrorSummary())
	}
	env := &transitions.Env{Config: cfg, Location: time.UTC}
	byName := map[string]transitions.Transition{}
	for _, tr := range cfg.Transitions {
		byName[tr.Name()] = tr
	}
	ran := map[string]any{"transitions": map[string]any{"registration": map[string]any{}, "accept_patient_reports": map[string]any{}}}
	tests := []struct {
		transition string
		doc        transitions.Doc
		info       transitions.Doc
		want       string
	}{
		{"update_clinics", transitions.Doc{"type": "data_record", "contact": map[string]any{}}, nil, "already has a contact"},
		{"update_clinics", transitions.Doc{"type": "person"}, nil, "not a report"},
		{"registration", transitions.Doc{"type": "data_record", "form": "X"}, nil, `form "X" matches no registrations[].form`},
		{"registration", transitions.Doc{"type": "data_record", "form": "R"}, ran, "already ran"},
		{"registration", transitions.Doc{"type": "data_record", "form": "R"}, nil, "sender is unknown"},
		{"accept_patient_reports", transitions.Doc{"type": "data_record", "form": "V"}, nil, "no reported_date"},
		{"accept_patient_reports", transitions.Doc{"type": "data_record", "form": "X", "reported_date": 1.0}, nil, "matches no patient_reports"},
		{"accept_patient_reports", transitions.Doc{"type": "data_record", "form": "V", "reported_date": 1.0}, ran, "already ran"},
		{"accept_patient_reports", transitions.Doc{"type": "data_record", "form": "Q", "reported_date": 1.0, "content_type": "sms"}, nil, "matches no patient_reports"},
		{"default_responses", transitions.Doc{"type": "data_record"}, nil, "no `from`"},
		{"default_responses", transitions.Doc{"type": "data_record", "from": "1", "reported_date": 1.0}, nil, "not after default_responses.start_date 2025-01-01"},
		{"muting", transitions.Doc{"type": "data_record", "form": "X"}, nil, "neither muting.mute_forms"},
		{"muting", transitions.Doc{"type": "thing"}, nil, "neither a report nor a contact"},
		{"update_notifications", transitions.Doc{"type": "data_record", "form": "X"}, nil, `form "X" is not in settings.forms`},
		{"multi_report_alerts", transitions.Doc{"type": "data_record"}, nil, "no form"},
		{"conditional_alerts", transitions.Doc{"type": "data_record", "form": "R"}, nil, "sender is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.transition+" "+tt.want, func(t *testing.T) {
			tr := byName[tt.transition]
			if tr == nil {
				t.Fatalf("%s not enabled", tt.transition)
			}
			c := &transitions.Change{ID: "d", Doc: tt.doc, Info: tt.info}
			if tr.Filter(env, c) {
				t.Fatal("filter matched")
			}
			if got := whyNot(env, tr, c); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
