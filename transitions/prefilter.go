package transitions

import (
	"sentinel-go/config"
	"sentinel-go/jsv"
)

// Prefilter is implemented by transitions whose filter can refuse some
// changes from the doc as stored and its info doc alone, before the doc is
// hydrated and before any lookup: when RefusesUnhydrated is true, Filter
// would be false on the hydrated doc. The engine passes over a change that
// every enabled transition refuses this way without hydrating it, so a
// change whose work is done (a replay after a crash, a rewound feed, the
// echo of the daemon's own write) costs no read at all.
//
// Each method uses only what hydration leaves alone (type, form, from,
// fields, tasks, the info doc's records, the config) and is a conjunction
// of conditions its Filter checks too; prefilter_test.go holds them to that.
type Prefilter interface {
	RefusesUnhydrated(env *Env, c *Change) bool
}

// RefusedUnhydrated reports whether every transition of cfg refuses the
// change before hydration (the revision rule, alreadyRan, is the caller's).
// A transition that does not implement Prefilter never refuses early.
func RefusedUnhydrated(env *Env, c *Change, ran func(name string) bool) bool {
	for _, t := range env.Config.Transitions {
		if ran(t.Name()) {
			continue
		}
		p, ok := t.(Prefilter)
		if !ok || !p.RefusesUnhydrated(env, c) {
			return false
		}
	}
	return true
}

func notAReport(c *Change) bool { return c.Doc["type"] != "data_record" }

func formless(c *Change) bool {
	form, _ := c.Doc["form"].(string)
	return form == ""
}

// RefusesUnhydrated implements Prefilter.
func (t *registration) RefusesUnhydrated(_ *Env, c *Change) bool {
	return notAReport(c) || t.entryFor(c.Doc) == nil || c.HasRun(t.Name())
}

// RefusesUnhydrated implements Prefilter.
func (t *acceptPatientReports) RefusesUnhydrated(_ *Env, c *Change) bool {
	return refusesReportEarly(c, t.Name(), t.entries)
}

// RefusesUnhydrated implements Prefilter.
func (t *acceptCaseReports) RefusesUnhydrated(_ *Env, c *Change) bool {
	return refusesReportEarly(c, t.Name(), t.entries)
}

func refusesReportEarly(c *Change, name string, entries []reportEntry) bool {
	return notAReport(c) || !jsv.Truthy(c.Doc["form"]) || !jsv.Truthy(c.Doc["reported_date"]) ||
		entryForForm(entries, c.Doc) == nil || c.HasRun(name)
}

// RefusesUnhydrated implements Prefilter.
func (t *conditionalAlerts) RefusesUnhydrated(_ *Env, c *Change) bool {
	return notAReport(c) || formless(c) || c.HasRun(t.Name())
}

// RefusesUnhydrated implements Prefilter.
func (t *multiReportAlerts) RefusesUnhydrated(_ *Env, c *Change) bool {
	return notAReport(c) || formless(c) || c.HasRun(t.Name())
}

// RefusesUnhydrated implements Prefilter.
func (t *updateNotifications) RefusesUnhydrated(_ *Env, c *Change) bool {
	return notAReport(c) || formless(c) || c.HasRun(t.Name())
}

// RefusesUnhydrated implements Prefilter.
func (t *deathReporting) RefusesUnhydrated(_ *Env, c *Change) bool {
	form, _ := c.Doc["form"].(string)
	return notAReport(c) || form == "" || (!t.mark[form] && !t.undo[form]) || c.HasRun(t.Name())
}

// RefusesUnhydrated implements Prefilter.
func (t *defaultResponses) RefusesUnhydrated(_ *Env, c *Change) bool {
	return notAReport(c) || !jsv.Truthy(c.Doc["from"]) || jsv.Truthy(c.Doc["kujua_message"]) || !t.hasStart || c.HasRun(t.Name())
}

// RefusesUnhydrated implements Prefilter.
func (t *selfReport) RefusesUnhydrated(_ *Env, c *Change) bool {
	return notAReport(c) || !jsv.Truthy(c.Doc["from"]) || c.HasRun(t.Name())
}

// RefusesUnhydrated implements Prefilter.
func (t *updateClinics) RefusesUnhydrated(_ *Env, c *Change) bool {
	return notAReport(c) || c.HasRun(t.Name())
}

// RefusesUnhydrated implements Prefilter: its whole filter reads the doc's
// own form, fields and errors.
func (t updateScheduledReports) RefusesUnhydrated(env *Env, c *Change) bool {
	return !t.Filter(env, c)
}

// RefusesUnhydrated implements Prefilter: its whole filter reads the doc's
// type and ids, which hydration leaves alone.
func (t *shortcodeOnContacts) RefusesUnhydrated(env *Env, c *Change) bool {
	return !t.Filter(env, c)
}

// RefusesUnhydrated implements Prefilter: its whole filter reads the doc's
// own fields and the info doc.
func (t updateSentBy) RefusesUnhydrated(env *Env, c *Change) bool {
	return !t.Filter(env, c)
}

// RefusesUnhydrated implements Prefilter: its whole filter reads the doc's
// own tasks.
func (t resolvePending) RefusesUnhydrated(env *Env, c *Change) bool {
	return !t.Filter(env, c)
}

// RefusesUnhydrated implements Prefilter: reports are muted once, and only
// those of a mute or unmute form; a contact needs lookups (a muted
// ancestor) unless it is itself muted or its info doc already has a muting
// history (not a new contact), and was not last updated client-side; other
// docs are refused.
func (t *muting) RefusesUnhydrated(env *Env, c *Change) bool {
	if c.Doc["type"] == "data_record" {
		form, _ := c.Doc["form"].(string)
		_, wanted := t.formWants(form)
		return c.HasRun(t.Name()) || !wanted
	}
	if !config.IsContact(c.Doc) || env.Settings().ContactTypes.Get(config.TypeOf(c.Doc)) == nil {
		return true
	}
	if mutingClientSide(c.Doc) {
		return false
	}
	h, hasHistory := c.Info["muting_history"]
	return jsv.Truthy(c.Doc["muted"]) || hasHistory && h != nil && !mutingInterruptedNew(c.Info)
}
