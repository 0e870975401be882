package memdb

import (
	"context"
	"regexp"
	"sort"
	"strings"

	"sentinel-go/couch"
	"sentinel-go/jsv"
)

// The lookups below give the rows of the daemon's views (couch/views.go):
// the map functions are written again in Go, and rows come in CouchDB's
// order (by key, then doc id). With Deferring, the contact lookups and the
// taken shortcodes are answered by the index instead (index.go), as
// couch.IndexedDB answers them.

// viewContactTypes are the views' CONTACT_TYPES.
var viewContactTypes = map[string]bool{"contact": true, "person": true, "clinic": true, "health_center": true, "district_hospital": true}

func isViewContact(doc Doc) bool {
	t, _ := doc["type"].(string)
	return viewContactTypes[t]
}

// emits is the views' test of a shortcode value: defined, not null, not the empty string.
func emits(v any) bool {
	if v == nil {
		return false
	}
	s, isStr := v.(string)
	return !isStr || s != ""
}

// contactKeys are the keys of contacts_by_phone ("p:"), contacts_by_reference
// shortcodes ("s:") and rc codes ("e:") of a doc; none for other docs.
func contactKeys(doc Doc) []string {
	if !isViewContact(doc) {
		return nil
	}
	var keys []string
	if jsv.Truthy(doc["phone"]) {
		keys = append(keys, "p:"+jsv.String(doc["phone"]))
	}
	for _, f := range []string{"patient_id", "place_id"} {
		if v, ok := doc[f]; ok && emits(v) {
			keys = append(keys, "s:"+jsv.String(v))
		}
	}
	if jsv.Truthy(doc["rc_code"]) {
		keys = append(keys, "e:"+strings.ToUpper(jsv.String(doc["rc_code"])))
	}
	return keys
}

func hasKey(doc Doc, key string) bool {
	for _, k := range contactKeys(doc) {
		if k == key {
			return true
		}
	}
	return false
}

// shortcodes are the keys of docs_by_shortcode.
func shortcodes(doc Doc) []string {
	var out []string
	for _, f := range []string{"patient_id", "place_id", "case_id"} {
		if v, ok := doc[f]; ok && emits(v) {
			out = append(out, jsv.String(v))
		}
	}
	return out
}

// isReport is the views' report test: a data_record with a truthy form.
func isReport(doc Doc) bool { return doc["type"] == "data_record" && jsv.Truthy(doc["form"]) }

// live returns the stored docs (must hold d.mu), sorted by id, design docs left out.
func (d *DB) live() []Doc {
	ids := make([]string, 0, len(d.docs))
	for id, e := range d.docs {
		if !e.deleted && !strings.HasPrefix(id, "_design/") {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	out := make([]Doc, len(ids))
	for i, id := range ids {
		out[i] = d.docs[id].doc
	}
	return out
}

// contactsBy answers a contact lookup under key.
func (d *DB) contactsBy(op, arg, key string) ([]Doc, error) {
	if err := d.fail(op, arg); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Deferring {
		return d.ix().contacts(d, key), nil
	}
	var out []Doc
	for _, doc := range d.live() {
		if hasKey(doc, key) {
			out = append(out, clone(doc))
		}
	}
	return out, nil
}

// ContactsByPhone returns contacts whose phone is exactly phone.
func (d *DB) ContactsByPhone(_ context.Context, phone string) ([]Doc, error) {
	return d.contactsBy("ContactsByPhone", phone, "p:"+phone)
}

// ContactsByShortcode returns contacts whose patient_id or place_id is code.
func (d *DB) ContactsByShortcode(_ context.Context, code string) ([]Doc, error) {
	return d.contactsBy("ContactsByShortcode", code, "s:"+code)
}

// ContactsByRCCode returns contacts whose upper-cased rc_code is code.
func (d *DB) ContactsByRCCode(_ context.Context, code string) ([]Doc, error) {
	return d.contactsBy("ContactsByRCCode", code, "e:"+code)
}

// UsedShortcodes returns which of codes a doc holds as patient_id, place_id
// or case_id (with Deferring: any doc ever seen, deleted ones included, as
// the index never forgets a code).
func (d *DB) UsedShortcodes(_ context.Context, codes []string) (map[string]bool, error) {
	if err := d.fail("UsedShortcodes", strings.Join(codes, ",")); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	used := map[string]bool{}
	if d.Deferring {
		ix := d.ix()
		for _, c := range codes {
			if ix.used[c] {
				used[c] = true
			}
		}
		return used, nil
	}
	want := map[string]bool{}
	for _, c := range codes {
		want[c] = true
	}
	for _, doc := range d.live() {
		for _, c := range shortcodes(doc) {
			if want[c] {
				used[c] = true
			}
		}
	}
	return used, nil
}

// subjects are the keys reports_by_subject emits for a report.
func subjects(doc Doc) []string {
	if !isReport(doc) {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	f := jsv.Map(doc["fields"])
	for _, v := range []any{doc["patient_id"], doc["place_id"], doc["case_id"], f["patient_id"], f["place_id"], f["case_id"], f["patient_uuid"], f["place_uuid"]} {
		if !emits(v) {
			continue
		}
		s := jsv.String(v)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ReportsBySubject returns the reports about any of ids: rows by key in the
// order of ids, then doc id, de-duplicated by doc.
func (d *DB) ReportsBySubject(_ context.Context, ids []string) ([]Doc, error) {
	if err := d.fail("ReportsBySubject", strings.Join(ids, ",")); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	docs := d.live()
	seen := map[string]bool{}
	var out []Doc
	for _, key := range ids {
		for _, doc := range docs {
			id := jsv.String(doc["_id"])
			if seen[id] {
				continue
			}
			for _, s := range subjects(doc) {
				if s == key {
					seen[id] = true
					out = append(out, clone(doc))
					break
				}
			}
		}
	}
	return out, nil
}

var dateKey = regexp.MustCompile(`_date$`)

// freetextTerms are the keys reports_by_freetext emits for a report.
func freetextTerms(doc Doc) []string {
	if !isReport(doc) {
		return nil
	}
	skip := map[string]bool{"_id": true, "_rev": true, "type": true, "refid": true, "content": true}
	seen := map[string]bool{}
	var out []string
	scan := func(obj map[string]any) {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := obj[k]
			if skip[k] || dateKey.MatchString(k) {
				continue
			}
			switch v.(type) {
			case string, float64:
			default:
				continue
			}
			term := k + ":" + strings.ToLower(jsv.String(v))
			if len(term) < 3 || seen[term] {
				continue
			}
			seen[term] = true
			out = append(out, term)
		}
	}
	scan(doc)
	scan(jsv.Map(doc["fields"]))
	return out
}

// ReportsByFreetext returns the reports whose free-text terms hold term, by doc id.
func (d *DB) ReportsByFreetext(_ context.Context, term string) ([]couch.FreetextReport, error) {
	if err := d.fail("ReportsByFreetext", term); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []couch.FreetextReport
	for _, doc := range d.live() {
		for _, t := range freetextTerms(doc) {
			if t == term {
				rd, _ := orZero(doc["reported_date"]).(float64)
				out = append(out, couch.FreetextReport{ID: jsv.String(doc["_id"]), Form: jsv.String(doc["form"]),
					ReportedDate: rd, HasErrors: len(jsv.Slice(doc["errors"])) > 0})
				break
			}
		}
	}
	return out, nil
}

// orZero is JS's `v || 0`.
func orZero(v any) any {
	if !jsv.Truthy(v) {
		return 0.0
	}
	return v
}

// DescendantIDs returns the ids of the contacts below ancestorID (a row per
// occurrence of the ancestor in a contact's parent chain, by doc id).
func (d *DB) DescendantIDs(_ context.Context, ancestorID string) ([]string, error) {
	if err := d.fail("DescendantIDs", ancestorID); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []string{}
	for _, doc := range d.live() {
		if !isViewContact(doc) {
			continue
		}
		p := jsv.Map(doc["parent"])
		for depth := 1; p != nil && jsv.Truthy(p["_id"]) && depth < 20; depth++ {
			if jsv.String(p["_id"]) == ancestorID {
				out = append(out, jsv.String(doc["_id"]))
			}
			p = jsv.Map(p["parent"])
		}
	}
	return out, nil
}

// numericDate is a report's `reported_date || 0` when it is a number (a
// key other than a number is outside every numeric range).
func numericDate(doc Doc) (float64, bool) {
	f, ok := orZero(doc["reported_date"]).(float64)
	return f, ok
}

// ReportsByDate returns the reports of forms (any when empty) with a
// numeric reported_date in [start, end], newest first (equal dates: higher
// doc id first, the descending view order); with several forms, the
// per-form lists are merged by reported_date, stably.
func (d *DB) ReportsByDate(_ context.Context, forms []string, start, end float64) ([]Doc, error) {
	if err := d.fail("ReportsByDate", strings.Join(forms, ",")); err != nil {
		return nil, err
	}
	if end < start {
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	inRange := func(form string) []Doc {
		var rows []Doc
		for _, doc := range d.live() {
			if !isReport(doc) || form != "" && doc["form"] != form {
				continue
			}
			if rd, ok := numericDate(doc); ok && rd >= start && rd <= end {
				rows = append(rows, doc)
			}
		}
		sort.SliceStable(rows, func(i, j int) bool {
			a, _ := numericDate(rows[i])
			b, _ := numericDate(rows[j])
			if a != b {
				return a > b
			}
			return jsv.String(rows[i]["_id"]) > jsv.String(rows[j]["_id"])
		})
		return rows
	}
	var out []Doc
	if len(forms) == 0 {
		out = inRange("")
	} else {
		seen := map[string]bool{}
		for _, f := range forms {
			if !seen[f] {
				seen[f] = true
				out = append(out, inRange(f)...)
			}
		}
		if len(seen) > 1 {
			sort.SliceStable(out, func(i, j int) bool {
				a, _ := out[i]["reported_date"].(float64)
				b, _ := out[j]["reported_date"].(float64)
				return a > b
			})
		}
	}
	for i := range out {
		out[i] = clone(out[i])
	}
	return out, nil
}

// ReportsByFormAndParent returns the reports of form whose stored
// contact.parent._id is parentID, by reported_date (numbers before other
// values), then doc id.
func (d *DB) ReportsByFormAndParent(_ context.Context, form, parentID string) ([]Doc, error) {
	if err := d.fail("ReportsByFormAndParent", form+","+parentID); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var rows []Doc
	for _, doc := range d.live() {
		pid, _ := jsv.Get(doc, "contact.parent._id")
		if isReport(doc) && doc["form"] == form && jsv.Truthy(pid) && jsv.String(pid) == parentID {
			rows = append(rows, doc)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		return collate(orZero(rows[i]["reported_date"]), orZero(rows[j]["reported_date"])) < 0
	})
	out := make([]Doc, len(rows))
	for i, r := range rows {
		out[i] = clone(r)
	}
	return out, nil
}

// collate orders two scalar view keys as CouchDB does: null, false, true,
// numbers, strings, then arrays and objects (left equal here).
func collate(a, b any) int {
	rank := func(v any) int {
		switch x := v.(type) {
		case nil:
			return 0
		case bool:
			if x {
				return 2
			}
			return 1
		case float64:
			return 3
		case string:
			return 4
		}
		return 5
	}
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return ra - rb
	}
	switch x := a.(type) {
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	case string:
		return strings.Compare(x, b.(string))
	}
	return 0
}
