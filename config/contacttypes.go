package config

import "sentinel-go/jsv"

// ContactType is one entry of settings.contact_types.
type ContactType struct {
	ID      string
	Parents []string
	Person  bool
}

// ContactTypes is settings.contact_types, in order.
type ContactTypes struct {
	List       []ContactType
	byID       map[string]*ContactType
	configured bool
}

// hardcoded is CHT's legacy hierarchy, used for type questions when
// settings.contact_types is absent.
var hardcoded = []ContactType{
	{ID: "district_hospital"},
	{ID: "health_center", Parents: []string{"district_hospital"}},
	{ID: "clinic", Parents: []string{"health_center"}},
	{ID: "person", Parents: []string{"district_hospital", "health_center", "clinic"}, Person: true},
}

func parseContactTypes(v any) ContactTypes {
	ct := ContactTypes{byID: map[string]*ContactType{}}
	arr, ok := v.([]any)
	if !ok {
		ct.List = append(ct.List, hardcoded...)
	} else {
		ct.configured = true
		for _, e := range arr {
			m := jsv.Map(e)
			id, _ := m["id"].(string)
			if id == "" {
				continue
			}
			t := ContactType{ID: id, Person: m["person"] == true || id == "person"}
			for _, p := range jsv.Slice(m["parents"]) {
				if s, ok := p.(string); ok {
					t.Parents = append(t.Parents, s)
				}
			}
			ct.List = append(ct.List, t)
		}
	}
	for i := range ct.List {
		ct.byID[ct.List[i].ID] = &ct.List[i]
	}
	return ct
}

// Configured reports whether settings.contact_types exists.
func (c ContactTypes) Configured() bool { return c.configured }

// Get returns the type with id, or nil.
func (c ContactTypes) Get(id string) *ContactType { return c.byID[id] }

// IsPerson reports whether id is a known person type.
func (c ContactTypes) IsPerson(id string) bool {
	t := c.byID[id]
	return t != nil && t.Person
}

// IsPlace reports whether id is a known place type.
func (c ContactTypes) IsPlace(id string) bool {
	t := c.byID[id]
	return t != nil && !t.Person
}

// LeafPlaceTypes are place types no other place type lists as a parent.
func (c ContactTypes) LeafPlaceTypes() []string {
	parent := map[string]bool{}
	for _, t := range c.List {
		if !t.Person {
			for _, p := range t.Parents {
				parent[p] = true
			}
		}
	}
	var out []string
	for _, t := range c.List {
		if !t.Person && !parent[t.ID] {
			out = append(out, t.ID)
		}
	}
	return out
}

// TypeOf returns a doc's contact type: `contact_type` when `type` is
// "contact", else `type`.
func TypeOf(doc map[string]any) string {
	t, _ := doc["type"].(string)
	if t == "contact" {
		ct, _ := doc["contact_type"].(string)
		return ct
	}
	return t
}

// ContactDocTypes are the `type` values of contact docs.
var ContactDocTypes = map[string]bool{"contact": true, "person": true, "clinic": true, "health_center": true, "district_hospital": true}

// IsContact reports whether doc is a contact (person or place).
func IsContact(doc map[string]any) bool {
	t, _ := doc["type"].(string)
	return ContactDocTypes[t]
}
