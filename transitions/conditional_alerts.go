package transitions

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"sentinel-go/config"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/messages"
)

// conditionalAlerts sends an alert when a configured JavaScript condition
// over the incoming report, and the earlier reports of its form from the
// same place, is true (transitions/conditional_alerts.md).
type conditionalAlerts struct {
	alerts []condAlert
}

// condAlert is one entry of `alerts`, checked at load.
type condAlert struct {
	path string
	form string
	// prog is the condition; nil when it was not a string (condErr then
	// fails the transition on reports of the form).
	prog    *jsexpr.Program
	condErr error
	// history is true when the condition mentions the form code: it then
	// gets the FORM(i) helper and the form's history is read.
	history bool
	spec    messages.Spec
}

// condHistoryGlobal is the host function behind FORM(i). The helper itself
// is a JavaScript function declared after the condition (declarations are
// hoisted, so it exists when the condition runs, and it does not change the
// completion value) so that an index out of range gives `undefined`, as an
// array lookup does, rather than the `null` a host function returns.
const condHistoryGlobal = "__conditional_alerts_report"

func newConditionalAlerts(s *config.Settings, path string) (Transition, []config.Problem) {
	raw, present := s.Raw["alerts"]
	t := &conditionalAlerts{}
	var entries []any
	var paths []string
	switch x := raw.(type) {
	case nil:
		if !present {
			return t, []config.Problem{config.Warnf("alerts", "conditional_alerts is enabled but no alerts are configured: it does nothing")}
		}
	case []any:
		for i, e := range x {
			entries = append(entries, e)
			paths = append(paths, fmt.Sprintf("alerts[%d]", i))
		}
	case map[string]any:
		// Keys are ignored; JSON object order is lost in decoding, so the
		// alerts run in key order, which is at least stable.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			entries = append(entries, x[k])
			paths = append(paths, "alerts."+k)
		}
	default:
		return nil, []config.Problem{config.Errorf("alerts", "must be an array of alerts (or an object whose values are alerts)")}
	}
	var problems []config.Problem
	for i, e := range entries {
		a, ps := parseCondAlert(e, paths[i])
		problems = append(problems, ps...)
		if a != nil {
			t.alerts = append(t.alerts, *a)
		}
	}
	return t, problems
}

func parseCondAlert(v any, path string) (*condAlert, []config.Problem) {
	m := jsv.Map(v)
	if m == nil {
		return nil, []config.Problem{config.Errorf(path, "must be an object")}
	}
	var problems []config.Problem
	a := &condAlert{path: path, spec: messages.SpecOf(m)}
	a.form, _ = m["form"].(string)
	if a.form == "" {
		problems = append(problems, config.Warnf(path+".form", "missing or not a string: the alert never applies"))
	}
	if a.spec.TranslationKey == "" && a.spec.Message == nil {
		problems = append(problems, config.Warnf(path, "has neither message nor translation_key: its alerts have no text"))
	}
	src, ok := m["condition"].(string)
	if !ok {
		a.condErr = fmt.Errorf("%s.condition must be a string holding a JavaScript expression, got %s", path, jsonText(m["condition"]))
		problems = append(problems, config.Warnf(path+".condition",
			"must be a string, got %s: reports of form %q fail conditional_alerts until this is fixed", jsonText(m["condition"]), a.form))
		return a, problems
	}
	name := path + ".condition"
	plain, err := jsexpr.Compile(name, src)
	if err != nil {
		return nil, append(problems, config.Errorf(name, "%s", ExprError(err)))
	}
	a.prog = plain // jsexpr rewrites relational chains the JavaScript way
	if a.form != "" && strings.Contains(src, a.form) {
		a.history = true
		wrapped, err := jsexpr.Compile(name, src+"\n;function "+a.form+"(i) { var r = "+condHistoryGlobal+"(i); return r === null ? undefined : r; }")
		if err != nil {
			problems = append(problems, config.Warnf(name,
				"form code %q cannot name a JavaScript function (%s): %s(i) is not available to the condition", a.form, ExprError(err), a.form))
		} else {
			a.prog = wrapped
		}
	}
	return a, problems
}

func (*conditionalAlerts) Name() string { return "conditional_alerts" }

// Filter: a report with a form, not processed before, a valid submission.
// Whether an alert applies is decided in Run.
func (t *conditionalAlerts) Filter(env *Env, c *Change) bool {
	form, _ := c.Doc["form"].(string)
	if c.Doc["type"] != "data_record" || form == "" || c.HasRun(t.Name()) {
		return false
	}
	return IsValidSubmission(env, c.Doc)
}

// Run evaluates the conditions of the alerts of the report's form in config
// order, then adds one message per true condition. A condition that throws
// (or runs out of time) or a failed history query fails the transition
// before any message is added, so a failed run leaves no partial alerts.
func (t *conditionalAlerts) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	doc := c.Doc
	form, _ := doc["form"].(string)
	var history []Doc
	historyRead := false
	var fire []*condAlert
	for i := range t.alerts {
		a := &t.alerts[i]
		if a.form != form {
			continue
		}
		if a.prog == nil {
			return false, a.condErr
		}
		globals := map[string]any{"doc": doc}
		if a.history {
			if !historyRead {
				h, err := formHistory(ctx, env, doc)
				if err != nil {
					return false, err
				}
				history, historyRead = h, true
			}
			globals[condHistoryGlobal] = historyFunc(history)
		}
		if env.JS == nil {
			env.JS = jsexpr.NewSandbox(jsexpr.Options{})
		}
		ok, err := env.JS.Truthy(ctx, a.prog, globals)
		if err != nil {
			return false, err
		}
		if ok {
			fire = append(fire, a)
		}
	}
	if len(fire) == 0 {
		return false, nil
	}
	g := env.Generator()
	changed := false
	for _, a := range fire {
		if added, err := g.Add(doc, a.spec, nil, messages.AddOptions{}); err == nil && added.Task != nil {
			changed = true
		}
	}
	return changed, nil
}

// formHistory is the list behind FORM(i): the stored reports of the doc's
// form whose submitter's parent is the doc's submitter's parent, with the
// incoming doc added (or put in place of its stored version), newest first by
// reported_date. On equal dates the incoming doc comes first.
func formHistory(ctx context.Context, env *Env, doc Doc) ([]Doc, error) {
	parentID, _ := jsv.Get(doc, "contact.parent._id")
	pid, _ := parentID.(string)
	if pid == "" {
		return nil, fmt.Errorf("cannot read the history of form %v: the report's contact has no parent (doc.contact.parent._id)", doc["form"])
	}
	form, _ := doc["form"].(string)
	stored, err := reportsByFormAndParent(ctx, env, form, pid)
	if err != nil {
		return nil, fmt.Errorf("read the history of form %s: %w", form, err)
	}
	id := jsv.String(doc["_id"])
	list := []Doc{doc}
	for _, r := range stored {
		if jsv.String(r["_id"]) != id {
			list = append(list, r)
		}
	}
	sort.SliceStable(list, func(i, j int) bool {
		return reportedMs(list[i]) > reportedMs(list[j])
	})
	return list, nil
}

// reportsByFormAndParentStore is the history lookup of *couch.DB, used by
// conditional_alerts and update_scheduled_reports. It is an optional
// capability of env.Store rather than a Store method so that the in-memory
// stores of other tests need not implement it.
// reportsByFormAndParent returns the reports of form whose stored
// contact.parent._id is parentID, oldest first.
func reportsByFormAndParent(ctx context.Context, env *Env, form, parentID string) ([]Doc, error) {
	return env.Store.ReportsByFormAndParent(ctx, form, parentID)
}

// reportedMs is a report's reported_date (epoch ms) for sorting; a report
// without a numeric date sorts last (oldest).
func reportedMs(d Doc) float64 {
	if f, ok := d["reported_date"].(float64); ok {
		return f
	}
	return -1 << 62
}

// historyFunc is the host function behind FORM(i): the i-th report of the
// list (an integer index, or its canonical string), else nil.
func historyFunc(list []Doc) func(args ...any) any {
	return func(args ...any) any {
		if len(args) == 0 {
			return nil
		}
		i := -1
		switch x := args[0].(type) {
		case float64:
			if x >= 0 && x == float64(int(x)) && x < float64(len(list)) {
				i = int(x)
			}
		case string:
			if n, err := strconv.Atoi(x); err == nil && strconv.Itoa(n) == x {
				i = n
			}
		}
		if i < 0 || i >= len(list) {
			return nil
		}
		return list[i]
	}
}

// WhyNot says why Filter is false (sentinel explain).
func (t *conditionalAlerts) WhyNot(env *Env, c *Change) string {
	if r := whyNotReport(c, t.Name()); r != "" {
		return r
	}
	return whyNotSubmission(env, c.Doc)
}
