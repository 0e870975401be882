// Package infodoc is the one place that knows the shape of the info docs the
// daemon keeps in the sentinel database: one `<id>-info` doc per processed
// doc, holding its transitions records, muting history and outbound pushes.
package infodoc

import "strings"

// suffix ends the id of every info doc.
const suffix = "-info"

// PendingKey holds, in an info doc, the transitions records of a run whose
// doc save may or may not have happened: {rev, transitions}. The save
// happened when the doc is no longer at rev; then the records stand, else
// they are dropped. Written by the engine before a change's save and by
// muting before a replayed report's save.
const PendingKey = "sentinel_go_pending"

// ID is the id of a doc's info doc in the sentinel db.
func ID(docID string) string { return docID + suffix }

// DocID is the id of the doc an info doc id is about; ok is false when id is
// not an info doc id.
func DocID(id string) (docID string, ok bool) {
	if len(id) <= len(suffix) || !strings.HasSuffix(id, suffix) {
		return "", false
	}
	return id[:len(id)-len(suffix)], true
}

// IsID reports whether id is an info doc's id (such docs are never processed).
func IsID(id string) bool { return strings.HasSuffix(id, suffix) }

// New is the info doc of a doc seen for the first time (the replication
// dates are unknown to the daemon: CHT API sets them).
func New(docID string) map[string]any {
	return map[string]any{"_id": ID(docID), "type": "info", "doc_id": docID,
		"initial_replication_date": "unknown", "latest_replication_date": "unknown"}
}
