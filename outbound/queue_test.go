package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/infodoc"
	"sentinel-go/jsv"
)

// queueDB is memDB with the bulk calls the queue uses.
type queueDB struct{ *memDB }

func (q queueDB) GetMany(ctx context.Context, ids []string) (map[string]couch.Doc, error) {
	out := map[string]couch.Doc{}
	for _, id := range ids {
		if d, err := q.Get(ctx, id); err == nil {
			out[id] = d
		}
	}
	return out, nil
}

func (q queueDB) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	res := make([]couch.BulkResult, len(docs))
	for i, d := range docs {
		id, _ := d["_id"].(string)
		res[i].ID = id
		if d["_deleted"] == true {
			res[i].Err = q.Delete(ctx, id, jsv.String(d["_rev"]))
			continue
		}
		res[i].Err = q.Put(ctx, d)
	}
	return res, nil
}

func (q queueDB) Delete(_ context.Context, id, rev string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	cur, ok := q.docs[id]
	if !ok {
		return couch.ErrNotFound
	}
	if cur["_rev"] != rev {
		return couch.ErrConflict
	}
	delete(q.docs, id)
	return nil
}

func (q queueDB) AllDocs(context.Context, map[string]any) ([]couch.Row, error) {
	return nil, nil
}

// switchable is an endpoint that, while dead, accepts connections and
// never answers; alive, it answers 200 and records the bodies.
type switchable struct {
	mu     sync.Mutex
	dead   bool
	bodies []string
	wake   chan struct{}
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read first: the server notices a client that gave up only then.
	b, _ := io.ReadAll(r.Body)
	for {
		s.mu.Lock()
		dead, wake := s.dead, s.wake
		s.mu.Unlock()
		if !dead {
			break
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		}
	}
	if r.Context().Err() != nil {
		return // the client gave up: not delivered
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
}

func (s *switchable) setDead(dead bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = dead
	if !dead && s.wake != nil {
		close(s.wake)
	}
	if dead {
		s.wake = make(chan struct{})
	}
}

func (s *switchable) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func queuePush(t *testing.T, name, base string) *Push {
	t.Helper()
	cfg, problems := Parse(map[string]any{name: map[string]any{
		"relevant_to": "true",
		"destination": map[string]any{"base_url": base, "path": "/p"},
		"mapping":     map[string]any{"id": "doc._id"},
	}}, nil)
	if p := cfg.Get(name); p != nil {
		return p
	}
	t.Fatal(problems)
	return nil
}

func queueItem(t *testing.T, p *Push, id string) Item {
	t.Helper()
	body, hash, err := p.Prepare(context.Background(), nil, map[string]any{"_id": id})
	if err != nil {
		t.Fatal(err)
	}
	return Item{Name: p.Name, Push: p, Body: body, Hash: hash, LastKnown: true}
}

// A destination that accepts connections and never answers neither holds
// the caller (Enqueue and Sync return at once) nor the pushes to another
// destination; once it answers again every queued push is delivered once,
// and the queue stops on cancel.
func TestQueueDeadDestination(t *testing.T) {
	dead := &switchable{}
	dead.setDead(true)
	live := &switchable{}
	deadURL, liveURL := serve(t, dead), serve(t, live)
	pDead, pLive := queuePush(t, "dead", deadURL), queuePush(t, "live", liveURL)

	db := queueDB{newMemDB()}
	q := &Queue{Sentinel: db, Log: zerolog.Nop(), Timeout: 300 * time.Millisecond,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond, RetryInterval: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { q.Run(ctx); close(stopped) }()

	const n = 20
	start := time.Now()
	for i := 0; i < n; i++ {
		id := "r" + string(rune('a'+i))
		q.Enqueue(id, []Item{queueItem(t, pDead, id)})
		q.Enqueue("l"+id, []Item{queueItem(t, pLive, "l"+id)})
	}
	if err := q.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 200*time.Millisecond {
		t.Fatalf("enqueue and sync took %s: the caller waited on the destination", took)
	}
	// The live destination gets everything while the dead one hangs.
	waitFor(t, "the live pushes", func() bool { return len(live.got()) == n })
	// Every dead push is durable: its task was written by Sync.
	for i := 0; i < n; i++ {
		if _, err := db.Get(context.Background(), TaskID("r"+string(rune('a'+i)))); err != nil {
			t.Fatalf("task of r%c: %v", 'a'+i, err)
		}
	}
	waitFor(t, "the failed pushes", func() bool { return q.Idle() })

	// The destination comes back: a retry (the scan reads the tasks; here the
	// same pushes are handed back, as the scan would) delivers each once.
	dead.setDead(false)
	q.Retry(true, false)               // forget the back-off
	time.Sleep(150 * time.Millisecond) // (it is also over by now)
	for i := 0; i < n; i++ {
		id := "r" + string(rune('a'+i))
		e := &entry{docID: id, flushed: true, durable: true, items: qitems([]Item{queueItem(t, pDead, id)})}
		q.enqueue(e)
		q.enqueue(&entry{docID: id, flushed: true, durable: true, items: qitems([]Item{queueItem(t, pDead, id)})})
	}
	waitFor(t, "the recovered pushes", func() bool {
		if len(dead.got()) < n || !q.Idle() {
			return false
		}
		for i := 0; i < n; i++ {
			if _, err := db.Get(context.Background(), TaskID("r"+string(rune('a'+i)))); !errors.Is(err, couch.ErrNotFound) {
				return false
			}
		}
		return true
	})
	seen := map[string]int{}
	for _, b := range dead.got() {
		var m map[string]any
		_ = json.Unmarshal([]byte(b), &m)
		seen[jsv.String(m["id"])]++
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
	if len(seen) != n {
		t.Errorf("delivered %d docs, want %d", len(seen), n)
	}
	info, _ := db.Get(context.Background(), infodoc.ID("ra"))
	if tasks := jsv.Slice(info["completed_tasks"]); len(tasks) != 1 || !strings.Contains(jsv.String(jsv.Map(tasks[0])["name"]), "dead") {
		t.Errorf("completed_tasks of ra = %v", info["completed_tasks"])
	}

	cancel()
	select {
	case <-stopped:
	case <-time.After(3 * time.Second):
		t.Fatal("the queue did not stop on cancel")
	}
}

// countingDB is queueDB counting the docs the queue reads and writes in
// bulk, and the task docs among them.
type countingDB struct {
	queueDB
	mu                     sync.Mutex
	read, written, taskIDs int
}

func (c *countingDB) GetMany(ctx context.Context, ids []string) (map[string]couch.Doc, error) {
	c.mu.Lock()
	c.read += len(ids)
	for _, id := range ids {
		if strings.HasPrefix(id, TaskPrefix) {
			c.taskIDs++
		}
	}
	c.mu.Unlock()
	return c.queueDB.GetMany(ctx, ids)
}

func (c *countingDB) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	c.mu.Lock()
	c.written += len(docs)
	c.mu.Unlock()
	return c.queueDB.BulkDocs(ctx, docs)
}

func (c *countingDB) counts() (read, written, taskIDs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read, c.written, c.taskIDs
}

// startQueue runs q until the test ends and waits for its task listing.
func startQueue(t *testing.T, q *Queue) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { q.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	waitFor(t, "the task listing", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.tasksListed
	})
}

// inHand reports whether the queue still has pushes of docID to send.
func inHand(q *Queue, docID string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.docs[docID]) > 0
}

// The records of delivered pushes ride on the pipeline's info-doc write
// (TakeRecords): once that write succeeded, Sync writes no info doc and,
// with no task doc to update, reads nothing either. After a failed write
// Sync records them itself, once.
func TestQueueTakeRecords(t *testing.T) {
	for _, written := range []bool{true, false} {
		t.Run(map[bool]string{true: "written", false: "not written"}[written], func(t *testing.T) {
			live := &switchable{}
			p := queuePush(t, "p", serve(t, live))
			db := &countingDB{queueDB: queueDB{newMemDB()}}
			q := &Queue{Sentinel: db, Log: zerolog.Nop(), RetryInterval: time.Hour}
			startQueue(t, q)
			q.Enqueue("a", []Item{queueItem(t, p, "a")})
			waitFor(t, "the push", func() bool { return !inHand(q, "a") })

			records, done := q.TakeRecords("a")
			if len(records) != 1 || jsv.Map(records[0])["name"] != "p" || jsv.Map(records[0])["hash"] == "" {
				t.Fatalf("records = %v", records)
			}
			if again, _ := q.TakeRecords("a"); len(again) != 0 {
				t.Fatalf("records handed out twice: %v", again)
			}
			if other, _ := q.TakeRecords("b"); len(other) != 0 {
				t.Fatalf("records of b = %v", other)
			}
			done(written)
			if err := q.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			read, wrote, _ := db.counts()
			info, err := db.Get(context.Background(), infodoc.ID("a"))
			if written {
				if read != 0 || wrote != 0 || err == nil {
					t.Errorf("Sync read %d and wrote %d docs (info doc: %v): want none", read, wrote, info)
				}
				if again, _ := q.TakeRecords("a"); len(again) != 0 {
					t.Errorf("records handed out again after they were written: %v", again)
				}
				return
			}
			if tasks := jsv.Slice(info["completed_tasks"]); len(tasks) != 1 {
				t.Errorf("completed_tasks = %v, want the one record", info["completed_tasks"])
			}
			if len(live.got()) != 1 {
				t.Errorf("delivered %d times", len(live.got()))
			}
		})
	}
}

// Records of a change already through Sync are the recorder's: they are
// not handed to the pipeline, which would race it on the info doc.
func TestQueueTakeRecordsAfterSync(t *testing.T) {
	live := &switchable{}
	p := queuePush(t, "p", serve(t, live))
	db := &countingDB{queueDB: queueDB{newMemDB()}}
	q := &Queue{Sentinel: db, Log: zerolog.Nop(), RetryInterval: time.Hour}
	startQueue(t, q)
	live.setDead(true)
	q.Enqueue("a", []Item{queueItem(t, p, "a")})
	if err := q.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	live.setDead(false)
	waitFor(t, "the push", func() bool { return !inHand(q, "a") })
	if records, _ := q.TakeRecords("a"); len(records) != 0 {
		t.Fatalf("records of a synced change handed out: %v", records)
	}
	waitFor(t, "the record", func() bool {
		info, _ := db.Get(context.Background(), infodoc.ID("a"))
		return len(jsv.Slice(info["completed_tasks"])) == 1
	})
}

// The mirror of the task docs spares the reads, never a write: a task
// created behind the queue's back (the mirror says there is none) makes
// the queue's create conflict, and the queue then reads it and leaves it
// as it is (the reference's rule); a task the queue wrote is known without
// a read when a later push of its doc fails again.
func TestQueueTaskMirror(t *testing.T) {
	dead := &switchable{}
	dead.setDead(true)
	p := queuePush(t, "p", serve(t, dead))
	db := &countingDB{queueDB: queueDB{newMemDB()}}
	q := &Queue{Sentinel: db, Log: zerolog.Nop(), Timeout: 50 * time.Millisecond, BackoffMin: time.Hour, RetryInterval: time.Hour}
	startQueue(t, q)
	ctx := context.Background()
	other := map[string]any{"_id": TaskID("b"), "type": "task:outbound", "doc_id": "b", "queue": []any{"other"}}
	if err := db.Put(ctx, other); err != nil {
		t.Fatal(err)
	}

	q.Enqueue("a", []Item{queueItem(t, p, "a")})
	q.Enqueue("b", []Item{queueItem(t, p, "b")})
	if err := q.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, taskReads := db.counts()
	if taskReads != 1 {
		t.Errorf("task docs read: %d, want 1 (b's, after its create conflicted)", taskReads)
	}
	a, err := db.Get(ctx, TaskID("a"))
	if err != nil || len(jsv.Slice(a["queue"])) != 1 {
		t.Fatalf("task of a = %v, %v", a, err)
	}
	b, _ := db.Get(ctx, TaskID("b"))
	if q := jsv.Slice(b["queue"]); len(q) != 1 || q[0] != "other" {
		t.Errorf("task of b = %v: an existing task must be left as it is", b)
	}

	// The pushes fail (the destination backs off); a, pushed again, fails
	// at once: its task is known, nothing is read or written.
	waitFor(t, "the failures", func() bool { return !inHand(q, "a") && !inHand(q, "b") })
	if err := q.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	read0, wrote0, _ := db.counts()
	q.Enqueue("a", []Item{queueItem(t, p, "a")})
	waitFor(t, "the second failure", func() bool { return !inHand(q, "a") })
	if err := q.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if read, wrote, _ := db.counts(); read != read0 || wrote != wrote0 {
		t.Errorf("a failing push of a known task read %d and wrote %d docs", read-read0, wrote-wrote0)
	}
	if _, err := db.Get(ctx, TaskID("a")); err != nil {
		t.Errorf("task of a: %v", err)
	}
}

// A read of a task doc that the queue's own write may have overtaken (a
// scan page read before the queue deleted the task) must not bring the
// old doc back into the mirror: the task is then read again before use.
func TestQueueTaskMirrorStaleRead(t *testing.T) {
	q := &Queue{}
	q.init()
	q.tasksListed = true
	old := map[string]any{"_id": TaskID("a"), "_rev": "1-x", "queue": []any{"p"}}

	gen := q.taskGeneration()
	q.wroteTask("a", map[string]any{"_id": TaskID("a"), "_rev": "2-x", "_deleted": true})
	q.readTask("a", old, gen)
	if q.taskKnown("a") {
		t.Fatalf("a stale read is trusted: mirror %v", q.mirroredTask("a"))
	}

	gen = q.taskGeneration()
	q.readTask("a", old, gen)
	if !q.taskKnown("a") || q.mirroredTask("a")["_rev"] != "1-x" {
		t.Fatalf("a current read is not kept: %v", q.mirroredTask("a"))
	}
	q.readTask("b", nil, gen)
	if !q.taskKnown("b") || q.mirroredTask("b") != nil {
		t.Fatal("a listed mirror does not know that b has no task")
	}
}

// TestPushUnderWayFinishesAfterAStop: a push the endpoint is answering when
// the daemon stops is let finish (its answer is what says "sent"): cut, it
// would be sent again by the next start while the endpoint has it.
func TestPushUnderWayFinishesAfterAStop(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	q := &Queue{Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	it := &qitem{Item: Item{Name: "p", Push: &Push{Destination: &Destination{BaseURL: srv.URL, Path: "/push"}}, Body: []byte(`{}`)}}
	if err := q.postGracefully(ctx, it); err != nil {
		t.Fatalf("a push under way at the stop failed: %v", err)
	}
}
