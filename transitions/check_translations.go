package transitions

import (
	"fmt"
	"sort"
	"strings"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/templates"
)

// CheckTranslations warns about translation keys that the settings use but
// that have no text in a configured locale (missing, or empty or null,
// which lookups skip), and about texts whose template does not parse. A
// message whose key is missing in its locale falls back to English, then to
// nothing (the message is recorded as an error), and a text that does not
// parse fails only the messages made from it, so these are warnings, never
// errors.
//
// Keys used: every `translation_key` in the settings (registrations,
// patient_reports, schedules, validations, reminders… ; not under `forms`,
// whose keys label forms in the web app), and the replies of
// default_responses when it is enabled. Configured locales: `locale`,
// `locale_outgoing`, and the codes listed in `locales` or `languages`
// (strings or objects with `code` / `locale`; entries with
// `enabled: false` skipped). The locales that merely have a `messages-*`
// doc do not count: CHT ships a doc for every language it supports, used or
// not. With no translations at all (check-config without --translations)
// nothing is checked.
func CheckTranslations(s *config.Settings, tr config.Translations) []config.Problem {
	if len(tr) == 0 {
		return nil
	}
	locales := ConfiguredLocales(s)
	var uses []keyUse
	for k, v := range s.Raw {
		if k == "forms" {
			continue
		}
		collectTranslationKeys(v, k, &uses)
	}
	if enabled, _ := s.TransitionKeys(); contains(enabled, "default_responses") {
		keys := []string{"empty", "sms_received"}
		if jsv.Truthy(s.Get("forms_only_mode")) {
			keys = append(keys, "form_not_found")
		}
		for _, k := range keys {
			uses = append(uses, keyUse{path: "transitions.default_responses", key: k})
		}
	}
	sort.SliceStable(uses, func(i, j int) bool { return uses[i].path < uses[j].path })
	var problems []config.Problem
	for _, u := range uses {
		checked := map[string]bool{} // texts whose template was checked, by locale
		for _, l := range locales {
			used := l
			if !tr.Has(l, u.key) {
				used = ""
				fallback := "the message would have no text"
				if strings.Contains(u.path, ".validations.") {
					fallback = "the key itself is sent" // validations.md §4
				}
				if l != "en" && tr.Has("en", u.key) {
					fallback, used = "English is sent instead", "en"
				}
				missing := "has no text"
				if tr.Blank(l, u.key) {
					missing = "has an empty or null text" // lookups skip it (feed.md §3)
				}
				problems = append(problems, config.Warnf(u.path, "translation key %q %s in locale %q (%s)", u.key, missing, l, fallback))
			}
			if used == "" || checked[used] {
				continue
			}
			checked[used] = true
			if err := templates.Check(tr.Lookup(used, u.key)); err != nil {
				problems = append(problems, config.Warnf(u.path, "translation key %q in locale %q: template does not parse: %v (%s)", u.key, used, err, unparsableOutcome(u.path)))
			}
		}
	}
	return problems
}

// unparsableOutcome says what a text that does not parse does at run time
// (messages.md §3 step 7, validations.md §4).
func unparsableOutcome(path string) string {
	if strings.Contains(path, ".validations.") {
		return "the report gets parse_error and no reply"
	}
	return "no message is sent"
}

// ConfiguredLocales lists the locales messages may be sent in, as
// CheckTranslations defines them, without duplicates, in settings order.
func ConfiguredLocales(s *config.Settings) []string {
	var out []string
	seen := map[string]bool{}
	add := func(l string) {
		if l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	add(s.Locale())
	add(s.LocaleOutgoing())
	for _, key := range []string{"locales", "languages"} {
		for _, e := range jsv.Slice(s.Raw[key]) {
			switch x := e.(type) {
			case string:
				add(x)
			case map[string]any:
				if x["enabled"] == false {
					continue
				}
				if c, ok := x["code"].(string); ok {
					add(c)
				} else if c, ok := x["locale"].(string); ok {
					add(c)
				}
			}
		}
	}
	return out
}

// keyUse is a translation key and the config path that uses it.
type keyUse struct{ path, key string }

func collectTranslationKeys(v any, path string, out *[]keyUse) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "translation_key" {
				if key, ok := e.(string); ok && key != "" {
					*out = append(*out, keyUse{path: path + ".translation_key", key: key})
				}
				continue
			}
			collectTranslationKeys(e, joinPath(path, k), out)
		}
	case []any:
		for i, e := range x {
			collectTranslationKeys(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
