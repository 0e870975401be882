package purging

import (
	"strings"

	"sentinel-go/jsv"
)

// ContactTypes are the `type` values of the contacts purging walks.
var ContactTypes = map[string]bool{"district_hospital": true, "health_center": true, "clinic": true, "person": true, "contact": true}

// nonEmpty is a non-empty string value.
func nonEmpty(v any) string {
	s, _ := v.(string)
	return s
}

func firstOf(vs ...any) string {
	for _, v := range vs {
		if s := nonEmpty(v); s != "" {
			return s
		}
	}
	return ""
}

// ReplicationSubject is CHT's "who this record replicates with" of a
// data_record (jobs.md §1.5); "" means unallocated. subjectJS is the same
// rule for the view.
func ReplicationSubject(doc map[string]any) string {
	contactID := nonEmpty(jsv.Map(doc["contact"])["_id"])
	if jsv.Truthy(doc["form"]) {
		if contactID != "" {
			for _, e := range jsv.Slice(doc["errors"]) {
				if c := jsv.Map(e)["code"]; c == "registration_not_found" || c == "invalid_patient_id" {
					return contactID
				}
			}
		}
		f := jsv.Map(doc["fields"])
		return firstOf(doc["patient_id"], f["patient_id"], doc["place_id"], f["place_id"], f["patient_uuid"], contactID)
	}
	if jsv.Truthy(doc["sms_message"]) {
		return contactID
	}
	if jsv.Truthy(doc["kujua_message"]) {
		task := jsv.Map(firstItem(doc["tasks"]))
		msg := jsv.Map(firstItem(task["messages"]))
		return nonEmpty(jsv.Map(msg["contact"])["_id"])
	}
	return ""
}

func firstItem(v any) any {
	if s := jsv.Slice(v); len(s) > 0 {
		return s[0]
	}
	return nil
}

// subjectJS is ReplicationSubject in ES5 for the views (CouchDB's
// JavaScript engine may be SpiderMonkey 1.8.5).
const subjectJS = `function subject(doc) {
  function str(v) { return typeof v === 'string' && v !== '' ? v : ''; }
  function first() { for (var i = 0; i < arguments.length; i++) { var s = str(arguments[i]); if (s) { return s; } } return ''; }
  var c = str(doc.contact && typeof doc.contact === 'object' ? doc.contact._id : '');
  if (doc.form) {
    if (c && Array.isArray(doc.errors)) {
      for (var i = 0; i < doc.errors.length; i++) {
        var e = doc.errors[i];
        if (e && (e.code === 'registration_not_found' || e.code === 'invalid_patient_id')) { return c; }
      }
    }
    var f = doc.fields && typeof doc.fields === 'object' ? doc.fields : {};
    return first(doc.patient_id, f.patient_id, doc.place_id, f.place_id, f.patient_uuid, c);
  }
  if (doc.sms_message) { return c; }
  if (doc.kujua_message) {
    var t = Array.isArray(doc.tasks) && doc.tasks[0] && typeof doc.tasks[0] === 'object' ? doc.tasks[0] : {};
    var m = Array.isArray(t.messages) && t.messages[0] && typeof t.messages[0] === 'object' ? t.messages[0] : {};
    return str(m.contact && typeof m.contact === 'object' ? m.contact._id : '');
  }
  return '';
}`

// ReportSubjectID is the subject a report is grouped under (jobs.md §1.5).
func ReportSubjectID(doc map[string]any) string {
	f := jsv.Map(doc["fields"])
	return firstOf(doc["patient_id"], f["patient_id"], doc["patient_uuid"], f["patient_uuid"],
		doc["place_id"], f["place_id"], doc["place_uuid"], f["place_uuid"])
}

// SubjectIDs are a contact's non-empty `_id`, `patient_id` and `place_id`.
func SubjectIDs(contact map[string]any) []string {
	var out []string
	for _, k := range []string{"_id", "patient_id", "place_id"} {
		if s := nonEmpty(contact[k]); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// IsReport: a data_record with a form (else a message).
func IsReport(doc map[string]any) bool { return jsv.Truthy(doc["form"]) }

// finalStates are the task states whose old tasks are purged.
var finalStates = map[string]bool{"Cancelled": true, "Completed": true, "Failed": true}

// designDoc is the purging job's own design doc: its views find records by
// replication subject, unallocated records, contacts and old tasks. Kept
// apart from the daemon's design doc so that adding it rebuilds no other
// index.
func designDoc() map[string]any {
	return map[string]any{
		"_id":      DesignDocID,
		"language": "javascript",
		"views": map[string]any{
			"by_subject": map[string]any{"map": "function (doc) {\n" + indent(subjectJS) +
				"\n  if (doc.type !== 'data_record') { return; }\n  var s = subject(doc);\n  if (s) { emit(s); }\n}"},
			"unallocated": map[string]any{"map": "function (doc) {\n" + indent(subjectJS) +
				"\n  if (doc.type !== 'data_record') { return; }\n  if (!subject(doc)) { emit(doc._id); }\n}"},
			"contacts": map[string]any{"map": `function (doc) {
  var types = { district_hospital: 1, health_center: 1, clinic: 1, person: 1, contact: 1 };
  if (types[doc.type] === 1) { emit(doc._id); }
}`},
			"final_tasks": map[string]any{"map": `function (doc) {
  var states = { Cancelled: 1, Completed: 1, Failed: 1 };
  if (doc.type === 'task' && states[doc.state] === 1 && doc.emission && typeof doc.emission.endDate === 'string') {
    emit([doc.emission.endDate, doc._id]);
  }
}`},
		},
	}
}

// DesignDocID names the purging views' design doc in the main db.
const DesignDocID = "_design/sentinel-go-purging"

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
