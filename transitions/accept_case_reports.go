package transitions

import (
	"context"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/registrations"
)

// acceptCaseReports accepts a report about a case (a case_id issued by the
// registration's add_case trigger): it copies the case's place to the
// report, replies and silences reminders (transitions/accept_case_reports.md).
type acceptCaseReports struct {
	entries []reportEntry
}

func newAcceptCaseReports(s *config.Settings, path string) (Transition, []config.Problem) {
	entries, problems := parseReportEntries(s, "accept_case_reports")
	return &acceptCaseReports{entries: entries}, problems
}

func (*acceptCaseReports) Name() string { return "accept_case_reports" }

func (t *acceptCaseReports) Filter(env *Env, c *Change) bool {
	return filterReport(env, c, t.Name(), t.entries)
}

// caseIDOf is doc.case_id, else fields.case_id ("" for none).
func caseIDOf(doc Doc) string {
	if v := doc["case_id"]; hasValue(v) {
		return jsv.String(v)
	}
	if v := jsv.Map(doc["fields"])["case_id"]; hasValue(v) {
		return jsv.String(v)
	}
	return ""
}

// caseRegistrations keeps the registrations whose case_id or fields.case_id
// is caseID: the subject lookup also matches patient and place ids.
func caseRegistrations(regs []Doc, caseID string) []Doc {
	var out []Doc
	for _, r := range regs {
		if v := r["case_id"]; hasValue(v) && jsv.String(v) == caseID {
			out = append(out, r)
			continue
		}
		if v := jsv.Map(r["fields"])["case_id"]; hasValue(v) && jsv.String(v) == caseID {
			out = append(out, r)
		}
	}
	return out
}

func (t *acceptCaseReports) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	e := entryForForm(t.entries, doc)
	if e == nil {
		return false, nil
	}
	if failed, err := validate(ctx, env, doc, e.validations, nil); failed || err != nil {
		return failed, err
	}
	caseID := caseIDOf(doc)
	var regs []Doc
	if caseID != "" {
		found, err := registrations.Valid(ctx, env.Store, env.Settings(), []string{caseID})
		if err != nil {
			return false, err
		}
		regs = caseRegistrations(found, caseID)
	}
	if len(regs) == 0 {
		addRejection(env, doc, e.messages, "registration_not_found", nil)
		return true, nil
	}
	extra := map[string]any{"patient": doc["patient"], "registrations": docsAny(regs), "place": doc["place"]}
	if err := acceptedReplies(ctx, env, doc, e, extra); err != nil {
		return false, err
	}
	reportID, _ := doc["_id"].(string)
	// The reference copies place_uuid from the first registration in lookup
	// order, which is arbitrary when a case has several registrations (the
	// view's order, not time). The latest by reported_date is the one that
	// describes the case as it is now, so it is preferred. The report itself
	// is left out: copying its own value would hide the case's place.
	if chosen := latestReported(without(regs, reportID), env.Location); chosen != nil {
		if pu := jsv.Map(chosen["fields"])["place_uuid"]; hasValue(pu) {
			fields := jsv.Map(doc["fields"])
			if fields == nil {
				fields = map[string]any{}
				doc["fields"] = fields
			}
			fields["place_uuid"] = pu
		}
	}
	if err := silence(ctx, env, e, uniqueDocs(regs), reportID, reportTime(env, doc)); err != nil {
		return false, err
	}
	// The reference reports "unchanged" here by accident (accept_case_reports.md):
	// the replies and place_uuid must be saved and the run recorded.
	return true, nil
}
