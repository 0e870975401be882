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
// `enabled` flag; a missing `generic` counts as {}.
func ParseTranslations(docs []map[string]any) Translations {
	t := Translations{}
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
		}
		for _, part := range []string{"generic", "custom"} {
			for k, v := range jsv.Map(d[part]) {
				switch x := v.(type) {
				case string:
					m[k] = x
				case float64:
					m[k] = jsv.NumberString(x)
				}
			}
		}
	}
	for _, m := range t {
		for k, v := range m {
			if strings.Contains(v, "${") {
				m[k] = placeholder.ReplaceAllStringFunc(v, func(s string) string {
					key := s[2 : len(s)-1]
					if r, ok := m[key]; ok {
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
// the key itself; trimmed.
func (t Translations) Lookup(locale, key string) string {
	if m, ok := t[locale]; ok {
		if v, ok := m[key]; ok {
			return strings.TrimSpace(v)
		}
	}
	if m, ok := t["en"]; ok {
		if v, ok := m[key]; ok {
			return strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(key)
}

// Has reports whether locale defines key.
func (t Translations) Has(locale, key string) bool {
	_, ok := t[locale][key]
	return ok
}
