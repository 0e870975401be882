package audit_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"sentinel-go/audit"
	"sentinel-go/couch"
	"sentinel-go/couch/couchtest"
	"sentinel-go/memdb"
)

var errDown = errors.New("dial tcp 127.0.0.1:5984: connect: connection refused")

func history(t *testing.T, db *memdb.DB, id string) []any {
	t.Helper()
	doc := db.Peek(id)
	if doc == nil {
		t.Fatalf("no audit doc %s", id)
	}
	h, _ := doc["history"].([]any)
	return h
}

func newLog(db *memdb.DB, max int, logs *couchtest.LogBuffer) *audit.Log {
	l := audit.New(db, audit.Options{User: "admin", Log: zerolog.New(logs), MaxQueued: max,
		Now: func() time.Time { return time.Date(2024, 5, 1, 8, 0, 1, 123e6, time.UTC) }})
	l.SetEnabled(true)
	return l
}

func counter(t *testing.T, l *audit.Log, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sentinel_audit_entries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A CHT API write to the same audit doc between our read and our write:
// the doc is read again and our entry appended after API's.
func TestWriteConflictWithConcurrentWriterRereads(t *testing.T) {
	db := memdb.New("medic-audit")
	db.Load(map[string]any{"_id": "r1", "history": []any{}})
	var once sync.Once
	db.BeforeWrite = func(id string) {
		once.Do(func() {
			_, err := db.Edit(id, func(d map[string]any) bool {
				d["history"] = append(d["history"].([]any), map[string]any{"rev": "1-api", "request_id": "req", "user": "chw", "date": "x", "service": "api"})
				return true
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	lost, err := audit.Write(context.Background(), db, []audit.Entry{{ID: "r1", Rev: "2-ours", User: "admin", Date: "d"}})
	if err != nil || len(lost) != 0 {
		t.Fatalf("Write = %v, %v", lost, err)
	}
	h := history(t, db, "r1")
	if len(h) != 2 || h[0].(map[string]any)["service"] != "api" || h[1].(map[string]any)["rev"] != "2-ours" {
		t.Errorf("history = %v, want API's entry then ours", h)
	}
}

// A writer that changes the audit doc before every one of our writes wins:
// the entry is given up after the bounded attempts, never retried forever.
func TestWriteGivesUpAfterBoundedConflicts(t *testing.T) {
	db := memdb.New("medic-audit")
	db.Load(map[string]any{"_id": "r1", "history": []any{}})
	var edits atomic.Int32
	db.BeforeWrite = func(id string) {
		edits.Add(1)
		_, _ = db.Edit(id, func(d map[string]any) bool { d["n"] = edits.Load(); return true })
	}
	lost, err := audit.Write(context.Background(), db, []audit.Entry{{ID: "r1", Rev: "2-ours"}, {ID: "r1", Rev: "3-ours"}})
	if err != nil || len(lost) != 2 {
		t.Fatalf("Write = %v, %v; want both entries lost", lost, err)
	}
	if n := edits.Load(); n < 2 || n > 10 {
		t.Errorf("%d attempts", n)
	}
}

func TestWriteOneReadOneBulkPerBatch(t *testing.T) {
	db := memdb.New("medic-audit")
	calls := map[string]int{}
	db.Fail = func(op, _ string) error { calls[op]++; return nil }
	var entries []audit.Entry
	for i := range 50 {
		entries = append(entries, audit.Entry{ID: fmt.Sprintf("d%d", i%20), Rev: fmt.Sprintf("%d-a", i)})
	}
	if lost, err := audit.Write(context.Background(), db, entries); err != nil || len(lost) > 0 {
		t.Fatal(lost, err)
	}
	if calls["GetMany"] != 1 || calls["BulkDocs"] != 1 || len(calls) != 2 {
		t.Errorf("calls = %v, want one GetMany and one BulkDocs", calls)
	}
	if n := len(history(t, db, "d0")); n != 3 {
		t.Errorf("d0 has %d entries, want 3", n)
	}
}

// While the audit db is down, entries wait in the queue; what overflows it
// is dropped, counted and logged once per outage; once the db answers, the
// queue is written.
func TestOutageQueuesThenOverflowsThenRecovers(t *testing.T) {
	db := memdb.New("medic-audit")
	var down atomic.Bool
	down.Store(true)
	db.Fail = func(string, string) error {
		if down.Load() {
			return errDown
		}
		return nil
	}
	logs := &couchtest.LogBuffer{}
	l := newLog(db, 3, logs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for i := 1; i <= 5; i++ {
		l.Audit([]couch.Write{{ID: fmt.Sprintf("r%d", i), Rev: "2-a"}})
	}
	waitFor(t, func() bool { return strings.Count(logs.String(), "Cannot write the audit log") == 1 })
	if q := l.Queued(); q != 3 {
		t.Errorf("queued %d, want 3 (the bound)", q)
	}
	l.Audit([]couch.Write{{ID: "r6", Rev: "2-a"}})
	if got := counter(t, l, "dropped"); got != 3 {
		t.Errorf("dropped = %v, want 3", got)
	}
	if n := strings.Count(logs.String(), "The audit queue is full"); n != 1 {
		t.Errorf("overflow logged %d times in one outage, want 1", n)
	}
	down.Store(false)
	// Every queued entry is written (a blind write may take two bulks: a
	// refused one is read and written again).
	waitFor(t, func() bool {
		return l.Queued() == 0 && db.Peek("r1") != nil && db.Peek("r2") != nil && db.Peek("r3") != nil
	})
	for _, id := range []string{"r1", "r2", "r3"} {
		if h := history(t, db, id); len(h) != 1 {
			t.Errorf("%s: history %v", id, h)
		}
	}
	if got := counter(t, l, "written"); got != 3 {
		t.Errorf("written = %v, want 3", got)
	}
	waitFor(t, func() bool { return strings.Count(logs.String(), "The audit log is written again") == 1 })

	// A second outage logs its overflow again.
	down.Store(true)
	for i := 7; i <= 12; i++ {
		l.Audit([]couch.Write{{ID: fmt.Sprintf("r%d", i), Rev: "2-a"}})
	}
	waitFor(t, func() bool { return strings.Count(logs.String(), "The audit queue is full") == 2 })
}

// The main write never waits on the audit: Audit returns at once while the
// audit db hangs.
func TestAuditNeverBlocks(t *testing.T) {
	db := memdb.New("medic-audit")
	release := make(chan struct{})
	db.Fail = func(string, string) error { <-release; return nil }
	l := newLog(db, 10, &couchtest.LogBuffer{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { close(release); cancel(); <-done }()
	start := time.Now()
	for i := range 100 {
		l.Audit([]couch.Write{{ID: fmt.Sprintf("r%d", i), Rev: "2-a"}})
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("100 audits took %s with a hanging audit db", took)
	}
}

// Entries still queued at stop are written by Flush within its budget.
func TestFlushWritesWhatIsQueuedAtStop(t *testing.T) {
	db := memdb.New("medic-audit")
	var fails atomic.Int32
	db.Fail = func(string, string) error {
		if fails.Add(1) <= 2 {
			return errDown // still failing when the stop comes
		}
		return nil
	}
	l := newLog(db, 100, &couchtest.LogBuffer{})
	l.Audit([]couch.Write{{ID: "r1", Rev: "2-a"}, {ID: "r2", Rev: "3-b", Deleted: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if left := l.Flush(ctx); left != 0 {
		t.Fatalf("%d entries left", left)
	}
	if h := history(t, db, "r2"); len(h) != 1 || h[0].(map[string]any)["rev"] != "3-b" ||
		h[0].(map[string]any)["date"] != "2024-05-01T08:00:01.123Z" || h[0].(map[string]any)["user"] != "admin" {
		t.Errorf("r2 history %v", h)
	}
}

func TestFlushGivesUpAtTheBudget(t *testing.T) {
	db := memdb.New("medic-audit")
	db.Fail = func(string, string) error { return errDown }
	l := newLog(db, 100, &couchtest.LogBuffer{})
	l.Audit([]couch.Write{{ID: "r1", Rev: "2-a"}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if left := l.Flush(ctx); left != 1 {
		t.Errorf("left = %d, want 1", left)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Flush took %s past its budget", took)
	}
	if got := counter(t, l, "lost"); got != 1 {
		t.Errorf("lost = %v", got)
	}
}

func TestNotAudited(t *testing.T) {
	db := memdb.New("medic-audit")
	l := newLog(db, 100, &couchtest.LogBuffer{})
	l.Audit([]couch.Write{{ID: "_local/x", Rev: "0-1"}, {ID: "_design/medic", Rev: "2-a"}, {ID: "service-worker-meta", Rev: "2-a"}})
	if q := l.Queued(); q != 0 {
		t.Errorf("queued %d", q)
	}
	l.SetEnabled(false)
	l.Audit([]couch.Write{{ID: "r1", Rev: "2-a"}})
	if q := l.Queued(); q != 0 {
		t.Errorf("queued %d while off", q)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Collectors()...)
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "sentinel_audit_enabled" && mf.GetMetric()[0].GetGauge().GetValue() != 0 {
			t.Error("sentinel_audit_enabled is not 0 while off")
		}
	}
}

// An audit db deleted while running turns auditing off (it is never
// created here).
func TestMissingAuditDBTurnsAuditingOff(t *testing.T) {
	db := memdb.New("medic-audit")
	db.Fail = func(string, string) error { return fmt.Errorf("read docs (db medic-audit): %w", couch.ErrNotFound) }
	l := newLog(db, 100, &couchtest.LogBuffer{})
	l.Audit([]couch.Write{{ID: "r1", Rev: "2-a"}})
	l.Flush(context.Background())
	if l.Enabled() {
		t.Error("auditing still on")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// callCounter counts the store calls of db by operation, and the ids read.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
	read  []string
}

func countCalls(db *memdb.DB) *callCounter {
	c := &callCounter{calls: map[string]int{}}
	db.Fail = func(op, ids string) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls[op]++
		if op == "GetMany" {
			c.read = append(c.read, strings.Split(ids, ",")...)
		}
		return nil
	}
	return c
}

// take returns the calls counted since the last take.
func (c *callCounter) take() (map[string]int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls, read := c.calls, c.read
	c.calls, c.read = map[string]int{}, nil
	return calls, read
}

// The audit doc of a doc the daemon just created (revision 1-) cannot
// exist yet: it is written without being read.
func TestWriteDoesNotReadTheAuditDocsOfNewDocs(t *testing.T) {
	cases := []struct {
		name     string
		entries  []audit.Entry
		wantRead []string
	}{
		{name: "only new docs: no read",
			entries: []audit.Entry{{ID: "p1", Rev: "1-a"}, {ID: "p2", Rev: "1-b"}}},
		{name: "a new doc written again in the batch: no read",
			entries: []audit.Entry{{ID: "p1", Rev: "1-a"}, {ID: "p1", Rev: "2-b"}}},
		{name: "only the docs that are not new are read",
			entries:  []audit.Entry{{ID: "p1", Rev: "1-a"}, {ID: "r1", Rev: "2-a"}, {ID: "p2", Rev: "1-b"}},
			wantRead: []string{"r1"}},
		{name: "an archiving entry is not a new doc",
			entries:  []audit.Entry{{ID: "r1", Date: "d", Archived: true}},
			wantRead: []string{"r1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := memdb.New("medic-audit")
			c := countCalls(db)
			if lost, err := audit.Write(context.Background(), db, tc.entries); err != nil || len(lost) > 0 {
				t.Fatal(lost, err)
			}
			calls, read := c.take()
			if fmt.Sprint(read) != fmt.Sprint(tc.wantRead) || calls["BulkDocs"] != 1 {
				t.Errorf("read %v in %v, want %v and one BulkDocs", read, calls, tc.wantRead)
			}
			for _, e := range tc.entries {
				if h := history(t, db, e.ID); len(h) == 0 {
					t.Errorf("%s: empty history", e.ID)
				}
			}
		})
	}
}

// A new doc whose audit doc exists all the same (a purged and recreated
// doc, CHT API's entries kept): the refused write is read and appended.
func TestWriteNewDocWithAnAuditDocAppends(t *testing.T) {
	db := memdb.New("medic-audit")
	api := map[string]any{"rev": "1-old", "request_id": "req", "user": "chw", "date": "x", "service": "api"}
	db.Load(map[string]any{"_id": "p1", "history": []any{api}})
	lost, err := audit.Write(context.Background(), db, []audit.Entry{{ID: "p1", Rev: "1-new", User: "admin", Date: "d"}})
	if err != nil || len(lost) != 0 {
		t.Fatalf("Write = %v, %v", lost, err)
	}
	h := history(t, db, "p1")
	if len(h) != 2 || !reflect.DeepEqual(h[0], api) || h[1].(map[string]any)["rev"] != "1-new" {
		t.Errorf("history = %v, want API's entry then ours", h)
	}
}

// The log stops reading audit docs while its reads find none, writes them
// blind, and reads first again once blind writes keep finding them there;
// every entry lands either way, with CHT API's entries kept.
func TestLogReadsAuditDocsOnlyWhileTheyExist(t *testing.T) {
	db := memdb.New("medic-audit")
	api := map[string]any{"rev": "1-api", "request_id": "req", "user": "chw", "date": "x", "service": "api"}
	for i := range 100 {
		db.Load(map[string]any{"_id": fmt.Sprintf("x%d", i), "history": []any{api}})
	}
	c := countCalls(db)
	l := newLog(db, 1000, &couchtest.LogBuffer{})
	batch := func(prefix string, from int) {
		var ws []couch.Write
		for i := from; i < from+50; i++ {
			ws = append(ws, couch.Write{ID: fmt.Sprintf("%s%d", prefix, i), Rev: "2-a"})
		}
		l.Audit(ws)
		if left := l.Flush(context.Background()); left != 0 {
			t.Fatalf("%d left", left)
		}
	}
	steps := []struct {
		name     string
		prefix   string
		from     int
		wantRead int
		wantBulk int
	}{
		{"no audit doc yet: read first", "r", 0, 50, 1},
		{"the reads found none: blind", "r", 50, 0, 1},
		{"blind, but they exist: refused, read, written", "x", 0, 50, 2},
		{"they existed: read first again", "x", 50, 50, 1},
	}
	for _, s := range steps {
		batch(s.prefix, s.from)
		calls, read := c.take()
		if len(read) != s.wantRead || calls["BulkDocs"] != s.wantBulk {
			t.Errorf("%s: read %d docs, %d bulk writes; want %d, %d", s.name, len(read), calls["BulkDocs"], s.wantRead, s.wantBulk)
		}
	}
	for i := range 100 {
		if h := history(t, db, fmt.Sprintf("r%d", i)); len(h) != 1 {
			t.Errorf("r%d: history %v", i, h)
		}
		if h := history(t, db, fmt.Sprintf("x%d", i)); len(h) != 2 || !reflect.DeepEqual(h[0], api) {
			t.Errorf("x%d: history %v", i, h)
		}
	}
	if got := counter(t, l, "written"); got != 200 {
		t.Errorf("written = %v, want 200", got)
	}
}
