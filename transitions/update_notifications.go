package transitions

import (
	"context"
	"fmt"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/messages"
)

// updateNotifications is the deprecated predecessor of muting: an "off" form
// mutes a patient or place and its descendants, an "on" form unmutes them
// (update_notifications.md). No client-side history, no auto-muting of new
// contacts.
type updateNotifications struct {
	onForm, offForm string
	validations     compiledValidations
	messages        []map[string]any
}

// updateNotificationsDeprecation is logged at load.
const updateNotificationsDeprecation = `update_notifications transition is deprecated since 3.2.x. Please use "muting" transition instead.`

func newUpdateNotifications(s *config.Settings, path string) (Transition, []config.Problem) {
	problems := []config.Problem{config.Warnf(path, "%s", updateNotificationsDeprecation)}
	raw, present := s.Raw["notifications"]
	cfg := jsv.Map(raw)
	if present && raw != nil && cfg == nil {
		problems = append(problems, config.Warnf("notifications", "notifications must be an object: nothing will be muted"))
	}
	t := &updateNotifications{messages: messageEntries(cfg["messages"])}
	for _, k := range []string{"on_form", "off_form"} {
		v, ok := cfg[k]
		if !ok || v == nil {
			continue
		}
		str, isStr := v.(string)
		if !isStr {
			problems = append(problems, config.Warnf("notifications."+k, "%s must be a form code (string): ignored", k))
			continue
		}
		if k == "on_form" {
			t.onForm = str
		} else {
			t.offForm = str
		}
	}
	if t.onForm == "" && t.offForm == "" {
		problems = append(problems, config.Warnf("notifications", "neither on_form nor off_form is set: update_notifications does nothing"))
	}
	var ps []config.Problem
	t.validations, ps = compileValidations(cfg["validations"], "notifications")
	problems = append(problems, ps...)
	for i, m := range jsv.Slice(cfg["messages"]) {
		mp := fmt.Sprintf("notifications.messages[%d]", i)
		mm := jsv.Map(m)
		if mm == nil {
			problems = append(problems, config.Warnf(mp, "must be an object: ignored"))
			continue
		}
		switch et, _ := mm["event_type"].(string); et {
		case "on_mute", "on_unmute", "patient_not_found":
		default:
			problems = append(problems, config.Warnf(mp+".event_type",
				"unknown event_type %q (expected on_mute, on_unmute or patient_not_found): never sent", et))
		}
	}
	problems = append(problems, t.overlapWithMuting(s)...)
	return t, problems
}

// overlapWithMuting warns when muting is enabled too and handles the same
// forms: such reports are processed twice.
func (t *updateNotifications) overlapWithMuting(s *config.Settings) []config.Problem {
	enabled, _ := s.TransitionKeys()
	on := false
	for _, k := range enabled {
		on = on || k == "muting"
	}
	if !on {
		return nil
	}
	mc := jsv.Map(s.Raw["muting"])
	var problems []config.Problem
	for _, key := range []string{"mute_forms", "unmute_forms"} {
		for _, f := range jsv.Slice(mc[key]) {
			code, _ := f.(string)
			for _, own := range []string{t.onForm, t.offForm} {
				if own != "" && formMatchesLoose(own, code) {
					problems = append(problems, config.Warnf("notifications",
						"form %q is handled by both update_notifications and muting: its reports are processed twice", own))
				}
			}
		}
	}
	return problems
}

func (*updateNotifications) Name() string { return "update_notifications" }

func (t *updateNotifications) Filter(env *Env, c *Change) bool {
	form, _ := c.Doc["form"].(string)
	if c.Doc["type"] != "data_record" || form == "" || c.HasRun(t.Name()) {
		return false
	}
	return IsValidSubmission(env, c.Doc)
}

// formWants says whether form mutes (off form) or unmutes (on form, checked
// first); ok is false for other forms.
func (t *updateNotifications) formWants(form string) (wanted, ok bool) {
	switch {
	case formMatchesLoose(t.onForm, form):
		return false, true
	case formMatchesLoose(t.offForm, form):
		return true, true
	}
	return false, false
}

// notify adds the configured message of eventType. When none is configured
// (or it gives no text) it adds the "misconfigured" error instead, as the
// reference does; patient_not_found also becomes an error with its text.
func (t *updateNotifications) notify(env *Env, doc Doc, eventType string) {
	misconfigured := fmt.Sprintf("Failed to complete notification request, event type %q misconfigured.", eventType)
	e := findEvent(t.messages, eventType)
	if e == nil {
		messages.AddError(doc, "invalid_report", misconfigured)
		return
	}
	added, err := env.Generator().Add(doc, messages.SpecOf(e), mutingSubjects(doc), messages.AddOptions{})
	switch {
	case err != nil || added.Text == "":
		messages.AddError(doc, "invalid_report", misconfigured)
	case eventType == "patient_not_found":
		messages.AddError(doc, "invalid_report", added.Text)
	}
}

func (t *updateNotifications) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	form, _ := doc["form"].(string)
	wanted, ok := t.formWants(form)
	if !ok {
		return false, nil
	}
	if failed, err := validate(ctx, env, doc, t.validations, mutingSubjects(doc)); failed || err != nil {
		return failed, err
	}
	target := jsv.Map(doc["patient"])
	if target == nil {
		target = jsv.Map(doc["place"])
	}
	if target == nil {
		t.notify(env, doc, "patient_not_found")
		return true, nil
	}
	event := "on_unmute"
	if wanted {
		event = "on_mute"
	}
	// The cascade of an interrupted attempt of this very report is finished
	// (see mutingStart), even when the target is already in the wanted state.
	start, err := mutingPlan(ctx, env, target, wanted, c.ID)
	if err != nil {
		return false, fmt.Errorf("%s %v: %w", mutingVerb(wanted), target["_id"], err)
	}
	if jsv.Truthy(target["muted"]) != wanted || start.Resuming {
		targetID, _ := target["_id"].(string)
		cascade := mutingCascade{Wanted: wanted, ReportID: c.ID, Report: doc, Target: targetID, Date: start.Date}
		if _, err := cascade.run(ctx, env, start.Root); err != nil {
			return false, fmt.Errorf("%s %v: %w", mutingVerb(wanted), target["_id"], err)
		}
	}
	t.notify(env, doc, event)
	return true, nil
}

// WhyNot says why Filter is false (sentinel explain).
func (t *updateNotifications) WhyNot(env *Env, c *Change) string {
	if r := whyNotReport(c, t.Name()); r != "" {
		return r
	}
	return whyNotSubmission(env, c.Doc)
}
