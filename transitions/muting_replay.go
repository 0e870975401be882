package transitions

import (
	"context"
	"fmt"

	"sentinel-go/infodoc"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
)

// The replay of the reports an offline client processed after a
// client-side muting report (muting.md "Client-side history"), and how a
// retry finds where an interrupted replay stopped.

// mutingProgress is how far earlier attempts at a client-side report R got.
//
// A client-side report's run is R's cascade, then one step per replayed
// report X: its cascade, its save and its info record. A failed store call
// anywhere fails the change, which the daemon retries from R as stored. Run
// again from the start, R's cascade would append R's entry once more to
// every contact the replay has since given a later entry (the append only
// skips an entry equal to the last one), move registrations' tasks back and
// forth, and every replayed report would be saved and recorded again: the
// contacts end in the same state, the history and the docs do not.
//
// So a retry first reads what the earlier attempts left. The history is the
// log: R's cascade appends R's entry to every contact it covers, and a step's
// cascade appends X's entry to the contacts it covers, which include the
// contact whose client_side history named X. An entry of a replayed report
// after R's first entry, in the info doc of a contact that listed it, says
// that its step started in this run of R (R is being processed for the
// first time, so its entries are this run's). A step's save is bracketed by
// the journal of the replayed report's info doc (infodoc.PendingKey, as the
// engine does for a change): written before the step's cascade with the
// report's revision and its transitions records, replaced by the records
// once the report is saved. A journal at a revision the report has left
// says the step was saved and only its record is missing.
//
// Steps run in order and stop at the first failure, so every step before the
// last started one is done, R's cascade with them. The retry skips them (and
// R's cascade), settles the last started step (done, saved but not
// recorded, or to finish: its cascade resumes from its own marks, see
// mutingStart) and runs the rest.
//
// Not told apart: a step whose cascade covers no contact that listed it
// leaves no entry where it is looked for (the hierarchy changed since the
// client processed it), and another writer appending entries to the same
// info docs between two attempts; such a retry may repeat entries as before.
type mutingProgress struct {
	// Order is the replay order (mutingReplayOrder).
	Order []string
	// Started is the index in Order of the last step an earlier attempt
	// started, or -1: then R's cascade is to be run (again) and the replay
	// starts at the first step.
	Started int
}

// progress finds how far earlier attempts at this client-side report got,
// from root (where its cascade starts). Started is -1 when none can have got
// past the cascade: the report's entry is not even in its target's history.
func (m mutingCascade) progress(ctx context.Context, env *Env, root Doc) (mutingProgress, error) {
	none := mutingProgress{Started: -1}
	if m.ReportID == "" || m.Target == "" || env.Sentinel == nil {
		return none, nil
	}
	hist, err := mutingHistory(ctx, env, m.Target)
	if err != nil {
		return none, err
	}
	if mutingAnchor(hist, m.Wanted, m.ReportID) < 0 {
		return none, nil
	}
	ids, err := m.contactIDs(ctx, env, root)
	if err != nil {
		return none, err
	}
	var contacts []Doc
	for start := 0; start < len(ids); start += mutingBatchSize {
		batch := ids[start:min(start+mutingBatchSize, len(ids))]
		got, err := env.Store.GetMany(ctx, batch)
		if err != nil {
			return none, fmt.Errorf("read contacts: %w", err)
		}
		for _, id := range batch {
			if c := got[id]; c != nil {
				contacts = append(contacts, c)
			}
		}
	}
	p := mutingProgress{Order: mutingReplayOrder(contacts, m.ReportID), Started: -1}
	if len(p.Order) == 0 {
		return p, nil
	}
	step := make(map[string]int, len(p.Order))
	for i, id := range p.Order {
		step[id] = i
	}
	// Entries after the report's own, in the contacts that listed the steps.
	for _, c := range contacts {
		if !mutingListsReport(c, m.ReportID) {
			continue
		}
		id, _ := c["_id"].(string)
		hist, err := mutingHistory(ctx, env, id)
		if err != nil {
			return none, err
		}
		anchor := mutingAnchor(hist, m.Wanted, m.ReportID)
		if anchor < 0 {
			continue
		}
		for _, e := range hist[anchor+1:] {
			rid, _ := jsv.Map(e)["report_id"].(string)
			if i, ok := step[rid]; ok && i > p.Started {
				p.Started = i
			}
		}
	}
	// Journals of saved steps (the later ones: a step leaves no entry when
	// its report names no contact).
	later := p.Order[p.Started+1:]
	if len(later) == 0 {
		return p, nil
	}
	docs, err := env.Store.GetMany(ctx, later)
	if err != nil {
		return none, fmt.Errorf("read replayed reports: %w", err)
	}
	first := p.Started + 1
	for i, id := range later {
		d := docs[id]
		if d == nil || id == m.ReportID {
			continue
		}
		info, err := env.Sentinel.Get(ctx, infodoc.ID(id))
		if IsNotFound(err) {
			continue
		}
		if err != nil {
			return none, fmt.Errorf("read info doc of %s: %w", id, err)
		}
		if j := jsv.Map(info[infodoc.PendingKey]); j != nil && j["rev"] != d["_rev"] {
			p.Started = first + i
		}
	}
	return p, nil
}

// mutingAnchor is the index of the first entry of report reportID (for
// wanted) in a muting_history, or -1.
func mutingAnchor(hist []any, wanted bool, reportID string) int {
	for i, e := range hist {
		if mutingEntryOf(jsv.Map(e), wanted, reportID) {
			return i
		}
	}
	return -1
}

// mutingListsReport reports whether contact's client_side history has an
// entry of reportID (the contacts the replay order is read from).
func mutingListsReport(contact Doc, reportID string) bool {
	for _, e := range jsv.Slice(jsv.Map(jsv.Map(contact["muting_history"]))["client_side"]) {
		if rid, _ := jsv.Map(e)["report_id"].(string); rid == reportID {
			return true
		}
	}
	return false
}

// replay re-runs, in order, the muting reports an offline client processed
// after the change's report (Behaviour A, forced), each finalized like a
// normal change, from the last step an earlier attempt started. The change's
// own report is re-run on the in-memory doc, which the pipeline saves. It
// stops at the first failure.
func (t *muting) replay(ctx context.Context, env *Env, c *Change, p mutingProgress) error {
	for i, id := range p.Order {
		if i < p.Started {
			continue
		}
		if id == c.ID {
			if err := mutingRefreshSubjects(ctx, env, c.Doc); err != nil {
				return fmt.Errorf("replay %s: %w", id, err)
			}
			if _, err := t.runReport(ctx, env, c, c.Doc, true); err != nil {
				return fmt.Errorf("replay %s: %w", id, err)
			}
			continue
		}
		if err := t.replayOne(ctx, env, c, id, i == p.Started); err != nil {
			return fmt.Errorf("replay %s: %w", id, err)
		}
	}
	return nil
}

// mutingRefreshSubjects re-reads a report's patient and place (the cascade
// changed them since the change was hydrated).
func mutingRefreshSubjects(ctx context.Context, env *Env, doc Doc) error {
	h := lineage.New(env.Store)
	patientKey, placeKey := lineage.SubjectKeys(doc)
	for _, sk := range [2][2]string{{patientKey, "patient"}, {placeKey, "place"}} {
		key, field := sk[0], sk[1]
		if key == "" {
			continue
		}
		s, err := h.Subject(ctx, key)
		if err != nil {
			return err
		}
		if s != nil {
			doc[field] = s
		} else {
			delete(doc, field)
		}
	}
	return nil
}

// replayOne loads, hydrates and re-runs one report, then saves it and
// records the run in its info doc, the save bracketed by a journal
// (mutingProgress). started says an earlier attempt started this step: a
// journal at the report's revision means it is to be finished, one at an
// older revision that only the record is missing, none that it is done. A
// missing report or one that is not a muting report is passed over.
func (t *muting) replayOne(ctx context.Context, env *Env, c *Change, id string, started bool) error {
	if env.Sentinel == nil {
		return fmt.Errorf("update info doc of %s: no sentinel db", id)
	}
	unsaved := "" // the revision of a save that conflicted, journaled by this call
	for attempt := 0; ; attempt++ {
		raw, err := env.Store.Get(ctx, id)
		if IsNotFound(err) {
			env.Log.Info().Str("doc_id", c.ID).Str("replayed_id", id).Msg("Client-side muting report not found: not replayed")
			return nil
		}
		if err != nil {
			return err
		}
		rev, _ := raw["_rev"].(string)
		info, err := env.Sentinel.Get(ctx, infodoc.ID(id))
		if IsNotFound(err) {
			info, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("read info doc of %s: %w", id, err)
		}
		if j := jsv.Map(info[infodoc.PendingKey]); j != nil && j["rev"] != rev && j["rev"] != unsaved {
			// Saved by an earlier attempt: its records stand.
			records := jsv.Map(j["transitions"])
			return mutingUpdateInfo(ctx, env, id, func(info Doc) bool {
				if records != nil {
					info["transitions"] = records
				}
				delete(info, infodoc.PendingKey)
				return true
			})
		} else if j == nil && started && attempt == 0 {
			return nil // done by an earlier attempt, record and all
		}
		doc := jsv.CloneMap(raw)
		if err := lineage.New(env.Store).Hydrate(ctx, doc); err != nil {
			return err
		}
		if !t.isMutingReport(env, doc) {
			return nil
		}
		record := map[string]any{"last_rev": rev, "seq": nil, "ok": true, "run_date": ISO(env.Now)}
		records := func(info Doc) map[string]any {
			ts := jsv.CloneMap(jsv.Map(info["transitions"]))
			if ts == nil {
				ts = map[string]any{}
			}
			ts[t.Name()] = record
			return ts
		}
		if err := mutingUpdateInfo(ctx, env, id, func(info Doc) bool {
			info[infodoc.PendingKey] = map[string]any{"rev": rev, "transitions": records(info)}
			return true
		}); err != nil {
			return err
		}
		changed, err := t.runReport(ctx, env, c, doc, true)
		if err != nil {
			return err
		}
		if !changed {
			return mutingUpdateInfo(ctx, env, id, func(info Doc) bool {
				_, had := info[infodoc.PendingKey]
				delete(info, infodoc.PendingKey)
				return had
			})
		}
		saved := lineage.Minify(doc)
		saved["_rev"] = rev
		err = env.Store.Put(ctx, saved)
		if IsConflict(err) && attempt+1 < mutingSaveAttempts {
			unsaved = rev
			continue
		}
		if err != nil {
			return fmt.Errorf("save: %w", err)
		}
		return mutingUpdateInfo(ctx, env, id, func(info Doc) bool {
			info["transitions"] = records(info)
			delete(info, infodoc.PendingKey)
			return true
		})
	}
}
