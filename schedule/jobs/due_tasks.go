package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sentinel-go/couch"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/registrations"
	"sentinel-go/schedule"
)

// DueTasks releases scheduled messages that are due (schedules.md §6):
// `scheduled` → `pending` inside the sending window, generating the text of
// translation_key tasks now.
type DueTasks struct {
	// PageSize is how many view rows are read per request (default 200):
	// a deployment may hold millions of scheduled tasks.
	PageSize int
}

// Name implements Job.
func (DueTasks) Name() string { return "due_tasks" }

// maxOverdue is how far back due tasks are still released.
const maxOverdue = 7 * 24 * time.Hour

// InSendWindow reports whether now's local hh:mm lies in the sending window
// (inclusive). An overnight window never matches, as in the reference.
func InSendWindow(from, to int, now time.Time) bool {
	m := now.Hour()*60 + now.Minute()
	return m >= from && m <= to
}

// Run implements Job.
func (j DueTasks) Run(ctx context.Context, env *Env) error {
	now := env.Now().In(env.Location)
	from, to := env.Settings.SendWindow()
	if !InSendWindow(from, to, now) {
		env.Log.Debug().Str("job", j.Name()).Msg("Outside the sending window: no message released")
		return nil
	}
	page := j.PageSize
	if page <= 0 {
		page = 200
	}
	startKey := float64(now.Add(-maxOverdue).UnixMilli())
	endKey := float64(now.UnixMilli())
	params := map[string]any{"startkey": startKey, "endkey": endKey, "limit": page + 1}
	seen := map[string]bool{}
	released := 0
	var lastID string
	var lastKey any
	for {
		rows, err := env.Main.View(ctx, "scheduled_tasks_by_due", params)
		if err != nil {
			return fmt.Errorf("due tasks: %w", err)
		}
		next := len(rows) > page
		if next {
			rows = rows[:page]
		}
		var ids []string
		for _, r := range rows {
			if !seen[r.ID] {
				seen[r.ID] = true
				ids = append(ids, r.ID)
			}
		}
		n, err := j.releaseDocs(ctx, env, ids, now)
		released += n
		if err != nil {
			return err
		}
		if !next || len(rows) == 0 {
			break
		}
		// The next page starts at the last row read, inclusive (not skip=1:
		// that row may just have left the view when its doc was released,
		// and skipping would then miss a live row); docs already handled are
		// passed over through `seen`.
		last := rows[len(rows)-1]
		if last.ID == lastID && jsonEqualKey(last.Key, lastKey) {
			break // no progress (a doc with more tasks at one due time than a page)
		}
		lastID, lastKey = last.ID, last.Key
		params = map[string]any{"startkey": last.Key, "startkey_docid": last.ID, "endkey": endKey, "limit": page + 1}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	env.Count(j.Name(), "released", released)
	if released > 0 {
		env.Log.Info().Str("job", j.Name()).Int("released", released).Msg("Released due messages")
	}
	return nil
}

func jsonEqualKey(a, b any) bool {
	af, aok := a.(float64)
	bf, bok := b.(float64)
	return aok && bok && af == bf
}

func (j DueTasks) releaseDocs(ctx context.Context, env *Env, ids []string, now time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	docs, err := env.Main.GetMany(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("due tasks: %w", err)
	}
	released := 0
	for _, id := range ids {
		doc := docs[id]
		if doc == nil {
			continue
		}
		n, err := j.releaseDoc(ctx, env, doc, now)
		if err != nil {
			if ctx.Err() != nil {
				return released, ctx.Err()
			}
			// One doc failing (409 from a concurrent write, bad data) must not
			// stop the others: it is retried at the next run.
			env.Log.Warn().Str("job", j.Name()).Str("doc_id", id).Err(err).Msg("Could not release due messages; retried next run")
			continue
		}
		released += n
	}
	return released, nil
}

// releaseDoc updates the due tasks of one doc in place (by position, never
// by matching `due`) and saves it once.
func (j DueTasks) releaseDoc(ctx context.Context, env *Env, raw map[string]any, now time.Time) (int, error) {
	doc := jsv.CloneMap(raw)
	if err := lineage.New(env.Main).Hydrate(ctx, doc); err != nil {
		return 0, err
	}
	var extra map[string]any
	g := env.Generator(now)
	changed, released := false, 0
	for i, t := range jsv.Slice(doc["scheduled_tasks"]) {
		task := jsv.Map(t)
		if task == nil || task["state"] != messages.StateScheduled {
			continue
		}
		due, ok := schedule.DueOf(task, doc, env.Location)
		if !ok || due.After(now) {
			continue
		}
		if now.Sub(due) > maxOverdue {
			env.Log.Warn().Str("doc_id", jsv.String(doc["_id"])).Int("task", i).Time("due", due).
				Msg("Scheduled message more than 7 days overdue: never released")
			continue
		}
		if len(jsv.Slice(task["messages"])) == 0 {
			if extra == nil {
				var err error
				if extra, err = dueContext(ctx, env, doc); err != nil {
					return 0, err
				}
			}
			spec := messages.Spec{TranslationKey: jsv.String(task["message_key"]), Recipient: task["recipient"]}
			if task["message_key"] == nil {
				spec.TranslationKey = ""
				spec.Message = task["message"]
			}
			msg, err := g.Message(doc, spec, extra)
			if err != nil || msg["error"] != nil {
				if env.Settings.ClearFailingSchedules() {
					messages.SetState(task, messages.StateClear, nil, "", false, now)
					changed = true
				}
				continue
			}
			task["messages"] = []any{msg}
		}
		messages.SetState(task, messages.StatePending, nil, "", false, now)
		changed = true
		released++
	}
	if !changed {
		return 0, nil
	}
	if err := env.Main.Put(ctx, lineage.Minify(doc)); err != nil {
		if errors.Is(err, couch.ErrConflict) {
			return 0, fmt.Errorf("doc changed meanwhile: %w", err)
		}
		return 0, err
	}
	return released, nil
}

// dueContext is the message context at due time: the subjects and the valid
// registrations of the patient and place ids.
func dueContext(ctx context.Context, env *Env, doc map[string]any) (map[string]any, error) {
	patientID := firstString(jsv.Get(doc, "fields.patient_id"))
	if patientID == "" {
		patientID = firstString(jsv.Get(doc, "patient.patient_id"))
	}
	placeID := firstString(jsv.Get(doc, "fields.place_id"))
	if placeID == "" {
		placeID = firstString(jsv.Get(doc, "place.place_id"))
	}
	regs, err := registrations.Valid(ctx, env.Main, env.Settings, []string{patientID})
	if err != nil {
		return nil, err
	}
	placeRegs, err := registrations.Valid(ctx, env.Main, env.Settings, []string{placeID})
	if err != nil {
		return nil, err
	}
	return map[string]any{"patient": doc["patient"], "place": doc["place"],
		"registrations": toAny(regs), "placeRegistrations": toAny(placeRegs)}, nil
}

func firstString(v any, ok bool) string {
	if !ok || v == nil {
		return ""
	}
	s := jsv.String(v)
	return s
}

func toAny(ds []map[string]any) []any {
	out := make([]any, len(ds))
	for i, d := range ds {
		out[i] = d
	}
	return out
}
