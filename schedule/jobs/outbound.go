package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/outbound"
)

// Outbound retries the queued outbound pushes (schedules.md §8): for each
// `task:outbound:<id>` doc of the sentinel db it reloads and hydrates the
// doc, retries each queued push that is due (no cron, or a cron fire time
// within ±5 minutes) with the same steps as mark_for_outbound, drops the
// names that succeed (or whose config is gone), deletes the task when its
// queue is empty, and deletes the tasks of docs that no longer exist.
type Outbound struct {
	// PageSize is how many task docs are read per request (default 100).
	PageSize int
	// HTTP sends the pushes (nil: the outbound package's client).
	HTTP *http.Client
}

// Name implements Job.
func (Outbound) Name() string { return "outbound" }

// outboundMain is the main db as the job reads it. *couch.DB implements it.
type outboundMain interface {
	lineage.Store
	Get(ctx context.Context, id string) (map[string]any, error)
}

// outboundSentinel is the sentinel db as the job uses it. *couch.DB implements it.
type outboundSentinel interface {
	outbound.DocStore
	Delete(ctx context.Context, id, rev string) error
	AllDocs(ctx context.Context, params map[string]any) ([]couch.Row, error)
}

var (
	_ outboundMain     = (*couch.DB)(nil)
	_ outboundSentinel = (*couch.DB)(nil)
)

// outboundRun is one run of the job.
type outboundRun struct {
	main     outboundMain
	sentinel outboundSentinel
	cfg      *outbound.Config
	// raw is settings.outbound as stored: a name present there but
	// missing from cfg has an invalid config and stays queued.
	raw    map[string]any
	pusher *outbound.Pusher
	now    time.Time
	loc    *time.Location
	log    zerolog.Logger
	page   int
	// skip, when set, tells the tasks to leave for the next run.
	skip func(task map[string]any) bool
	// retried, when set, is told each task processed.
	retried func()
}

// OutboundRetrier is the daemon's outbound queue (*outbound.Queue): it
// retries the tasks from its own workers, with per-destination back-off.
type OutboundRetrier interface {
	Retry(reset, skipNew bool)
}

var _ OutboundRetrier = (*outbound.Queue)(nil)

// Run implements Job.
func (j Outbound) Run(ctx context.Context, env *Env) error {
	if env.Outbound != nil {
		// The first run catches up on tasks left by earlier runs of the
		// daemon (a push this process has just tried waits for the next
		// retry); later runs (SIGUSR2, the 5-minute tick) retry every task
		// now, back-off forgotten.
		first := env.Run == 1 && !env.Started.IsZero()
		env.Outbound.Retry(!first, first)
		return nil
	}
	if env.Settings == nil || env.Main == nil || env.Sentinel == nil {
		return nil
	}
	log := env.Log.With().Str("job", j.Name()).Logger()
	rawCfg, present := env.Settings.Raw["outbound"]
	rawMap, isMap := rawCfg.(map[string]any)
	if present && rawCfg != nil && !isMap {
		// A broken config must not empty the queues: wait for a fixed one.
		log.Warn().Msg("settings.outbound is not an object: outbound tasks are left as they are")
		return nil
	}
	cfg, _ := outbound.Parse(rawCfg, env.Settings.OutboundOrder)
	now := env.Now()
	js := env.JS
	if js == nil {
		js = jsexpr.NewSandbox(jsexpr.Options{})
	}
	r := &outboundRun{main: env.Main, sentinel: env.Sentinel, cfg: cfg, raw: rawMap, now: now, loc: env.Location, log: log, page: j.PageSize,
		retried: func() { env.Count(j.Name(), "retried", 1) },
		pusher:  &outbound.Pusher{Sentinel: env.Sentinel, JS: js, Log: log, Now: now, HTTP: j.HTTP, Secrets: env.Secrets}}
	if env.Run == 1 && !env.Started.IsZero() {
		// The first run is there to catch up on tasks left by earlier runs of
		// the daemon. A push this process has just tried and queued is not
		// retried milliseconds later (one failing request, not two), but by
		// the next run (the 5-minute tick or SIGUSR2).
		started := float64(env.Started.UnixMilli())
		r.skip = func(task map[string]any) bool {
			created, ok := task["created"].(float64)
			return ok && created >= started
		}
	}
	return r.run(ctx)
}

func (r *outboundRun) run(ctx context.Context) error {
	page := r.page
	if page <= 0 {
		page = 100
	}
	// Each page restarts at the last id of the previous one (not skip=1:
	// that task may just have been deleted, and skipping would then miss a
	// live one); ids already seen are passed over.
	seen := map[string]bool{}
	start := outbound.TaskPrefix
	for {
		rows, err := r.sentinel.AllDocs(ctx, map[string]any{"startkey": start, "endkey": outbound.TaskPrefix + "\ufff0",
			"include_docs": true, "limit": page + 1})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("outbound: list tasks: %w", err)
		}
		for _, row := range rows {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if seen[row.ID] {
				continue
			}
			seen[row.ID] = true
			if row.Doc == nil || r.skip != nil && r.skip(row.Doc) {
				continue
			}
			if err := r.retry(ctx, row.Doc); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// One task failing must not stop the others: retried next run.
				r.log.Warn().Str("task_id", row.ID).Err(err).Msg("Could not process outbound task; retried next run")
			} else if r.retried != nil {
				r.retried()
			}
		}
		if len(rows) < page+1 {
			return nil
		}
		start = rows[len(rows)-1].ID
	}
}

// retry processes one task doc.
func (r *outboundRun) retry(ctx context.Context, task map[string]any) error {
	taskID, _ := task["_id"].(string)
	rev, _ := task["_rev"].(string)
	docID, _ := task["doc_id"].(string)
	if docID == "" && len(taskID) > len(outbound.TaskPrefix) {
		docID = taskID[len(outbound.TaskPrefix):]
	}
	if docID == "" {
		return fmt.Errorf("task has no doc_id")
	}
	doc, err := r.main.Get(ctx, docID)
	if errors.Is(err, couch.ErrNotFound) || err == nil && doc["_deleted"] == true {
		r.log.Info().Str("doc_id", docID).Msgf("Doc %s no longer exists: outbound task deleted", docID)
		return r.delete(ctx, taskID, rev)
	}
	if err != nil {
		return fmt.Errorf("read doc %s: %w", docID, err)
	}
	var queue []string
	for _, n := range jsv.Slice(task["queue"]) {
		if s, ok := n.(string); ok {
			queue = append(queue, s)
		}
	}
	if len(queue) == 0 {
		return r.delete(ctx, taskID, rev)
	}
	if err := lineage.New(r.main).Hydrate(ctx, doc); err != nil {
		return fmt.Errorf("hydrate %s: %w", docID, err)
	}
	done := map[string]bool{}
	// Config order (the queue was written in it, unless the order was not
	// known then); names no longer configured are dropped.
	for _, name := range outbound.OrderNames(queue, r.cfg.Names()) {
		if done[name] {
			continue
		}
		p := r.cfg.Get(name)
		if _, invalid := r.raw[name]; p == nil && invalid {
			r.log.Warn().Str("doc_id", docID).Str("push", name).
				Msgf("Outbound push %s has an invalid config: %s stays queued", name, docID)
			continue
		}
		if p == nil {
			r.log.Warn().Str("doc_id", docID).Str("push", name).
				Msgf("Outbound push %s is no longer configured: removed from the queue of %s", name, docID)
			done[name] = true
			continue
		}
		due, err := p.Due(r.now, r.loc)
		if err != nil {
			r.log.Error().Str("doc_id", docID).Str("push", name).Err(err).Msgf("Invalid cron for outbound push %s: %s stays queued", name, docID)
			continue
		}
		if !due {
			continue
		}
		res, _ := r.pusher.Send(ctx, p, docID, doc)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res.Done() {
			done[name] = true
		}
	}
	if len(done) == 0 {
		return nil
	}
	var remaining []any
	for _, n := range queue {
		if !done[n] {
			remaining = append(remaining, n)
		}
	}
	if len(remaining) == 0 {
		return r.delete(ctx, taskID, rev)
	}
	task["queue"] = remaining
	if err := r.sentinel.Put(ctx, task); err != nil {
		return fmt.Errorf("update task: %w", err)
	}
	return nil
}

func (r *outboundRun) delete(ctx context.Context, id, rev string) error {
	if err := r.sentinel.Delete(ctx, id, rev); err != nil && !errors.Is(err, couch.ErrNotFound) {
		return fmt.Errorf("delete task: %w", err)
	}
	return nil
}
