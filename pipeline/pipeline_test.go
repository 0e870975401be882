package pipeline

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
	"sentinel-go/jsexpr"
	"sentinel-go/memdb"
	"sentinel-go/transitions"
)

func TestBuildEnablingAndOrder(t *testing.T) {
	cases := []struct {
		name        string
		transitions map[string]any
		wantNames   []string
		wantErr     string
		wantWarn    string
	}{
		{"order is the reference order", map[string]any{"resolve_pending": true, "update_sent_by": map[string]any{}, "generate_shortcode_on_contacts": map[string]any{"disable": false}},
			[]string{"generate_shortcode_on_contacts", "update_sent_by", "resolve_pending"}, "", ""},
		{"disabled forms", map[string]any{"resolve_pending": map[string]any{"disable": true}, "update_sent_by": false, "death_reporting": nil},
			nil, "", ""},
		{"unknown key disables all", map[string]any{"resolve_pending": true, "resolve_pendingg": true}, []string{"resolve_pending"}, `Unknown transition "resolve_pendingg"`, ""},
		{"legacy no-op keys only warn", map[string]any{"maintain_info_document": true, "update_sent_forms": true}, nil, "", "no effect"},
		{"deprecated alias warns", map[string]any{"generate_patient_id_on_people": true}, []string{"generate_patient_id_on_people"}, "", "deprecated since 3.8.x"},
		{"bad death_reporting config", map[string]any{"death_reporting": true}, nil, "mark_deceased_forms", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := transitions.Load(map[string]any{"transitions": c.transitions}, nil)
			var names []string
			for _, tr := range cfg.Transitions {
				names = append(names, tr.Name())
			}
			if strings.Join(names, ",") != strings.Join(c.wantNames, ",") {
				t.Errorf("transitions = %v, want %v", names, c.wantNames)
			}
			var errs, warns []string
			for _, p := range cfg.Problems {
				if p.Severity == config.Error {
					errs = append(errs, p.String())
				} else {
					warns = append(warns, p.String())
				}
			}
			if (c.wantErr == "") != cfg.Valid() {
				t.Errorf("Valid = %v, errors %v", cfg.Valid(), errs)
			}
			if c.wantErr != "" && !strings.Contains(strings.Join(errs, "\n"), c.wantErr) {
				t.Errorf("errors %v lack %q", errs, c.wantErr)
			}
			if c.wantWarn != "" && !strings.Contains(strings.Join(warns, "\n"), c.wantWarn) {
				t.Errorf("warnings %v lack %q", warns, c.wantWarn)
			}
		})
	}
}

func TestAlreadyRan(t *testing.T) {
	info := transitions.Doc{"transitions": map[string]any{"x": map[string]any{"last_rev": "3-abc"}}}
	legacy := transitions.Doc{"transitions": map[string]any{"y": map[string]any{"last_rev": "2-zzz"}}}
	if !alreadyRan("x", info, transitions.Doc{}, "3-def") || alreadyRan("x", info, transitions.Doc{}, "4-def") {
		t.Error("revision rule on info doc wrong")
	}
	if !alreadyRan("y", transitions.Doc{}, legacy, "2-aaa") || alreadyRan("z", info, legacy, "3-abc") {
		t.Error("revision rule on legacy doc.transitions wrong")
	}
}

// conflictingStore makes another writer update the doc just before the
// pipeline's first save, so that the save gets a real 409 from the server.
type conflictingStore struct {
	*couch.DB
	env   *couchtest.Env
	t     *testing.T
	fired atomic.Bool
}

func (s *conflictingStore) Put(ctx context.Context, doc transitions.Doc) error {
	if doc["_id"] == "p1" && s.fired.CompareAndSwap(false, true) {
		other, _ := s.DB.Get(ctx, "p1")
		other["edited_by_someone_else"] = true
		if err := s.DB.Put(ctx, other); err != nil {
			s.t.Fatalf("other writer: %v", err)
		}
	}
	return s.DB.Put(ctx, doc)
}

func TestConflictRereadsAndKeepsBothWrites(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	env.Save(t, env.MainDB, map[string]any{"_id": "p1", "type": "person", "name": "P"})
	if err := env.Client.Main.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := transitions.Load(map[string]any{"transitions": map[string]any{"generate_shortcode_on_contacts": true},
		"contact_types": []any{map[string]any{"id": "person", "person": true}}}, nil)
	store := &conflictingStore{DB: env.Client.Main, env: env, t: t}
	p := &Engine{Main: store, Sentinel: env.Client.Sentinel, Log: zerolog.Nop(), JS: jsexpr.NewSandbox(jsexpr.Options{})}
	out, err := p.Process(ctx, cfg, couch.Change{ID: "p1", Seq: "1"})
	if err != nil || !out.Changed {
		t.Fatalf("Process = %+v, %v", out, err)
	}
	doc := env.Get(t, env.MainDB, "p1")
	if doc["edited_by_someone_else"] != true || doc["patient_id"] == nil {
		t.Fatalf("a write was lost: %v", doc)
	}
	info := env.Get(t, env.MainDB+"-sentinel", "p1-info")
	rec, _ := info["transitions"].(map[string]any)["generate_shortcode_on_contacts"].(map[string]any)
	if rec["ok"] != true || !strings.HasPrefix(rec["last_rev"].(string), "2-") {
		t.Fatalf("info record = %v", rec)
	}
	if info["type"] != "info" || info["doc_id"] != "p1" || info["initial_replication_date"] != "unknown" {
		t.Fatalf("info doc = %v", info)
	}
}

func TestInfoDocKeepsOtherFields(t *testing.T) {
	env := couchtest.New(t)
	ctx := context.Background()
	env.Save(t, env.MainDB, map[string]any{"_id": "r1", "type": "data_record"})
	env.Save(t, env.MainDB+"-sentinel", map[string]any{"_id": "r1-info", "type": "info", "doc_id": "r1",
		"initial_replication_date": "2024-05-01T08:00:00.000Z", "muting_history": []any{map[string]any{"muted": true}}})
	if err := env.Client.Main.EnsureDesignDoc(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := transitions.Load(map[string]any{"transitions": map[string]any{}}, nil)
	p := &Engine{Main: env.Client.Main, Sentinel: env.Client.Sentinel, Log: zerolog.Nop()}
	if _, err := p.Process(ctx, cfg, couch.Change{ID: "r1", Seq: "1"}); err != nil {
		t.Fatal(err)
	}
	info := env.Get(t, env.MainDB+"-sentinel", "r1-info")
	if info["muting_history"] == nil || info["initial_replication_date"] != "2024-05-01T08:00:00.000Z" {
		t.Fatalf("info doc lost fields: %v", info)
	}
	if ts, ok := info["transitions"].(map[string]any); !ok || len(ts) != 0 {
		t.Fatalf("transitions = %v, want {}", info["transitions"])
	}
}

func TestResolvePending(t *testing.T) {
	ctx := context.Background()
	records := map[string]any{"registration": map[string]any{"ok": true, "last_rev": "1-a"}}
	cases := []struct {
		name, docRev string
		wantRecords  bool
	}{
		{"doc saved before the crash: journal adopted", "2-b", true},
		{"doc not saved: journal dropped", "1-a", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sentinel := memdb.New("medic-sentinel").Load(transitions.Doc{"_id": "r1-info", "type": "info", "doc_id": "r1",
				pendingKey: map[string]any{"rev": "1-a", "transitions": records}})
			p := &Engine{Sentinel: sentinel, Main: memdb.New("medic")}
			b := p.NewBatch(ctx, nil)
			info, _ := sentinel.Get(ctx, "r1-info")
			got, err := p.resolvePending(ctx, b, "r1", info, c.docRev)
			if err != nil {
				t.Fatal(err)
			}
			if _, still := got[pendingKey]; still {
				t.Error("pending record kept")
			}
			_, has := got["transitions"]
			if has != c.wantRecords {
				t.Errorf("transitions = %v", got["transitions"])
			}
			stored, _ := sentinel.Get(ctx, "r1-info")
			if _, still := stored[pendingKey]; still {
				t.Error("pending record kept in the db")
			}
		})
	}
}
