package transitions

import (
	"context"
	"fmt"
	"strings"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/messages"
)

// updateClinics attributes an incoming report to a known contact, by
// reference code or by the sender's phone, and rejects non-public forms
// from unknown senders.
type updateClinics struct {
	// messages per form code (exact), from the update_clinics config.
	messages map[string][]map[string]any
}

func newUpdateClinics(s *config.Settings, path string) (Transition, []config.Problem) {
	t := &updateClinics{messages: map[string][]map[string]any{}}
	var problems []config.Problem
	switch raw := s.Raw["update_clinics"].(type) {
	case nil:
	case []any:
		for i, e := range raw {
			m := jsv.Map(e)
			form, _ := m["form"].(string)
			if form == "" {
				problems = append(problems, config.Warnf(fmt.Sprintf("update_clinics[%d].form", i), "entry without a form is ignored"))
				continue
			}
			if _, dup := t.messages[form]; !dup {
				t.messages[form] = messageEntries(m["messages"])
			}
		}
	default:
		problems = append(problems, config.Errorf("update_clinics", "must be an array of {form, messages}"))
	}
	return t, problems
}

func (*updateClinics) Name() string { return "update_clinics" }

func (t *updateClinics) Filter(_ *Env, c *Change) bool {
	_, hasContact := c.Doc["contact"]
	return c.Doc["type"] == "data_record" && !hasContact && !c.HasRun(t.Name())
}

func (t *updateClinics) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	contact, err := t.findContact(ctx, env, doc)
	if err != nil {
		return false, err
	}
	if contact != nil {
		doc["contact"] = contact
		return true, nil
	}
	if doc["content_type"] == "xml" {
		return false, nil
	}
	form, _ := doc["form"].(string)
	s := env.Settings()
	if form == "" || !s.HasForm(form) {
		g := env.Generator()
		messages.AddError(doc, "sys.facility_not_found", g.Translations.Lookup(g.Locale(doc), "sys.facility_not_found"))
		return true, nil
	}
	if s.Form(form)["public_form"] == true {
		return false, nil
	}
	addRejection(env, doc, t.messages[form], "sys.facility_not_found", nil)
	return true, nil
}

// findContact looks the sender up by refid (rc_code), else by phone, and
// returns it hydrated, or nil.
func (t *updateClinics) findContact(ctx context.Context, env *Env, doc Doc) (Doc, error) {
	cts := env.Settings().ContactTypes
	if refid := jsv.String(doc["refid"]); doc["refid"] != nil && refid != "" {
		found, err := env.Store.ContactsByRCCode(ctx, strings.ToUpper(refid))
		if err != nil {
			return nil, fmt.Errorf("find contact by refid: %w", err)
		}
		if len(found) == 0 {
			return nil, nil
		}
		c := found[0]
		typ := config.TypeOf(c)
		if cts.Get(typ) == nil {
			return nil, nil
		}
		if cts.IsPerson(typ) {
			return env.Hydrator.HydrateContact(ctx, c)
		}
		place, err := env.Hydrator.HydrateContact(ctx, c)
		if err != nil {
			return nil, err
		}
		if pc := jsv.Map(c["contact"]); pc != nil {
			if id, _ := pc["_id"].(string); id != "" {
				person, err := env.Hydrator.FetchHydrated(ctx, id)
				if err != nil {
					return nil, err
				}
				if person != nil {
					return person, nil
				}
			}
			if len(pc) > 0 {
				return jsv.CloneMap(pc), nil
			}
		}
		// No primary contact: a pseudo-contact holding the place, stored minified.
		return Doc{"parent": place}, nil
	}
	if from := jsv.String(doc["from"]); doc["from"] != nil && from != "" {
		found, err := contactsByPhone(ctx, env, from)
		if err != nil {
			return nil, fmt.Errorf("find contact by phone: %w", err)
		}
		if len(found) > 0 {
			return env.Hydrator.HydrateContact(ctx, found[0])
		}
	}
	return nil, nil
}

// WhyNot says why Filter is false (sentinel explain).
func (t *updateClinics) WhyNot(_ *Env, c *Change) string {
	if _, has := c.Doc["contact"]; has && c.Doc["type"] == "data_record" {
		return "the report already has a contact"
	}
	return whyNotReport(c, t.Name())
}
