package transitions

import (
	"context"
	"fmt"
	"time"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/registrations"
	"sentinel-go/schedule"
)

// muting mutes or unmutes a person or place on request (a mute/unmute
// report), cascading down to descendants (unmute: from the highest muted
// ancestor), moves their registrations' tasks to `muted` and back, logs
// every change in the contacts' info docs, mutes contacts created under a
// muted place and takes over what offline clients did (muting.md).
type muting struct {
	muteForms, unmuteForms []string
	validations            compiledValidations
	messages               []map[string]any
}

// mutingEvents are the event types muting's messages may use.
var mutingEvents = map[string]bool{"mute": true, "unmute": true, "already_muted": true,
	"already_unmuted": true, "contact_not_found": true}

func newMuting(s *config.Settings, path string) (Transition, []config.Problem) {
	raw, present := s.Raw["muting"]
	cfg := jsv.Map(raw)
	mute, isArray := cfg["mute_forms"].([]any)
	if !isArray || len(mute) == 0 {
		p := "muting.mute_forms"
		if present && cfg == nil {
			p = "muting"
		}
		// Its validations are still checked, so that every problem shows at once.
		_, ps := compileValidations(cfg["validations"], "muting")
		return nil, append([]config.Problem{config.Errorf(p,
			"Configuration error. Config must have a 'muting.mute_forms' array defined.")}, ps...)
	}
	t := &muting{messages: messageEntries(cfg["messages"])}
	var problems []config.Problem
	t.muteForms, problems = mutingFormList(mute, "muting.mute_forms")
	if len(t.muteForms) == 0 {
		problems = append(problems, config.Errorf("muting.mute_forms", "mute_forms has no form code (strings)"))
	}
	switch u := cfg["unmute_forms"].(type) {
	case nil:
	case []any:
		var ps []config.Problem
		t.unmuteForms, ps = mutingFormList(u, "muting.unmute_forms")
		problems = append(problems, ps...)
	default:
		problems = append(problems, config.Warnf("muting.unmute_forms", "unmute_forms must be an array of form codes: ignored"))
	}
	for _, f := range t.unmuteForms {
		for _, g := range t.muteForms {
			if formMatchesLoose(g, f) {
				problems = append(problems, config.Warnf("muting.unmute_forms",
					"form %q is also a mute form: its reports mute", f))
			}
		}
	}
	var ps []config.Problem
	t.validations, ps = compileValidations(cfg["validations"], "muting")
	problems = append(problems, ps...)
	for i, m := range jsv.Slice(cfg["messages"]) {
		mp := fmt.Sprintf("muting.messages[%d]", i)
		mm := jsv.Map(m)
		if mm == nil {
			problems = append(problems, config.Warnf(mp, "must be an object: ignored"))
			continue
		}
		if et, _ := mm["event_type"].(string); !mutingEvents[et] {
			problems = append(problems, config.Warnf(mp+".event_type",
				"unknown event_type %q (expected mute, unmute, already_muted, already_unmuted or contact_not_found): never sent", et))
		}
	}
	return t, problems
}

// mutingFormList reads an array of form codes, warning about non-strings.
func mutingFormList(v []any, path string) ([]string, []config.Problem) {
	var out []string
	var problems []config.Problem
	for i, f := range v {
		s, ok := f.(string)
		if !ok || s == "" {
			problems = append(problems, config.Warnf(fmt.Sprintf("%s[%d]", path, i), "form code must be a non-empty string: ignored"))
			continue
		}
		out = append(out, s)
	}
	return out, problems
}

func (*muting) Name() string { return "muting" }

// formWants says whether form is a mute form (true) or an unmute form
// (false); ok is false for other forms. Mute forms are checked first.
func (t *muting) formWants(form string) (wanted, ok bool) {
	for _, f := range t.muteForms {
		if formMatchesLoose(f, form) {
			return true, true
		}
	}
	for _, f := range t.unmuteForms {
		if formMatchesLoose(f, form) {
			return false, true
		}
	}
	return false, false
}

// isMutingReport is filter (A) without the has-run guard.
func (t *muting) isMutingReport(env *Env, doc Doc) bool {
	if doc["type"] != "data_record" {
		return false
	}
	form, _ := doc["form"].(string)
	if _, ok := t.formWants(form); !ok {
		return false
	}
	return IsValidSubmission(env, doc)
}

func (t *muting) Filter(env *Env, c *Change) bool {
	doc := c.Doc
	if doc["type"] == "data_record" {
		return !c.HasRun(t.Name()) && t.isMutingReport(env, doc)
	}
	if !config.IsContact(doc) || env.Settings().ContactTypes.Get(config.TypeOf(doc)) == nil {
		return false
	}
	return mutingClientSide(doc) || mutingNewUnderMuted(env, doc, c.Info)
}

// mutingClientSide reports whether a contact was last updated by an offline
// client (muting_history.last_update == "client_side").
func mutingClientSide(contact Doc) bool {
	return jsv.Map(contact["muting_history"])["last_update"] == "client_side"
}

// mutingNewUnderMuted is filter (B)'s "new contact under a muted ancestor":
// the contact is not muted, its info doc has no muting_history, it was not
// last updated client-side, and an ancestor is muted at a date no later than
// the info doc's initial_replication_date (any muted ancestor counts when
// that is not a valid date; so does an ancestor whose `muted` is not a date).
func mutingNewUnderMuted(env *Env, contact, info Doc) bool {
	if jsv.Truthy(contact["muted"]) || mutingClientSide(contact) {
		return false
	}
	if h, ok := info["muting_history"]; ok && h != nil && !mutingInterruptedNew(info) {
		return false
	}
	replicated, validReplication := mutingTime(info["initial_replication_date"], env.Location)
	for _, a := range lineage.Ancestors(contact) {
		if !jsv.Truthy(a["muted"]) {
			continue
		}
		if !validReplication {
			return true
		}
		muted, ok := mutingTime(a["muted"], env.Location)
		if !ok || !muted.After(replicated) {
			return true
		}
	}
	return false
}

// mutingInterruptedNew reports whether info's muting_history is only the
// entry Behaviour B writes for a new contact under a muted ancestor: one
// entry, muted. Behaviour B writes it before the pipeline saves the contact
// as muted, so when that save (or any later call) fails, the retry finds the
// contact still unmuted with this entry: the contact is still new under a
// muted ancestor, and the retry finishes the job (the entry is not appended
// again: same muted and report_id) instead of leaving the contact unmuted.
// A deliberate reading of "its info doc has no muting_history" that allows
// resuming; the spec's other conditions (no `muted`, a muted ancestor, not
// client-side) still apply.
func mutingInterruptedNew(info Doc) bool {
	hist, _ := info["muting_history"].([]any)
	return len(hist) == 1 && jsv.Map(hist[0])["muted"] == true
}

// mutingTime reads a date given as epoch ms or a date string.
func mutingTime(v any, loc *time.Location) (time.Time, bool) {
	switch x := v.(type) {
	case float64:
		return time.UnixMilli(int64(x)), true
	case string:
		return schedule.ParseTime(x, loc)
	}
	return time.Time{}, false
}

func (t *muting) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	if c.Doc["type"] == "data_record" {
		return t.runReport(ctx, env, c, c.Doc, false)
	}
	return t.runContact(ctx, env, c)
}

// mutingSubjects is the extra template context of muting messages.
func mutingSubjects(doc Doc) map[string]any {
	return map[string]any{"patient": doc["patient"], "place": doc["place"]}
}

// message adds the configured message of eventType, if any; during a replay
// a message identical to an existing task is not added again.
func (t *muting) message(env *Env, doc Doc, eventType string, replaying bool) (messages.Added, bool) {
	e := findEvent(t.messages, eventType)
	if e == nil {
		return messages.Added{}, false
	}
	added, err := env.Generator().Add(doc, messages.SpecOf(e), mutingSubjects(doc), messages.AddOptions{Unique: replaying})
	return added, err == nil
}

// runReport is Behaviour A on report doc (the change's doc, or a report
// being replayed). Replaying reports run forced: no further replay.
func (t *muting) runReport(ctx context.Context, env *Env, c *Change, doc Doc, replaying bool) (bool, error) {
	form, _ := doc["form"].(string)
	wanted, ok := t.formWants(form)
	if !ok {
		return false, nil
	}
	target := jsv.Map(doc["patient"])
	if target == nil {
		target = jsv.Map(doc["place"])
	}
	if target == nil {
		text := `Failed to complete muting request, event type "contact_not_found" misconfigured.`
		if added, ok := t.message(env, doc, "contact_not_found", replaying); ok && added.Text != "" {
			text = added.Text
		}
		messages.AddError(doc, "invalid_report", text)
		return true, nil
	}
	if failed, err := validate(ctx, env, doc, t.validations, mutingSubjects(doc)); failed || err != nil {
		return failed, err
	}
	clientSide := jsv.Truthy(jsv.Map(doc["client_side_transitions"])["muting"])
	reportID, _ := doc["_id"].(string)
	start, err := mutingPlan(ctx, env, target, wanted, reportID)
	if err != nil {
		return false, fmt.Errorf("%s %v: %w", mutingVerb(wanted), target["_id"], err)
	}
	// Already in the wanted state, unless by an interrupted attempt of this
	// very report, which is finished instead (mutingStart).
	if jsv.Truthy(target["muted"]) == wanted && !clientSide && !start.Resuming {
		if wanted {
			t.message(env, doc, "already_muted", replaying)
		} else {
			t.message(env, doc, "already_unmuted", replaying)
		}
		return true, nil
	}
	targetID, _ := target["_id"].(string)
	cascade := mutingCascade{Wanted: wanted, ReportID: reportID, Report: doc, Target: targetID, Date: start.Date}
	progress := mutingProgress{Started: -1}
	if clientSide && !replaying {
		// A retry: an earlier attempt may have finished the cascade and
		// part of the replay, which must not run again (mutingProgress).
		if progress, err = cascade.progress(ctx, env, start.Root); err != nil {
			return false, fmt.Errorf("%s %v: %w", mutingVerb(wanted), target["_id"], err)
		}
	}
	if progress.Started < 0 {
		contacts, err := cascade.run(ctx, env, start.Root)
		if err != nil {
			return false, fmt.Errorf("%s %v: %w", mutingVerb(wanted), target["_id"], err)
		}
		progress.Order = mutingReplayOrder(contacts, reportID)
	}
	t.message(env, doc, mutingVerb(wanted), replaying)
	if clientSide && !replaying {
		if err := t.replay(ctx, env, c, progress); err != nil {
			env.Log.Warn().Str("doc_id", reportID).Err(err).Msg("Replay of client-side muting reports stopped")
			return true, &ChangedError{Err: err}
		}
	}
	return true, nil
}

// runContact is Behaviour B: a contact created under a muted ancestor, or
// last updated by an offline client.
func (t *muting) runContact(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	clientSide := mutingClientSide(doc)
	newUnderMuted := !clientSide && mutingNewUnderMuted(env, doc, c.Info)
	wanted := jsv.Truthy(doc["muted"]) || newUnderMuted
	date := ISO(env.Now)
	if newUnderMuted && mutingInterruptedNew(c.Info) {
		// Finishing an interrupted run: T is the date of its entry.
		if d, ok := jsv.Map(jsv.Slice(c.Info["muting_history"])[0])["date"].(string); ok && d != "" {
			date = d
		}
	}
	if err := mutingRegistrations(ctx, env, registrations.SubjectIDs(doc), wanted, nil); err != nil {
		return false, err
	}
	reportID := ""
	if clientSide {
		cs := jsv.Slice(jsv.Map(doc["muting_history"])["client_side"])
		if n := len(cs); n > 0 {
			reportID, _ = jsv.Map(cs[n-1])["report_id"].(string)
		}
	} else {
		id, err := mutingAncestorReport(ctx, env, doc)
		if err != nil {
			return false, err
		}
		reportID = id
	}
	entry := mutingHistoryEntry(wanted, date, reportID)
	if err := mutingUpdateInfo(ctx, env, c.ID, func(info Doc) bool { return mutingAppendHistory(info, entry) }); err != nil {
		return false, err
	}
	return mutingUpdateContact(doc, wanted, date), nil
}

// mutingAncestorReport is the report_id of the last muting_history entry in
// the info doc of the contact's nearest muted ancestor ("" when none).
func mutingAncestorReport(ctx context.Context, env *Env, contact Doc) (string, error) {
	for _, a := range lineage.Ancestors(contact) {
		if !jsv.Truthy(a["muted"]) {
			continue
		}
		id, _ := a["_id"].(string)
		if id == "" || env.Sentinel == nil {
			return "", nil
		}
		last, err := mutingLastEntry(ctx, env, id)
		if err != nil {
			return "", err
		}
		rid, _ := last["report_id"].(string)
		return rid, nil
	}
	return "", nil
}

// WhyNot says why Filter is false (sentinel explain).
func (t *muting) WhyNot(env *Env, c *Change) string {
	doc := c.Doc
	if doc["type"] == "data_record" {
		if c.HasRun(t.Name()) {
			return whyNotReport(c, t.Name())
		}
		if _, ok := t.formWants(jsv.String(doc["form"])); !ok {
			return fmt.Sprintf("form %s is in neither muting.mute_forms nor muting.unmute_forms", jsonText(doc["form"]))
		}
		return whyNotSubmission(env, doc)
	}
	if !config.IsContact(doc) || env.Settings().ContactTypes.Get(config.TypeOf(doc)) == nil {
		return fmt.Sprintf("neither a report nor a contact of a configured contact type (type %s)", jsonText(doc["type"]))
	}
	return "a contact neither muted client-side nor new under a muted ancestor"
}
