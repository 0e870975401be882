package messages

import (
	"sentinel-go/jsv"
)

// Layers builds the template context of messages.md §4 as layers, the first
// layer defining a key winning: subjects, the caller's extra keys, the
// patient, the place, the doc, then the first patient and place registrations.
// extra may hold `patient` and `place` (default: the doc's hydrated subjects),
// `registrations`, `placeRegistrations` and free keys (e.g. `next_msg`).
func Layers(doc map[string]any, extra map[string]any) []map[string]any {
	patient, place := subjects(doc, extra)
	var layers []map[string]any
	subj := map[string]any{}
	if patient != nil {
		subj["patient"] = patient
	}
	if place != nil {
		subj["place"] = place
	}
	layers = append(layers, subj)
	rest := map[string]any{}
	for k, v := range extra {
		if k != "patient" && k != "place" {
			rest[k] = v
		}
	}
	layers = append(layers, rest)
	if patient != nil {
		layers = append(layers, docLayers(patient)...)
		layers = append(layers, map[string]any{"patient_name": patient["name"]})
	}
	if place != nil {
		layers = append(layers, docLayers(place)...)
	}
	layers = append(layers, docLayers(doc)...)
	for _, key := range []string{"registrations", "placeRegistrations"} {
		if regs := jsv.Slice(extra[key]); len(regs) > 0 {
			if r := jsv.Map(regs[0]); r != nil {
				layers = append(layers, docLayers(r)...)
			}
		}
	}
	return layers
}

func subjects(doc, extra map[string]any) (patient, place map[string]any) {
	if v, ok := extra["patient"]; ok {
		patient = jsv.Map(v)
	} else {
		patient = jsv.Map(doc["patient"])
	}
	if v, ok := extra["place"]; ok {
		place = jsv.Map(v)
	} else {
		place = jsv.Map(doc["place"])
	}
	return
}

// docLayers are a doc's derived keys, its fields, then its own properties.
func docLayers(x map[string]any) []map[string]any {
	return []map[string]any{Derived(x), jsv.Map(x["fields"]), x}
}

// Derived returns the derived keys of x: `clinic`, `health_center`,
// `district` (the first doc of that type walking up from x when it has a
// parent, else from its contact) and the deprecated aliases `parent`
// (= health_center) and `grandparent` (= district). Keys not found are absent.
func Derived(x map[string]any) map[string]any {
	out := map[string]any{}
	start := walkStart(x)
	for key, typ := range map[string]string{"clinic": "clinic", "health_center": "health_center", "district": "district_hospital"} {
		if d := findAncestor(start, typ); d != nil {
			out[key] = d
		}
	}
	if hc, ok := out["health_center"]; ok {
		out["parent"] = hc
	}
	if d, ok := out["district"]; ok {
		out["grandparent"] = d
	}
	return out
}

// walkStart is x when it has a parent, else its contact.
func walkStart(x map[string]any) map[string]any {
	if x == nil {
		return nil
	}
	if jsv.Map(x["parent"]) != nil {
		return x
	}
	return jsv.Map(x["contact"])
}

// docType is `contact_type` for configurable contacts, else `type`.
func docType(d map[string]any) string {
	if t, _ := d["type"].(string); t != "" && t != "contact" {
		return t
	}
	t, _ := d["contact_type"].(string)
	return t
}

// findAncestor returns the first node of type typ from start upwards
// (start included).
func findAncestor(start map[string]any, typ string) map[string]any {
	n := start
	for i := 0; n != nil && i < 30; i++ {
		if docType(n) == typ || n["type"] == typ {
			return n
		}
		n = jsv.Map(n["parent"])
	}
	return nil
}

// lookup returns the value of a top-level key in the layers.
func lookup(layers []map[string]any, key string) (any, bool) {
	for _, l := range layers {
		if v, ok := l[key]; ok && v != nil {
			return v, true
		}
	}
	return nil, false
}

// lookupPath resolves a dotted path in the layers.
func lookupPath(layers []map[string]any, path string) (any, bool) {
	head, rest := path, ""
	for i := 0; i < len(path); i++ {
		if path[i] == '.' {
			head, rest = path[:i], path[i+1:]
			break
		}
	}
	v, ok := lookup(layers, head)
	if !ok || rest == "" {
		return v, ok
	}
	return jsv.Get(v, rest)
}
