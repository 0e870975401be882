package sms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"sentinel-go/couch"
	"sentinel-go/jsv"
	"sentinel-go/messages"
	"sentinel-go/phone"
)

// designID is the SMS component's own design doc. It is separate from the
// daemon's design docs so that they are versioned and
// installed independently (the SMS server may run before the daemon has
// installed its own).
const designID = "_design/sentinel-go-sms"

const designName = "sentinel-go-sms"

// designVersion changes whenever a view below changes.
const designVersion = "2026-12-07.2"

// eachTask is shared by the views: it calls f(task, n) for every task of
// doc.tasks and doc.scheduled_tasks, n counting them. Paged views emit
// [time, doc id, n] so that every key is unique: pages then continue at a
// key, without startkey_docid (which PouchDB ignores) or skip.
const eachTask = `var eachTask = function (doc, f) {
  var n = 0;
  [doc.tasks, doc.scheduled_tasks].forEach(function (list) {
    if (!list || !list.length) { return; }
    list.forEach(function (t) { if (t && typeof t === 'object') { f(t, n); } n++; });
  });
};`

// smsViews are ES5 map functions (CouchDB and PouchDB Server run them).
var smsViews = map[string]string{
	// messages to send, oldest due first: task due, else timestamp, else the
	// doc's reported_date (spec §8.1); only complete messages (uuid, to,
	// message; never one holding `error`).
	"outgoing_by_due": `function (doc) {
  ` + eachTask + `
  eachTask(doc, function (t, n) {
    if (t.state !== 'pending' && t.state !== 'forwarded-to-gateway') { return; }
    var due = t.due !== undefined && t.due !== null ? t.due : (t.timestamp !== undefined && t.timestamp !== null ? t.timestamp : doc.reported_date);
    var ms = typeof due === 'number' ? due : Date.parse(due);
    if (isNaN(ms)) { ms = 0; }
    (t.messages || []).forEach(function (m, i) {
      if (m && m.uuid && m.to && m.message && !m.error) { emit([ms, doc._id, n, i], String(m.uuid)); }
    });
  });
}`,
	// every message by uuid, for CHT Gateway status updates
	"messages_by_uuid": `function (doc) {
  ` + eachTask + `
  eachTask(doc, function (t) {
    (t.messages || []).forEach(function (m) { if (m && m.uuid) { emit(String(m.uuid), null); } });
  });
}`,
	// every gateway id: incoming SMS (sms_message.gateway_ref) and outgoing
	// tasks (gateway_ref), for de-duplication and delivery reports
	"gateway_refs": `function (doc) {
  ` + eachTask + `
  var ok = function (v) { return v !== undefined && v !== null && v !== ''; };
  if (doc.sms_message && ok(doc.sms_message.gateway_ref)) { emit(String(doc.sms_message.gateway_ref), 'in'); }
  eachTask(doc, function (t) { if (ok(t.gateway_ref)) { emit(String(t.gateway_ref), 'out'); } });
}`,
	// RapidPro messages awaiting a final status, by the time of their last
	// state change (so that polling stops after a while, spec §6.3 ⚠)
	"awaiting_status": `function (doc) {
  ` + eachTask + `
  eachTask(doc, function (t, n) {
    if (t.gateway_ref === undefined || t.gateway_ref === null || t.gateway_ref === '') { return; }
    if (t.state !== 'received-by-gateway' && t.state !== 'forwarded-by-gateway' && t.state !== 'sent') { return; }
    var h = t.state_history && t.state_history.length ? t.state_history[t.state_history.length - 1] : null;
    var ms = h && h.timestamp ? Date.parse(h.timestamp) : 0;
    if (isNaN(ms)) { ms = 0; }
    emit([ms, doc._id, n], String(t.gateway_ref));
  });
}`,
}

// ensureViews installs the design doc once per process (or when its
// version differs).
func (s *Service) ensureViews(ctx context.Context) error {
	s.viewsMu.Lock()
	defer s.viewsMu.Unlock()
	if s.viewsOK {
		return nil
	}
	cur, err := s.db.Get(ctx, designID)
	if err != nil && !errors.Is(err, couch.ErrNotFound) {
		return fmt.Errorf("read SMS design doc: %w", err)
	}
	if cur == nil || cur["version"] != designVersion {
		vs := map[string]any{}
		for name, fn := range smsViews {
			vs[name] = map[string]any{"map": fn}
		}
		doc := couch.Doc{"_id": designID, "language": "javascript", "version": designVersion, "views": vs}
		if cur != nil {
			doc["_rev"] = cur["_rev"]
		}
		if err := s.db.Put(ctx, doc); err != nil && !errors.Is(err, couch.ErrConflict) {
			return fmt.Errorf("install SMS design doc: %w", err)
		}
	}
	s.viewsOK = true
	return nil
}

func (s *Service) view(ctx context.Context, name string, params map[string]any) ([]couch.Row, error) {
	if err := s.ensureViews(ctx); err != nil {
		return nil, err
	}
	return s.db.Query(ctx, designName, name, params)
}

// knownGatewayRef reports whether ref is already the gateway id of an
// incoming SMS or of an outgoing task (spec §8.3, first mechanism).
func (s *Service) knownGatewayRef(ctx context.Context, ref string) (bool, error) {
	rows, err := s.view(ctx, "gateway_refs", map[string]any{"key": ref, "limit": 1})
	if err != nil {
		return false, err
	}
	return len(rows) > 0, nil
}

// outgoing is one message to hand out, with the doc holding it.
type outgoing struct {
	docID string
	uuid  string
}

// dueMessages returns up to limit messages of the outgoing_by_due view,
// oldest due first, for which keep returns true (nil keeps all). At most
// maxScan rows are read, so a long run of skipped messages costs a bounded
// amount of work.
func (s *Service) dueMessages(ctx context.Context, limit, maxScan int, keep func(uuid string) bool) ([]outgoing, error) {
	var out []outgoing
	err := s.eachRow(ctx, "outgoing_by_due", nil, limit, maxScan, func(r couch.Row) bool {
		uuid, _ := r.Value.(string)
		if keep == nil || keep(uuid) {
			out = append(out, outgoing{docID: r.ID, uuid: uuid})
		}
		return len(out) < limit
	})
	return out, err
}

// eachRow calls fn on the rows of view from startkey (nil: the start), in
// pages of pageSize, until fn returns false, maxRows rows were read or the
// view ends. The SMS views' keys are unique, so a page starts at the key of
// the row after the previous page.
func (s *Service) eachRow(ctx context.Context, view string, startkey any, pageSize, maxRows int, fn func(couch.Row) bool) error {
	params := map[string]any{"limit": pageSize + 1}
	if startkey != nil {
		params["startkey"] = startkey
	}
	read := 0
	for {
		rows, err := s.view(ctx, view, params)
		if err != nil {
			return err
		}
		page := rows
		if len(rows) > pageSize {
			page = rows[:pageSize]
		}
		for _, r := range page {
			read++
			if !fn(r) || read >= maxRows {
				return nil
			}
		}
		if len(rows) <= pageSize {
			return nil
		}
		params = map[string]any{"limit": pageSize + 1, "startkey": rows[pageSize].Key}
	}
}

// sendable returns the recipient (normalised when it parses) and text of
// message uuid of doc while its task is pending or forwarded; ok is false
// for a message gone or already further along.
func sendable(doc couch.Doc, uuid, countryCode, validation string) (to, text string, ok bool) {
	task, msg := findMessage(doc, uuid)
	if msg == nil || (task["state"] != messages.StatePending && task["state"] != messages.StateForwarded) {
		return "", "", false
	}
	to = jsv.String(msg["to"])
	if n, ok := phone.Normalize(to, countryCode, validation); ok {
		to = n
	}
	return to, jsv.String(msg["message"]), true
}

// findMessage returns the task of doc holding the message uuid, and the
// message; nil when absent.
func findMessage(doc couch.Doc, uuid string) (task, msg map[string]any) {
	for _, key := range []string{"tasks", "scheduled_tasks"} {
		list, _ := doc[key].([]any)
		for _, t := range list {
			tm := jsv.Map(t)
			if tm == nil {
				continue
			}
			ms, _ := tm["messages"].([]any)
			for _, m := range ms {
				mm := jsv.Map(m)
				if mm != nil && jsv.String(mm["uuid"]) == uuid {
					return tm, mm
				}
			}
		}
	}
	return nil, nil
}

// tasksByRef returns the tasks of doc whose gateway_ref is ref.
func tasksByRef(doc couch.Doc, ref string) []map[string]any {
	var out []map[string]any
	for _, key := range []string{"tasks", "scheduled_tasks"} {
		list, _ := doc[key].([]any)
		for _, t := range list {
			tm := jsv.Map(t)
			if tm != nil && tm["gateway_ref"] != nil && jsv.String(tm["gateway_ref"]) == ref {
				out = append(out, tm)
			}
		}
	}
	return out
}

// stateChange is a state to set on the task holding a message (by uuid) or
// on the tasks with a gateway ref.
type stateChange struct {
	uuid    string // message uuid; or
	ref     string // gateway_ref to find the task by (when uuid is "")
	state   string
	details any // nil: none
	// gatewayRef is the ref to store (setRef true); with setRef false the
	// stored ref is removed, with keepRef true it is left as it is.
	gatewayRef any
	setRef     bool
	keepRef    bool
	// onlyFrom, when set, lists the states the task must be in for the
	// change to apply (a message handed out must not move back from a
	// status that arrived meanwhile).
	onlyFrom []string
}

// conflictRetries is how many times a conflicting save is retried (spec §4.2).
const conflictRetries = 3

// applyChanges groups changes by doc (given docID per change), applies them
// with messages.SetState semantics and saves each changed doc, re-reading
// and re-applying on a conflict up to conflictRetries times. It returns how
// many changes found their task.
func (s *Service) applyChanges(ctx context.Context, docIDs []string, changes []stateChange) (int, error) {
	byDoc := map[string][]stateChange{}
	var order []string
	for i, id := range docIDs {
		if _, ok := byDoc[id]; !ok {
			order = append(order, id)
		}
		byDoc[id] = append(byDoc[id], changes[i])
	}
	found := 0
	var firstErr error
	for _, id := range order {
		n, err := s.applyToDoc(ctx, id, byDoc[id])
		found += n
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return found, firstErr
}

func (s *Service) applyToDoc(ctx context.Context, id string, changes []stateChange) (int, error) {
	for attempt := 0; ; attempt++ {
		doc, err := s.db.Get(ctx, id)
		if errors.Is(err, couch.ErrNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		found, changed := applyToTasks(doc, changes, s.opts.Now())
		if !changed {
			return found, nil
		}
		err = s.db.Put(ctx, doc)
		if err == nil {
			return found, nil
		}
		if !errors.Is(err, couch.ErrConflict) || attempt >= conflictRetries {
			return 0, fmt.Errorf("save message states of %s: %w", id, err)
		}
	}
}

// applyToTasks sets the states on doc's tasks in memory.
func applyToTasks(doc couch.Doc, changes []stateChange, now time.Time) (found int, changed bool) {
	for _, c := range changes {
		var tasks []map[string]any
		if c.uuid != "" {
			if t, _ := findMessage(doc, c.uuid); t != nil {
				tasks = append(tasks, t)
			}
		} else {
			tasks = tasksByRef(doc, c.ref)
		}
		if len(tasks) > 0 {
			found++
		}
		for _, t := range tasks {
			if c.onlyFrom != nil && !slices.Contains(c.onlyFrom, jsv.String(t["state"])) {
				continue
			}
			ref, hasRef := c.gatewayRef, c.setRef
			if c.keepRef {
				ref, hasRef = t["gateway_ref"], t["gateway_ref"] != nil
			}
			if setState(t, c.state, c.details, ref, hasRef, now) {
				changed = true
			}
		}
	}
	return found, changed
}

// setState is messages.SetState for a gateway ref of any JSON type
// (RapidPro's broadcast id is a number, spec §6.2): refs are compared by
// their string form and stored with the type given.
func setState(task map[string]any, state string, details, ref any, hasRef bool, now time.Time) bool {
	if r, ok := ref.(string); ok || !hasRef {
		return messages.SetState(task, state, details, r, hasRef, now)
	}
	key := jsv.String(ref)
	if cur, ok := task["gateway_ref"]; ok && cur != nil && jsv.String(cur) == key {
		task["gateway_ref"] = key
	}
	changed := messages.SetState(task, state, details, key, true, now)
	task["gateway_ref"] = ref
	return changed
}
