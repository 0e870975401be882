package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/config"
	"sentinel-go/couch"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/schedule"
	"sentinel-go/schedule/recur"
	"sentinel-go/templates"
)

// Reminders sends the configured reminders (schedules.md §7): for each
// `reminders[]` entry whose cron / text_expression fell due since its last
// run, one reminder doc per place of its contact types, then a
// `reminderlog:<form>:<ms>` doc in the sentinel db.
//
// Doc ids are deterministic, so a run interrupted half-way is finished by the
// next one without duplicates (a 409 on create means "already done"); the
// reminderlog is written only once every place was handled.
//
// Choices where the spec leaves room: a place whose primary contact doc does
// not exist, or whose message cannot be generated (template error, empty
// text), gets no reminder and a warning (never an SMS to a literal
// "reporting_unit"); the run still completes and is logged. Places are paged
// per contact type; on PouchDB Server, which ignores startkey_docid, paging
// goes on by skip, so every place is reached there too.
type Reminders struct {
	// PageSize is how many places are read per view request (default 100).
	PageSize int
}

// Name implements Job.
func (Reminders) Name() string { return "reminders" }

// Reminder is one valid `reminders[]` entry.
type Reminder struct {
	Index    int
	Raw      map[string]any // the config as written (copied to the reminderlog)
	Form     string
	Schedule recur.Schedule
	// Types are the configured contact_types (nil: the leaf place types).
	Types []string
	// MuteFor is mute_after_form_for (nil: none).
	MuteFor *schedule.Duration
	Spec    messages.Spec
}

// ParseReminders reads settings.reminders. Invalid entries are left out with
// a warning problem each (schedules.md §7: invalid → skipped, warning).
func ParseReminders(s *config.Settings) ([]Reminder, []config.Problem) {
	raw := s.Get("reminders")
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, []config.Problem{config.Warnf("reminders", "must be an array: no reminder is sent")}
	}
	var out []Reminder
	var problems []config.Problem
	for i, e := range list {
		r, ps := parseReminder(s, i, e)
		problems = append(problems, ps...)
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, problems
}

func parseReminder(s *config.Settings, i int, e any) (*Reminder, []config.Problem) {
	path := fmt.Sprintf("reminders[%d]", i)
	m, ok := e.(map[string]any)
	if !ok {
		return nil, []config.Problem{config.Warnf(path, "must be an object: reminder skipped")}
	}
	var problems []config.Problem
	bad := func(field, format string, args ...any) {
		p := path
		if field != "" {
			p += "." + field
		}
		problems = append(problems, config.Warnf(p, format+": reminder skipped", args...))
	}
	r := &Reminder{Index: i, Raw: m}
	r.Form, _ = m["form"].(string)
	if strings.TrimSpace(r.Form) == "" {
		bad("form", "must be a non-empty string")
	}
	tk, _ := m["translation_key"].(string)
	if tk == "" && !hasText(m["message"]) {
		bad("", "needs a translation_key or a message")
	}
	r.Spec = messages.SpecOf(m)
	r.Spec.Recipient = "reporting_unit"
	cronExpr, cronOK := m["cron"].(string)
	text, textOK := m["text_expression"].(string)
	if m["cron"] != nil && !cronOK {
		bad("cron", "must be a string")
	}
	if m["text_expression"] != nil && !textOK {
		bad("text_expression", "must be a string")
	}
	if sch, err := recur.Parse(cronExpr, text); err != nil {
		field := "cron"
		if strings.TrimSpace(text) != "" || strings.TrimSpace(cronExpr) == "" {
			field = "text_expression"
		}
		if errors.Is(err, recur.ErrEmpty) {
			bad("", "needs a text_expression or a cron")
		} else {
			bad(field, "%v", err)
		}
	} else {
		r.Schedule = sch
	}
	if v, present := m["contact_types"]; present {
		arr, ok := v.([]any)
		if !ok || len(arr) == 0 {
			bad("contact_types", "must be a non-empty array of contact type ids")
		}
		for _, t := range arr {
			id, _ := t.(string)
			if id == "" || s.ContactTypes.Get(id) == nil {
				bad("contact_types", "unknown contact type %s", jsonish(t))
				continue
			}
			r.Types = append(r.Types, id)
		}
	}
	if v, present := m["mute_after_form_for"]; present && v != nil {
		if d, ok := schedule.ParseDuration(jsv.String(v)); ok {
			r.MuteFor = &d
		} else {
			problems = append(problems, config.Warnf(path+".mute_after_form_for",
				"%s is not a duration such as \"3 days\": ignored (reminders are not muted by reports)", jsonish(v)))
		}
	}
	for _, p := range problems {
		if strings.HasSuffix(p.Message, "reminder skipped") {
			return nil, problems
		}
	}
	return r, problems
}

func hasText(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x) != ""
	case []any:
		return len(x) > 0
	}
	return false
}

func jsonish(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%v", v)
}

// Run implements Job.
func (j Reminders) Run(ctx context.Context, env *Env) error {
	if env.Settings == nil {
		return nil
	}
	log := env.Log.With().Str("job", j.Name()).Logger()
	rs, problems := ParseReminders(env.Settings)
	for _, p := range problems {
		log.Warn().Str("path", p.Path).Msg(p.Message)
	}
	var errs []error
	for _, r := range rs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := j.runOne(ctx, env, r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("reminder %s (reminders[%d]): %w", r.Form, r.Index, err))
		}
	}
	return errors.Join(errs...)
}

// runOne handles one reminder: its latest occurrence since the last run, the
// reminder docs of its places, then the reminderlog.
func (j Reminders) runOne(ctx context.Context, env *Env, r Reminder) error {
	loc := env.Location
	if loc == nil {
		loc = time.UTC
	}
	now := env.Now().In(loc)
	log := env.Log.With().Str("job", j.Name()).Str("form", r.Form).Logger()
	start, err := lastRun(ctx, env.Sentinel, r.Form, now)
	if err != nil {
		return err
	}
	occ, ok := r.Schedule.Latest(start, now, loc)
	if !ok {
		log.Debug().Time("since", start).Msg("Reminder not due")
		return nil
	}
	began := time.Now()
	types := r.Types
	if types == nil {
		if env.Settings.ContactTypes.Configured() {
			types = env.Settings.ContactTypes.LeafPlaceTypes()
		}
		if len(types) == 0 {
			log.Warn().Msg("Reminder without contact_types and no leaf place type in settings.contact_types " +
				"(the hardcoded hierarchy gives none, as in the reference): nothing sent")
		}
	}
	run := &reminderRun{env: env, r: r, occ: occ, now: now, log: log,
		hyd: lineage.New(env.Main), gen: env.Generator(now)}
	if r.MuteFor != nil {
		if run.mutedBy, err = recentSenders(ctx, env.Main, r.Form, r.MuteFor.SubFrom(occ), loc); err != nil {
			return err
		}
	}
	page := j.PageSize
	if page <= 0 {
		page = 100
	}
	for _, typ := range types {
		if err := eachPlacePage(ctx, env.Main, typ, page, run.page); err != nil {
			return err
		}
	}
	logDoc := couch.Doc{
		"_id":           reminderLogID(r.Form, occ),
		"type":          "reminderlog",
		"reminder":      r.Raw,
		"duration":      time.Since(began).Milliseconds(),
		"reported_date": env.Now().UnixMilli(),
	}
	if err := env.Sentinel.Put(ctx, logDoc); err != nil && !errors.Is(err, couch.ErrConflict) {
		return fmt.Errorf("write %s: %w", logDoc["_id"], err)
	}
	env.Count("reminders", "created", run.sent)
	log.Info().Time("occurrence", occ).Int("sent", run.sent).Int("skipped", run.skipped).Msg("Reminders created")
	return nil
}

func reminderLogID(form string, occ time.Time) string {
	return fmt.Sprintf("reminderlog:%s:%d", form, occ.UnixMilli())
}

// ReminderID is the id of the reminder doc of form at occurrence occ for a place.
func ReminderID(form string, occ time.Time, placeID string) string {
	return fmt.Sprintf("reminder:%s:%d:%s", form, occ.UnixMilli(), placeID)
}

// lastRun is the occurrence of the newest reminderlog of form in the last
// day, else the start of the current hour minus one day.
func lastRun(ctx context.Context, db *couch.DB, form string, now time.Time) (time.Time, error) {
	from := now.Add(-24 * time.Hour)
	prefix := "reminderlog:" + form + ":"
	rows, err := db.AllDocs(ctx, map[string]any{
		"startkey":   prefix + strconv.FormatInt(now.UnixMilli(), 10),
		"endkey":     prefix + strconv.FormatInt(from.UnixMilli(), 10),
		"descending": true, "limit": 50,
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read reminderlogs: %w", err)
	}
	for _, row := range rows {
		suffix := strings.TrimPrefix(row.ID, prefix)
		ms, err := strconv.ParseInt(suffix, 10, 64)
		if err != nil || suffix != strconv.FormatInt(ms, 10) {
			continue
		}
		t := time.UnixMilli(ms).In(now.Location())
		if !t.Before(from) && !t.After(now) {
			return t, nil
		}
	}
	y, m, d := now.Date()
	return time.Date(y, m, d, now.Hour(), 0, 0, 0, now.Location()).AddDate(0, 0, -1), nil
}

// recentSenders returns the ids of the places (the submitter's parent) that
// sent a report of form reported at or after since.
func recentSenders(ctx context.Context, db *couch.DB, form string, since time.Time, loc *time.Location) (map[string]bool, error) {
	rows, err := db.View(ctx, "reports_by_form_and_date", map[string]any{
		"startkey": []any{form, since.UnixMilli()}, "endkey": []any{form, map[string]any{}}, "include_docs": true,
	})
	if err != nil {
		return nil, fmt.Errorf("read recent %s reports: %w", form, err)
	}
	out := map[string]bool{}
	for _, row := range rows {
		if row.Doc == nil {
			continue
		}
		if t, ok := docTime(row.Doc["reported_date"], loc); !ok || t.Before(since) {
			continue
		}
		if v, ok := jsv.Get(row.Doc, "contact.parent._id"); ok {
			if id, _ := v.(string); id != "" {
				out[id] = true
			}
		}
	}
	return out, nil
}

// docTime reads a date stored as epoch ms or an ISO string.
func docTime(v any, loc *time.Location) (time.Time, bool) {
	switch x := v.(type) {
	case float64:
		return time.UnixMilli(int64(x)), true
	case string:
		return schedule.ParseTime(x, loc)
	}
	return time.Time{}, false
}

// eachPlacePage calls fn with the places of contact type typ, a page at a
// time, from the daemon's contacts_by_type view. Pages follow each other by
// startkey_docid; PouchDB Server ignores startkey_docid (every page starts
// over), which shows as rows seen before: paging then goes on by skip. A page
// bringing nothing new ends the walk, so a server misbehaving otherwise
// cannot loop it.
func eachPlacePage(ctx context.Context, db *couch.DB, typ string, size int, fn func(context.Context, []couch.Doc) error) error {
	seen := map[string]bool{}
	lastID := ""
	bySkip := false
	for {
		params := map[string]any{"startkey": typ, "endkey": typ, "include_docs": true, "limit": size}
		switch {
		case bySkip:
			params["skip"] = len(seen)
		case lastID != "":
			params["startkey_docid"] = lastID
			params["limit"] = size + 1 // the first row is lastID again
		}
		rows, err := db.View(ctx, "contacts_by_type", params)
		if err != nil {
			return fmt.Errorf("read %s places: %w", typ, err)
		}
		var fresh []couch.Doc
		repeated := false
		for _, row := range rows {
			if seen[row.ID] {
				if row.ID != lastID {
					repeated = true
				}
				continue
			}
			seen[row.ID] = true
			if row.Doc != nil {
				fresh = append(fresh, row.Doc)
			}
		}
		if repeated && !bySkip && lastID != "" {
			// startkey_docid was ignored: redo this page by skip.
			for _, d := range fresh {
				id, _ := d["_id"].(string)
				delete(seen, id)
			}
			bySkip = true
			continue
		}
		if len(fresh) == 0 {
			return nil
		}
		if err := fn(ctx, fresh); err != nil {
			return err
		}
		if len(rows) < params["limit"].(int) {
			return nil
		}
		lastID = rows[len(rows)-1].ID
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// reminderRun is one reminder's occurrence being sent.
type reminderRun struct {
	env     *Env
	r       Reminder
	occ     time.Time
	now     time.Time
	log     zerolog.Logger
	hyd     *lineage.Hydrator
	gen     *messages.Generator
	mutedBy map[string]bool
	sent    int
	skipped int
}

// page writes the reminder docs of one page of places.
func (run *reminderRun) page(ctx context.Context, places []couch.Doc) error {
	var cands []couch.Doc
	var ids []string
	for _, p := range places {
		pid, _ := p["_id"].(string)
		if why := run.skipReason(p); why != "" {
			run.skipped++
			run.log.Debug().Str("place", pid).Msg("No reminder: " + why)
			continue
		}
		cands = append(cands, p)
		ids = append(ids, ReminderID(run.r.Form, run.occ, pid))
	}
	if len(cands) == 0 {
		return nil
	}
	existing, err := run.env.Main.GetMany(ctx, ids)
	if err != nil {
		return fmt.Errorf("read reminders: %w", err)
	}
	var docs []couch.Doc
	for i, p := range cands {
		if existing[ids[i]] != nil {
			continue // sent by an earlier, interrupted run
		}
		doc, err := run.build(ctx, p, ids[i])
		if err != nil {
			return err
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	res, err := run.env.Main.BulkDocs(ctx, docs)
	if err != nil {
		return fmt.Errorf("write reminders: %w", err)
	}
	var errs []error
	for _, r := range res {
		switch {
		case r.Err == nil:
			run.sent++
		case errors.Is(r.Err, couch.ErrConflict):
			// already written: done
		default:
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// skipReason says why a place gets no reminder ("" when it gets one).
func (run *reminderRun) skipReason(p couch.Doc) string {
	if cid, _ := jsv.Get(p, "contact._id"); cid == nil || cid == "" {
		return "no primary contact"
	}
	if jsv.Truthy(p["muted"]) {
		return "place muted"
	}
	for _, t := range jsv.Slice(p["tasks"]) {
		tm := jsv.Map(t)
		if tm == nil || tm["form"] != run.r.Form {
			continue
		}
		if ts, ok := docTime(tm["timestamp"], run.occ.Location()); ok && ts.UnixMilli() == run.occ.UnixMilli() {
			return "legacy place.tasks entry"
		}
	}
	if pid, _ := p["_id"].(string); run.mutedBy[pid] {
		return "recent " + run.r.Form + " report (mute_after_form_for)"
	}
	return ""
}

// build makes the reminder doc of a place (nil: skipped with a warning).
func (run *reminderRun) build(ctx context.Context, place couch.Doc, id string) (couch.Doc, error) {
	pid, _ := place["_id"].(string)
	hp, err := run.hyd.HydrateContact(ctx, place)
	if err != nil {
		return nil, fmt.Errorf("hydrate %s: %w", pid, err)
	}
	contact := jsv.Map(hp["contact"])
	if contact == nil || !config.IsContact(contact) {
		run.skipped++
		run.log.Warn().Str("place", pid).Str("contact", jsv.GetString(place, "contact._id")).
			Msg("No reminder: the place's primary contact does not exist")
		return nil, nil
	}
	reported := run.env.Now().UnixMilli()
	gdoc := map[string]any{"type": "reminder", "form": run.r.Form, "reported_date": float64(reported),
		"contact": contact, "place": hp}
	week, _ := strconv.Atoi(templates.FormatMoment(run.occ, "w", "en"))
	extra := map[string]any{"patient": hp, "week": week, "year": run.occ.Year()}
	msg, err := run.gen.Message(gdoc, run.r.Spec, extra)
	if err != nil || msg["error"] != nil {
		why := "empty message"
		if err != nil {
			why = err.Error()
		}
		run.skipped++
		run.log.Warn().Str("place", pid).Str("reason", why).Msg("No reminder: the message could not be generated")
		return nil, nil
	}
	task := map[string]any{"messages": []any{msg}, "form": run.r.Form, "timestamp": messages.ISO(run.occ), "type": "reminder"}
	messages.SetState(task, messages.StatePending, nil, "", false, run.now)
	stub := func(d map[string]any) map[string]any {
		out := map[string]any{"_id": d["_id"]}
		if p, ok := d["parent"]; ok && p != nil {
			if mp := lineage.MinifyLineage(p); jsv.Map(mp) != nil {
				out["parent"] = mp
			}
		}
		return out
	}
	return couch.Doc{
		"_id":           id,
		"type":          "reminder",
		"form":          run.r.Form,
		"reported_date": reported,
		"contact":       stub(contact),
		"place":         stub(place),
		"tasks":         []any{task},
	}, nil
}
