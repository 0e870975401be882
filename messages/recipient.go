package messages

import (
	"regexp"
	"strings"

	"github.com/dlclark/regexp2/v2"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/phone"
)

// Recipient resolves a recipient spec (empty, a string, or an array tried in
// order) to a phone number per messages.md §5, then applies
// outgoing_phone_replace and outgoing_phone_filters.
func Recipient(s *config.Settings, doc map[string]any, layers []map[string]any, spec any) string {
	from := senderOf(layers)
	var entries []string
	switch x := spec.(type) {
	case string:
		entries = []string{x}
	case []any:
		for _, e := range x {
			if str, ok := e.(string); ok {
				entries = append(entries, str)
			}
		}
	}
	var cleaned []string
	for _, e := range entries {
		if e = strings.TrimSpace(e); e != "" {
			cleaned = append(cleaned, e)
		}
	}
	to := ""
	if len(cleaned) == 0 {
		to = from
	}
	for _, e := range cleaned {
		if c := resolveEntry(doc, layers, e, from); c != "" {
			to = c
			break
		}
	}
	if to == "" && len(cleaned) > 0 {
		if s.DefaultToSender() && from != "" {
			to = from
		} else {
			to = cleaned[0]
		}
	}
	return rewritePhone(s, to)
}

// senderOf is the context's `from`, else the contact's phone.
func senderOf(layers []map[string]any) string {
	if v, ok := lookup(layers, "from"); ok && jsv.Truthy(v) {
		return jsv.String(v)
	}
	if v, ok := lookupPath(layers, "contact.phone"); ok && jsv.Truthy(v) {
		return jsv.String(v)
	}
	return ""
}

func contactPhone(n map[string]any) string {
	if n == nil {
		return ""
	}
	v, _ := jsv.Get(n, "contact.phone")
	if jsv.Truthy(v) {
		return jsv.String(v)
	}
	return ""
}

// contextNode is the layered context seen as one object for walks: its
// `parent` is the derived health-centre alias when there is one.
func contextNode(layers []map[string]any) map[string]any {
	n := map[string]any{}
	for _, k := range []string{"parent", "contact", "type", "contact_type"} {
		if v, ok := lookup(layers, k); ok {
			n[k] = v
		}
	}
	return n
}

// walkStarts are the nodes ancestor walks start from: patient, place, then the context.
func walkStarts(layers []map[string]any) []map[string]any {
	var out []map[string]any
	for _, k := range []string{"patient", "place"} {
		if v, ok := lookup(layers, k); ok {
			if m := jsv.Map(v); m != nil {
				out = append(out, walkStart(m))
			}
		}
	}
	return append(out, walkStart(contextNode(layers)))
}

func resolveEntry(doc map[string]any, layers []map[string]any, e, from string) string {
	starts := walkStarts(layers)
	first := starts[0]
	switch {
	case e == "reporting_unit":
		return from
	case strings.HasPrefix(e, "ancestor:"):
		return contactPhone(findAncestor(first, strings.TrimPrefix(e, "ancestor:")))
	case strings.HasPrefix(e, "link:"):
		return linkPhone(layers, strings.TrimPrefix(e, "link:"), starts)
	case e == "parent" || e == "grandparent":
		steps := 2
		if e == "grandparent" {
			steps = 3
		}
		n := first
		for i := 0; i < steps && n != nil; i++ {
			n = jsv.Map(n["parent"])
		}
		return contactPhone(n)
	case e == "clinic" || e == "health_center" || e == "district":
		typ := map[string]string{"clinic": "clinic", "health_center": "health_center", "district": "district_hospital"}[e]
		for _, st := range starts {
			if p := contactPhone(findAncestor(st, typ)); p != "" {
				return p
			}
		}
		if e == "clinic" {
			if v, ok := lookupPath(layers, "contact.phone"); ok && jsv.Truthy(v) {
				return jsv.String(v)
			}
		}
		return ""
	}
	if fields := jsv.Map(doc["fields"]); fields != nil {
		if v, ok := fields[e]; ok && jsv.Truthy(v) {
			return scalar(v)
		}
	}
	if v, ok := lookup(layers, e); ok && jsv.Truthy(v) {
		if s := scalar(v); s != "" {
			return s
		}
	}
	if strings.Contains(e, ".") {
		if v, ok := lookupPath(layers, e); ok && jsv.Truthy(v) {
			return scalar(v)
		}
	}
	if phone.IsValidInternational(e) {
		return e
	}
	return ""
}

func scalar(v any) string {
	switch v.(type) {
	case string, float64, bool:
		return jsv.String(v)
	}
	return ""
}

// linkPhone finds linked_docs[tag] on the patient, place, submitter or their
// ancestors, else the primary contact of an ancestor of type tag.
func linkPhone(layers []map[string]any, tag string, starts []map[string]any) string {
	var nodes []map[string]any
	for _, k := range []string{"patient", "place", "contact"} {
		if v, ok := lookup(layers, k); ok {
			n := jsv.Map(v)
			for i := 0; n != nil && i < 30; i++ {
				nodes = append(nodes, n)
				n = jsv.Map(n["parent"])
			}
		}
	}
	for _, n := range nodes {
		ld := jsv.Map(n["linked_docs"])
		if ld == nil {
			continue
		}
		if linked := jsv.Map(ld[tag]); linked != nil && jsv.Truthy(linked["phone"]) {
			return jsv.String(linked["phone"])
		}
	}
	for _, st := range starts {
		if p := contactPhone(findAncestor(st, tag)); p != "" {
			return p
		}
	}
	return ""
}

// rewritePhone applies outgoing_phone_replace (leading prefix) and the first
// matching outgoing_phone_filters entry (JavaScript regex).
func rewritePhone(s *config.Settings, to string) string {
	if rep := jsv.Map(s.Raw["outgoing_phone_replace"]); rep != nil {
		match, _ := rep["match"].(string)
		if match != "" && strings.HasPrefix(to, match) {
			to = jsv.String(rep["replace"]) + strings.TrimPrefix(to, match)
			if rep["replace"] == nil {
				to = strings.TrimPrefix(to, "null")
			}
		}
	}
	for _, f := range jsv.Slice(s.Raw["outgoing_phone_filters"]) {
		fm := jsv.Map(f)
		match, _ := fm["match"].(string)
		if match == "" {
			continue
		}
		re, err := regexp2.Compile(match, regexp2.ECMAScript)
		if err != nil {
			continue
		}
		if ok, _ := re.MatchString(to); ok {
			repl, _ := fm["replace"].(string)
			if out, err := re.Replace(to, jsReplacement(repl), -1, 1); err == nil {
				to = out
			}
			break
		}
	}
	return to
}

var jsGroupRef = regexp.MustCompile(`\$(\d+)`)

// jsReplacement converts a JavaScript replacement string ($1) to regexp2's (${1}).
func jsReplacement(r string) string { return jsGroupRef.ReplaceAllString(r, "$${$1}") }
