package transitions

import (
	"context"
	"fmt"

	"sentinel-go/config"
	"sentinel-go/jsv"
)

// deathReporting sets or removes date_of_death on a report's patient.
type deathReporting struct {
	mark, undo map[string]bool
	dateField  string
}

func newDeathReporting(s *config.Settings, path string) (Transition, []config.Problem) {
	cfg := jsv.Map(s.Raw["death_reporting"])
	t := &deathReporting{mark: map[string]bool{}, undo: map[string]bool{}}
	mark := jsv.Slice(cfg["mark_deceased_forms"])
	if len(mark) == 0 {
		return nil, []config.Problem{config.Errorf("death_reporting.mark_deceased_forms",
			"Configuration error. Config must have a 'death_reporting.mark_deceased_forms' array defined.")}
	}
	var problems []config.Problem
	for _, f := range mark {
		if s, ok := f.(string); ok {
			t.mark[s] = true
		}
	}
	for _, f := range jsv.Slice(cfg["undo_deceased_forms"]) {
		if s, ok := f.(string); ok {
			t.undo[s] = true
			if t.mark[s] {
				problems = append(problems, config.Warnf("death_reporting.undo_deceased_forms",
					"form %q is in both mark_deceased_forms and undo_deceased_forms: it toggles the patient's state", s))
			}
		}
	}
	t.dateField, _ = cfg["date_field"].(string)
	return t, problems
}

func (*deathReporting) Name() string { return "death_reporting" }

func (t *deathReporting) Filter(env *Env, c *Change) bool {
	form, _ := c.Doc["form"].(string)
	if c.Doc["type"] != "data_record" || form == "" || (!t.mark[form] && !t.undo[form]) {
		return false
	}
	if jsv.Map(c.Doc["patient"]) == nil || c.HasRun(t.Name()) {
		return false
	}
	return IsValidSubmission(env, c.Doc)
}

func (t *deathReporting) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	id, _ := jsv.Map(c.Doc["patient"])["_id"].(string)
	if id == "" {
		return false, nil
	}
	patient, err := env.Store.Get(ctx, id)
	if err != nil && !IsNotFound(err) {
		return false, fmt.Errorf("read patient %s: %w", id, err)
	}
	if patient == nil || !env.Settings().ContactTypes.IsPerson(config.TypeOf(patient)) {
		return false, fmt.Errorf("Patient not found: %s", id)
	}
	form, _ := c.Doc["form"].(string)
	_, dead := patient["date_of_death"]
	switch {
	case t.mark[form] && !dead:
		var date any
		if t.dateField != "" {
			if v, ok := jsv.Get(c.Doc, t.dateField); ok && jsv.Truthy(v) {
				date = v
			}
		}
		if date == nil {
			date = c.Doc["reported_date"]
		}
		patient["date_of_death"] = date
	case t.undo[form] && dead:
		delete(patient, "date_of_death")
	default:
		return false, nil
	}
	if err := env.Store.Put(ctx, patient); err != nil {
		return false, fmt.Errorf("save patient %s: %w", id, err)
	}
	return true, nil
}
