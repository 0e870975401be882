// Package archiving is the archiving job (jobs.md §2): it moves the docs
// that an administrator queued (`archive:*` job docs of the sentinel db,
// each with an `ids` attachment) out of the main database into
// `<db>-archive`, records them in `<db>-audit`, then purges them (and their
// info docs) for good. Each step of a batch is safe to redo, so a kill at
// any point loses nothing and copies nothing twice.
package archiving

import (
	"context"
	"errors"
	"fmt"
	"sentinel-go/audit"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/jsv"
	"sentinel-go/schedule/jobs"
)

const (
	// jobPrefix starts the ids of job docs; CHT API appends a UUIDv7, so
	// id order is queue order.
	jobPrefix = "archive:"
	// batchLines is the number of id lines per batch.
	batchLines = 1000
	// readChunk is the number of ids read per request.
	readChunk = 100
	// maxErrors is the failure count at which a job is given up.
	maxErrors = 10
	// indexEvery is how many batches pass between view index refreshes.
	indexEvery = 10
)

// archivable are the doc types that may be archived.
var archivable = map[string]bool{"contact": true, "district_hospital": true, "health_center": true,
	"clinic": true, "person": true, "data_record": true, "task": true, "target": true}

// Archiving is the job; a tick arms its timer (at once without a schedule).
type Archiving struct {
	timer jobs.Timer
}

// New returns the job.
func New() *Archiving { return &Archiving{} }

// Name implements jobs.Job.
func (*Archiving) Name() string { return "archiving" }

// Wait returns when no run is going (tests).
func (a *Archiving) Wait() { a.timer.Wait() }

// Run implements jobs.Job: it arms the next run.
func (a *Archiving) Run(ctx context.Context, env *jobs.Env) error {
	if env.Client == nil || env.Settings == nil {
		return nil
	}
	set := ReadSettings(env.Settings)
	now := env.Wall()
	at := now
	if set.ScheduleErr != nil {
		env.Log.Error().Err(set.ScheduleErr).Msg("Archiving: malformed schedule configuration")
	} else if !set.Schedule.IsZero() {
		next, ok := set.Schedule.Next(now, env.Location)
		if !ok {
			a.timer.Stop()
			return nil
		}
		at = next
	}
	work := env.Detached(a.Name())
	a.timer.Arm(ctx, at, now, func(ctx context.Context) {
		if err := RunOnce(ctx, NewStores(work.Client), work, set.Bound); err != nil {
			work.Log.Error().Err(err).Msg("Archiving failed")
		}
	})
	return nil
}

// Store is one database as a run uses it. *couch.DB implements it.
type Store interface {
	Name() string
	Get(ctx context.Context, id string) (couch.Doc, error)
	Put(ctx context.Context, doc couch.Doc) error
	Delete(ctx context.Context, id, rev string) error
	AllDocs(ctx context.Context, params map[string]any) ([]couch.Row, error)
	GetMany(ctx context.Context, ids []string) (map[string]couch.Doc, error)
	BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error)
	Attachment(ctx context.Context, id, name string) ([]byte, error)
	GetFull(ctx context.Context, id string) (couch.Doc, error)
	PutReplicated(ctx context.Context, docs []couch.Doc) error
	LeafRevs(ctx context.Context, id string) ([]string, error)
	Purge(ctx context.Context, revs map[string][]string) error
	Query(ctx context.Context, ddoc, view string, params map[string]any) ([]couch.Row, error)
}

var _ Store = (*couch.DB)(nil)

// Stores are the databases a run uses.
type Stores struct {
	Main, Sentinel, Archive, Audit, Logs Store
	// Ensure, when set, creates the archive, audit and logs databases.
	Ensure func(ctx context.Context) error
}

// NewStores names the databases of client: `<db>-archive`, `<db>-audit`,
// `<db>-logs` beside the main one.
func NewStores(c *couch.Client) Stores {
	main := c.Location().MainDB
	s := Stores{Main: c.Main, Sentinel: c.Sentinel, Archive: c.DB(main + "-archive"),
		Audit: c.DB(main + "-audit"), Logs: c.DB(main + "-logs")}
	s.Ensure = func(ctx context.Context) error {
		for _, name := range []string{s.Archive.Name(), s.Audit.Name(), s.Logs.Name()} {
			if err := c.EnsureDB(ctx, name); err != nil {
				return err
			}
		}
		return nil
	}
	return s
}

// run is one archiving run.
type run struct {
	st       Stores
	log      zerolog.Logger
	now      func() time.Time
	deadline time.Time // zero: no bound
	batches  int
}

// errTimeUp stops a run at its bound.
var errTimeUp = errors.New("archiving run reached its duration")

// RunOnce processes the queued jobs in id order, each at most once, until
// the queue is drained or bound (0: none) has passed.
func RunOnce(ctx context.Context, st Stores, env *jobs.Env, bound time.Duration) error {
	r := &run{st: st, log: env.Log, now: env.Wall}
	if bound > 0 {
		r.deadline = r.now().Add(bound)
	}
	rows, err := st.Sentinel.AllDocs(ctx, map[string]any{"startkey": jobPrefix, "endkey": jobPrefix + "\ufff0"})
	if err != nil {
		return fmt.Errorf("list archive jobs: %w", err)
	}
	if len(rows) == 0 {
		// Nothing queued: the common case at every tick, not worth a line.
		return nil
	}
	if bound > 0 {
		r.log.Info().Msgf("Running archiving for up to %s", humanize(bound))
	} else {
		r.log.Info().Msg("Running archiving until the queue is drained")
	}
	if st.Ensure != nil {
		if err := st.Ensure(ctx); err != nil {
			return err
		}
	}
	for _, row := range rows {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.timeUp() {
			break
		}
		if err := r.job(ctx, row.ID); errors.Is(err, errTimeUp) {
			break
		} else if err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Str("archive_job", row.ID).Msgf("Archiving: job %s failed, skipping to the next job", row.ID)
		}
	}
	r.log.Info().Msg("Finished archiving")
	return nil
}

// timeUp: past the bound, and the run's first batch is done.
func (r *run) timeUp() bool {
	return !r.deadline.IsZero() && r.batches > 0 && !r.now().Before(r.deadline)
}

func (r *run) ms() float64 { return float64(r.now().UnixMilli()) }

// job processes one job doc from its cursor; an error has been recorded on
// the job and its log.
func (r *run) job(ctx context.Context, id string) error {
	doc, err := r.st.Sentinel.Get(ctx, id)
	if errors.Is(err, couch.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	lg := r.openLog(ctx, id)
	text, err := r.st.Sentinel.Attachment(ctx, id, "ids")
	if err != nil {
		return r.fail(ctx, doc, lg, fmt.Errorf("read the ids of %s: %w", id, err))
	}
	lines := strings.Split(string(text), "\n")
	total := len(lines)
	doc["total"] = float64(total)
	cursor := int(jsv.Number(doc["cursor"]))
	lg["status"], lg["cursor"], lg["total"] = "running", float64(cursor), float64(total)
	r.saveLog(ctx, lg)
	for cursor < total {
		if r.timeUp() {
			return errTimeUp
		}
		end := min(cursor+batchLines, total)
		if err := r.batch(ctx, lines[cursor:end]); err != nil {
			return r.fail(ctx, doc, lg, err)
		}
		cursor = end
		doc["cursor"] = float64(cursor)
		appendHistory(doc, r.ms(), cursor)
		lg["cursor"] = float64(cursor)
		if cursor >= total {
			// The log first: a kill between the two leaves the job, whose
			// last batch is redone (a no-op) and which is then deleted; the
			// other order would leave a deleted job's log "running".
			lg["status"] = "completed"
			r.saveLog(ctx, lg)
			return r.saveJob(ctx, doc, true)
		}
		if err := r.saveJob(ctx, doc, false); err != nil {
			return err
		}
		r.saveLog(ctx, lg)
	}
	if cursor >= total && doc["_deleted"] != true {
		// Already done (an empty list, or a run stopped before the delete).
		lg["status"] = "completed"
		r.saveLog(ctx, lg)
		return r.saveJob(ctx, doc, true)
	}
	return nil
}

func appendHistory(doc couch.Doc, date float64, cursor int) {
	h, _ := doc["history"].([]any)
	doc["history"] = append(h, map[string]any{"date": date, "cursor": float64(cursor)})
}

// fail records err on the job (error_count, history) and its log; the job
// is given up (deleted, log failed) at the tenth failure.
func (r *run) fail(ctx context.Context, doc, lg couch.Doc, cause error) error {
	if ctx.Err() != nil {
		return cause
	}
	count := int(jsv.Number(doc["error_count"])) + 1
	doc["error_count"] = float64(count)
	appendHistory(doc, r.ms(), int(jsv.Number(doc["cursor"])))
	errs, _ := lg["errors"].([]any)
	errs = append(errs, map[string]any{"date": r.ms(), "message": cause.Error()})
	if len(errs) > maxErrors {
		errs = errs[len(errs)-maxErrors:]
	}
	lg["errors"] = errs
	if count >= maxErrors {
		lg["status"] = "failed"
	}
	r.saveLog(ctx, lg)
	if err := r.saveJob(ctx, doc, count >= maxErrors); err != nil {
		r.log.Warn().Err(err).Str("archive_job", jsv.String(doc["_id"])).Msg("Archiving: could not save the job")
	}
	return cause
}

// saveJob writes the job doc back, or deletes it when done.
func (r *run) saveJob(ctx context.Context, doc couch.Doc, done bool) error {
	if done {
		id, rev := jsv.String(doc["_id"]), jsv.String(doc["_rev"])
		if err := r.st.Sentinel.Delete(ctx, id, rev); err != nil && !errors.Is(err, couch.ErrNotFound) {
			return fmt.Errorf("delete archive job %s: %w", id, err)
		}
		doc["_deleted"] = true
		return nil
	}
	if err := r.st.Sentinel.Put(ctx, doc); err != nil {
		return fmt.Errorf("save archive job %s: %w", jsv.String(doc["_id"]), err)
	}
	return nil
}

// openLog reads the job's log doc, or starts one.
func (r *run) openLog(ctx context.Context, id string) couch.Doc {
	lg, err := r.st.Logs.Get(ctx, id)
	if err == nil {
		if _, ok := lg["errors"].([]any); !ok {
			lg["errors"] = []any{}
		}
		return lg
	}
	if !errors.Is(err, couch.ErrNotFound) {
		r.log.Warn().Err(err).Str("archive_job", id).Msg("Archiving: could not read the job log")
	}
	return couch.Doc{"_id": id, "start_date": r.ms(), "status": "running", "errors": []any{}}
}

// saveLog writes the log doc; a failure is only logged.
func (r *run) saveLog(ctx context.Context, lg couch.Doc) {
	lg["updated_date"] = r.ms()
	if err := r.st.Logs.Put(ctx, lg); err != nil {
		r.log.Warn().Err(err).Str("archive_job", jsv.String(lg["_id"])).Msg("Archiving: could not write the job log")
		if errors.Is(err, couch.ErrConflict) {
			delete(lg, "_rev")
		}
	}
}

// batch archives the ids of lines: copy, audit, purge the info docs, purge
// the docs. Every step can be redone after a crash.
func (r *run) batch(ctx context.Context, lines []string) error {
	var ids []string
	for _, l := range lines {
		if id := strings.TrimSpace(l); id != "" {
			ids = append(ids, id)
		}
	}
	date := r.now()
	var archived []string
	skipped := 0
	for start := 0; start < len(ids); start += readChunk {
		chunk := ids[start:min(start+readChunk, len(ids))]
		var docs []couch.Doc
		for _, id := range chunk {
			d, err := r.st.Main.GetFull(ctx, id)
			if errors.Is(err, couch.ErrNotFound) {
				skipped++
				continue
			}
			if err != nil {
				return err
			}
			if t, _ := d["type"].(string); !archivable[t] || strings.HasPrefix(id, "_design/") {
				skipped++
				continue
			}
			d["archive_date"] = float64(date.UnixMilli())
			docs = append(docs, d)
			archived = append(archived, id)
		}
		if err := r.st.Archive.PutReplicated(ctx, docs); err != nil {
			return fmt.Errorf("copy to the archive: %w", err)
		}
	}
	if skipped > 0 {
		r.log.Warn().Int("skipped", skipped).Msgf("Archiving: skipped %d ids, missing or not archivable", skipped)
	}
	if err := r.audit(ctx, archived, date); err != nil {
		return err
	}
	if err := purgeAll(ctx, r.st.Sentinel, infoIDs(archived)); err != nil {
		return fmt.Errorf("purge info docs: %w", err)
	}
	if err := purgeAll(ctx, r.st.Main, archived); err != nil {
		return fmt.Errorf("purge archived docs: %w", err)
	}
	r.batches++
	if r.batches%indexEvery == 0 {
		r.refreshIndexes(ctx)
	}
	return nil
}

func infoIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id + "-info"
	}
	return out
}

// audit appends an `archived` entry to the audit doc of each id that has
// none yet, through the audit log's own code (rotation, CHT API's entries
// kept, conflicts re-read); an entry not written fails the run, which is
// then tried again.
func (r *run) audit(ctx context.Context, ids []string, date time.Time) error {
	for start := 0; start < len(ids); start += readChunk {
		chunk := ids[start:min(start+readChunk, len(ids))]
		entries := make([]audit.Entry, len(chunk))
		for i, id := range chunk {
			entries[i] = audit.Entry{ID: id, Date: audit.DateOf(date), Archived: true}
		}
		lost, err := audit.Write(ctx, r.st.Audit, entries)
		if err != nil {
			return fmt.Errorf("write audit docs: %w", err)
		}
		if len(lost) > 0 {
			return fmt.Errorf("write audit docs: %d archived entries not written (conflicts)", len(lost))
		}
	}
	return nil
}

// purgeAll purges every leaf revision of each id that exists.
func purgeAll(ctx context.Context, db Store, ids []string) error {
	revs := map[string][]string{}
	for _, id := range ids {
		leaves, err := db.LeafRevs(ctx, id)
		if errors.Is(err, couch.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		revs[id] = leaves
	}
	return db.Purge(ctx, revs)
}

// refreshIndexes queries one row of the views CHT reads contacts with, so
// their indexes keep up with the purges; an unavailable index is ignored.
func (r *run) refreshIndexes(ctx context.Context) {
	for _, v := range [][2]string{{"medic", "contacts_by_depth"}, {"medic-client", "contacts_by_last_visited"}} {
		if _, err := r.st.Main.Query(ctx, v[0], v[1], map[string]any{"limit": 1}); err != nil {
			r.log.Debug().Err(err).Str("view", v[0]+"/"+v[1]).Msg("Archiving: view index not refreshed")
		}
	}
}
