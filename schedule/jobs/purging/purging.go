// Package purging is the server-side purging job (jobs.md §1): for each
// set of roles held by offline users it decides, with the configured
// `purge.fn` run in the expression sandbox, which main-db docs those users
// must not keep, and records the decisions as `purged:<id>` docs in one
// database per role set, which CHT API reads. It never changes main-db
// docs. It walks the database in bounded batches through its own views, so
// its memory stays bounded on any database size.
package purging

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/schedule/jobs"
	"sentinel-go/schedule/recur"
)

// Limits of jobs.md §1.5–1.8.
const (
	maxContactBatch = 1000
	subjectChunk    = 1000
	tooManyRecords  = 20000
	fewRecords      = 5000
	// pageSize bounds the unallocated records, tasks and target ids held at
	// once (the reference takes up to 20 000; smaller pages keep memory low).
	pageSize = 1000
	// taskAge and targetMonths are how old tasks and targets must be.
	taskAgeDays  = 60
	targetMonths = 6
)

// Config is the `purge` block.
type Config struct {
	Fn          string
	HasFn       bool
	Schedule    recur.Schedule
	ScheduleErr error
}

// ReadConfig reads settings.purge.
func ReadConfig(s *config.Settings) Config {
	var c Config
	if s == nil {
		return c
	}
	block, _ := s.Get("purge").(map[string]any)
	if v, ok := block["fn"]; ok && v != nil {
		c.HasFn = true
		c.Fn, _ = v.(string)
	}
	cronExpr, _ := block["cron"].(string)
	text, _ := block["text_expression"].(string)
	sched, err := recur.Parse(cronExpr, text)
	if err == nil {
		c.Schedule = sched
	} else if !errors.Is(err, recur.ErrEmpty) {
		c.ScheduleErr = err
	}
	return c
}

// Check reports the problems of the `purge` block (check-config): a
// function that does not compile, a schedule that does not parse.
func Check(s *config.Settings) []config.Problem {
	raw := s.Get("purge")
	if raw == nil {
		return nil
	}
	if _, ok := raw.(map[string]any); !ok {
		return []config.Problem{config.Errorf("purge", "must be an object")}
	}
	c := ReadConfig(s)
	var ps []config.Problem
	if c.HasFn {
		if _, err := compile(c.Fn); err != nil {
			ps = append(ps, config.Errorf("purge.fn", "%v", err))
		}
	}
	if c.ScheduleErr != nil {
		ps = append(ps, config.Errorf("purge", "invalid schedule: %v (purging will not run)", c.ScheduleErr))
	}
	if c.HasFn && c.Schedule.IsZero() && c.ScheduleErr == nil {
		ps = append(ps, config.Warnf("purge", "no cron or text_expression: server-side purging never runs"))
	}
	return ps
}

func compile(src string) (*jsexpr.Program, error) {
	if src == "" {
		return nil, errors.New("Configured purge function is not a function")
	}
	p, err := jsexpr.CompileFunction("purge.fn", src)
	if err != nil {
		return nil, fmt.Errorf("Failed to parse purge function: %w", err)
	}
	return p, nil
}

// Purging is the job; a tick arms its timer.
type Purging struct {
	timer jobs.Timer
}

// New returns the job.
func New() *Purging { return &Purging{} }

// Name implements jobs.Job.
func (*Purging) Name() string { return "purging" }

// Wait returns when no run is going (tests).
func (p *Purging) Wait() { p.timer.Wait() }

// Run implements jobs.Job: it arms the next run of the schedule.
func (p *Purging) Run(ctx context.Context, env *jobs.Env) error {
	if env.Client == nil || env.Settings == nil {
		return nil
	}
	c := ReadConfig(env.Settings)
	if c.ScheduleErr != nil {
		// The reference crashes here; a bad schedule only skips purging.
		p.timer.Stop()
		env.Log.Error().Err(c.ScheduleErr).Msg("Purging: invalid schedule; purging is skipped")
		return nil
	}
	now := env.Wall()
	at, ok := c.Schedule.Next(now, env.Location)
	if !ok {
		p.timer.Stop()
		return nil
	}
	work := env.Detached(p.Name())
	p.timer.Arm(ctx, at, now, func(ctx context.Context) {
		srv := NewCouchServer(work.Client)
		if err := RunOnce(ctx, srv, work); err != nil {
			work.Log.Error().Err(err).Msg("Purging failed")
		}
	})
	return nil
}

// Source is the main db as purging reads it; every list is in key order
// and paged after the given key.
type Source interface {
	// Contacts are contact docs with _id after `after`.
	Contacts(ctx context.Context, after string, limit int) ([]couch.Doc, error)
	// RecordsBySubject are the data_records whose replication subject is
	// one of subjects, at most limit of them (memory stays bounded when a
	// batch has too many).
	RecordsBySubject(ctx context.Context, subjects []string, limit int) ([]couch.Doc, error)
	// Unallocated are data_records without a replication subject, _id after `after`.
	Unallocated(ctx context.Context, after string, limit int) ([]couch.Doc, error)
	// FinalTasks are ids of tasks in a final state whose emission.endDate
	// is ≤ upTo, keyed [endDate, _id] after `after` (nil: from the start).
	FinalTasks(ctx context.Context, upTo string, after []any, limit int) ([]couch.Row, error)
	// IDs are the ids in [from, to] of `_all_docs`, after `after`.
	IDs(ctx context.Context, from, to, after string, limit int) ([]string, error)
}

// PurgeDB is one role set's purge database.
type PurgeDB interface {
	AllDocs(ctx context.Context, params map[string]any) ([]couch.Row, error)
	BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error)
	Put(ctx context.Context, doc couch.Doc) error
}

// Server is everything a run touches.
type Server interface {
	Source(ctx context.Context) (Source, error)
	Users(ctx context.Context) ([]map[string]any, error)
	PurgeDB(ctx context.Context, hash string) (PurgeDB, error)
	Sentinel() PurgeDB
}

// run is one purging run.
type run struct {
	env      *jobs.Env
	log      zerolog.Logger
	fn       *jsexpr.Program
	api      map[string]any
	perms    map[string]any
	sets     []RoleSet
	dbs      []PurgeDB
	skipped  []any
	examined int
}

// RunOnce is one purging run (jobs.md §1.4).
func RunOnce(ctx context.Context, srv Server, env *jobs.Env) error {
	c := ReadConfig(env.Settings)
	if !c.HasFn {
		env.Log.Info().Msg("Purging: No purge function configured.")
		return nil
	}
	fn, err := compile(c.Fn)
	if err != nil {
		env.Log.Error().Err(err).Msg(errMessage(err))
		return nil
	}
	users, err := srv.Users(ctx)
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	rolesSetting, _ := env.Settings.Get("roles").(map[string]any)
	sets := RoleSets(users, rolesSetting)
	if len(sets) == 0 {
		env.Log.Info().Msg("Purging: No offline users found. Purging is skipped.")
		return nil
	}
	perms, _ := env.Settings.Get("permissions").(map[string]any)
	r := &run{env: env, log: env.Log, fn: fn, perms: perms, api: scriptAPI(perms, rolesSetting), sets: sets, skipped: []any{}}
	started := env.Wall()
	env.Log.Info().Msg("Running server side purge")
	err = r.all(ctx, srv)
	took := env.Wall().Sub(started)
	logDoc := map[string]any{"date": started.UTC().Format("2006-01-02T15:04:05.000Z"), "roles": r.rolesMap(),
		"duration": float64(took.Microseconds()) / 1000, "skipped_contacts": r.skipped}
	id := fmt.Sprintf("purgelog:%d", started.UnixMilli())
	if err != nil {
		id = fmt.Sprintf("purgelog:error:%d", started.UnixMilli())
		logDoc["error"] = err.Error()
		env.Log.Error().Err(err).Msg("Error while running purging")
		env.Log.Info().Msgf("Purging failed after %s minutes", minutes(took))
	} else {
		env.Log.Info().Int("examined", r.examined).Msgf("Purging completed in %s minutes", minutes(took))
	}
	logDoc["_id"] = id
	if perr := srv.Sentinel().Put(ctx, logDoc); perr != nil {
		return fmt.Errorf("write purge log: %w", perr)
	}
	return nil
}

func errMessage(err error) string {
	var se *jsexpr.SyntaxError
	if errors.As(err, &se) {
		return "Failed to parse purge function"
	}
	return "Configured purge function is not a function"
}

func minutes(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Minutes())
}

func (r *run) rolesMap() map[string]any {
	out := map[string]any{}
	for _, s := range r.sets {
		roles := make([]any, len(s.Roles))
		for i, x := range s.Roles {
			roles[i] = x
		}
		out[s.Hash] = roles
	}
	return out
}

func (r *run) all(ctx context.Context, srv Server) error {
	for _, s := range r.sets {
		db, err := srv.PurgeDB(ctx, s.Hash)
		if err != nil {
			return err
		}
		roles := make([]any, len(s.Roles))
		for i, x := range s.Roles {
			roles[i] = x
		}
		if err := db.Put(ctx, couch.Doc{"_id": "_local/info", "roles": roles}); err != nil && !errors.Is(err, couch.ErrConflict) {
			return fmt.Errorf("write _local/info of role set %s: %w", s.Hash, err)
		}
		r.dbs = append(r.dbs, db)
	}
	src, err := srv.Source(ctx)
	if err != nil {
		return err
	}
	if err := r.contacts(ctx, src); err != nil {
		return err
	}
	if err := r.unallocated(ctx, src); err != nil {
		return err
	}
	if err := r.oldTasks(ctx, src); err != nil {
		return err
	}
	return r.oldTargets(ctx, src)
}

// group is one call of fn: a contact ({} for reports about no contact of
// the batch) with its reports and messages.
type group struct {
	contact  map[string]any
	reports  []any
	messages []any
}

func (g *group) ids() []string {
	var out []string
	if id := nonEmpty(g.contact["_id"]); id != "" {
		out = append(out, id)
	}
	for _, l := range [][]any{g.reports, g.messages} {
		for _, d := range l {
			if id := nonEmpty(jsv.Map(d)["_id"]); id != "" {
				out = append(out, id)
			}
		}
	}
	return out
}

// contacts walks the contacts in batches (jobs.md §1.5).
func (r *run) contacts(ctx context.Context, src Source) error {
	size := maxContactBatch
	after := ""
	for {
		batch, err := src.Contacts(ctx, after, size)
		if err != nil {
			return fmt.Errorf("read contacts: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		records, err := r.records(ctx, src, batch)
		if err != nil {
			return err
		}
		if len(records) >= tooManyRecords {
			if len(batch) == 1 {
				id := nonEmpty(batch[0]["_id"])
				r.log.Warn().Str("doc_id", id).Int("records", len(records)).Msg("Purging: too many records for one contact; it is skipped")
				r.skipped = append(r.skipped, id)
				after = id
				continue
			}
			size = max(len(batch)/2, 1)
			continue
		}
		r.examined += len(batch) + len(records)
		if err := r.decideGroups(ctx, groups(batch, records)); err != nil {
			return err
		}
		after = nonEmpty(batch[len(batch)-1]["_id"])
		if len(records) < fewRecords && size < maxContactBatch {
			size = min(size*2, maxContactBatch)
		}
		if len(batch) < size {
			return nil
		}
	}
}

// records finds the data_records of a batch of contacts: those whose
// replication subject is one of the batch's subject ids.
func (r *run) records(ctx context.Context, src Source, batch []couch.Doc) ([]couch.Doc, error) {
	var subjects []string
	for _, c := range batch {
		subjects = append(subjects, SubjectIDs(c)...)
	}
	var out []couch.Doc
	seen := map[string]bool{}
	for start := 0; start < len(subjects); start += subjectChunk {
		got, err := src.RecordsBySubject(ctx, subjects[start:min(start+subjectChunk, len(subjects))], tooManyRecords-len(out))
		if err != nil {
			return nil, fmt.Errorf("read records: %w", err)
		}
		for _, d := range got {
			if id := nonEmpty(d["_id"]); !seen[id] {
				seen[id] = true
				out = append(out, d)
			}
			if len(out) >= tooManyRecords {
				return out, nil
			}
		}
	}
	return out, nil
}

// groups puts each record with its contact (jobs.md §1.5 step 2).
func groups(batch, records []couch.Doc) []*group {
	var out []*group
	bySubject := map[string]*group{}
	for _, c := range batch {
		g := &group{contact: c, reports: []any{}, messages: []any{}}
		out = append(out, g)
		for _, id := range SubjectIDs(c) {
			if _, dup := bySubject[id]; !dup {
				bySubject[id] = g
			}
		}
	}
	for _, rec := range records {
		if IsReport(rec) {
			if g := bySubject[ReportSubjectID(rec)]; g != nil {
				g.reports = append(g.reports, map[string]any(rec))
			} else {
				out = append(out, &group{contact: map[string]any{}, reports: []any{map[string]any(rec)}, messages: []any{}})
			}
			continue
		}
		if g := bySubject[ReplicationSubject(rec)]; g != nil {
			g.messages = append(g.messages, map[string]any(rec))
		}
	}
	return out
}

// decideGroups calls fn for each group and role set, then writes the
// batch's purge records.
func (r *run) decideGroups(ctx context.Context, gs []*group) error {
	for i, s := range r.sets {
		decisions := map[string]bool{}
		for _, g := range gs {
			purged, err := r.call(ctx, s, g)
			if err != nil {
				return err
			}
			for _, id := range g.ids() {
				decisions[id] = decisions[id] || purged[id]
			}
		}
		if err := writeDecisions(ctx, r.dbs[i], decisions, false); err != nil {
			return fmt.Errorf("write purge records of role set %s: %w", s.Hash, err)
		}
	}
	return nil
}

// call runs fn on a group for a role set and returns the group ids it
// returned; a result that is not an array purges nothing.
func (r *run) call(ctx context.Context, s RoleSet, g *group) (map[string]bool, error) {
	roles := make([]any, len(s.Roles))
	for i, x := range s.Roles {
		roles[i] = x
	}
	res, err := r.env.JS.Call(ctx, r.fn, map[string]any{"roles": roles}, g.contact, g.reports, g.messages, r.api, r.perms)
	if err != nil {
		return nil, fmt.Errorf("purge function: %w", err)
	}
	out := map[string]bool{}
	if list, ok := res.([]any); ok {
		for _, x := range list {
			if id, ok := x.(string); ok {
				out[id] = true
			}
		}
	}
	return out, nil
}

// unallocated decides each record without a subject alone (jobs.md §1.6).
func (r *run) unallocated(ctx context.Context, src Source) error {
	after := ""
	for {
		page, err := src.Unallocated(ctx, after, pageSize)
		if err != nil {
			return fmt.Errorf("read unallocated records: %w", err)
		}
		r.examined += len(page)
		var gs []*group
		for _, rec := range page {
			g := &group{contact: map[string]any{}, reports: []any{}, messages: []any{}}
			if IsReport(rec) {
				g.reports = []any{map[string]any(rec)}
			} else {
				g.messages = []any{map[string]any(rec)}
			}
			gs = append(gs, g)
		}
		if err := r.decideGroups(ctx, gs); err != nil {
			return err
		}
		if len(page) < pageSize {
			return nil
		}
		after = nonEmpty(page[len(page)-1]["_id"])
	}
}

// oldTasks purges, for every role set, tasks that ended in a final state
// 60 days ago or more (jobs.md §1.7).
func (r *run) oldTasks(ctx context.Context, src Source) error {
	upTo := r.now().AddDate(0, 0, -taskAgeDays).Format("2006-01-02")
	var after []any
	for {
		rows, err := src.FinalTasks(ctx, upTo, after, pageSize)
		if err != nil {
			return fmt.Errorf("read old tasks: %w", err)
		}
		ids := make([]string, len(rows))
		for i, row := range rows {
			ids[i] = row.ID
		}
		if err := r.purgeForAll(ctx, ids); err != nil {
			return err
		}
		if len(rows) < pageSize {
			return nil
		}
		after, _ = rows[len(rows)-1].Key.([]any)
	}
}

// oldTargets purges, for every role set, targets of seven or more months
// ago (jobs.md §1.8).
func (r *run) oldTargets(ctx context.Context, src Source) error {
	now := r.now()
	month := time.Date(now.Year(), now.Month()-targetMonths, 1, 0, 0, 0, 0, now.Location()).Format("2006-01")
	after := ""
	for {
		ids, err := src.IDs(ctx, "target~", "target~"+month+"~", after, pageSize)
		if err != nil {
			return fmt.Errorf("read old targets: %w", err)
		}
		if err := r.purgeForAll(ctx, ids); err != nil {
			return err
		}
		if len(ids) < pageSize {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

func (r *run) now() time.Time {
	loc := r.env.Location
	if loc == nil {
		loc = time.Local
	}
	return r.env.Wall().In(loc)
}

// purgeForAll records ids as purged for every role set, never un-purging.
func (r *run) purgeForAll(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	r.examined += len(ids)
	decisions := map[string]bool{}
	for _, id := range ids {
		decisions[id] = true
	}
	for i, s := range r.sets {
		if err := writeDecisions(ctx, r.dbs[i], decisions, true); err != nil {
			return fmt.Errorf("write purge records of role set %s: %w", s.Hash, err)
		}
	}
	return nil
}

// writeDecisions makes the purge records of db match decisions (jobs.md
// §1.3): a live `purged:<id>` for each id to purge, none for the others
// (unless onlyAdd); unchanged decisions write nothing.
func writeDecisions(ctx context.Context, db PurgeDB, decisions map[string]bool, onlyAdd bool) error {
	if len(decisions) == 0 {
		return nil
	}
	keys := make([]string, 0, len(decisions))
	for id := range decisions {
		keys = append(keys, "purged:"+id)
	}
	rows, err := db.AllDocs(ctx, map[string]any{"keys": keys})
	if err != nil {
		return err
	}
	live := map[string]string{}
	for _, row := range rows {
		v := jsv.Map(row.Value)
		if rev, _ := v["rev"].(string); rev != "" && v["deleted"] != true {
			live[row.ID] = rev
		}
	}
	var writes []couch.Doc
	for id, purge := range decisions {
		pid := "purged:" + id
		rev, isLive := live[pid]
		switch {
		case purge && !isLive:
			writes = append(writes, couch.Doc{"_id": pid})
		case !purge && isLive && !onlyAdd:
			writes = append(writes, couch.Doc{"_id": pid, "_rev": rev, "_deleted": true})
		}
	}
	res, err := db.BulkDocs(ctx, writes)
	if err != nil {
		return err
	}
	for _, x := range res {
		if x.Err != nil && !errors.Is(x.Err, couch.ErrConflict) {
			return x.Err
		}
	}
	return nil
}
