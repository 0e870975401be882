package transitions

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"sentinel-go/config"
	"sentinel-go/jsv"
	"sentinel-go/lineage"
	"sentinel-go/messages"
	"sentinel-go/phone"
	"sentinel-go/registrations"
	"sentinel-go/schedule"
)

// registration runs the configured events of a registration form: create a
// patient, place or case, compute dates, assign or clear schedules, reply.
type registration struct {
	entries []regEntry
}

type regEntry struct {
	form        string
	events      []regEvent
	validations compiledValidations
	messages    []map[string]any
	msgExprs    []boolExpr
}

type regEvent struct {
	name, trigger string
	params        any // object, array or nil
	boolExpr      boolExpr
}

var knownTriggers = map[string]bool{
	"add_patient": true, "add_patient_id": true, "add_expected_date": true, "add_birth_date": true,
	"assign_schedule": true, "clear_schedule": true, "add_place": true, "add_case": true,
}

// parseParams reads event params: raw JSON object/array, a string holding
// JSON, a comma-separated string (items trimmed), or nothing ({}).
func parseParams(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any, []any:
		return x, nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return map[string]any{}, nil
		}
		if strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") {
			var out any
			if err := json.Unmarshal([]byte(s), &out); err != nil {
				return nil, fmt.Errorf("params are not valid JSON: %w", err)
			}
			return out, nil
		}
		parts := strings.Split(s, ",")
		out := make([]any, 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("params must be a string, an object or an array")
}

func paramString(params any, key string) string {
	if m, ok := params.(map[string]any); ok {
		s, _ := m[key].(string)
		return s
	}
	return ""
}

// paramFirst is params[0] when params is an array (the name field of
// add_patient/add_place written as a plain string).
func paramFirst(params any) string {
	if a, ok := params.([]any); ok && len(a) > 0 {
		s, _ := a[0].(string)
		return s
	}
	return ""
}

func paramNames(params any) []string {
	var out []string
	switch x := params.(type) {
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	case string:
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

var hardcodedTypes = map[string]bool{"district_hospital": true, "health_center": true, "clinic": true, "person": true}

func newRegistration(s *config.Settings, path string) (Transition, []config.Problem) {
	raw, ok := s.Raw["registrations"].([]any)
	if !ok {
		return nil, []config.Problem{config.Errorf("registrations", "the registration transition needs a `registrations` array")}
	}
	var problems []config.Problem
	t := &registration{}
	for i, r := range raw {
		rp := fmt.Sprintf("registrations[%d]", i)
		rm := jsv.Map(r)
		if rm == nil {
			problems = append(problems, config.Errorf(rp, "must be an object"))
			continue
		}
		e := regEntry{messages: messageEntries(rm["messages"])}
		e.form, _ = rm["form"].(string)
		var ps []config.Problem
		e.validations, ps = compileValidations(rm["validations"], rp)
		problems = append(problems, ps...)
		for j, m := range e.messages {
			be, ps := compileBoolExpr(m["bool_expr"], fmt.Sprintf("%s.messages[%d].bool_expr", rp, j))
			problems = append(problems, ps...)
			e.msgExprs = append(e.msgExprs, be)
		}
		for j, ev := range jsv.Slice(rm["events"]) {
			ep := fmt.Sprintf("%s.events[%d]", rp, j)
			em := jsv.Map(ev)
			if em == nil {
				problems = append(problems, config.Errorf(ep, "must be an object"))
				continue
			}
			event := regEvent{}
			event.name, _ = em["name"].(string)
			event.trigger, _ = em["trigger"].(string)
			// The bool_expr is compiled before the params are read, so that
			// bad params do not hide its syntax errors.
			be, ps := compileBoolExpr(em["bool_expr"], ep+".bool_expr")
			problems = append(problems, ps...)
			event.boolExpr = be
			params, err := parseParams(em["params"])
			if err != nil {
				problems = append(problems, config.Errorf(ep+".params", "%v", err))
				continue
			}
			event.params = params
			problems = append(problems, checkEvent(s, ep, event)...)
			e.events = append(e.events, event)
		}
		t.entries = append(t.entries, e)
	}
	return t, problems
}

// checkEvent is the start-up check of one event.
func checkEvent(s *config.Settings, path string, ev regEvent) []config.Problem {
	cts := s.ContactTypes
	switch ev.trigger {
	case "add_patient", "add_patient_id":
		var ps []config.Problem
		if ev.trigger == "add_patient_id" {
			ps = append(ps, config.Warnf(path+".trigger", "add_patient_id is deprecated: use add_patient"))
		}
		if paramString(ev.params, "patient_id_field") == "patient_id" {
			ps = append(ps, config.Errorf(path+".params.patient_id_field", `patient_id_field cannot be "patient_id"`))
		}
		ct := paramString(ev.params, "contact_type")
		if ct == "" {
			ct = "person"
		}
		if !cts.IsPerson(ct) {
			ps = append(ps, config.Errorf(path+".params.contact_type", "%q is not a person type of contact_types", ct))
		}
		return ps
	case "add_place":
		ct := paramString(ev.params, "contact_type")
		if ct == "" {
			return []config.Problem{config.Errorf(path+".params.contact_type", "add_place needs a contact_type")}
		}
		if !cts.IsPlace(ct) {
			return []config.Problem{config.Errorf(path+".params.contact_type", "%q is not a place type of contact_types", ct)}
		}
	case "assign_schedule", "clear_schedule":
		names := paramNames(ev.params)
		if len(names) == 0 {
			return []config.Problem{config.Errorf(path+".params", "%s needs the names of schedules", ev.trigger)}
		}
		var ps []config.Problem
		if ev.trigger == "assign_schedule" {
			for _, n := range names {
				if _, ok := schedule.Find(s, n); !ok {
					ps = append(ps, config.Warnf(path+".params", "no schedule named %q in schedules: nothing will be assigned", n))
				}
			}
		}
		return ps
	case "":
		return []config.Problem{config.Warnf(path+".trigger", "event has no trigger: it is ignored")}
	default:
		if !knownTriggers[ev.trigger] {
			return []config.Problem{config.Warnf(path+".trigger", "unknown trigger %q: the event is ignored", ev.trigger)}
		}
	}
	return nil
}

func (*registration) Name() string { return "registration" }

func (t *registration) entryFor(doc Doc) *regEntry {
	form, _ := doc["form"].(string)
	for i := range t.entries {
		if formMatchesLoose(t.entries[i].form, form) {
			return &t.entries[i]
		}
	}
	return nil
}

func (t *registration) Filter(env *Env, c *Change) bool {
	if c.Doc["type"] != "data_record" || t.entryFor(c.Doc) == nil || c.HasRun(t.Name()) {
		return false
	}
	return IsValidSubmission(env, c.Doc)
}

func (t *registration) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	e := t.entryFor(doc)
	subjects := map[string]any{"patient": doc["patient"], "place": doc["place"]}
	if failed, err := validate(ctx, env, doc, e.validations, subjects); failed || err != nil {
		return failed, err
	}
	fields := jsv.Map(doc["fields"])
	cts := env.Settings().ContactTypes
	if hasValue(fields["patient_id"]) {
		p := jsv.Map(doc["patient"])
		if p == nil || !cts.IsPerson(config.TypeOf(p)) {
			addRejection(env, doc, e.messages, "registration_not_found", subjects)
			return true, nil
		}
	}
	if hasValue(fields["place_id"]) {
		p := jsv.Map(doc["place"])
		if p == nil || !cts.IsPlace(config.TypeOf(p)) {
			addRejection(env, doc, e.messages, "registration_not_found", subjects)
			return true, nil
		}
	}
	// Every bool_expr is evaluated on the report as it arrived, before any trigger runs.
	globals := map[string]any{"doc": fieldsCopy(doc)}
	var run []regEvent
	for _, ev := range e.events {
		if ev.name != "on_create" || !knownTriggers[ev.trigger] {
			continue
		}
		ok, err := ev.boolExpr.eval(ctx, env, globals)
		if err != nil {
			env.Log.Warn().Str("doc_id", c.ID).Str("trigger", ev.trigger).Err(err).Msg("Event bool_expr failed; event skipped")
			continue
		}
		if ok {
			run = append(run, ev)
		}
	}
	for _, ev := range run {
		if err := t.trigger(ctx, env, c, e, ev); err != nil {
			return true, err
		}
	}
	return true, t.replies(ctx, env, doc, e)
}

func (t *registration) trigger(ctx context.Context, env *Env, c *Change, e *regEntry, ev regEvent) error {
	switch ev.trigger {
	case "add_patient", "add_patient_id":
		if ev.trigger == "add_patient_id" {
			env.Log.Warn().Str("doc_id", c.ID).Msg("add_patient_id is deprecated: use add_patient")
		}
		return t.addPatient(ctx, env, c, e, ev.params)
	case "add_place":
		return t.addPlace(ctx, env, c, e, ev.params)
	case "add_case":
		return addCase(ctx, env, c.Doc)
	case "add_expected_date":
		addExpectedDate(env, c.Doc)
	case "add_birth_date":
		addBirthDate(env, c.Doc)
	case "assign_schedule":
		return t.assignSchedules(ctx, env, c.Doc, paramNames(ev.params))
	case "clear_schedule":
		return clearSchedules(ctx, env, c.Doc, paramNames(ev.params))
	}
	return nil
}

// replies adds the report_accepted messages whose bool_expr passes on the
// report as it is now. A throwing bool_expr fails the transition.
func (t *registration) replies(ctx context.Context, env *Env, doc Doc, e *regEntry) error {
	var extra map[string]any
	for i, m := range e.messages {
		et, _ := m["event_type"].(string)
		if et != "" && et != "report_accepted" {
			continue
		}
		ok, err := e.msgExprs[i].eval(ctx, env, map[string]any{"doc": doc})
		if err != nil {
			return fmt.Errorf("messages[%d].bool_expr: %w", i, err)
		}
		if !ok {
			continue
		}
		if extra == nil {
			var err error
			if extra, err = registrationContext(ctx, env, doc); err != nil {
				return err
			}
			extra["next_msg"] = nextMsg(env.Now, doc, env.Location)
		}
		_, _ = env.Generator().Add(doc, messages.SpecOf(m), extra, messages.AddOptions{})
	}
	return nil
}

// registrationContext is the message context of a registration: its
// subjects and the valid registrations of fields.patient_id and fields.place_id.
func registrationContext(ctx context.Context, env *Env, doc Doc) (map[string]any, error) {
	fields := jsv.Map(doc["fields"])
	regs, err := registrations.Valid(ctx, env.Store, env.Settings(), []string{jsv.String(fieldsOr(fields, "patient_id"))})
	if err != nil {
		return nil, err
	}
	placeRegs, err := registrations.Valid(ctx, env.Store, env.Settings(), []string{jsv.String(fieldsOr(fields, "place_id"))})
	if err != nil {
		return nil, err
	}
	return map[string]any{"patient": doc["patient"], "place": doc["place"],
		"registrations": docsAny(regs), "placeRegistrations": docsAny(placeRegs)}, nil
}

func fieldsOr(fields map[string]any, key string) any {
	v := fields[key]
	if !hasValue(v) {
		return ""
	}
	return v
}

func docsAny(ds []Doc) []any {
	out := make([]any, len(ds))
	for i, d := range ds {
		out[i] = d
	}
	return out
}

// nextMsg is the time from now to the first scheduled task, in whole units
// rounded down (all 0 without scheduled tasks).
func nextMsg(now time.Time, doc Doc, loc *time.Location) map[string]any {
	out := map[string]any{"minutes": 0.0, "hours": 0.0, "days": 0.0, "weeks": 0.0, "months": 0.0, "years": 0.0}
	tasks := jsv.Slice(doc["scheduled_tasks"])
	if len(tasks) == 0 {
		return out
	}
	due, ok := schedule.DueOf(jsv.Map(tasks[0]), doc, loc)
	if !ok {
		return out
	}
	d := due.Sub(now)
	out["minutes"] = math.Floor(d.Minutes())
	out["hours"] = math.Floor(d.Hours())
	out["days"] = math.Floor(d.Hours() / 24)
	out["weeks"] = math.Floor(d.Hours() / (24 * 7))
	months := monthsBetween(now.In(loc), due.In(loc))
	out["months"] = float64(months)
	out["years"] = math.Floor(float64(months) / 12)
	return out
}

// monthsBetween counts whole calendar months from a to b (b after a).
func monthsBetween(a, b time.Time) int {
	if b.Before(a) {
		return -monthsBetween(b, a)
	}
	n := (b.Year()-a.Year())*12 + int(b.Month()-a.Month())
	for n > 0 && (schedule.Duration{N: n, Unit: "month"}).AddTo(a).After(b) {
		n--
	}
	return n
}

// resolveParent finds the parent of a contact to create (README "Parent
// resolution"). It returns nil after adding the rejection when there is none.
func resolveParent(ctx context.Context, env *Env, doc Doc, e *regEntry, params any) (Doc, error) {
	fields := jsv.Map(doc["fields"])
	if field := paramString(params, "parent_id"); field != "" {
		v := fields[field]
		if !hasValue(v) {
			addRejection(env, doc, e.messages, "parent_field_not_provided", nil)
			return nil, nil
		}
		found, err := env.Store.ContactsByShortcode(ctx, jsv.String(v))
		if err != nil {
			return nil, fmt.Errorf("find parent: %w", err)
		}
		if len(found) == 0 {
			addRejection(env, doc, e.messages, "parent_not_found", nil)
			return nil, nil
		}
		return found[0], nil // used as read, not hydrated
	}
	if p := jsv.Map(jsv.Map(doc["contact"])["parent"]); p != nil && p["_id"] != nil {
		if p["type"] == nil {
			// a stub the hydration could not fill: load it
			full, err := env.Hydrator.FetchHydrated(ctx, jsv.String(p["_id"]))
			if err != nil {
				return nil, err
			}
			if full != nil {
				return full, nil
			}
		}
		return p, nil
	}
	from := jsv.String(doc["from"])
	if doc["from"] != nil && from != "" {
		found, err := contactsByPhone(ctx, env, from)
		if err != nil {
			return nil, fmt.Errorf("find contact by phone: %w", err)
		}
		if len(found) > 0 && jsv.Map(found[0]["parent"]) != nil {
			contact, err := env.Hydrator.HydrateContact(ctx, found[0])
			if err != nil {
				return nil, err
			}
			doc["contact"] = contact
			if p := jsv.Map(contact["parent"]); p != nil && p["type"] != nil {
				return p, nil
			}
		}
	}
	addRejection(env, doc, e.messages, "parent_not_found", nil)
	return nil, nil
}

// checkHierarchy rejects a parent whose type is not a parent type of the
// contact type to create.
func checkHierarchy(env *Env, doc Doc, e *regEntry, parent Doc, childType string) bool {
	ct := env.Settings().ContactTypes.Get(childType)
	pt := config.TypeOf(parent)
	if ct != nil {
		for _, p := range ct.Parents {
			if p == pt {
				return true
			}
		}
	}
	addRejection(env, doc, e.messages, "parent_invalid", map[string]any{"parent": parent})
	return false
}

func (t *registration) addPatient(ctx context.Context, env *Env, c *Change, e *regEntry, params any) error {
	doc := c.Doc
	if hasValue(doc["patient_id"]) {
		return nil
	}
	fields := jsv.Map(doc["fields"])
	if idField := paramString(params, "patient_id_field"); idField != "" {
		v := fields[idField]
		if !hasValue(v) {
			addRejection(env, doc, e.messages, "no_provided_patient_id", nil)
			return nil
		}
		id := jsv.String(v)
		used, err := env.Store.ContactsByShortcode(ctx, id)
		if err != nil {
			return fmt.Errorf("check provided id: %w", err)
		}
		if len(used) > 0 && !(len(used) == 1 && used[0]["source_id"] == c.ID) {
			addRejection(env, doc, e.messages, "provided_patient_id_not_unique", nil)
			return nil
		}
		doc["patient_id"] = id
	} else {
		code, err := NewShortcode(ctx, env)
		if err != nil {
			return err
		}
		doc["patient_id"] = code
	}
	parent, err := resolveParent(ctx, env, doc, e, params)
	if err != nil || parent == nil {
		return err
	}
	contactType := paramString(params, "contact_type")
	childType := contactType
	if childType == "" {
		childType = "person"
	}
	if !checkHierarchy(env, doc, e, parent, childType) {
		return nil
	}
	person := Doc{"type": "person"}
	if contactType != "" {
		person = Doc{"type": "contact", "contact_type": contactType}
	}
	if form := env.Settings().Form(jsv.String(doc["form"])); form != nil {
		for _, key := range orderedPhoneFields(jsv.Map(form["fields"])) {
			raw := fields[key]
			if !hasValue(raw) {
				break
			}
			s := env.Settings()
			norm, ok := phone.Normalize(jsv.String(raw), s.DefaultCountryCode(), s.String("phone_validation", ""))
			if !ok {
				env.Log.Warn().Str("doc_id", c.ID).Msg("Provided phone is not valid: no patient created")
				addRejection(env, doc, e.messages, "provided_phone_not_valid", nil)
				return nil
			}
			person["phone"] = norm
			break
		}
	}
	nameField := paramString(params, "patient_name_field")
	if nameField == "" {
		nameField = paramFirst(params)
	}
	if nameField == "" {
		nameField = "patient_name"
	}
	return createContact(ctx, env, c, person, fields[nameField], "patient_id", parent, "patient")
}

// orderedPhoneFields returns the keys of phone_number fields of a form. Go
// maps lose the order of `fields`, so keys are sorted for determinism; forms
// with several phone fields are rare.
func orderedPhoneFields(fields map[string]any) []string {
	var out []string
	for k, v := range fields {
		if jsv.Map(v)["type"] == "phone_number" {
			out = append(out, k)
		}
	}
	if len(out) > 1 {
		sortStrings(out)
	}
	return out
}

func (t *registration) addPlace(ctx context.Context, env *Env, c *Change, e *regEntry, params any) error {
	doc := c.Doc
	if hasValue(doc["place_id"]) {
		return nil
	}
	code, err := NewShortcode(ctx, env)
	if err != nil {
		return err
	}
	doc["place_id"] = code
	parent, err := resolveParent(ctx, env, doc, e, params)
	if err != nil || parent == nil {
		return err
	}
	contactType := paramString(params, "contact_type")
	if !checkHierarchy(env, doc, e, parent, contactType) {
		return nil
	}
	place := Doc{"type": "contact", "contact_type": contactType}
	if hardcodedTypes[contactType] {
		place = Doc{"type": contactType}
	}
	nameField := paramString(params, "place_name_field")
	if nameField == "" {
		nameField = paramFirst(params)
	}
	if nameField == "" {
		nameField = "place_name"
	}
	return createContact(ctx, env, c, place, jsv.Map(doc["fields"])[nameField], "place_id", parent, "place")
}

// createContact saves a new person or place created by a registration and
// sets it, with its parent, as the report's in-memory subject.
func createContact(ctx context.Context, env *Env, c *Change, contact Doc, name any, idKey string, parent Doc, subjectKey string) error {
	doc := c.Doc
	if s, ok := name.(string); ok && s != "" {
		contact["name"] = s
	} else if name != nil && hasValue(name) {
		contact["name"] = jsv.String(name)
	}
	contact[idKey] = doc[idKey]
	if rd, ok := doc["reported_date"]; ok {
		contact["reported_date"] = rd
	}
	contact["source_id"] = c.ID
	if cid, _ := jsv.Map(doc["contact"])["_id"].(string); cid != "" {
		contact["created_by"] = cid
	}
	contact["parent"] = lineage.MinifyLineage(parent)
	if idKey == "patient_id" {
		if bd, ok := doc["birth_date"]; ok && bd != nil {
			contact["date_of_birth"] = bd
		}
	}
	// The id derives from the report, so that a change replayed after a
	// crash, or processed again after another writer changed the report
	// while its save was pending (a new revision), finds the contact it
	// created instead of creating a second one. Registration runs once per
	// report, so one id per report and kind is enough.
	contact["_id"] = CreatedContactID(c.ID, subjectKey)
	if _, err := env.Store.Create(ctx, contact); err != nil {
		if !IsConflict(err) {
			return fmt.Errorf("create %s: %w", subjectKey, err)
		}
		existing, gerr := env.Store.Get(ctx, jsv.String(contact["_id"]))
		if gerr != nil || existing["source_id"] != c.ID {
			return fmt.Errorf("create %s: %w", subjectKey, err)
		}
		env.Log.Info().Str("doc_id", c.ID).Str("contact", jsv.String(existing["_id"])).
			Msg("Registration replayed: reusing the contact it created before")
		contact = existing
		doc[idKey] = existing[idKey]
	}
	subject := jsv.CloneMap(contact)
	subject["parent"] = parent
	doc[subjectKey] = subject
	return nil
}

// CreatedContactID is the id of the person or place a registration creates:
// a name-based UUID of the report id and the subject kind. (It used to
// include the report's revision: a report processed again at another
// revision then created a second contact.)
func CreatedContactID(reportID, kind string) string {
	return uuid.NewSHA1(createdNamespace, []byte(reportID+"\x00"+kind)).String()
}

// createdNamespace is the UUID namespace of contacts created by registrations.
var createdNamespace = uuid.MustParse("6f1c2b0e-5b7a-4d2e-9a43-3c8e2f9d7b11")

func addCase(ctx context.Context, env *Env, doc Doc) error {
	if !hasValue(doc["case_id"]) {
		code, err := NewShortcode(ctx, env)
		if err != nil {
			return err
		}
		doc["case_id"] = code
	}
	if pid, ok := jsv.Get(doc, "contact.parent._id"); ok && hasValue(pid) {
		fields := jsv.Map(doc["fields"])
		if fields == nil {
			fields = map[string]any{}
			doc["fields"] = fields
		}
		fields["place_uuid"] = pid
	}
	return nil
}

func reportedTime(doc Doc, loc *time.Location) time.Time {
	if t, ok := schedule.DueOf(map[string]any{}, doc, loc); ok {
		return t.In(loc)
	}
	return time.Now().In(loc)
}

// numericField reads a field as JavaScript's parseInt would (ok=false for NaN).
func numericField(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		return int(x), true
	case string:
		s := strings.TrimSpace(x)
		end := 0
		if end < len(s) && (s[end] == '-' || s[end] == '+') {
			end++
		}
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		var n int
		if _, err := fmt.Sscanf(s[:end], "%d", &n); err != nil {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

func addExpectedDate(env *Env, doc Doc) {
	fields := jsv.Map(doc["fields"])
	var start time.Time
	found := false
	for _, k := range []string{"lmp_date", "date_lmp"} {
		v := fields[k]
		if !hasValue(v) {
			continue
		}
		switch x := v.(type) {
		case float64:
			start, found = time.UnixMilli(int64(x)).In(env.Location), true
		case string:
			if t, ok := schedule.ParseTime(x, env.Location); ok {
				start, found = t, true
			}
		}
		if found {
			break
		}
	}
	if !found {
		for _, k := range []string{"weeks_since_lmp", "last_menstrual_period", "lmp"} {
			if n, ok := numericField(fields[k]); ok {
				if n != 0 {
					start = schedule.StartOfDay(reportedTime(doc, env.Location)).AddDate(0, 0, -7*n)
					found = true
				}
				break
			}
		}
	}
	if !found {
		doc["lmp_date"] = nil
		doc["expected_date"] = nil
		return
	}
	doc["lmp_date"] = messages.ISO(start)
	doc["expected_date"] = messages.ISO(start.AddDate(0, 0, 7*40))
}

func addBirthDate(env *Env, doc Doc) {
	fields := jsv.Map(doc["fields"])
	if fields == nil {
		return
	}
	base := schedule.StartOfDay(reportedTime(doc, env.Location))
	groups := []struct {
		unit string
		keys []string
	}{
		{"year", []string{"years_since_dob", "years_since_birth", "age_in_years"}},
		{"month", []string{"months_since_dob", "months_since_birth", "age_in_months"}},
		{"week", []string{"weeks_since_dob", "dob", "weeks_since_birth", "age_in_weeks"}},
		{"day", []string{"days_since_dob", "days_since_birth", "age_in_days"}},
	}
	for _, g := range groups {
		for _, k := range g.keys {
			v, present := fields[k]
			if !present || v == nil {
				continue
			}
			if n, ok := numericField(v); ok {
				doc["birth_date"] = messages.ISO(schedule.Duration{N: n, Unit: g.unit}.SubFrom(base))
				return
			}
			break // the group's first present field is not a number: next group
		}
	}
	doc["birth_date"] = messages.ISO(base)
}

func (t *registration) assignSchedules(ctx context.Context, env *Env, doc Doc, names []string) error {
	var extra map[string]any
	for _, name := range names {
		sch, ok := schedule.Find(env.Settings(), name)
		if !ok {
			continue
		}
		if extra == nil {
			var err error
			if extra, err = registrationContext(ctx, env, doc); err != nil {
				return err
			}
			extra["patientRegistrations"] = extra["registrations"]
		}
		subject := jsv.Map(doc["patient"])
		if subject == nil {
			subject = jsv.Map(doc["place"])
		}
		schedule.Assign(env.Generator(), doc, sch, extra, subject != nil && isMuted(subject))
	}
	return nil
}

// clearSchedules clears the named schedules on the subject's other valid
// registrations (saved at once).
func clearSchedules(ctx context.Context, env *Env, doc Doc, names []string) error {
	var ids []string
	for _, k := range []string{"patient", "place"} {
		if s := jsv.Map(doc[k]); s != nil {
			ids = append(ids, registrations.SubjectIDs(s)...)
		}
	}
	if v := doc["case_id"]; hasValue(v) {
		ids = append(ids, jsv.String(v))
	} else if v, ok := jsv.Get(doc, "fields.case_id"); ok && hasValue(v) {
		ids = append(ids, jsv.String(v))
	}
	regs, err := registrations.Valid(ctx, env.Store, env.Settings(), ids)
	if err != nil {
		return err
	}
	id, _ := doc["_id"].(string)
	for _, reg := range regs {
		if reg["_id"] == id {
			continue
		}
		if schedule.Clear(reg, names, nil, time.Time{}, id, env.Now, env.Location) {
			if err := env.Store.Put(ctx, reg); err != nil {
				return fmt.Errorf("save cleared registration %v: %w", reg["_id"], err)
			}
		}
	}
	return nil
}

// WhyNot says why Filter is false (sentinel explain).
func (t *registration) WhyNot(env *Env, c *Change) string {
	if c.Doc["type"] != "data_record" {
		return whyNotReport(c, t.Name())
	}
	if t.entryFor(c.Doc) == nil {
		return fmt.Sprintf("form %s matches no registrations[].form", jsonText(c.Doc["form"]))
	}
	if r := whyNotReport(c, t.Name()); r != "" {
		return r
	}
	return whyNotSubmission(env, c.Doc)
}
