package couch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
)

// LegacyDesignDocID is the single design doc that held every view before
// they were split by use (see designDocs); EnsureDesignDoc deletes it.
const LegacyDesignDocID = "_design/sentinel-go"

// designPrefix starts the name of each of the daemon's design docs.
const designPrefix = "sentinel-go-"

// designDocs groups the views into design docs, one per set of views used
// together. CouchDB builds all the views of a design doc as one index, so a
// query waits for every view of its design doc: the heavy free-text view
// has its own, so that a registration's lookup of a subject's reports never
// waits for it, and neither waits for the jobs' views. (Each design doc is
// one pass over the database when built: grouping rather than one doc per
// view keeps those passes few.)
var designDocs = map[string][]string{
	// the lookups the index answers from memory once built (views until then)
	"contacts": {"contacts_by_phone", "contacts_by_reference", "docs_by_shortcode", "contacts_by_ancestor", "contacts_by_type"},
	// registrations and patient reports: a subject's reports
	"subjects": {"reports_by_subject"},
	// validations' unique/exists rules
	"freetext": {"reports_by_freetext"},
	// alerts, reminders, update_scheduled_reports
	"reports": {"reports_by_form_and_date", "reports_by_date", "reports_by_form_and_parent"},
	// the due-tasks job
	"tasks": {"scheduled_tasks_by_due"},
}

// designOf maps each view to the name of its design doc (without `_design/`).
var designOf = func() map[string]string {
	m := map[string]string{}
	for group, vs := range designDocs {
		for _, v := range vs {
			m[v] = designPrefix + group
		}
	}
	return m
}()

// DesignDocIDs returns the ids of the daemon's design docs in the main db,
// sorted.
func DesignDocIDs() []string {
	var ids []string
	for group := range designDocs {
		ids = append(ids, "_design/"+designPrefix+group)
	}
	sort.Strings(ids)
	return ids
}

const isContact = `var CONTACT_TYPES = {contact: 1, person: 1, clinic: 1, health_center: 1, district_hospital: 1};`

// views holds the map functions. They are plain ES5 so that CouchDB 2/3's
// SpiderMonkey/QuickJS and PouchDB Server's JavaScript both run them.
var views = map[string]string{
	// contact by phone [CHT contacts_by_phone]
	"contacts_by_phone": `function (doc) {
  ` + isContact + `
  if (CONTACT_TYPES[doc.type] && doc.phone) { emit(String(doc.phone), null); }
}`,
	// contact by shortcode or rc_code [CHT contacts_by_reference]
	"contacts_by_reference": `function (doc) {
  ` + isContact + `
  if (!CONTACT_TYPES[doc.type]) { return; }
  if (doc.patient_id !== undefined && doc.patient_id !== null && doc.patient_id !== '') { emit(['shortcode', String(doc.patient_id)], null); }
  if (doc.place_id !== undefined && doc.place_id !== null && doc.place_id !== '') { emit(['shortcode', String(doc.place_id)], null); }
  if (doc.rc_code) { emit(['external', String(doc.rc_code).toUpperCase()], null); }
}`,
	// any doc holding a shortcode [CHT docs_by_shortcode]
	"docs_by_shortcode": `function (doc) {
  ['patient_id', 'place_id', 'case_id'].forEach(function (k) {
    var v = doc[k];
    if (v !== undefined && v !== null && v !== '') { emit(String(v), null); }
  });
}`,
	// reports by subject id [CHT reports_by_subject]; value: reported_date
	"reports_by_subject": `function (doc) {
  if (doc.type !== 'data_record' || !doc.form) { return; }
  var seen = {};
  var add = function (v) {
    if (v === undefined || v === null || v === '') { return; }
    v = String(v);
    if (!seen[v]) { seen[v] = true; emit(v, doc.reported_date || 0); }
  };
  var f = doc.fields || {};
  add(doc.patient_id); add(doc.place_id); add(doc.case_id);
  add(f.patient_id); add(f.place_id); add(f.case_id); add(f.patient_uuid); add(f.place_uuid);
}`,
	// report free-text terms [CHT reports_by_freetext], for unique/exists rules
	"reports_by_freetext": `function (doc) {
  if (doc.type !== 'data_record' || !doc.form) { return; }
  var skip = {_id: 1, _rev: 1, type: 1, refid: 1, content: 1};
  var value = {form: doc.form, reported_date: doc.reported_date || 0, has_errors: !!(doc.errors && doc.errors.length)};
  var seen = {};
  var scan = function (obj) {
    if (!obj || typeof obj !== 'object') { return; }
    Object.keys(obj).forEach(function (k) {
      var v = obj[k];
      if (skip[k] || /_date$/.test(k)) { return; }
      if (typeof v !== 'string' && typeof v !== 'number') { return; }
      var term = k + ':' + String(v).toLowerCase();
      if (term.length < 3 || seen[term]) { return; }
      seen[term] = true;
      emit(term, value);
    });
  };
  scan(doc); scan(doc.fields);
}`,
	// contacts by each of their ancestors, for descendant walks
	"contacts_by_ancestor": `function (doc) {
  ` + isContact + `
  if (!CONTACT_TYPES[doc.type]) { return; }
  var p = doc.parent, depth = 1;
  while (p && p._id && depth < 20) { emit(p._id, depth); p = p.parent; depth++; }
}`,
	// contacts by type (contact_type for configurable types)
	"contacts_by_type": `function (doc) {
  ` + isContact + `
  if (!CONTACT_TYPES[doc.type]) { return; }
  emit(doc.type === 'contact' ? doc.contact_type : doc.type, null);
}`,
	// docs with scheduled_tasks in state "scheduled", by due date (ISO or ms)
	"scheduled_tasks_by_due": `function (doc) {
  if (!doc.scheduled_tasks || !doc.scheduled_tasks.length) { return; }
  var min = null;
  doc.scheduled_tasks.forEach(function (t) {
    if (!t || t.state !== 'scheduled') { return; }
    var due = t.due !== undefined && t.due !== null ? t.due : (t.timestamp !== undefined && t.timestamp !== null ? t.timestamp : doc.reported_date);
    var ms = typeof due === 'number' ? due : Date.parse(due);
    if (isNaN(ms)) { return; }
    emit(ms, null);
  });
}`,
	// reports by form and reported_date, for alert windows
	"reports_by_form_and_date": `function (doc) {
  if (doc.type === 'data_record' && doc.form) { emit([doc.form, doc.reported_date || 0], null); }
}`,
	// reports by reported_date, for alert windows over every form
	"reports_by_date": `function (doc) {
  if (doc.type === 'data_record' && doc.form) { emit(doc.reported_date || 0, null); }
}`,
	// reports by form and the stored submitter's parent (facility), oldest
	// first: conditional_alerts history, update_scheduled_reports duplicates
	"reports_by_form_and_parent": `function (doc) {
  if (doc.type === 'data_record' && doc.form && doc.contact && doc.contact.parent && doc.contact.parent._id) {
    emit([doc.form, String(doc.contact.parent._id), doc.reported_date || 0], null);
  }
}`,
}

// EnsureDesignDoc installs or updates each of the daemon's design docs whose
// views differ from those this binary carries (a design doc carries a hash
// of its views: changing one view rebuilds only its group), and deletes the
// legacy single design doc, whose index CouchDB then cleans up.
func (d *DB) EnsureDesignDoc(ctx context.Context) error {
	for group, names := range designDocs {
		if err := d.ensureDesignDoc(ctx, "_design/"+designPrefix+group, names); err != nil {
			return err
		}
	}
	return d.dropLegacyDesignDoc(ctx)
}

func (d *DB) ensureDesignDoc(ctx context.Context, id string, names []string) error {
	vs := map[string]any{}
	h := sha256.New()
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, name := range sorted {
		fn, ok := views[name]
		if !ok {
			return fmt.Errorf("design doc %s: no view %s", id, name)
		}
		vs[name] = map[string]any{"map": fn}
		fmt.Fprintf(h, "%s\x00%s\x00", name, fn)
	}
	version := hex.EncodeToString(h.Sum(nil))[:16]
	cur, err := d.Get(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("read design doc %s: %w", id, err)
	}
	if cur != nil && cur["version"] == version {
		return nil
	}
	doc := Doc{"_id": id, "language": "javascript", "version": version, "views": vs}
	if cur != nil {
		doc["_rev"] = cur["_rev"]
	}
	// A conflict is another instance installing the same views.
	if err := d.Put(ctx, doc); err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("install design doc %s: %w", id, err)
	}
	return nil
}

// dropLegacyDesignDoc deletes `_design/sentinel-go` when it exists: nothing
// queries it any more, and its index would stay on disk. `_view_cleanup`
// then removes the index files of deleted design docs (best effort: it
// needs an admin, and CouchDB also cleans up by itself in time).
func (d *DB) dropLegacyDesignDoc(ctx context.Context) error {
	cur, err := d.Get(ctx, LegacyDesignDocID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read legacy design doc: %w", err)
	}
	rev, _ := cur["_rev"].(string)
	// Best effort: a legacy doc left behind (a refusal, a lost request)
	// costs disk only, and the next start tries again.
	if err := d.Delete(ctx, LegacyDesignDocID, rev); err != nil {
		return nil
	}
	_ = d.k.ViewCleanup(ctx)
	return nil
}

// View runs one of the daemon's views.
func (d *DB) View(ctx context.Context, view string, params map[string]any) ([]Row, error) {
	ddoc, ok := designOf[view]
	if !ok {
		return nil, fmt.Errorf("view %s: not one of the daemon's views", view)
	}
	return d.Query(ctx, ddoc, view, params)
}

// viewDocs returns the docs of the rows for key, de-duplicated, in view order.
func (d *DB) viewDocs(ctx context.Context, view string, key any) ([]Doc, error) {
	return d.viewDocsParams(ctx, view, map[string]any{"key": key, "include_docs": true})
}

// viewDocsParams returns the docs of a view query with include_docs,
// de-duplicated by _id, in view order.
func (d *DB) viewDocsParams(ctx context.Context, view string, params map[string]any) ([]Doc, error) {
	rows, err := d.View(ctx, view, params)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Doc
	for _, r := range rows {
		if r.Doc == nil || seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		out = append(out, r.Doc)
	}
	return out, nil
}

// ContactsByPhone returns contacts whose phone is exactly phone.
func (d *DB) ContactsByPhone(ctx context.Context, phone string) ([]Doc, error) {
	return d.viewDocs(ctx, "contacts_by_phone", phone)
}

// ContactsByShortcode returns contacts whose patient_id or place_id is code.
func (d *DB) ContactsByShortcode(ctx context.Context, code string) ([]Doc, error) {
	return d.viewDocs(ctx, "contacts_by_reference", []any{"shortcode", code})
}

// ContactsByRCCode returns contacts whose upper-cased rc_code is code.
func (d *DB) ContactsByRCCode(ctx context.Context, code string) ([]Doc, error) {
	return d.viewDocs(ctx, "contacts_by_reference", []any{"external", code})
}

// UsedShortcodes returns which of codes are held by any doc as patient_id,
// place_id or case_id.
func (d *DB) UsedShortcodes(ctx context.Context, codes []string) (map[string]bool, error) {
	keys := make([]any, len(codes))
	for i, c := range codes {
		keys[i] = c
	}
	rows, err := d.View(ctx, "docs_by_shortcode", map[string]any{"keys": keys})
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, r := range rows {
		if s, ok := r.Key.(string); ok {
			used[s] = true
		}
	}
	return used, nil
}

// ReportsBySubject returns the reports about any of ids (deduplicated by _id,
// in view order).
func (d *DB) ReportsBySubject(ctx context.Context, ids []string) ([]Doc, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]any, len(ids))
	for i, id := range ids {
		keys[i] = id
	}
	return d.viewDocsParams(ctx, "reports_by_subject", map[string]any{"keys": keys, "include_docs": true})
}

// DescendantIDs returns the ids of all contacts below ancestorID.
func (d *DB) DescendantIDs(ctx context.Context, ancestorID string) ([]string, error) {
	rows, err := d.View(ctx, "contacts_by_ancestor", map[string]any{"key": ancestorID})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out, nil
}

// FreetextReport is one report of the free-text index.
type FreetextReport struct {
	ID           string
	Form         string
	ReportedDate float64
	HasErrors    bool
}

// ReportsByFreetext returns the reports whose free-text index holds term
// ("key:value", value lower-cased), as CHT's reports_by_freetext view does.
func (d *DB) ReportsByFreetext(ctx context.Context, term string) ([]FreetextReport, error) {
	rows, err := d.View(ctx, "reports_by_freetext", map[string]any{"key": term})
	if err != nil {
		return nil, err
	}
	out := make([]FreetextReport, 0, len(rows))
	for _, r := range rows {
		v, _ := r.Value.(map[string]any)
		fr := FreetextReport{ID: r.ID}
		fr.Form, _ = v["form"].(string)
		fr.ReportedDate, _ = v["reported_date"].(float64)
		fr.HasErrors, _ = v["has_errors"].(bool)
		out = append(out, fr)
	}
	return out, nil
}

// windowPage is the page size of ReportsByDate, as the reference fetches.
const windowPage = 100

// ReportsByDate returns the reports (data_records with a form) whose numeric
// reported_date lies in [start, end] (epoch ms, inclusive), newest first,
// read in pages of 100. With forms, only reports of those forms (one range
// query per form); without, reports of any form.
func (d *DB) ReportsByDate(ctx context.Context, forms []string, start, end float64) ([]Doc, error) {
	if end < start {
		return nil, nil
	}
	var out []Doc
	if len(forms) == 0 {
		return d.pagedDescending(ctx, "reports_by_date", end, start)
	}
	seen := map[string]bool{}
	for _, f := range forms {
		if seen[f] {
			continue
		}
		seen[f] = true
		docs, err := d.pagedDescending(ctx, "reports_by_form_and_date", []any{f, end}, []any{f, start})
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	if len(seen) > 1 {
		sort.SliceStable(out, func(i, j int) bool {
			a, _ := out[i]["reported_date"].(float64)
			b, _ := out[j]["reported_date"].(float64)
			return a > b
		})
	}
	return out, nil
}

// pagedDescending reads view from startkey down to endkey with include_docs,
// windowPage rows at a time, until a short page.
func (d *DB) pagedDescending(ctx context.Context, view string, startkey, endkey any) ([]Doc, error) {
	params := map[string]any{"descending": true, "startkey": startkey, "endkey": endkey,
		"include_docs": true, "limit": windowPage}
	var out []Doc
	for {
		rows, err := d.View(ctx, view, params)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.Doc != nil {
				out = append(out, r.Doc)
			}
		}
		if len(rows) < windowPage {
			return out, nil
		}
		last := rows[len(rows)-1]
		params["startkey"] = last.Key
		params["startkey_docid"] = last.ID
		params["skip"] = 1
	}
}

// ReportsByFormAndParent returns the reports of form whose stored submitter's
// parent is parentID (contact.parent._id), oldest first by reported_date.
func (d *DB) ReportsByFormAndParent(ctx context.Context, form, parentID string) ([]Doc, error) {
	rows, err := d.View(ctx, "reports_by_form_and_parent", map[string]any{
		"startkey": []any{form, parentID}, "endkey": []any{form, parentID, map[string]any{}}, "include_docs": true})
	if err != nil {
		return nil, err
	}
	out := make([]Doc, 0, len(rows))
	for _, r := range rows {
		if r.Doc != nil {
			out = append(out, r.Doc)
		}
	}
	return out, nil
}
