package transitions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"sentinel-go/config"
)

// constructor builds a transition from the settings and reports its
// configuration problems (errors disable every transition).
type constructor func(s *config.Settings, path string) (Transition, []config.Problem)

// entry is one known transition key.
type entry struct {
	name string
	make constructor
	// deprecated, when set, is logged as a warning at load.
	deprecated string
}

// order is the fixed reference order; the order of keys in app_settings
// never matters. Transitions not built yet are registered as they land.
var order = []entry{
	{name: "update_clinics", make: newUpdateClinics},
	{name: "self_report", make: newSelfReport},
	{name: "registration", make: newRegistration},
	{name: "accept_patient_reports", make: newAcceptPatientReports},
	{name: "accept_case_reports", make: newAcceptCaseReports},
	{name: "generate_shortcode_on_contacts", make: newShortcodeOnContacts("generate_shortcode_on_contacts")},
	{name: "generate_patient_id_on_people", make: newShortcodeOnContacts("generate_patient_id_on_people"),
		deprecated: `generate_patient_id_on_people transition is deprecated since 3.8.x. Please use "generate_shortcode_on_contacts" transition instead.`},
	{name: "default_responses", make: newDefaultResponses},
	{name: "update_sent_by", make: newUpdateSentBy},
	{name: "death_reporting", make: newDeathReporting},
	{name: "conditional_alerts", make: newConditionalAlerts},
	{name: "multi_report_alerts", make: newMultiReportAlerts},
	{name: "update_notifications", make: newUpdateNotifications},
	{name: "update_scheduled_reports", make: newUpdateScheduledReports},
	{name: "resolve_pending", make: newResolvePending},
	{name: "muting", make: newMuting},
	{name: "mark_for_outbound", make: newMarkForOutbound},
	{name: "create_user_for_contacts", make: newCreateUserForContacts},
}

// noOps are keys accepted for old deployments, with a warning, doing nothing.
var noOps = map[string]string{
	"maintain_info_document": "maintain_info_document is built in since CHT 3.0 and has no effect; remove it from transitions",
	"update_sent_forms":      "update_sent_forms transition is deprecated since 3.7.x and has no effect; remove it from transitions",
}

// Names returns every known transition key in pipeline order.
func Names() []string {
	out := make([]string, len(order))
	for i, e := range order {
		out[i] = e.name
	}
	return out
}

// Build returns the enabled transitions in reference order and every problem
// found. Any error-severity problem means no transition may run: an unknown
// key, a transition this build does not implement yet, or an invalid config.
func Build(s *config.Settings) ([]Transition, []config.Problem) {
	if p, ok := transitionsShape(s.Raw["transitions"]); !ok {
		// A wrong shape is an invalid config, not "nothing enabled".
		return nil, []config.Problem{p}
	}
	enabled, _ := s.TransitionKeys()
	on := map[string]bool{}
	var problems []config.Problem
	known := map[string]bool{}
	for _, e := range order {
		known[e.name] = true
	}
	for _, k := range enabled {
		switch {
		case known[k]:
			on[k] = true
		case noOps[k] != "":
			problems = append(problems, config.Warnf("transitions."+k, "%s", noOps[k]))
		default:
			msg := fmt.Sprintf("Unknown transition %q", k)
			if s := closest(k, Names()); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			problems = append(problems, config.Errorf("transitions."+k, "%s", msg))
		}
	}
	var list []Transition
	for _, e := range order {
		if !on[e.name] {
			continue
		}
		path := "transitions." + e.name
		if e.deprecated != "" {
			problems = append(problems, config.Warnf(path, "%s", e.deprecated))
		}
		if e.make == nil {
			problems = append(problems, config.Errorf(path, "transition %q is not supported by this version of sentinel-go", e.name))
			continue
		}
		t, ps := e.make(s, path)
		problems = append(problems, ps...)
		if t != nil {
			list = append(list, t)
		}
	}
	return list, problems
}

// transitionsShape checks that settings.transitions is an object (absent or
// null: none configured); any other value is an error at its path.
func transitionsShape(v any) (config.Problem, bool) {
	switch v.(type) {
	case nil, map[string]any:
		return config.Problem{}, true
	}
	return config.Errorf("transitions", "must be an object of transition names, e.g. {\"registration\": true}, not %s", jsonType(v)), false
}

// jsonType names the JSON type of a decoded value, for messages.
func jsonType(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// Config is everything loaded from the settings and translation docs that a
// change is processed with. It is immutable once built.
type Config struct {
	Settings     *config.Settings
	Translations config.Translations
	Transitions  []Transition
	Problems     []config.Problem
	// Fingerprint identifies the settings (as written, key order included)
	// and translations: two configs with the same one decide alike.
	Fingerprint string
}

// Load builds a Config; Valid reports whether transitions may run.
func Load(raw map[string]any, translations config.Translations) *Config {
	return LoadSettings(config.NewSettings(raw), translations)
}

// LoadSettings builds a Config from parsed settings (the daemon's path: it
// also knows the key order of the raw JSON). Its problems include the
// warnings of CheckTranslations.
func LoadSettings(s *config.Settings, translations config.Translations) *Config {
	list, problems := Build(s)
	problems = append(problems, CheckTranslations(s, translations)...)
	return &Config{Settings: s, Translations: translations, Transitions: list, Problems: problems,
		Fingerprint: fingerprint(s, translations)}
}

// fingerprint hashes the settings as written (their JSON when read from the
// database, which keeps the key order; else the parsed object) and the
// translations (encoded with sorted keys).
func fingerprint(s *config.Settings, translations config.Translations) string {
	h := sha256.New()
	if s.JSON != nil {
		h.Write(s.JSON)
	} else if b, err := json.Marshal(s.Raw); err == nil {
		h.Write(b)
	}
	h.Write([]byte{0})
	if b, err := json.Marshal(translations); err == nil {
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Valid reports whether the config has no error.
func (c *Config) Valid() bool { return !config.HasErrors(c.Problems) }

// ErrorSummary joins the error problems into one line for logs.
func (c *Config) ErrorSummary() string {
	out := ""
	for _, p := range c.Problems {
		if p.Severity == config.Error {
			if out != "" {
				out += "; "
			}
			out += fmt.Sprint(p)
		}
	}
	return out
}
