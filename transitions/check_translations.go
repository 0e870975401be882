package transitions

import (
	"fmt"
	"sort"

	"sentinel-go/config"
	"sentinel-go/jsv"
)

// CheckTranslations warns about translation keys that the settings use but
// that have no text in a configured locale. A message whose key is missing
// in its locale falls back to English, then to nothing (the message is
// recorded as an error), so these are warnings, never errors.
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
		for _, l := range locales {
			if tr.Has(l, u.key) {
				continue
			}
			fallback := "the message would have no text"
			if l != "en" && tr.Has("en", u.key) {
				fallback = "English is sent instead"
			}
			problems = append(problems, config.Warnf(u.path, "translation key %q has no text in locale %q (%s)", u.key, l, fallback))
		}
	}
	return problems
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
