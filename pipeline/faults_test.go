package pipeline_test

// Fault-injection matrix: for each transition of the differential test's
// settings, a batch that makes it run; every store call of that batch (main
// and sentinel db, recorded in a clean run) is failed once, with a 503 and
// with a network-style error (status 502, as kivik reports a cut
// connection). The daemon's loop retries a change whose processing returned
// an error, then the feed is drained with no fault: the final docs and info
// docs must equal those of the clean run. A failure that the engine reports
// as success and that loses an effect shows up as a difference.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"sentinel-go/couch"
	"sentinel-go/memdb"
)

// knownFaultBugs are (scenario, call) failures found and not fixed yet:
// logged, not failed, while listed. Keys are "scenario/op" ("*": any call
// the transition makes). Delete an entry once the engine is fixed.
var knownFaultBugs = map[string]string{}

func knownFault(scenario, op string) (string, bool) {
	if r, ok := knownFaultBugs[scenario+"/"+op]; ok {
		return r, true
	}
	r, ok := knownFaultBugs[scenario+"/*"]
	return r, ok
}

// faultWorld is one daemon (group commit on or off) over memdbs.
type faultWorld struct {
	t       *testing.T
	e       *engine
	grouped bool
	since   int
}

func newFaultWorld(t *testing.T, grouped bool) *faultWorld {
	main, sentinel := memdb.New("medic"), memdb.New("medic-sentinel")
	main.Deferring, main.HideIndex = true, !grouped
	if err := main.Save(seedDocs()...); err != nil {
		t.Fatal(err)
	}
	e, err := newEngine(main, sentinel, diffSettings(), diffTranslations, diffT0, faultSeed)
	if err != nil {
		t.Fatal(err)
	}
	w := &faultWorld{t: t, e: e, grouped: grouped}
	w.drain()
	return w
}

func (w *faultWorld) clone() *faultWorld {
	e, err := newEngine(w.e.main.Clone(), w.e.sentinel.Clone(), diffSettings(), diffTranslations, diffT0, faultSeed)
	if err != nil {
		w.t.Fatal(err)
	}
	return &faultWorld{t: w.t, e: e, grouped: w.grouped, since: w.since}
}

// faultSeed seeds the random sources of every fault world: a run with a
// fault and a clean run draw the same codes.
const faultSeed = 99

// batch processes the next feed batch (all of it) as the daemon does.
func (w *faultWorld) batch() (batchResult, bool) {
	fb := w.e.main.Changes(w.since, 500)
	if len(fb.Changes) == 0 {
		return batchResult{}, false
	}
	var h hooks
	var r batchResult
	if w.grouped {
		r = w.e.runGrouped(context.Background(), fb.Changes, h)
	} else {
		r = w.e.runOneAtATime(context.Background(), fb.Changes, h)
	}
	if r.flushed {
		fmt.Sscan(fb.LastSeq, &w.since)
	}
	return r, true
}

func (w *faultWorld) drain() {
	for range 20 {
		if _, more := w.batch(); !more {
			return
		}
	}
	w.t.Fatal("feed does not settle")
}

func (w *faultWorld) state() snapshot { return snap(w.e) }

func sameSnapshot(a, b snapshot) []string {
	var out []string
	cmp := func(db string, x, y map[string]string) {
		for id, v := range x {
			if y[id] != v {
				out = append(out, fmt.Sprintf("%s %s:\n  with fault: %s\n  clean:      %s", db, id, orMissing(v), orMissing(y[id])))
			}
		}
		for id, v := range y {
			if _, ok := x[id]; !ok {
				out = append(out, fmt.Sprintf("%s %s:\n  with fault: (missing)\n  clean:      %s", db, id, v))
			}
		}
	}
	cmp("main", a.main, b.main)
	cmp("sentinel", a.info, b.info)
	if strings.Join(a.tombstones, ",") != strings.Join(b.tombstones, ",") {
		out = append(out, fmt.Sprintf("tombstones: with fault %v, clean %v", a.tombstones, b.tombstones))
	}
	return out
}

// faultScenario prepares a world (setup, drained) and then writes the docs
// of the batch under test (act).
type faultScenario struct {
	name  string
	setup func(w *faultWorld)
	act   func(w *faultWorld)
}

func smsReport(id, form, phone string, fields map[string]any) memdb.Doc {
	return memdb.Doc{"_id": id, "type": "data_record", "form": form, "from": phone, "fields": fields,
		"sms_message": map[string]any{"from": phone, "form": form, "message": form}, "reported_date": diffMs(time.Hour)}
}

func appReport(id, form, clinic string, fields map[string]any) memdb.Doc {
	return memdb.Doc{"_id": id, "type": "data_record", "form": form, "fields": fields,
		"contact": map[string]any{"_id": chwOf(clinic, 1), "parent": lineageOf(clinic)}, "reported_date": diffMs(2 * time.Hour)}
}

func registered(w *faultWorld) {
	if err := w.e.main.Save(appReport("reg-1", "REG", "c1", map[string]any{"patient_name": "Ann"})); err != nil {
		w.t.Fatal(err)
	}
	w.drain()
}

func patientCode(w *faultWorld) string {
	return fmt.Sprint(w.e.main.Peek("reg-1")["patient_id"])
}

func save(w *faultWorld, docs ...memdb.Doc) {
	if err := w.e.main.SaveBulk(docs...); err != nil {
		w.t.Fatal(err)
	}
}

var faultScenarios = []faultScenario{
	{"registration", nil, func(w *faultWorld) {
		save(w, smsReport("reg-2", "REG", chwPhone("c2", 1), map[string]any{"patient_name": "Bob"}))
	}},
	{"accept_patient_reports", registered, func(w *faultWorld) {
		save(w, appReport("visit-1", "VISIT", "c1", map[string]any{"patient_id": patientCode(w)}))
	}},
	{"muting-patient", registered, func(w *faultWorld) {
		save(w, appReport("mute-1", "MUTE", "c1", map[string]any{"patient_id": patientCode(w)}))
	}},
	{"muting-place", registered, func(w *faultWorld) {
		save(w, appReport("mute-2", "MUTE", "c2", map[string]any{"place_id": fmt.Sprint(w.e.main.Peek("c1")["place_id"])}))
	}},
	{"unmuting-place", func(w *faultWorld) {
		registered(w)
		save(w, appReport("mute-2", "MUTE", "c2", map[string]any{"place_id": fmt.Sprint(w.e.main.Peek("c1")["place_id"])}))
		w.drain()
	}, func(w *faultWorld) {
		save(w, appReport("unmute-2", "UNMUTE", "c2", map[string]any{"patient_id": patientCode(w)}))
	}},
	{"muting-new-contact", func(w *faultWorld) {
		registered(w)
		save(w, appReport("mute-2", "MUTE", "c2", map[string]any{"place_id": fmt.Sprint(w.e.main.Peek("c1")["place_id"])}))
		w.drain()
	}, func(w *faultWorld) {
		save(w, memdb.Doc{"_id": "new-person", "type": "person", "name": "New", "parent": lineageOf("c1"), "reported_date": diffMs(time.Hour)})
	}},
	{"muting-client-side-replay", registered, func(w *faultWorld) {
		// An offline client muted Ann (cs-1) and unmuted her (cs-2); the
		// contact and cs-2 replicate before cs-1.
		code := patientCode(w)
		var person memdb.Doc
		for _, d := range w.e.main.All() {
			if d["patient_id"] == code && d["type"] == "person" {
				person = d
			}
		}
		person["muting_history"] = map[string]any{"last_update": "client_side",
			"server_side": map[string]any{"muted": false, "date": "2024-05-01T00:00:00.000Z"},
			"client_side": []any{
				map[string]any{"muted": true, "date": "2024-05-10T08:00:00.000Z", "report_id": "cs-1"},
				map[string]any{"muted": false, "date": "2024-05-10T08:30:00.000Z", "report_id": "cs-2"}}}
		cs := func(id, form string) memdb.Doc {
			r := appReport(id, form, "c1", map[string]any{"patient_id": code})
			r["client_side_transitions"] = map[string]any{"muting": true}
			return r
		}
		save(w, person, cs("cs-2", "UNMUTE"))
		w.drain()
		save(w, cs("cs-1", "MUTE"))
	}},
	{"muting-client-side-replay-steps", registered, func(w *faultWorld) {
		// Muted (cs-1), unmuted (cs-2) and muted again (cs-3) offline; cs-1
		// replicates last: its retry must skip the steps done and finish the
		// one in progress.
		code := patientCode(w)
		person := patientDoc(w, code)
		person["muted"] = "2024-05-10T08:40:00.000Z"
		person["muting_history"] = clientSideHistory(
			clientSideEntry(true, "2024-05-10T08:00:00.000Z", "cs-1"),
			clientSideEntry(false, "2024-05-10T08:30:00.000Z", "cs-2"),
			clientSideEntry(true, "2024-05-10T08:40:00.000Z", "cs-3"))
		save(w, person, clientSideReport(w, "cs-2", "UNMUTE", "patient_id", code), clientSideReport(w, "cs-3", "MUTE", "patient_id", code))
		w.drain()
		save(w, clientSideReport(w, "cs-1", "MUTE", "patient_id", code))
	}},
	{"muting-client-side-replay-place", registered, func(w *faultWorld) {
		// Clinic c1 muted (cs-p1), then its patient unmuted (cs-p2), which
		// unmutes the whole clinic, offline: every contact of the clinic
		// lists both; cs-p1 replicates last.
		code := patientCode(w)
		hist := func() map[string]any {
			return clientSideHistory(
				clientSideEntry(true, "2024-05-10T08:00:00.000Z", "cs-p1"),
				clientSideEntry(false, "2024-05-10T08:30:00.000Z", "cs-p2"))
		}
		docs := []memdb.Doc{patientDoc(w, code)}
		for _, id := range []string{"c1", chwOf("c1", 1), chwOf("c1", 2)} {
			docs = append(docs, w.e.main.Peek(id))
		}
		for _, d := range docs {
			d["muting_history"] = hist()
		}
		save(w, append(docs, clientSideReport(w, "cs-p2", "UNMUTE", "patient_id", code))...)
		w.drain()
		save(w, clientSideReport(w, "cs-p1", "MUTE", "place_id", fmt.Sprint(w.e.main.Peek("c1")["place_id"])))
	}},
	{"update_scheduled_reports", func(w *faultWorld) {
		save(w, appReport("monthly-1", "MONTHLY", "c1", map[string]any{"year": 2024, "month": 4}))
		w.drain()
	}, func(w *faultWorld) {
		save(w, appReport("monthly-2", "MONTHLY", "c1", map[string]any{"year": 2024, "month": 4}))
	}},
	{"update_clinics+default_responses", nil, func(w *faultWorld) {
		save(w, smsReport("sms-1", "XYZ", chwPhone("c3", 2), map[string]any{}))
	}},
	{"generate_shortcode_on_contacts", nil, func(w *faultWorld) {
		save(w, memdb.Doc{"_id": "new-person", "type": "person", "name": "New", "parent": lineageOf("c4"), "reported_date": diffMs(time.Hour)},
			memdb.Doc{"_id": "new-clinic", "type": "clinic", "name": "New clinic", "parent": lineageOf("hc2"), "reported_date": diffMs(time.Hour)})
	}},
}

// patientDoc is the person whose patient_id is code.
func patientDoc(w *faultWorld, code string) memdb.Doc {
	for _, d := range w.e.main.All() {
		if d["patient_id"] == code && d["type"] == "person" {
			return d
		}
	}
	w.t.Fatalf("no person with patient_id %s", code)
	return nil
}

func clientSideEntry(muted bool, date, reportID string) any {
	return map[string]any{"muted": muted, "date": date, "report_id": reportID}
}

// clientSideHistory is a contact's muting_history as an offline client
// leaves it.
func clientSideHistory(entries ...any) map[string]any {
	return map[string]any{"last_update": "client_side",
		"server_side": map[string]any{"muted": false, "date": "2024-05-01T00:00:00.000Z"},
		"client_side": entries}
}

// clientSideReport is a muting report processed by an offline client.
func clientSideReport(w *faultWorld, id, form, key, value string) memdb.Doc {
	r := appReport(id, form, "c1", map[string]any{key: value})
	r["client_side_transitions"] = map[string]any{"muting": true}
	return r
}

// call is one store call of a batch.
type call struct{ db, op, id string }

// record sets hooks on both dbs of w: each call is passed to fn, which may fail it.
func record(w *faultWorld, fn func(c call) error) {
	w.e.main.Fail = func(op, id string) error { return fn(call{"main", op, id}) }
	w.e.sentinel.Fail = func(op, id string) error { return fn(call{"sentinel", op, id}) }
}

func unrecord(w *faultWorld) { w.e.main.Fail, w.e.sentinel.Fail = nil, nil }

var faultKinds = []struct {
	name string
	err  func(c call) error
	// lost: the call (a write) is made, and its answer is replaced by err.
	lost bool
}{
	{"503", func(c call) error {
		return &couch.Error{What: strings.ToLower(c.op) + " " + c.id, Status: 503, Msg: "Service Unavailable"}
	}, false},
	{"network", func(c call) error {
		return &couch.Error{What: strings.ToLower(c.op) + " " + c.id, Status: 502, Msg: "read tcp 127.0.0.1:5984: connection reset by peer"}
	}, false},
	{"answer-lost", func(c call) error {
		return &couch.Error{What: strings.ToLower(c.op) + " " + c.id, Status: 502, Msg: "read tcp 127.0.0.1:5984: connection reset by peer"}
	}, true},
}

// writeOps are the store calls that write.
var writeOps = map[string]bool{"Put": true, "Create": true, "BulkDocs": true}

// cleanRun runs the next batch of a copy of base with no fault: its store
// calls, and the final state once the feed is drained.
func cleanRun(t *testing.T, base *faultWorld) ([]call, snapshot) {
	t.Helper()
	clean := base.clone()
	var calls []call
	record(clean, func(c call) error { calls = append(calls, c); return nil })
	if r, _ := clean.batch(); r.failed() {
		t.Fatalf("clean run failed: %v", r.errs)
	}
	unrecord(clean)
	clean.drain()
	return calls, clean.state()
}

func TestFaultMatrix(t *testing.T) {
	for _, grouped := range []bool{true, false} {
		mode := "one-at-a-time"
		if grouped {
			mode = "grouped"
		}
		for _, sc := range faultScenarios {
			t.Run(mode+"/"+sc.name, func(t *testing.T) {
				base := newFaultWorld(t, grouped)
				if sc.setup != nil {
					sc.setup(base)
				}
				sc.act(base)
				calls, want := cleanRun(t, base)
				failures, answersLost := 0, 0
				failing := map[string]bool{}
				for i, c := range calls {
					for _, kind := range faultKinds {
						if kind.lost && !writeOps[c.op] {
							continue
						}
						w := base.clone()
						n := 0
						var lose *call
						record(w, func(got call) error {
							n++
							if n != i+1 {
								return nil
							}
							if kind.lost {
								lose = &got
								return nil
							}
							return kind.err(got)
						})
						answer := func(op, id string) error {
							if lose == nil {
								return nil
							}
							c := *lose
							lose = nil
							answersLost++
							return kind.err(c)
						}
						w.e.main.LoseAnswer, w.e.sentinel.LoseAnswer = answer, answer
						r, _ := w.batch()
						unrecord(w)
						w.e.main.LoseAnswer, w.e.sentinel.LoseAnswer = nil, nil
						w.drain()
						diffs := sameSnapshot(w.state(), want)
						if diffs == nil {
							continue
						}
						failing[fmt.Sprintf("%s %s.%s (error returned: %v)", kind.name, c.db, c.op, r.failed())] = true
						shown := diffs
						if len(shown) > 3 {
							shown = shown[:3]
						}
						msg := fmt.Sprintf("%s fault at call %d (%s %s %s): error returned: %v; %d docs differ from the clean run\n%s",
							kind.name, i+1, c.db, c.op, c.id, r.failed(), len(diffs), strings.Join(shown, "\n"))
						if reason, known := knownFault(sc.name, c.op); known {
							t.Logf("known bug (%s): %s", reason, msg)
							continue
						}
						failures++
						if failures <= 4 {
							t.Error(msg)
						}
					}
				}
				var fs []string
				for f := range failing {
					fs = append(fs, f)
				}
				sort.Strings(fs)
				t.Logf("%d calls x %d kinds (%d answers lost), %d unexplained failures; failing: %s", len(calls), len(faultKinds), answersLost, failures, strings.Join(fs, "; "))
			})
		}
	}
}

// TestLostBulkAnswerCostsNoRoundTripPerDoc: a bulk write of the group
// commit whose answer is lost (the server wrote, the connection was cut) is
// retried by the batch, which then finds every doc already written. That
// must cost a few requests for the whole batch, not a read and a write per
// doc: after an outage cut a batch of 500, the one-by-one repair took
// seconds (3 requests per info doc, seen in chaos.py --outages).
func TestLostBulkAnswerCostsNoRoundTripPerDoc(t *testing.T) {
	const n = 40
	base := newFaultWorld(t, true)
	var docs []memdb.Doc
	for i := range n {
		docs = append(docs, smsReport(fmt.Sprintf("reg-%02d", i), "REG", chwPhone("c2", 1), map[string]any{"patient_name": fmt.Sprintf("P%d", i)}))
	}
	save(base, docs...)
	calls, want := cleanRun(t, base)
	for i, c := range calls {
		if c.op != "BulkDocs" {
			continue
		}
		w := base.clone()
		n, made := 0, 0
		lose := false
		record(w, func(call) error {
			n++
			made++
			lose = lose || n == i+1
			return nil
		})
		answer := func(op, id string) error {
			if !lose {
				return nil
			}
			lose = false
			return &couch.Error{What: "bulk", Status: 502, Msg: "connection reset by peer"}
		}
		w.e.main.LoseAnswer, w.e.sentinel.LoseAnswer = answer, answer
		w.batch()
		unrecord(w)
		w.e.main.LoseAnswer, w.e.sentinel.LoseAnswer = nil, nil
		w.drain()
		if diffs := sameSnapshot(w.state(), want); diffs != nil {
			t.Errorf("answer of call %d (%s BulkDocs) lost: %d docs differ, e.g. %s", i+1, c.db, len(diffs), diffs[0])
		}
		if extra := made - len(calls); extra > 10 {
			t.Errorf("answer of call %d (%s BulkDocs of %d docs) lost: %d requests more than without (%d), want a few for the whole batch",
				i+1, c.db, len(strings.Split(c.id, ",")), extra, len(calls))
		}
	}
}
