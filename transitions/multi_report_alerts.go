package transitions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"sentinel-go/config"
	"sentinel-go/jsexpr"
	"sentinel-go/jsv"
	"sentinel-go/messages"
)

// multiReportAlerts sends an alert when at least N reports counted by a
// config-supplied function arrived within the last D days before the
// incoming report (transitions/multi_report_alerts.md). Only the senders of
// reports not covered by an earlier alert of the same name are messaged; the
// earlier alerts are the alert tasks on the counted reports themselves.
type multiReportAlerts struct {
	alerts []mraAlert
}

// mraAlert is one entry of `multi_report_alerts`, checked at load.
type mraAlert struct {
	name string
	// counted is is_report_counted compiled as a function; nil when the
	// source did not compile, and then every run of the alert fails with
	// compileErr (the spec makes it an alert failure, not a load error).
	counted    *jsexpr.Program
	compileErr error
	threshold  int
	window     int
	// forms restricts the triggering and counted forms; empty: any form.
	forms      []string
	recipients []mraRecipient
	spec       messages.Spec
}

// mraRecipient is one entry of an alert's `recipients`: a literal
// international number, or an expression over `new_report`.
type mraRecipient struct {
	src     string
	literal bool
	prog    *jsexpr.Program // nil when the expression did not compile
	err     error           // the compile error
}

// mraMaxThreshold bounds num_reports_threshold: it keeps the report
// queries bounded (spec: start-up checks).
const mraMaxThreshold = 100

// mraDayMs is one day of the time window in milliseconds.
const mraDayMs = 86400000

// mraRecipientKey is the context key that carries a resolved phone to the
// message generator, so that the recipient is that phone exactly (spaces
// kept) instead of being resolved again by the recipient rules.
const mraRecipientKey = "__multi_report_alerts_recipient"

var mraPhoneLiteral = regexp.MustCompile(`^\+[0-9]+$`)

func newMultiReportAlerts(s *config.Settings, path string) (Transition, []config.Problem) {
	raw, present := s.Raw["multi_report_alerts"]
	if !present || raw == nil {
		return &multiReportAlerts{}, []config.Problem{config.Warnf("multi_report_alerts",
			"multi_report_alerts is enabled but no alerts are configured: it does nothing")}
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, []config.Problem{config.Errorf("multi_report_alerts", "must be an array of alerts")}
	}
	t := &multiReportAlerts{}
	var problems []config.Problem
	names := map[string]int{}
	for i, e := range list {
		a, ps := parseMultiAlert(e, fmt.Sprintf("multi_report_alerts[%d]", i))
		problems = append(problems, ps...)
		if a == nil {
			continue
		}
		if j, dup := names[a.name]; dup {
			problems = append(problems, config.Errorf(fmt.Sprintf("multi_report_alerts[%d].name", i),
				"alert name %q is already used by multi_report_alerts[%d]: names must be unique", a.name, j))
			continue
		}
		names[a.name] = i
		t.alerts = append(t.alerts, *a)
	}
	return t, problems
}

// parseMultiAlert checks one alert. It returns nil when the alert has an
// error (which disables all transitions anyway).
func parseMultiAlert(v any, path string) (*mraAlert, []config.Problem) {
	m := jsv.Map(v)
	if m == nil {
		return nil, []config.Problem{config.Errorf(path, "must be an object")}
	}
	// Every key is checked even when an earlier one is wrong, so that one
	// pass shows every problem of the alert.
	var problems []config.Problem
	bad := false
	for _, k := range []string{"name", "is_report_counted", "num_reports_threshold", "time_window_in_days", "recipients", "message"} {
		if !jsv.Truthy(m[k]) {
			problems = append(problems, config.Errorf(path+"."+k, "required key %q is missing or empty", k))
			bad = true
		}
	}
	a := &mraAlert{}
	name, ok := m["name"].(string)
	if !ok && jsv.Truthy(m["name"]) {
		problems = append(problems, config.Errorf(path+".name", "must be a string"))
		bad = true
	}
	a.name = name
	var okN bool
	if !jsv.Truthy(m["num_reports_threshold"]) {
		// reported above
	} else if a.threshold, okN = parseLeadingInt(m["num_reports_threshold"]); !okN {
		problems = append(problems, config.Errorf(path+".num_reports_threshold", "must be an integer, got %s", jsonText(m["num_reports_threshold"])))
		bad = true
	} else if a.threshold < 1 || a.threshold > mraMaxThreshold {
		problems = append(problems, config.Errorf(path+".num_reports_threshold",
			"must be between 1 and %d (it bounds the report queries), got %d", mraMaxThreshold, a.threshold))
		bad = true
	}
	if !jsv.Truthy(m["time_window_in_days"]) {
		// reported above
	} else if a.window, okN = parseLeadingInt(m["time_window_in_days"]); !okN {
		problems = append(problems, config.Errorf(path+".time_window_in_days", "must be an integer, got %s", jsonText(m["time_window_in_days"])))
		bad = true
	} else if a.window < 0 {
		problems = append(problems, config.Warnf(path+".time_window_in_days",
			"is negative (%d): no earlier report is ever counted", a.window))
	}
	recips, ok := m["recipients"].([]any)
	if !ok && jsv.Truthy(m["recipients"]) {
		problems = append(problems, config.Errorf(path+".recipients", "must be an array"))
		bad = true
	}
	if src, isString := m["is_report_counted"].(string); !isString {
		if jsv.Truthy(m["is_report_counted"]) {
			a.compileErr = fmt.Errorf("is_report_counted must be a string holding a function")
			problems = append(problems, config.Warnf(path+".is_report_counted",
				"must be a string holding a function: the alert fails on every report of its forms until this is fixed"))
		}
	} else if src != "" {
		if p, err := jsexpr.CompileFunction(path+".is_report_counted", src); err != nil {
			a.compileErr = err
			problems = append(problems, config.Warnf(path+".is_report_counted",
				"%s: the alert fails on every report of its forms until this is fixed", ExprError(err)))
		} else {
			a.counted = p
		}
	}
	for j, r := range recips {
		rp := fmt.Sprintf("%s.recipients[%d]", path, j)
		s, ok := r.(string)
		if !ok || strings.TrimSpace(s) == "" {
			problems = append(problems, config.Warnf(rp, "must be a non-empty string: ignored"))
			continue
		}
		rec := mraRecipient{src: s}
		if mraPhoneLiteral.MatchString(s) {
			rec.literal = true
		} else if p, err := jsexpr.Compile(rp, s); err != nil {
			rec.err = err
			problems = append(problems, config.Warnf(rp, "%s: no phone number is found with it", ExprError(err)))
		} else {
			rec.prog = p
		}
		a.recipients = append(a.recipients, rec)
	}
	if fv, present := m["forms"]; present && fv != nil {
		if fs, ok := fv.([]any); ok {
			for _, f := range fs {
				if s, ok := f.(string); ok && s != "" {
					a.forms = append(a.forms, s)
				}
			}
		} else {
			problems = append(problems, config.Warnf(path+".forms", "is not an array: ignored, the alert applies to every form"))
		}
	}
	if bad {
		return nil, problems
	}
	a.spec = messages.SpecOf(m)
	a.spec.Recipient = mraRecipientKey
	return a, problems
}

// parseLeadingInt is JavaScript's parseInt(String(v), 10): optional spaces
// and sign, then the leading digits ("7 days" → 7, 7.9 → 7); false when
// there are none (NaN). Booleans, objects and arrays give false.
func parseLeadingInt(v any) (int, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case float64, int, int64:
		s = jsv.String(x)
	default:
		return 0, false
	}
	s = strings.TrimLeft(s, " \t\n\r\v\f\u00a0\ufeff")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n, digits := 0, 0
	for _, r := range s {
		if r < '0' || r > '9' {
			break
		}
		if n < 1<<40 {
			n = n*10 + int(r-'0')
		}
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// jsonText renders v for messages, as JSON.stringify would (undefined for nil).
func jsonText(v any) string {
	if v == nil {
		return "undefined"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func (*multiReportAlerts) Name() string { return "multi_report_alerts" }

// Filter: a report with a form, not processed before, a valid submission.
// Which alerts apply is decided in Run.
func (t *multiReportAlerts) Filter(env *Env, c *Change) bool {
	form, _ := c.Doc["form"].(string)
	if c.Doc["type"] != "data_record" || form == "" || c.HasRun(t.Name()) {
		return false
	}
	return IsValidSubmission(env, c.Doc)
}

// Run runs every alert in config order. An alert that fails (its function
// does not compile, an expression runs out of time, a database error) does
// not stop the others; the failures are then reported together as a
// ChangedError, so the doc is saved with the error and `ok: false`.
func (t *multiReportAlerts) Run(ctx context.Context, env *Env, c *Change) (bool, error) {
	changed := false
	var failures mraFailures
	for i := range t.alerts {
		a := &t.alerts[i]
		ch, err := a.run(ctx, env, c.Doc)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			env.Log.Warn().Str("doc_id", c.ID).Str("alert", a.name).Err(err).Msg("multi_report_alerts: alert failed")
			failures = append(failures, fmt.Errorf("alert %q: %w", a.name, err))
			continue
		}
		changed = changed || ch
	}
	if len(failures) > 0 {
		return true, &ChangedError{Err: failures}
	}
	return changed, nil
}

// mraFailures are the failed alerts of one run, reported together.
type mraFailures []error

func (f mraFailures) Error() string {
	parts := make([]string, len(f))
	for i, e := range f {
		parts[i] = e.Error()
	}
	return "multi_report_alerts threw errors: " + strings.Join(parts, "; ")
}

func (f mraFailures) Unwrap() []error { return f }

// appliesTo reports whether the alert is triggered by (and counts) form.
func (a *mraAlert) appliesTo(form string) bool {
	if len(a.forms) == 0 {
		return true
	}
	for _, f := range a.forms {
		if f == form {
			return true
		}
	}
	return false
}

// run evaluates the alert on the latest report and, when the threshold is
// reached, adds its messages to it. It reports whether the doc changed; an
// error is an alert failure.
func (a *mraAlert) run(ctx context.Context, env *Env, latest Doc) (bool, error) {
	form, _ := latest["form"].(string)
	if !a.appliesTo(form) {
		return false, nil
	}
	if a.counted == nil {
		return false, a.compileErr
	}
	latestID := jsv.String(latest["_id"])
	ok, err := a.isCounted(ctx, env, latest, latest)
	if err != nil {
		if fatalExprError(err) {
			return false, err
		}
		env.Log.Debug().Str("doc_id", latestID).Str("alert", a.name).Err(err).Msg("is_report_counted threw on the latest report: alert skipped")
		return false, nil
	}
	if !ok {
		return false, nil
	}
	counted, err := a.countedReports(ctx, env, latest)
	if err != nil {
		return false, err
	}
	if len(counted) < a.threshold {
		return false, nil
	}
	fresh := newReports(counted, a.name)
	phones, recipErrs, err := a.phones(ctx, env, fresh)
	if err != nil {
		return false, err
	}
	ids := make([]any, len(counted))
	for i, r := range counted {
		ids[i] = r["_id"]
	}
	freshAny := make([]any, len(fresh))
	for i, r := range fresh {
		freshAny[i] = r
	}
	g := env.Generator()
	for _, phone := range phones {
		extra := map[string]any{
			"new_reports":           freshAny,
			"num_counted_reports":   float64(len(counted)),
			"alert_name":            a.name,
			"num_reports_threshold": float64(a.threshold),
			"time_window_in_days":   float64(a.window),
			mraRecipientKey:         phone,
		}
		added, err := g.Add(latest, a.spec, extra, messages.AddOptions{})
		if err != nil || added.Task == nil {
			continue // parse_error recorded by Add
		}
		added.Task["type"] = "alert"
		added.Task["alert_name"] = a.name
		added.Task["counted_reports"] = append([]any(nil), ids...)
	}
	for _, e := range recipErrs {
		messages.AddError(latest, "invalid_report", e)
	}
	return true, nil
}

// fatalExprError reports whether an expression error fails the alert rather
// than counting as a throw: the time bound (a runaway function must not cost
// a bounded evaluation per report in the window and go unnoticed) and
// cancellation.
func fatalExprError(err error) bool {
	var ce *jsexpr.CanceledError
	return errors.Is(err, jsexpr.ErrTimeout) || errors.As(err, &ce)
}

// isCounted calls is_report_counted(report, latest) and tests the result
// for JavaScript truthiness.
func (a *mraAlert) isCounted(ctx context.Context, env *Env, report, latest Doc) (bool, error) {
	if env.JS == nil {
		env.JS = jsexpr.NewSandbox(jsexpr.Options{})
	}
	v, err := env.JS.Call(ctx, a.counted, report, latest)
	if err != nil {
		return false, err
	}
	return jsv.Truthy(v), nil
}

// countedReports returns the latest report followed by the candidates of the
// window (newest first) that is_report_counted counts. Candidates are the
// reports of the alert's forms whose reported_date lies in
// [latest − 1 − window days, latest − 1], hydrated, that are valid submissions.
func (a *mraAlert) countedReports(ctx context.Context, env *Env, latest Doc) ([]Doc, error) {
	counted := []Doc{latest}
	rd, ok := latest["reported_date"].(float64)
	if !ok {
		return counted, nil
	}
	end := rd - 1
	start := end - float64(a.window)*mraDayMs
	candidates, err := reportsByDate(ctx, env, a.forms, start, end)
	if err != nil {
		return nil, fmt.Errorf("find reports in the time window: %w", err)
	}
	latestID := jsv.String(latest["_id"])
	for _, r := range candidates {
		id := jsv.String(r["_id"])
		form, _ := r["form"].(string)
		if id == latestID || r["type"] != "data_record" || form == "" || !a.appliesTo(form) {
			continue
		}
		if err := hydrateSubmitter(ctx, env, r); err != nil {
			return nil, fmt.Errorf("hydrate report %s: %w", id, err)
		}
		if !IsValidSubmission(env, r) {
			continue
		}
		ok, err := a.isCounted(ctx, env, r, latest)
		if err != nil {
			if fatalExprError(err) {
				return nil, fmt.Errorf("is_report_counted on report %s: %w", id, err)
			}
			env.Log.Warn().Str("doc_id", latestID).Str("report_id", id).Str("alert", a.name).Err(err).
				Msg("is_report_counted threw: report not counted")
			continue
		}
		if ok {
			counted = append(counted, r)
		}
	}
	return counted, nil
}

// reportsByDateStore is the alert-window lookup of *couch.DB. It is an
// optional capability of env.Store rather than a Store method so that the
// in-memory stores of other tests need not implement it.
// reportsByDate returns the reports of forms (any form when empty) with a
// reported_date in [start, end], newest first.
func reportsByDate(ctx context.Context, env *Env, forms []string, start, end float64) ([]Doc, error) {
	return env.Store.ReportsByDate(ctx, forms, start, end)
}

// hydrateSubmitter hydrates a stored report's contact and lineage, without
// looking up its patient or place (the alert does not use them, and one
// lookup per report of the window would be wasted).
func hydrateSubmitter(ctx context.Context, env *Env, r Doc) error {
	typ, had := r["type"]
	delete(r, "type") // Hydrate looks up subjects of data_records only
	err := env.Hydrator.Hydrate(ctx, r)
	if had {
		r["type"] = typ
	}
	return err
}

// newReports are the counted reports not covered by an earlier alert of
// this name: the ids listed in `counted_reports` of the alert tasks (same
// alert_name) on any counted report are excluded. Order is kept.
func newReports(counted []Doc, name string) []Doc {
	alerted := map[string]bool{}
	for _, r := range counted {
		for _, t := range jsv.Slice(r["tasks"]) {
			tm := jsv.Map(t)
			if tm == nil || tm["alert_name"] != name {
				continue
			}
			for _, id := range jsv.Slice(tm["counted_reports"]) {
				alerted[jsv.String(id)] = true
			}
		}
	}
	var out []Doc
	for _, r := range counted {
		if !alerted[jsv.String(r["_id"])] {
			out = append(out, r)
		}
	}
	return out
}

// phones resolves the alert's recipients over the new reports: for each
// recipients entry, for each new report. Phones are de-duplicated as exact
// strings, first occurrence kept. Recipient problems are returned as error
// texts for the doc; err is an alert failure (an expression ran out of time).
func (a *mraAlert) phones(ctx context.Context, env *Env, fresh []Doc) (phones, problems []string, err error) {
	seen := map[string]bool{}
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			phones = append(phones, p)
		}
	}
	for _, rec := range a.recipients {
		for _, r := range fresh {
			if rec.literal {
				add(rec.src)
				continue
			}
			got, problem, err := rec.resolve(ctx, env, r)
			if err != nil {
				return nil, nil, fmt.Errorf("recipient %q: %w", rec.src, err)
			}
			if problem != "" {
				problems = append(problems, problem)
			}
			for _, p := range got {
				add(p)
			}
		}
	}
	return phones, problems, nil
}

// resolve evaluates a recipient expression with global `new_report`: a
// string is a phone, an array gives each string element; anything else, a
// non-string element or a throw is a problem text for the doc.
func (rec mraRecipient) resolve(ctx context.Context, env *Env, report Doc) (phones []string, problem string, err error) {
	if rec.prog == nil {
		return nil, mraNotFound(rec.src), nil
	}
	if env.JS == nil {
		env.JS = jsexpr.NewSandbox(jsexpr.Options{})
	}
	v, err := env.JS.Eval(ctx, rec.prog, map[string]any{"new_report": report})
	if err != nil {
		if fatalExprError(err) {
			return nil, "", err
		}
		return nil, mraNotFound(rec.src), nil
	}
	switch x := v.(type) {
	case string:
		return []string{x}, "", nil
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				phones = append(phones, s)
			} else if problem == "" {
				problem = fmt.Sprintf(`multi_report_alerts : one of the phone numbers for "%s" is not a string. Message will not be sent. Found : %s`, rec.src, jsonText(e))
			}
		}
		return phones, problem, nil
	}
	return nil, fmt.Sprintf(`multi_report_alerts : phone number for "%s" is not a string or array of strings. Message will not be sent. Found : %s`, rec.src, jsonText(v)), nil
}

func mraNotFound(src string) string {
	return fmt.Sprintf(`multi_report_alerts : Could not find a phone number for "%s". Message will not be sent.`, src)
}

// WhyNot says why Filter is false (sentinel explain).
func (t *multiReportAlerts) WhyNot(env *Env, c *Change) string {
	if r := whyNotReport(c, t.Name()); r != "" {
		return r
	}
	return whyNotSubmission(env, c.Doc)
}
