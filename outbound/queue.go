package outbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/infodoc"
	"sentinel-go/internal/graceful"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
)

// Queue sends outbound pushes from its own workers, so that the feed never
// waits on a third-party HTTP server (STYLE.md, "Nothing slow on the hot
// path"). mark_for_outbound builds the payloads and Enqueues them; the
// workers POST them with bounded concurrency and a back-off per destination.
//
// What is observable stays what the spec describes for the push made in the
// transition: a delivered push is appended to the info doc's
// completed_tasks, a push that could not be delivered is left in
// `task:outbound:<id>` (created when missing, else left unchanged).
//
// Durability: the feed calls Sync before each checkpoint. Sync writes, in
// one bulk request, the task doc of every push not delivered yet (so a kill
// after the checkpoint loses nothing: the task is retried from the doc, as
// the outbound job does), and the records of the pushes already delivered.
// Records of pushes whose change has not been through Sync yet wait for it:
// the pipeline writes those info docs itself, and two writers would
// conflict. Later records are written by the queue's recorder within
// moments.
//
// Retries: a push that fails stays in its task doc; the queue scans the task
// docs every RetryInterval (and when Retry is called: the outbound job, at
// start and on SIGUSR2) and sends again those whose destination is not
// backing off.
type Queue struct {
	// Sentinel is the sentinel db (info docs, task docs).
	Sentinel QueueStore
	// Main is the main db: the docs of queued tasks are reloaded from it.
	Main MainStore
	Log  zerolog.Logger
	// Config returns the outbound config in force and settings.outbound as
	// stored (nil cfg: no config loaded, no retries).
	Config func() (cfg *Config, raw map[string]any)
	// JS evaluates the mappings of retried tasks (the scan goroutine only).
	JS       *jsexpr.Sandbox
	Location *time.Location
	// Clock returns now (nil: time.Now).
	Clock   func() time.Time
	Secrets SecretStore
	HTTP    *http.Client
	// Timeout bounds each request (default DefaultTimeout).
	Timeout time.Duration
	// Concurrency bounds the requests in flight (default 4); one destination
	// gets at most Concurrency-1 of them, so it never holds every worker.
	Concurrency int
	// BackoffMin and BackoffMax bound the wait after a destination failed
	// (default 30 s and 5 min, doubling per consecutive failure).
	BackoffMin, BackoffMax time.Duration
	// RetryInterval is how often the task docs are scanned while pushes are
	// queued (default 1 min).
	RetryInterval time.Duration
	// AwaitServer waits until CouchDB answers again after err found it
	// unreachable (nil: back off like for any other error).
	AwaitServer func(ctx context.Context, err error) error
	// Fence is the pushes' Pusher.Fence: a push the fence refuses is left
	// for the active instance, as one interrupted by a stop is.
	Fence func() error

	once    sync.Once
	mu      sync.Mutex
	cond    *sync.Cond
	stopped bool
	docs    map[string][]*entry // doc id → its entries, oldest first (head in progress)
	ready   []*entry
	dests   map[string]*dest
	done    []*entry // finished, not recorded yet
	known   map[string]knownHash
	failed  bool // a push failed since the last scan: tasks are waiting
	started time.Time

	recMu   sync.Mutex // one writer of records and task docs at a time
	recWake chan struct{}
	scan    chan struct{}
	retry   retryReq

	// taskDocs mirrors the task docs (doc id → the doc as last read or
	// written; nil: it exists, content unknown), so that a record pass
	// needs no read of them. Once tasksListed (a full scan found every
	// task), a doc id missing here has no task: the queue is the only
	// writer of task docs. A wrong guess costs no correctness: every write
	// carries the _rev the mirror holds, so a stale entry ends in a 409 and
	// a re-read.
	taskDocs    map[string]map[string]any
	tasksListed bool
	// taskGen counts the queue's task writes: a read that a write may have
	// overtaken (taskGen moved meanwhile) only says that the task exists.
	taskGen uint64
}

// taskMirrorMax bounds the task docs whose content is kept (beyond it only
// their existence is), and taskListMax the tasks listed at all (beyond it
// the mirror is not trusted for absence: reads as before).
const (
	taskMirrorMax = 20000
	taskListMax   = 500000
)

// QueueStore is the sentinel db as the queue uses it. *couch.DB implements it.
type QueueStore interface {
	DocStore
	GetMany(ctx context.Context, ids []string) (map[string]couch.Doc, error)
	BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error)
	Delete(ctx context.Context, id, rev string) error
	AllDocs(ctx context.Context, params map[string]any) ([]couch.Row, error)
}

// MainStore is the main db as the queue reads it. *couch.DB implements it.
type MainStore interface {
	lineage.Store
	Get(ctx context.Context, id string) (map[string]any, error)
}

var (
	_ QueueStore = (*couch.DB)(nil)
	_ MainStore  = (*couch.DB)(nil)
)

// Item is one push of a doc handed to the queue.
type Item struct {
	Name string
	// Push is the config; nil or a nil Body means the push is not sent now
	// (cron not due, payload not buildable): it goes to the task doc.
	Push *Push
	Body []byte
	Hash string
	// Last is the hash of the last completed push of that name in the info
	// doc as the pipeline read it, when LastKnown; otherwise the queue
	// reads the info doc. The queue's own deliveries since take precedence.
	Last      string
	LastKnown bool
}

type itemState int

const (
	itemPending itemState = iota
	itemSent
	itemDuplicate
	itemFailed
)

type qitem struct {
	Item
	state itemState
	at    time.Time // when it was sent
	// recorded: its completed_tasks record is written (it rode on the
	// pipeline's info-doc write, TakeRecords); folding: that write is under
	// way, so no other writer may record it meanwhile.
	recorded, folding bool
}

// entry is the pushes of one change (or of one retried task), sent in order.
type entry struct {
	docID    string
	items    []*qitem
	next     int
	drop     []string // names removed from the task (no longer configured)
	info     map[string]any
	infoRead bool
	// flushed: Sync ran since the entry was queued (its change's info doc
	// is written: the recorder may write it too).
	flushed bool
	// durable: its task doc was ensured by Sync.
	durable  bool
	finished bool
}

type dest struct {
	inflight int
	fails    int
	until    time.Time
	waiters  []*entry
}

type knownHash struct {
	hash     string
	recorded bool
}

type retryReq struct {
	pending bool
	reset   bool
	skipNew bool
}

// knownMax bounds the in-memory hashes of delivered pushes; recorded ones
// are dropped beyond it (the info doc then answers).
const knownMax = 100000

func (q *Queue) init() {
	q.once.Do(func() {
		q.cond = sync.NewCond(&q.mu)
		q.docs = map[string][]*entry{}
		q.dests = map[string]*dest{}
		q.known = map[string]knownHash{}
		q.taskDocs = map[string]map[string]any{}
		q.recWake = make(chan struct{}, 1)
		q.scan = make(chan struct{}, 1)
		q.started = q.now()
	})
}

func (q *Queue) now() time.Time {
	if q.Clock != nil {
		return q.Clock()
	}
	return time.Now()
}

func (q *Queue) concurrency() int {
	if q.Concurrency > 0 {
		return q.Concurrency
	}
	return 4
}

func (q *Queue) perDest() int { return max(1, q.concurrency()-1) }

func (q *Queue) backoff(fails int) time.Duration {
	lo, hi := q.BackoffMin, q.BackoffMax
	if lo <= 0 {
		lo = 30 * time.Second
	}
	if hi <= 0 {
		hi = 5 * time.Minute
	}
	d := lo
	for i := 1; i < fails && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func (q *Queue) pusher() *Pusher {
	return &Pusher{Log: q.Log, Secrets: q.Secrets, HTTP: q.HTTP, Timeout: q.Timeout, Fence: q.Fence}
}

// Enqueue hands the pushes of docID's change to the workers. It never
// blocks on the network.
func (q *Queue) Enqueue(docID string, items []Item) {
	q.enqueue(&entry{docID: docID, items: qitems(items)})
}

func qitems(items []Item) []*qitem {
	out := make([]*qitem, len(items))
	for i, it := range items {
		out[i] = &qitem{Item: it}
	}
	return out
}

func (q *Queue) enqueue(e *entry) {
	q.init()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.docs[e.docID] = append(q.docs[e.docID], e)
	if len(q.docs[e.docID]) == 1 {
		q.ready = append(q.ready, e)
		q.cond.Signal()
	}
}

// Retry asks for the task docs to be scanned now. reset forgets the
// destinations' back-off (an operator asked: SIGUSR2); skipNew leaves the
// tasks created since the queue started (they were just tried).
func (q *Queue) Retry(reset, skipNew bool) {
	q.init()
	q.mu.Lock()
	if q.retry.pending {
		q.retry.reset = q.retry.reset || reset
		q.retry.skipNew = q.retry.skipNew && skipNew
	} else {
		q.retry = retryReq{pending: true, reset: reset, skipNew: skipNew}
	}
	q.mu.Unlock()
	select {
	case q.scan <- struct{}{}:
	default:
	}
}

// Idle reports whether no push is queued in memory (tests).
func (q *Queue) Idle() bool {
	q.init()
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.docs) == 0 && len(q.done) == 0
}

// Run runs the workers, the recorder and the retry scan until ctx ends,
// then writes the records it can (bounded) and returns.
func (q *Queue) Run(ctx context.Context) {
	q.init()
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.stopped = true
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	for i := 0; i < q.concurrency(); i++ {
		wg.Go(func() { q.work(ctx) })
	}
	wg.Go(func() { q.recorder(ctx) })
	wg.Go(func() { q.scanner(ctx) })
	wg.Go(func() { q.listTasks(ctx) })
	wg.Wait()
	// Records of delivered pushes whose change is checkpointed.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := q.record(fctx, false); err != nil {
		q.Log.Warn().Err(err).Msg("Could not record the last outbound pushes; they are retried from their tasks")
	}
}

// work is one worker: it takes a ready entry and sends its pushes in order.
func (q *Queue) work(ctx context.Context) {
	for {
		q.mu.Lock()
		for len(q.ready) == 0 && !q.stopped {
			q.cond.Wait()
		}
		if q.stopped {
			q.mu.Unlock()
			return
		}
		e := q.ready[0]
		q.ready = q.ready[1:]
		q.mu.Unlock()
		q.process(ctx, e)
	}
}

// process sends e's pushes from e.next on; it returns when e is finished or
// parked on a busy destination.
func (q *Queue) process(ctx context.Context, e *entry) {
	for e.next < len(e.items) {
		it := e.items[e.next]
		if ctx.Err() != nil {
			return // not finished: its change is processed again, or its task retried
		}
		if it.Push == nil || it.Body == nil {
			q.setState(it, itemFailed)
			e.next++
			continue
		}
		key := e.docID + "\x00" + it.Name
		q.mu.Lock()
		k, ok := q.known[key]
		q.mu.Unlock()
		last := k.hash
		if !ok && it.LastKnown {
			last = it.Last
		} else if !ok {
			if !e.infoRead {
				info, err := q.Sentinel.Get(ctx, infodoc.ID(e.docID))
				if err != nil && !errors.Is(err, couch.ErrNotFound) {
					q.Log.Error().Str("doc_id", e.docID).Str("push", it.Name).Err(err).
						Msgf("Failed to push %s to %s: read info doc: %v", e.docID, it.Name, err)
					q.setState(it, itemFailed)
					e.next++
					continue
				}
				e.info, e.infoRead = info, true
			}
			last = LastHash(e.info, it.Name)
		}
		if last == it.Hash {
			q.Log.Debug().Str("doc_id", e.docID).Str("push", it.Name).Msg("Payload already pushed: not sent again")
			q.setState(it, itemDuplicate)
			e.next++
			continue
		}
		dk := destKey(it.Push.Destination)
		q.mu.Lock()
		d := q.dests[dk]
		if d == nil {
			d = &dest{}
			q.dests[dk] = d
		}
		now := q.now()
		if until := d.until; now.Before(until) {
			q.failed = true
			it.state = itemFailed
			q.mu.Unlock()
			q.Log.Warn().Str("doc_id", e.docID).Str("push", it.Name).Time("retry_after", until).
				Msgf("Destination of %s is backing off after failures: %s queued", it.Name, e.docID)
			e.next++
			continue
		}
		if d.inflight >= q.perDest() || d.fails > 0 && d.inflight > 0 {
			// Busy, or being probed after a failure: wait for its answer.
			d.waiters = append(d.waiters, e)
			q.mu.Unlock()
			return
		}
		d.inflight++
		q.mu.Unlock()

		err := q.postGracefully(ctx, it)

		q.mu.Lock()
		d.inflight--
		switch {
		case err == nil:
			d.fails, d.until = 0, time.Time{}
			q.known[key] = knownHash{hash: it.Hash}
			it.state, it.at = itemSent, q.now()
		case ctx.Err() != nil || errors.Is(err, ErrFenced):
			it.state = itemFailed
		default:
			d.fails++
			d.until = q.now().Add(q.backoff(d.fails))
			it.state = itemFailed
			q.failed = true
		}
		if len(d.waiters) > 0 {
			q.ready = append(q.ready, d.waiters...)
			d.waiters = nil
			q.cond.Broadcast()
		}
		q.mu.Unlock()
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrFenced) {
			q.Log.Error().Str("doc_id", e.docID).Str("push", it.Name).Str("reason", oneLine(err.Error())).
				Msgf("Failed to push %s to %s: %s", e.docID, it.Name, oneLine(err.Error()))
		} else if err == nil {
			q.Log.Info().Str("doc_id", e.docID).Str("push", it.Name).Msgf("Pushed %s to %s", e.docID, it.Name)
		}
		e.next++
	}
	q.finish(e)
}

// pushGrace is how long a push under way may take to finish once the
// daemon stops.
const pushGrace = 2 * time.Second

// postGracefully sends it; a stop that arrives meanwhile leaves it pushGrace
// to finish. Cut halfway, the endpoint may have it while its task still
// says "not sent", and the next holder or start would send it again.
func (q *Queue) postGracefully(ctx context.Context, it *qitem) error {
	pctx, done := graceful.Context(ctx, 24*time.Hour, pushGrace) // the pusher bounds the request itself
	defer done()
	return q.pusher().post(pctx, it.Push.Destination, it.Body)
}

// setState sets it's state under the lock: Sync reads the states of the
// entries in progress.
func (q *Queue) setState(it *qitem, s itemState) {
	q.mu.Lock()
	it.state = s
	q.mu.Unlock()
}

// finish moves a finished entry to the recorder and readies the doc's next.
func (q *Queue) finish(e *entry) {
	q.mu.Lock()
	e.finished = true
	list := q.docs[e.docID]
	for i, x := range list {
		if x == e {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(q.docs, e.docID)
	} else {
		q.docs[e.docID] = list
		if list[0] != e && !list[0].finished && list[0].next == 0 {
			q.ready = append(q.ready, list[0])
			q.cond.Signal()
		}
	}
	q.done = append(q.done, e)
	flushed := e.flushed
	q.mu.Unlock()
	if flushed {
		select {
		case q.recWake <- struct{}{}:
		default:
		}
	}
}

func destKey(d *Destination) string {
	if d == nil {
		return ""
	}
	return strings.TrimRight(d.BaseURL, "/") + "/" + strings.TrimLeft(d.Path, "/")
}

// folding reports whether a record of e is being written by the pipeline.
func (e *entry) folding() bool {
	for _, it := range e.items {
		if it.folding {
			return true
		}
	}
	return false
}

// TakeRecords hands the pipeline the completed_tasks records of docID's
// delivered pushes that are not written yet, so that they ride on the
// info-doc write the pipeline makes anyway for the change in hand: one
// write of the info doc instead of two, and none for the recorder or Sync
// to read back. Only entries whose change has not been through Sync are
// handed out (the recorder leaves those alone, so the two writers never
// race on them). The pipeline calls done with whether that write, with
// the records, succeeded; until then nobody else records them, and after
// a failed write they are recorded as usual.
func (q *Queue) TakeRecords(docID string) (records []any, done func(written bool)) {
	if q == nil {
		return nil, func(bool) {}
	}
	q.init()
	q.mu.Lock()
	defer q.mu.Unlock()
	var took []*qitem
	var keys []string
	for _, e := range q.done {
		if e.docID != docID || e.flushed {
			continue
		}
		for _, it := range e.items {
			if it.state == itemSent && !it.recorded && !it.folding {
				it.folding = true
				took = append(took, it)
				keys = append(keys, e.docID+"\x00"+it.Name)
				records = append(records, completedEntry(it.Name, it.at, it.Hash))
			}
		}
	}
	if len(took) == 0 {
		return nil, func(bool) {}
	}
	return records, func(written bool) {
		q.mu.Lock()
		defer q.mu.Unlock()
		for i, it := range took {
			it.folding = false
			if !written {
				continue
			}
			it.recorded = true
			if k, ok := q.known[keys[i]]; ok && k.hash == it.Hash {
				q.known[keys[i]] = knownHash{hash: it.Hash, recorded: true}
			}
		}
	}
}

// recorder writes the records of finished entries whose change went
// through Sync, a few milliseconds after they finish (grouped).
func (q *Queue) recorder(ctx context.Context) {
	wait := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.recWake:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if err := q.record(ctx, false); err != nil {
			if ctx.Err() != nil {
				return
			}
			if couch.Unreachable(err) && q.AwaitServer != nil {
				// The server is away: wait with everyone else, then record.
				if q.AwaitServer(ctx, err) != nil {
					return
				}
				select {
				case q.recWake <- struct{}{}:
				default:
				}
				continue
			}
			q.Log.Warn().Err(err).Dur("retry_in_ms", wait).Msg("Could not record outbound pushes; retrying")
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(wait*2, 30*time.Second)
			select {
			case q.recWake <- struct{}{}:
			default:
			}
			continue
		}
		wait = 100 * time.Millisecond
	}
}

// Sync makes every push queued so far durable before the feed checkpoints:
// the task doc of each push not delivered yet is created (unless the doc
// has one), and the delivered pushes are recorded. One bulk read and one
// bulk write.
func (q *Queue) Sync(ctx context.Context) error {
	q.init()
	return q.record(ctx, true)
}

// docOps is what a record pass does to one doc's info and task docs.
type docOps struct {
	appends []any
	ops     []taskOp
	pending map[string]bool // names still to be sent by unfinished entries: never removed
}

type taskOp struct {
	ensure []string
	remove []string
}

// record writes the records of finished, flushed entries; with sync, every
// entry becomes flushed first and the tasks of unfinished ones are ensured.
func (q *Queue) record(ctx context.Context, sync bool) error {
	q.recMu.Lock()
	defer q.recMu.Unlock()
	q.mu.Lock()
	var take, keep, durable []*entry
	if sync {
		for _, e := range q.done {
			e.flushed = true
		}
	}
	for _, e := range q.done {
		if e.flushed && !e.folding() {
			take = append(take, e)
		} else {
			keep = append(keep, e)
		}
	}
	q.done = keep
	byDoc := map[string]*docOps{}
	get := func(id string) *docOps {
		o := byDoc[id]
		if o == nil {
			o = &docOps{pending: map[string]bool{}}
			byDoc[id] = o
		}
		return o
	}
	for _, e := range take {
		o := get(e.docID)
		var op taskOp
		for _, it := range e.items {
			switch it.state {
			case itemSent:
				if !it.recorded {
					o.appends = append(o.appends, completedEntry(it.Name, it.at, it.Hash))
				}
				op.remove = append(op.remove, it.Name)
			case itemDuplicate:
				op.remove = append(op.remove, it.Name)
			default:
				op.ensure = append(op.ensure, it.Name)
			}
		}
		op.remove = append(op.remove, e.drop...)
		o.ops = append(o.ops, op)
	}
	for id, list := range q.docs {
		for _, e := range list {
			if sync {
				e.flushed = true
			}
			var names []string
			for _, it := range e.items {
				if it.state != itemSent && it.state != itemDuplicate {
					names = append(names, it.Name)
				}
			}
			if byDoc[id] != nil || sync && !e.durable {
				o := get(id)
				for _, n := range names {
					o.pending[n] = true
				}
			}
			if sync && !e.durable {
				e.durable = true
				durable = append(durable, e)
				get(id).ops = append(get(id).ops, taskOp{ensure: names})
			}
		}
	}
	q.mu.Unlock()
	if len(byDoc) == 0 {
		return nil
	}
	err := q.write(ctx, byDoc)
	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		// Nothing lost: tried again by the next pass.
		q.done = append(take, q.done...)
		for _, e := range durable {
			e.durable = false
		}
		return err
	}
	for _, e := range take {
		for _, it := range e.items {
			if it.state == itemSent {
				key := e.docID + "\x00" + it.Name
				if k, ok := q.known[key]; ok && k.hash == it.Hash {
					q.known[key] = knownHash{hash: it.Hash, recorded: true}
				}
			}
		}
	}
	if len(q.known) > knownMax {
		for k, v := range q.known {
			if v.recorded {
				delete(q.known, k)
			}
		}
	}
	return nil
}

// write applies byDoc in bulk; conflicting docs are re-read and re-applied.
func (q *Queue) write(ctx context.Context, byDoc map[string]*docOps) error {
	infos := map[string]*docOps{} // doc id → ops, for the info docs still to write
	tasks := map[string]*docOps{}
	for id, o := range byDoc {
		if len(o.appends) > 0 {
			infos[id] = o
		}
		if len(o.ops) > 0 {
			tasks[id] = o
		}
	}
	now := q.now()
	for attempt := 0; len(infos)+len(tasks) > 0; attempt++ {
		if attempt >= 10 {
			return fmt.Errorf("record outbound pushes: %w", couch.ErrConflict)
		}
		var ids []string
		for id := range infos {
			ids = append(ids, infodoc.ID(id))
		}
		mirrored := map[string]bool{} // task docs known without a read
		for id := range tasks {
			if q.taskKnown(id) {
				mirrored[id] = true
				continue
			}
			ids = append(ids, TaskID(id))
		}
		cur := map[string]couch.Doc{}
		gen := q.taskGeneration()
		if len(ids) > 0 {
			var err error
			if cur, err = q.Sentinel.GetMany(ctx, ids); err != nil {
				return fmt.Errorf("read info and task docs: %w", err)
			}
		}
		for id := range tasks {
			if mirrored[id] {
				cur[TaskID(id)] = q.mirroredTask(id)
			} else {
				q.readTask(id, cur[TaskID(id)], gen)
			}
		}
		var docs []couch.Doc
		var infoOf, taskOf []string // doc id per written doc ("" in the other)
		for id, o := range infos {
			info := cur[infodoc.ID(id)]
			if info == nil {
				info = infodoc.New(id)
			}
			tasksDone := jsv.Slice(info["completed_tasks"])
			info["completed_tasks"] = append(append([]any{}, tasksDone...), o.appends...)
			docs = append(docs, info)
			infoOf, taskOf = append(infoOf, id), append(taskOf, "")
		}
		for id, o := range tasks {
			task, changed := q.applyTask(id, cur[TaskID(id)], o, now)
			if !changed {
				delete(tasks, id)
				continue
			}
			docs = append(docs, task)
			infoOf, taskOf = append(infoOf, ""), append(taskOf, id)
		}
		if len(docs) == 0 {
			return nil
		}
		res, err := q.Sentinel.BulkDocs(ctx, docs)
		if err != nil {
			return fmt.Errorf("write info and task docs: %w", err)
		}
		for i := range docs {
			if i < len(res) && res[i].Err != nil && !errors.Is(res[i].Err, couch.ErrConflict) {
				return fmt.Errorf("write %v: %w", docs[i]["_id"], res[i].Err)
			}
			if i < len(res) && res[i].Err != nil {
				if taskOf[i] != "" {
					q.unknownTask(taskOf[i]) // read next attempt
				}
				continue // conflict: re-read and re-applied
			}
			if infoOf[i] != "" {
				delete(infos, infoOf[i])
			} else {
				q.wroteTask(taskOf[i], docs[i])
				delete(tasks, taskOf[i])
			}
		}
	}
	return nil
}

// applyTask applies o's task operations, in order, to the task doc (nil:
// none). It returns the doc to write (deleted when its queue is empty) and
// whether it changed.
func (q *Queue) applyTask(docID string, task map[string]any, o *docOps, now time.Time) (map[string]any, bool) {
	exists := task != nil
	var queue []string
	for _, n := range jsv.Slice(task["queue"]) {
		if s, ok := n.(string); ok {
			queue = append(queue, s)
		}
	}
	orig := strings.Join(queue, "\x00")
	for _, op := range o.ops {
		if len(op.ensure) > 0 {
			if !exists {
				exists = true
				for _, n := range op.ensure {
					if !slices.Contains(queue, n) {
						queue = append(queue, n)
					}
				}
				q.Log.Info().Str("doc_id", docID).Strs("queue", queue).Msgf("Queued outbound pushes of %s: %s", docID, strings.Join(queue, ", "))
			} else {
				var missing []string
				for _, n := range op.ensure {
					if !slices.Contains(queue, n) {
						missing = append(missing, n)
					}
				}
				warnNotQueued(q.Log, docID, missing)
			}
		}
		if exists {
			var left []string
			for _, n := range queue {
				if !slices.Contains(op.remove, n) || o.pending[n] {
					left = append(left, n)
				}
			}
			queue = left
		}
	}
	if !exists {
		return nil, false
	}
	if task == nil {
		if len(queue) == 0 {
			return nil, false
		}
		task = newTask(docID, now)
	} else if strings.Join(queue, "\x00") == orig {
		return nil, false
	}
	if len(queue) == 0 {
		return map[string]any{"_id": TaskID(docID), "_rev": task["_rev"], "_deleted": true}, true
	}
	task["queue"] = anyStrings(queue)
	return task, true
}

// scanner retries the task docs every RetryInterval while pushes failed,
// and whenever Retry asks.
func (q *Queue) scanner(ctx context.Context) {
	interval := q.RetryInterval
	if interval <= 0 {
		interval = time.Minute
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var req retryReq
		select {
		case <-ctx.Done():
			return
		case <-q.scan:
			q.mu.Lock()
			req, q.retry = q.retry, retryReq{}
			q.mu.Unlock()
		case <-tick.C:
			q.mu.Lock()
			due := q.failed
			q.mu.Unlock()
			if !due {
				continue
			}
		}
		q.mu.Lock()
		q.failed = false
		if req.reset {
			for _, d := range q.dests {
				d.fails, d.until = 0, time.Time{}
			}
		}
		q.mu.Unlock()
		if err := q.scanTasks(ctx, req.skipNew); err != nil && ctx.Err() == nil {
			q.Log.Warn().Err(err).Msg("Could not scan the outbound tasks; retried later")
			q.mu.Lock()
			q.failed = true
			q.mu.Unlock()
		}
	}
}

// scanTasks queues the retry of each task doc whose doc is not in hand:
// its due pushes whose destination is not backing off, reloaded from the
// current doc (schedules.md §8).
func (q *Queue) scanTasks(ctx context.Context, skipNew bool) error {
	if q.Config == nil || q.Main == nil {
		return nil
	}
	cfg, raw := q.Config()
	if cfg == nil {
		return nil
	}
	const page = 100
	seen := map[string]bool{}
	start := TaskPrefix
	for {
		gen := q.taskGeneration()
		rows, err := q.Sentinel.AllDocs(ctx, map[string]any{"startkey": start, "endkey": TaskPrefix + "\ufff0",
			"include_docs": true, "limit": page + 1})
		if err != nil {
			return fmt.Errorf("list outbound tasks: %w", err)
		}
		for _, row := range rows {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if seen[row.ID] || row.Doc == nil {
				continue
			}
			seen[row.ID] = true
			q.readTask(strings.TrimPrefix(row.ID, TaskPrefix), row.Doc, gen)
			if skipNew {
				if c, ok := row.Doc["created"].(float64); ok && c >= float64(q.started.UnixMilli()) {
					continue
				}
			}
			if err := q.retryTask(ctx, cfg, raw, row.Doc); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				q.Log.Warn().Str("task_id", row.ID).Err(err).Msg("Could not retry outbound task; retried later")
				q.mu.Lock()
				q.failed = true
				q.mu.Unlock()
			}
		}
		if len(rows) < page+1 {
			return nil
		}
		start = rows[len(rows)-1].ID
	}
}

func (q *Queue) retryTask(ctx context.Context, cfg *Config, raw map[string]any, task map[string]any) error {
	taskID, _ := task["_id"].(string)
	docID, _ := task["doc_id"].(string)
	if docID == "" {
		docID = strings.TrimPrefix(taskID, TaskPrefix)
	}
	q.mu.Lock()
	_, inHand := q.docs[docID]
	q.mu.Unlock()
	if docID == "" || inHand {
		return nil
	}
	var queue []string
	for _, n := range jsv.Slice(task["queue"]) {
		if s, ok := n.(string); ok {
			queue = append(queue, s)
		}
	}
	now := q.now()
	var doc map[string]any
	e := &entry{docID: docID, flushed: true, durable: true}
	for _, name := range OrderNames(queue, cfg.Names()) {
		p := cfg.Get(name)
		if p == nil {
			if _, invalid := raw[name]; invalid {
				continue // an invalid config: stays queued
			}
			q.Log.Warn().Str("doc_id", docID).Str("push", name).
				Msgf("Outbound push %s is no longer configured: removed from the queue of %s", name, docID)
			e.drop = append(e.drop, name)
			continue
		}
		if due, err := p.Due(now, q.Location); err != nil || !due {
			continue
		}
		q.mu.Lock()
		d := q.dests[destKey(p.Destination)]
		backingOff := d != nil && (now.Before(d.until) || d.fails > 0 && d.inflight > 0)
		q.mu.Unlock()
		if backingOff {
			q.mu.Lock()
			q.failed = true
			q.mu.Unlock()
			continue
		}
		if doc == nil {
			d, err := q.Main.Get(ctx, docID)
			if errors.Is(err, couch.ErrNotFound) || err == nil && d["_deleted"] == true {
				q.Log.Info().Str("doc_id", docID).Msgf("Doc %s no longer exists: outbound task deleted", docID)
				rev, _ := task["_rev"].(string)
				err := q.Sentinel.Delete(ctx, taskID, rev)
				if err == nil {
					q.wroteTask(docID, nil)
				} else {
					q.unknownTask(docID)
				}
				if err != nil && !errors.Is(err, couch.ErrNotFound) {
					return fmt.Errorf("delete task: %w", err)
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("read doc %s: %w", docID, err)
			}
			if err := lineage.New(q.Main).Hydrate(ctx, d); err != nil {
				return fmt.Errorf("hydrate %s: %w", docID, err)
			}
			doc = d
		}
		body, hash, err := p.Prepare(ctx, q.JS, doc)
		if err != nil {
			q.Log.Error().Str("doc_id", docID).Str("push", name).Str("reason", oneLine(err.Error())).
				Msgf("Failed to push %s to %s: %s", docID, name, oneLine(err.Error()))
			continue
		}
		e.items = append(e.items, &qitem{Item: Item{Name: name, Push: p, Body: body, Hash: hash}})
	}
	if len(e.items) == 0 && len(e.drop) == 0 {
		return nil
	}
	q.enqueue(e)
	return nil
}

// taskKnown reports whether the mirror knows docID's task doc (its content,
// or that there is none) without a read.
func (q *Queue) taskKnown(docID string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.taskDocs[docID]
	return ok && t != nil || !ok && q.tasksListed
}

// mirroredTask is a copy of the task doc the mirror holds (nil: none).
func (q *Queue) mirroredTask(docID string) map[string]any {
	q.mu.Lock()
	defer q.mu.Unlock()
	if t := q.taskDocs[docID]; t != nil {
		return jsv.CloneMap(t)
	}
	return nil
}

func (q *Queue) taskGeneration() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.taskGen
}

// wroteTask records docID's task doc as the queue just wrote it (nil or
// deleted: none).
func (q *Queue) wroteTask(docID string, task map[string]any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.taskGen++
	switch {
	case task == nil || task["_deleted"] == true:
		delete(q.taskDocs, docID)
	case len(q.taskDocs) < taskMirrorMax:
		q.taskDocs[docID] = jsv.CloneMap(task)
	default:
		q.taskDocs[docID] = nil
	}
}

// readTask records docID's task doc as read when the queue's task writes
// stood at gen (nil: none found). When the queue wrote a task since, the
// read may be older than the write: a task found is then only known to
// exist, and one not found is left as the mirror has it.
func (q *Queue) readTask(docID string, task map[string]any, gen uint64) {
	if docID == "" {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.taskGen != gen && task != nil:
		if _, ok := q.taskDocs[docID]; !ok {
			q.taskDocs[docID] = nil
		}
	case q.taskGen != gen:
	case task == nil:
		delete(q.taskDocs, docID)
	case len(q.taskDocs) < taskMirrorMax:
		q.taskDocs[docID] = jsv.CloneMap(task)
	default:
		q.taskDocs[docID] = nil
	}
}

// unknownTask marks docID's task doc as existing, its content to be read.
func (q *Queue) unknownTask(docID string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.taskGen++
	q.taskDocs[docID] = nil
}

// listTasks fills the mirror with the ids of the task docs that exist (the
// contents are read when needed), once at start: from then on a doc id
// the mirror lacks has no task, and pushes delivered or queued need no read
// of their task doc. A failed listing leaves the mirror untrusted (every
// task doc is read, as without it).
func (q *Queue) listTasks(ctx context.Context) {
	const page = 5000
	start := TaskPrefix
	for n := 0; ; {
		rows, err := q.Sentinel.AllDocs(ctx, map[string]any{"startkey": start, "endkey": TaskPrefix + "\ufff0", "limit": page + 1})
		if err != nil {
			if ctx.Err() == nil {
				q.Log.Debug().Err(err).Msg("Could not list the outbound tasks; their docs are read when needed")
			}
			return
		}
		q.mu.Lock()
		for _, row := range rows {
			if docID := strings.TrimPrefix(row.ID, TaskPrefix); docID != row.ID && docID != "" {
				if _, ok := q.taskDocs[docID]; !ok {
					q.taskDocs[docID] = nil // exists: the first use reads it
					n++
				}
			}
		}
		if len(rows) < page+1 {
			q.tasksListed = n <= taskListMax
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		if n > taskListMax {
			return
		}
		start = rows[len(rows)-1].ID
	}
}
