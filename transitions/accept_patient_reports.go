package transitions

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/messages"
	"sentinel-go/registrations"
	"sentinel-go/schedule"
)

// acceptPatientReports accepts a report about an existing patient or place
// (a "visit"): it links the report to the subject's latest registration,
// replies, silences the reminders the visit answers and records which sent
// reminder it responds to (transitions/accept_patient_reports.md).
type acceptPatientReports struct {
	entries []reportEntry
}

// reportEntry is one entry of `patient_reports` or `accept_case_reports`;
// both keys share the same shape.
type reportEntry struct {
	form string
	// silenceTypes are the schedule names (task types) to clear; empty means
	// no silencing.
	silenceTypes []string
	// silenceFor is the window after reported_date; nil when not set (clear
	// every clearable task of the types). An unparseable value acts as 0.
	silenceFor  *schedule.Duration
	validations compiledValidations
	messages    []map[string]any
	msgExprs    []boolExpr
}

// parseReportEntries reads the array at settings[key]. Entries must be
// objects with a string `form`; a bad `silence_for` is only a warning.
func parseReportEntries(s *config.Settings, key string) ([]reportEntry, []config.Problem) {
	raw, present := s.Raw[key]
	if !present || raw == nil {
		return nil, []config.Problem{config.Warnf(key, "no `%s` configured: the transition accepts no report", key)}
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, []config.Problem{config.Errorf(key, "`%s` must be an array of objects", key)}
	}
	var problems []config.Problem
	var entries []reportEntry
	for i, r := range list {
		rp := fmt.Sprintf("%s[%d]", key, i)
		rm := jsv.Map(r)
		if rm == nil {
			problems = append(problems, config.Errorf(rp, "must be an object"))
			continue
		}
		e := reportEntry{messages: messageEntries(rm["messages"])}
		form, ok := rm["form"].(string)
		if !ok || form == "" {
			// The rest of the entry is still checked, so that every problem
			// shows at once; the entry is not used.
			problems = append(problems, config.Errorf(rp+".form", "must be a non-empty string (the form code)"))
		}
		e.form = form
		e.silenceTypes, problems = parseSilenceType(rm["silence_type"], rp+".silence_type", problems)
		e.silenceFor, problems = parseSilenceFor(rm["silence_for"], rp+".silence_for", problems)
		var ps []config.Problem
		e.validations, ps = compileValidations(rm["validations"], rp)
		problems = append(problems, ps...)
		if v := rm["messages"]; v != nil {
			if _, ok := v.([]any); !ok {
				problems = append(problems, config.Warnf(rp+".messages", "must be an array: no message is sent"))
			}
		}
		for j, m := range e.messages {
			be, ps := compileBoolExpr(m["bool_expr"], fmt.Sprintf("%s.messages[%d].bool_expr", rp, j))
			problems = append(problems, ps...)
			e.msgExprs = append(e.msgExprs, be)
		}
		if e.form != "" {
			entries = append(entries, e)
		}
	}
	return entries, problems
}

// parseSilenceType reads `silence_type`: comma-separated names, items
// trimmed, empty items dropped. An array of names is accepted as well.
func parseSilenceType(v any, path string, problems []config.Problem) ([]string, []config.Problem) {
	var parts []string
	switch x := v.(type) {
	case nil:
		return nil, problems
	case string:
		parts = strings.Split(x, ",")
	case []any:
		for _, p := range x {
			if s, ok := p.(string); ok {
				parts = append(parts, s)
			}
		}
	default:
		return nil, append(problems, config.Warnf(path, "must be a comma-separated string of schedule names: nothing is silenced"))
	}
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, problems
}

// parseSilenceFor reads `silence_for`. Absent, null and "" mean "not set";
// anything else that is not "<integer> <unit>" acts as 0 (README
// "Durations"), with a warning.
func parseSilenceFor(v any, path string, problems []config.Problem) (*schedule.Duration, []config.Problem) {
	if v == nil || v == "" {
		return nil, problems
	}
	if s, ok := v.(string); ok {
		if d, ok := schedule.ParseDuration(s); ok {
			return &d, problems
		}
	}
	zero := schedule.Duration{N: 0, Unit: "day"}
	return &zero, append(problems, config.Warnf(path,
		`%s is not a duration such as "8 days": it acts as 0 (only reminders due by the report's date are silenced)`, jsv.String(v)))
}

// entryForForm is the first entry whose form equals doc.form exactly.
func entryForForm(entries []reportEntry, doc Doc) *reportEntry {
	form, _ := doc["form"].(string)
	if form == "" {
		return nil
	}
	for i := range entries {
		if entries[i].form == form {
			return &entries[i]
		}
	}
	return nil
}

// filterReport is the filter shared by accept_patient_reports and
// accept_case_reports.
func filterReport(env *Env, c *Change, name string, entries []reportEntry) bool {
	doc := c.Doc
	if doc["type"] != "data_record" || !jsv.Truthy(doc["form"]) || !jsv.Truthy(doc["reported_date"]) {
		return false
	}
	if entryForForm(entries, doc) == nil || c.HasRun(name) {
		return false
	}
	return IsValidSubmission(env, doc)
}

func newAcceptPatientReports(s *config.Settings, path string) (Transition, []config.Problem) {
	entries, problems := parseReportEntries(s, "patient_reports")
	return &acceptPatientReports{entries: entries}, problems
}

func (*acceptPatientReports) Name() string { return "accept_patient_reports" }

func (t *acceptPatientReports) Filter(env *Env, c *Change) bool {
	return filterReport(env, c, t.Name(), t.entries)
}

func (t *acceptPatientReports) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	e := entryForForm(t.entries, doc)
	if e == nil {
		return false, nil
	}
	if failed, err := validate(ctx, env, doc, e.validations, map[string]any{"patient": doc["patient"]}); failed || err != nil {
		return failed, err
	}
	patient, place := jsv.Map(doc["patient"]), jsv.Map(doc["place"])
	if patient == nil && place == nil {
		addRejection(env, doc, e.messages, "registration_not_found", nil)
		return true, nil
	}
	var patientRegs, placeRegs []Doc
	var err error
	if patient != nil {
		if patientRegs, err = registrations.Valid(ctx, env.Store, env.Settings(), registrations.SubjectIDs(patient)); err != nil {
			return false, err
		}
	}
	if place != nil {
		if placeRegs, err = registrations.Valid(ctx, env.Store, env.Settings(), registrations.SubjectIDs(place)); err != nil {
			return false, err
		}
	}
	extra := map[string]any{"patient": doc["patient"], "registrations": docsAny(patientRegs),
		"place": doc["place"], "placeRegistrations": docsAny(placeRegs)}
	if err := acceptedReplies(ctx, env, doc, e, extra); err != nil {
		return false, err
	}
	// A registration about both the patient and the place is found twice:
	// keep one object per _id so that it is silenced and saved once and the
	// second write reuses the _rev of the first.
	all := uniqueDocs(append(append([]Doc{}, patientRegs...), placeRegs...))
	if latest := latestReported(all, env.Location); latest != nil {
		doc["registration_id"] = latest["_id"]
	}
	reportID, _ := doc["_id"].(string)
	visit := reportTime(env, doc)
	if err := silence(ctx, env, e, all, reportID, visit); err != nil {
		return false, err
	}
	var silenceFor schedule.Duration
	if e.silenceFor != nil {
		silenceFor = *e.silenceFor
	}
	// The report itself is never marked as answering its own reminders (and
	// saving it here would conflict with the pipeline's save of the report).
	reg, task := findRespondedTo(without(all, reportID), visit, silenceFor, env.Location)
	if task != nil && addRespondedToBy(task, reportID) {
		if err := env.Store.Put(ctx, reg); err != nil {
			return false, fmt.Errorf("save responded_to_by on registration %v: %w", reg["_id"], err)
		}
	}
	return true, nil
}

// acceptedReplies adds every report_accepted message whose bool_expr passes
// (global `doc`: the report). A throwing bool_expr fails the transition.
func acceptedReplies(ctx context.Context, env *Env, doc Doc, e *reportEntry, extra map[string]any) error {
	for i, m := range e.messages {
		if m["event_type"] != "report_accepted" {
			continue
		}
		ok, err := e.msgExprs[i].eval(ctx, env, map[string]any{"doc": doc})
		if err != nil {
			return fmt.Errorf("messages[%d].bool_expr: %w", i, err)
		}
		if ok {
			_, _ = env.Generator().Add(doc, messages.SpecOf(m), extra, messages.AddOptions{})
		}
	}
	return nil
}

// silence clears the entry's silence_type tasks on every registration but
// the report itself and saves each changed registration at once (Put stores
// the new _rev in the doc, so a later save of the same object succeeds).
func silence(ctx context.Context, env *Env, e *reportEntry, regs []Doc, reportID string, reported time.Time) error {
	if len(e.silenceTypes) == 0 {
		return nil
	}
	for _, reg := range silenceRegistrations(regs, reportID, e.silenceTypes, e.silenceFor, reported, env.Now, env.Location) {
		if err := env.Store.Put(ctx, reg); err != nil {
			return fmt.Errorf("save silenced registration %v: %w", reg["_id"], err)
		}
	}
	return nil
}

// silenceRegistrations applies "Tasks to clear" to regs (the report itself
// excluded) in memory and returns the registrations that changed.
func silenceRegistrations(regs []Doc, reportID string, types []string, silenceFor *schedule.Duration,
	reported, now time.Time, loc *time.Location) []Doc {
	var changed []Doc
	for _, reg := range without(regs, reportID) {
		if schedule.Clear(reg, types, silenceFor, reported, reportID, now, loc) {
			changed = append(changed, reg)
		}
	}
	return changed
}

// findRespondedTo finds the reminder a visit at time visit answers
// ("Which registration the visit responds to"). For each registration, in
// order, its scheduled tasks sorted by due: skip the registration when the
// visit is before the first due; walk from the latest task to the earliest:
// a task whose due minus silenceFor is before the visit, that is cleared and
// whose previous task is of another group means a new group was just
// silenced, so the visit answers nothing in this registration; otherwise the
// first task due before the visit in state sent or delivered is the answer.
func findRespondedTo(regs []Doc, visit time.Time, silenceFor schedule.Duration, loc *time.Location) (Doc, map[string]any) {
	type dated struct {
		task map[string]any
		due  time.Time
	}
	for _, reg := range regs {
		var tasks []dated
		for _, t := range jsv.Slice(reg["scheduled_tasks"]) {
			task := jsv.Map(t)
			if task == nil {
				continue
			}
			// A task without a readable due cannot be placed in time: left out.
			if due, ok := schedule.DueOf(task, reg, loc); ok {
				tasks = append(tasks, dated{task, due})
			}
		}
		if len(tasks) == 0 {
			continue
		}
		sort.SliceStable(tasks, func(i, j int) bool { return tasks[i].due.Before(tasks[j].due) })
		if visit.Before(tasks[0].due) {
			continue
		}
		for i := len(tasks) - 1; i >= 0; i-- {
			t := tasks[i]
			if silenceFor.SubFrom(t.due).Before(visit) && t.task["state"] == messages.StateCleared &&
				i > 0 && !reflect.DeepEqual(tasks[i-1].task["group"], t.task["group"]) {
				break
			}
			if st := t.task["state"]; t.due.Before(visit) && (st == messages.StateSent || st == messages.StateDelivered) {
				return reg, t.task
			}
		}
	}
	return nil, nil
}

// addRespondedToBy pushes reportID onto task.responded_to_by; false when it
// is already there (a reprocessed report is not listed twice).
func addRespondedToBy(task map[string]any, reportID string) bool {
	list := jsv.Slice(task["responded_to_by"])
	for _, v := range list {
		if v == reportID {
			return false
		}
	}
	task["responded_to_by"] = append(list, reportID)
	return true
}

// latestReported is the doc with the latest reported_date (the first one on
// ties; docs without a readable date come last), nil for none.
func latestReported(docs []Doc, loc *time.Location) Doc {
	var best Doc
	var bestT time.Time
	bestOK := false
	for _, d := range docs {
		t, ok := reportedDateOf(d, loc)
		switch {
		case best == nil:
			best, bestT, bestOK = d, t, ok
		case ok && (!bestOK || t.After(bestT)):
			best, bestT, bestOK = d, t, ok
		}
	}
	return best
}

func reportedDateOf(d Doc, loc *time.Location) (time.Time, bool) {
	if d["reported_date"] == nil {
		return time.Time{}, false
	}
	return schedule.DueOf(map[string]any{}, d, loc)
}

// reportTime is the report's reported_date, or the processing time when it
// cannot be read.
func reportTime(env *Env, doc Doc) time.Time {
	if t, ok := reportedDateOf(doc, env.Location); ok {
		return t
	}
	return env.Now
}

// uniqueDocs keeps the first doc of each _id, in order.
func uniqueDocs(docs []Doc) []Doc {
	seen := map[string]bool{}
	var out []Doc
	for _, d := range docs {
		id := jsv.String(d["_id"])
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, d)
	}
	return out
}

// without returns docs minus the one whose _id is id.
func without(docs []Doc, id string) []Doc {
	var out []Doc
	for _, d := range docs {
		if id != "" && d["_id"] == id {
			continue
		}
		out = append(out, d)
	}
	return out
}

// WhyNot says why Filter is false (sentinel explain).
func (t *acceptPatientReports) WhyNot(env *Env, c *Change) string {
	if r := whyNotReport(c, ""); r != "" {
		return r
	}
	if !jsv.Truthy(c.Doc["reported_date"]) {
		return "the report has no reported_date"
	}
	if entryForForm(t.entries, c.Doc) == nil {
		return fmt.Sprintf("form %s matches no patient_reports[].form", jsonText(c.Doc["form"]))
	}
	if c.HasRun(t.Name()) {
		return whyNotReport(c, t.Name())
	}
	return whyNotSubmission(env, c.Doc)
}
