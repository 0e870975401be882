package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rs/zerolog"

	"sentinel-go/couch"
	"sentinel-go/infodoc"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/outbound"
	"sentinel-go/transitions"
)

// genericReasons say what the filters of the transitions without a WhyNot
// check, for `sentinel explain`.
var genericReasons = map[string]string{
	"self_report":                    "a data_record with `from`, of a self_report form, without fields.patient_id or patient_uuid, not already run",
	"accept_case_reports":            "a valid data_record of a case_reports form, not already run",
	"generate_shortcode_on_contacts": "a contact of a configured contact type without its patient_id / place_id",
	"generate_patient_id_on_people":  "a contact of a configured contact type without its patient_id / place_id",
	"update_sent_by":                 "a data_record with `from` and no `sent_by`, not already run successfully",
	"death_reporting":                "a valid data_record of a mark_deceased or undo_deceased form, about a patient, not already run",
	"update_scheduled_reports":       "a data_record with a form, no errors, fields.year and a month or week, not already run",
	"resolve_pending":                "a doc with pending tasks",
	"mark_for_outbound":              "outbound pushes configured",
}

// ExplainOptions say what to explain and with what.
type ExplainOptions struct {
	// Config is the loaded config, as the daemon would use it.
	Config *transitions.Config
	// Main and Sentinel are only read: every write goes to an in-memory overlay.
	Main     transitions.Store
	Sentinel transitions.InfoStore
	// DocID is the doc to explain.
	DocID string
	// Location is the zone of date arithmetic (nil: time.Local).
	Location *time.Location
	// Clock returns the processing time when settings have no synthetic_date
	// (nil: time.Now).
	Clock func() time.Time
	// JS evaluates expressions (nil: a sandbox with the default bounds).
	JS      *jsexpr.Sandbox
	Log     zerolog.Logger
	Secrets outbound.SecretStore
}

// Explanation is what processing a doc would do, transition by transition.
type Explanation struct {
	DocID string `json:"doc_id"`
	Rev   string `json:"rev"`
	// Now is the processing time used (synthetic_date when set).
	Now string `json:"now"`
	// Skipped is set when the doc would not be processed at all.
	Skipped string `json:"skipped,omitempty"`
	// Notes are facts about the info doc that change processing.
	Notes       []string            `json:"notes,omitempty"`
	Transitions []TransitionOutcome `json:"transitions"`
	// Changed is true when the doc would be saved.
	Changed bool `json:"changed"`
	// Diff is the change to the doc as it would be saved.
	Diff []DiffEntry `json:"diff"`
	// Messages are the tasks and scheduled_tasks the doc and other docs would gain.
	Messages []QueuedMessage `json:"messages"`
	// Writes are the other docs that would be created or updated.
	Writes []DocWrite `json:"writes"`
}

// TransitionOutcome is one transition's part in an Explanation.
type TransitionOutcome struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// AlreadyRan is the revision at which the info doc records a run that
	// stops this one (same revision generation), if any.
	AlreadyRan string `json:"already_ran,omitempty"`
	// Filter is whether the filter matched (nil when not asked).
	Filter *bool `json:"filter,omitempty"`
	// WhyNot explains a false filter.
	WhyNot string `json:"why_not,omitempty"`
	// Exprs are the bool_exprs evaluated while it ran, in order.
	Exprs []ExprOutcome `json:"bool_exprs,omitempty"`
	// Changed is true when it changed the doc (and would be recorded in the info doc).
	Changed bool `json:"changed"`
	// Error is the failure it would record on the doc.
	Error string `json:"error,omitempty"`
	// Would describes effects outside the databases that were not carried out.
	Would []string `json:"would,omitempty"`
}

// ExprOutcome is one evaluated bool_expr.
type ExprOutcome struct {
	Path  string `json:"path"`
	Expr  string `json:"expr"`
	Value bool   `json:"value"`
	Error string `json:"error,omitempty"`
}

// QueuedMessage is one outgoing message a doc would gain.
type QueuedMessage struct {
	// DocID is the doc holding the task.
	DocID string `json:"doc_id"`
	// Kind is "tasks" (sent now) or "scheduled_tasks".
	Kind  string `json:"kind"`
	State string `json:"state"`
	To    string `json:"to"`
	// Message is the text, or the message's error when it has none.
	Message string `json:"message"`
	// Due is when a scheduled message is due.
	Due string `json:"due,omitempty"`
	// Group and Type name the schedule of a scheduled message.
	Group any    `json:"group,omitempty"`
	Type  string `json:"type,omitempty"`
}

// DocWrite is another doc a change would create or update.
type DocWrite struct {
	// DB is "medic" (the main db) or "sentinel".
	DB     string      `json:"db"`
	ID     string      `json:"id"`
	Type   string      `json:"type,omitempty"`
	Action string      `json:"action"` // "create" or "update"
	Diff   []DiffEntry `json:"diff,omitempty"`
}

// Explain runs the enabled transitions on a doc as the pipeline would,
// against the real databases for reads, but writes nothing: every write
// lands in an in-memory overlay that later reads see. It mirrors the
// pipeline's processing of one change (info doc, revision rule, hydrate,
// filter, run, minify). A missing doc is an error wrapping couch.ErrNotFound.
func Explain(ctx context.Context, o ExplainOptions) (*Explanation, error) {
	cfg := o.Config
	if cfg == nil || !cfg.Valid() {
		return nil, errors.New("explain: the config has errors; transitions would not run")
	}
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	now, ok := cfg.Settings.SyntheticDate(loc)
	if !ok {
		if o.Clock != nil {
			now = o.Clock()
		} else {
			now = time.Now()
		}
	}
	ex := &Explanation{DocID: o.DocID, Now: transitions.ISO(now), Diff: []DiffEntry{}, Messages: []QueuedMessage{}, Writes: []DocWrite{}}
	main := newDryStore(o.Main)
	sentinel := newDryInfoStore(o.Sentinel)
	raw, err := o.Main.Get(ctx, o.DocID)
	if err != nil {
		return nil, fmt.Errorf("read doc %s: %w", o.DocID, err)
	}
	rev, _ := raw["_rev"].(string)
	ex.Rev = rev
	if Ignored(o.DocID) {
		ex.Skipped = "design docs, info docs and tombstones are never processed"
		return ex, nil
	}
	info, err := sentinel.Get(ctx, infodoc.ID(o.DocID))
	switch {
	case transitions.IsNotFound(err):
		info = infodoc.New(o.DocID)
	case err != nil:
		return nil, fmt.Errorf("read info doc: %w", err)
	}
	if _, marked := info["transitions_started"]; marked {
		ex.Notes = append(ex.Notes, "the info doc has CHT API's transitions_started marker: the daemon waits for it (or removes it when stale) before processing")
		delete(info, "transitions_started")
	}
	if pending := jsv.Map(info[pendingKey]); pending != nil {
		// As resolvePending would settle it, in memory.
		if pending["rev"] == rev {
			ex.Notes = append(ex.Notes, "the info doc has an unsettled journal for this revision: the save never happened, so the transitions run again")
		} else if recs := jsv.Map(pending["transitions"]); recs != nil {
			ex.Notes = append(ex.Notes, "the info doc has an unsettled journal of an earlier revision: its records count as runs")
			info["transitions"] = recs
		}
		delete(info, pendingKey)
	}
	doc := jsv.CloneMap(raw)
	h := lineage.New(main)
	if err := h.Hydrate(ctx, doc); err != nil {
		return nil, fmt.Errorf("hydrate %s: %w", o.DocID, err)
	}
	js := o.JS
	if js == nil {
		js = jsexpr.NewSandbox(jsexpr.Options{})
	}
	var exprs *[]ExprOutcome
	env := &transitions.Env{Config: cfg, Store: main, Sentinel: sentinel, JS: js, Hydrator: h, Log: o.Log,
		Now: now, Location: loc, Dups: messages.NewDuplicates(), Secrets: o.Secrets,
		Trace: func(ev transitions.TraceEvent) {
			if exprs == nil {
				return
			}
			e := ExprOutcome{Path: ev.Path, Expr: ev.Expr, Value: ev.Value}
			if ev.Err != nil {
				e.Error = ev.Err.Error()
			}
			*exprs = append(*exprs, e)
		}}
	c := &transitions.Change{ID: o.DocID, Rev: rev, Doc: doc, Info: info}
	records := jsv.CloneMap(jsv.Map(info["transitions"]))
	if records == nil {
		records = map[string]any{}
	}
	// The engine's own per-transition step, watched: each decision lands
	// in the outcome of its transition.
	outcomes := map[string]*TransitionOutcome{}
	for _, t := range cfg.Transitions {
		outcomes[t.Name()] = &TransitionOutcome{Name: t.Name(), Enabled: true}
	}
	_, err = runTransitions(ctx, env, c, records, stepHooks{
		noSeq: true,
		skipped: func(t transitions.Transition, ranAt string) {
			out := outcomes[t.Name()]
			if ranAt != "" {
				out.AlreadyRan = ranAt
				return
			}
			matched := false
			out.Filter = &matched
			out.WhyNot = whyNot(env, t, c)
		},
		run: func(ctx context.Context, env *transitions.Env, t transitions.Transition, c *transitions.Change) (bool, error) {
			out := outcomes[t.Name()]
			matched := true
			out.Filter = &matched
			exprs = &out.Exprs
			dr, ok := t.(transitions.DryRunner)
			if !ok {
				return false, nil
			}
			var err error
			out.Would, err = dr.DryRun(ctx, env, c)
			return true, err
		},
		ran: func(t transitions.Transition, _ time.Duration, changed bool, err error) {
			exprs = nil
			out := outcomes[t.Name()]
			if err != nil {
				out.Error = err.Error()
			}
			var ce *transitions.ChangedError
			out.Changed = changed || errors.As(err, &ce)
		},
	})
	if err != nil {
		// The daemon would retry the change: there is nothing to explain.
		return nil, err
	}
	for _, name := range transitions.Names() {
		if out, on := outcomes[name]; on {
			ex.Changed = ex.Changed || out.Changed
			ex.Transitions = append(ex.Transitions, *out)
		} else {
			ex.Transitions = append(ex.Transitions, TransitionOutcome{Name: name})
		}
	}
	var saved transitions.Doc
	if ex.Changed {
		saved = lineage.Minify(doc)
		saved["_rev"] = rev
		ex.Diff = DiffDocs(raw, saved)
		ex.Messages = append(ex.Messages, newMessages(o.DocID, raw, saved)...)
		sentinel.recordTransitions(info, records)
	} else if _, had := info["transitions"]; !had {
		sentinel.recordTransitions(info, map[string]any{})
	}
	for _, w := range main.writes("medic") {
		if w.ID == o.DocID {
			continue // a transition saved the doc itself: its diff is above
		}
		ex.Writes = append(ex.Writes, w)
		ex.Messages = append(ex.Messages, newMessages(w.ID, main.before[w.ID], main.docs[w.ID])...)
	}
	ex.Writes = append(ex.Writes, sentinel.writes("sentinel")...)
	return ex, nil
}

// ranAt is the recorded revision that makes alreadyRan true.
func ranAt(name string, info, doc transitions.Doc) string {
	for _, holder := range []transitions.Doc{info, doc} {
		if lr, _ := jsv.Map(jsv.Map(holder["transitions"])[name])["last_rev"].(string); lr != "" {
			return lr
		}
	}
	return ""
}

// whyNot says why t's filter did not match c.
func whyNot(env *transitions.Env, t transitions.Transition, c *transitions.Change) (reason string) {
	defer func() {
		if r := recover(); r != nil {
			reason = fmt.Sprintf("its filter did not match (explaining why failed: %v)", r)
		}
	}()
	if fe, ok := t.(transitions.FilterExplainer); ok {
		if r := fe.WhyNot(env, c); r != "" {
			return r
		}
	}
	if what, ok := genericReasons[t.Name()]; ok {
		return "its filter did not match: it wants " + what
	}
	return "its filter did not match"
}

// newMessages lists the tasks and scheduled_tasks of after that before did
// not have (transitions only append).
func newMessages(id string, before, after transitions.Doc) []QueuedMessage {
	var out []QueuedMessage
	for _, kind := range []string{"tasks", "scheduled_tasks"} {
		old := len(jsv.Slice(before[kind]))
		for i, t := range jsv.Slice(after[kind]) {
			if i < old {
				continue
			}
			task := jsv.Map(t)
			msgs := jsv.Slice(task["messages"])
			if len(msgs) == 0 {
				msgs = []any{map[string]any{}}
			}
			for _, m := range msgs {
				mm := jsv.Map(m)
				q := QueuedMessage{DocID: id, Kind: kind, State: jsv.String(task["state"]), To: stringOf(mm["to"]),
					Message: stringOf(mm["message"]), Type: stringOf(task["type"]), Group: task["group"]}
				if q.Message == "" {
					if e := stringOf(mm["error"]); e != "" {
						q.Message = "(error: " + e + ")"
					} else if k := stringOf(task["message_key"]); k != "" {
						q.Message = "(translation key " + k + ", rendered when due)"
					}
				}
				if q.To == "" && task["recipient"] != nil {
					q.To = stringOf(task["recipient"]) + " (resolved when due)"
				}
				if kind == "scheduled_tasks" {
					q.Due = stringOf(task["due"])
				}
				out = append(out, q)
			}
		}
	}
	return out
}

func stringOf(v any) string {
	if v == nil {
		return ""
	}
	return jsv.String(v)
}

// dryStore is the main db for Explain: reads see the real db overlaid with
// what was written; writes stay in memory. Views are answered by the real db
// only (they do not see the overlay).
type dryStore struct {
	real transitions.Store // only read
	dryWrites
	n int
}

// dryWrites are the docs a dry run would write, in first-write order.
type dryWrites struct {
	docs   map[string]transitions.Doc // id → doc as it would be saved
	before map[string]transitions.Doc // id → doc before the first write; nil: created
	order  []string
}

func newDryWrites() dryWrites {
	return dryWrites{docs: map[string]transitions.Doc{}, before: map[string]transitions.Doc{}}
}

// record keeps doc as saved, with a made-up next revision (set on doc too,
// as the real store does).
func (s *dryWrites) record(id string, cur, doc transitions.Doc) {
	if _, seen := s.before[id]; !seen {
		s.before[id] = cur
		s.order = append(s.order, id)
	}
	gen := 0
	if cur != nil {
		gen = couch.RevGeneration(stringOf(cur["_rev"]))
	}
	doc["_rev"] = fmt.Sprintf("%d-dry-run", gen+1)
	s.docs[id] = jsv.CloneMap(doc)
}

// readFunc reads a doc from the real database.
type readFunc func(ctx context.Context, id string) (transitions.Doc, error)

// get reads the overlay first, then read.
func (w *dryWrites) get(ctx context.Context, id string, read readFunc) (transitions.Doc, error) {
	if d, ok := w.docs[id]; ok {
		return jsv.CloneMap(d), nil
	}
	return read(ctx, id)
}

// current is the doc as the overlay or read has it (nil: none).
func (w *dryWrites) current(ctx context.Context, id string, read readFunc) (transitions.Doc, error) {
	d, err := w.get(ctx, id, read)
	if transitions.IsNotFound(err) {
		return nil, nil
	}
	return d, err
}

// put checks doc's revision against the current version as CouchDB would
// and records it.
func (w *dryWrites) put(ctx context.Context, doc transitions.Doc, read readFunc) error {
	id, _ := doc["_id"].(string)
	if id == "" {
		return errors.New("put: document has no _id")
	}
	cur, err := w.current(ctx, id, read)
	if err != nil {
		return err
	}
	if cur != nil && cur["_rev"] != doc["_rev"] || cur == nil && doc["_rev"] != nil {
		return fmt.Errorf("put %s (dry run): %w", id, couch.ErrConflict)
	}
	w.record(id, cur, doc)
	return nil
}

func newDryStore(s transitions.Store) *dryStore {
	return &dryStore{real: s, dryWrites: newDryWrites()}
}

// Get reads the overlay first, then the db.
func (s *dryStore) Get(ctx context.Context, id string) (transitions.Doc, error) {
	return s.get(ctx, id, s.real.Get)
}

// GetMany reads the overlay first, then the db.
func (s *dryStore) GetMany(ctx context.Context, ids []string) (map[string]transitions.Doc, error) {
	var need []string
	out := map[string]transitions.Doc{}
	for _, id := range ids {
		if d, ok := s.docs[id]; ok {
			out[id] = jsv.CloneMap(d)
		} else {
			need = append(need, id)
		}
	}
	if len(need) == 0 {
		return out, nil
	}
	got, err := s.real.GetMany(ctx, need)
	if err != nil {
		return nil, err
	}
	for id, d := range got {
		out[id] = d
	}
	return out, nil
}

// current is the doc as the overlay or the db has it (nil: none).
func (s *dryStore) current(ctx context.Context, id string) (transitions.Doc, error) {
	return s.dryWrites.current(ctx, id, s.real.Get)
}

// Put checks the revision as CouchDB would and records the doc.
func (s *dryStore) Put(ctx context.Context, doc transitions.Doc) error {
	return s.put(ctx, doc, s.real.Get)
}

// Create records a new doc, with a made-up id when it has none.
func (s *dryStore) Create(ctx context.Context, doc transitions.Doc) (string, error) {
	id, _ := doc["_id"].(string)
	if id == "" {
		s.n++
		id = fmt.Sprintf("dry-run-new-doc-%d", s.n)
		doc["_id"] = id
	}
	cur, err := s.current(ctx, id)
	if err != nil {
		return "", err
	}
	if cur != nil {
		return "", fmt.Errorf("create %s (dry run): %w", id, couch.ErrConflict)
	}
	s.record(id, nil, doc)
	return id, nil
}

// BulkDocs puts each doc, reporting conflicts per doc as CouchDB does.
func (s *dryStore) BulkDocs(ctx context.Context, docs []couch.Doc) ([]couch.BulkResult, error) {
	out := make([]couch.BulkResult, len(docs))
	for i, d := range docs {
		var err error
		if _, has := d["_rev"]; has {
			err = s.Put(ctx, d)
		} else {
			_, err = s.Create(ctx, d)
		}
		if err != nil && !transitions.IsConflict(err) {
			return nil, err
		}
		out[i] = couch.BulkResult{ID: jsv.String(d["_id"]), Rev: stringOf(d["_rev"]), Err: err}
	}
	return out, nil
}

// writes lists the recorded docs in first-write order.
// Fail closed: dryStore implements every method of the store itself, so a
// write method added to Store cannot reach the real database unnoticed.
var (
	_ transitions.Store     = (*dryStore)(nil)
	_ transitions.InfoStore = (*dryInfoStore)(nil)
)

// The lookups below read the real database only (they do not see the
// overlay, as the README says).

func (s *dryStore) ContactsByShortcode(ctx context.Context, code string) ([]transitions.Doc, error) {
	return s.real.ContactsByShortcode(ctx, code)
}

func (s *dryStore) ContactsByPhone(ctx context.Context, phone string) ([]transitions.Doc, error) {
	return s.real.ContactsByPhone(ctx, phone)
}

func (s *dryStore) ContactsByRCCode(ctx context.Context, code string) ([]transitions.Doc, error) {
	return s.real.ContactsByRCCode(ctx, code)
}

func (s *dryStore) UsedShortcodes(ctx context.Context, codes []string) (map[string]bool, error) {
	return s.real.UsedShortcodes(ctx, codes)
}

func (s *dryStore) ReportsBySubject(ctx context.Context, ids []string) ([]transitions.Doc, error) {
	return s.real.ReportsBySubject(ctx, ids)
}

func (s *dryStore) ReportsByFreetext(ctx context.Context, term string) ([]couch.FreetextReport, error) {
	return s.real.ReportsByFreetext(ctx, term)
}

func (s *dryStore) DescendantIDs(ctx context.Context, ancestorID string) ([]string, error) {
	return s.real.DescendantIDs(ctx, ancestorID)
}

func (s *dryStore) ReportsByDate(ctx context.Context, forms []string, start, end float64) ([]transitions.Doc, error) {
	return s.real.ReportsByDate(ctx, forms, start, end)
}

func (s *dryStore) ReportsByFormAndParent(ctx context.Context, form, parentID string) ([]transitions.Doc, error) {
	return s.real.ReportsByFormAndParent(ctx, form, parentID)
}

func (s *dryStore) writes(db string) []DocWrite {
	out := []DocWrite{}
	for _, id := range s.order {
		out = append(out, describeWrite(db, id, s.before[id], s.docs[id]))
	}
	return out
}

func describeWrite(db, id string, before, after transitions.Doc) DocWrite {
	w := DocWrite{DB: db, ID: id, Type: stringOf(after["type"]), Action: "update"}
	if before == nil {
		w.Action = "create"
		before = transitions.Doc{}
	}
	b, a := jsv.CloneMap(before), jsv.CloneMap(after)
	delete(b, "_rev")
	delete(a, "_rev")
	if w.Action == "create" {
		delete(a, "_id")
	}
	w.Diff = DiffDocs(b, a)
	return w
}

// dryInfoStore is the sentinel db for Explain, like dryStore.
type dryInfoStore struct {
	real transitions.InfoStore // only read
	dryWrites
}

func newDryInfoStore(s transitions.InfoStore) *dryInfoStore {
	return &dryInfoStore{real: s, dryWrites: newDryWrites()}
}

// Get reads the overlay first, then the db.
func (s *dryInfoStore) Get(ctx context.Context, id string) (transitions.Doc, error) {
	return s.get(ctx, id, s.real.Get)
}

// Put checks the revision as CouchDB would and records the doc.
func (s *dryInfoStore) Put(ctx context.Context, doc transitions.Doc) error {
	return s.put(ctx, doc, s.real.Get)
}

// recordTransitions is the pipeline's final info doc write: the records set
// on the latest version (a transition may have written the info doc too).
func (s *dryInfoStore) recordTransitions(info transitions.Doc, records map[string]any) {
	id := jsv.String(info["_id"])
	cur, ok := s.docs[id]
	if !ok {
		cur = nil
		if _, has := info["_rev"]; has {
			cur = transitions.Doc{"_rev": info["_rev"]}
		}
	}
	base := info
	if ok {
		base = cur
	}
	next := withTransitions(base, records)
	delete(next, pendingKey)
	s.record(id, cur, next)
}

// writes lists the recorded docs in first-write order, diffed against the db.
func (s *dryInfoStore) writes(db string) []DocWrite {
	out := []DocWrite{}
	for _, id := range s.order {
		before := s.before[id]
		if before != nil {
			// record() only knew the revision: read what the db holds.
			if d, err := s.real.Get(context.Background(), id); err == nil {
				before = d
			}
		}
		out = append(out, describeWrite(db, id, before, s.docs[id]))
	}
	return out
}

// DiffEntry is one difference between two versions of a doc.
type DiffEntry struct {
	// Path is the JSON path: keys joined by dots, array indexes in brackets.
	Path string `json:"path"`
	// Op is "added", "changed" or "removed".
	Op  string `json:"op"`
	Old any    `json:"old,omitempty"`
	New any    `json:"new,omitempty"`
}

// DiffDocs lists the differences from before to after, sorted by path
// (array indexes in numeric order). A key or element that appears or
// disappears is one entry holding its whole value.
func DiffDocs(before, after transitions.Doc) []DiffEntry {
	out := []DiffEntry{}
	diffValue("", before, after, &out)
	sort.SliceStable(out, func(i, j int) bool { return pathLess(out[i].Path, out[j].Path) })
	return out
}

func diffValue(path string, a, b any, out *[]DiffEntry) {
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		for k, av := range am {
			p := joinPath(path, k)
			if bv, ok := bm[k]; ok {
				diffValue(p, av, bv, out)
			} else {
				*out = append(*out, DiffEntry{Path: p, Op: "removed", Old: av})
			}
		}
		for k, bv := range bm {
			if _, ok := am[k]; !ok {
				*out = append(*out, DiffEntry{Path: joinPath(path, k), Op: "added", New: bv})
			}
		}
		return
	}
	as, aIsList := a.([]any)
	bs, bIsList := b.([]any)
	if aIsList && bIsList {
		for i := 0; i < len(as) || i < len(bs); i++ {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= len(as):
				*out = append(*out, DiffEntry{Path: p, Op: "added", New: bs[i]})
			case i >= len(bs):
				*out = append(*out, DiffEntry{Path: p, Op: "removed", Old: as[i]})
			default:
				diffValue(p, as[i], bs[i], out)
			}
		}
		return
	}
	if !jsonEqual(a, b) {
		*out = append(*out, DiffEntry{Path: path, Op: "changed", Old: a, New: b})
	}
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// joinPath is the JSON path of key under path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// pathLess orders paths segment by segment, array indexes numerically.
func pathLess(a, b string) bool {
	sa, sb := pathSegments(a), pathSegments(b)
	for i := 0; i < len(sa) && i < len(sb); i++ {
		x, y := sa[i], sb[i]
		if x.isIndex && y.isIndex && x.index != y.index {
			return x.index < y.index
		}
		if x.text != y.text {
			return x.text < y.text
		}
	}
	return len(sa) < len(sb)
}

type pathSegment struct {
	text    string
	isIndex bool
	index   int
}

func pathSegments(p string) []pathSegment {
	var out []pathSegment
	cur := ""
	flush := func() {
		if cur != "" {
			out = append(out, pathSegment{text: cur})
			cur = ""
		}
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '.':
			flush()
		case '[':
			flush()
			j := i + 1
			n := 0
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				n = n*10 + int(p[j]-'0')
				j++
			}
			if j < len(p) && p[j] == ']' {
				out = append(out, pathSegment{text: p[i : j+1], isIndex: true, index: n})
				i = j
				continue
			}
			cur += "["
		default:
			cur += string(p[i])
		}
	}
	flush()
	return out
}
