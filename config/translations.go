package config

import (
	"regexp"
	"strings"

	"sentinel-go/jsv"
)

// Translations maps locale → key → text, built from the `messages-*` docs.
type Translations map[string]map[string]string

var placeholder = regexp.MustCompile(`\$\{([^}]+)\}`)

// ParseTranslations builds the translations from `messages-*` docs: per code,
// `generic` overlaid by `custom`; `${key}` inside a value is replaced by that
// key's text of the same locale when it exists. Every doc loads, whatever its
// `enabled` flag; a missing `generic` counts as {}. A key of `custom` replaces
// the generic text even when its value is null (or another non-text): it is
// kept as "", which Lookup reads as missing at that level.
func ParseTranslations(docs []map[string]any) Translations {
	t := Translations{}
	// notText marks the keys whose value is null or another non-text, which
	// a `${key}` placeholder does not take (an empty string it does).
	notText := map[string]map[string]bool{}
	for _, d := range docs {
		code, _ := d["code"].(string)
		if code == "" {
			id, _ := d["_id"].(string)
			code = strings.TrimPrefix(id, "messages-")
		}
		if code == "" {
			continue
		}
		m := t[code]
		if m == nil {
			m = map[string]string{}
			t[code] = m
			notText[code] = map[string]bool{}
		}
		for _, part := range []string{"generic", "custom"} {
			for k, v := range jsv.Map(d[part]) {
				notText[code][k] = false
				switch x := v.(type) {
				case string:
					m[k] = x
				case float64:
					m[k] = jsv.NumberString(x)
				default:
					m[k] = ""
					notText[code][k] = true
				}
			}
		}
	}
	for code, m := range t {
		for k, v := range m {
			if strings.Contains(v, "${") {
				m[k] = placeholder.ReplaceAllStringFunc(v, func(s string) string {
					key := s[2 : len(s)-1]
					if r, ok := m[key]; ok && !notText[code][key] {
						return r
					}
					return s
				})
			}
		}
	}
	return t
}

// Lookup returns the text of key in locale, falling back to "en" and then to
// the key itself; trimmed. An empty or null text counts as missing at its
// level, but a whitespace-only one is chosen (and trimmed to "") as the
// reference does (feed.md §3).
func (t Translations) Lookup(locale, key string) string {
	for _, l := range []string{locale, "en"} {
		if v := t[l][key]; v != "" {
			return strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(key)
}

// Has reports whether locale has a text for key (empty or null is none).
func (t Translations) Has(locale, key string) bool {
	return t[locale][key] != ""
}

// Blank reports whether locale lists key with an empty or null text, which
// lookups skip: a config author's likely slip worth a warning.
func (t Translations) Blank(locale, key string) bool {
	v, ok := t[locale][key]
	return ok && v == ""
}
