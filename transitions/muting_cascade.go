package transitions

import (
	"context"
	"fmt"
	"sort"
	"time"

	"sentinel-go/infodoc"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/registrations"
	"sentinel-go/schedule"
)

// The server-side muting cascade (muting.md "Server-side cascade"), shared by
// muting and update_notifications, and the pure steps it is made of.

// mutingBatchSize is how many contacts one cascade batch handles (reference: 50).
const mutingBatchSize = 50

// mutingSaveAttempts bounds the re-reads after a 409 on a side-effect write.
const mutingSaveAttempts = 5

// mutingCascade is one mute or unmute of a subtree, requested by a report.
type mutingCascade struct {
	// Wanted is true to mute, false to unmute.
	Wanted bool
	// ReportID is the report that asked for it (report_id of history entries).
	ReportID string
	// Report is the in-memory report being processed: when it is itself a
	// registration of a muted contact, its tasks are updated in memory (the
	// pipeline saves it once) instead of being written here.
	Report Doc
	// Target is the report's subject (the contact the report names); its
	// info doc, like the root's, gets this report's history entry before any
	// contact is written (see mutingStart).
	Target string
	// Date is T, the cascade's date ("": now); a resumed cascade keeps the
	// date of the attempt it finishes.
	Date string
}

// mutingStart is where and how a muting report's cascade starts.
//
// Resuming an interrupted cascade: a cascade writes many docs one by one, and
// a failed store call fails the change, which the daemon retries from the
// report as stored. The retry must finish what the failed attempt left half
// done, and end where an uninterrupted run would have: same reply, same
// contacts, tasks and history. But the first attempt may already have muted
// the target (the retry would answer "already muted" and skip the rest) or,
// for an unmute, unmuted the highest muted ancestor (the retry would start
// lower and miss part of the branch).
//
// So a cascade first appends this report's muting_history entry (muted,
// date, report_id: exactly the entry step 3 writes) to the info docs of its
// root and of the report's target, and only then writes contacts. The entry
// names the report, so it is the record that "this report has started on
// this contact": a report finding its own entry, for the wanted state, last
// in its target's info doc resumes (runs the cascade again, at the date of
// that entry) instead of replying "already muted/unmuted"; an unmute resuming
// starts from the highest ancestor that is still muted or that carries the
// entry. Every step of a cascade is idempotent (a muted task is not muted
// again, a contact in the wanted state is not written, an entry equal to the
// last one is not appended), so running it again only does what is left.
// The final docs equal those of a cascade in the spec's order (entries are
// the same; only the order of the writes differs). The contact's own `muted`
// date could not serve: an unmuted contact has none, and a contact muted
// earlier keeps its older date.
type mutingStart struct {
	Root     Doc
	Date     string
	Resuming bool
}

// mutingPlan finds where the cascade of report reportID for target starts,
// and whether an earlier attempt of the same report already started it.
func mutingPlan(ctx context.Context, env *Env, target Doc, wanted bool, reportID string) (mutingStart, error) {
	start := mutingStart{Root: mutingRoot(target, wanted), Date: ISO(env.Now)}
	targetID, _ := target["_id"].(string)
	if reportID == "" || targetID == "" || env.Sentinel == nil {
		return start, nil
	}
	last, err := mutingLastEntry(ctx, env, targetID)
	if err != nil {
		return start, err
	}
	if !mutingEntryOf(last, wanted, reportID) {
		return start, nil
	}
	start.Resuming = true
	if d, ok := last["date"].(string); ok && d != "" {
		start.Date = d
	}
	if !wanted {
		// The highest ancestor still muted, or already unmuted by this report.
		for _, a := range lineage.Ancestors(target) {
			id, _ := a["_id"].(string)
			if id == "" {
				continue
			}
			if jsv.Truthy(a["muted"]) {
				start.Root = a
				continue
			}
			e, err := mutingLastEntry(ctx, env, id)
			if err != nil {
				return start, err
			}
			if mutingEntryOf(e, wanted, reportID) {
				start.Root = a
			}
		}
	}
	return start, nil
}

// mutingLastEntry is the last muting_history entry of contact id's info doc
// (nil when none).
func mutingLastEntry(ctx context.Context, env *Env, id string) (map[string]any, error) {
	hist, err := mutingHistory(ctx, env, id)
	if err != nil || len(hist) == 0 {
		return nil, err
	}
	return jsv.Map(hist[len(hist)-1]), nil
}

// mutingHistory is the muting_history of contact id's info doc (nil when none).
func mutingHistory(ctx context.Context, env *Env, id string) ([]any, error) {
	info, err := env.Sentinel.Get(ctx, infodoc.ID(id))
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read info doc of %s: %w", id, err)
	}
	hist, _ := info["muting_history"].([]any)
	return hist, nil
}

// mutingEntryOf reports whether history entry e is report reportID's, for wanted.
func mutingEntryOf(e map[string]any, wanted bool, reportID string) bool {
	return e != nil && e["muted"] == wanted && e["report_id"] == reportID
}

// mutingRoot is where a cascade starts: the target for a mute; for an unmute
// the highest ancestor in the target's hydrated lineage that is muted, else
// the target.
func mutingRoot(target Doc, wanted bool) Doc {
	if wanted {
		return target
	}
	root := target
	for _, a := range lineage.Ancestors(target) {
		if jsv.Truthy(a["muted"]) && a["_id"] != nil {
			root = a
		}
	}
	return root
}

// mutingHistoryUpToDate is "history up to date" of cascade step 1: no
// muting_history, or last updated server-side with server_side.muted equal
// to wanted.
func mutingHistoryUpToDate(contact Doc, wanted bool) bool {
	hist, ok := contact["muting_history"]
	if !ok || hist == nil {
		return true
	}
	h := jsv.Map(hist)
	if h == nil || h["last_update"] != "server_side" {
		return false
	}
	m, ok := jsv.Map(h["server_side"])["muted"].(bool)
	return ok && m == wanted
}

// mutingUpdateContact applies cascade step 1 to contact in place: `muted` set
// (kept when already muted and up to date) or removed, and the
// server_side part of a client-maintained muting_history updated. date is
// the cascade's time (ISO). It reports whether the contact changed.
func mutingUpdateContact(contact Doc, wanted bool, date string) bool {
	upToDate := mutingHistoryUpToDate(contact, wanted)
	changed := false
	var historyDate any = date
	if wanted {
		newMuted := any(date)
		if upToDate && jsv.Truthy(contact["muted"]) {
			newMuted = contact["muted"]
		}
		if !jsonSame(contact["muted"], newMuted) {
			contact["muted"] = newMuted
			changed = true
		}
		historyDate = newMuted
	} else if _, ok := contact["muted"]; ok {
		delete(contact, "muted")
		changed = true
	}
	if !upToDate {
		if h := jsv.Map(contact["muting_history"]); h != nil {
			h["server_side"] = map[string]any{"muted": wanted, "date": historyDate}
			h["last_update"] = "server_side"
			changed = true
		}
	}
	return changed
}

// jsonSame compares two JSON scalars (strings, numbers, booleans, null).
func jsonSame(a, b any) bool {
	switch a.(type) {
	case map[string]any, []any:
		return false
	}
	switch b.(type) {
	case map[string]any, []any:
		return false
	}
	return a == b
}

// mutingUpdateTasks applies cascade step 2 to one registration in place:
// mute turns `scheduled` and `pending` tasks into `muted`; unmute turns
// `muted` tasks due at or after startOfToday back into `scheduled` (a task
// whose due time cannot be read counts as not past). It reports whether a
// task changed.
func mutingUpdateTasks(reg Doc, wanted bool, startOfToday, now time.Time, loc *time.Location) bool {
	changed := false
	for _, t := range jsv.Slice(reg["scheduled_tasks"]) {
		task := jsv.Map(t)
		if task == nil {
			continue
		}
		state := task["state"]
		if wanted {
			if state == messages.StateScheduled || state == messages.StatePending {
				changed = messages.SetState(task, messages.StateMuted, nil, "", false, now) || changed
			}
			continue
		}
		if state != messages.StateMuted {
			continue
		}
		if due, ok := schedule.DueOf(task, reg, loc); ok && due.Before(startOfToday) {
			continue
		}
		changed = messages.SetState(task, messages.StateScheduled, nil, "", false, now) || changed
	}
	return changed
}

// mutingHistoryEntry is one muting_history entry of an info doc.
func mutingHistoryEntry(wanted bool, date, reportID string) map[string]any {
	e := map[string]any{"muted": wanted, "date": date}
	if reportID != "" {
		e["report_id"] = reportID
	}
	return e
}

// mutingAppendHistory appends entry to info["muting_history"] unless the last
// entry already has the same `muted` and `report_id`. It reports whether the
// info doc changed.
func mutingAppendHistory(info Doc, entry map[string]any) bool {
	hist, _ := info["muting_history"].([]any)
	if n := len(hist); n > 0 {
		last := jsv.Map(hist[n-1])
		if last != nil && last["muted"] == entry["muted"] && last["report_id"] == entry["report_id"] {
			return false
		}
	}
	info["muting_history"] = append(hist, entry)
	return true
}

// mutingStartOfToday is local midnight of the processing time.
func mutingStartOfToday(env *Env) time.Time {
	return schedule.StartOfDay(env.Now.In(env.Location))
}

// run performs the cascade from root (a hydrated or stored contact) and
// returns the contacts it covered, as updated.
func (m mutingCascade) run(ctx context.Context, env *Env, root Doc) ([]Doc, error) {
	ids, err := m.contactIDs(ctx, env, root)
	if err != nil {
		return nil, err
	}
	rootID := ids[0]
	date := m.Date
	if date == "" {
		date = ISO(env.Now)
	}
	// This report's entry first in the root's and the target's info docs:
	// the mark a retry resumes from (mutingStart).
	if m.ReportID != "" {
		entry := mutingHistoryEntry(m.Wanted, date, m.ReportID)
		marked := []string{rootID}
		if m.Target != "" && m.Target != rootID {
			marked = append(marked, m.Target)
		}
		for _, id := range marked {
			if err := mutingUpdateInfo(ctx, env, id, func(info Doc) bool { return mutingAppendHistory(info, entry) }); err != nil {
				return nil, err
			}
		}
	}
	var all []Doc
	for start := 0; start < len(ids); start += mutingBatchSize {
		end := min(start+mutingBatchSize, len(ids))
		contacts, err := m.batch(ctx, env, ids[start:end], date)
		if err != nil {
			return all, err
		}
		all = append(all, contacts...)
	}
	return all, nil
}

// contactIDs lists the contacts a cascade from root covers: the root first,
// then its descendants.
func (m mutingCascade) contactIDs(ctx context.Context, env *Env, root Doc) ([]string, error) {
	rootID, _ := root["_id"].(string)
	if rootID == "" {
		return nil, fmt.Errorf("contact to %s has no _id", mutingVerb(m.Wanted))
	}
	desc, err := env.Store.DescendantIDs(ctx, rootID)
	if err != nil {
		return nil, fmt.Errorf("find descendants of %s: %w", rootID, err)
	}
	ids := []string{rootID}
	seen := map[string]bool{rootID: true}
	for _, id := range desc {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// batch runs the three steps of the cascade on one batch of contact ids.
func (m mutingCascade) batch(ctx context.Context, env *Env, ids []string, date string) ([]Doc, error) {
	got, err := env.Store.GetMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	var contacts []Doc
	for _, id := range ids {
		if c := got[id]; c != nil {
			contacts = append(contacts, c)
		}
	}
	// 1. contacts
	for i, c := range contacts {
		if !mutingUpdateContact(c, m.Wanted, date) {
			continue
		}
		saved, err := mutingSave(ctx, env, c, func(fresh Doc) bool { return mutingUpdateContact(fresh, m.Wanted, date) })
		if err != nil {
			return nil, fmt.Errorf("save contact %v: %w", c["_id"], err)
		}
		if saved != nil {
			contacts[i] = saved
		}
	}
	// 2. registrations
	var subjectIDs []string
	for _, c := range contacts {
		subjectIDs = append(subjectIDs, registrations.SubjectIDs(c)...)
	}
	if err := mutingRegistrations(ctx, env, subjectIDs, m.Wanted, m.Report); err != nil {
		return nil, err
	}
	// 3. info docs
	for _, c := range contacts {
		id, _ := c["_id"].(string)
		entry := mutingHistoryEntry(m.Wanted, date, m.ReportID)
		if err := mutingUpdateInfo(ctx, env, id, func(info Doc) bool { return mutingAppendHistory(info, entry) }); err != nil {
			return nil, err
		}
	}
	return contacts, nil
}

// mutingRegistrations is cascade step 2 for the valid registrations of ids;
// changed registrations are saved (re-read and re-applied on 409). The
// in-memory report, when it is one of them, is updated in place only.
func mutingRegistrations(ctx context.Context, env *Env, ids []string, wanted bool, report Doc) error {
	regs, err := registrations.Valid(ctx, env.Store, env.Settings(), ids)
	if err != nil {
		return err
	}
	today := mutingStartOfToday(env)
	apply := func(reg Doc) bool { return mutingUpdateTasks(reg, wanted, today, env.Now, env.Location) }
	reportID, _ := report["_id"].(string)
	for _, reg := range regs {
		if reportID != "" && reg["_id"] == reportID {
			apply(report)
			continue
		}
		if !apply(reg) {
			continue
		}
		if _, err := mutingSave(ctx, env, reg, apply); err != nil {
			return fmt.Errorf("save registration %v: %w", reg["_id"], err)
		}
	}
	return nil
}

// mutingSave writes doc to the main db. On a 409 it re-reads the doc and
// re-applies the change with apply (which reports whether anything is left
// to change). It returns the doc as saved (nil when nothing was written).
func mutingSave(ctx context.Context, env *Env, doc Doc, apply func(Doc) bool) (Doc, error) {
	id, _ := doc["_id"].(string)
	for attempt := 0; ; attempt++ {
		err := env.Store.Put(ctx, doc)
		if err == nil {
			return doc, nil
		}
		if !IsConflict(err) || attempt+1 >= mutingSaveAttempts {
			return nil, err
		}
		fresh, err := env.Store.Get(ctx, id)
		if IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if !apply(fresh) {
			return nil, nil
		}
		doc = fresh
	}
}

// mutingUpdateInfo is a read-modify-write of doc id's info doc in the
// sentinel db (created when missing), retried on 409, keeping every field
// apply does not touch. apply reports whether there is anything to write.
func mutingUpdateInfo(ctx context.Context, env *Env, id string, apply func(info Doc) bool) error {
	if env.Sentinel == nil {
		return fmt.Errorf("update info doc of %s: no sentinel db", id)
	}
	for attempt := 0; attempt < 10; attempt++ {
		info, err := env.Sentinel.Get(ctx, infodoc.ID(id))
		if IsNotFound(err) {
			info, err = infodoc.New(id), nil
		}
		if err != nil {
			return fmt.Errorf("read info doc of %s: %w", id, err)
		}
		if !apply(info) {
			return nil
		}
		err = env.Sentinel.Put(ctx, info)
		if err == nil {
			return nil
		}
		if !IsConflict(err) {
			return fmt.Errorf("save info doc of %s: %w", id, err)
		}
	}
	return fmt.Errorf("save info doc of %s: gave up after repeated conflicts", id)
}

// mutingReplayOrder lists the reports to replay after a cascade for the
// client-processed report reportID: from each contact, the client_side
// history entries after the (first) entry of reportID, entries without
// report_id or date ignored; sorted by date compared as strings (stable);
// the first occurrence of each report_id kept.
func mutingReplayOrder(contacts []Doc, reportID string) []string {
	type entry struct{ date, id string }
	var all []entry
	for _, c := range contacts {
		found := false
		for _, e := range jsv.Slice(jsv.Map(jsv.Map(c["muting_history"]))["client_side"]) {
			m := jsv.Map(e)
			if m == nil {
				continue
			}
			rid, ok := m["report_id"].(string)
			if !ok || rid == "" {
				continue
			}
			if !found {
				found = rid == reportID
				continue
			}
			if d, ok := m["date"]; !ok || d == nil {
				continue
			}
			all = append(all, entry{date: jsv.String(m["date"]), id: rid})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].date < all[j].date })
	var out []string
	seen := map[string]bool{}
	for _, e := range all {
		if !seen[e.id] {
			seen[e.id] = true
			out = append(out, e.id)
		}
	}
	return out
}

func mutingVerb(wanted bool) string {
	if wanted {
		return "mute"
	}
	return "unmute"
}
