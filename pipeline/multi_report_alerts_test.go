package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/memdb"
	"sentinel-go/transitions"
)

func mraSettings(alerts ...any) map[string]any {
	return map[string]any{
		"transitions":         map[string]any{"multi_report_alerts": true},
		"forms":               map[string]any{"C": map[string]any{}, "D": map[string]any{}, "PUB": map[string]any{"public_form": true}},
		"multi_report_alerts": alerts,
	}
}

func mraAlertCfg(over map[string]any) map[string]any {
	a := map[string]any{
		"name": "cholera", "is_report_counted": "function(r, l) { return true; }",
		"num_reports_threshold": 2.0, "time_window_in_days": 7.0, "forms": []any{"C"},
		"recipients": []any{"new_report.from"}, "message": "{{num_counted_reports}} {{alert_name}} in {{time_window_in_days}} days (threshold {{num_reports_threshold}}): {{new_reports.0.contact.name}}, {{new_reports.1.contact.name}}.",
	}
	for k, v := range over {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return a
}

// mraWorld is a small district: two CHWs under one health centre, and a
// stranger elsewhere.
func mraWorld(reports ...Doc) *memdb.DB {
	docs := []transitions.Doc{
		{"_id": "district", "type": "district_hospital", "name": "District"},
		{"_id": "hc", "type": "health_center", "name": "HC", "parent": map[string]any{"_id": "district"}},
		{"_id": "chw1", "type": "person", "name": "Ann", "phone": "+254700000001", "parent": map[string]any{"_id": "hc", "parent": map[string]any{"_id": "district"}}},
		{"_id": "chw2", "type": "person", "name": "Bob", "phone": "+254700000002", "parent": map[string]any{"_id": "hc", "parent": map[string]any{"_id": "district"}}},
		{"_id": "other", "type": "person", "name": "Cid", "phone": "+254700000003"},
	}
	return memdb.New("medic").Load(append(docs, reports...)...)
}

func mraReport(id, form, chw string, reportedMs float64, extra map[string]any) transitions.Doc {
	r := transitions.Doc{"_id": id, "_rev": "1-a", "type": "data_record", "form": form, "reported_date": reportedMs,
		"from":    map[string]string{"chw1": "+254700000001", "chw2": "+254700000002", "other": "+254700000003"}[chw],
		"contact": map[string]any{"_id": chw, "parent": map[string]any{"_id": "hc", "parent": map[string]any{"_id": "district"}}}}
	if chw == "other" {
		r["contact"] = map[string]any{"_id": chw}
	}
	for k, v := range extra {
		r[k] = v
	}
	return r
}

const mraDay = 86400000.0

// TestMultiReportAlertsRunawayRecorded runs a runaway is_report_counted
// through the processor: the sandbox bound stops it, the error is saved on
// the doc with `ok: false`, and processing goes on with the next change.
func TestMultiReportAlertsRunawayRecorded(t *testing.T) {
	now := 1714557600000.0
	main := mraWorld(mraReport("L", "C", "chw1", now, nil), mraReport("L2", "C", "chw2", now+1, nil))
	sentinel := memdb.New("medic-sentinel")
	settings := mraSettings(mraAlertCfg(map[string]any{"is_report_counted": "function(r, l) { for (;;) {} }"}))
	cfg := transitions.Load(settings, config.Translations{})
	if !cfg.Valid() {
		t.Fatal(cfg.Problems)
	}
	p := &Engine{Main: main, Sentinel: sentinel, Log: zerolog.Nop(), Location: time.UTC,
		JS: jsexpr.NewSandbox(jsexpr.Options{Timeout: 30 * time.Millisecond})}
	for i, id := range []string{"L", "L2"} {
		start := time.Now()
		out, err := p.Process(context.Background(), cfg, couch.Change{ID: id, Seq: fmt.Sprint(i + 1)})
		if err != nil || !out.Changed {
			t.Fatalf("Process %s = %+v, %v", id, out, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("processing %s took %v", id, d)
		}
		doc := main.Peek(id)
		errs := jsv.Slice(doc["errors"])
		if len(errs) != 1 {
			t.Fatalf("%s errors = %v", id, errs)
		}
		e := jsv.Map(errs[0])
		if e["code"] != "multi_report_alerts_error" || !strings.Contains(jsv.String(e["message"]), "timed out") ||
			!strings.HasPrefix(jsv.String(e["message"]), "Transition error on multi_report_alerts: multi_report_alerts threw errors") {
			t.Errorf("%s error = %v", id, e)
		}
		rec := jsv.Map(jsv.Map(sentinel.Peek(id + "-info")["transitions"])["multi_report_alerts"])
		if rec["ok"] != false {
			t.Errorf("%s record = %v, want ok: false", id, rec)
		}
	}
}
