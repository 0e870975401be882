package transitions

import (
	"context"
	"fmt"

	"sentinel-go/config"
	"sentinel-go/jsv"
)

// selfReport makes the sender of an SMS report its patient.
type selfReport struct {
	forms map[string][]map[string]any // form (exact) -> messages
}

func newSelfReport(s *config.Settings, path string) (Transition, []config.Problem) {
	t := &selfReport{forms: map[string][]map[string]any{}}
	raw, ok := s.Raw["self_report"].([]any)
	if !ok {
		if s.Raw["self_report"] == nil {
			return t, []config.Problem{config.Warnf("self_report", "self_report is enabled but has no configured forms")}
		}
		return nil, []config.Problem{config.Errorf("self_report", "must be an array of {form, messages}")}
	}
	var problems []config.Problem
	for i, e := range raw {
		m := jsv.Map(e)
		form, _ := m["form"].(string)
		if form == "" {
			problems = append(problems, config.Errorf(fmt.Sprintf("self_report[%d].form", i), "form is required"))
			continue
		}
		if _, dup := t.forms[form]; !dup {
			t.forms[form] = messageEntries(m["messages"])
		}
	}
	return t, problems
}

func (*selfReport) Name() string { return "self_report" }

func (t *selfReport) Filter(_ *Env, c *Change) bool {
	doc := c.Doc
	if doc["type"] != "data_record" || !jsv.Truthy(doc["from"]) || c.HasRun(t.Name()) {
		return false
	}
	form, _ := doc["form"].(string)
	if _, ok := t.forms[form]; !ok {
		return false
	}
	fields := jsv.Map(doc["fields"])
	return !jsv.Truthy(fields["patient_id"]) && !jsv.Truthy(fields["patient_uuid"])
}

func (t *selfReport) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	entries := t.forms[jsv.String(doc["form"])]
	found, err := contactsByPhone(ctx, env, jsv.String(doc["from"]))
	if err != nil {
		return false, fmt.Errorf("find contact by phone: %w", err)
	}
	if len(found) == 0 {
		addRejection(env, doc, entries, "sender_not_found", nil)
		return true, nil
	}
	contact := found[0]
	if env.Settings().ContactTypes.IsPlace(contactTypeOf(contact)) {
		env.Log.Info().Str("doc_id", c.ID).Str("contact", jsv.String(contact["_id"])).Msg("self_report: the sending number belongs to a place")
	}
	patient, err := env.Hydrator.HydrateContact(ctx, contact)
	if err != nil {
		return false, err
	}
	doc["patient"] = patient
	fields := jsv.Map(doc["fields"])
	if fields == nil {
		fields = map[string]any{}
		doc["fields"] = fields
	}
	fields["patient_uuid"] = contact["_id"]
	if v, ok := contact["patient_id"]; ok && v != nil {
		fields["patient_id"] = v
	}
	addSuccess(env, doc, entries, "report_accepted", nil)
	return true, nil
}

func contactTypeOf(d Doc) string { return config.TypeOf(d) }
