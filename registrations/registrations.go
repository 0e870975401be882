// Package registrations says which reports are valid registrations of a
// subject (a patient, a place or a case), as the spec defines them
// (transitions README, "valid registrations for ids"): reports about the
// subject with no errors, whose form is a registration form, and that are
// xforms or SMS forms of settings.forms that are public or come from a
// known contact. It also gives the ids a contact may be named by.
//
// It takes plain inputs (a store with ReportsBySubject, the settings, the
// subject ids), so the transitions and the scheduled jobs both use it.
package registrations

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"sentinel-go/config"
	"sentinel-go/jsv"
)

// Store finds the reports about subjects (*couch.DB, or a store wrapping
// it): the reports whose subject is any of ids, each once.
type Store interface {
	ReportsBySubject(ctx context.Context, ids []string) ([]map[string]any, error)
}

// Valid returns the valid registrations about any of ids, in the store's
// order. Empty ids are ignored; no id at all finds nothing (and reads
// nothing).
func Valid(ctx context.Context, store Store, s *config.Settings, ids []string) ([]map[string]any, error) {
	var clean []string
	for _, id := range ids {
		if id != "" {
			clean = append(clean, id)
		}
	}
	if len(clean) == 0 {
		return nil, nil
	}
	reports, err := store.ReportsBySubject(ctx, clean)
	if err != nil {
		return nil, fmt.Errorf("find registrations: %w", err)
	}
	var regForms []string
	for _, r := range jsv.Slice(s.Raw["registrations"]) {
		if f, ok := jsv.Map(r)["form"].(string); ok {
			regForms = append(regForms, f)
		}
	}
	var out []map[string]any
	for _, r := range reports {
		if len(jsv.Slice(r["errors"])) > 0 {
			continue
		}
		form, _ := r["form"].(string)
		isReg := false
		for _, f := range regForms {
			if formIsRegistration(form, f) {
				isReg = true
				break
			}
		}
		if !isReg {
			continue
		}
		if r["content_type"] != "xml" {
			if !s.HasForm(form) {
				continue
			}
			if s.Form(form)["public_form"] != true && !jsv.Truthy(r["contact"]) {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// SubjectIDs are a contact's ids that reports may use to name it as their
// subject (spec: "subject ids" of a contact): _id, patient_id, place_id,
// those set.
func SubjectIDs(c map[string]any) []string {
	var out []string
	for _, k := range []string{"_id", "patient_id", "place_id"} {
		if v, ok := c[k]; ok && v != nil && v != "" {
			out = append(out, jsv.String(v))
		}
	}
	return out
}

var nonLetters = regexp.MustCompile(`[^\p{L}]`)

// formIsRegistration is "is this report a registration?" (spec: form
// matching): the report's form equals a registration form ignoring case and
// any non-letters around it.
func formIsRegistration(reportForm, regForm string) bool {
	if reportForm == "" || regForm == "" {
		return false
	}
	rf := strings.ToLower(reportForm)
	code := strings.ToLower(regForm)
	i := strings.Index(rf, code)
	if i < 0 {
		return false
	}
	return nonLetters.ReplaceAllString(rf[:i]+rf[i+len(code):], "") == ""
}
