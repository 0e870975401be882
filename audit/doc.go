// Package audit records the daemon's own writes to the main database in
// CHT's audit log, `<db>-audit`: one doc per main-db doc id whose `history`
// lists the last writes to it (revision, user, date, service), as CHT API
// does for users' writes (spec feed.md §12).
//
// The doc logic (Apply) works on plain values; Write applies entries to an
// audit db in one read and one bulk write; Log is the bounded queue that
// the couch layer feeds (it implements couch.Auditor) and that writes in
// the background, so that the main write never waits for, fails with or
// repeats because of its audit.
package audit

import (
	"strings"
	"time"
)

// Service is what the entries of the daemon name as their author service.
const Service = "sentinel"

// MaxHistory is how many entries an audit doc holds before it is rotated.
const MaxHistory = 10

// Entry is one line to append to the history of the audit doc of ID.
type Entry struct {
	ID   string
	Rev  string // the revision written ("" for an archiving entry)
	User string
	Date string // ISO-8601 UTC with milliseconds
	// Archived marks the entry archiving writes (jobs.md §2): no revision,
	// and none is added when the history already has one.
	Archived bool
}

// DateOf formats t as the entries' dates are written.
func DateOf(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// value is the entry as stored in `history`.
func (e Entry) value() map[string]any {
	if e.Archived {
		return map[string]any{"date": e.Date, "archived": true}
	}
	return map[string]any{"rev": e.Rev, "user": e.User, "date": e.Date, "service": Service}
}

// Audited reports whether writes to the main-db doc id are recorded: not
// local docs, design docs, nor the web app's service-worker-meta (CHT API
// leaves them out too).
func Audited(id string) bool {
	return id != "" && !strings.HasPrefix(id, "_local/") && !strings.HasPrefix(id, "_design/") && id != "service-worker-meta"
}

// Apply appends entries, all for doc id and in write order, to its audit
// doc (nil when there is none yet). It returns the audit doc to write (nil
// when nothing changed) and the rotated copies to create first.
//
// Entries already present are skipped, so that applying a batch again
// after an answer was lost does not record a write twice: an entry whose
// revision the history holds, an archiving entry when the history already
// has one. Whatever else the history holds (CHT API's entries with their
// request_id) is kept as it is.
func Apply(id string, doc map[string]any, entries []Entry) (updated map[string]any, rotated []map[string]any) {
	if doc == nil {
		doc = map[string]any{"_id": id, "history": []any{}}
	}
	history, _ := doc["history"].([]any)
	changed := false
	for _, e := range entries {
		if recorded(history, e) {
			continue
		}
		if len(history) >= MaxHistory {
			rotated = append(rotated, map[string]any{"_id": id + ":" + lastRev(history), "history": history})
			history = nil
		}
		history = append(history, e.value())
		changed = true
	}
	if !changed {
		return nil, nil
	}
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	out["_id"] = id
	out["history"] = history
	return out, rotated
}

// recorded reports whether history already holds e.
func recorded(history []any, e Entry) bool {
	for _, h := range history {
		m, _ := h.(map[string]any)
		if m == nil {
			continue
		}
		if e.Archived {
			if a, _ := m["archived"].(bool); a {
				return true
			}
		} else if rev, _ := m["rev"].(string); rev == e.Rev {
			return true
		}
	}
	return false
}

// lastRev names a rotated copy: the revision of the last entry that has
// one (an archiving entry has none; the reference writes "undefined"),
// else the date of the last entry.
func lastRev(history []any) string {
	for i := len(history) - 1; i >= 0; i-- {
		if m, _ := history[i].(map[string]any); m != nil {
			if rev, _ := m["rev"].(string); rev != "" {
				return rev
			}
		}
	}
	if n := len(history); n > 0 {
		if m, _ := history[n-1].(map[string]any); m != nil {
			if d, _ := m["date"].(string); d != "" {
				return d
			}
		}
	}
	return "unknown"
}
