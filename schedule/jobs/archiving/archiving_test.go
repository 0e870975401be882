package archiving

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/jsv"
	"sentinel-go/schedule/jobs"
)

// world holds the fake databases of one test and the kill switch: from
// call number killAt on, every database call fails and changes nothing, as
// if the process had been killed (-9) just before it.
type world struct {
	calls, killAt int
}

var errKilled = errors.New("killed")

func (w *world) tick() error {
	w.calls++
	if w.killAt > 0 && w.calls >= w.killAt {
		return errKilled
	}
	return nil
}

type fdoc struct {
	rev     int
	body    couch.Doc
	deleted bool
	atts    map[string][]byte
}

// fakeDB is one database: one revision per doc, enough for the job's
// calls; it counts the replicated writes that stored a new revision.
type fakeDB struct {
	w      *world
	name   string
	docs   map[string]*fdoc
	copies map[string]int
}

func newFake(w *world, name string) *fakeDB {
	return &fakeDB{w: w, name: name, docs: map[string]*fdoc{}, copies: map[string]int{}}
}

func clone(d couch.Doc) couch.Doc {
	out := couch.Doc{}
	for k, v := range d {
		out[k] = jsv.Clone(v)
	}
	return out
}

func (f *fakeDB) seed(d couch.Doc) {
	id := d["_id"].(string)
	f.docs[id] = &fdoc{rev: 1, body: clone(d)}
}

func (f *fakeDB) out(id string, d *fdoc) couch.Doc {
	c := clone(d.body)
	c["_id"], c["_rev"] = id, fmt.Sprintf("%d-x", d.rev)
	return c
}

func (f *fakeDB) Name() string { return f.name }

func (f *fakeDB) Get(_ context.Context, id string) (couch.Doc, error) {
	if err := f.w.tick(); err != nil {
		return nil, err
	}
	d := f.docs[id]
	if d == nil || d.deleted {
		return nil, couch.ErrNotFound
	}
	return f.out(id, d), nil
}

func (f *fakeDB) write(doc couch.Doc, deleted bool) error {
	id := doc["_id"].(string)
	d := f.docs[id]
	rev, _ := doc["_rev"].(string)
	switch {
	case d == nil && rev != "", d != nil && !d.deleted && rev != fmt.Sprintf("%d-x", d.rev):
		return couch.ErrConflict
	case d == nil:
		d = &fdoc{}
		f.docs[id] = d
	}
	body := clone(doc)
	delete(body, "_id")
	delete(body, "_rev")
	d.rev++
	d.body, d.deleted = body, deleted
	doc["_rev"] = fmt.Sprintf("%d-x", d.rev)
	return nil
}

func (f *fakeDB) Put(_ context.Context, doc couch.Doc) error {
	if err := f.w.tick(); err != nil {
		return err
	}
	return f.write(doc, false)
}

func (f *fakeDB) Delete(_ context.Context, id, rev string) error {
	if err := f.w.tick(); err != nil {
		return err
	}
	return f.write(couch.Doc{"_id": id, "_rev": rev}, true)
}

func (f *fakeDB) AllDocs(_ context.Context, p map[string]any) ([]couch.Row, error) {
	if err := f.w.tick(); err != nil {
		return nil, err
	}
	var ids []string
	for id, d := range f.docs {
		if !d.deleted && id >= p["startkey"].(string) && id <= p["endkey"].(string) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	rows := make([]couch.Row, len(ids))
	for i, id := range ids {
		rows[i] = couch.Row{ID: id}
	}
	return rows, nil
}

func (f *fakeDB) GetMany(_ context.Context, ids []string) (map[string]couch.Doc, error) {
	if err := f.w.tick(); err != nil {
		return nil, err
	}
	out := map[string]couch.Doc{}
	for _, id := range ids {
		if d := f.docs[id]; d != nil && !d.deleted {
			out[id] = f.out(id, d)
		}
	}
	return out, nil
}

func (f *fakeDB) BulkDocs(_ context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	if err := f.w.tick(); err != nil {
		return nil, err
	}
	var res []couch.BulkResult
	for _, d := range docs {
		res = append(res, couch.BulkResult{ID: d["_id"].(string), Err: f.write(d, false)})
	}
	return res, nil
}

func (f *fakeDB) Attachment(_ context.Context, id, name string) ([]byte, error) {
	if err := f.w.tick(); err != nil {
		return nil, err
	}
	d := f.docs[id]
	if d == nil || d.deleted || d.atts[name] == nil {
		return nil, couch.ErrNotFound
	}
	return d.atts[name], nil
}

func (f *fakeDB) GetFull(ctx context.Context, id string) (couch.Doc, error) {
	return f.Get(ctx, id)
}

func (f *fakeDB) PutReplicated(_ context.Context, docs []couch.Doc) error {
	if err := f.w.tick(); err != nil {
		return err
	}
	for _, doc := range docs {
		id := doc["_id"].(string)
		var rev int
		fmt.Sscanf(doc["_rev"].(string), "%d-x", &rev)
		if d := f.docs[id]; d != nil && d.rev == rev {
			continue // the database has this revision: nothing written
		}
		body := clone(doc)
		delete(body, "_id")
		delete(body, "_rev")
		f.docs[id] = &fdoc{rev: rev, body: body}
		f.copies[id]++
	}
	return nil
}

func (f *fakeDB) LeafRevs(_ context.Context, id string) ([]string, error) {
	if err := f.w.tick(); err != nil {
		return nil, err
	}
	d := f.docs[id]
	if d == nil {
		return nil, couch.ErrNotFound
	}
	return []string{fmt.Sprintf("%d-x", d.rev)}, nil
}

func (f *fakeDB) Purge(_ context.Context, revs map[string][]string) error {
	if len(revs) == 0 {
		return nil
	}
	if err := f.w.tick(); err != nil {
		return err
	}
	for id := range revs {
		delete(f.docs, id)
	}
	return nil
}

func (f *fakeDB) Query(context.Context, string, string, map[string]any) ([]couch.Row, error) {
	return nil, f.w.tick()
}

type fakeWorld struct {
	w                                    *world
	main, sentinel, archive, audit, logs *fakeDB
}

func (fw *fakeWorld) stores() Stores {
	return Stores{Main: fw.main, Sentinel: fw.sentinel, Archive: fw.archive, Audit: fw.audit, Logs: fw.logs}
}

// archivableIDs are the docs the two queued jobs must move.
var archivableIDs = []string{"r1", "r2", "c1", "p1"}

func newFakeWorld() *fakeWorld {
	w := &world{}
	fw := &fakeWorld{w: w, main: newFake(w, "medic"), sentinel: newFake(w, "medic-sentinel"),
		archive: newFake(w, "medic-archive"), audit: newFake(w, "medic-audit"), logs: newFake(w, "medic-logs")}
	for _, d := range []couch.Doc{
		{"_id": "r1", "type": "data_record", "form": "V"}, {"_id": "r2", "type": "data_record"},
		{"_id": "c1", "type": "clinic"}, {"_id": "p1", "type": "person"},
		{"_id": "x1", "type": "random"}, {"_id": "settings", "type": "app_settings"},
	} {
		fw.main.seed(d)
	}
	fw.sentinel.seed(couch.Doc{"_id": "r1-info", "type": "info"})
	fw.sentinel.seed(couch.Doc{"_id": "c1-info", "type": "info"})
	fw.audit.seed(couch.Doc{"_id": "r2", "history": []any{map[string]any{"action": "update"}}})
	for id, ids := range map[string]string{"archive:0001": "r1\n r2 \n\nx1\nmissing", "archive:0002": "c1\nsettings\np1\n"} {
		fw.sentinel.seed(couch.Doc{"_id": id, "date": 1.0, "total": 1.0, "cursor": 0.0})
		fw.sentinel.docs[id].atts = map[string][]byte{"ids": []byte(ids)}
	}
	return fw
}

func runOnce(t *testing.T, fw *fakeWorld) {
	t.Helper()
	env := &jobs.Env{Log: testLog(t), Clock: func() time.Time { return time.UnixMilli(1720000000000) }}
	_ = RunOnce(context.Background(), fw.stores(), env, 0)
}

// checkNothingLost: every archivable doc is in the main db or the archive.
func checkNothingLost(t *testing.T, fw *fakeWorld, when string) {
	t.Helper()
	for _, id := range archivableIDs {
		if fw.main.docs[id] == nil && fw.archive.docs[id] == nil {
			t.Fatalf("%s: %s is in neither the main db nor the archive", when, id)
		}
	}
}

// TestKillAtAnyPointLosesNothing kills a run before each of its database
// calls in turn, then lets later runs finish: nothing is lost at the kill,
// and in the end every doc is archived once, audited once and gone.
func TestKillAtAnyPointLosesNothing(t *testing.T) {
	clean := newFakeWorld()
	runOnce(t, clean)
	total := clean.w.calls
	if total < 20 {
		t.Fatalf("a clean run made only %d calls", total)
	}
	for k := 1; k <= total; k++ {
		fw := newFakeWorld()
		fw.w.killAt = k
		runOnce(t, fw)
		checkNothingLost(t, fw, fmt.Sprintf("killed at call %d", k))
		fw.w.killAt = 0
		// The restarted daemon's runs: a job failed by the kill is retried.
		runOnce(t, fw)
		runOnce(t, fw)
		checkFinal(t, fw, k)
	}
}

func checkFinal(t *testing.T, fw *fakeWorld, k int) {
	t.Helper()
	for _, id := range archivableIDs {
		if fw.main.docs[id] != nil {
			t.Errorf("kill at %d: %s still in the main db", k, id)
		}
		a := fw.archive.docs[id]
		if a == nil || fw.archive.copies[id] != 1 || a.rev != 1 || a.body["archive_date"] == nil {
			t.Errorf("kill at %d: %s archived %d times (%v)", k, id, fw.archive.copies[id], a)
		}
		n := 0
		for _, e := range jsv.Slice(fw.audit.docs[id].body["history"]) {
			if jsv.Map(e)["archived"] == true {
				n++
			}
		}
		if n != 1 {
			t.Errorf("kill at %d: %s audited %d times", k, id, n)
		}
	}
	for _, id := range []string{"x1", "settings"} {
		if fw.main.docs[id] == nil || fw.archive.docs[id] != nil {
			t.Errorf("kill at %d: %s was archived", k, id)
		}
	}
	for id, d := range fw.sentinel.docs {
		if !d.deleted && (strings.HasPrefix(id, "archive:") || strings.HasSuffix(id, "-info")) {
			t.Errorf("kill at %d: %s left in the sentinel db", k, id)
		}
	}
	for _, id := range []string{"archive:0001", "archive:0002"} {
		lg := fw.logs.docs[id]
		if lg == nil || lg.body["status"] != "completed" {
			t.Errorf("kill at %d: log of %s: %v", k, id, lg)
		}
	}
}

func TestFailuresAreCountedAndGivenUpAtTen(t *testing.T) {
	fw := newFakeWorld()
	delete(fw.sentinel.docs["archive:0001"].atts, "ids")
	fw.sentinel.docs["archive:0001"].body["error_count"] = 8.0
	runOnce(t, fw)
	job := fw.sentinel.docs["archive:0001"]
	if job.deleted || job.body["error_count"] != 9.0 || len(jsv.Slice(job.body["history"])) != 1 {
		t.Fatalf("after the 9th failure: %+v", job)
	}
	if lg := fw.logs.docs["archive:0001"].body; lg["status"] != "running" || len(jsv.Slice(lg["errors"])) != 1 {
		t.Fatalf("log after the 9th failure: %v", lg)
	}
	runOnce(t, fw)
	if !fw.sentinel.docs["archive:0001"].deleted || fw.logs.docs["archive:0001"].body["status"] != "failed" {
		t.Fatalf("the 10th failure did not give the job up: %+v", fw.sentinel.docs["archive:0001"])
	}
	if fw.logs.docs["archive:0002"].body["status"] != "completed" {
		t.Error("the job behind the poison one did not complete")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"4 hours": 4 * time.Hour, "20 milliseconds": 20 * time.Millisecond, "1  Day": 24 * time.Hour,
		"2 M": 60 * 24 * time.Hour, "2 m": 2 * time.Minute, "3 ms": 3 * time.Millisecond, "1 WEEKS": 7 * 24 * time.Hour,
		"0 hours": 0, "hours": 0, "4hours": 0, "-1 hour": 0, "1.5 hours": 0, "4 H": 0, "4 fortnights": 0,
	} {
		got, ok := ParseDuration(in)
		if got != want || ok != (want > 0) {
			t.Errorf("ParseDuration(%q) = %v %v, want %v", in, got, ok, want)
		}
	}
}

func testLog(t *testing.T) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(t))
	}
	return zerolog.Nop()
}
